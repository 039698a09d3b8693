//! Metrics: per-node counters, latency histograms, interval rows and their history.
//!
//! The engine counts into [`NodeCounters`] and [`LatencyHistogram`]s inside each node's state
//! component; at the end of every metrics interval (default 1 s) it turns them into a
//! [`NodeRow`] per node and an [`EdgeRow`] per call link, appended to [`MetricsHistory`], and
//! adds them to whole-run totals. This module owns those types and the arithmetic that turns
//! counters into rates, ratios and percentiles; it does not decide when intervals close (the
//! engine does) or what a verdict is (`verdict.rs`).

use std::collections::VecDeque;

use bevy_ecs::prelude::*;
use serde::Serialize;

use crate::time::{ns_to_ms, Nanos};

/// How a request attempt ended, as seen by whoever reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[repr(u8)]
pub enum Outcome {
    /// Served successfully.
    Success = 0,
    /// Turned away: queue full or no instance in the load balancer.
    Rejected = 1,
    /// Connection refused by a killed instance.
    Refused = 2,
    /// The service returned an error (an error fault).
    Error = 3,
    /// The caller's timeout fired first.
    Timeout = 4,
    /// Dropped by the callee because its deadline had passed (deadline propagation).
    Expired = 5,
    /// A downstream call failed after all its attempts, so this request failed too.
    DependencyFailed = 6,
}

impl Outcome {
    /// Number of variants.
    pub const COUNT: usize = 7;
    /// Every variant, in discriminant order.
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Success,
        Outcome::Rejected,
        Outcome::Refused,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Expired,
        Outcome::DependencyFailed,
    ];

    /// From the discriminant (events carry outcomes as `u8`).
    #[inline]
    pub fn from_u8(v: u8) -> Outcome {
        Outcome::ALL.get(v as usize).copied().unwrap_or(Outcome::Error)
    }

    /// snake_case name used in CSV columns and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Rejected => "rejected",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Expired => "expired",
            Outcome::DependencyFailed => "dependency_failed",
        }
    }
}

/// Event counts and time integrals of one node over one interval (or a whole run).
///
/// For a service, "offered" counts attempts that reached it; for a source, new client
/// requests (`offered_first`) and the retries it sent (`offered_retry`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct NodeCounters {
    /// First attempts offered.
    pub offered_first: u64,
    /// Retry attempts offered.
    pub offered_retry: u64,
    /// Attempts that waited in a queue before a worker took them.
    pub queued: u64,
    /// Attempts turned away (queue full, no routable instance).
    pub rejected: u64,
    /// Attempts refused by a killed instance.
    pub refused: u64,
    /// Attempts that vanished (blackholed instance).
    pub dropped: u64,
    /// Attempts dropped at dequeue because their deadline had passed.
    pub expired: u64,
    /// Completed successfully (whether or not anyone still waited).
    pub succeeded: u64,
    /// Completed with a failure, by [`Outcome`] (index = discriminant).
    pub failed: [u64; Outcome::COUNT],
    /// Attempts to this node whose caller timed out.
    pub timed_out: u64,
    /// Completions (success or failure) whose caller had already given up: wasted work.
    pub orphaned: u64,
    /// Successes the original caller still waited for.
    pub goodput: u64,
    /// Sum of residence times of completions, ns (arrival to reply).
    pub residence_ns: u128,
    /// Sum of queue waits of attempts that reached a worker, ns.
    pub wait_ns: u128,
    /// Attempts that reached a worker.
    pub started: u64,
    /// ∫ queue length dt, ns·requests.
    pub area_queue: u128,
    /// ∫ requests in the node (queued + at a worker) dt.
    pub area_in_system: u128,
    /// ∫ busy workers dt.
    pub area_busy: u128,
    /// ∫ worker capacity of routable, live instances dt.
    pub area_capacity: u128,
}

impl NodeCounters {
    /// Adds another set of counts (interval into totals).
    pub fn add(&mut self, o: &NodeCounters) {
        self.offered_first += o.offered_first;
        self.offered_retry += o.offered_retry;
        self.queued += o.queued;
        self.rejected += o.rejected;
        self.refused += o.refused;
        self.dropped += o.dropped;
        self.expired += o.expired;
        self.succeeded += o.succeeded;
        for (a, b) in self.failed.iter_mut().zip(o.failed.iter()) {
            *a += b;
        }
        self.timed_out += o.timed_out;
        self.orphaned += o.orphaned;
        self.goodput += o.goodput;
        self.residence_ns += o.residence_ns;
        self.wait_ns += o.wait_ns;
        self.started += o.started;
        self.area_queue += o.area_queue;
        self.area_in_system += o.area_in_system;
        self.area_busy += o.area_busy;
        self.area_capacity += o.area_capacity;
    }

    /// All attempts offered.
    pub fn offered(&self) -> u64 {
        self.offered_first + self.offered_retry
    }

    /// Completions with a failure outcome.
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// Completions (success or failure) that had a worker.
    pub fn completed(&self) -> u64 {
        self.succeeded + self.failed_total()
    }

    /// Attempts resolved in any way: completed, rejected, refused, dropped or expired.
    pub fn resolved(&self) -> u64 {
        self.completed() + self.rejected + self.refused + self.dropped + self.expired
    }

    /// Share of resolved attempts that were not goodput.
    pub fn error_ratio(&self) -> f64 {
        let r = self.resolved();
        if r == 0 { 0.0 } else { 1.0 - self.goodput.min(r) as f64 / r as f64 }
    }

    /// Mean residence time of completions, ms.
    pub fn mean_residence_ms(&self) -> f64 {
        let c = self.completed();
        if c == 0 { 0.0 } else { self.residence_ns as f64 / c as f64 / 1e6 }
    }

    /// Mean queue wait of attempts that reached a worker, ms.
    pub fn mean_wait_ms(&self) -> f64 {
        if self.started == 0 { 0.0 } else { self.wait_ns as f64 / self.started as f64 / 1e6 }
    }

    /// Time-average queue length over `span_ns`.
    pub fn mean_queue(&self, span_ns: Nanos) -> f64 {
        if span_ns == 0 { 0.0 } else { self.area_queue as f64 / span_ns as f64 }
    }

    /// Time-average number of requests in the node over `span_ns`.
    pub fn mean_in_system(&self, span_ns: Nanos) -> f64 {
        if span_ns == 0 { 0.0 } else { self.area_in_system as f64 / span_ns as f64 }
    }

    /// Busy worker time over worker capacity time.
    pub fn utilization(&self) -> f64 {
        if self.area_capacity == 0 { 0.0 } else { self.area_busy as f64 / self.area_capacity as f64 }
    }

    /// Orphaned completions over completions.
    pub fn orphaned_ratio(&self) -> f64 {
        let c = self.completed();
        if c == 0 { 0.0 } else { self.orphaned as f64 / c as f64 }
    }

    /// Rejected over offered.
    pub fn rejected_ratio(&self) -> f64 {
        let o = self.offered();
        if o == 0 { 0.0 } else { self.rejected as f64 / o as f64 }
    }
}

/// A latency histogram with logarithmic buckets (HdrHistogram, 2 significant digits, µs).
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    inner: hdrhistogram::Histogram<u32>,
}

/// Largest latency the histograms resolve: one hour, in µs; longer values count as one hour.
const HIST_MAX_US: u64 = 3_600_000_000;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            inner: hdrhistogram::Histogram::new_with_bounds(1, HIST_MAX_US, 2)
                .unwrap_or_else(|e| unreachable!("constant histogram bounds are valid: {e}")),
        }
    }
}

impl LatencyHistogram {
    /// Records one latency.
    #[inline]
    pub fn record_ns(&mut self, ns: Nanos) {
        let us = (ns / 1_000).clamp(1, HIST_MAX_US);
        self.inner.saturating_record(us);
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The `q`-quantile (0..=1) in ms; 0 when empty. Reports the bucket's upper edge (the
    /// value HdrHistogram guarantees is within 1% above the true sample).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.inner.is_empty() { 0.0 } else { self.inner.value_at_quantile(q) as f64 / 1e3 }
    }

    /// Several quantiles in one call, in ms.
    pub fn quantiles_ms<const N: usize>(&self, qs: [f64; N]) -> [f64; N] {
        qs.map(|q| self.quantile_ms(q))
    }

    /// Number of recorded values above `ms` (to within the bucket resolution).
    pub fn count_above_ms(&self, ms: f64) -> u64 {
        let us = (ms * 1e3).max(1.0) as u64;
        self.inner.len() - self.inner.count_between(0, us)
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        self.inner.reset();
    }
}

/// Health of a service in an interval, from its own numbers (thresholds in docs/model.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Health {
    /// No traffic and no fault: nothing to say.
    #[default]
    Idle,
    /// Serving its callers well.
    Healthy,
    /// Serving, but with errors above 1% or a worker pool nearly full.
    Degraded,
    /// Half or more of its attempts fail.
    Failing,
    /// Every instance is killed, or nothing at all succeeds.
    Down,
}

impl Health {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Idle => "idle",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failing => "failing",
            Health::Down => "down",
        }
    }

    /// Classifies an interval: `live_instances` is how many instances are up and routable.
    pub fn classify(c: &NodeCounters, live_instances: u32) -> Health {
        let resolved = c.resolved();
        if live_instances == 0 {
            return Health::Down;
        }
        if resolved == 0 {
            return if c.offered() == 0 { Health::Idle } else { Health::Degraded };
        }
        let err = c.error_ratio();
        if c.goodput == 0 && resolved >= 10 {
            Health::Down
        } else if err >= 0.5 {
            Health::Failing
        } else if err > 0.01 || c.utilization() > 0.95 {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
}

/// Whether a row belongs to a source or a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum NodeRole {
    /// A traffic source.
    Source,
    /// A service.
    Service,
}

/// One node's metrics over one interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NodeRow {
    /// Interval number (0-based); it covers `[k·interval, (k+1)·interval)`.
    pub interval: u32,
    /// Counts and integrals.
    pub counters: NodeCounters,
    /// Latency percentiles p50, p90, p99, p99.9 in ms (residence for services, end-to-end
    /// successes for sources).
    pub latency_ms: [f64; 4],
    /// Live, routable instances at the end of the interval (services).
    pub live_instances: u32,
    /// Health classification.
    pub health: Health,
}

/// One call link's traffic over one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EdgeCounters {
    /// Attempts sent on the link (first tries and retries).
    pub attempts: u64,
    /// Of which retries.
    pub retries: u64,
    /// Replies received with success.
    pub successes: u64,
    /// Replies received with a failure.
    pub failures: u64,
    /// Attempts the caller timed out on.
    pub timeouts: u64,
    /// Messages lost to a partition.
    pub lost: u64,
}

impl EdgeCounters {
    /// Adds another set of counts.
    pub fn add(&mut self, o: &EdgeCounters) {
        self.attempts += o.attempts;
        self.retries += o.retries;
        self.successes += o.successes;
        self.failures += o.failures;
        self.timeouts += o.timeouts;
        self.lost += o.lost;
    }

    /// Failed or timed-out share of resolved attempts.
    pub fn error_share(&self) -> f64 {
        let bad = self.failures + self.timeouts;
        let all = bad + self.successes;
        if all == 0 { 0.0 } else { bad as f64 / all as f64 }
    }
}

/// One link's metrics over one interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EdgeRow {
    /// Interval number.
    pub interval: u32,
    /// Counts.
    pub counters: EdgeCounters,
}

/// Whole-system figures of one interval, for the verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SystemRow {
    /// Interval number.
    pub interval: u32,
    /// New client requests over all sources.
    pub offered: u64,
    /// Client requests that succeeded.
    pub goodput: u64,
    /// Attempts delivered to services.
    pub hops: u64,
    /// A trigger (fault or load spike) was active at some time in the interval.
    pub trigger_active: bool,
}

impl SystemRow {
    /// Goodput over offered (1 when nothing was offered).
    pub fn success_ratio(&self) -> f64 {
        if self.offered == 0 { 1.0 } else { self.goodput as f64 / self.offered as f64 }
    }
}

/// Interval rows of every node and link, and the system series.
///
/// Per-node rows are kept for the last `rows_per_node` intervals (a ring), so memory stays
/// bounded on huge graphs; the system series is kept whole.
#[derive(Resource, Debug, Clone)]
pub struct MetricsHistory {
    /// Length of an interval.
    pub interval_ns: Nanos,
    /// Rows kept per node and per link.
    pub rows_per_node: usize,
    /// Rows of each service, by service index.
    pub services: Vec<VecDeque<NodeRow>>,
    /// Rows of each source, by source index.
    pub sources: Vec<VecDeque<NodeRow>>,
    /// Rows of each link, by link index.
    pub edges: Vec<VecDeque<EdgeRow>>,
    /// One row per interval.
    pub system: Vec<SystemRow>,
}

impl Default for MetricsHistory {
    fn default() -> Self {
        MetricsHistory {
            interval_ns: 1_000_000_000,
            rows_per_node: 3600,
            services: Vec::new(),
            sources: Vec::new(),
            edges: Vec::new(),
            system: Vec::new(),
        }
    }
}

/// Total rows the history keeps across all nodes before it starts dropping old ones.
pub const HISTORY_ROW_BUDGET: usize = 4_000_000;

impl MetricsHistory {
    /// Empty history for a graph of `nodes` nodes.
    pub fn new(interval_ns: Nanos, nodes: usize) -> Self {
        MetricsHistory {
            interval_ns,
            rows_per_node: (HISTORY_ROW_BUDGET / nodes.max(1)).clamp(60, 100_000),
            ..Default::default()
        }
    }

    /// Intervals closed so far.
    pub fn intervals(&self) -> u32 {
        self.system.len() as u32
    }

    pub(crate) fn push_row<T>(rows_per_node: usize, ring: &mut VecDeque<T>, row: T) {
        if ring.len() >= rows_per_node {
            ring.pop_front();
        }
        ring.push_back(row);
    }

    /// The row of interval `k` in a ring, if still kept.
    pub fn row_at<T: HasInterval>(ring: &VecDeque<T>, k: u32) -> Option<&T> {
        let first = ring.front()?.interval();
        ring.get(k.checked_sub(first)? as usize)
    }
}

/// Rows that know their interval number.
pub trait HasInterval {
    /// The interval number.
    fn interval(&self) -> u32;
}

impl HasInterval for NodeRow {
    fn interval(&self) -> u32 {
        self.interval
    }
}

impl HasInterval for EdgeRow {
    fn interval(&self) -> u32 {
        self.interval
    }
}

/// Percentile levels reported in rows.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// Mean of a residence sum in ms (helper for views).
pub fn mean_ms(sum_ns: u128, count: u64) -> f64 {
    if count == 0 { 0.0 } else { ns_to_ms((sum_ns / u128::from(count)) as Nanos) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_one_percent() {
        let mut h = LatencyHistogram::default();
        for v in 1..=10_000u64 {
            h.record_ns(v * 1_000_000); // 1..10000 ms
        }
        for (q, exact) in [(0.5, 5000.0), (0.99, 9900.0), (0.999, 9990.0)] {
            let got = h.quantile_ms(q);
            assert!(got >= exact && got <= exact * 1.01, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.count_above_ms(9000.0), 1000, "count above is exact on bucket edges for these values");
    }

    #[test]
    fn health_classification_follows_the_thresholds() {
        let mut c = NodeCounters { offered_first: 100, succeeded: 100, goodput: 100, ..Default::default() };
        c.area_busy = 50;
        c.area_capacity = 100;
        assert_eq!(Health::classify(&c, 1), Health::Healthy);
        c.goodput = 97;
        assert_eq!(Health::classify(&c, 1), Health::Degraded, "3% errors");
        c.goodput = 40;
        assert_eq!(Health::classify(&c, 1), Health::Failing);
        c.goodput = 0;
        assert_eq!(Health::classify(&c, 1), Health::Down);
        assert_eq!(Health::classify(&NodeCounters::default(), 0), Health::Down, "no live instance");
        assert_eq!(Health::classify(&NodeCounters::default(), 2), Health::Idle);
    }
}
