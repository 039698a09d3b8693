//! The model's mutable state, as ECS components on source, service and instance entities.
//!
//! * [`SourceState`] — a traffic source: its random stream, next-arrival bookkeeping, retry
//!   budget, load multiplier and metrics.
//! * [`ServiceState`] — a service: its load balancer (routable instances, cursor, stream), the
//!   list of its instances, fault modifiers per call link, and metrics.
//! * [`InstanceState`] — one instance: workers, queue, up/down, fault modifiers, its random
//!   stream, per-call retry budgets and the time integrals behind queue length and
//!   utilisation.
//!
//! The engine's step system borrows all of these at once (dense, by index) and mutates them
//! as events happen; views read them. Configuration is not here (see `model.rs`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use bevy_ecs::prelude::*;

use super::least_loaded::LeastLoaded;
use super::mech::{CallGuard, InstanceMech, ServiceRuntime};
use crate::metrics::{Health, LatencyHistogram, NodeCounters};
use crate::retry::RetryBudget;
use crate::rng::SimRng;
use crate::scenario::KillMode;
use crate::time::Nanos;

/// Marks every entity the simulation owns (despawned when a scenario is reloaded).
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct SimEntity;

/// Identity of a source entity.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceNode {
    /// Source index in the model.
    pub index: u32,
}

/// Identity of a service entity.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceNode {
    /// Service index in the model.
    pub index: u32,
}

/// Identity of an instance entity.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceNode {
    /// Its service's index.
    pub service: u32,
    /// Its number within the service (0-based).
    pub ordinal: u32,
    /// Its global instance index.
    pub global: u32,
}

/// Metrics accumulators shared by sources and services.
#[derive(Debug, Clone, Default)]
pub struct NodeMetrics {
    /// Counts of the open interval.
    pub interval: NodeCounters,
    /// Counts of all closed intervals.
    pub totals: NodeCounters,
    /// Latencies of the open interval.
    pub hist: LatencyHistogram,
    /// Latencies of the whole run (closed intervals; merged at each interval close).
    pub hist_total: LatencyHistogram,
    /// Health in the last closed interval.
    pub health: Health,
}

/// Mutable state of a traffic source.
#[derive(Component, Debug, Clone)]
pub struct SourceState {
    /// Source index.
    pub index: u32,
    /// Its random stream (arrivals, jitter).
    pub rng: SimRng,
    /// Token of the one valid pending arrival event (bumped to cancel it).
    pub arrival_token: u32,
    /// Multiplier on the profile rate (load-spike faults).
    pub rate_factor: f64,
    /// Retry budget of its call.
    pub budget: RetryBudget,
    /// Metrics.
    pub metrics: NodeMetrics,
    /// Adaptive throttling of its call (`None`: not configured).
    pub guard: Option<Box<CallGuard>>,
    /// Share of its requests admitted (an operator shedding load at the edge sets it below 1).
    pub keep: f64,
    /// An operator's limit on its new requests (`LimitSource`; `None`: no limit).
    pub limit: Option<crate::mechanisms::throttle::TokenBucket>,
    /// Share of its new requests that are queries of death (active `QueryOfDeath` faults).
    pub poison_share: f64,
    /// When its last request succeeded (`None`: none yet).
    pub last_success_ns: Option<Nanos>,
    /// Its burst (a `Burst` rate profile) has been sent.
    pub burst_fired: bool,
    /// A closed population (`Closed`): users thinking, each with a pending arrival.
    pub users_thinking: u32,
    /// A closed population: users waiting for their request to end.
    pub users_waiting: u32,
    /// The open interval's failed client requests, by where they started.
    pub failure_origins: crate::causality::OriginTally,
}

/// Mutable state of a service (not of its instances).
#[derive(Component, Debug, Clone)]
pub struct ServiceState {
    /// Service index.
    pub index: u32,
    /// Global indices of its instances, by ordinal (including drained ones).
    pub instances: Vec<u32>,
    /// A `QueryOfDeath` fault on it is active: an instance that starts working on a poisoned
    /// request crashes (poisoned requests are never planned at arrival: `try_plan`).
    pub poisoned: bool,
    /// Global indices of instances the load balancer may pick.
    pub routable: Vec<u32>,
    /// Round-robin cursor.
    pub rr_cursor: u32,
    /// Load balancer's random stream.
    pub lb_rng: SimRng,
    /// Metrics.
    pub metrics: NodeMetrics,
    /// Live, routable instances at the last interval close.
    pub live_instances: u32,
    /// Mechanism state (cache entries, versions, work queue, failover, autoscaler).
    pub rt: Option<Box<ServiceRuntime>>,
    /// Least-outstanding load balancing: the loads of the routable instances (built at the
    /// first pick after the routable list changed).
    pub(crate) least_loaded: Option<LeastLoaded>,
    /// Instances in `least_loaded` whose load changed since the last pick.
    pub(crate) load_dirty: Vec<u32>,
    /// Zone routing: the routable instances in each zone (by zone id), in `routable`'s order
    /// (empty without zone routing).
    pub zone_routable: Vec<Vec<u32>>,
    /// Zone routing: the registered instances in each zone (the load balancer's set before
    /// health and ejections).
    pub zone_registered: Vec<u32>,
    /// Zone routing: each zone's round-robin cursor.
    pub zone_cursor: Vec<u32>,
}

/// Jobs an instance remembers as the last to take its workers ([`InstanceState::started`]).
/// 32: as many as the workers of most services, so that the jobs still holding one are most of
/// its workers' jobs, not only the latest to start (which are at their own work, done first).
pub const STARTED_SAMPLES: usize = 32;

/// Mutable state of one instance.
#[derive(Component, Debug, Clone)]
pub struct InstanceState {
    /// Global instance index.
    pub global: u32,
    /// Service index.
    pub service: u32,
    /// Its number among its service's instances (its zone is `zones[ordinal mod len]`).
    pub ordinal: u32,
    /// Worker limit now (configuration × capacity faults).
    pub workers: u32,
    /// Workers holding a request (own work, downstream wait or backoff). (In planned mode,
    /// as of the last tick boundary.)
    pub busy: u32,
    /// Waiting jobs. (In planned mode, as of the last tick boundary.)
    pub queue: VecDeque<u32>,
    /// `Some` while killed.
    pub down: Option<KillMode>,
    /// Provisioned: part of the service's configured instances (live edits can retire some).
    pub provisioned: bool,
    /// In the load balancer (not drained by a capacity cut).
    pub in_rotation: bool,
    /// Cut off from the network (an `Isolate` fault): what is sent to it vanishes, what it
    /// sends is lost.
    pub isolated: bool,
    /// When its process last started (0 for instances present at the start; the end of a
    /// kill or a restart starts a fresh one): a DNS failure since then leaves it no cached
    /// address.
    pub up_since_ns: Nanos,
    /// Service-time multiplier (slow faults).
    pub slow_factor: f64,
    /// Added own-work time (latency faults).
    pub added_ns: Nanos,
    /// Probability of failing a request after its own work (error faults).
    pub error_probability: f64,
    /// Its random stream (service times, errors, call choices, jitter).
    pub rng: SimRng,
    /// Retry budget per downstream call.
    pub budgets: Vec<RetryBudget>,
    /// Time of the last change to queue/busy/workers (integrals are exact up to here).
    pub last_change_ns: Nanos,
    /// ∫ queue length dt since the interval opened (u64: an interval of 1 s overflows only
    /// past 10^10 requests in one instance).
    pub area_queue: u64,
    /// ∫ (queue + busy) dt.
    pub area_in_system: u64,
    /// ∫ busy dt.
    pub area_busy: u64,
    /// ∫ workers dt while live and routable.
    pub area_capacity: u64,
    /// Cores (`u32::MAX`: not modelled).
    pub cores: u32,
    /// Cores doing own work (instances with mechanisms only).
    pub cores_busy: u32,
    /// Cores left by a capacity cut (`u32::MAX`: not cut); own work starts only while
    /// `cores_busy` < min(`cores`, `cores_cut`).
    pub cores_cut: u32,
    /// ∫ busy cores dt.
    pub area_cpu: u64,
    /// ∫ cores dt while live and routable (when modelled).
    pub area_cores: u64,
    /// Mechanism state (`None`: its service has no mechanisms and no mechanism fault hit it).
    pub mech: Option<Box<InstanceMech>>,
    /// The last [`STARTED_SAMPLES`] jobs that took one of its workers, with their
    /// generations, in a ring (`started_next` counts them): a sample of what its workers are
    /// doing, for the blocked-on walk of a timeout (`Ctx::blocked_on`).
    pub(crate) started: [(u32, u32); STARTED_SAMPLES],
    /// How many jobs took a worker (the ring's write position, modulo its length).
    pub(crate) started_next: u32,
    /// Requests are planned at arrival (`planned.rs`); `busy` and `queue` are then a view.
    pub(crate) planned: bool,
    /// Planned mode: when each busy worker frees up (earliest first; stale ones dropped lazily).
    pub(crate) busy_until: BinaryHeap<Reverse<Nanos>>,
    /// Planned mode: requests not yet settled, in arrival (= start) order.
    pub(crate) plan: VecDeque<PlanEntry>,
    /// Planned mode: running totals that spare walking the plan's waiting requests.
    pub(crate) plan_totals: PlanTotals,
    /// Its position in its service's least-outstanding index (`u32::MAX`: not indexed).
    pub(crate) lb_pos: u32,
    /// In its service's routable list (kept by `rebuild_routable`; key-based routing reads it).
    pub(crate) routable: bool,
    /// Its load changed since its service's load balancer last looked (it is listed in the
    /// service's `load_dirty`).
    pub(crate) load_dirty: bool,
}

/// A planned request, with the instance's random stream as it was before its draw.
#[derive(Debug, Clone)]
pub(crate) struct PlanEntry {
    /// Job index.
    pub(crate) job: u32,
    /// Job generation.
    pub(crate) generation: u32,
    /// When it starts (non-decreasing along the plan: FIFO).
    pub(crate) start_ns: Nanos,
    /// The instance's stream before this request's service time was drawn.
    pub(crate) rng_before: SimRng,
    /// Its place in the instance's planning order (counts up from 0 per instance).
    pub(crate) seq: u64,
}

/// Running totals of a planned instance, so that integrating its queue up to a time and
/// publishing its queue cost the requests that started or arrived since the last time, not
/// the whole backlog (`planned.rs`).
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanTotals {
    /// The planned requests' time integrals are exact up to here.
    pub(crate) acct_ns: Nanos,
    /// Planned requests not yet settled (the plan, less settled entries not yet dropped).
    pub(crate) live: u32,
    /// Σ over those of max(arrival, `acct_ns`): where each one's unaccounted time begins.
    pub(crate) unaccounted_from_sum: u128,
    /// `seq` of the next request planned.
    pub(crate) next_seq: u64,
    /// `seq` past the last request copied into `queue` by the last publication.
    pub(crate) queue_seq_end: u64,
    /// A settled request was dropped from the plan's waiting part since the last
    /// publication (a zero-length service at exactly that instant): rebuild `queue` whole.
    pub(crate) queue_dirty: bool,
}

impl InstanceState {
    /// Requests in the instance (waiting or at a worker).
    #[inline]
    pub fn in_system(&self) -> u32 {
        self.queue.len() as u32 + self.busy
    }

    /// True when up and in the load balancer.
    #[inline]
    pub fn serving(&self) -> bool {
        self.down.is_none()
            && self.provisioned
            && self.in_rotation
            && self.mech.as_ref().is_none_or(|m| m.started())
    }

    /// Its workers count as capacity: up and started, and either serving or still working off
    /// what it holds (a retired or drained instance finishing its queue).
    #[inline]
    pub(crate) fn counts_capacity(&self) -> bool {
        self.serving()
            || (self.down.is_none()
                && (self.busy > 0 || !self.queue.is_empty())
                && self.mech.as_ref().is_none_or(|m| m.started()))
    }

    /// Records job `k` (of `generation`) as the last to take one of its workers
    /// ([`InstanceState::started`]).
    #[inline]
    pub(crate) fn record_start(&mut self, k: u32, generation: u32) {
        self.started[self.started_next as usize % STARTED_SAMPLES] = (k, generation);
        self.started_next = self.started_next.wrapping_add(1);
    }

    /// The jobs recorded as the last to take its workers, oldest first (the ring's next write
    /// position holds its oldest entry).
    pub(crate) fn started_oldest_first(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..STARTED_SAMPLES as u32)
            .map(|i| self.started[(self.started_next.wrapping_add(i) as usize) % STARTED_SAMPLES])
    }

    /// Puts job `k` at the back of the queue at `now` (after [`InstanceState::touch`]), noting
    /// when the queue stops being empty (controlled delay reads it).
    #[inline]
    pub fn enqueue(&mut self, k: u32, now: Nanos) {
        self.enqueue_at(k, self.queue.len(), now);
    }

    /// [`InstanceState::enqueue`] at position `at` of the queue (a priority queue's place).
    #[inline]
    pub fn enqueue_at(&mut self, k: u32, at: usize, now: Nanos) {
        if self.queue.is_empty()
            && let Some(m) = self.mech.as_deref_mut()
        {
            m.queue_nonempty_since_ns = now;
        }
        if at >= self.queue.len() {
            self.queue.push_back(k);
        } else {
            self.queue.insert(at, k);
        }
    }

    /// Brings the time integrals up to `now`; call before changing queue, busy or workers.
    #[inline]
    pub fn touch(&mut self, now: Nanos) {
        let dt = now.saturating_sub(self.last_change_ns);
        if dt == 0 {
            return;
        }
        let q = self.queue.len() as u64;
        let b = u64::from(self.busy);
        self.area_queue = self.area_queue.saturating_add(q * dt);
        self.area_in_system = self.area_in_system.saturating_add((q + b) * dt);
        self.area_busy = self.area_busy.saturating_add(b * dt);
        if self.counts_capacity() {
            self.area_capacity = self
                .area_capacity
                .saturating_add(u64::from(self.workers) * dt);
            if self.cores != u32::MAX {
                let cores = self.cores.min(self.cores_cut);
                self.area_cores = self.area_cores.saturating_add(u64::from(cores) * dt);
            }
        }
        if self.cores_busy > 0 {
            self.area_cpu = self
                .area_cpu
                .saturating_add(u64::from(self.cores_busy) * dt);
        }
        self.last_change_ns = now;
    }

    /// Moves the integrals into `into` and resets them (interval close at `now`).
    pub fn drain_integrals(&mut self, now: Nanos, into: &mut NodeCounters) {
        self.touch(now);
        into.area_queue += u128::from(self.area_queue);
        into.area_in_system += u128::from(self.area_in_system);
        into.area_busy += u128::from(self.area_busy);
        into.area_capacity += u128::from(self.area_capacity);
        into.area_cpu += u128::from(self.area_cpu);
        into.area_cores += u128::from(self.area_cores);
        self.area_cpu = 0;
        self.area_cores = 0;
        self.area_queue = 0;
        self.area_in_system = 0;
        self.area_busy = 0;
        self.area_capacity = 0;
    }
}
