//! Checking a scenario's stated measurements ([`OutcomeCheck`]) against a run's interval rows.
//!
//! Pure functions over [`MetricsHistory`]: rates and ratios aggregate the rows of the window;
//! gauges are read from its last row. Owns nothing; `summary.rs` reports the results and
//! `cascade-cli run --check` fails on them.

use serde::Serialize;

use crate::metrics::{MetricsHistory, NodeCounters, NodeRow};
use crate::scenario::{CheckMetric, OutcomeCheck};

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// What was checked, in words.
    pub description: String,
    /// The measured value (`None`: nothing to measure, e.g. the window is not covered).
    pub value: Option<f64>,
    /// It holds.
    pub passed: bool,
}

/// Measures `check` on the rows of a node (`rows`; `source`: it is a source).
pub fn measure(
    check: &OutcomeCheck,
    rows: &std::collections::VecDeque<NodeRow>,
    source: bool,
    interval_ns: u64,
) -> Option<f64> {
    let interval_s = interval_ns as f64 / 1e9;
    let from = (check.from_s / interval_s).round() as u32;
    let to = (check.to_s / interval_s).round() as u32;
    if to <= from {
        return None;
    }
    let window: Vec<&NodeRow> = (from..to)
        .filter_map(|k| MetricsHistory::row_at(rows, k))
        .collect();
    if window.len() != (to - from) as usize {
        return None;
    }
    let last = window.last()?;
    let mut c = NodeCounters::default();
    for r in &window {
        c.add(&r.counters);
    }
    let span_s = f64::from(to - from) * interval_s;
    let offered = if source { c.offered_first } else { c.offered() };
    let value = match check.metric {
        CheckMetric::SuccessRatio => {
            if offered == 0 {
                1.0
            } else {
                c.goodput as f64 / offered as f64
            }
        }
        CheckMetric::GoodputPerS => c.goodput as f64 / span_s,
        CheckMetric::OfferedPerS => c.offered() as f64 / span_s,
        CheckMetric::MeanMs => {
            let n = if source { c.succeeded } else { c.completed() };
            if n == 0 {
                0.0
            } else {
                c.residence_ns as f64 / n as f64 / 1e6
            }
        }
        CheckMetric::Utilization => c.utilization(),
        CheckMetric::CpuUtilization => c.cpu_utilization()?,
        CheckMetric::LiveInstances => f64::from(last.live_instances),
        CheckMetric::HealthyInstances => f64::from(last.gauges.healthy_instances),
        CheckMetric::LatchedInstances => f64::from(last.gauges.latched_instances),
        CheckMetric::CacheWarmth => last.gauges.cache_warmth,
        CheckMetric::QueueBacklog => last.gauges.queue_backlog as f64,
        CheckMetric::BreakersOpen => f64::from(last.gauges.breakers_open),
        CheckMetric::FailedOver => f64::from(u8::from(last.gauges.failed_over)),
        CheckMetric::Panic => f64::from(u8::from(last.gauges.panic)),
        CheckMetric::ExpiredItems => last.gauges.expired_items as f64,
        CheckMetric::DeadLetters => last.gauges.dead_letters as f64,
        CheckMetric::ConflictRatio => {
            let done = c.completed();
            if done == 0 {
                0.0
            } else {
                c.failed[crate::metrics::Outcome::Conflict as usize] as f64 / done as f64
            }
        }
        CheckMetric::Slowdown => c.mean_slowdown().unwrap_or(1.0),
    };
    Some(value)
}

/// The check of a stated root (`expect.root`): it holds when the run's root is `stated`; its
/// value is the share of the users' failures that started at `stated` (`None`: none failed).
pub fn check_root(
    stated: &str,
    causality: Option<&crate::causality::CausalityReport>,
) -> CheckResult {
    let share = causality.map(|c| {
        c.origins
            .iter()
            .find(|o| o.origin == stated)
            .map_or(0.0, |o| o.share)
    });
    let found = causality.map_or("no failure", |c| c.root.as_str());
    CheckResult {
        description: format!(
            "most users' failures start at {stated} (value: the share that did; the run's root: {found})"
        ),
        value: share,
        passed: causality.is_some_and(|c| c.root == stated),
    }
}

/// Whether `value` is within the check's bounds.
pub fn holds(check: &OutcomeCheck, value: f64) -> bool {
    check.at_least.is_none_or(|lo| value >= lo - 1e-12)
        && check.at_most.is_none_or(|hi| value <= hi + 1e-12)
}

/// "users SuccessRatio over [60, 90) s ≥ 0.99".
pub fn describe(check: &OutcomeCheck) -> String {
    let bounds = match (check.at_least, check.at_most) {
        (Some(lo), Some(hi)) => format!("in [{lo}, {hi}]"),
        (Some(lo), None) => format!("≥ {lo}"),
        (None, Some(hi)) => format!("≤ {hi}"),
        (None, None) => String::new(),
    };
    format!(
        "{} {:?} over [{}, {}) s {bounds}",
        check.node, check.metric, check.from_s, check.to_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Health;

    fn row(k: u32, goodput: u64, offered: u64) -> NodeRow {
        let counters = NodeCounters {
            offered_first: offered,
            goodput,
            succeeded: goodput,
            ..Default::default()
        };
        NodeRow {
            interval: k,
            counters,
            latency_ms: [0.0; 4],
            live_instances: 3,
            health: Health::Healthy,
            gauges: Default::default(),
        }
    }

    #[test]
    fn ratios_aggregate_the_window_and_gauges_read_its_end() {
        let rows: std::collections::VecDeque<NodeRow> = (0..10)
            .map(|k| row(k, if k < 5 { 0 } else { 100 }, 100))
            .collect();
        let check = |metric, from_s, to_s| OutcomeCheck {
            node: "x".into(),
            metric,
            from_s,
            to_s,
            at_least: Some(0.5),
            at_most: None,
            why: String::new(),
        };
        let c = check(CheckMetric::SuccessRatio, 3.0, 7.0);
        assert_eq!(
            measure(&c, &rows, true, 1_000_000_000),
            Some(0.5),
            "two empty and two full intervals"
        );
        assert!(holds(&c, 0.5));
        assert_eq!(
            measure(
                &check(CheckMetric::GoodputPerS, 5.0, 10.0),
                &rows,
                true,
                1_000_000_000
            ),
            Some(100.0)
        );
        assert_eq!(
            measure(
                &check(CheckMetric::LiveInstances, 0.0, 2.0),
                &rows,
                false,
                1_000_000_000
            ),
            Some(3.0)
        );
        assert_eq!(
            measure(
                &check(CheckMetric::SuccessRatio, 8.0, 12.0),
                &rows,
                true,
                1_000_000_000
            ),
            None,
            "not covered"
        );
    }

    #[test]
    fn panic_and_work_queue_losses_are_read_at_the_window_end() {
        let rows: std::collections::VecDeque<NodeRow> = (0..4)
            .map(|k| {
                let mut r = row(k, 0, 0);
                r.gauges.panic = k == 3;
                r.gauges.expired_items = 10 * u64::from(k);
                r.gauges.dead_letters = u64::from(k);
                r
            })
            .collect();
        let at = |metric, to_s| {
            let c = OutcomeCheck {
                node: "x".into(),
                metric,
                from_s: 0.0,
                to_s,
                at_least: Some(1.0),
                at_most: None,
                why: String::new(),
            };
            measure(&c, &rows, false, 1_000_000_000)
        };
        assert_eq!(at(CheckMetric::Panic, 3.0), Some(0.0));
        assert_eq!(at(CheckMetric::Panic, 4.0), Some(1.0));
        assert_eq!(
            at(CheckMetric::ExpiredItems, 3.0),
            Some(20.0),
            "so far, at interval 2"
        );
        assert_eq!(at(CheckMetric::DeadLetters, 4.0), Some(3.0));
    }
}
