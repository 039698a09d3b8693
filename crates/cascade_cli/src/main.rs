//! `cascade-cli`: run, validate and benchmark Cascade scenarios without a window, and turn a
//! recorded traffic trace into a rate profile.
//!
//! Every command loads scenarios through `cascade_sim::scenario` (the same `file:line:col`
//! errors as the app) and runs the same `SimPlugin` schedule as the app, headless. Exit codes:
//! 0 success, 2 bad flags or invalid files, 3 a scenario's stated outcome was not met
//! (`run --check`), 1 anything else (I/O). Errors are one clear message on stderr — never a
//! panic message or a backtrace.

mod bench;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run, validate and benchmark Cascade scenarios headless.
#[derive(Parser, Debug)]
#[command(name = "cascade-cli", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario and print a JSON summary on stdout.
    Run(run::RunArgs),
    /// Check scenario files; exit 0 if all are valid, 2 with every error otherwise.
    Validate {
        /// Scenario files (.ron).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Measure simulation speed (hops per wall second) on a scenario or a generated architecture.
    Bench(bench::BenchArgs),
    /// Write a generated layered architecture as a scenario file.
    Generate(bench::GenerateArgs),
    /// Print a recorded traffic trace (CSV: time_s, rate_per_s) as a source's rate profile.
    RateFromCsv(run::RateFromCsvArgs),
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: u8,
    /// Message for stderr.
    pub message: String,
}

impl From<cascade_report::ReportError> for Failure {
    fn from(e: cascade_report::ReportError) -> Self {
        Failure::other(e.to_string())
    }
}

impl Failure {
    /// Invalid input (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// A run of `name` the engine stopped (it needed more memory than a run may hold): its
    /// reason and hint, as bad input (exit 2).
    pub fn halted(name: impl std::fmt::Display, halt: &cascade_sim::Halt) -> Self {
        Failure::input(format!("{name}: {}\n  hint: {}", halt.reason, halt.hint))
    }

    /// Anything else, e.g. I/O (exit 1).
    pub fn other(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    // A bug must still end in one clear line, not a Rust backtrace.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!(
            "cascade-cli: internal error{location}: {payload}\n  this is a bug; please report it with the command you ran"
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Validate { files } => run::validate(&files),
        Command::Bench(args) => bench::bench(&args),
        Command::Generate(args) => bench::generate(&args),
        Command::RateFromCsv(args) => run::rate_from_csv(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
