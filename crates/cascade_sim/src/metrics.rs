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

use crate::time::{Nanos, ns_to_ms};

/// How a request attempt ended, as seen by whoever reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// Answered "too many requests" (429) by a rate limit or a throttle.
    Throttled = 7,
    /// Dropped by load shedding: it waited in the queue longer than the service allows.
    Shed = 8,
    /// An optimistic-concurrency write lost to another write.
    Conflict = 9,
    /// Not sent: the caller's circuit breaker is open.
    BreakerOpen = 10,
    /// Not sent: the caller's bulkhead for this call is full.
    BulkheadFull = 11,
    /// Not sent: rejected by the caller's adaptive throttling.
    LocallyThrottled = 12,
    /// Turned away by a hard limit (connections, file descriptors).
    Overloaded = 13,
    /// Not sent: the callee's name did not resolve (a DNS failure).
    Unresolved = 14,
}

impl Outcome {
    /// Number of variants.
    pub const COUNT: usize = 15;
    /// Every variant, in discriminant order.
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Success,
        Outcome::Rejected,
        Outcome::Refused,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Expired,
        Outcome::DependencyFailed,
        Outcome::Throttled,
        Outcome::Shed,
        Outcome::Conflict,
        Outcome::BreakerOpen,
        Outcome::BulkheadFull,
        Outcome::LocallyThrottled,
        Outcome::Overloaded,
        Outcome::Unresolved,
    ];

    /// True for outcomes decided by the caller without sending (fast failures).
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Outcome::BreakerOpen
                | Outcome::BulkheadFull
                | Outcome::LocallyThrottled
                | Outcome::Unresolved
        )
    }

    /// From the discriminant (events carry outcomes as `u8`).
    #[inline]
    pub fn from_u8(v: u8) -> Outcome {
        Outcome::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(Outcome::Error)
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
            Outcome::Throttled => "throttled",
            Outcome::Shed => "shed",
            Outcome::Conflict => "conflict",
            Outcome::BreakerOpen => "breaker_open",
            Outcome::BulkheadFull => "bulkhead_full",
            Outcome::LocallyThrottled => "locally_throttled",
            Outcome::Overloaded => "overloaded",
            Outcome::Unresolved => "unresolved",
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
    /// Attempts stopped or dropped because their caller cancelled them (a service that
    /// honours cancellation): dropped on the wire or in the queue, or stopped at a worker.
    pub cancelled: u64,
    /// Attempts shed at dequeue after waiting longer than the service allows.
    pub shed: u64,
    /// Attempts answered 429 by a rate limit or throttle (no work done).
    pub throttled: u64,
    /// Attempts turned away by a hard limit (in-flight cap, latched instance).
    pub overloaded: u64,
    /// Calls (or, for sources, requests) this node failed locally without sending: breaker
    /// open, bulkhead full, adaptive throttling, or shed by the operator at a source.
    pub local_rejected: u64,
    /// Calls that failed and were replaced by the caller's fallback (served degraded).
    pub fallbacks: u64,
    /// Hedged attempts sent.
    pub hedges: u64,
    /// Completed successfully (whether or not anyone still waited).
    pub succeeded: u64,
    /// Completed with a failure, by [`Outcome`] (index = discriminant).
    pub failed: [u64; Outcome::COUNT],
    /// Attempts to this node whose caller timed out.
    pub timed_out: u64,
    /// Completions (success or failure) whose caller had already given up: wasted work.
    pub orphaned: u64,
    /// Of the orphaned, those whose caller took another copy's answer (a hedge that lost the
    /// race, a branch a quorum did without): wasted, but not a failure of this node.
    pub superseded: u64,
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
    /// ∫ busy cores dt (instances with mechanisms only).
    pub area_cpu: u128,
    /// ∫ cores of routable, live instances dt (instances with mechanisms only).
    pub area_cores: u128,
    /// Σ (σ(n) − 1) × 1000 over own work started on instances with load-dependent service
    /// time (`scaling`): with `started`, how much slower own work ran than alone.
    pub slowdown_excess_milli: u64,
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
        self.cancelled += o.cancelled;
        self.shed += o.shed;
        self.throttled += o.throttled;
        self.overloaded += o.overloaded;
        self.local_rejected += o.local_rejected;
        self.fallbacks += o.fallbacks;
        self.hedges += o.hedges;
        self.succeeded += o.succeeded;
        for (a, b) in self.failed.iter_mut().zip(o.failed.iter()) {
            *a += b;
        }
        self.timed_out += o.timed_out;
        self.orphaned += o.orphaned;
        self.superseded += o.superseded;
        self.goodput += o.goodput;
        self.residence_ns += o.residence_ns;
        self.wait_ns += o.wait_ns;
        self.started += o.started;
        self.area_queue += o.area_queue;
        self.area_in_system += o.area_in_system;
        self.area_busy += o.area_busy;
        self.area_capacity += o.area_capacity;
        self.area_cpu += o.area_cpu;
        self.area_cores += o.area_cores;
        self.slowdown_excess_milli += o.slowdown_excess_milli;
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

    /// Attempts resolved in any way: completed, rejected, refused, dropped, expired,
    /// cancelled, shed, throttled or over a limit.
    pub fn resolved(&self) -> u64 {
        self.completed()
            + self.rejected
            + self.refused
            + self.dropped
            + self.expired
            + self.cancelled
            + self.shed
            + self.throttled
            + self.overloaded
    }

    /// Share of resolved attempts that failed or were given up on by their caller, leaving
    /// out copies the caller did without ([`NodeCounters::superseded`]): what the health rule
    /// reads.
    pub fn failure_ratio(&self) -> f64 {
        let r = self.resolved().saturating_sub(self.superseded);
        if r == 0 {
            0.0
        } else {
            1.0 - self.goodput.min(r) as f64 / r as f64
        }
    }

    /// Share of resolved attempts that were not goodput.
    pub fn error_ratio(&self) -> f64 {
        let r = self.resolved();
        if r == 0 {
            0.0
        } else {
            1.0 - self.goodput.min(r) as f64 / r as f64
        }
    }

    /// Mean residence time of completions, ms.
    pub fn mean_residence_ms(&self) -> f64 {
        let c = self.completed();
        if c == 0 {
            0.0
        } else {
            self.residence_ns as f64 / c as f64 / 1e6
        }
    }

    /// Mean queue wait of attempts that reached a worker, ms.
    pub fn mean_wait_ms(&self) -> f64 {
        if self.started == 0 {
            0.0
        } else {
            self.wait_ns as f64 / self.started as f64 / 1e6
        }
    }

    /// Time-average queue length over `span_ns`.
    pub fn mean_queue(&self, span_ns: Nanos) -> f64 {
        if span_ns == 0 {
            0.0
        } else {
            self.area_queue as f64 / span_ns as f64
        }
    }

    /// Time-average number of requests in the node over `span_ns`.
    pub fn mean_in_system(&self, span_ns: Nanos) -> f64 {
        if span_ns == 0 {
            0.0
        } else {
            self.area_in_system as f64 / span_ns as f64
        }
    }

    /// Busy worker time over worker capacity time.
    pub fn utilization(&self) -> f64 {
        if self.area_capacity == 0 {
            0.0
        } else {
            self.area_busy as f64 / self.area_capacity as f64
        }
    }

    /// How many times longer own work took than it would alone, on average over the requests
    /// that reached a worker (`None` without load-dependent service time or without starts).
    pub fn mean_slowdown(&self) -> Option<f64> {
        (self.slowdown_excess_milli > 0 && self.started > 0)
            .then(|| 1.0 + self.slowdown_excess_milli as f64 / 1000.0 / self.started as f64)
    }

    /// Busy core time over core capacity time (`None` where cores are not modelled).
    pub fn cpu_utilization(&self) -> Option<f64> {
        (self.area_cores > 0).then(|| self.area_cpu as f64 / self.area_cores as f64)
    }

    /// Orphaned completions over completions.
    pub fn orphaned_ratio(&self) -> f64 {
        let c = self.completed();
        if c == 0 {
            0.0
        } else {
            self.orphaned as f64 / c as f64
        }
    }

    /// Rejected over offered.
    pub fn rejected_ratio(&self) -> f64 {
        let o = self.offered();
        if o == 0 {
            0.0
        } else {
            self.rejected as f64 / o as f64
        }
    }
}

/// A latency histogram with log-linear buckets, in microseconds.
///
/// Values below 128 µs have exact buckets; above, each power of two is split into 128 equal
/// buckets, so a bucket is at most 1/128 (0.78%) of its values wide and a quantile, reported
/// as the middle of its bucket, is within ±0.4% of the sample quantile. Counts are `u32`,
/// allocated up to the highest bucket used, and every whole-histogram operation (quantiles,
/// merge, clear) touches only the occupied range `[lowest, highest]` — so closing an
/// interval costs what it recorded, not the size of the histogram.
///
/// Why not the `hdrhistogram` crate: it was the first choice, and measured on the
/// three-tier benchmark its record path took ~57 instructions and its per-interval
/// merge/reset/quantile passes ~7,000 instructions per node, together a third of the
/// engine's per-hop budget (docs/performance.md). This is the same log-linear scheme,
/// specialised to what the engine does on every request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyHistogram {
    counts: Vec<u32>,
    /// Bit `b % 64` of word `b / 64` is set iff `counts[b] > 0`: the per-interval passes
    /// (quantiles, merge, reset) visit occupied buckets only, so a node that recorded a few
    /// requests costs a few steps, however wide their spread.
    occupied: Vec<u64>,
    total: u64,
    lowest: usize,
    highest: usize,
}

/// Sub-buckets per power of two (as a power of two).
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Largest value the histograms resolve: about 19 hours in µs; longer values are clamped.
const HIST_MAX_US: u64 = (1 << 36) - 1;

#[inline]
fn bucket_of(us: u64) -> usize {
    if us < SUB {
        us as usize
    } else {
        let exp = 63 - us.leading_zeros(); // ≥ SUB_BITS
        let shift = exp - SUB_BITS;
        ((u64::from(shift + 1) << SUB_BITS) + ((us >> shift) & (SUB - 1))) as usize
    }
}

/// `[low, high)` of a bucket, µs.
fn bucket_range(index: usize) -> (u64, u64) {
    let i = index as u64;
    if i < SUB {
        (i, i + 1)
    } else {
        let shift = (i >> SUB_BITS) - 1;
        let low = (SUB + (i & (SUB - 1))) << shift;
        (low, low + (1 << shift))
    }
}

impl LatencyHistogram {
    /// Records one latency.
    #[inline]
    pub fn record_ns(&mut self, ns: Nanos) {
        let us = (ns / 1_000).min(HIST_MAX_US);
        let b = bucket_of(us);
        if b >= self.counts.len() {
            self.grow(b);
        }
        self.counts[b] = self.counts[b].saturating_add(1);
        self.occupied[b / 64] |= 1 << (b % 64);
        if self.total == 0 {
            self.lowest = b;
            self.highest = b;
        } else {
            self.lowest = self.lowest.min(b);
            self.highest = self.highest.max(b);
        }
        self.total += 1;
    }

    /// Makes room for bucket `b`.
    fn grow(&mut self, b: usize) {
        self.counts.resize(b + 1, 0);
        self.occupied.resize(b / 64 + 1, 0);
    }

    /// The words of the occupancy bitmap that cover `lowest..=highest` (none when nothing is
    /// recorded).
    fn occupied_words(&self) -> std::ops::Range<usize> {
        if self.total == 0 {
            return 0..0;
        }
        self.lowest / 64..self.highest / 64 + 1
    }

    /// The occupied buckets, ascending.
    fn occupied_buckets(&self) -> impl Iterator<Item = usize> + '_ {
        let words = self.occupied_words();
        set_bits(&self.occupied[words.clone()], words.start)
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q`-quantile (0..=1) in ms — the middle of the bucket holding the
    /// `ceil(q · n)`-th smallest value; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.quantiles_ms([q])[0]
    }

    /// Several quantiles (ascending) in one pass over the occupied buckets, in ms.
    pub fn quantiles_ms<const N: usize>(&self, qs: [f64; N]) -> [f64; N] {
        let mut out = [0.0; N];
        if self.total == 0 {
            return out;
        }
        let targets = qs.map(|q| ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1));
        let mut next = 0;
        let mut cumulative = 0u64;
        for b in self.occupied_buckets() {
            cumulative += u64::from(self.counts[b]);
            while next < N && cumulative >= targets[next] {
                let (low, high) = bucket_range(b);
                out[next] = (low + high - 1) as f64 / 2.0 / 1e3;
                next += 1;
            }
            if next == N {
                break;
            }
        }
        out
    }

    /// Number of recorded values in buckets entirely above `ms`, plus those in the bucket
    /// holding `ms` (within one bucket of exact).
    pub fn count_above_ms(&self, ms: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let b = bucket_of(((ms * 1e3) as u64).min(HIST_MAX_US));
        let from = b.max(self.lowest);
        if from > self.highest {
            return 0;
        }
        self.counts[from..=self.highest]
            .iter()
            .map(|&c| u64::from(c))
            .sum()
    }

    /// Adds every value recorded in `other`.
    pub fn add(&mut self, other: &LatencyHistogram) {
        if other.total == 0 {
            return;
        }
        if other.highest >= self.counts.len() {
            self.grow(other.highest);
        }
        for b in other.occupied_buckets() {
            self.counts[b] = self.counts[b].saturating_add(other.counts[b]);
            self.occupied[b / 64] |= 1 << (b % 64);
        }
        if self.total == 0 {
            self.lowest = other.lowest;
            self.highest = other.highest;
        } else {
            self.lowest = self.lowest.min(other.lowest);
            self.highest = self.highest.max(other.highest);
        }
        self.total += other.total;
    }

    /// Forgets everything recorded (keeps its memory).
    pub fn clear(&mut self) {
        let words = self.occupied_words();
        for b in set_bits(&self.occupied[words.clone()], words.start) {
            self.counts[b] = 0;
        }
        self.occupied[words].fill(0);
        self.total = 0;
    }
}

/// The indices of the set bits of `words` (bit `b % 64` of word `b / 64`), ascending, the
/// first word being word number `first` of its bitmap.
fn set_bits(words: &[u64], first: usize) -> impl Iterator<Item = usize> + '_ {
    words.iter().enumerate().flat_map(move |(i, &w)| {
        let mut w = w;
        std::iter::from_fn(move || {
            (w != 0).then(|| {
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                (first + i) * 64 + bit
            })
        })
    })
}

/// Health of a service in an interval, from its own numbers (thresholds in docs/model.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
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
            return if c.offered() == 0 {
                Health::Idle
            } else {
                Health::Degraded
            };
        }
        let err = c.failure_ratio();
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
#[serde(rename_all = "snake_case")]
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
    /// Mechanism state at the end of the interval (services).
    pub gauges: Gauges,
}

/// Mechanism state of a service at the end of an interval (zero where not configured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Gauges {
    /// Instances in the load balancer's healthy set (health checks, outlier ejection,
    /// readiness); equals the serving instances without those mechanisms.
    pub healthy_instances: u32,
    /// Instances being provisioned or starting (autoscaler, restarts).
    pub starting_instances: u32,
    /// Instances in a latched failure.
    pub latched_instances: u32,
    /// Callers' circuit breakers on calls to this service that are open.
    pub breakers_open: u32,
    /// Cache warmth: share of keys cached.
    pub cache_warmth: f64,
    /// Items waiting in a work queue.
    pub queue_backlog: u64,
    /// Items dead-lettered so far (whole run).
    pub dead_letters: u64,
    /// Items dropped after their TTL so far (whole run).
    pub expired_items: u64,
    /// The service has failed over to its replica.
    pub failed_over: bool,
    /// The load balancer is in panic mode (routing to unhealthy instances).
    pub panic: bool,
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
    /// Messages lost to a partition or packet loss.
    pub lost: u64,
    /// Attempts the caller failed locally without sending (breaker, bulkhead, throttling).
    pub fast_failed: u64,
    /// Calls replaced by the caller's fallback.
    pub fallbacks: u64,
    /// Hedged attempts.
    pub hedges: u64,
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
        self.fast_failed += o.fast_failed;
        self.fallbacks += o.fallbacks;
        self.hedges += o.hedges;
    }

    /// Failed or timed-out share of resolved attempts.
    pub fn error_share(&self) -> f64 {
        let bad = self.failures + self.timeouts;
        let all = bad + self.successes;
        if all == 0 {
            0.0
        } else {
            bad as f64 / all as f64
        }
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

/// One source's new requests and goodput over one interval: what the verdict reads when it
/// judges each source on its own (`verdict: (sources: Each)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourcePoint {
    /// New client requests.
    pub offered: u64,
    /// Client requests that succeeded.
    pub goodput: u64,
}

impl SystemRow {
    /// Goodput over offered (1 when nothing was offered).
    pub fn success_ratio(&self) -> f64 {
        if self.offered == 0 {
            1.0
        } else {
            self.goodput as f64 / self.offered as f64
        }
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
    /// Each source's new requests and goodput, one point per interval (kept whole, like the
    /// system series; a source added by a live edit has zeros before it), by source index.
    pub source_series: Vec<Vec<SourcePoint>>,
    /// Where failures started, per interval (the same intervals as the rows) and in total.
    pub causes: crate::causality::CauseHistory,
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
            source_series: Vec::new(),
            causes: Default::default(),
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

    /// The rows of a node (a source or a service), if it has any.
    pub fn node_rows(&self, node: crate::engine::NodeRef) -> Option<&VecDeque<NodeRow>> {
        match node {
            crate::engine::NodeRef::Service(i) => self.services.get(i as usize),
            crate::engine::NodeRef::Source(i) => self.sources.get(i as usize),
        }
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

/// A row's latency percentiles, or `None` when nothing was recorded in its interval (rows then
/// report 0 for every percentile, which is not a latency; helper for views).
pub fn recorded_latency(latency_ms: [f64; 4]) -> Option<[f64; 4]> {
    (latency_ms != [0.0; 4]).then_some(latency_ms)
}

/// Mean of a residence sum in ms (helper for views).
pub fn mean_ms(sum_ns: u128, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        ns_to_ms((sum_ns / u128::from(count)) as Nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_with_nothing_recorded_has_no_latency() {
        assert_eq!(recorded_latency([0.0; 4]), None);
        // One recorded request below 1 µs: the bucket's middle, not nothing.
        let one = [0.0005; 4];
        assert_eq!(recorded_latency(one), Some(one));
    }

    #[test]
    fn bucket_index_and_range_agree() {
        for us in [
            0u64,
            1,
            127,
            128,
            129,
            255,
            256,
            1_000,
            65_535,
            1 << 20,
            HIST_MAX_US,
        ] {
            let (low, high) = bucket_range(bucket_of(us));
            assert!(low <= us && us < high, "{us} in [{low}, {high})");
            if us >= SUB {
                assert!(
                    (high - low) as f64 / low as f64 <= 1.0 / SUB as f64 + 1e-12,
                    "width of {us}'s bucket"
                );
            }
        }
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket_of(us);
            assert!(b >= last, "buckets are monotone in the value");
            last = b;
        }
    }

    #[test]
    fn histogram_quantiles_match_exact_order_statistics_within_half_a_bucket() {
        let mut r = crate::rng::stream(9, "hist", 0);
        let mut h = LatencyHistogram::default();
        let mut xs: Vec<u64> = (0..100_000)
            .map(|_| (crate::rng::exp1(&mut r) * 5e6) as u64 + 2_000)
            .collect();
        for &x in &xs {
            h.record_ns(x);
        }
        xs.sort_unstable();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact_ms = xs[((q * xs.len() as f64).ceil() as usize).max(1) - 1] as f64 / 1e6;
            let got = h.quantile_ms(q);
            assert!(
                (got - exact_ms).abs() <= exact_ms / SUB as f64 / 2.0 + 0.001,
                "q{q}: {got} vs {exact_ms}"
            );
        }
        let above = h.count_above_ms(20.0);
        let exact = xs.iter().filter(|&&x| x / 1000 >= 20_000).count() as u64;
        assert!(
            above >= exact && above - exact <= u64::from(h.counts[bucket_of(20_000)]),
            "count above 20 ms"
        );
    }

    #[test]
    fn merge_and_clear_keep_counts_consistent() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        for v in [1_000_000u64, 5_000_000, 9_000_000] {
            a.record_ns(v);
        }
        for v in [200_000u64, 50_000_000] {
            b.record_ns(v);
        }
        let mut total = LatencyHistogram::default();
        total.add(&a);
        total.add(&b);
        assert_eq!(total.len(), 5);
        assert!((total.quantile_ms(0.0001) - 0.2).abs() < 0.002);
        assert!((total.quantile_ms(1.0) - 50.0).abs() < 0.4);
        a.clear();
        assert!(a.is_empty());
        assert_eq!(a.quantile_ms(0.5), 0.0);
        a.record_ns(3_000_000);
        assert!(
            (a.quantile_ms(0.5) - 3.0).abs() < 0.02,
            "a cleared histogram records afresh"
        );
    }

    #[test]
    fn one_pass_quantiles_equal_single_quantiles() {
        let mut h = LatencyHistogram::default();
        let mut r = crate::rng::stream(5, "h", 0);
        for _ in 0..50_000 {
            h.record_ns((crate::rng::exp1(&mut r) * 7e6) as u64 + 1000);
        }
        let many = h.quantiles_ms(QUANTILES);
        for (i, q) in QUANTILES.iter().enumerate() {
            assert_eq!(many[i], h.quantile_ms(*q), "q{q}");
        }
    }

    #[test]
    fn health_classification_follows_the_thresholds() {
        let mut c = NodeCounters {
            offered_first: 100,
            succeeded: 100,
            goodput: 100,
            ..Default::default()
        };
        c.area_busy = 50;
        c.area_capacity = 100;
        assert_eq!(Health::classify(&c, 1), Health::Healthy);
        c.goodput = 97;
        assert_eq!(Health::classify(&c, 1), Health::Degraded, "3% errors");
        c.goodput = 40;
        assert_eq!(Health::classify(&c, 1), Health::Failing);
        c.goodput = 0;
        assert_eq!(Health::classify(&c, 1), Health::Down);
        assert_eq!(
            Health::classify(&NodeCounters::default(), 0),
            Health::Down,
            "no live instance"
        );
        assert_eq!(Health::classify(&NodeCounters::default(), 2), Health::Idle);
        // Copies the caller did without (lost hedges) are wasted but not failures: 10 of 100
        // completions orphaned that way leave the service healthy; orphaned otherwise, not.
        let raced = NodeCounters {
            offered_first: 100,
            succeeded: 100,
            goodput: 90,
            orphaned: 10,
            superseded: 10,
            area_busy: 50,
            area_capacity: 100,
            ..Default::default()
        };
        assert_eq!(raced.failure_ratio(), 0.0);
        assert!((raced.error_ratio() - 0.1).abs() < 1e-12);
        assert_eq!(Health::classify(&raced, 1), Health::Healthy);
        let abandoned = NodeCounters {
            superseded: 0,
            ..raced
        };
        assert_eq!(Health::classify(&abandoned, 1), Health::Degraded);
    }
}
