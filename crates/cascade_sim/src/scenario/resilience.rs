//! Scenario types of the resilience mechanisms: circuit breakers, adaptive throttling,
//! hedging, bulkheads, admission control, CPU cores, health checks, outlier ejection,
//! autoscaling, caches, instance lifecycle calls, work queues, optimistic concurrency,
//! failover, alerts and operator actions. Semantics in docs/model.md; field reference in
//! docs/scenario-format.md. Every mechanism is off unless configured.

use serde::{Deserialize, Serialize};

use super::{CallSpec, is_default, is_false};

macro_rules! default_fn {
    ($name:ident, $t:ty, $v:expr) => {
        fn $name() -> $t {
            $v
        }
    };
}

default_fn!(ten_s, f64, 10.0);
default_fn!(half, f64, 0.5);
default_fn!(twenty, u32, 20);
default_fn!(five_s, f64, 5.0);
default_fn!(one_u32, u32, 1);
default_fn!(two_f64, f64, 2.0);
default_fn!(two_minutes, f64, 120.0);
default_fn!(thousand_ms, f64, 1000.0);
default_fn!(three, u32, 3);
default_fn!(two_u32, u32, 2);
default_fn!(half_ms, f64, 0.5);
default_fn!(thirty_s, f64, 30.0);
default_fn!(sixty_s, f64, 60.0);
default_fn!(three_hundred_s, f64, 300.0);
default_fn!(ten_u32, u32, 10);
default_fn!(hundred_u32, u32, 100);
default_fn!(one_f64, f64, 1.0);
default_fn!(nine_tenths, f64, 0.9);
default_fn!(ten_thousand, u32, 10_000);
default_fn!(true_bool, bool, true);

/// A circuit breaker on a call (per caller instance).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    /// Rolling window of the failure share, s.
    #[serde(default = "ten_s")]
    pub window_s: f64,
    /// Failure share that opens the breaker.
    #[serde(default = "half")]
    pub error_ratio: f64,
    /// Fewest attempts in the window before the share counts.
    #[serde(default = "twenty")]
    pub min_requests: u32,
    /// Failures in a row that open it (None: only the share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// How long it stays open, s.
    #[serde(default = "five_s")]
    pub open_s: f64,
    /// Trial attempts in half-open; that many successes close it.
    #[serde(default = "one_u32")]
    pub probes: u32,
}

/// What a caller does when a call cannot be made (breaker open, throttled locally, bulkhead
/// full) or has failed after all its attempts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fallback {
    /// The request fails.
    #[default]
    Fail,
    /// The request carries on without this call (served degraded, counted as a fallback).
    Degrade,
}

/// Client-side adaptive throttling (Google SRE book, ch. 21).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveThrottleSpec {
    /// K: requests allowed per accepted request before rejecting locally.
    #[serde(default = "two_f64")]
    pub k: f64,
    /// Rolling window, s.
    #[serde(default = "two_minutes")]
    pub window_s: f64,
}

/// A token-bucket rate limit: above `rate_per_s` (after a burst) requests are answered 429.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Sustained rate, requests/s.
    pub rate_per_s: f64,
    /// Bucket size, requests.
    #[serde(default = "ten_burst")]
    pub burst: f64,
}

fn ten_burst() -> f64 {
    10.0
}

/// Admission control and load shedding of each instance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct AdmissionSpec {
    /// Drop requests that waited longer than this in the queue, ms (shed at dequeue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_wait_ms: Option<f64>,
    /// Serve newest first while more than this many wait (adaptive LIFO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifo_above: Option<u32>,
    /// Controlled delay (Facebook's variant of CoDel): shed at dequeue after `target_ms` of
    /// waiting when the queue has not been empty for `interval_ms`, else after `interval_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codel: Option<CodelSpec>,
    /// Rate limit per instance (429 above it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Most requests in an instance (queued + at workers); beyond it requests fail fast
    /// (connections, file descriptors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// An instance holding more than this many requests crashes and stays down until reset
    /// (a latched failure: out of memory, exhausted file descriptors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latch_above: Option<u32>,
    /// Its `throttled` (429) and `overloaded` answers carry a Retry-After of this many ms
    /// (HTTP's Retry-After, gRPC's server pushback): a caller that retries waits at least this
    /// long first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<f64>,
    /// Its answers for overload — `rejected` (queue full), `shed`, `throttled`, `overloaded` —
    /// say "overloaded; don't retry" (the SRE book's "Addressing Cascading Failures", gRPC's
    /// negative pushback): its callers fail the call without retrying, and a caller's request
    /// that fails because of it says so to its own caller in turn.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dont_retry: bool,
}

/// Controlled delay (Maurer, "Fail at Scale", ACM Queue 2015): a queue that has not been
/// empty for a whole `interval_ms` is a standing queue, and a request that waited more than
/// `target_ms` in it is shed when a worker would take it; a queue that emptied within the
/// last `interval_ms` absorbs a burst, shedding only after `interval_ms` of waiting.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CodelSpec {
    /// Longest wait in a standing queue, ms.
    #[serde(default = "five_ms")]
    pub target_ms: f64,
    /// How long the queue must stay non-empty to count as standing; also the longest wait
    /// otherwise, ms.
    #[serde(default = "hundred_ms")]
    pub interval_ms: f64,
}

fn five_ms() -> f64 {
    5.0
}

fn hundred_ms() -> f64 {
    100.0
}

/// Load-balancer health checks of a service's instances.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// Seconds between probes of an instance.
    #[serde(default = "five_s")]
    pub interval_s: f64,
    /// A probe not answered within this fails, ms.
    #[serde(default = "thousand_ms")]
    pub timeout_ms: f64,
    /// Failed probes in a row that eject an instance.
    #[serde(default = "three")]
    pub unhealthy_after: u32,
    /// Passed probes in a row that bring it back (and admit a new instance).
    #[serde(default = "two_u32")]
    pub healthy_after: u32,
    /// Probes wait in the instance's queue like requests (they see queueing delay); else they
    /// only check that the process is up.
    #[serde(default, skip_serializing_if = "is_false")]
    pub through_queue: bool,
    /// A probe's own work at a worker, ms.
    #[serde(default = "half_ms")]
    pub probe_ms: f64,
    /// Failed probes in a row after which a running instance is restarted (a Kubernetes
    /// liveness probe's failure threshold); None: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_after: Option<u32>,
}

/// Outlier ejection (Envoy): an instance whose error share over the window reaches the
/// threshold, or that fails `consecutive_errors` requests in a row, leaves the load balancer for
/// `eject_s`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutlierSpec {
    /// Errors in a row that eject (Envoy's consecutive 5xx; None: only the share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<u32>,
    /// Error share that ejects.
    #[serde(default = "half")]
    pub error_ratio: f64,
    /// Rolling window, s.
    #[serde(default = "ten_s")]
    pub window_s: f64,
    /// Fewest requests in the window before it counts.
    #[serde(default = "twenty")]
    pub min_requests: u32,
    /// How long an ejected instance stays out, s.
    #[serde(default = "thirty_s")]
    pub eject_s: f64,
    /// Most instances ejected at once, as a share.
    #[serde(default = "half")]
    pub max_ejected: f64,
}

/// What an autoscaler tracks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMetric {
    /// CPU utilisation (busy cores / cores).
    Cpu,
    /// Worker utilisation (busy workers / workers).
    Workers,
    /// Mean queue length per instance.
    QueueLength,
    /// Requests per second per instance.
    RequestsPerInstance,
}

/// A target-tracking autoscaler.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleSpec {
    /// Metric tracked.
    pub metric: ScaleMetric,
    /// Target value of the metric.
    pub target: f64,
    /// Evaluation period, s (the metric is averaged over it).
    #[serde(default = "sixty_s")]
    pub period_s: f64,
    /// Time after a scaling action before the next, s.
    #[serde(default = "three_hundred_s")]
    pub cooldown_s: f64,
    /// Time to provision a new instance, s.
    #[serde(default = "sixty_s")]
    pub provision_delay_s: f64,
    /// Most instances being provisioned at once (the provisioner's capacity).
    #[serde(default = "ten_u32")]
    pub max_provisioning: u32,
    /// Fewest instances.
    #[serde(default = "one_u32")]
    pub min: u32,
    /// Most instances (quota).
    #[serde(default = "hundred_u32")]
    pub max: u32,
    /// Seconds a new instance runs slow after it starts serving.
    #[serde(default, skip_serializing_if = "is_default")]
    pub warmup_s: f64,
    /// Service-time multiplier during warm-up.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub warmup_factor: f64,
    /// May remove instances.
    #[serde(default = "true_bool")]
    pub scale_in: bool,
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

/// A look-aside cache: each request asks for one key; a hit is served from the cache, a miss
/// calls the backing store and, when that call succeeds, caches the key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// The call a miss makes to the backing store (`count` is the fan-out of one miss; its
    /// timeout decides whether a slow fill still counts).
    pub backing: CallSpec,
    /// Share of requests for cacheable keys (the hit ratio of a fully warm cache); the rest
    /// ask for keys never seen again and always miss.
    #[serde(default = "nine_tenths")]
    pub max_hit_ratio: f64,
    /// Keys in the working set (requests pick one uniformly).
    #[serde(default = "ten_thousand")]
    pub keys: u32,
    /// Entries expire this long after their fill, s (None: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<f64>,
    /// Concurrent misses of one key share one backing call (single-flight).
    #[serde(default, skip_serializing_if = "is_false")]
    pub coalescing: bool,
    /// Share of keys cached when the run starts.
    #[serde(default = "one_f64")]
    pub initial_warmth: f64,
}

/// A call an instance makes periodically (heartbeat, membership or config refresh).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeriodicCallSpec {
    /// Period, s (instances are spread evenly over it).
    pub every_s: f64,
    /// The call.
    pub call: CallSpec,
    /// A failed refresh takes the instance out of the load balancer until one succeeds.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disqualify_on_failure: bool,
    /// With `disqualify_on_failure`: failed attempts in a row that take it out (1: the first).
    #[serde(default = "one_u32", skip_serializing_if = "is_one_u32")]
    pub disqualify_after: u32,
}

fn is_one_u32(v: &u32) -> bool {
    *v == 1
}

/// What happens when an instance (re)starts, and what it does periodically.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSpec {
    /// Calls made at start (config, DNS, membership, cache warm-up), in order; the instance
    /// takes traffic only once all succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_calls: Vec<CallSpec>,
    /// Periodic calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub periodic: Vec<PeriodicCallSpec>,
    /// Seconds a restarting instance is down before it starts again.
    #[serde(default, skip_serializing_if = "is_default")]
    pub restart_s: f64,
    /// Seconds it runs slow after starting.
    #[serde(default, skip_serializing_if = "is_default")]
    pub warmup_s: f64,
    /// Service-time multiplier during warm-up.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub warmup_factor: f64,
}

impl Default for LifecycleSpec {
    fn default() -> Self {
        LifecycleSpec {
            startup_calls: Vec::new(),
            periodic: Vec::new(),
            restart_s: 0.0,
            warmup_s: 0.0,
            warmup_factor: 1.0,
        }
    }
}

impl LifecycleSpec {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        *self == LifecycleSpec::default()
    }
}

/// A work queue: producers enqueue (a call to this node is acknowledged at once), consumers
/// are fed from it at a bounded concurrency.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkQueueSpec {
    /// The consuming service.
    pub consumer: String,
    /// Deliveries in flight at once.
    #[serde(default = "ten_u32")]
    pub concurrency: u32,
    /// Most deliveries started per second (None: as fast as concurrency allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    /// Items older than this are dropped instead of delivered, s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<f64>,
    /// Deliveries of an item before it is dead-lettered (or dropped).
    #[serde(default = "three")]
    pub max_deliveries: u32,
    /// Keep items that exhausted their deliveries in a dead-letter count (else just dropped).
    #[serde(default = "true_bool")]
    pub dead_letter: bool,
    /// Timeout of a delivery, ms (a timed-out delivery is re-queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
    /// One-way latency to the consumer, ms.
    #[serde(default = "one_f64")]
    pub latency_ms: f64,
}

/// Optimistic concurrency: each request reads a key's version when it arrives and writes it
/// when its own work ends; the write fails (`conflict`) if another write committed in between.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OccSpec {
    /// Keys written.
    #[serde(default = "one_u32")]
    pub keys: u32,
    /// Zipf exponent of key popularity (0: uniform; ~1: a few hot keys).
    #[serde(default, skip_serializing_if = "is_default")]
    pub zipf_s: f64,
}

/// Failover of a primary to a replica service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailoverSpec {
    /// The replica (a service that has the same callers' calls redirected to it on promotion).
    pub replica: String,
    /// Seconds the primary must look down before promotion is considered.
    #[serde(default = "ten_s")]
    pub detection_s: f64,
    /// Seconds more the outage must last before promoting (a hold-down longer than a short
    /// partition prevents a failover).
    #[serde(default, skip_serializing_if = "is_default")]
    pub hold_down_s: f64,
    /// Callers' one-way latency to the replica once promoted, ms.
    #[serde(default = "one_f64")]
    pub replica_latency_ms: f64,
}

/// A metric an alert watches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertMetric {
    /// Share of attempts that were not goodput (services) or failed requests (sources).
    ErrorRatio,
    /// Goodput over offered requests (sources and services).
    SuccessRatio,
    /// p99 latency, ms.
    P99Ms,
    /// Mean queue length.
    QueueLength,
    /// Worker utilisation.
    Utilization,
}

/// An alert: fires once the metric has been past its threshold for `for_s` seconds (the
/// detection delay), provided the monitoring node it goes through (if any) is healthy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// Name (operator steps refer to it).
    pub name: String,
    /// The node watched.
    pub node: String,
    /// What is watched.
    pub metric: AlertMetric,
    /// Fires above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Fires below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Seconds the condition must hold.
    #[serde(default = "sixty_s")]
    pub for_s: f64,
    /// A monitoring service the alert depends on: while it is not healthy the alert is blind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// When an operator step happens.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum OperatorTrigger {
    /// At this time, s.
    At(f64),
    /// When this alert fires.
    Alert(String),
}

/// What the operator does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum OperatorAction {
    /// Admit only this share of a source's requests (shed the rest at the edge).
    ShedLoad {
        /// Source.
        source: String,
        /// Share kept, in `[0, 1]`.
        keep: f64,
    },
    /// Admit at most `rate_per_s` new requests a second from a source (after a burst of
    /// `burst`): the rest fail at once, `throttled` at the edge, and are never sent.
    LimitSource {
        /// Source.
        source: String,
        /// New requests admitted per second, `> 0`.
        rate_per_s: f64,
        /// Bucket size, requests.
        #[serde(default = "ten_burst")]
        burst: f64,
    },
    /// Lift a source's limit (`LimitSource`).
    RemoveSourceLimit {
        /// Source.
        source: String,
    },
    /// Rate-limit each instance of a service to `rate_per_s` (after a burst of `burst`): above
    /// it requests are answered `throttled` (429) before any work. Replaces the service's own
    /// `admission.rate_limit` until removed.
    RateLimit {
        /// Service.
        service: String,
        /// Requests admitted per second by each instance, `> 0`.
        rate_per_s: f64,
        /// Bucket size, requests.
        #[serde(default = "ten_burst")]
        burst: f64,
    },
    /// Lift an operator's rate limit: the service's own `admission.rate_limit` again (or none).
    RemoveRateLimit {
        /// Service.
        service: String,
    },
    /// Turn retries off for the calls of a service (or every caller when `None`).
    DisableRetries {
        /// The calling service, or every caller.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
    },
    /// Restart a service's instances, `per_minute` at a time.
    RestartInstances {
        /// Service.
        service: String,
        /// Instances restarted per minute.
        per_minute: f64,
    },
    /// Set a service's instance count.
    SetInstances {
        /// Service.
        service: String,
        /// Instances.
        instances: u32,
    },
    /// Set a service's workers per instance.
    SetWorkers {
        /// Service.
        service: String,
        /// Workers.
        workers: u32,
    },
    /// End every fault.
    ClearFaults,
    /// Cancel every fault that has not started yet (a rollout halted, a change freeze).
    FreezeChanges,
    /// Reset latched instances of a service.
    ResetLatched {
        /// Service.
        service: String,
    },
    /// Pause a service's periodic calls: none starts, and those in progress make no further
    /// attempts.
    PausePeriodic {
        /// Service.
        service: String,
    },
    /// Resume a service's periodic calls, each instance at its own point of the period.
    ResumePeriodic {
        /// Service.
        service: String,
    },
    /// Pause a work queue's deliveries: items wait (and still age toward their TTL).
    PauseDeliveries {
        /// The work queue's service.
        service: String,
    },
    /// Resume a work queue's deliveries.
    ResumeDeliveries {
        /// The work queue's service.
        service: String,
    },
}

impl OperatorAction {
    /// One line describing the action.
    pub fn describe(&self) -> String {
        match self {
            OperatorAction::ShedLoad { source, keep } => {
                format!("shed {source} to {:.0}%", keep * 100.0)
            }
            OperatorAction::LimitSource {
                source, rate_per_s, ..
            } => format!("limit {source} to {rate_per_s} new requests/s"),
            OperatorAction::RemoveSourceLimit { source } => {
                format!("lift the limit on {source}")
            }
            OperatorAction::RateLimit {
                service,
                rate_per_s,
                ..
            } => format!("rate-limit {service} to {rate_per_s}/s per instance"),
            OperatorAction::RemoveRateLimit { service } => {
                format!("lift the operator's rate limit on {service}")
            }
            OperatorAction::DisableRetries { service: Some(s) } => {
                format!("disable the retries of {s}")
            }
            OperatorAction::DisableRetries { service: None } => "disable every retry".to_owned(),
            OperatorAction::RestartInstances {
                service,
                per_minute,
            } => format!("restart {service}, {per_minute} instance(s) a minute"),
            OperatorAction::SetInstances { service, instances } => {
                format!("set {service} to {instances} instance(s)")
            }
            OperatorAction::SetWorkers { service, workers } => {
                format!("set {service} to {workers} worker(s)")
            }
            OperatorAction::ClearFaults => "clear every fault".to_owned(),
            OperatorAction::FreezeChanges => {
                "freeze changes: cancel every fault not yet started".to_owned()
            }
            OperatorAction::ResetLatched { service } => {
                format!("reset the latched instances of {service}")
            }
            OperatorAction::PausePeriodic { service } => {
                format!("pause the periodic calls of {service}")
            }
            OperatorAction::ResumePeriodic { service } => {
                format!("resume the periodic calls of {service}")
            }
            OperatorAction::PauseDeliveries { service } => {
                format!("pause the deliveries of {service}")
            }
            OperatorAction::ResumeDeliveries { service } => {
                format!("resume the deliveries of {service}")
            }
        }
    }
}

/// One scripted operator step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OperatorStep {
    /// When.
    pub when: OperatorTrigger,
    /// Reaction delay after the trigger, s.
    #[serde(default, skip_serializing_if = "is_default")]
    pub after_s: f64,
    /// What.
    pub action: OperatorAction,
}

/// What a bad config push does to the instances it reaches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum PushedChange {
    /// Requests fail with this probability.
    Errors(f64),
    /// Own work this many times slower.
    Slow(f64),
    /// The instance crashes and stays down until reset.
    Latch,
    /// Own work slows with load (see [`ScalingSpec`](super::ScalingSpec)), replacing the
    /// service's own `scaling` while the push lasts: a feature that adds a lock or a channel
    /// every request must pass.
    Scaling {
        /// Share of the work serialised, in `[0, 1]`.
        #[serde(default)]
        contention: f64,
        /// Cost between each pair of requests, `≥ 0`.
        #[serde(default)]
        coherency: f64,
        /// Which requests make up `n`.
        #[serde(default)]
        counts: super::ScalingCounts,
    },
}

/// Which direction of a link a one-way partition cuts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// Requests are lost, replies pass.
    #[default]
    Requests,
    /// Replies are lost, requests pass (the callee works; the caller never hears back).
    Replies,
}
