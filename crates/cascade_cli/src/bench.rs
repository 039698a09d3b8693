//! `cascade-cli bench` and `cascade-cli generate`.
//!
//! `bench` runs a scenario (default: `scenarios/bench/three-tier.ron`) or a generated layered
//! architecture for 3,600 simulated seconds (or `--duration`) with metrics on, and prints
//! hops per wall second, simulated seconds per wall second and peak memory. Figures and how to
//! reproduce them are in docs/performance.md.

use std::path::PathBuf;
use std::time::Instant;

use cascade_sim::Simulation;
use cascade_sim::generate::{LayeredParams, layered};
use cascade_sim::scenario::{MAX_RATE_PER_S, MAX_SERVICES, Scenario, save_to_path};
use clap::Args;

use crate::Failure;
use crate::run::{load, positive_seconds};

/// Arguments of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Scenario file (default: scenarios/bench/three-tier.ron).
    pub scenario: Option<PathBuf>,
    /// Simulated seconds to run.
    #[arg(long, default_value_t = 3600.0, value_parser = positive_seconds)]
    pub duration: f64,
    /// Instead of a file, generate a layered architecture with this many services.
    #[arg(long, conflicts_with = "scenario")]
    pub layered: Option<u32>,
    #[command(flatten)]
    pub shape: Shape,
}

/// Shape of a generated architecture.
#[derive(Args, Debug, Clone, Copy)]
pub struct Shape {
    /// Layers of the generated architecture.
    #[arg(long, default_value_t = 4)]
    pub depth: u32,
    /// Callees per service in the next layer.
    #[arg(long, default_value_t = 3)]
    pub fanout: u32,
    /// Requests per second per service.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seed of the generated architecture.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Number of services.
    #[arg(long)]
    pub services: u32,
    #[command(flatten)]
    pub shape: Shape,
    /// Output file (.ron).
    #[arg(short, long)]
    pub out: PathBuf,
}

fn params(services: u32, shape: Shape, duration_s: f64) -> Result<LayeredParams, Failure> {
    if services == 0 || shape.depth == 0 || shape.fanout == 0 {
        return Err(Failure::input(
            "services, depth and fanout must be at least 1",
        ));
    }
    if services as usize > MAX_SERVICES {
        return Err(Failure::input(format!(
            "{services} services is more than a scenario may have ({MAX_SERVICES})"
        )));
    }
    if !(shape.rate > 0.0 && shape.rate.is_finite() && shape.rate <= MAX_RATE_PER_S) {
        return Err(Failure::input(format!(
            "--rate must be a positive number of requests per second, at most 10^8, got {}",
            shape.rate
        )));
    }
    Ok(LayeredParams {
        services,
        depth: shape.depth.min(services),
        fanout: shape.fanout,
        rate_per_service_s: shape.rate,
        seed: shape.seed,
        duration_s,
        ..Default::default()
    })
}

/// `bench`.
pub fn bench(args: &BenchArgs) -> Result<(), Failure> {
    let scenario: Scenario = match (args.layered, &args.scenario) {
        (Some(n), _) => layered(&params(n, args.shape, args.duration)?),
        (None, Some(path)) => load(path)?,
        (None, None) => load(&default_bench_path())?,
    };
    let setup = Instant::now();
    let mut sim = Simulation::new(&scenario);
    let setup_s = setup.elapsed().as_secs_f64();
    let started = Instant::now();
    sim.run_to(args.duration, |_| {});
    if let Some(halt) = sim.halted() {
        return Err(Failure::halted(&scenario.name, halt));
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = sim.summary();
    let instances: u32 = scenario.services.iter().map(|s| s.instances).sum();
    let json = serde_json::json!({
        "scenario": scenario.name,
        "services": scenario.services.len(),
        "instances": instances,
        "sim_seconds": summary.sim_seconds,
        "setup_seconds": setup_s,
        "wall_seconds": wall,
        "hops": summary.hops,
        "hops_per_second": summary.hops as f64 / wall,
        "sim_seconds_per_wall_second": summary.sim_seconds / wall,
        "peak_rss_mb": peak_rss_mb(),
        "verdict": summary.verdict.as_str(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&json).map_err(|e| Failure::other(e.to_string()))?
    );
    Ok(())
}

/// `generate`.
pub fn generate(args: &GenerateArgs) -> Result<(), Failure> {
    let scenario = layered(&params(args.services, args.shape, 60.0)?);
    save_to_path(&scenario, &args.out)
        .map_err(|e| Failure::other(format!("cannot write {}: {e}", args.out.display())))?;
    eprintln!(
        "wrote {} ({} services)",
        args.out.display(),
        scenario.services.len()
    );
    Ok(())
}

/// The three-tier benchmark, found relative to the working directory or the executable.
fn default_bench_path() -> PathBuf {
    let rel = PathBuf::from("scenarios/bench/three-tier.ron");
    if rel.exists() {
        return rel;
    }
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|a| a.join(&rel).exists())
            .map(|a| a.join(&rel))
    });
    from_exe.unwrap_or(rel)
}

/// Peak resident memory of this process (Linux `VmHWM`), MB; `None` elsewhere.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
