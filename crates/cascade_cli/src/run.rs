//! `cascade-cli run` and `cascade-cli validate`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cascade_sim::scenario::{self, Scenario};
use cascade_sim::time::HORIZON_S;
use cascade_sim::{Engine, EventLog, Simulation};
use clap::Args;

use crate::Failure;
use cascade_report::{self as output, MetricsCsv};

/// Arguments of `run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario file (.ron).
    pub scenario: PathBuf,
    /// Seed of every random stream (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated seconds to run (default: the scenario's `duration_s`).
    #[arg(long, value_parser = positive_seconds)]
    pub duration: Option<f64>,
    /// Also write metrics.csv, events.jsonl, summary.json and report.md into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 3 if the run does not end as the scenario states (its verdict or its checks).
    #[arg(long)]
    pub check: bool,
}

/// Parses a positive, finite number of seconds, at most the simulator's horizon.
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > HORIZON_S && v.is_finite() => Err(format!(
            "{v} s is longer than Cascade simulates (at most 10^8 s, about three years)"
        )),
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("must be a positive number of seconds, got {v}")),
        Err(_) => Err(format!("`{s}` is not a number of seconds")),
    }
}

/// Loads and validates a scenario file (exit 2 on any problem).
pub fn load(path: &Path) -> Result<Scenario, Failure> {
    scenario::load(path).map_err(|e| Failure::input(e.to_string()))
}

/// `run`.
pub fn run(args: &RunArgs) -> Result<(), Failure> {
    let mut scenario = load(&args.scenario)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let duration = args.duration.unwrap_or(scenario.duration_s);
    let started = Instant::now();
    let mut sim = Simulation::new(&scenario);
    let mut csv = args.out.as_ref().map(|_| MetricsCsv::new());
    let bar = progress_bar(duration);
    let mut io_error = None;
    // Rows are streamed out as intervals close: on huge graphs the history keeps only the
    // most recent intervals of each node.
    sim.run_to_with(duration, |world, fraction| {
        if let Some(bar) = &bar {
            bar.set_position((fraction * 1000.0) as u64);
        }
        if let Some(csv) = csv.as_mut()
            && io_error.is_none()
            && let Err(e) = csv.append(world.resource(), world.resource::<Engine>())
        {
            io_error = Some(e);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(e) = io_error {
        return Err(e.into());
    }
    if let Some(halt) = sim.halted() {
        // What ran is still worth reading: the metrics so far and the log, which ends with
        // the reason. No summary: its verdict would judge a run that did not finish.
        if let (Some(dir), Some(csv)) = (&args.out, csv) {
            write_metrics_and_log(dir, csv, &sim)?;
        }
        return Err(Failure::halted(args.scenario.display(), halt));
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = sim.summary();
    let json = output::summary_json(&summary, Some(wall))?;
    if let (Some(dir), Some(csv)) = (&args.out, csv) {
        write_metrics_and_log(dir, csv, &sim)?;
        output::write(dir, "summary.json", format!("{json}\n").as_bytes())?;
        let file = args.scenario.file_name().map(|f| f.to_string_lossy());
        let report = output::postmortem_md(&output::RunRecord {
            scenario: &scenario,
            file: file.as_deref(),
            summary: &summary,
            events: sim.world().resource::<EventLog>(),
            history: sim.history(),
        });
        output::write(dir, "report.md", report.as_bytes())?;
    }
    println!("{json}");
    if args.check && summary.expectation_met() == Some(false) {
        let mut problems = Vec::new();
        if let Some(expected) = summary.expected_verdict
            && expected != summary.verdict
        {
            problems.push(format!(
                "expected verdict {} but the run ended {}",
                expected.as_str(),
                summary.verdict.as_str()
            ));
        }
        for c in summary.checks.iter().filter(|c| !c.passed) {
            let got = c
                .value
                .map_or_else(|| "nothing to measure".to_owned(), |v| format!("{v:.4}"));
            problems.push(format!("check failed: {} (measured {got})", c.description));
        }
        return Err(Failure {
            code: 3,
            message: format!("{}: {}", args.scenario.display(), problems.join("; ")),
        });
    }
    Ok(())
}

/// Writes `metrics.csv` and `events.jsonl` of the run into `dir`.
fn write_metrics_and_log(dir: &Path, csv: MetricsCsv, sim: &Simulation) -> Result<(), Failure> {
    output::write(dir, "metrics.csv", &csv.into_bytes()?)?;
    output::write(
        dir,
        "events.jsonl",
        &output::events_jsonl(sim.world().resource::<EventLog>())?,
    )?;
    output::write(
        dir,
        "causes.csv",
        &output::causes_csv(sim.history(), sim.world().resource::<Engine>())?,
    )?;
    Ok(())
}

fn progress_bar(duration_s: f64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {percent:>3}% of {msg} simulated s, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{duration_s}"));
    Some(bar)
}

/// `validate`.
/// Arguments of `cascade-cli rate-from-csv`.
#[derive(Args, Debug)]
pub struct RateFromCsvArgs {
    /// The trace: a header row, then one row per point (a time in seconds, a rate in requests
    /// per second). Times are shifted so that the first row is at 0 s.
    pub file: PathBuf,
    /// Name of the time column (default `time_s`, or the first column when the header has
    /// neither default name).
    #[arg(long)]
    pub time_column: Option<String>,
    /// Name of the rate column (default `rate_per_s`, or the second column).
    #[arg(long)]
    pub rate_column: Option<String>,
}

/// Prints the trace as `Points([(0, 120), …])`, for a source's `rate:`.
pub fn rate_from_csv(args: &RateFromCsvArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        Failure::input(format!(
            "{}: cannot read the trace: {e}\n  hint: give the path of a CSV file",
            args.file.display()
        ))
    })?;
    let columns = cascade_report::rate_trace::TraceColumns {
        time: args.time_column.clone(),
        rate: args.rate_column.clone(),
    };
    let points = cascade_report::rate_trace::points_from_csv(&text, &columns)
        .map_err(|e| Failure::input(format!("{}: {e}", args.file.display())))?;
    println!("{}", cascade_report::rate_trace::points_ron(&points));
    Ok(())
}

pub fn validate(files: &[PathBuf]) -> Result<(), Failure> {
    let mut errors = Vec::new();
    for file in files {
        match scenario::load(file) {
            Ok(_) => eprintln!("{}: ok", file.display()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::input(errors.join("\n")))
    }
}
