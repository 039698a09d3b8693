//! Whole-run summaries: what `cascade-cli run` prints and tests check.
//!
//! Built from the run totals of every node (closed intervals only) and the whole-run latency
//! histograms; rates divide by the simulated time covered by those intervals. Owns no state.

use std::collections::BTreeMap;

use bevy_ecs::prelude::*;
use serde::Serialize;

use crate::ActiveScenario;
use crate::engine::{Engine, ServiceState, SourceState};
use crate::metrics::{Health, MetricsHistory, Outcome};
use crate::scenario::VerdictKind;
use crate::verdict::{Verdict, judge_with, window_counters};

/// One service over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceSummary {
    /// Attempts reaching it per second (first tries and retries).
    pub offered_rps: f64,
    /// Of which retries per second.
    pub retry_rps: f64,
    /// Successes its callers still waited for, per second.
    pub goodput_rps: f64,
    /// Share of resolved attempts that were not goodput.
    pub error_ratio: f64,
    /// Mean residence time (queue + own work + downstream waits), ms.
    pub mean_ms: f64,
    /// Mean queue wait, ms.
    pub mean_wait_ms: f64,
    /// Share of admitted attempts (not rejected, refused or dropped) that had to wait in the queue.
    pub wait_probability: f64,
    /// Median residence, ms.
    pub p50_ms: f64,
    /// 90th percentile residence, ms.
    pub p90_ms: f64,
    /// 99th percentile residence, ms.
    pub p99_ms: f64,
    /// 99.9th percentile residence, ms.
    pub p999_ms: f64,
    /// Time-average queue length (all instances).
    pub mean_queue: f64,
    /// Time-average requests in the service (queued + at workers).
    pub mean_in_system: f64,
    /// Busy worker time over worker capacity.
    pub utilization: f64,
    /// Completions whose caller had given up, over completions.
    pub orphaned_ratio: f64,
    /// Rejected over offered.
    pub rejected_ratio: f64,
    /// Attempts its callers timed out on, over offered.
    pub timed_out_ratio: f64,
    /// Attempts its callers cancelled (`cancellation`), over offered.
    pub cancelled_ratio: f64,
    /// Completions per second (admitted throughput).
    pub throughput_rps: f64,
}

/// One source over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceSummary {
    /// New requests per second.
    pub offered_rps: f64,
    /// Retries per second.
    pub retry_rps: f64,
    /// Successful requests per second.
    pub goodput_rps: f64,
    /// Successful requests over finished requests.
    pub success_ratio: f64,
    /// Goodput over new requests in the verdict's final window, when the source sent at least
    /// `verdict.min_source_requests` there (what `verdict: (sources: Each)` judges it on).
    pub final_success_ratio: Option<f64>,
    /// Mean end-to-end latency of successful requests (retries included), ms.
    pub mean_ms: f64,
    /// Median of the same, ms.
    pub p50_ms: f64,
    /// 99th percentile of the same, ms.
    pub p99_ms: f64,
    /// Failed requests by reason (of their last attempt).
    pub failures: BTreeMap<String, u64>,
    /// Failed requests by where their failure started (a service, or "caller → callee" for a
    /// link; `causality.rs`).
    pub failure_origins: BTreeMap<String, u64>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Simulated seconds covered.
    pub sim_seconds: f64,
    /// Attempts delivered to services.
    pub hops: u64,
    /// Verdict.
    pub verdict: VerdictKind,
    /// Seconds to recover (`recovered` only).
    pub recovery_seconds: Option<f64>,
    /// What sustains a metastable state.
    pub sustained_by: Vec<String>,
    /// Success ratio over the final judging window.
    pub final_success_ratio: f64,
    /// By service name.
    pub services: BTreeMap<String, ServiceSummary>,
    /// By source name.
    pub sources: BTreeMap<String, SourceSummary>,
    /// The verdict the scenario states in advance, if any.
    pub expected_verdict: Option<VerdictKind>,
    /// The measurements the scenario states in advance, checked.
    pub checks: Vec<crate::outcome::CheckResult>,
    /// Where the users' failures started, their path and the blast radius (`None`: no user
    /// saw a failure).
    pub causality: Option<crate::causality::CausalityReport>,
}

impl RunSummary {
    /// The scenario's stated outcome (verdict and checks) held; `None` when it states none.
    pub fn expectation_met(&self) -> Option<bool> {
        let verdict = self.expected_verdict.map(|e| e == self.verdict);
        if verdict.is_none() && self.checks.is_empty() {
            return None;
        }
        Some(verdict.unwrap_or(true) && self.checks.iter().all(|c| c.passed))
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The verdict of the run so far (the end-of-run rule, see `verdict.rs`). With `live`, the
/// final window is the evidence since the trigger ended ([`crate::verdict::live_window_s`]),
/// so a run in progress reads "recovered" or "metastable" once that evidence is settled,
/// rather than waiting a full judging window.
pub fn current_verdict(world: &World, live: bool) -> Option<Verdict> {
    let history = world.get_resource::<MetricsHistory>()?;
    let scenario = &world.get_resource::<ActiveScenario>()?.0;
    let interval_s = history.interval_ns as f64 / 1e9;
    let healthy = crate::verdict::healthy_intervals(
        crate::verdict::Series::of(history),
        interval_s,
        &scenario.verdict,
    );
    current_verdict_with(world, live, &healthy)
}

/// [`current_verdict`] with the health of every closed interval already known (the live
/// verdict keeps it in a [`crate::verdict::HealthSeries`]).
pub fn current_verdict_with(world: &World, live: bool, healthy: &[bool]) -> Option<Verdict> {
    let history = world.get_resource::<MetricsHistory>()?;
    let scenario = &world.get_resource::<ActiveScenario>()?.0;
    let interval_s = history.interval_ns as f64 / 1e9;
    let mut settings = scenario.verdict;
    if live {
        settings.judge_window_s =
            crate::verdict::live_window_s_with(&history.system, interval_s, &settings, healthy);
    }
    let series = crate::verdict::Series::of(history);
    // What sustains a metastable state is read from every service's counters over the
    // window: gathered only when the verdict is metastable (this runs at every interval close).
    let verdict = judge_with(series, interval_s, &settings, &[], healthy);
    if verdict.kind != VerdictKind::Metastable {
        return Some(verdict);
    }
    let window = (settings.judge_window_s / interval_s).round().max(1.0) as u32;
    let names: Vec<(String, bool, bool)> = world
        .get_resource::<Engine>()?
        .model
        .services
        .iter()
        .map(|s| {
            let cache = s.mech.as_ref().is_some_and(|m| m.cache.is_some());
            (s.name.clone(), s.removed, cache)
        })
        .collect();
    Some(judge_with(
        series,
        interval_s,
        &settings,
        &window_counters(history, &names, window),
        healthy,
    ))
}

/// Summarises the run so far.
pub fn summarize(world: &mut World) -> Option<RunSummary> {
    let scenario = world.get_resource::<ActiveScenario>()?.0.clone();
    let verdict = current_verdict(world, false)?;
    let history = world.resource::<MetricsHistory>();
    let secs = history.intervals() as f64 * history.interval_ns as f64 / 1e9;
    let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let span_ns = (secs * 1e9) as u64;
    let engine = world.resource::<Engine>();
    let hops = engine.hops_total;
    let names: Vec<String> = engine
        .model
        .services
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let removed: Vec<bool> = engine.model.services.iter().map(|s| s.removed).collect();
    let source_names: Vec<(String, bool)> = engine
        .model
        .sources
        .iter()
        .map(|s| (s.name.clone(), s.removed))
        .collect();

    let mut services = BTreeMap::new();
    let mut q = world.query::<&ServiceState>();
    for st in q.iter(world) {
        let i = st.index as usize;
        if removed[i] {
            continue;
        }
        let c = &st.metrics.totals;
        let h = &st.metrics.hist_total;
        services.insert(
            names[i].clone(),
            ServiceSummary {
                offered_rps: per_s(c.offered()),
                retry_rps: per_s(c.offered_retry),
                goodput_rps: per_s(c.goodput),
                error_ratio: c.error_ratio(),
                mean_ms: c.mean_residence_ms(),
                mean_wait_ms: c.mean_wait_ms(),
                wait_probability: ratio(
                    c.queued,
                    c.offered()
                        .saturating_sub(c.rejected + c.refused + c.dropped),
                ),
                p50_ms: h.quantile_ms(0.5),
                p90_ms: h.quantile_ms(0.9),
                p99_ms: h.quantile_ms(0.99),
                p999_ms: h.quantile_ms(0.999),
                mean_queue: c.mean_queue(span_ns),
                mean_in_system: c.mean_in_system(span_ns),
                utilization: c.utilization(),
                orphaned_ratio: c.orphaned_ratio(),
                rejected_ratio: c.rejected_ratio(),
                cancelled_ratio: ratio(c.cancelled, c.offered()),
                timed_out_ratio: ratio(c.timed_out, c.offered()),
                throughput_rps: per_s(c.completed()),
            },
        );
    }
    let graph = crate::causality::CauseGraph::of(&world.resource::<Engine>().model);
    let history = world.resource::<MetricsHistory>();
    let causality = crate::causality::analyse(
        &history.causes,
        &graph,
        history.interval_ns as f64 / 1e9,
        |node, k| {
            history
                .node_rows(node)
                .and_then(|r| MetricsHistory::row_at(r, k))
                .is_some_and(|row| !matches!(row.health, Health::Healthy | Health::Idle))
        },
    );
    let mut origins: Vec<BTreeMap<String, u64>> = (0..graph.sources.len())
        .map(|s| crate::causality::origins_of(&history.causes, &graph, s as u32))
        .collect();
    // Each source's ratio over the verdict's final window, as `sources: Each` judges it.
    let final_ratios: Vec<Option<f64>> = {
        let settings = &scenario.verdict;
        let n = history.system.len();
        let interval_s = history.interval_ns as f64 / 1e9;
        let from = n.saturating_sub(crate::verdict::final_window_len(n, interval_s, settings));
        history
            .source_series
            .iter()
            .map(|points| crate::verdict::source_ratio(points, settings, from, n))
            .collect()
    };
    let mut sources = BTreeMap::new();
    let mut q = world.query::<&SourceState>();
    for st in q.iter(world) {
        let (name, gone) = &source_names[st.index as usize];
        if *gone {
            continue;
        }
        let c = &st.metrics.totals;
        let h = &st.metrics.hist_total;
        let finished = c.succeeded + c.failed_total();
        let failures = Outcome::ALL
            .iter()
            .filter(|o| **o != Outcome::Success && c.failed[**o as usize] > 0)
            .map(|o| (o.as_str().to_owned(), c.failed[*o as usize]))
            .collect();
        sources.insert(
            name.clone(),
            SourceSummary {
                offered_rps: per_s(c.offered_first),
                retry_rps: per_s(c.offered_retry),
                goodput_rps: per_s(c.goodput),
                success_ratio: ratio(c.succeeded, finished),
                final_success_ratio: final_ratios.get(st.index as usize).copied().flatten(),
                mean_ms: if c.succeeded == 0 {
                    0.0
                } else {
                    c.residence_ns as f64 / c.succeeded as f64 / 1e6
                },
                p50_ms: h.quantile_ms(0.5),
                p99_ms: h.quantile_ms(0.99),
                failures,
                failure_origins: std::mem::take(&mut origins[st.index as usize]),
            },
        );
    }
    Some(RunSummary {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        sim_seconds: secs,
        hops,
        verdict: verdict.kind,
        recovery_seconds: verdict.recovery_seconds,
        sustained_by: verdict.sustained_by,
        final_success_ratio: verdict.final_success_ratio,
        services,
        sources,
        expected_verdict: scenario.expect.as_ref().map(|e| e.verdict),
        checks: check_outcomes(world, &scenario, causality.as_ref()),
        causality,
    })
}

/// The scenario's stated checks, measured on the run's rows.
fn check_outcomes(
    world: &World,
    scenario: &crate::scenario::Scenario,
    causality: Option<&crate::causality::CausalityReport>,
) -> Vec<crate::outcome::CheckResult> {
    let Some(expect) = &scenario.expect else {
        return Vec::new();
    };
    let root = expect
        .root
        .as_deref()
        .map(|stated| crate::outcome::check_root(stated, causality));
    let history = world.resource::<MetricsHistory>();
    let model = &world.resource::<Engine>().model;
    expect
        .checks
        .iter()
        .map(|check| {
            let rows = match model.source_index(&check.node) {
                Some(i) => history.sources.get(i as usize).map(|r| (r, true)),
                None => model
                    .service_index(&check.node)
                    .and_then(|i| history.services.get(i as usize))
                    .map(|r| (r, false)),
            };
            let value = rows.and_then(|(r, source)| {
                crate::outcome::measure(check, r, source, history.interval_ns)
            });
            let mut description = crate::outcome::describe(check);
            if !check.why.is_empty() {
                description = format!("{description}: {}", check.why);
            }
            crate::outcome::CheckResult {
                description,
                value,
                passed: value.is_some_and(|v| crate::outcome::holds(check, v)),
            }
        })
        .chain(root)
        .collect()
}
