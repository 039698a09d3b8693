//! The scenario file format: what a user writes, saves and loads.
//!
//! A [`Scenario`] is plain data (serde + RON): sources of traffic, services with their
//! instances, queues and calls, and scripted faults. It is the *document* that the app edits
//! and saves and that `cascade-cli` runs; the engine compiles it into its own fast tables
//! (`crate::engine`) and never reads it on the hot path.
//!
//! This module owns the types, loading (with every error reported as `path:line:col`, see
//! [`load`]), saving (atomic, see [`save_to_path`]) and semantic validation (`validate`).
//! It does not own simulation state or defaults that depend on the running world.
//!
//! Field-by-field documentation with a complete example lives in `docs/scenario-format.md`.

mod diagnostics;
mod resilience;
mod spans;
mod validate;
mod validate_mechanisms;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metrics::Outcome;

pub use diagnostics::{Diagnostic, ScenarioError};
pub use resilience::*;
pub use spans::SpanIndex;
pub use validate::{
    MAX_ATTEMPTS, MAX_BRANCHES, MAX_BURST, MAX_INSTANCES, MAX_KEYS, MAX_RATE_PER_S, MAX_SERVICES,
    validate,
};

/// The only scenario format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A complete simulation setup: topology, traffic, faults and run settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Format version; must be [`FORMAT_VERSION`].
    pub version: u32,
    /// Title shown in the scenario library.
    pub name: String,
    /// One-line description shown in the scenario library.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Seed of every random stream in the run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated length of a run, in seconds.
    pub duration_s: f64,
    /// Length of one simulation tick in milliseconds (the lookahead; every hop takes at least one).
    #[serde(default = "default_tick_ms", skip_serializing_if = "is_default_tick")]
    pub tick_ms: f64,
    /// Length of one metrics interval in seconds; a whole number of ticks.
    #[serde(
        default = "default_interval_s",
        skip_serializing_if = "is_default_interval"
    )]
    pub metrics_interval_s: f64,
    /// Publish the journey of every Nth client request for views (0 = none).
    #[serde(
        default = "default_sample_every",
        skip_serializing_if = "is_default_sample_every"
    )]
    pub sample_every: u32,
    /// Traffic sources (clients).
    pub sources: Vec<SourceSpec>,
    /// Services (everything that has instances, workers and a queue).
    pub services: Vec<ServiceSpec>,
    /// Scripted faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
    /// Alerts raised from metrics (operator steps can react to them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertSpec>,
    /// Scripted operator actions, at a time or on an alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator: Vec<OperatorStep>,
    /// Narrative shown by the app as the run reaches each step (story mode); no effect on the
    /// model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub story: Vec<StoryStep>,
    /// Settings of the run verdict rule.
    #[serde(default, skip_serializing_if = "VerdictSettings::is_default")]
    pub verdict: VerdictSettings,
    /// The outcome this scenario states in advance; checked by tests and `cascade-cli run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
}

impl Default for Scenario {
    /// An empty scenario of the current version (no nodes: not valid until some are added).
    fn default() -> Self {
        Scenario {
            version: FORMAT_VERSION,
            name: String::new(),
            description: String::new(),
            seed: default_seed(),
            duration_s: 60.0,
            tick_ms: default_tick_ms(),
            metrics_interval_s: default_interval_s(),
            sample_every: default_sample_every(),
            sources: Vec::new(),
            services: Vec::new(),
            faults: Vec::new(),
            alerts: Vec::new(),
            operator: Vec::new(),
            story: Vec::new(),
            verdict: VerdictSettings::default(),
            expect: None,
        }
    }
}

fn default_seed() -> u64 {
    1
}
fn default_tick_ms() -> f64 {
    1.0
}
fn is_default_tick(v: &f64) -> bool {
    *v == default_tick_ms()
}
fn default_interval_s() -> f64 {
    1.0
}
fn is_default_interval(v: &f64) -> bool {
    *v == default_interval_s()
}
fn default_sample_every() -> u32 {
    100
}
fn is_default_sample_every(v: &u32) -> bool {
    *v == default_sample_every()
}
fn one_f64() -> f64 {
    1.0
}
fn is_one_f64(v: &f64) -> bool {
    *v == 1.0
}
fn one_u32() -> u32 {
    1
}
fn is_one_u32(v: &u32) -> bool {
    *v == 1
}
fn is_false(v: &bool) -> bool {
    !*v
}
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A position on the app's canvas, in canvas units.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Horizontal coordinate (right is positive).
    pub x: f32,
    /// Vertical coordinate (up is positive).
    pub y: f32,
}

/// A source of client requests (users, a batch job, another company's service).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Unique node name.
    pub name: String,
    /// Name of the service this source sends requests to.
    pub target: String,
    /// Rate of new requests over time (Poisson arrivals at that rate).
    pub rate: RateProfile,
    /// Client timeout per attempt in milliseconds (`None`: wait forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
    /// What the client does when an attempt fails or times out.
    #[serde(default, skip_serializing_if = "is_default")]
    pub retry: RetryPolicy,
    /// One-way network latency to the target, in milliseconds (at least one tick).
    #[serde(default = "one_f64", skip_serializing_if = "is_one_f64")]
    pub latency_ms: f64,
    /// Standard deviation of the one-way latency, ms (0: fixed; else `|N(latency, sd)|`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub latency_sd_ms: f64,
    /// Client-side adaptive throttling of this source's attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive_throttle: Option<AdaptiveThrottleSpec>,
    /// Send a second attempt when the first has not answered within this, ms; the first reply
    /// wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge_after_ms: Option<f64>,
    /// How much its requests matter when there is not room for all: every attempt made for
    /// them, down the call graph, carries it, and priority queues serve (and keep) the most
    /// critical first.
    #[serde(default, skip_serializing_if = "is_default")]
    pub criticality: Criticality,
    /// The availability zone its clients are in (`None`: outside every zone, as users on the
    /// internet are): a zone partition cuts them off from the instances on the other side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Where the app draws this node; `None` lets it lay the graph out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// How much a request matters under overload (the criticality levels of Google's RPC stack,
/// SRE book ch. 21, "Handling Overload"), most critical first.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Criticality {
    /// Served before everything else (the requests that must not fail).
    CriticalPlus,
    /// The default: production traffic.
    #[default]
    Critical,
    /// Traffic that may be delayed or dropped before critical traffic.
    SheddablePlus,
    /// Served last and dropped first (batch jobs, prefetches).
    Sheddable,
}

impl Criticality {
    /// Every level, most critical first.
    pub const ALL: [Criticality; 4] = [
        Criticality::CriticalPlus,
        Criticality::Critical,
        Criticality::SheddablePlus,
        Criticality::Sheddable,
    ];

    /// The engine's rank: larger is more critical (3 for `CriticalPlus` … 0 for `Sheddable`).
    pub const fn rank(self) -> u8 {
        match self {
            Criticality::CriticalPlus => 3,
            Criticality::Critical => 2,
            Criticality::SheddablePlus => 1,
            Criticality::Sheddable => 0,
        }
    }
}

impl Default for SourceSpec {
    fn default() -> Self {
        SourceSpec {
            name: String::new(),
            target: String::new(),
            rate: RateProfile::Constant(1.0),
            timeout_ms: None,
            retry: RetryPolicy::default(),
            latency_ms: 1.0,
            latency_sd_ms: 0.0,
            adaptive_throttle: None,
            hedge_after_ms: None,
            criticality: Criticality::default(),
            zone: None,
            position: None,
        }
    }
}

/// How a source's request rate changes over the run. All rates are requests per second.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum RateProfile {
    /// The same rate for the whole run.
    Constant(f64),
    /// `from_per_s` until `at_s`, then `to_per_s`.
    Step {
        /// Rate before the step.
        from_per_s: f64,
        /// Rate from the step on.
        to_per_s: f64,
        /// Time of the step, in seconds.
        at_s: f64,
    },
    /// `from_per_s` until `start_s`, linear to `to_per_s` at `end_s`, then `to_per_s`.
    Ramp {
        /// Rate before the ramp.
        from_per_s: f64,
        /// Rate after the ramp.
        to_per_s: f64,
        /// Start of the ramp, in seconds.
        start_s: f64,
        /// End of the ramp, in seconds.
        end_s: f64,
    },
    /// `base_per_s`, except `peak_per_s` during `[start_s, start_s + duration_s)`.
    Spike {
        /// Rate outside the spike.
        base_per_s: f64,
        /// Rate during the spike.
        peak_per_s: f64,
        /// Start of the spike, in seconds.
        start_s: f64,
        /// Length of the spike, in seconds.
        duration_s: f64,
    },
    /// `count` requests at once at `at_s`, and none otherwise (a thundering herd, or a batch of
    /// clients that each do one thing).
    Burst {
        /// Requests sent.
        count: u32,
        /// When, in seconds.
        at_s: f64,
    },
    /// A daily (or any periodic) cycle:
    /// `mean_per_s + amplitude_per_s · cos(2π (t − peak_at_s) / period_s)`.
    Diurnal {
        /// Mean rate over a period.
        mean_per_s: f64,
        /// How far the rate swings above and below the mean (at most the mean).
        amplitude_per_s: f64,
        /// Length of one cycle, in seconds (86,400 for a day).
        period_s: f64,
        /// When the rate peaks, in seconds (and every period after).
        #[serde(default)]
        peak_at_s: f64,
    },
    /// Piecewise linear through `(time_s, rate_per_s)` points in time order: the first point's
    /// rate before it, the last one's after it. A recorded day of traffic, replayed
    /// (`cascade-cli rate-from-csv` writes one from a CSV file).
    Points(Vec<(f64, f64)>),
    /// A closed population instead of a rate: `users` users, each sending one request, waiting
    /// for its end (success, or failure after its last attempt), then thinking for an
    /// exponential time of mean `think_ms` before the next. The rate is whatever the system
    /// lets them send: at most `users` requests are ever out at once.
    Closed {
        /// Users in the population.
        users: u32,
        /// Mean think time between a request's end and the user's next request, ms.
        think_ms: f64,
        /// Mean think time after a request that failed, ms (`None`: `think_ms`): users who
        /// give up for a while, or who press reload at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        think_after_failure_ms: Option<f64>,
    },
}

impl RateProfile {
    /// The highest rate it ever sends at, requests per second (0 for a burst or a closed
    /// population, which have no rate of their own).
    pub fn peak_per_s(&self) -> f64 {
        match *self {
            RateProfile::Constant(r) => r,
            RateProfile::Step {
                from_per_s,
                to_per_s,
                ..
            }
            | RateProfile::Ramp {
                from_per_s,
                to_per_s,
                ..
            } => from_per_s.max(to_per_s),
            RateProfile::Spike {
                base_per_s,
                peak_per_s,
                ..
            } => base_per_s.max(peak_per_s),
            RateProfile::Burst { .. } | RateProfile::Closed { .. } => 0.0,
            RateProfile::Diurnal {
                mean_per_s,
                amplitude_per_s,
                ..
            } => mean_per_s + amplitude_per_s,
            RateProfile::Points(ref points) => points.iter().map(|p| p.1).fold(0.0, f64::max),
        }
    }
}

/// The visual and semantic kind of a service node. Issue-2 mechanics are the same for all
/// kinds; later mechanisms (caches, queues) key off it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum NodeKind {
    /// A generic application service.
    #[default]
    Service,
    /// An API gateway, load balancer or edge proxy.
    Gateway,
    /// A cache in front of a backing store.
    Cache,
    /// A database or other storage.
    Database,
    /// A message or work queue.
    Queue,
    /// DNS, configuration or another control plane.
    ControlPlane,
    /// Monitoring and alerting.
    Monitoring,
}

impl NodeKind {
    /// Every kind, in palette order.
    pub const ALL: [NodeKind; 7] = [
        NodeKind::Gateway,
        NodeKind::Service,
        NodeKind::Cache,
        NodeKind::Database,
        NodeKind::Queue,
        NodeKind::ControlPlane,
        NodeKind::Monitoring,
    ];

    /// Human-readable label.
    pub fn label(self) -> &'static str {
        match self {
            NodeKind::Service => "service",
            NodeKind::Gateway => "gateway",
            NodeKind::Cache => "cache",
            NodeKind::Database => "database",
            NodeKind::Queue => "queue",
            NodeKind::ControlPlane => "control plane",
            NodeKind::Monitoring => "monitoring",
        }
    }
}

/// A service: `instances` copies behind a load balancer, each with `workers` and a queue.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique node name.
    pub name: String,
    /// What kind of component this is (drawing and later mechanisms).
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: NodeKind,
    /// Number of instances behind the load balancer.
    #[serde(default = "one_u32", skip_serializing_if = "is_one_u32")]
    pub instances: u32,
    /// Concurrent requests one instance works on (threads / connections).
    pub workers: u32,
    /// The per-instance queue in front of the workers.
    #[serde(default, skip_serializing_if = "is_default")]
    pub queue: QueueSpec,
    /// Time of the service's own work per request (holds a worker).
    pub service_time: ServiceTime,
    /// How requests are spread over instances.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lb: LoadBalancer,
    /// The availability zones its instances are spread over, in turn: instance i is in
    /// `zones[i mod len]` (empty: in no zone, out of reach of zone faults).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Whether its load balancer keeps a caller's requests in the caller's zone.
    #[serde(default, skip_serializing_if = "is_default")]
    pub zone_routing: ZoneRouting,
    /// Requests carry a key and go to the instances that own it (a sharded store); `lb` is
    /// then not used for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding: Option<ShardingSpec>,
    /// Synchronous downstream calls, made after the own work, holding the worker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallSpec>,
    /// Whether the calls are made one after another (the default) or all at once.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fan_out: FanOut,
    /// Honour incoming deadlines (drop expired requests when they reach a worker) and pass
    /// this request's deadline on to downstream calls.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deadline_propagation: bool,
    /// Honour cancellation (a gRPC or Go-context server): when a caller gives up on a request
    /// (its timeout, another copy answered first, it crashed or was itself cancelled), the
    /// cancel reaches this service one link latency later. A queued request is then dropped,
    /// one waiting on a downstream call or its backoff stops (its worker is freed and that call
    /// is cancelled in turn), and own work already running finishes but makes no further call.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancellation: bool,
    /// CPU cores per instance: own work needs a core as well as a worker; waiting on a call
    /// holds only the worker. `None`: as many cores as workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// Own work slows as more requests work at once on an instance (Universal Scalability
    /// Law): `None` is the same speed at any concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingSpec>,
    /// Admission control, load shedding and hard limits of each instance.
    #[serde(default, skip_serializing_if = "is_default")]
    pub admission: AdmissionSpec,
    /// Load-balancer health checks of the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// Route to every instance when fewer than this share pass health checks (Envoy's panic
    /// threshold), e.g. 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_threshold: Option<f64>,
    /// Eject instances with a high error share from the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_ejection: Option<OutlierSpec>,
    /// Target-tracking autoscaler of the instance count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<AutoscaleSpec>,
    /// This service is a look-aside cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSpec>,
    /// Calls at (re)start, periodic calls, restart time and warm-up.
    #[serde(default, skip_serializing_if = "LifecycleSpec::is_empty")]
    pub lifecycle: LifecycleSpec,
    /// This service is an asynchronous work queue feeding a consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_queue: Option<WorkQueueSpec>,
    /// Requests write a shared key with optimistic concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occ: Option<OccSpec>,
    /// Promote a replica when this service is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverSpec>,
    /// Where the app draws this node; `None` lets it lay the graph out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

impl ServiceSpec {
    /// The calls a request sends when every call fires, `count` copies each: of all its calls,
    /// or only of those to `to` (with a parallel fan-out, its branches).
    pub fn calls_sent(&self, to: Option<&str>) -> u64 {
        self.calls
            .iter()
            .filter(|c| to.is_none_or(|t| c.to == t))
            .map(|c| u64::from(c.count))
            .sum()
    }
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            name: String::new(),
            kind: NodeKind::default(),
            instances: 1,
            workers: 1,
            queue: QueueSpec::default(),
            service_time: ServiceTime::Exponential { mean_ms: 10.0 },
            lb: LoadBalancer::default(),
            zones: Vec::new(),
            zone_routing: ZoneRouting::AllZones,
            sharding: None,
            calls: Vec::new(),
            fan_out: FanOut::default(),
            deadline_propagation: false,
            cancellation: false,
            cores: None,
            scaling: None,
            admission: AdmissionSpec::default(),
            health_check: None,
            panic_threshold: None,
            outlier_ejection: None,
            autoscale: None,
            cache: None,
            lifecycle: LifecycleSpec::default(),
            work_queue: None,
            occ: None,
            failover: None,
            position: None,
        }
    }
}

/// How a service's own work slows with concurrency (Gunther's Universal Scalability Law): a
/// request that starts its own work while `n` requests (itself included) work on its instance
/// (or, with `counts: Present`, are at it) takes `1 + contention·(n − 1) + coherency·n·(n − 1)`
/// times its sampled time.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ScalingSpec {
    /// Share of the work that is serialised (locks, one shared resource), in `[0, 1]`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub contention: f64,
    /// Cost of keeping each pair of concurrent requests coherent (cache lines, garbage
    /// collection, coordination), `≥ 0`: above `√((1 − contention)/coherency)` requests at
    /// once, throughput falls.
    #[serde(default, skip_serializing_if = "is_default")]
    pub coherency: f64,
    /// Which requests make up `n`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub counts: ScalingCounts,
}

/// The requests whose number slows own work (`n` of [`ScalingSpec`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScalingCounts {
    /// Requests in their own work on the instance (CPU, locks, caches): at most `cores`, or
    /// `workers` without it.
    #[default]
    Working,
    /// Every request at the instance, waiting in its queue or holding a worker (memory: a heap
    /// that grows with the backlog and the garbage collection it costs; a lock's waiters).
    Present,
}

/// Key-based routing: each request to the service carries one of `keys` keys, drawn when its
/// caller first calls the service (retries and hedges of the call keep it), Zipf-distributed
/// with exponent `zipf_s` (uniform when 0). Key k belongs to the instances of ordinals
/// k mod n, (k + 1) mod n, …, `replicas` of them (n the configured instances).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShardingSpec {
    /// Number of keys.
    pub keys: u32,
    /// Zipf exponent of key popularity (0: every key alike; 1: the classic hot-key skew).
    #[serde(default, skip_serializing_if = "is_default")]
    pub zipf_s: f64,
    /// Instances holding each key; attempt a of a call goes to the (a − 1)-th of them (mod
    /// `replicas`), or the next that the load balancer can route to.
    #[serde(default = "one_u32", skip_serializing_if = "is_one_u32")]
    pub replicas: u32,
}

/// The queue of one instance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Maximum number of waiting requests (not counting those at a worker); `None` is unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Which waiting request a free worker takes.
    #[serde(default, skip_serializing_if = "is_default")]
    pub discipline: QueueDiscipline,
}

/// Order in which waiting requests are served.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QueueDiscipline {
    /// First in, first out.
    #[default]
    Fifo,
    /// Last in, first out (newest first).
    Lifo,
    /// By the requests' criticality, most critical first, oldest first within a level; when
    /// the queue is full, an arrival pushes out the newest of the least critical waiting
    /// requests if they matter less than it.
    Priority,
    /// Earliest deadline first: by the time each request's caller gives up on it (its call's
    /// timeout, or the propagated deadline when shorter), oldest first among equal deadlines;
    /// requests without one (health probes, calls without a timeout) last.
    Deadline,
}

/// Distribution of a service's own work time per request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum ServiceTime {
    /// Exponential with the given mean.
    Exponential {
        /// Mean in milliseconds.
        mean_ms: f64,
    },
    /// Always the same time.
    Deterministic {
        /// The time in milliseconds.
        ms: f64,
    },
    /// Log-normal with the given mean and shape `sigma` (standard deviation of the log).
    LogNormal {
        /// Mean in milliseconds.
        mean_ms: f64,
        /// Standard deviation of `ln(time)`.
        sigma: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound in milliseconds.
        min_ms: f64,
        /// Upper bound in milliseconds.
        max_ms: f64,
    },
    /// `|N(mean, sd)|`: normal, folded at zero (a good fit for a network round trip).
    Normal {
        /// Mean of the normal in milliseconds.
        mean_ms: f64,
        /// Standard deviation in milliseconds.
        sd_ms: f64,
    },
}

impl ServiceTime {
    /// Mean service time in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        match *self {
            ServiceTime::Exponential { mean_ms } | ServiceTime::LogNormal { mean_ms, .. } => {
                mean_ms
            }
            ServiceTime::Deterministic { ms } => ms,
            ServiceTime::Uniform { min_ms, max_ms } => 0.5 * (min_ms + max_ms),
            ServiceTime::Normal { mean_ms, sd_ms } => {
                crate::dist::folded_normal_mean(mean_ms, sd_ms)
            }
        }
    }
}

/// Load-balancing policy in front of a service's instances.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadBalancer {
    /// Each instance in turn.
    #[default]
    RoundRobin,
    /// A uniformly random instance.
    Random,
    /// The instance with the fewest requests in it (ties: the next in turn).
    LeastOutstanding,
    /// Two random instances; the one with fewer requests in it.
    PowerOfTwoChoices,
}

/// How a service makes its calls after its own work.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanOut {
    /// One at a time, in list order: each call (its retries included) ends before the next
    /// starts, and the first that fails fails the request.
    #[default]
    Sequential,
    /// Every call whose probability fires is sent at once (`count` copies of it as separate
    /// branches); the request goes on when all have succeeded and fails as soon as one fails.
    Parallel,
    /// As `Parallel`, but the request goes on once this many branches have succeeded (all of
    /// them when fewer fired) and fails as soon as that can no longer happen; the branches
    /// still out are abandoned (their work is orphaned).
    Quorum(u32),
}

impl FanOut {
    /// Branches whose success the request needs, of `fired` sent.
    pub fn needed(self, fired: u32) -> u32 {
        match self {
            FanOut::Quorum(k) => k.min(fired),
            FanOut::Sequential | FanOut::Parallel => fired,
        }
    }
}

/// A synchronous call from a service to another, made after the caller's own work.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// Name of the called service.
    pub to: String,
    /// Probability that a request makes this call at all.
    #[serde(default = "one_f64", skip_serializing_if = "is_one_f64")]
    pub probability: f64,
    /// How many times (one after another) a request makes this call when it makes it.
    #[serde(default = "one_u32", skip_serializing_if = "is_one_u32")]
    pub count: u32,
    /// Per-attempt timeout in milliseconds (`None`: wait forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
    /// What the caller does when an attempt fails or times out.
    #[serde(default, skip_serializing_if = "is_default")]
    pub retry: RetryPolicy,
    /// One-way network latency of this call, in milliseconds (at least one tick).
    #[serde(default = "one_f64", skip_serializing_if = "is_one_f64")]
    pub latency_ms: f64,
    /// Standard deviation of the one-way latency, ms (0: fixed; else `|N(latency, sd)|`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub latency_sd_ms: f64,
    /// Circuit breaker of this call, per caller instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerSpec>,
    /// What the request does when this call cannot be made or has failed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fallback: Fallback,
    /// Client-side adaptive throttling of this call, per caller instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive_throttle: Option<AdaptiveThrottleSpec>,
    /// Send a second attempt when the first has not answered within this, ms; the first reply
    /// wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge_after_ms: Option<f64>,
    /// Bulkhead: most of one instance's workers that may be in this call at once; a request
    /// that would exceed it fails fast (or falls back) instead of taking another worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// With `max_concurrent`: a request that finds the bulkhead full waits up to this long for
    /// a place, in arrival order and holding its worker, before it fails (a connection pool's
    /// acquire timeout; Resilience4j's `maxWaitDuration`), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulkhead_wait_ms: Option<f64>,
}

impl Default for CallSpec {
    fn default() -> Self {
        CallSpec {
            to: String::new(),
            probability: 1.0,
            count: 1,
            timeout_ms: None,
            retry: RetryPolicy::default(),
            latency_ms: 1.0,
            latency_sd_ms: 0.0,
            breaker: None,
            fallback: Fallback::default(),
            adaptive_throttle: None,
            hedge_after_ms: None,
            max_concurrent: None,
            bulkhead_wait_ms: None,
        }
    }
}

/// Retry behaviour of a caller. `max_attempts` counts every try: 3 means one try and two retries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total tries per call, first attempt included (1 = no retries).
    #[serde(default = "one_u32")]
    pub max_attempts: u32,
    /// Delay before each retry.
    #[serde(default, skip_serializing_if = "is_default")]
    pub backoff: Backoff,
    /// Randomisation of the backoff delay.
    #[serde(default, skip_serializing_if = "is_default")]
    pub jitter: Jitter,
    /// Limit on retries as a share of first attempts (token bucket), per caller instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RetryBudgetSpec>,
    /// The failures worth another try; empty (the default): every failure.
    #[serde(default, skip_serializing_if = "Failures::is_empty")]
    pub retry_on: Failures,
    /// Probability of trying again after each failed attempt that may be retried (1: always,
    /// while attempts are left); a caller that does not gives up, with that attempt's failure.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub persistence: f64,
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::None,
            jitter: Jitter::None,
            budget: None,
            retry_on: Failures::default(),
            persistence: 1.0,
        }
    }
}

/// How an attempt can fail, as a caller sees it (`retry_on` names them).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No reply before the caller's timeout (a slow or lost attempt).
    Timeout,
    /// An error reply (5xx).
    Error,
    /// Turned away: the queue was full or no instance was routable (503).
    Rejected,
    /// Connection refused by a dead instance.
    Refused,
    /// "Too many requests" (429) from a rate limit or a throttle.
    Throttled,
    /// Turned away by a hard limit (connections).
    Overloaded,
    /// Shed after waiting too long in the queue.
    Shed,
    /// Dropped because its deadline had passed.
    Expired,
    /// The callee's own dependency failed.
    DependencyFailed,
    /// An optimistic-concurrency write lost to another.
    Conflict,
    /// Not sent: the callee's name did not resolve (a `DnsFailure`).
    Unresolved,
}

impl Failure {
    /// Every failure, in the order `retry_on` lists are written.
    pub const ALL: [Failure; 11] = [
        Failure::Timeout,
        Failure::Error,
        Failure::Rejected,
        Failure::Refused,
        Failure::Throttled,
        Failure::Overloaded,
        Failure::Shed,
        Failure::Expired,
        Failure::DependencyFailed,
        Failure::Conflict,
        Failure::Unresolved,
    ];

    /// The attempt outcome it stands for.
    pub fn outcome(self) -> Outcome {
        match self {
            Failure::Timeout => Outcome::Timeout,
            Failure::Error => Outcome::Error,
            Failure::Rejected => Outcome::Rejected,
            Failure::Refused => Outcome::Refused,
            Failure::Throttled => Outcome::Throttled,
            Failure::Overloaded => Outcome::Overloaded,
            Failure::Shed => Outcome::Shed,
            Failure::Expired => Outcome::Expired,
            Failure::DependencyFailed => Outcome::DependencyFailed,
            Failure::Conflict => Outcome::Conflict,
            Failure::Unresolved => Outcome::Unresolved,
        }
    }
}

/// A set of [`Failure`]s, written as a list (`[Timeout, Refused]`): one bit per
/// [`Outcome`] discriminant, the mask the engine tests failed attempts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Failures(u32);

impl Failures {
    /// The set of `list`.
    pub fn of(list: &[Failure]) -> Failures {
        Failures(list.iter().fold(0, |m, &f| m | Failures::bit(f)))
    }

    fn bit(f: Failure) -> u32 {
        1 << (f.outcome() as u32)
    }

    /// The set as a mask of [`Outcome`] bits (bit `o as u32` for outcome `o`).
    pub fn outcome_mask(self) -> u32 {
        self.0
    }

    /// True for the empty set.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// True if `f` is in the set.
    pub fn contains(self, f: Failure) -> bool {
        self.0 & Failures::bit(f) != 0
    }

    /// Adds or removes `f`.
    pub fn set(&mut self, f: Failure, on: bool) {
        if on {
            self.0 |= Failures::bit(f);
        } else {
            self.0 &= !Failures::bit(f);
        }
    }

    /// The members, in [`Failure::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Failure> {
        Failure::ALL.into_iter().filter(move |&f| self.contains(f))
    }
}

impl Serialize for Failures {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Failures {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Failures::of(&Vec::<Failure>::deserialize(deserializer)?))
    }
}

/// Delay before a retry, before jitter.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub enum Backoff {
    /// Retry at once.
    #[default]
    None,
    /// The same delay before every retry.
    Constant {
        /// Delay in milliseconds.
        delay_ms: f64,
    },
    /// `min(cap, base * 2^(n-1))` before retry `n` (n = 1 for the first retry).
    Exponential {
        /// Delay before the first retry, in milliseconds.
        base_ms: f64,
        /// Largest delay, in milliseconds.
        cap_ms: f64,
    },
    /// A delay drawn afresh before each retry from the exponential distribution with this
    /// mean: memoryless, like users who come back at random (a retrial queue's orbit).
    Random {
        /// Mean delay in milliseconds.
        mean_ms: f64,
    },
}

/// Randomisation of backoff delays (Brooker, "Exponential Backoff And Jitter", 2015).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Jitter {
    /// The delay as computed.
    #[default]
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// `delay/2 + uniform(0, delay/2)`.
    Equal,
    /// `min(cap, uniform(base, previous * 3))`; needs exponential backoff (its base and cap).
    Decorrelated,
}

/// A retry budget: each first attempt adds `ratio` tokens (up to `max_tokens`), each retry
/// spends one; a retry without a whole token is not sent and the call fails.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryBudgetSpec {
    /// Retries allowed per first attempt, e.g. 0.1 for 10%.
    pub ratio: f64,
    /// Bucket size (and initial fill), in retries.
    #[serde(default = "default_budget_tokens")]
    pub max_tokens: f64,
}

fn default_budget_tokens() -> f64 {
    10.0
}

/// One step of a scenario's story: a few sentences the app shows from `at_s` on (until the
/// next step), optionally pausing the run there so the reader can look.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoryStep {
    /// When it appears, seconds from the start of the run.
    pub at_s: f64,
    /// What to say.
    pub text: String,
    /// Pause the run when it reaches `at_s` (the reader presses Play to go on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause: bool,
}

/// A scripted fault: what breaks, when, and for how long.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Start time in seconds from the start of the run.
    pub at_s: f64,
    /// How long it lasts in seconds; `None` lasts until cleared or the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// What happens.
    pub fault: FaultKind,
}

/// Which instances of a service a fault hits.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InstanceSelector {
    /// Every instance.
    #[default]
    All,
    /// The first `n` instances.
    First(u32),
}

/// How a killed instance behaves towards requests sent to it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KillMode {
    /// Connection refused: the caller gets an error at once (one network hop later).
    #[default]
    Refuse,
    /// Silence: requests and in-flight work vanish; callers wait for their timeouts.
    Blackhole,
}

/// The kinds of fault, each with its target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum FaultKind {
    /// Instances crash: queued and in-progress work is lost; new requests are refused or vanish.
    Kill {
        /// Target service.
        service: String,
        /// Which instances.
        #[serde(default, skip_serializing_if = "is_default")]
        instances: InstanceSelector,
        /// Refuse fast or blackhole.
        #[serde(default, skip_serializing_if = "is_default")]
        mode: KillMode,
    },
    /// Own work takes `factor` times longer (work started during the fault).
    Slow {
        /// Target service.
        service: String,
        /// Which instances.
        #[serde(default, skip_serializing_if = "is_default")]
        instances: InstanceSelector,
        /// Multiplier on service time (> 0).
        factor: f64,
    },
    /// A fixed delay added to each request's own work (a slow disk, a lock).
    Latency {
        /// Target service.
        service: String,
        /// Which instances.
        #[serde(default, skip_serializing_if = "is_default")]
        instances: InstanceSelector,
        /// Added time in milliseconds.
        added_ms: f64,
    },
    /// Extra one-way network latency on a link, both directions.
    LinkLatency {
        /// Calling node (source or service).
        from: String,
        /// Called service.
        to: String,
        /// Added one-way latency in milliseconds.
        added_ms: f64,
    },
    /// Requests fail with an error after their own work, with this probability.
    Errors {
        /// Target service.
        service: String,
        /// Which instances.
        #[serde(default, skip_serializing_if = "is_default")]
        instances: InstanceSelector,
        /// Probability in `[0, 1]`.
        probability: f64,
    },
    /// Capacity reduced: fewer workers or CPU cores per instance and/or fewer instances in the
    /// load balancer.
    CapacityCut {
        /// Target service.
        service: String,
        /// Workers left per instance, if cut.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workers: Option<u32>,
        /// CPU cores left per instance, if cut (a noisy neighbour, a CPU quota, a host that
        /// lost cores): own work waits for one of them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cores: Option<u32>,
        /// Instances left in the load balancer, if cut (the others drain and take no traffic).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instances: Option<u32>,
    },
    /// A network partition on a link: requests and replies on it are lost.
    Partition {
        /// Calling node (source or service).
        from: String,
        /// Called service.
        to: String,
    },
    /// A source sends `factor` times its rate.
    LoadSpike {
        /// Target source.
        source: String,
        /// Multiplier on the source's rate (> 0).
        factor: f64,
    },
    /// A share of a cache's entries is dropped at once (instantaneous).
    CacheFlush {
        /// The cache service.
        service: String,
        /// Share of cached keys dropped, in `(0, 1]`.
        #[serde(default = "one_f64", skip_serializing_if = "is_one_f64")]
        share: f64,
    },
    /// Every cached entry expires within the next `within_s` seconds (entries filled together
    /// expire together; instantaneous).
    TtlStorm {
        /// The cache service.
        service: String,
        /// Spread of the expiries, s.
        within_s: f64,
    },
    /// Instances restart: they drop their work, stay down for the lifecycle's `restart_s`, make
    /// their startup calls and warm up (instantaneous; the restart itself takes its course).
    Restart {
        /// Target service.
        service: String,
        /// Which instances.
        #[serde(default, skip_serializing_if = "is_default")]
        instances: InstanceSelector,
        /// Restarts are spread evenly over this many seconds (0: all at once).
        #[serde(default, skip_serializing_if = "is_default")]
        spread_s: f64,
    },
    /// A bad configuration reaches a share of a service's instances, one after another over
    /// `propagation_s`; when the fault ends it is rolled back.
    ConfigPush {
        /// Target service.
        service: String,
        /// Share of instances it reaches, in `(0, 1]`.
        #[serde(default = "one_f64", skip_serializing_if = "is_one_f64")]
        share: f64,
        /// Seconds from the first instance to the last.
        #[serde(default, skip_serializing_if = "is_default")]
        propagation_s: f64,
        /// What it does to an instance.
        change: PushedChange,
    },
    /// Instances fail into a latched state (crashed, or wedged on an exhausted resource) that
    /// only a reset clears (instantaneous).
    LatchedFailure {
        /// Target service.
        service: String,
        /// Which instances.
        #[serde(default, skip_serializing_if = "is_default")]
        instances: InstanceSelector,
    },
    /// Instances cut off from the network (a network segment down, a host whose switch port
    /// failed): requests sent to them vanish, and everything they send (replies and their own
    /// calls) is lost; they keep running and keep their work.
    Isolate {
        /// Target service.
        service: String,
        /// Which instances.
        #[serde(default, skip_serializing_if = "is_default")]
        instances: InstanceSelector,
    },
    /// Each message on a link (requests and replies) is lost with this probability.
    PacketLoss {
        /// Calling node (source or service).
        from: String,
        /// Called service.
        to: String,
        /// Loss probability in `[0, 1]`.
        probability: f64,
    },
    /// One direction of a link is cut.
    OneWayPartition {
        /// Calling node (source or service).
        from: String,
        /// Called service.
        to: String,
        /// Which direction is lost.
        #[serde(default, skip_serializing_if = "is_default")]
        direction: Direction,
    },
    /// A group partition: every link between a node of `group` and a node of `others` (by
    /// default every node not in `group`) is cut both ways, as a `Partition` of each such link
    /// would cut it; each side still works within itself (a data centre or region cut off from
    /// the rest, a network split). Covers the links that exist when it starts.
    GroupPartition {
        /// The nodes (services and sources) on one side.
        group: Vec<String>,
        /// The nodes on the other side (empty: every node not in `group`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        others: Vec<String>,
    },
    /// The service answers `throttled` (HTTP 429) above this rate, per instance (a provider's
    /// throttle or quota), before any work. A token bucket with a tenth of a second of burst.
    Throttle {
        /// Target service.
        service: String,
        /// Sustained rate per instance, requests/s.
        rate_per_s: f64,
    },
    /// Queries of death: while the fault is active, `share` of the new requests of `source`
    /// (or of every source) carry a poison that crashes the instance of `service` that starts
    /// working on them: it restarts (the lifecycle's `restart_s`) and loses all it holds.
    /// Retries carry the poison to the next instance.
    QueryOfDeath {
        /// The service that crashes on them.
        service: String,
        /// Share of new requests that are poisoned, in `(0, 1]`.
        share: f64,
        /// The source that sends them (`None`: every source).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// The service's name stops resolving (its DNS record is gone or the resolvers fail):
    /// each caller goes on with the address it has cached until that entry's `ttl_s` runs
    /// out, then its calls fail without being sent (`unresolved`). A caller's entry was
    /// filled at a random moment before, so the entries run out spread over `ttl_s`; an
    /// instance that starts during the fault has none. Covers the calls that exist when it
    /// starts.
    DnsFailure {
        /// The service whose name fails.
        service: String,
        /// How long callers cache a resolved address, s (0: no caching, every call fails at
        /// once).
        #[serde(default, skip_serializing_if = "is_default")]
        ttl_s: f64,
    },
    /// A whole availability zone fails (power, cooling, its network): every instance of every
    /// service in `zone` is down, as a `Kill` of each would take it down.
    ZoneOutage {
        /// The zone (a name of services' `zones`).
        zone: String,
        /// Refuse fast or blackhole.
        #[serde(default, skip_serializing_if = "is_default")]
        mode: KillMode,
    },
    /// The zones of `zones` are cut off from every other zone: a request or reply between an
    /// instance in one of them and an instance in another zone is lost, both ways; traffic
    /// inside each side, and with nodes in no zone (sources, zone-less services), still
    /// flows.
    ZonePartition {
        /// The zones on one side.
        zones: Vec<String>,
    },
}

impl FaultKind {
    /// Short human-readable name of the kind.
    pub fn label(&self) -> &'static str {
        match self {
            FaultKind::Kill { .. } => "kill",
            FaultKind::Slow { .. } => "slow",
            FaultKind::Latency { .. } => "latency",
            FaultKind::LinkLatency { .. } => "link latency",
            FaultKind::Errors { .. } => "errors",
            FaultKind::CapacityCut { .. } => "capacity cut",
            FaultKind::Partition { .. } => "partition",
            FaultKind::LoadSpike { .. } => "load spike",
            FaultKind::CacheFlush { .. } => "cache flush",
            FaultKind::TtlStorm { .. } => "TTL storm",
            FaultKind::Restart { .. } => "restart",
            FaultKind::ConfigPush { .. } => "config push",
            FaultKind::LatchedFailure { .. } => "latched failure",
            FaultKind::Isolate { .. } => "isolation",
            FaultKind::PacketLoss { .. } => "packet loss",
            FaultKind::OneWayPartition { .. } => "one-way partition",
            FaultKind::GroupPartition { .. } => "group partition",
            FaultKind::Throttle { .. } => "throttle",
            FaultKind::QueryOfDeath { .. } => "query of death",
            FaultKind::DnsFailure { .. } => "DNS failure",
            FaultKind::ZoneOutage { .. } => "zone outage",
            FaultKind::ZonePartition { .. } => "zone partition",
        }
    }

    /// The node the fault is attached to (the caller for link faults, the first node of a
    /// group partition's group).
    pub fn target_node(&self) -> &str {
        match self {
            FaultKind::Kill { service, .. }
            | FaultKind::Slow { service, .. }
            | FaultKind::Latency { service, .. }
            | FaultKind::Errors { service, .. }
            | FaultKind::CapacityCut { service, .. }
            | FaultKind::CacheFlush { service, .. }
            | FaultKind::TtlStorm { service, .. }
            | FaultKind::Restart { service, .. }
            | FaultKind::ConfigPush { service, .. }
            | FaultKind::LatchedFailure { service, .. }
            | FaultKind::Isolate { service, .. }
            | FaultKind::Throttle { service, .. }
            | FaultKind::QueryOfDeath { service, .. }
            | FaultKind::DnsFailure { service, .. } => service,
            FaultKind::LinkLatency { from, .. }
            | FaultKind::Partition { from, .. }
            | FaultKind::PacketLoss { from, .. }
            | FaultKind::OneWayPartition { from, .. } => from,
            FaultKind::LoadSpike { source, .. } => source,
            FaultKind::GroupPartition { group, .. } => group.first().map_or("", String::as_str),
            // Zone faults name zones, not nodes.
            FaultKind::ZoneOutage { .. } | FaultKind::ZonePartition { .. } => "",
        }
    }

    /// Human-readable target: `db`, `api → db` for a link, `east-api, east-db ↮ the rest`
    /// (or `↮ west-api`) for a group partition.
    pub fn target_label(&self) -> String {
        match self {
            FaultKind::ZoneOutage { zone, .. } => format!("zone {zone}"),
            FaultKind::ZonePartition { zones } => {
                format!("zone {} ↮ the other zones", zones.join(", "))
            }
            FaultKind::GroupPartition { group, others } => {
                let rest = if others.is_empty() {
                    "the rest".to_owned()
                } else {
                    others.join(", ")
                };
                format!("{} ↮ {rest}", group.join(", "))
            }
            _ => match self.link_target() {
                Some(to) => format!("{} → {to}", self.target_node()),
                None => self.target_node().to_owned(),
            },
        }
    }

    /// True if the fault names node `name` (as its target, a link's end, or a member of a
    /// group partition's sides).
    pub fn names_node(&self, name: &str) -> bool {
        match self {
            FaultKind::ZoneOutage { .. } | FaultKind::ZonePartition { .. } => false,
            FaultKind::GroupPartition { group, others } => {
                group.iter().chain(others).any(|n| n == name)
            }
            _ => self.target_node() == name || self.link_target() == Some(name),
        }
    }

    /// Every node the fault names, in the order it names them.
    pub fn named_nodes(&self) -> Vec<&str> {
        match self {
            FaultKind::ZoneOutage { .. } | FaultKind::ZonePartition { .. } => Vec::new(),
            FaultKind::GroupPartition { group, others } => {
                group.iter().chain(others).map(String::as_str).collect()
            }
            _ => std::iter::once(self.target_node())
                .chain(self.link_target())
                .collect(),
        }
    }

    /// Which instances a per-instance fault hits (`None` for faults on a whole service, link
    /// or source).
    pub fn instances(&self) -> Option<InstanceSelector> {
        match self {
            FaultKind::Kill { instances, .. }
            | FaultKind::Slow { instances, .. }
            | FaultKind::Latency { instances, .. }
            | FaultKind::Errors { instances, .. }
            | FaultKind::Restart { instances, .. }
            | FaultKind::LatchedFailure { instances, .. }
            | FaultKind::Isolate { instances, .. } => Some(*instances),
            _ => None,
        }
    }

    /// The called service for link faults.
    pub fn link_target(&self) -> Option<&str> {
        match self {
            FaultKind::LinkLatency { to, .. }
            | FaultKind::Partition { to, .. }
            | FaultKind::PacketLoss { to, .. }
            | FaultKind::OneWayPartition { to, .. } => Some(to),
            _ => None,
        }
    }

    /// True for faults that act once at their start and have no duration of their own
    /// (their effects run their course: a flushed cache refills, a restart completes).
    pub fn is_instantaneous(&self) -> bool {
        matches!(
            self,
            FaultKind::CacheFlush { .. }
                | FaultKind::TtlStorm { .. }
                | FaultKind::Restart { .. }
                | FaultKind::LatchedFailure { .. }
        )
    }
}

/// True if a message between `from` and `to` (either way) crosses a group partition of
/// `group` against `others` (every node not in `group` when `others` is empty). Names in a
/// scenario, or the engine's node references.
pub fn crosses_partition<T: PartialEq>(group: &[T], others: &[T], from: &T, to: &T) -> bool {
    let other_side = |n: &T| {
        if others.is_empty() {
            !group.contains(n)
        } else {
            others.contains(n)
        }
    };
    (group.contains(from) && other_side(to)) || (group.contains(to) && other_side(from))
}

/// How a service's load balancer treats its callers' zones (`zone_routing`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub enum ZoneRouting {
    /// Every routable instance, whatever zone the caller is in.
    #[default]
    AllZones,
    /// A caller in a zone is sent to the routable instances in its own zone, while they are at
    /// least `spill_below` of the zone's registered instances (and at least one); below that,
    /// to every zone (spill-over). A caller in no zone uses every zone.
    SameZone {
        /// Share of the zone's registered instances that must be routable to keep requests in
        /// the zone, in `[0, 1]` (0: spill only when none is).
        #[serde(default)]
        spill_below: f64,
    },
}

/// Settings of the verdict rule (see docs/model.md, "Verdict").
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerdictSettings {
    /// An interval is healthy when goodput / offered of all sources is at least this.
    #[serde(default = "default_healthy_ratio")]
    pub healthy_ratio: f64,
    /// Length of the final window that decides recovered vs metastable, in seconds.
    #[serde(default = "default_judge_window_s")]
    pub judge_window_s: f64,
    /// Health is judged on the success ratio over this many seconds centred on each interval.
    #[serde(default = "default_smooth_s")]
    pub smooth_s: f64,
    /// Whose success ratio: all sources' requests pooled, or each source's on its own.
    #[serde(default, skip_serializing_if = "is_default")]
    pub sources: VerdictSources,
    /// Judging each source on its own, a source with fewer new requests than this in a
    /// window is not judged on it (too few for its ratio to say much).
    #[serde(
        default = "default_min_source_requests",
        skip_serializing_if = "is_default_min_source_requests"
    )]
    pub min_source_requests: u64,
}

fn default_min_source_requests() -> u64 {
    50
}

fn is_default_min_source_requests(v: &u64) -> bool {
    *v == default_min_source_requests()
}

/// Whose success ratio the verdict judges (`verdict.sources`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VerdictSources {
    /// Goodput over new requests of every source together: a small source failing beside a
    /// large healthy one barely moves it.
    #[default]
    Pooled,
    /// Each source on its own: an interval is healthy only when every source's ratio is (a
    /// source with fewer than `min_source_requests` new requests in the window is not judged).
    Each,
}

fn default_smooth_s() -> f64 {
    5.0
}

fn default_healthy_ratio() -> f64 {
    0.9
}
fn default_judge_window_s() -> f64 {
    30.0
}

impl Default for VerdictSettings {
    fn default() -> Self {
        VerdictSettings {
            healthy_ratio: default_healthy_ratio(),
            judge_window_s: default_judge_window_s(),
            smooth_s: default_smooth_s(),
            sources: VerdictSources::Pooled,
            min_source_requests: default_min_source_requests(),
        }
    }
}

impl VerdictSettings {
    fn is_default(&self) -> bool {
        *self == VerdictSettings::default()
    }
}

/// The verdict of a run (Bronson et al., HotOS 2021 vocabulary).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerdictKind {
    /// Never unhealthy.
    Stable,
    /// Unhealthy for a while, healthy again through the final window.
    Recovered,
    /// The trigger ended, yet the final window is unhealthy.
    Metastable,
    /// Unhealthy at the end while the trigger is still active (or never healthy).
    Down,
}

impl VerdictKind {
    /// Lower-case name as printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Stable => "stable",
            VerdictKind::Recovered => "recovered",
            VerdictKind::Metastable => "metastable",
            VerdictKind::Down => "down",
        }
    }
}

/// What a scenario states in advance about its outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The verdict the run must end with.
    pub verdict: VerdictKind,
    /// Why (shown to users; the scenario's teaching point).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    /// Measurements the run must also show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<OutcomeCheck>,
    /// Where most of the users' failures must start (the run's causality root): a service, a
    /// source, or a link written `"caller → callee"` (docs/model.md, "Causality").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

impl Expectation {
    /// True when the stated root is node `name` or a link from or to it.
    pub fn root_names(&self, name: &str) -> bool {
        self.root.as_deref().is_some_and(|root| {
            root == name
                || crate::causality::split_link(root)
                    .is_some_and(|(from, to)| from == name || to == name)
        })
    }
}

/// One stated measurement: a metric of a node over a window of the run, with bounds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutcomeCheck {
    /// Source or service.
    pub node: String,
    /// What is measured.
    pub metric: CheckMetric,
    /// Start of the window, s.
    pub from_s: f64,
    /// End of the window, s.
    pub to_s: f64,
    /// It must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// It must be at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    /// What it shows (printed with the result).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// A measurement over a window. Rates and ratios are over the whole window; gauges are read at
/// its end.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckMetric {
    /// Goodput over offered requests (sources: client requests; services: attempts).
    SuccessRatio,
    /// Goodput, requests/s.
    GoodputPerS,
    /// Attempts offered, requests/s (first tries and retries).
    OfferedPerS,
    /// Mean latency of successes (sources) or residence (services), ms.
    MeanMs,
    /// Worker utilisation.
    Utilization,
    /// CPU utilisation (where cores are modelled).
    CpuUtilization,
    /// Live instances at the window's end.
    LiveInstances,
    /// Instances in the load balancer's healthy set at the window's end.
    HealthyInstances,
    /// Latched instances at the window's end.
    LatchedInstances,
    /// Cache warmth at the window's end.
    CacheWarmth,
    /// Work-queue backlog at the window's end.
    QueueBacklog,
    /// Circuit breakers open on calls to the service at the window's end.
    BreakersOpen,
    /// 1 if the service has failed over by the window's end, else 0.
    FailedOver,
    /// 1 if the service's load balancer is in panic at the window's end, else 0.
    Panic,
    /// Work-queue items dropped after their TTL from the start of the run to the window's end.
    ExpiredItems,
    /// Work-queue items dead-lettered from the start of the run to the window's end.
    DeadLetters,
    /// Optimistic-concurrency conflicts over completions (services).
    ConflictRatio,
    /// How many times longer own work took than alone, mean over the requests that reached a
    /// worker (services with `scaling`; 1 elsewhere).
    Slowdown,
}

impl Scenario {
    /// Parses and validates RON text. `origin` names the text in messages (a path or `<input>`).
    pub fn from_ron_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        // Editors on Windows may start a UTF-8 file with a byte-order mark; it is not RON.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let scenario: Scenario = options
            .from_str(text)
            .map_err(|err| ScenarioError::from_ron(origin, text, &err))?;
        let diagnostics = validate(&scenario);
        if diagnostics.is_empty() {
            Ok(scenario)
        } else {
            Err(ScenarioError::from_diagnostics(origin, text, diagnostics))
        }
    }

    /// Serialises to the canonical RON text (what [`save_to_path`] writes).
    pub fn to_ron_string(&self) -> String {
        let config = ron::ser::PrettyConfig::new()
            .struct_names(false)
            .indentor("    ")
            .separate_tuple_members(false)
            .extensions(ron::extensions::Extensions::IMPLICIT_SOME);
        ron::Options::default()
            .to_string_pretty(self, config)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .unwrap_or_else(|err| unreachable!("scenario types always serialise: {err}"))
    }

    /// Names of every node (sources first, then services), in file order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.sources
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.services.iter().map(|s| s.name.as_str()))
    }

    /// The service with this name.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceSpec> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// True if some node of `group` sends messages to a node of `others` or the other way
    /// round ([`Scenario::link_targets`]); an empty `others` stands for every node not in
    /// `group`. A group partition of two sides that do not cross cuts nothing.
    pub fn partition_crosses(&self, group: &[String], others: &[String]) -> bool {
        let group: Vec<&str> = group.iter().map(String::as_str).collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        let nodes = self.sources.iter().map(|s| s.name.as_str());
        nodes
            .chain(self.services.iter().map(|s| s.name.as_str()))
            .any(|from| {
                self.link_targets(from)
                    .into_iter()
                    .any(|to| crosses_partition(&group, &others, &from, &to))
            })
    }

    /// Every zone the services and sources name, in the order they are first named
    /// (services first).
    pub fn zone_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let sources = self.sources.iter().filter_map(|s| s.zone.as_ref());
        for z in self.services.iter().flat_map(|s| &s.zones).chain(sources) {
            if !out.contains(&z.as_str()) {
                out.push(z);
            }
        }
        out
    }

    /// True if some source or service sends messages to `service` (see [`Scenario::link_targets`]).
    pub fn is_called(&self, service: &str) -> bool {
        self.sources
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.services.iter().map(|s| s.name.as_str()))
            .any(|from| self.link_targets(from).contains(&service))
    }

    /// Every service `from` sends messages to, in file order without repeats: a source's
    /// target; a service's calls, cache fills, queue deliveries and lifecycle calls; and the
    /// replicas of the primaries it calls (reached after a failover). Link faults may name any.
    pub fn link_targets(&self, from: &str) -> Vec<&str> {
        fn push<'a>(name: &'a str, out: &mut Vec<&'a str>) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        let mut out: Vec<&str> = Vec::new();
        if let Some(src) = self.source(from) {
            push(src.target.as_str(), &mut out);
        }
        if let Some(svc) = self.service(from) {
            if let Some(cache) = &svc.cache {
                push(cache.backing.to.as_str(), &mut out);
            }
            for c in &svc.calls {
                push(c.to.as_str(), &mut out);
            }
            if let Some(q) = &svc.work_queue {
                push(q.consumer.as_str(), &mut out);
            }
            for c in svc
                .lifecycle
                .startup_calls
                .iter()
                .chain(svc.lifecycle.periodic.iter().map(|p| &p.call))
            {
                push(c.to.as_str(), &mut out);
            }
        }
        let direct = out.clone();
        for name in direct {
            if let Some(failover) = self.service(name).and_then(|s| s.failover.as_ref()) {
                push(failover.replica.as_str(), &mut out);
            }
        }
        out
    }
}

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| ScenarioError::io(&origin, &err))?;
    Scenario::from_ron_str(&text, &origin)
}

/// Writes a scenario atomically: to a temporary file beside `path`, then renamed over it, so
/// a crash or a full disk never leaves a half-written file.
pub fn save_to_path(scenario: &Scenario, path: &Path) -> std::io::Result<()> {
    write_atomically(path, scenario.to_ron_string().as_bytes())
}

/// Writes bytes to `path` atomically (temporary file in the same directory, fsync, rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
