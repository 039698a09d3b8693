//! The resilience mechanisms as the engine holds them: compiled configuration
//! ([`ServiceMech`], [`CallGuardModel`]) and runtime state ([`InstanceMech`], [`CallGuard`],
//! [`ServiceRuntime`]).
//!
//! Everything here is optional and boxed: a service, call or instance without mechanisms
//! carries a `None` and the hot path pays one branch for it. The arithmetic lives in
//! `crate::mechanisms`; what the mechanisms do to requests lives in the engine files that
//! use these types (`guard.rs`, `admission.rs`, `life.rs`, `data.rs`, `operator.rs`).

use std::collections::VecDeque;

use super::model::CallModel;
use crate::mechanisms::breaker::{Breaker, BreakerConfig};
use crate::mechanisms::cache::KeyTable;
use crate::mechanisms::health::HealthState;
use crate::mechanisms::occ::{KeyChooser, Versions};
use crate::mechanisms::rolling::Rolling;
use crate::mechanisms::scaling::Scaling;
use crate::mechanisms::throttle::{AdaptiveThrottle, TokenBucket};
use crate::rng::SimRng;
use crate::scenario::{AutoscaleSpec, ScaleMetric};
use crate::time::{NEVER, Nanos};

/// Mechanisms on one call, compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallGuardModel {
    /// Circuit breaker.
    pub breaker: Option<BreakerConfig>,
    /// Adaptive throttling: `(k, window_ns)`.
    pub throttle: Option<(f64, Nanos)>,
    /// Hedge delay (`NEVER`: no hedging).
    pub hedge_ns: Nanos,
    /// Bulkhead size (`u32::MAX`: none).
    pub max_concurrent: u32,
    /// How long a request waits for a bulkhead place before failing (0: it fails at once).
    pub bulkhead_wait_ns: Nanos,
    /// A failed call is replaced by a fallback (the request carries on).
    pub degrade: bool,
}

impl CallGuardModel {
    /// True when the call needs per-caller guard state (breaker, throttle or bulkhead).
    pub fn needs_state(&self) -> bool {
        self.breaker.is_some() || self.throttle.is_some() || self.max_concurrent != u32::MAX
    }
}

/// Per caller (instance or source) state of one guarded call.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CallGuard {
    /// Its breaker.
    pub breaker: Option<Breaker>,
    /// Its adaptive throttle.
    pub throttle: Option<AdaptiveThrottle>,
    /// Requests of this instance inside the call (bulkhead occupancy).
    pub in_call: u32,
    /// Requests waiting for a bulkhead place, oldest first: `(job, generation, token)`; an
    /// entry whose job has moved on (timed out, cancelled, crashed) is skipped.
    pub waiting: VecDeque<(u32, u32, u32)>,
}

impl CallGuard {
    /// Fresh state for a call's guards.
    pub fn new(model: Option<&CallGuardModel>) -> CallGuard {
        let Some(m) = model else {
            return CallGuard::default();
        };
        CallGuard {
            breaker: m.breaker.map(Breaker::new),
            throttle: m.throttle.map(|(k, w)| AdaptiveThrottle::new(k, w)),
            in_call: 0,
            waiting: VecDeque::new(),
        }
    }
}

/// Health checks, compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthModel {
    /// Probe period.
    pub interval_ns: Nanos,
    /// Probe timeout.
    pub timeout_ns: Nanos,
    /// Failed probes in a row that eject.
    pub unhealthy_after: u32,
    /// Passed probes in a row that bring back.
    pub healthy_after: u32,
    /// Probes wait in the queue like requests.
    pub through_queue: bool,
    /// Probe work at a worker.
    pub probe_ns: Nanos,
    /// Failed probes in a row that restart a running instance (`u32::MAX`: never).
    pub restart_after: u32,
}

/// Outlier ejection, compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutlierModel {
    /// Errors in a row that eject (0: not used).
    pub consecutive: u32,
    /// Error share that ejects.
    pub error_ratio: f64,
    /// Window.
    pub window_ns: Nanos,
    /// Fewest requests in the window.
    pub min_requests: u64,
    /// Ejection time.
    pub eject_ns: Nanos,
    /// Most instances ejected at once, as a share.
    pub max_ejected: f64,
}

/// A look-aside cache, compiled (its backing call is the service's call 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheModel {
    /// Share of requests for cacheable keys.
    pub max_hit_ratio: f64,
    /// Keys.
    pub keys: u32,
    /// TTL.
    pub ttl_ns: Option<Nanos>,
    /// Single-flight fills.
    pub coalescing: bool,
    /// Warmth at start.
    pub initial_warmth: f64,
}

/// A periodic lifecycle call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeriodicModel {
    /// Period.
    pub every_ns: Nanos,
    /// The call.
    pub call: CallModel,
    /// A failure takes the instance out of rotation until a success.
    pub disqualify: bool,
    /// Failed attempts in a row that take it out.
    pub disqualify_after: u32,
}

/// Instance lifecycle, compiled.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LifecycleModel {
    /// Calls at start, in order.
    pub startup: Vec<CallModel>,
    /// Periodic calls.
    pub periodic: Vec<PeriodicModel>,
    /// Time down when restarting.
    pub restart_ns: Nanos,
    /// Warm-up after start.
    pub warmup_ns: Nanos,
    /// Service-time factor while warming up.
    pub warmup_factor: f64,
}

/// A work queue, compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueueModel {
    /// The delivery call to the consumer.
    pub delivery: CallModel,
    /// Deliveries in flight at once.
    pub concurrency: u32,
    /// Most deliveries started per second.
    pub rate_per_s: Option<f64>,
    /// Item TTL.
    pub ttl_ns: Nanos,
    /// Deliveries per item before dead-lettering.
    pub max_deliveries: u32,
    /// Count exhausted items as dead letters (else dropped).
    pub dead_letter: bool,
}

/// Failover, compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailoverModel {
    /// Replica service index.
    pub replica: u32,
    /// Detection delay plus hold-down.
    pub promote_after_ns: Nanos,
    /// Callers' one-way latency to the replica.
    pub replica_latency_ns: Nanos,
}

/// Autoscaler, compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoscaleModel {
    /// The spec (metric, target, bounds, flags).
    pub spec: AutoscaleSpec,
    /// Evaluation period.
    pub period_ns: Nanos,
    /// Cooldown.
    pub cooldown_ns: Nanos,
    /// Provisioning delay.
    pub provision_ns: Nanos,
    /// Warm-up of new instances.
    pub warmup_ns: Nanos,
}

impl AutoscaleModel {
    /// The metric tracked.
    pub fn metric(&self) -> ScaleMetric {
        self.spec.metric
    }
}

/// Controlled delay (Maurer, "Fail at Scale", ACM Queue 2015): the longest a request put in a
/// queue at `now` may wait there. A queue that has not been empty for the last `interval` is
/// standing: `target`; else `interval`. `queue_empty` is whether the queue is empty now,
/// `nonempty_since_ns` when it last stopped being empty.
#[inline]
pub fn codel_timeout_ns(
    (target_ns, interval_ns): (Nanos, Nanos),
    queue_empty: bool,
    nonempty_since_ns: Nanos,
    now: Nanos,
) -> Nanos {
    if !queue_empty && now.saturating_sub(nonempty_since_ns) > interval_ns {
        target_ns
    } else {
        interval_ns
    }
}

/// A service's mechanisms, compiled. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceMech {
    /// Cores per instance (`u32::MAX`: not modelled).
    pub cores: u32,
    /// Load-dependent own-work time (`None`: the same at any concurrency).
    pub scaling: Option<Scaling>,
    /// Shed after this wait (`NEVER`: no shedding).
    pub max_wait_ns: Nanos,
    /// Serve newest first above this queue length (`u32::MAX`: never).
    pub lifo_above: u32,
    /// Controlled delay: `(target_ns, interval_ns)`.
    pub codel: Option<(Nanos, Nanos)>,
    /// Rate limit per instance: `(rate_per_s, burst)` (an operator's `RateLimit` replaces it).
    pub rate_limit: Option<(f64, f64)>,
    /// The scenario's own rate limit, which lifting an operator's restores.
    pub own_rate_limit: Option<(f64, f64)>,
    /// Most requests in an instance (`u32::MAX`: no limit).
    pub max_in_flight: u32,
    /// Above this many requests an instance latches (`u32::MAX`: never).
    pub latch_above: u32,
    /// The Retry-After its `throttled` and `overloaded` answers carry, ns (0: none).
    pub retry_after_ns: Nanos,
    /// Its overload answers say "don't retry" (`admission.dont_retry`).
    pub dont_retry: bool,
    /// Health checks.
    pub health: Option<HealthModel>,
    /// Panic threshold.
    pub panic_threshold: Option<f64>,
    /// Outlier ejection.
    pub outlier: Option<OutlierModel>,
    /// Autoscaler.
    pub autoscale: Option<AutoscaleModel>,
    /// Cache.
    pub cache: Option<CacheModel>,
    /// Lifecycle.
    pub lifecycle: LifecycleModel,
    /// Work queue.
    pub work_queue: Option<QueueModel>,
    /// Optimistic concurrency key choice.
    pub occ: Option<KeyChooser>,
    /// Failover.
    pub failover: Option<FailoverModel>,
}

impl ServiceMech {
    /// True when the instance set can change on its own (health, outliers, lifecycle,
    /// autoscaling), so routing must be rebuilt by the mechanisms.
    pub fn gates_routing(&self) -> bool {
        self.health.is_some() || self.outlier.is_some() || !self.lifecycle.periodic.is_empty()
    }
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LifePhase {
    /// Serving (or able to).
    #[default]
    Up,
    /// Provisioned by the autoscaler, not yet started, until the time given.
    Provisioning {
        /// When it starts.
        until_ns: Nanos,
    },
    /// Down for a restart until the time given.
    Restarting {
        /// When it starts again.
        until_ns: Nanos,
    },
    /// Making startup call `step`.
    Starting {
        /// Index of the startup call in flight.
        step: u32,
    },
}

/// Per-instance mechanism state.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InstanceMech {
    /// Guards of its calls, by call index.
    pub calls: Vec<CallGuard>,
    /// Jobs waiting for a core (cores < workers).
    pub core_queue: VecDeque<u32>,
    /// When its queue last went from empty to non-empty (controlled delay).
    pub queue_nonempty_since_ns: Nanos,
    /// Its rate limiter.
    pub limiter: Option<TokenBucket>,
    /// A throttle fault's limiter.
    pub fault_limiter: Option<TokenBucket>,
    /// Load-dependent service time a config push gave it (replaces the service's own).
    pub pushed_scaling: Option<Scaling>,
    /// Latched: down until reset.
    pub latched: bool,
    /// Health-check state.
    pub health: HealthState,
    /// A probe is out (through the queue): `(job, generation)`.
    pub probe: Option<(u32, u32)>,
    /// Outlier window (requests, errors).
    pub outlier: Option<Rolling>,
    /// Ejected by outlier detection until.
    pub ejected_until: Nanos,
    /// Errors in a row (outlier detection).
    pub error_streak: u32,
    /// Lifecycle phase.
    pub life: LifePhase,
    /// Warm-up lasts until.
    pub warm_until: Nanos,
    /// Service-time factor while warming up.
    pub warm_factor: f64,
    /// A gating periodic call failed: out of rotation until one succeeds.
    pub disqualified: bool,
    /// Incarnation: bumped at every restart so stale lifecycle events are ignored.
    pub incarnation: u32,
    /// Its health-check probe loop is running.
    pub probing: bool,
    /// The job of each periodic call's latest firing, by periodic index: a firing is skipped
    /// while the previous one is still in progress.
    pub periodic_out: Vec<(u32, u32)>,
    /// Failed attempts in a row of each gating periodic call, by periodic index.
    pub periodic_failures: Vec<u32>,
    /// Where the failure that last took it out of service started (a gating periodic call's
    /// or a startup call's failed attempt; `causality.rs` code, 0: none): what a request
    /// turned away for want of an instance fails from.
    pub out_origin: u16,
}

impl InstanceMech {
    /// True when the instance may take traffic as far as its mechanisms go: started (ready),
    /// healthy (or unchecked), not ejected, not disqualified. A latched instance stays routable,
    /// like a killed one: only health checks or outlier detection find it out.
    pub fn routable(&self, now: Nanos) -> bool {
        self.life == LifePhase::Up
            && self.health.healthy
            && self.ejected_until <= now
            && !self.disqualified
    }

    /// Started and not latched (its capacity counts).
    #[inline]
    pub fn started(&self) -> bool {
        self.life == LifePhase::Up && !self.latched
    }

    /// Service-time multiplier of warm-up at `now`.
    #[inline]
    pub fn warm_factor_at(&self, now: Nanos) -> f64 {
        if now < self.warm_until {
            self.warm_factor
        } else {
            1.0
        }
    }
}

/// A work-queue item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueItem {
    /// When it was enqueued.
    pub enqueued_ns: Nanos,
    /// Deliveries made so far.
    pub deliveries: u32,
}

/// A work queue's state.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct QueueState {
    /// Waiting items, oldest first.
    pub items: VecDeque<QueueItem>,
    /// Deliveries in flight.
    pub in_flight: u32,
    /// Delivery rate limiter.
    pub limiter: Option<TokenBucket>,
    /// A delivery retry is scheduled (rate limit wait).
    pub wake_pending: bool,
    /// Items delivered successfully (whole run).
    pub delivered: u64,
    /// Items dead-lettered (whole run).
    pub dead_letters: u64,
    /// Items dropped after their TTL (whole run).
    pub expired: u64,
    /// Deliveries paused by an operator.
    pub paused: bool,
}

/// Service-level mechanism state.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ServiceRuntime {
    /// Random stream of service-level decisions (cache flushes, key choice, deliveries).
    pub rng: Option<SimRng>,
    /// Cache entries.
    pub cache: Option<KeyTable>,
    /// Jobs waiting for a fill in flight, per key (coalescing).
    pub waiters: Vec<Vec<(u32, u32)>>,
    /// Optimistic-concurrency versions.
    pub versions: Option<Versions>,
    /// Work queue.
    pub queue: Option<QueueState>,
    /// Primary looks down since (`NEVER`: it does not).
    pub down_since: Nanos,
    /// Failed over to the replica.
    pub promoted: bool,
    /// Autoscaler: last scaling action.
    pub last_scale_ns: Option<Nanos>,
    /// Load balancer in panic mode.
    pub panic: bool,
    /// Periodic calls paused by an operator.
    pub periodic_paused: bool,
}

impl ServiceRuntime {
    /// Fresh state.
    pub fn new() -> ServiceRuntime {
        ServiceRuntime {
            down_since: NEVER,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controlled_delay_gives_the_target_only_in_a_standing_queue() {
        let ms = 1_000_000;
        let codel = (5 * ms, 100 * ms);
        // An empty queue is not standing, however long ago it last emptied.
        assert_eq!(codel_timeout_ns(codel, true, 0, 500 * ms), 100 * ms);
        // Non-empty since 0: standing only after more than the interval.
        assert_eq!(codel_timeout_ns(codel, false, 0, 100 * ms), 100 * ms);
        assert_eq!(codel_timeout_ns(codel, false, 0, 100 * ms + 1), 5 * ms);
        // It emptied at 50 ms: not standing at 120 ms.
        assert_eq!(codel_timeout_ns(codel, false, 50 * ms, 120 * ms), 100 * ms);
    }
}
