//! `cascade_report`: a run's output files, the same from `cascade-cli run --out DIR` and from
//! the app's *File → Export run data*: `metrics.csv` (one row per interval × node),
//! `events.jsonl` (faults, commands, state changes), `causes.csv` (where failures started),
//! `summary.json` (the run's figures and verdict) and `report.md` (the run written up as a
//! postmortem, [`postmortem`]). Each file is written atomically (temporary file + rename) so a
//! crash never leaves half a file. The formats are documented in docs/scenario-format.md
//! ("Outputs"). It also reads one input file, a recorded traffic trace ([`rate_trace`]).
//!
//! Owns the formats and the writing; not what the figures mean (`cascade_sim::metrics`,
//! `cascade_sim::summary`) nor when a run is exported (the CLI and the app decide).

pub mod postmortem;
pub mod rate_trace;

pub use postmortem::{RunRecord, postmortem_md};

use std::path::{Path, PathBuf};

use cascade_sim::causality::{CauseGraph, CauseSite, Origin};
use cascade_sim::metrics::{MetricsHistory, NodeRow, Outcome};
use cascade_sim::scenario::write_atomically;
use cascade_sim::{Engine, EventLog, NodeRef, RunSummary};
use serde::Serialize;

/// Why an output could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file's contents could not be encoded.
    #[error("{file}: {message}")]
    Encode {
        /// The output file.
        file: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The directory could not be created.
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
}

fn encode(file: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ReportError {
    move |e| ReportError::Encode {
        file,
        message: e.to_string(),
    }
}

/// One CSV row: a node in an interval.
#[derive(Serialize)]
struct CsvRow<'a> {
    interval: u32,
    t_start_s: f64,
    node: &'a str,
    role: &'a str,
    offered_first: u64,
    offered_retry: u64,
    queued: u64,
    rejected: u64,
    refused: u64,
    dropped: u64,
    expired: u64,
    cancelled: u64,
    succeeded: u64,
    failed_error: u64,
    failed_timeout: u64,
    failed_rejected: u64,
    failed_refused: u64,
    failed_expired: u64,
    failed_dependency: u64,
    failed_throttled: u64,
    failed_shed: u64,
    failed_conflict: u64,
    failed_breaker_open: u64,
    failed_bulkhead_full: u64,
    failed_locally_throttled: u64,
    failed_overloaded: u64,
    failed_unresolved: u64,
    shed: u64,
    throttled: u64,
    overloaded: u64,
    local_rejected: u64,
    fallbacks: u64,
    hedges: u64,
    timed_out: u64,
    orphaned: u64,
    goodput: u64,
    error_ratio: String,
    mean_queue: String,
    mean_in_system: String,
    utilization: String,
    cpu_utilization: String,
    mean_ms: String,
    mean_wait_ms: String,
    p50_ms: String,
    p90_ms: String,
    p99_ms: String,
    p999_ms: String,
    live_instances: u32,
    healthy_instances: u32,
    starting_instances: u32,
    latched_instances: u32,
    breakers_open: u32,
    cache_warmth: String,
    queue_backlog: u64,
    dead_letters: u64,
    expired_items: u64,
    failed_over: bool,
    panic: bool,
    health: &'a str,
}

fn f6(x: f64) -> String {
    format!("{x:.6}")
}

/// Streams interval rows to a CSV writer as they close.
pub struct MetricsCsv {
    writer: csv::Writer<Vec<u8>>,
    written_intervals: u32,
}

impl Default for MetricsCsv {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsCsv {
    /// An empty CSV (header written with the first row).
    pub fn new() -> Self {
        MetricsCsv {
            writer: csv::Writer::from_writer(Vec::new()),
            written_intervals: 0,
        }
    }

    /// Appends every interval closed since the last call, nodes in model order (sources, then
    /// services). Intervals the history no longer keeps (a huge graph's oldest) are left out.
    pub fn append(&mut self, history: &MetricsHistory, engine: &Engine) -> Result<(), ReportError> {
        let interval_s = history.interval_ns as f64 / 1e9;
        for k in self.written_intervals..history.intervals() {
            let nodes = engine
                .model
                .sources
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.removed)
                .map(|(i, s)| (s.name.as_str(), "source", history.sources.get(i)))
                .chain(
                    engine
                        .model
                        .services
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| !s.removed)
                        .map(|(i, s)| (s.name.as_str(), "service", history.services.get(i))),
                );
            for (name, role, ring) in nodes {
                let Some(row) = ring.and_then(|r| MetricsHistory::row_at(r, k)) else {
                    continue;
                };
                self.writer
                    .serialize(csv_row(row, name, role, interval_s, history.interval_ns))
                    .map_err(|e| encode("metrics.csv")(&e))?;
            }
        }
        self.written_intervals = history.intervals();
        Ok(())
    }

    /// The CSV bytes.
    pub fn into_bytes(self) -> Result<Vec<u8>, ReportError> {
        self.writer
            .into_inner()
            .map_err(|e| encode("metrics.csv")(&e))
    }
}

fn csv_row<'a>(
    row: &NodeRow,
    node: &'a str,
    role: &'a str,
    interval_s: f64,
    interval_ns: u64,
) -> CsvRow<'a> {
    let c = &row.counters;
    let f = |o: Outcome| c.failed[o as usize];
    CsvRow {
        interval: row.interval,
        t_start_s: f64::from(row.interval) * interval_s,
        node,
        role,
        offered_first: c.offered_first,
        offered_retry: c.offered_retry,
        queued: c.queued,
        rejected: c.rejected,
        refused: c.refused,
        dropped: c.dropped,
        expired: c.expired,
        cancelled: c.cancelled,
        succeeded: c.succeeded,
        failed_error: f(Outcome::Error),
        failed_timeout: f(Outcome::Timeout),
        failed_rejected: f(Outcome::Rejected),
        failed_refused: f(Outcome::Refused),
        failed_expired: f(Outcome::Expired),
        failed_dependency: f(Outcome::DependencyFailed),
        failed_throttled: f(Outcome::Throttled),
        failed_shed: f(Outcome::Shed),
        failed_conflict: f(Outcome::Conflict),
        failed_breaker_open: f(Outcome::BreakerOpen),
        failed_bulkhead_full: f(Outcome::BulkheadFull),
        failed_locally_throttled: f(Outcome::LocallyThrottled),
        failed_overloaded: f(Outcome::Overloaded),
        failed_unresolved: f(Outcome::Unresolved),
        shed: c.shed,
        throttled: c.throttled,
        overloaded: c.overloaded,
        local_rejected: c.local_rejected,
        fallbacks: c.fallbacks,
        hedges: c.hedges,
        timed_out: c.timed_out,
        orphaned: c.orphaned,
        goodput: c.goodput,
        error_ratio: f6(c.error_ratio()),
        mean_queue: f6(c.mean_queue(interval_ns)),
        mean_in_system: f6(c.mean_in_system(interval_ns)),
        utilization: f6(c.utilization()),
        cpu_utilization: c.cpu_utilization().map(f6).unwrap_or_default(),
        mean_ms: f6(if role == "source" {
            if c.succeeded == 0 {
                0.0
            } else {
                c.residence_ns as f64 / c.succeeded as f64 / 1e6
            }
        } else {
            c.mean_residence_ms()
        }),
        mean_wait_ms: f6(c.mean_wait_ms()),
        p50_ms: f6(row.latency_ms[0]),
        p90_ms: f6(row.latency_ms[1]),
        p99_ms: f6(row.latency_ms[2]),
        p999_ms: f6(row.latency_ms[3]),
        live_instances: row.live_instances,
        healthy_instances: row.gauges.healthy_instances,
        starting_instances: row.gauges.starting_instances,
        latched_instances: row.gauges.latched_instances,
        breakers_open: row.gauges.breakers_open,
        cache_warmth: f6(row.gauges.cache_warmth),
        queue_backlog: row.gauges.queue_backlog,
        dead_letters: row.gauges.dead_letters,
        expired_items: row.gauges.expired_items,
        failed_over: row.gauges.failed_over,
        panic: row.gauges.panic,
        health: row.health.as_str(),
    }
}

/// One row of `causes.csv`.
#[derive(Serialize)]
struct CauseCsvRow {
    interval: u32,
    t_s: f64,
    site: String,
    origin: String,
    failures: u64,
}

/// `causes.csv`: where failures started, per interval (those the history keeps): one row per
/// interval × site × origin with failures, where a site is a source (its users' failed
/// requests) or a link `caller → callee` (the failed attempts of its calls, as the caller saw
/// them), and the origin a service or a link (docs/model.md, "Causality").
pub fn causes_csv(history: &MetricsHistory, engine: &Engine) -> Result<Vec<u8>, ReportError> {
    let graph = CauseGraph::of(&engine.model);
    let interval_s = history.interval_ns as f64 / 1e9;
    let mut writer = csv::Writer::from_writer(Vec::new());
    for r in &history.causes.rows {
        let site = match r.site {
            CauseSite::Source(s) => graph.node_name(NodeRef::Source(s)),
            CauseSite::Link(l) => graph.origin_name(Origin::Link(l)),
        };
        writer
            .serialize(CauseCsvRow {
                interval: r.interval,
                t_s: f64::from(r.interval) * interval_s,
                site,
                origin: graph.origin_name(r.origin),
                failures: r.failures,
            })
            .map_err(|e| encode("causes.csv")(&e))?;
    }
    if history.causes.rows.is_empty() {
        // The header alone, so that a run without failures still has a readable file.
        writer
            .write_record(["interval", "t_s", "site", "origin", "failures"])
            .map_err(|e| encode("causes.csv")(&e))?;
    }
    writer.into_inner().map_err(|e| encode("causes.csv")(&e))
}

/// `events.jsonl`: one JSON object per event, with `time_s`.
pub fn events_jsonl(log: &EventLog) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    for ev in &log.events {
        let mut value = serde_json::to_value(ev).map_err(|e| encode("events.jsonl")(&e))?;
        if let Some(obj) = value.as_object_mut() {
            let t = obj.remove("time_ns").and_then(|v| v.as_u64()).unwrap_or(0);
            obj.insert("time_s".into(), serde_json::json!(t as f64 / 1e9));
        }
        serde_json::to_writer(&mut out, &value).map_err(|e| encode("events.jsonl")(&e))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes one output file atomically, creating the directory.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ReportError> {
    write_file(&dir.join(name), bytes)
}

/// Writes `path` atomically, creating its folder if missing (the app's exports and saved runs
/// go where the user typed, which need not exist yet).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    if let Some(dir) = path.parent() {
        // `create_dir_all` of the empty parent of a bare file name succeeds.
        std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    write_atomically(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The summary as pretty JSON, with the run's wall time when it has one (a run the app
/// played, paused and edited has none worth stating).
pub fn summary_json(
    summary: &RunSummary,
    wall_seconds: Option<f64>,
) -> Result<String, ReportError> {
    let mut value = serde_json::to_value(summary).map_err(|e| encode("summary.json")(&e))?;
    if let Some(obj) = value.as_object_mut() {
        if let Some(wall_seconds) = wall_seconds {
            obj.insert("wall_seconds".into(), serde_json::json!(wall_seconds));
        }
        let verdict = summary.verdict.as_str();
        obj.insert("verdict".into(), serde_json::json!(verdict));
        if let Some(e) = summary.expected_verdict {
            obj.insert("expected_verdict".into(), serde_json::json!(e.as_str()));
        }
        if let Some(met) = summary.expectation_met() {
            obj.insert("expectation_met".into(), serde_json::json!(met));
        }
    }
    serde_json::to_string_pretty(&value).map_err(|e| encode("summary.json")(&e))
}
