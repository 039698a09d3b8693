//! Command-line options of `cascade`.

use std::path::PathBuf;

use clap::Parser;

/// Cascade: watch small failures become large outages.
#[derive(Parser, Debug, Clone, Default)]
#[command(name = "cascade", version, about, long_about = None)]
pub struct Args {
    /// Scenario file to open (default: the retry-storm teaching scenario).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Save a screenshot of the window to this PNG file and exit (see --after-seconds).
    #[arg(long, value_name = "OUT.png")]
    pub screenshot: Option<PathBuf>,
    /// With --screenshot: simulated seconds to run at full speed before the picture.
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = non_negative_seconds)]
    pub after_seconds: f64,
    /// With --screenshot: select this node first, so the inspector and charts show it.
    #[arg(long, value_name = "NODE")]
    pub select: Option<String>,
    /// Compare with this scenario: it runs beside under the same seed and faults (File →
    /// Compare with…).
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,
    /// Measure frame time over this many frames (after warm-up), print JSON and exit.
    #[arg(long, value_name = "FRAMES")]
    pub measure_frames: Option<u32>,
    /// Instead of a file, open a generated layered architecture with this many services.
    #[arg(long, value_name = "N")]
    pub layered: Option<u32>,
    /// Simulation speed at start (× real time).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Sampled request journeys per real second shown as particles (more: denser animation).
    #[arg(long, value_name = "N", default_value_t = 25.0)]
    pub journeys_per_second: f64,
    /// Window size in logical pixels, e.g. 1600x1000.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub window: Option<(u32, u32)>,
}

fn non_negative_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds ≥ 0")),
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| (200..=10_000).contains(&n))
    };
    match (parse(w), parse(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!("`{s}`: width and height must be 200..10000 pixels")),
    }
}
