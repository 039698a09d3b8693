//! What happens to a request: the event handlers of the request-level engine.
//!
//! [`Ctx`] borrows the engine's tables ([`Engine`]) and every source, service and instance
//! state at once (dense slices by index) and processes one tick's events in exact time order.
//! The life of a request:
//!
//! 1. A source's arrival creates a *client job* and sends attempt 1 to its target over a link
//!    (one-way latency ≥ 1 tick), arming the client timeout.
//! 2. On arrival the service's load balancer picks an instance. A killed instance refuses or
//!    blackholes it; otherwise it takes a free worker, waits in the queue, or is rejected when
//!    the queue is full.
//! 3. At a worker: with deadline propagation an expired request is dropped; else its own work
//!    takes a sampled service time (× slow factor + added latency). An error fault may then fail
//!    it. Otherwise it makes its downstream calls in order, holding the worker, each call an
//!    attempt like step 1 with the caller's timeout, retries, backoff, jitter and budget.
//! 4. It replies (success, or the reason it failed) to its caller, frees the worker, and the
//!    next queued request starts.
//!
//! A caller that times out abandons the attempt: the callee — and everything that attempt is
//! waiting on — keeps working but is marked *orphaned*; its completions count as wasted work,
//! not goodput. Stale events (for jobs that finished or attempts that were abandoned) are
//! recognised by generation and token and ignored.
//!
//! This file owns the request path. Fault effects on state are in `effects.rs`; interval
//! closing in `close.rs`.

use bevy_ecs::prelude::*;

use super::data::CacheStep;
use super::jobs::{
    ALT, Attempt, BLACKHOLED, BRANCH, CLIENT, DEFERRED, HEDGE_COPY, HEDGED, INTERNAL, Jobs,
    NO_ZONE, NONE, ORPHANED, POISON, PROBE, PUSHBACK, Phase,
};
use super::least_loaded::LeastLoaded;
use super::mech::codel_timeout_ns;
use super::model::{Model, NodeRef, rate_at, rate_is_flat, rate_segment, shard_owners};
use super::scheduler::{AsOf, EventHandle, EventKind, Scheduler};
use super::state::{InstanceState, ServiceState, SourceState};
use crate::causality::{self, OriginTally};
use crate::events::{SimEvent, SimEventKind};
use crate::faults::{self, FaultRecord};
use crate::metrics::{EdgeCounters, MetricsHistory, Outcome};
use crate::retry::RetryBudget;
use crate::rng::{self, SimRng};
use crate::sampling::{LegKind, SampledLeg};
use crate::scenario::{FanOut, KillMode, LoadBalancer, RateProfile};
use crate::time::{HORIZON_NS, NEVER, Nanos};

/// Runtime state of a link (network faults and edge metrics).
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// Messages on it are lost.
    pub partitioned: bool,
    /// Requests on it are lost (one-way partition).
    pub cut_requests: bool,
    /// Replies on it are lost (one-way partition).
    pub cut_replies: bool,
    /// Probability that a message on it is lost (packet loss).
    pub loss: f64,
    /// Added one-way latency.
    pub extra_ns: Nanos,
    /// The callee's name fails to resolve (a DNS failure).
    pub unresolved: Option<faults::DnsOutage>,
    /// Counts of the open interval.
    pub interval: EdgeCounters,
    /// Counts of all closed intervals.
    pub totals: EdgeCounters,
    /// The open interval's failed attempts on it, by where they started.
    pub failure_origins: OriginTally,
}

/// Everything the engine needs that is not a component: compiled model, scheduler, job slab,
/// link states, faults, counters and output buffers.
#[derive(Resource, Debug)]
pub struct Engine {
    /// Compiled configuration.
    pub model: Model,
    /// Pending events.
    pub sched: Scheduler,
    /// Requests in the system.
    pub jobs: Jobs,
    /// Link states by link index.
    pub links: Vec<LinkState>,
    /// Every fault of the run (scripted and live), by id.
    pub faults: Vec<FaultRecord>,
    /// Time of the event being processed.
    pub now: Nanos,
    /// Attempts delivered to services, whole run.
    pub hops_total: u64,
    /// Attempts delivered in the open interval.
    pub hops_interval: u64,
    /// Client requests created (drives sampling).
    pub client_requests: u64,
    /// Next journey id.
    pub next_journey: u32,
    /// A fault or load spike was active during the open interval.
    pub trigger_in_interval: bool,
    /// Sampled legs not yet published.
    pub legs: Vec<SampledLeg>,
    /// Events not yet published.
    pub events: Vec<SimEvent>,
    /// A scenario is loaded.
    pub loaded: bool,
    /// Instances spawned (the next global instance index).
    pub instance_count: u32,
    /// Take the exact shortcuts of the fast paths (replies settled at departure). Off, every
    /// step is an event of its own; results are identical either way (tests compare them).
    pub fast_paths: bool,
    /// End of the batch of events being processed (exclusive).
    pub limit_ns: Nanos,
    /// How often each fast path was taken (whole run).
    pub fast_path_counts: FastPathCounts,
    /// State of each alert.
    pub alert_state: Vec<super::control::AlertState>,
    /// Scratch stack of [`Ctx::orphan_chain`]'s walk (kept to reuse its allocation).
    pub orphan_stack: Vec<(u32, u32)>,
    /// Instances cut off from the network now (`Isolate` faults); 0 keeps the message path
    /// from looking at the sender's instance.
    pub isolated_instances: u32,
    /// The zone sets cut off from the other zones now (`ZonePartition` faults, bit `z` for
    /// zone id `z`).
    pub zone_cuts: Vec<u64>,
    /// Isolated instances plus active zone cuts ([`Engine::recount_instance_cuts`]): 0 keeps
    /// the message path to one test of per-instance network faults.
    pub instance_cuts: u32,
    /// Links whose callee's name fails to resolve now (`DnsFailure` faults); 0 keeps the
    /// send path to one test.
    pub unresolved_links: u32,
    /// The operator actions taken so far that change the compiled model (retries, workers,
    /// rate limits), in order: a live edit recompiles the model and applies them again, so
    /// they hold for the rest of the run.
    pub operator_model_changes: Vec<crate::scenario::OperatorAction>,
    /// Why the run stopped for good (it needed more memory than a run may hold; see
    /// `limits.rs`); `None` while it runs. Loading a scenario starts a fresh engine.
    pub halted: Option<super::Halt>,
    /// Most items the work queues may hold before the run stops (default
    /// [`MAX_QUEUED_ITEMS`](super::MAX_QUEUED_ITEMS); the limit of jobs in flight is the job
    /// slab's, [`Jobs::set_limit`]).
    pub max_queued_items: usize,
}

/// How often each fast path was taken. Diagnostics for tests and benchmarks; no result depends
/// on them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastPathCounts {
    /// Requests planned at arrival by a leaf instance (`planned.rs`).
    pub planned: u64,
    /// Own-work ends merged with the first call's arrival.
    pub deferred_sends: u64,
    /// Successful replies to clients settled at departure.
    pub settled_replies: u64,
}

impl Engine {
    /// Sets [`Engine::instance_cuts`] from what it counts: the isolated instances and the
    /// active zone cuts (after either changes).
    pub(crate) fn recount_instance_cuts(&mut self) {
        self.instance_cuts = self.isolated_instances + self.zone_cuts.len() as u32;
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            model: Model::default(),
            sched: Scheduler::new(),
            jobs: Jobs::default(),
            links: Vec::new(),
            faults: Vec::new(),
            now: 0,
            hops_total: 0,
            hops_interval: 0,
            client_requests: 0,
            next_journey: 0,
            trigger_in_interval: false,
            legs: Vec::new(),
            events: Vec::new(),
            loaded: false,
            instance_count: 0,
            fast_paths: true,
            limit_ns: 0,
            fast_path_counts: FastPathCounts::default(),
            alert_state: Vec::new(),
            orphan_stack: Vec::new(),
            isolated_instances: 0,
            unresolved_links: 0,
            operator_model_changes: Vec::new(),
            zone_cuts: Vec::new(),
            instance_cuts: 0,
            halted: None,
            max_queued_items: super::MAX_QUEUED_ITEMS,
        }
    }
}

impl Engine {
    /// Records an event for the log.
    pub fn log(&mut self, kind: SimEventKind) {
        self.events.push(SimEvent {
            time_ns: self.now,
            kind,
        });
    }
}

/// The engine with every state borrowed: processes events. See the module docs.
pub struct Ctx<'a, 'w> {
    /// Engine tables.
    pub e: &'a mut Engine,
    /// Interval history.
    pub history: &'a mut MetricsHistory,
    /// Source states by index.
    pub sources: &'a mut [&'w mut SourceState],
    /// Service states by index.
    pub services: &'a mut [&'w mut ServiceState],
    /// Instance states by global index.
    pub instances: &'a mut [&'w mut InstanceState],
}

#[inline]
fn outcome_u8(o: Outcome) -> u8 {
    o as u8
}

/// Where `job` stands in an ordered queue, smaller first: its deadline in an
/// earliest-deadline-first queue (`edf`), else its criticality, most critical first.
#[inline]
fn queue_key(edf: bool, job: &super::Job) -> u64 {
    if edf {
        job.deadline_ns
    } else {
        u64::from(u8::MAX - job.criticality)
    }
}

impl Ctx<'_, '_> {
    /// Processes every event before `limit_ns`, in `(time, stamp)` order.
    pub fn run_until(&mut self, limit_ns: Nanos) {
        self.e.limit_ns = limit_ns;
        // Past the limit of jobs in flight the run stops: the next event stays pending and
        // `step_engine` halts the engine (see `limits.rs`).
        while !self.e.jobs.over_limit()
            && let Some(ev) = self.e.sched.pop_before(limit_ns)
        {
            self.e.now = ev.time;
            match ev.kind {
                EventKind::SourceArrival => self.on_source_arrival(ev.a, ev.b),
                EventKind::RequestArrive => self.on_request_arrive(ev.a, ev.b),
                EventKind::WorkDone => self.on_work_done(ev.a, ev.b),
                EventKind::ReplyArrive => {
                    let pushback = ev.outcome & PUSHBACK != 0;
                    let outcome = Outcome::from_u8(ev.outcome & !PUSHBACK);
                    self.on_reply_arrive(ev.a, ev.b, ev.c, outcome, pushback, ev.origin);
                }
                EventKind::CallTimeout => self.on_call_timeout(ev.a, ev.b, ev.c),
                EventKind::RetryFire => self.on_retry_fire(ev.a, ev.b, ev.c),
                EventKind::FaultStart => self.start_fault(ev.a),
                EventKind::FaultEnd => self.end_fault(ev.a),
                EventKind::SendArrive => self.on_send_arrive(ev.a, ev.b),
                EventKind::PlannedReply => self.on_planned_reply(ev.a, ev.b),
                EventKind::PlannedDone => self.on_planned_done(ev.a, ev.b),
                EventKind::HedgeFire => self.on_hedge_fire(ev.a, ev.b, ev.c),
                EventKind::ProbeFire => self.on_probe_fire(ev.a, ev.b),
                EventKind::ProbeTimeout => self.on_probe_timeout(ev.a, ev.b, ev.c),
                EventKind::LifeStep => self.on_life_step(ev.a, ev.b),
                EventKind::PeriodicFire => self.on_periodic_fire(ev.a, ev.b, ev.c),
                EventKind::Reroute => self.rebuild_routable(ev.a),
                EventKind::QueueWake => self.on_queue_wake(ev.a),
                EventKind::FailoverCheck => self.on_failover_check(ev.a),
                EventKind::OperatorFire => self.on_operator_fire(ev.a),
                EventKind::FaultStep => self.on_fault_step(ev.a, ev.b),
                EventKind::RestartAt => self.restart_instance(ev.a, "operator"),
                EventKind::CancelArrive => self.on_cancel_arrive(ev.a, ev.b),
                EventKind::BulkheadTimeout => self.on_bulkhead_timeout(ev.a, ev.b, ev.c),
                EventKind::Cancelled => {}
            }
        }
    }

    // ---------------------------------------------------------------- sources

    /// Schedules source `s`'s next arrival after `from_ns`, cancelling any pending one.
    /// Exact non-homogeneous Poisson: exponential gaps at the segment's peak rate, restarted at
    /// each breakpoint, thinned where the rate varies inside a segment.
    pub fn schedule_next_arrival(&mut self, s: u32, from_ns: Nanos) {
        let model = &self.e.model.sources[s as usize];
        let st = &mut *self.sources[s as usize];
        st.arrival_token = st.arrival_token.wrapping_add(1);
        if model.removed {
            st.users_thinking = 0;
            return;
        }
        if let Some((users, think_ms)) = model.closed() {
            // The thinking users' arrivals are drawn again from `from_ns` (exact: a think
            // time is exponential, so what is left of it is too); users are added thinking,
            // or retired as their requests end, to reach the population.
            let target = closed_population(users, st.rate_factor);
            st.users_thinking = target.saturating_sub(st.users_waiting);
            for _ in 0..st.users_thinking {
                self.schedule_think(s, from_ns, think_ms);
            }
            return;
        }
        if let Some((_, at_ns)) = model.burst() {
            if !st.burst_fired && from_ns <= at_ns {
                self.e
                    .sched
                    .schedule(at_ns, EventKind::SourceArrival, s, st.arrival_token, 0, 0);
            }
            return;
        }
        let mut t = from_ns;
        loop {
            let (seg_end, peak) = rate_segment(&model.rate, t);
            let lambda = peak * st.rate_factor;
            if lambda.is_nan() || lambda <= 0.0 {
                if seg_end == NEVER {
                    return;
                }
                t = seg_end;
                continue;
            }
            let gap_ns = (rng::exp1(&mut st.rng) / lambda * 1e9 + 0.5) as Nanos;
            let candidate = t.saturating_add(gap_ns.max(1));
            if candidate >= seg_end {
                // A gap past the end of time (a rate so small the next arrival never comes).
                if seg_end == NEVER {
                    return;
                }
                t = seg_end;
                continue;
            }
            let accept = rate_is_flat(&model.rate, t)
                || rng::unit(&mut st.rng) * peak < rate_at(&model.rate, candidate);
            if accept {
                self.e.sched.schedule(
                    candidate,
                    EventKind::SourceArrival,
                    s,
                    st.arrival_token,
                    0,
                    0,
                );
                return;
            }
            t = candidate;
        }
    }

    fn on_source_arrival(&mut self, s: u32, token: u32) {
        if self.sources[s as usize].arrival_token != token {
            return;
        }
        let now = self.e.now;
        match self.e.model.sources[s as usize].rate {
            RateProfile::Closed { .. } => {
                // One thinking user sends its next request.
                let st = &mut *self.sources[s as usize];
                st.users_thinking = st.users_thinking.saturating_sub(1);
                st.users_waiting += 1;
                self.new_client_request(s);
            }
            RateProfile::Burst { count, .. } => {
                self.sources[s as usize].burst_fired = true;
                for _ in 0..count {
                    self.new_client_request(s);
                }
            }
            _ => {
                self.schedule_next_arrival(s, now);
                self.new_client_request(s);
            }
        }
    }

    /// A new client request of source `s`, sent now (or shed at the edge by an operator).
    fn new_client_request(&mut self, s: u32) {
        let now = self.e.now;
        self.e.client_requests += 1;
        let every = u64::from(self.e.model.sample_every);
        let journey = if every > 0 && self.e.client_requests % every == 1 % every {
            self.e.next_journey += 1;
            self.e.next_journey - 1
        } else {
            NONE
        };
        let criticality = self.e.model.sources[s as usize].criticality;
        let j =
            self.e
                .jobs
                .alloc_root(Phase::Calling, CLIENT, (s, NONE), now, journey, criticality);
        let st = &mut *self.sources[s as usize];
        st.metrics.interval.offered_first += 1;
        if st.keep < 1.0 && !rng::chance(&mut st.rng, st.keep) {
            // Shed at the edge by the operator: never sent.
            st.metrics.interval.local_rejected += 1;
            self.e.jobs.get_mut(j).origin = causality::source_code(s);
            self.finish_client(j, Outcome::Shed);
            return;
        }
        if let Some(limit) = st.limit.as_mut()
            && !limit.try_take(now)
        {
            // Above the operator's limit at the edge: answered 429 there, never sent.
            st.metrics.interval.local_rejected += 1;
            self.e.jobs.get_mut(j).origin = causality::source_code(s);
            self.finish_client(j, Outcome::Throttled);
            return;
        }
        if st.poison_share > 0.0 && rng::chance(&mut st.rng, st.poison_share) {
            self.e.jobs.get_mut(j).flags |= POISON;
        }
        st.budget
            .on_first_attempt(&self.e.model.sources[s as usize].call.retry);
        if self.e.model.sources[s as usize].call.guard.is_some() {
            self.start_call(j);
        } else {
            self.send_attempt(j);
        }
    }

    // ---------------------------------------------------------------- calls

    /// Starts a new logical call (fresh attempt count, budget deposit) and sends attempt 1.
    pub(crate) fn start_call(&mut self, j: u32) {
        let now = self.e.now;
        self.start_call_at(j, now, Delivery::Line);
    }

    /// [`Ctx::start_call`] for a call made at `at_ns` (see [`Delivery`]).
    fn start_call_at(&mut self, j: u32, at_ns: Nanos, delivery: Delivery) -> Option<(u32, u32)> {
        let job = self.e.jobs.get_mut(j);
        job.call_attempt = 0;
        job.prev_backoff_ns = 0;
        if !job.is_caller_only() {
            let (node, inst, idx) = (job.node, job.instance, job.call_idx as usize);
            if let Some(call) = self.e.model.services[node as usize].calls.get(idx)
                && call.retry.budget.is_some()
                && let Some(b) = self.instances[inst as usize].budgets.get_mut(idx)
            {
                b.on_first_attempt(&call.retry);
            }
        }
        match self.enter_bulkhead(j) {
            Ok(true) => self.send_attempt_at(j, at_ns, delivery),
            // Waiting for a place: the call is sent when one frees.
            Ok(false) => None,
            Err(outcome) => {
                self.fail_call_locally(j, outcome);
                None
            }
        }
    }

    /// Sends the next attempt of job `j`'s current call.
    pub(crate) fn send_attempt(&mut self, j: u32) {
        let now = self.e.now;
        self.send_attempt_at(j, now, Delivery::Line);
    }

    /// Sends the next attempt of job `j`'s current call at `at_ns` (`now`, or in the past for a
    /// deferred send; see [`Delivery`]). Returns the attempt when it is to be delivered now.
    fn send_attempt_at(&mut self, j: u32, at_ns: Nanos, delivery: Delivery) -> Option<(u32, u32)> {
        let now = at_ns;
        let p = self.e.jobs.get(j);
        let (client, node, generation, journey, internal) = (
            p.is_client(),
            p.node,
            p.generation,
            p.journey,
            p.is_internal(),
        );
        let attempt = p.call_attempt.saturating_add(1);
        let token = p.token.wrapping_add(1);
        let parent_deadline = p.deadline_ns;
        // A deferred send (not `Line`) is made at the end of the job's work, an event the
        // reference path schedules when the work starts.
        let as_of = AsOf {
            vsched_ns: at_ns,
            parent_vsched_ns: p.start_ns,
        };
        let Some(call) = self.e.model.call_for(p) else {
            // The call list shrank under a live edit: this request has no more calls to make.
            debug_assert!(
                delivery == Delivery::Line,
                "deferred sends never outlive an edit"
            );
            if internal {
                self.finish_internal(j, Outcome::Success);
            } else if self.e.jobs.get(j).is_branch() {
                self.branch_done(j, Outcome::Success);
            } else {
                self.finish(j, Outcome::Success);
            }
            return None;
        };
        let (to, link_id, latency_ns, timeout_ns) =
            (call.to, call.link, call.latency_ns, call.timeout_ns);
        // The guard is read in place (it is large): whether there is one, and its hedge delay.
        let (latency_sd_ns, guarded) = (call.latency_sd_ns, call.guard.is_some());
        let hedge_ns = call.guard.as_ref().map_or(NEVER, |g| g.hedge_ns);
        if guarded && let Some(outcome) = self.guard_admit(j) {
            self.fail_call_locally(j, outcome);
            return None;
        }
        if self.e.unresolved_links > 0
            && let Some(outage) = self.e.links[link_id as usize].unresolved
            && self.unresolved(j, outage, at_ns)
        {
            self.fail_unresolved(j, link_id, to, attempt, token);
            return None;
        }
        let propagate =
            !client && !internal && self.e.model.services[node as usize].deadline_propagation;
        let timeout_deadline = if timeout_ns == NEVER {
            NEVER
        } else {
            now + timeout_ns
        };
        let deadline = if propagate {
            parent_deadline.min(timeout_deadline)
        } else {
            timeout_deadline
        };

        let caller = self.e.jobs.get(j);
        let (caller_flags, criticality) = (caller.flags, caller.criticality);
        // A key-routed callee: the call's first attempt draws its key when it arrives; the
        // retries carry it.
        let key = if !self.e.model.key_routed(to) {
            NONE
        } else if attempt > 1 {
            self.e.jobs.side(j).shard_key
        } else {
            self.e.jobs.side_mut(j).shard_key = NONE;
            NONE
        };
        let (k, kgen) = self.e.jobs.alloc_attempt(Attempt {
            to,
            link: link_id,
            parent: j,
            parent_gen: generation,
            token,
            attempt,
            deadline_ns: deadline,
            journey,
            caller_flags,
            key,
            criticality,
        });

        if self.e.model.zone_routed(to) {
            self.e.jobs.side_mut(k).caller_zone = self.caller_zone(j);
        }
        let p = self.e.jobs.get_mut(j);
        p.call_attempt = attempt;
        p.token = token;
        p.origin = causality::service_code(to);
        p.flags &= !(ALT | BLACKHOLED);
        p.phase = Phase::Calling;
        p.child = k;
        p.child_gen = kgen;

        let link = &mut self.e.links[link_id as usize];
        link.interval.attempts += 1;
        if attempt > 1 {
            link.interval.retries += 1;
            if client {
                self.sources[node as usize].metrics.interval.offered_retry += 1;
            }
        }
        let (lost, delay) = self.wire(link_id, latency_ns, latency_sd_ns, Sender::Caller(j));
        let link = &mut self.e.links[link_id as usize];
        let mut deliver = None;
        if lost {
            link.interval.lost += 1;
            self.e.jobs.free(k);
            let p = self.e.jobs.get_mut(j);
            p.child = NONE;
            p.origin = causality::link_code(link_id);
        } else {
            match delivery {
                Delivery::Line if latency_sd_ns > 0 => {
                    self.e
                        .sched
                        .schedule(now + delay, EventKind::RequestArrive, k, kgen, 0, 0);
                }
                Delivery::Line => {
                    self.e.sched.schedule_after(
                        now,
                        delay,
                        EventKind::RequestArrive,
                        k,
                        kgen,
                        0,
                        0,
                    );
                }
                Delivery::Now => deliver = Some((k, kgen)),
                // Sent at `now`, in the past: scheduled as of then.
                Delivery::Absolute => {
                    self.e.sched.schedule_as_of(
                        as_of,
                        now + delay,
                        EventKind::RequestArrive,
                        k,
                        kgen,
                        0,
                        0,
                    );
                }
            }
        }
        if timeout_ns != NEVER {
            let handle = match delivery {
                Delivery::Line => self.e.sched.schedule_after(
                    now,
                    timeout_ns,
                    EventKind::CallTimeout,
                    j,
                    generation,
                    token,
                    0,
                ),
                Delivery::Now => {
                    // Sent at `now - delay`: the timeout is `timeout - delay` from the current time.
                    debug_assert!(timeout_ns > delay && at_ns + delay == self.e.now);
                    self.e.sched.schedule_after_as_of(
                        as_of,
                        self.e.now,
                        timeout_ns - delay,
                        EventKind::CallTimeout,
                        j,
                        generation,
                        token,
                        0,
                    )
                }
                Delivery::Absolute => {
                    self.e.sched.schedule_as_of(
                        as_of,
                        now + timeout_ns,
                        EventKind::CallTimeout,
                        j,
                        generation,
                        token,
                        0,
                    );
                    EventHandle::NONE
                }
            };
            self.e.jobs.get_mut(j).timeout = handle;
        }
        if hedge_ns != NEVER && (timeout_ns == NEVER || hedge_ns < timeout_ns) {
            debug_assert!(
                delivery == Delivery::Line,
                "hedged calls are never deferred"
            );
            self.e.sched.schedule(
                now + hedge_ns,
                EventKind::HedgeFire,
                j,
                generation,
                token,
                0,
            );
        }
        if journey != NONE {
            let from = if client {
                NodeRef::Source(node)
            } else {
                NodeRef::Service(node)
            };
            self.e.legs.push(SampledLeg {
                journey,
                from,
                to: NodeRef::Service(to),
                depart_ns: now,
                arrive_ns: now + delay,
                kind: LegKind::Request { attempt },
                lost,
            });
        }
        deliver
    }

    /// The link of job `j`'s current call, if it still has one.
    #[inline]
    fn current_link(&self, j: u32) -> Option<(u32, u32)> {
        self.e
            .model
            .call_for(self.e.jobs.get(j))
            .map(|c| (c.link, c.to))
    }

    /// The reply to job `j`'s attempt `token` arrives with `outcome` (`pushback`: it said not
    /// to retry).
    pub(crate) fn on_reply_arrive(
        &mut self,
        j: u32,
        generation: u32,
        token: u32,
        outcome: Outcome,
        pushback: bool,
        origin: u16,
    ) {
        let Some(job) = self.e.jobs.live(j, generation) else {
            return;
        };
        let hedged = job.flags & HEDGED != 0;
        if job.phase != Phase::Calling || !self.e.jobs.awaits(j, token) {
            return;
        }
        if self.isolated(job.instance) {
            // Its instance cannot receive: the reply is lost, and the attempt will time out.
            if let Some(call) = self.e.model.call_for(job) {
                self.e.links[call.link as usize].interval.lost += 1;
            }
            return;
        }
        let (client, internal, branch, reps_left) = (
            job.is_client(),
            job.is_internal(),
            job.is_branch(),
            job.reps_left,
        );
        let mut guarded = false;
        if let Some(call) = self.e.model.call_for(job) {
            guarded = call.guard.is_some();
            let c = &mut self.e.links[call.link as usize].interval;
            if outcome == Outcome::Success {
                c.successes += 1;
            } else {
                c.failures += 1;
            }
        }
        if hedged && !self.settle_hedge(j, token, outcome) {
            // One of two hedged attempts failed; the other may still succeed.
            return;
        }
        if guarded {
            self.guard_record(j, outcome);
        }
        let job = self.e.jobs.get_mut(j);
        job.child = NONE;
        // The attempt is answered: its timeout can never fire now.
        if job.timeout.is_some() {
            self.e.sched.cancel(job.timeout);
            job.timeout = EventHandle::NONE;
        }
        if outcome != Outcome::Success {
            self.on_attempt_failed(j, outcome, pushback, origin);
        } else if client {
            self.finish_client(j, Outcome::Success);
        } else if internal {
            self.finish_internal(j, Outcome::Success);
        } else if branch {
            self.branch_done(j, Outcome::Success);
        } else if reps_left > 0 {
            job.reps_left -= 1;
            self.leave_bulkhead(j);
            self.start_call(j);
        } else {
            // The bulkhead is found through the call index: leave it before moving on.
            self.leave_bulkhead(j);
            self.e.jobs.get_mut(j).call_idx += 1;
            self.enter_next_call(j);
        }
    }

    fn on_call_timeout(&mut self, j: u32, generation: u32, token: u32) {
        let Some(job) = self.e.jobs.live(j, generation) else {
            return;
        };
        let hedged = job.flags & HEDGED != 0;
        if job.phase != Phase::Calling || !self.e.jobs.awaits(j, token) {
            return;
        }
        let (child, child_gen, journey, client, node) = (
            job.child,
            job.child_gen,
            job.journey,
            job.is_client(),
            job.node,
        );
        let side = *self.e.jobs.side(j);
        let (alt_child, alt_gen) = (side.alt_child, side.alt_child_gen);
        let blackholed = job.flags & BLACKHOLED != 0 && side.blackhole_token == token;
        let origin = self.blocked_on(j);
        let jm = self.e.jobs.get_mut(j);
        jm.child = NONE;
        jm.timeout = EventHandle::NONE;
        jm.flags &= !(HEDGED | ALT | BLACKHOLED);
        if blackholed {
            // The attempt vanished at a blackholed instance: to the load balancer's outlier
            // detection this timeout is that instance's error.
            self.outlier_record(side.blackhole_inst, false);
        }
        self.orphan_chain(child, child_gen);
        if hedged {
            self.orphan_chain(alt_child, alt_gen);
        }
        if let Some((link, to)) = self.current_link(j) {
            self.services[to as usize].metrics.interval.timed_out += 1;
            self.e.links[link as usize].interval.timeouts += 1;
            if journey != NONE {
                let from = if client {
                    NodeRef::Source(node)
                } else {
                    NodeRef::Service(node)
                };
                self.e.legs.push(SampledLeg {
                    journey,
                    from,
                    to: NodeRef::Service(to),
                    depart_ns: self.e.now,
                    arrive_ns: self.e.now,
                    kind: LegKind::Timeout,
                    lost: false,
                });
            }
        }
        if self
            .e
            .model
            .call_for(self.e.jobs.get(j))
            .is_some_and(|c| c.guard.is_some())
        {
            self.guard_record(j, Outcome::Timeout);
        }
        self.on_attempt_failed(j, Outcome::Timeout, false, origin);
    }

    /// Where job `j`'s current attempt is blocked when `j` gives up on it, as an origin code
    /// (`causality.rs`, docs/model.md "Causality"). An attempt that no longer exists was lost
    /// (`j`'s origin says where) or answered, its answer on the way; one still on the wire was
    /// held up there (the link). Otherwise the attempt's time at its service is split into
    /// waiting in the queue, its own work and its calls, and the longest part decides: its own
    /// work is that service's doing; its calls are followed down to where they are blocked;
    /// the queue is the doing of whatever holds the instance's workers — the service itself,
    /// unless most of them wait on calls ([`Ctx::queue_holder`]), which are then followed
    /// down.
    fn blocked_on(&self, j: u32) -> u16 {
        let jobs = &self.e.jobs;
        let job = jobs.get(j);
        match jobs.live(job.child, job.child_gen) {
            None => self.waited_origin(job),
            Some(c) if c.phase == Phase::InFlight => causality::link_code(c.link),
            Some(_) => self.walk_blocked((job.child, job.child_gen)),
        }
    }

    /// Where attempt `at` (at its service) is blocked: see [`Ctx::blocked_on`].
    fn walk_blocked(&self, mut at: (u32, u32)) -> u16 {
        let jobs = &self.e.jobs;
        // Call chains are acyclic; the bound only guards against a cycle through a stale
        // sample.
        for _ in 0..64 {
            let Some(c) = jobs.live(at.0, at.1) else {
                return causality::UNKNOWN_CODE;
            };
            let here = causality::service_code(c.node);
            let deferred = self.deferred_link(c).is_some();
            let holder = match c.phase {
                // A call deeper down that is on its way: it is headed for its callee.
                Phase::InFlight => return here,
                Phase::Queued => self.queue_holder(c.node, c.instance).ok_or(here),
                Phase::Working if !deferred => {
                    if c.start_ns.saturating_sub(c.arrive_ns)
                        >= self.e.now.saturating_sub(c.start_ns)
                    {
                        self.queue_holder(c.node, c.instance).ok_or(here)
                    } else {
                        Err(here)
                    }
                }
                Phase::Calling | Phase::Backoff | Phase::Gathering | Phase::Working => {
                    // (Saturating: a record the walk reads mid-transition never panics it.)
                    let queue_ns = c.start_ns.saturating_sub(c.arrive_ns);
                    let work_ns = c.done_ns.saturating_sub(c.start_ns);
                    let calls_ns = self.e.now.saturating_sub(c.done_ns);
                    // At the instant its work ends an attempt is still at work (see
                    // `at_work`): its calls have taken no time yet.
                    if calls_ns > 0 && calls_ns >= queue_ns && calls_ns >= work_ns {
                        Ok(c)
                    } else if queue_ns >= work_ns {
                        self.queue_holder(c.node, c.instance).ok_or(here)
                    } else {
                        Err(here)
                    }
                }
                // A planned leaf's queue and work, or its answer on the way back.
                _ => Err(here),
            };
            match holder.map(|h| self.current_attempt(h)) {
                Ok(Ok(next)) => at = next,
                Ok(Err(origin)) | Err(origin) => return origin,
            }
        }
        causality::UNKNOWN_CODE
    }

    /// Where a failure of service `node`'s queue at instance `inst` starts (turned away from a
    /// full queue, shed or expired after waiting): whatever holds the instance's workers, as
    /// for a timeout in the queue ([`Ctx::blocked_on`]).
    pub(crate) fn queue_origin(&self, node: u32, inst: u32) -> u16 {
        match self
            .queue_holder(node, inst)
            .map(|h| self.current_attempt(h))
        {
            Some(Ok(at)) => self.walk_blocked(at),
            Some(Err(origin)) => origin,
            None => causality::service_code(node),
        }
    }

    /// For an attempt waiting in instance `inst`'s queue (of service `node`): the job whose
    /// worker the queue waits behind, when the instance's workers are mostly waiting on calls;
    /// `None` when they are mostly at their own work. The jobs that last took a worker
    /// ([`InstanceState::started`], those still holding one) stand for all: more of them
    /// waiting on a call than working gives the longest-started one that waits.
    fn queue_holder(&self, node: u32, inst: u32) -> Option<&super::Job> {
        if inst == NONE || self.e.model.services[node as usize].calls.is_empty() {
            return None;
        }
        let (mut waiting, mut working, mut first) = (0, 0, None);
        for (w, wg) in self.instances[inst as usize].started_oldest_first() {
            let Some(h) = self.e.jobs.live(w, wg).filter(|h| h.instance == inst) else {
                continue;
            };
            if self.at_work(h) {
                working += 1;
            } else if matches!(h.phase, Phase::Calling | Phase::Backoff | Phase::Gathering)
                || self.deferred_link(h).is_some()
            {
                waiting += 1;
                first = first.or(Some(h));
            }
        }
        if waiting > working { first } else { None }
    }

    /// The attempt job `h` waits on now (`Ok`), or, when there is none to follow, where its
    /// wait started (`Err`): a backoff after a failure, an attempt lost or answered, a call
    /// whose request is still on its way (its callee).
    fn current_attempt(&self, h: &super::Job) -> Result<(u32, u32), u16> {
        let jobs = &self.e.jobs;
        let mut h = h;
        if h.phase == Phase::Gathering {
            // The first branch still out.
            let (mut b, mut bg) = (h.child, h.child_gen);
            loop {
                match jobs.live(b, bg) {
                    Some(branch) if branch.phase != Phase::Joined => break h = branch,
                    Some(_) => {
                        let side = jobs.side(b);
                        (b, bg) = (side.next_branch, side.next_branch_gen);
                    }
                    None => return Err(causality::service_code(h.node)),
                }
            }
        }
        match h.phase {
            Phase::Calling if jobs.live(h.child, h.child_gen).is_some() => {
                Ok((h.child, h.child_gen))
            }
            _ => Err(self.waited_origin(h)),
        }
    }

    /// Where the wait of job `h`, whose current call has no attempt to follow, started: its
    /// origin (a failed attempt's, a lost one's link, an answered one's callee), or, when no
    /// attempt was ever sent — it waits for a bulkhead place or a cache fill, or its deferred
    /// call is on its way — the callee it waits for.
    fn waited_origin(&self, h: &super::Job) -> u16 {
        if h.origin != causality::UNKNOWN_CODE && h.phase != Phase::Working {
            return h.origin;
        }
        self.e
            .model
            .call_for(h)
            .map_or(causality::UNKNOWN_CODE, |call| {
                causality::service_code(call.to)
            })
    }

    /// Whether job `h` counts as at its own work for the blocked-on walk: working, or its
    /// work ended at this very instant. (At that instant the event-by-event path may or may
    /// not have taken the work's end yet, by the order of the two events; a fast path's
    /// deferred send has no such event. Both paths so judge a tie alike.)
    fn at_work(&self, h: &super::Job) -> bool {
        match h.phase {
            Phase::Working => self.deferred_link(h).is_none(),
            Phase::Calling | Phase::Backoff | Phase::Gathering => h.done_ns == self.e.now,
            _ => false,
        }
    }

    /// The link of job `c`'s first call when its own work is over (strictly before now) and
    /// that call is deferred (`DEFERRED`): it is on the wire, as its event-by-event twin's
    /// attempt is.
    fn deferred_link(&self, c: &super::Job) -> Option<u32> {
        (c.flags & DEFERRED != 0 && self.e.now > c.done_ns)
            .then(|| self.e.model.call_for(c).map(|call| call.link))
            .flatten()
    }

    /// Job `j`'s current call had an attempt fail with a failure that started at `origin`:
    /// the job remembers it (its own failure, if the call fails, carries it) and the call's
    /// link counts it.
    pub(crate) fn note_failed_attempt(&mut self, j: u32, origin: u16) {
        let job = self.e.jobs.get_mut(j);
        job.origin = origin;
        if let Some(call) = self.e.model.call_for(self.e.jobs.get(j)) {
            self.e.links[call.link as usize].failure_origins.add(origin);
        }
    }

    /// Attempt `k` vanished at blackholed instance `inst`: remembers it with its caller, whose
    /// timeout for it then counts against the instance (see [`BLACKHOLED`]).
    fn note_blackholed(&mut self, k: u32, inst: u32) {
        let job = self.e.jobs.get(k);
        let (parent, parent_gen, token) = (job.parent, job.parent_gen, job.parent_token);
        if parent == NONE || self.e.jobs.live(parent, parent_gen).is_none() {
            return;
        }
        self.e.jobs.get_mut(parent).flags |= BLACKHOLED;
        let side = self.e.jobs.side_mut(parent);
        side.blackhole_inst = inst;
        side.blackhole_token = token;
    }

    /// Marks an abandoned attempt and everything it is waiting on as orphaned: the chain of
    /// attempts through its `child` links, and every open branch of a parallel fan-out on it.
    pub(crate) fn orphan_chain(&mut self, k: u32, generation: u32) {
        self.orphan_chain_as(k, generation, ORPHANED);
    }

    /// [`Ctx::orphan_chain`] setting `flags` (`ORPHANED`, with `SUPERSEDED` when the caller
    /// took another copy's answer).
    pub(crate) fn orphan_chain_as(&mut self, k: u32, generation: u32, flags: u16) {
        self.orphan_walk(k, generation, flags);
        if self.e.model.any_cancellation {
            self.send_cancel(k, generation);
        }
    }

    /// Marks the chain below attempt `k` with `flags` (see [`Ctx::orphan_chain_as`]) without
    /// telling its service: the caller vanished without a word (a blackholed crash).
    pub(crate) fn orphan_walk(&mut self, k: u32, generation: u32, flags: u16) {
        let mut stack = std::mem::take(&mut self.e.orphan_stack);
        stack.push((k, generation));
        while let Some((mut k, mut generation)) = stack.pop() {
            while k != NONE {
                let Some(job) = self.e.jobs.live(k, generation) else {
                    break;
                };
                // A planned job that completed before now has finished (its reply is in flight).
                if job.phase == Phase::Settled
                    || (job.phase == Phase::Planned && job.done_ns < self.e.now)
                {
                    break;
                }
                // A deferred send made before now has a request on the wire to orphan too.
                if job.flags & DEFERRED != 0 && job.done_ns < self.e.now {
                    self.flush_deferred(k);
                }
                let Some(job) = self.e.jobs.live(k, generation) else {
                    break;
                };
                let (next, next_gen, gathering) =
                    (job.child, job.child_gen, job.phase == Phase::Gathering);
                self.e.jobs.get_mut(k).flags |= flags;
                if gathering {
                    self.push_open_branches(k, &mut stack);
                    break;
                }
                k = next;
                generation = next_gen;
            }
        }
        self.e.orphan_stack = stack;
    }

    /// Orphans what job `k` has on the wire: its current attempt and, while its call is
    /// hedged, the first attempt too (it is crashing, or abandoned as a parallel branch).
    pub(crate) fn orphan_attempts(&mut self, k: u32) {
        self.orphan_attempts_as(k, ORPHANED);
    }

    /// [`Ctx::orphan_attempts`] setting `flags` (see [`Ctx::orphan_chain_as`]).
    pub(crate) fn orphan_attempts_as(&mut self, k: u32, flags: u16) {
        for (child, child_gen) in self.attempts_out(k) {
            self.orphan_chain_as(child, child_gen, flags);
        }
    }

    /// [`Ctx::orphan_attempts`] without cancels: job `k`'s instance vanished (blackholed), so
    /// no word reaches its callees.
    fn orphan_attempts_silently(&mut self, k: u32) {
        for (child, child_gen) in self.attempts_out(k) {
            self.orphan_walk(child, child_gen, ORPHANED);
        }
    }

    /// What job `k` has on the wire: its current attempt and, while its call is hedged, the
    /// first attempt too (else [`NONE`], which the orphan walks skip).
    fn attempts_out(&self, k: u32) -> [(u32, u32); 2] {
        let job = self.e.jobs.get(k);
        let first = if job.flags & HEDGED != 0 {
            let side = self.e.jobs.side(k);
            (side.alt_child, side.alt_child_gen)
        } else {
            (NONE, 0)
        };
        [(job.child, job.child_gen), first]
    }

    /// The caller of attempt `k` gave up on it now: if `k`'s service honours cancellation, a
    /// cancel leaves on `k`'s link and reaches it one latency later (the link's base latency
    /// and any fault's added latency; no spread, no packet loss). A partition, a cut of the
    /// request direction or an isolated instance at either end loses it.
    fn send_cancel(&mut self, k: u32, generation: u32) {
        let Some(job) = self.e.jobs.live(k, generation) else {
            return;
        };
        if !self.e.model.services[job.node as usize].cancellation
            || matches!(
                job.phase,
                Phase::Planned | Phase::Settled | Phase::Joined | Phase::Free
            )
        {
            return;
        }
        let (link_id, inst, parent) = (job.link, job.instance, job.parent);
        let link = &self.e.links[link_id as usize];
        if link.partitioned || link.cut_requests {
            return;
        }
        // An isolated instance at either end: the cancel cannot leave or arrive.
        if self.e.isolated_instances > 0
            && (self.isolated(inst)
                || (parent != NONE && self.isolated(self.e.jobs.get(parent).instance)))
        {
            return;
        }
        let delay = self.e.model.links[link_id as usize].latency_ns + link.extra_ns;
        self.e.sched.schedule(
            self.e.now + delay,
            EventKind::CancelArrive,
            k,
            generation,
            0,
            0,
        );
    }

    /// A cancel reaches attempt `k`: a request on the wire is marked (dropped when it
    /// arrives), a queued one is dropped, one at its own work is marked (it stops when the
    /// work ends), one waiting on a call, a backoff or its parallel branches stops now.
    fn on_cancel_arrive(&mut self, k: u32, generation: u32) {
        let Some(job) = self.e.jobs.live(k, generation) else {
            return;
        };
        if !self.e.model.services[job.node as usize].cancellation {
            // Turned off by an edit while the cancel was on the wire.
            return;
        }
        match job.phase {
            Phase::InFlight => self.e.jobs.mark_cancelled(k),
            Phase::Working => {
                // Waiting for a CPU core: it stops before its own work; at work: after it.
                let inst = job.instance;
                let waiting_at = self.instances[inst as usize]
                    .mech
                    .as_ref()
                    .and_then(|m| m.core_queue.iter().position(|&q| q == k));
                match waiting_at {
                    Some(at) => {
                        if let Some(m) = self.instances[inst as usize].mech.as_mut() {
                            m.core_queue.remove(at);
                        }
                        self.stop_cancelled(k);
                    }
                    None => self.e.jobs.mark_cancelled(k),
                }
            }
            Phase::Queued => {
                let inst = job.instance;
                let is = &mut *self.instances[inst as usize];
                let Some(at) = is.queue.iter().position(|&q| q == k) else {
                    debug_assert!(false, "a queued job is in its instance's queue");
                    return;
                };
                is.touch(self.e.now);
                is.queue.remove(at);
                self.load_changed(inst);
                self.drop_cancelled(k);
            }
            Phase::Calling | Phase::Backoff | Phase::Gathering => self.stop_cancelled(k),
            _ => {}
        }
    }

    /// Attempt `k`, on the wire when its caller's cancel overtook it (a latency spread) or
    /// taken out of its queue, is dropped: counted, never worked on.
    #[cold]
    #[inline(never)]
    fn drop_cancelled(&mut self, k: u32) {
        self.count_cancelled(k);
        self.e.jobs.free(k);
    }

    /// Counts attempt `k` as cancelled at its service (superseded too when its caller took
    /// another copy's answer).
    fn count_cancelled(&mut self, k: u32) {
        let job = self.e.jobs.get(k);
        let m = &mut self.services[job.node as usize].metrics.interval;
        m.cancelled += 1;
        m.superseded += u64::from(job.superseded());
    }

    /// Job `k`, holding a worker, stops because its caller cancelled it: what it waits on is
    /// abandoned and cancelled in turn, its bulkhead place and any cache fill are given up,
    /// and the worker takes the next request. No reply: its caller no longer listens.
    pub(crate) fn stop_cancelled(&mut self, k: u32) {
        let job = *self.e.jobs.get(k);
        let inst = job.instance;
        if job.phase == Phase::Gathering {
            self.free_branches(k, false);
        } else {
            self.orphan_attempts(k);
            if job.timeout.is_some() {
                self.e.sched.cancel(job.timeout);
            }
        }
        if job.flags & (super::jobs::FILLING | super::jobs::MISSED) != 0 {
            self.end_cache_fill(k, false);
        }
        self.leave_bulkhead(k);
        self.count_cancelled(k);
        let is = &mut *self.instances[inst as usize];
        is.touch(self.e.now);
        is.busy -= 1;
        self.load_changed(inst);
        self.e.jobs.free(k);
        self.dispatch(inst);
    }

    /// The zone of instance `inst` (`None` for [`NONE`] or a service in no zone).
    pub(crate) fn instance_zone(&self, inst: u32) -> Option<u16> {
        if inst == NONE {
            return None;
        }
        let is = &self.instances[inst as usize];
        self.e.model.zone_of(is.service, is.ordinal)
    }

    /// Whether a message `sender` sends now is lost to a per-instance network fault: its
    /// instance is isolated, or (a reply) a zone partition cuts the callee's zone from the
    /// caller's (a request's zones are judged where it arrives, once the load balancer has
    /// picked an instance). Out of line, behind [`Engine::instance_cuts`].
    #[cold]
    #[inline(never)]
    fn cut_off_sender(&self, sender: Sender) -> bool {
        let (Sender::Caller(j) | Sender::Callee(j)) = sender;
        let inst = self.e.jobs.get(j).instance;
        self.isolated(inst)
            || (matches!(sender, Sender::Callee(_))
                && !self.e.zone_cuts.is_empty()
                && self.zone_cut(j, inst))
    }

    /// Attempt `k` reaching instance `inst`: when a zone partition cuts it off from its
    /// caller, it is lost on the way (counted `dropped` at the service and `lost` on its link;
    /// the caller waits for its timeout) and freed. Out of line: zone partitions are rare, and
    /// the arrival path stays small.
    #[cold]
    #[inline(never)]
    fn lost_between_zones(&mut self, k: u32, inst: u32) -> bool {
        if self.e.zone_cuts.is_empty() || !self.zone_cut(k, inst) {
            return false;
        }
        let (link, parent, s) = {
            let job = self.e.jobs.get(k);
            (job.link, job.parent, job.node)
        };
        // It reached the service's load balancer and vanished on the way to the instance, as
        // at an isolated one: `dropped` there, and `lost` on its link.
        self.services[s as usize].metrics.interval.dropped += 1;
        self.e.links[link as usize].interval.lost += 1;
        // (`zone_cut` found the caller alive.)
        self.e.jobs.get_mut(parent).origin = causality::link_code(link);
        self.e.jobs.free(k);
        true
    }

    /// Whether attempt `k`, at (or headed for) instance `inst`, and its caller (an instance, or
    /// a source's clients) are in zones a zone partition cuts apart (a caller in no zone, or
    /// gone, is never cut off).
    #[cold]
    #[inline(never)]
    pub(crate) fn zone_cut(&self, k: u32, inst: u32) -> bool {
        let job = self.e.jobs.get(k);
        let Some(parent) = self.e.jobs.live(job.parent, job.parent_gen) else {
            return false;
        };
        faults::zones_cut(
            &self.e.zone_cuts,
            self.job_zone(parent),
            self.instance_zone(inst),
        )
    }

    /// Whether instance `inst` (or [`NONE`]) is cut off from the network by an `Isolate`
    /// fault; without one anywhere, a single counter test.
    #[inline]
    pub(crate) fn isolated(&self, inst: u32) -> bool {
        self.e.isolated_instances > 0 && inst != NONE && self.instances[inst as usize].isolated
    }

    /// An attempt of job `j`'s current call failed with `reason` (a reply or its timeout), a
    /// failure that started at `origin` ([`crate::causality::Origin::code`]): retry it per
    /// policy, or fail the call (at once when the answer said not to retry: `pushback`).
    pub(crate) fn on_attempt_failed(
        &mut self,
        j: u32,
        reason: Outcome,
        pushback: bool,
        origin: u16,
    ) {
        self.note_failed_attempt(j, origin);
        let job = self.e.jobs.get_mut(j);
        job.last_outcome = outcome_u8(reason) | if pushback { PUSHBACK } else { 0 };
        if pushback {
            self.fail_caller(j, reason);
            return;
        }
        let (client, internal, node, inst, idx, attempts, prev) = (
            job.is_client(),
            job.is_internal(),
            job.node,
            job.instance,
            job.call_idx,
            job.call_attempt,
            job.prev_backoff_ns,
        );
        let Some(call) = self.e.model.call_for(self.e.jobs.get(j)) else {
            self.fail_caller(j, reason);
            return;
        };
        let (retry, to) = (call.retry, call.to);
        if internal && self.lifecycle_retries_stopped(j) {
            self.fail_caller(j, reason);
            return;
        }
        if u32::from(attempts) < retry.max_attempts && retry.retries(reason) {
            // The caller's random stream and retry budget for this call.
            let (rng, budget): (&mut SimRng, Option<&mut RetryBudget>) = if client {
                let st = &mut *self.sources[node as usize];
                (&mut st.rng, Some(&mut st.budget))
            } else if internal {
                (self.caller_rng(j), None)
            } else {
                let st = &mut *self.instances[inst as usize];
                (&mut st.rng, st.budgets.get_mut(idx as usize))
            };
            // A caller that is not persistent gives up here (a draw only when it may).
            let persists = retry.persistence >= 1.0 || rng::chance(rng, retry.persistence);
            if persists && budget.is_none_or(|b| b.try_spend(&retry)) {
                let mut delay = retry.delay_ns(u32::from(attempts), prev, rng);
                if matches!(reason, Outcome::Throttled | Outcome::Overloaded)
                    && let Some(m) = &self.e.model.services[to as usize].mech
                {
                    // The answer said when to come back (Retry-After).
                    delay = delay.max(m.retry_after_ns);
                }
                if internal {
                    self.internal_attempt_failed(j);
                }
                let jm = self.e.jobs.get_mut(j);
                jm.prev_backoff_ns = delay;
                if delay == 0 {
                    self.send_attempt(j);
                } else {
                    jm.token = jm.token.wrapping_add(1);
                    jm.phase = Phase::Backoff;
                    let (g, t) = (jm.generation, jm.token);
                    self.e
                        .sched
                        .schedule(self.e.now + delay, EventKind::RetryFire, j, g, t, 0);
                }
                return;
            }
        }
        self.fail_caller(j, reason);
    }

    pub(crate) fn fail_caller(&mut self, j: u32, reason: Outcome) {
        let job = self.e.jobs.get(j);
        if job.is_client() {
            self.finish_client(j, reason);
        } else if job.is_internal() {
            self.finish_internal(j, reason);
        } else if self
            .e
            .model
            .call_for(job)
            .and_then(|c| c.guard)
            .is_some_and(|g| g.degrade)
        {
            self.fall_back(j);
        } else if job.is_branch() {
            self.branch_done(j, reason);
        } else {
            self.leave_bulkhead(j);
            self.finish(j, Outcome::DependencyFailed);
        }
    }

    fn on_retry_fire(&mut self, j: u32, generation: u32, token: u32) {
        let Some(job) = self.e.jobs.live(j, generation) else {
            return;
        };
        if job.token != token || job.phase != Phase::Backoff {
            return;
        }
        if job.is_internal() && self.lifecycle_retries_stopped(j) {
            // Retired, restarted or paused while it waited: no further attempt.
            self.e.jobs.free(j);
            return;
        }
        self.send_attempt(j);
    }

    // ---------------------------------------------------------------- services

    /// Load balancer: an instance among the routable ones, or `None`. Always inlined: it is
    /// on every request's arrival.
    #[inline(always)]
    pub(crate) fn lb_pick(&mut self, s: u32) -> Option<u32> {
        let lb = self.e.model.services[s as usize].lb;
        let svc = &mut *self.services[s as usize];
        let n = svc.routable.len() as u32;
        if n == 0 {
            return None;
        }
        if lb == LoadBalancer::LeastOutstanding && n as usize > LEAST_LOADED_SCAN {
            let start = svc.rr_cursor % n;
            svc.rr_cursor = svc.rr_cursor.wrapping_add(1);
            return Some(self.least_outstanding(s, start));
        }
        Some(pick_among(
            lb,
            &svc.routable,
            &mut svc.rr_cursor,
            &mut svc.lb_rng,
            self.instances,
        ))
    }

    /// Zone routing: for attempt `k` at service `s`, an instance in its caller's zone while
    /// that zone has enough routable ones (`ServiceModel::same_zone`), else any
    /// ([`Ctx::lb_pick`]). A zone's picks follow the service's load balancer over the zone's
    /// instances, with a cursor of their own.
    #[cold]
    #[inline(never)]
    fn zone_pick(&mut self, s: u32, k: u32) -> Option<u32> {
        let zone = self.e.jobs.side(k).caller_zone as usize;
        let svc_model = &self.e.model.services[s as usize];
        let (lb, spill_below) = (svc_model.lb, svc_model.same_zone.unwrap_or(0.0));
        let svc = &mut *self.services[s as usize];
        if let (Some(list), Some(&registered)) =
            (svc.zone_routable.get(zone), svc.zone_registered.get(zone))
            && !list.is_empty()
            && list.len() as f64 >= spill_below * f64::from(registered)
        {
            return Some(pick_among(
                lb,
                list,
                &mut svc.zone_cursor[zone],
                &mut svc.lb_rng,
                self.instances,
            ));
        }
        self.lb_pick(s)
    }

    /// The zone of the caller of job `j`'s calls ([`Ctx::job_zone`]; [`NO_ZONE`]: none).
    pub(crate) fn caller_zone(&self, j: u32) -> u16 {
        self.job_zone(self.e.jobs.get(j)).unwrap_or(NO_ZONE)
    }

    /// The zone `job`'s calls come from: its source's clients' for a client request, its
    /// instance's otherwise (`None`: no zone).
    fn job_zone(&self, job: &super::jobs::Job) -> Option<u16> {
        if job.is_client() {
            self.e.model.sources[job.node as usize].zone
        } else {
            self.instance_zone(job.instance)
        }
    }

    /// The instance for attempt `k` at key-routed service `s`: the first routable owner of its
    /// key, from the one its attempt number points to (see [`shard_owners`]); `None` when no
    /// owner can be routed to. A first attempt without a key draws one from the service's
    /// stream and leaves it with its caller for the retries.
    fn shard_pick(&mut self, s: u32, k: u32) -> Option<u32> {
        let job = *self.e.jobs.get(k);
        let shard = self.e.model.services[s as usize].shard.as_deref()?;
        let key = if job.key == NONE {
            let key = shard.keys.choose(&mut self.services[s as usize].lb_rng);
            self.e.jobs.get_mut(k).key = key;
            if self.e.jobs.live(job.parent, job.parent_gen).is_some() {
                self.e.jobs.side_mut(job.parent).shard_key = key;
            }
            key
        } else {
            job.key
        };
        let svc = &*self.services[s as usize];
        let n = (svc.instances.len() as u32).min(self.e.model.services[s as usize].instances);
        if n == 0 {
            return None;
        }
        // A hedge tries the owner after the one its attempt went to.
        let attempt = job
            .attempt
            .saturating_add(u8::from(job.flags & HEDGE_COPY != 0));
        shard_owners(key, n, shard.replicas, attempt)
            .map(|o| svc.instances[o as usize])
            .find(|&g| self.instances[g as usize].routable)
    }

    /// Least-outstanding pick from routable position `start`: the first instance in cyclic
    /// order with the fewest requests, through the service's index (see `least_loaded.rs`).
    fn least_outstanding(&mut self, s: u32, start: u32) -> u32 {
        let svc = &mut *self.services[s as usize];
        if svc.least_loaded.is_none() {
            // Without an index no instance of the service is indexed or marked (see
            // `drop_least_loaded`), so nothing is stale.
            debug_assert!(svc.load_dirty.is_empty());
            for (p, &g) in svc.routable.iter().enumerate() {
                self.instances[g as usize].lb_pos = p as u32;
            }
            let loads = svc
                .routable
                .iter()
                .map(|&g| self.instances[g as usize].in_system());
            svc.least_loaded = Some(LeastLoaded::new(loads));
        }
        let Some(index) = svc.least_loaded.as_mut() else {
            unreachable!("built above")
        };
        for g in svc.load_dirty.drain(..) {
            let is = &mut *self.instances[g as usize];
            is.load_dirty = false;
            if is.lb_pos != u32::MAX {
                index.set(is.lb_pos as usize, is.in_system());
            }
        }
        let pick = svc.routable[index.first_min_from(start as usize)];
        if cfg!(feature = "expensive-checks") {
            debug_assert_eq!(
                pick,
                least_outstanding_scan(&svc.routable, start, self.instances),
                "the index picks what the scan picks"
            );
        }
        pick
    }

    /// Forgets service `s`'s least-outstanding index (its routable list or policy changed:
    /// `rebuild_routable` calls it, and an edit, the only way a policy changes, rebuilds every
    /// service's routable list).
    pub(crate) fn drop_least_loaded(&mut self, s: u32) {
        let svc = &mut *self.services[s as usize];
        if svc.least_loaded.take().is_none() {
            return;
        }
        // The indexed instances are the routable ones (the list changes only in
        // `rebuild_routable`, which drops the index first); the marked ones are among them.
        for &g in &svc.routable {
            let is = &mut *self.instances[g as usize];
            is.lb_pos = u32::MAX;
            is.load_dirty = false;
        }
        svc.load_dirty.clear();
    }

    /// Instance `inst`'s load (queued + at a worker) changed: its service's least-outstanding
    /// index, if it is in one, updates it at the next pick.
    #[inline]
    pub(crate) fn load_changed(&mut self, inst: u32) {
        let is = &mut *self.instances[inst as usize];
        if is.lb_pos != u32::MAX && !is.load_dirty {
            is.load_dirty = true;
            let s = is.service;
            self.services[s as usize].load_dirty.push(inst);
        }
    }

    fn on_request_arrive(&mut self, k: u32, generation: u32) {
        let Some(job) = self.e.jobs.live(k, generation) else {
            return;
        };
        let (s, attempt) = (job.node, job.attempt);
        let now = self.e.now;
        self.e.hops_interval += 1;
        {
            let c = &mut self.services[s as usize].metrics.interval;
            if attempt <= 1 {
                c.offered_first += 1;
            } else {
                c.offered_retry += 1;
            }
        }
        let svc_model = &self.e.model.services[s as usize];
        if svc_model.cancellation && self.e.jobs.cancelled(k) {
            self.drop_cancelled(k);
            return;
        }
        let capacity = svc_model.queue_capacity;
        let pick = if svc_model.removed {
            None
        } else if self.e.model.key_routed(s) {
            self.shard_pick(s, k)
        } else if self.e.model.zone_routed(s) {
            self.zone_pick(s, k)
        } else {
            self.lb_pick(s)
        };
        let Some(inst) = pick else {
            self.services[s as usize].metrics.interval.rejected += 1;
            let origin = self.no_instance_origin(s);
            self.reply_and_free_with(k, Outcome::Rejected, origin);
            return;
        };
        if self.e.instance_cuts > 0 && self.lost_between_zones(k, inst) {
            return;
        }
        let down = self.instances[inst as usize].down;
        if down == Some(KillMode::Refuse) {
            self.services[s as usize].metrics.interval.refused += 1;
            // A refused connection is an error of this instance to the load balancer's
            // outlier detection (Envoy maps connect failures to 5xx by default).
            self.outlier_record(inst, false);
            self.reply_and_free(k, Outcome::Refused);
            return;
        }
        // A blackholed instance swallows it; so does the network in front of an isolated one.
        if down == Some(KillMode::Blackhole) || self.isolated(inst) {
            self.services[s as usize].metrics.interval.dropped += 1;
            self.note_blackholed(k, inst);
            self.e.jobs.free(k);
            return;
        }
        let job = self.e.jobs.get_mut(k);
        job.instance = inst;
        job.arrive_ns = now;
        if self.instances[inst as usize].mech.is_some() && !self.admit(k, inst) {
            return;
        }
        if (self.e.fast_paths || self.instances[inst as usize].planned) && self.try_plan(k, inst) {
            return;
        }
        let is = &mut *self.instances[inst as usize];
        if is.busy < is.workers {
            self.start_work(k, inst);
        } else if (is.queue.len() as u32) < capacity
            || (self.e.model.services[s as usize].priority && self.push_out_for(k, inst))
        {
            let is = &mut *self.instances[inst as usize];
            // Every queued job gets its controlled-delay timeout (none without it), so one
            // queued before a live edit turned it on is never judged by a stale value.
            let codel = self.e.model.services[s as usize]
                .mech
                .as_ref()
                .and_then(|m| m.codel);
            self.e.jobs.side_mut(k).codel_timeout_ns = codel.map_or(NEVER, |codel| {
                let since = is
                    .mech
                    .as_deref()
                    .map_or(now, |m| m.queue_nonempty_since_ns);
                codel_timeout_ns(codel, is.queue.is_empty(), since, now)
            });
            is.touch(now);
            self.enqueue_job(k, inst);
            self.e.jobs.get_mut(k).phase = Phase::Queued;
            self.services[s as usize].metrics.interval.queued += 1;
            self.load_changed(inst);
        } else {
            self.services[s as usize].metrics.interval.rejected += 1;
            self.fail_in_queue(k, s, inst, Outcome::Rejected);
        }
    }

    /// Puts job `k` in `inst`'s queue (after [`InstanceState::touch`]): at the back, or in an
    /// ordered queue (by criticality or deadline, [`queue_key`]) behind every waiting request
    /// that comes first or ties with it (first come, first served among equals).
    pub(crate) fn enqueue_job(&mut self, k: u32, inst: u32) {
        let now = self.e.now;
        let is = &mut *self.instances[inst as usize];
        let svc = &self.e.model.services[is.service as usize];
        if !svc.ordered() {
            is.enqueue(k, now);
            return;
        }
        let (jobs, edf) = (&self.e.jobs, svc.edf);
        let key = queue_key(edf, jobs.get(k));
        // Searched from the back, where most arrivals go.
        let at = is
            .queue
            .iter()
            .rposition(|&q| queue_key(edf, jobs.get(q)) <= key);
        is.enqueue_at(k, at.map_or(0, |i| i + 1), now);
    }

    /// A priority queue of `inst` is full when job `k` arrives: if its newest least critical
    /// request matters less than `k`, it is pushed out (rejected) to make room. Returns
    /// whether there is room now.
    #[cold]
    fn push_out_for(&mut self, k: u32, inst: u32) -> bool {
        let rank = self.e.jobs.get(k).criticality;
        let is = &mut *self.instances[inst as usize];
        let Some(&last) = is.queue.back() else {
            return false;
        };
        // (A health probe waiting there keeps its place: it is the balancer's, not a caller's.)
        let waiting = self.e.jobs.get(last);
        if waiting.criticality >= rank || waiting.flags & PROBE != 0 {
            return false;
        }
        is.touch(self.e.now);
        is.queue.pop_back();
        let s = is.service;
        self.services[s as usize].metrics.interval.rejected += 1;
        self.fail_in_queue(last, s, inst, Outcome::Rejected);
        true
    }

    /// Orders `inst`'s queue by criticality, most critical first, or by deadline, earliest
    /// first, keeping the order among equals (a live edit made its queue a priority or a
    /// deadline queue).
    pub(crate) fn sort_queue(&mut self, inst: u32) {
        let jobs = &self.e.jobs;
        let edf = self.e.model.services[self.instances[inst as usize].service as usize].edf;
        let queue = self.instances[inst as usize].queue.make_contiguous();
        queue.sort_by_key(|&q| queue_key(edf, jobs.get(q)));
    }

    /// Puts job `k` on a worker of `inst` (the caller checked one is free). Returns false if
    /// the job had expired and was dropped instead.
    pub(crate) fn start_work(&mut self, k: u32, inst: u32) -> bool {
        let now = self.e.now;
        let job = self.e.jobs.get_mut(k);
        let (node, arrive_ns, generation) = (job.node, job.arrive_ns, job.generation);
        if job.flags & PROBE != 0 {
            self.start_probe_work(k, inst);
            return true;
        }
        if job.flags & POISON != 0 && self.services[node as usize].poisoned {
            // A query of death: the process dies working on it, with all it holds (this
            // request too, which its caller sees refused, like the rest).
            job.phase = Phase::Queued;
            self.restart_instance(inst, "query of death");
            return false;
        }
        let svc_model = &self.e.model.services[node as usize];
        if svc_model.deadline_propagation && now >= job.deadline_ns {
            self.services[node as usize].metrics.interval.expired += 1;
            self.fail_in_queue(k, node, inst, Outcome::Expired);
            return false;
        }
        if let Some(mech) = &svc_model.mech
            && now > arrive_ns
            // It waited in the queue, which set its controlled-delay timeout.
            && now - arrive_ns > mech.max_wait_ns.min(self.e.jobs.side(k).codel_timeout_ns)
        {
            self.services[node as usize].metrics.interval.shed += 1;
            self.fail_in_queue(k, node, inst, Outcome::Shed);
            return false;
        }
        let job = self.e.jobs.get_mut(k);
        job.phase = Phase::Working;
        job.start_ns = now;
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.busy += 1;
        is.record_start(k, generation);
        self.load_changed(inst);
        let is = &mut *self.instances[inst as usize];
        let m = &mut self.services[node as usize].metrics.interval;
        m.started += 1;
        m.wait_ns += u128::from(now - arrive_ns);
        if is.mech.is_some() {
            self.start_guarded_work(k, inst);
            return true;
        }
        let work = work_ns(
            self.e.model.services[node as usize]
                .dist
                .sample_ns(&mut is.rng),
            is.slow_factor,
            is.added_ns,
        );
        let done = now + work;
        if self.can_defer_send(k, inst, done) {
            let call = &self.e.model.services[node as usize].calls[0];
            let arrive = done + call.latency_ns + self.e.links[call.link as usize].extra_ns;
            self.e.fast_path_counts.deferred_sends += 1;
            let job = self.e.jobs.get_mut(k);
            job.flags |= DEFERRED;
            job.start_ns = now;
            job.done_ns = done;
            self.e.sched.schedule_as_of(
                // The request leaves at the work's end, whose event is scheduled now.
                AsOf {
                    vsched_ns: done,
                    parent_vsched_ns: now,
                },
                arrive,
                EventKind::SendArrive,
                k,
                generation,
                0,
                0,
            );
        } else {
            self.e
                .sched
                .schedule(done, EventKind::WorkDone, k, generation, 0, 0);
        }
        true
    }

    fn on_work_done(&mut self, k: u32, generation: u32) {
        let Some(job) = self.e.jobs.live(k, generation) else {
            return;
        };
        if job.phase != Phase::Working {
            return;
        }
        let (inst, node) = (job.instance, job.node);
        if self.instances[inst as usize].mech.is_some() && !self.end_guarded_work(k, inst) {
            return;
        }
        if self.e.model.services[node as usize].cancellation && self.e.jobs.cancelled(k) {
            // Cancelled during its own work: it makes no call and sends no reply.
            self.stop_cancelled(k);
            return;
        }
        let is = &mut *self.instances[inst as usize];
        if is.error_probability > 0.0 && rng::chance(&mut is.rng, is.error_probability) {
            self.finish(k, Outcome::Error);
            return;
        }
        let now = self.e.now;
        // Where its own work ended and its calls began (`Ctx::blocked_on`).
        self.e.jobs.get_mut(k).done_ns = now;
        self.begin_calls(k, now, Delivery::Line);
    }

    /// After job `k`'s own work, done at `at_ns`: its downstream calls from the first.
    fn begin_calls(&mut self, k: u32, at_ns: Nanos, delivery: Delivery) -> Option<(u32, u32)> {
        let jm = self.e.jobs.get_mut(k);
        jm.call_idx = 0;
        jm.reps_left = 0;
        self.enter_next_call_at(k, at_ns, delivery)
    }

    /// From the job's `call_idx` on, makes the first call whose probability fires; finishes
    /// the job with success when no call is left.
    pub(crate) fn enter_next_call(&mut self, k: u32) {
        let now = self.e.now;
        self.enter_next_call_at(k, now, Delivery::Line);
    }

    /// [`Ctx::enter_next_call`] at `at_ns` (see [`Delivery`]).
    fn enter_next_call_at(
        &mut self,
        k: u32,
        at_ns: Nanos,
        delivery: Delivery,
    ) -> Option<(u32, u32)> {
        let job = self.e.jobs.get(k);
        if job.call_idx == 0
            && self.e.model.services[job.node as usize].fan_out != FanOut::Sequential
        {
            debug_assert!(
                delivery == Delivery::Line,
                "parallel calls are never deferred"
            );
            self.scatter(k);
            return None;
        }
        if job.call_idx == 0
            && self.e.model.services[job.node as usize]
                .mech
                .as_ref()
                .is_some_and(|m| m.cache.is_some())
        {
            match self.cache_lookup(k) {
                CacheStep::Hit => self.e.jobs.get_mut(k).call_idx = 1,
                CacheStep::Fill => {}
                CacheStep::Wait => return None,
            }
        }
        let job = self.e.jobs.get_mut(k);
        let calls = &self.e.model.services[job.node as usize].calls;
        while let Some(call) = calls.get(job.call_idx as usize) {
            let fires = call.probability >= 1.0
                || rng::chance(
                    &mut self.instances[job.instance as usize].rng,
                    call.probability,
                );
            if fires {
                job.reps_left = call.count.saturating_sub(1).min(u32::from(u16::MAX)) as u16;
                return self.start_call_at(k, at_ns, delivery);
            }
            job.call_idx += 1;
        }
        debug_assert!(
            delivery == Delivery::Line,
            "a deferred send always has a call to make"
        );
        self.finish(k, Outcome::Success);
        None
    }

    /// True if job `k`, whose own work at `inst` ends at `done_ns`, can defer its first call:
    /// nothing is decided at the end of its work (no error fault, a call that is always made
    /// and has no budget, no loss on its link) and the request's arrival is within this batch
    /// of events, so the work's end and the request's arrival can be one event (see
    /// [`Ctx::on_send_arrive`]).
    #[inline]
    fn can_defer_send(&self, k: u32, inst: u32, done_ns: Nanos) -> bool {
        let job = self.e.jobs.get(k);
        if !self.e.fast_paths
            || job.journey != NONE
            || self.instances[inst as usize].error_probability != 0.0
        {
            return false;
        }
        let svc = &self.e.model.services[job.node as usize];
        // A cancel may stop the job at the end of its work, before the call.
        if svc.mech.is_some() || svc.fan_out != FanOut::Sequential || svc.cancellation {
            return false;
        }
        let Some(call) = svc.calls.first() else {
            return false;
        };
        if !call.is_plain() {
            return false;
        }
        let link = &self.e.links[call.link as usize];
        let delay = call.latency_ns + link.extra_ns;
        // A lossy link draws whether the request is lost from the caller's random stream at
        // the send; deferred, that draw would come after draws the instance makes meanwhile.
        call.probability >= 1.0
            && call.retry.budget.is_none()
            && !link.partitioned
            && link.loss == 0.0
            && link.unresolved.is_none()
            && self.e.zone_cuts.is_empty()
            && (call.timeout_ns == NEVER || call.timeout_ns > delay)
            && done_ns + delay < self.e.limit_ns
    }

    /// A deferred send's request arrives: job `k` ended its own work at its `done_ns` and
    /// made its first call then; both happen now, exactly as the two events would have.
    fn on_send_arrive(&mut self, k: u32, generation: u32) {
        let Some(job) = self.e.jobs.live(k, generation) else {
            return;
        };
        if job.flags & DEFERRED == 0 {
            // Made ordinary by a fault or a timeout meanwhile.
            return;
        }
        let done = job.done_ns;
        self.e.jobs.get_mut(k).flags &= !DEFERRED;
        if let Some((child, child_gen)) = self.begin_calls(k, done, Delivery::Now) {
            self.on_request_arrive(child, child_gen);
        }
    }

    /// Makes job `k`'s deferred send ordinary now: if its work has ended, the call was made
    /// then (its request and timeout are scheduled at their times); else its work's end is
    /// an event again.
    pub(crate) fn flush_deferred(&mut self, k: u32) {
        let job = self.e.jobs.get_mut(k);
        if job.flags & DEFERRED == 0 {
            return;
        }
        job.flags &= !DEFERRED;
        let (start, done, generation) = (job.start_ns, job.done_ns, job.generation);
        if done < self.e.now {
            self.begin_calls(k, done, Delivery::Absolute);
        } else {
            self.e.sched.schedule_as_of(
                AsOf::estimated(start),
                done,
                EventKind::WorkDone,
                k,
                generation,
                0,
                0,
            );
        }
    }

    /// Flushes the deferred sends of jobs matching `pred` (in creation order).
    pub(crate) fn flush_deferred_where(&mut self, pred: impl FnMut(&super::jobs::Job) -> bool) {
        let mut pred = pred;
        for k in self.e.jobs.find(|j| j.flags & DEFERRED != 0 && pred(j)) {
            self.flush_deferred(k);
        }
    }

    /// A service job is done (it held a worker): metrics, reply, free worker, next in queue.
    pub(crate) fn finish(&mut self, k: u32, outcome: Outcome) {
        let now = self.e.now;
        let job = self.e.jobs.get(k);
        let (inst, node, arrive_ns, orphaned, superseded) = (
            job.instance,
            job.node,
            job.arrive_ns,
            job.orphaned(),
            job.superseded(),
        );
        if self.e.model.services[node as usize].mech.is_some() {
            self.on_guarded_finish(k, outcome);
        }
        {
            let is = &mut *self.instances[inst as usize];
            is.touch(now);
            is.busy -= 1;
        }
        self.load_changed(inst);
        let m = &mut self.services[node as usize].metrics;
        let residence = now - arrive_ns;
        m.interval.residence_ns += u128::from(residence);
        m.hist.record_ns(residence);
        if outcome == Outcome::Success {
            m.interval.succeeded += 1;
            m.interval.goodput += u64::from(!orphaned);
        } else {
            m.interval.failed[outcome as usize] += 1;
        }
        m.interval.orphaned += u64::from(orphaned);
        m.interval.superseded += u64::from(superseded);
        self.reply(k, outcome);
        self.e.jobs.free(k);
        self.dispatch(inst);
    }

    /// Starts queued jobs while workers are free.
    pub(crate) fn dispatch(&mut self, inst: u32) {
        let is = &mut *self.instances[inst as usize];
        if is.queue.is_empty() || is.busy >= is.workers || is.down.is_some() {
            return;
        }
        let svc = &self.e.model.services[is.service as usize];
        let (lifo, lifo_above) = (
            svc.lifo,
            svc.mech.as_ref().map_or(u32::MAX, |m| m.lifo_above),
        );
        loop {
            let is = &mut *self.instances[inst as usize];
            if is.busy >= is.workers {
                return;
            }
            is.touch(self.e.now);
            // (An ordered queue keeps its order: validation rules out adaptive LIFO there.)
            let next = if lifo || is.queue.len() as u32 > lifo_above {
                is.queue.pop_back()
            } else {
                is.queue.pop_front()
            };
            let Some(k) = next else { return };
            self.load_changed(inst);
            self.start_work(k, inst);
        }
    }

    /// A message leaving now on link `link_id` (a request from `Sender::Caller`, a reply from
    /// `Sender::Callee`) with base latency `latency_ns` and spread `latency_sd_ns`: whether it
    /// is lost (partition, a cut of its direction, packet loss) and its delay, fault latency
    /// included. Loss, then spread, are drawn from the sender's stream, each only when it
    /// applies.
    #[inline]
    pub(crate) fn wire(
        &mut self,
        link_id: u32,
        latency_ns: Nanos,
        latency_sd_ns: Nanos,
        sender: Sender,
    ) -> (bool, Nanos) {
        let link = &self.e.links[link_id as usize];
        let extra_ns = link.extra_ns;
        let cut = match sender {
            Sender::Caller(_) => link.cut_requests,
            Sender::Callee(_) => link.cut_replies,
        };
        let mut lost = link.partitioned || cut;
        let loss = link.loss;
        if self.e.instance_cuts > 0 {
            lost |= self.cut_off_sender(sender);
        }
        let mut delay = latency_ns + extra_ns;
        if latency_sd_ns > 0 || loss > 0.0 {
            let tick_ns = self.e.model.tick_ns;
            let rng = match sender {
                Sender::Caller(j) => self.caller_rng(j),
                Sender::Callee(k) => self.callee_rng(k),
            };
            if loss > 0.0 && rng::chance(rng, loss) {
                lost = true;
            }
            if latency_sd_ns > 0 {
                delay = varied_latency(latency_ns, latency_sd_ns, tick_ns, rng) + extra_ns;
            }
        }
        (lost, delay)
    }

    /// Sends job `k`'s reply to its caller, if the caller still waits for this attempt.
    pub(crate) fn reply(&mut self, k: u32, outcome: Outcome) {
        let job = self.e.jobs.get(k);
        let origin = match outcome {
            Outcome::Success => causality::UNKNOWN_CODE,
            Outcome::DependencyFailed => job.origin,
            _ => causality::service_code(job.node),
        };
        self.reply_with(k, outcome, origin);
    }

    /// [`Ctx::reply`] with a failure that started at `origin`.
    #[inline]
    pub(crate) fn reply_with(&mut self, k: u32, outcome: Outcome, origin: u16) {
        let job = self.e.jobs.get(k);
        let (parent, parent_gen, parent_token, link_id, journey, node) = (
            job.parent,
            job.parent_gen,
            job.parent_token,
            job.link,
            job.journey,
            job.node,
        );
        if parent == NONE {
            return;
        }
        let Some(p) = self.e.jobs.live(parent, parent_gen) else {
            return;
        };
        if !self.e.jobs.awaits(parent, parent_token) {
            return;
        }
        let (parent_node, parent_client, parent_calling, parent_timeout) =
            (p.node, p.is_client(), p.phase == Phase::Calling, p.timeout);
        let payload =
            u32::from(outcome_u8(outcome) | self.pushback(k, outcome)) | u32::from(origin) << 8;
        let link_model = self.e.model.links[link_id as usize];
        let (lost, delay) = self.wire(
            link_id,
            link_model.latency_ns,
            link_model.latency_sd_ns,
            Sender::Callee(k),
        );
        let variable = link_model.latency_sd_ns > 0;
        let link = &mut self.e.links[link_id as usize];
        let arrive_ns = self.e.now + delay;
        if lost {
            link.interval.lost += 1;
            // The caller's timeout will find the reply lost on this link.
            self.e.jobs.get_mut(parent).origin = causality::link_code(link_id);
        } else if parent_client
            && parent_calling
            && outcome == Outcome::Success
            && self.can_settle_client_reply(parent_node, parent_timeout, arrive_ns)
        {
            self.settle_client_reply(parent, arrive_ns);
        } else if variable {
            self.e.sched.schedule(
                arrive_ns,
                EventKind::ReplyArrive,
                parent,
                parent_gen,
                parent_token,
                payload,
            );
        } else {
            self.e.sched.schedule_after(
                self.e.now,
                delay,
                EventKind::ReplyArrive,
                parent,
                parent_gen,
                parent_token,
                payload,
            );
        }
        if journey != NONE {
            let to = if parent_client {
                NodeRef::Source(parent_node)
            } else {
                NodeRef::Service(parent_node)
            };
            self.e.legs.push(SampledLeg {
                journey,
                from: NodeRef::Service(node),
                to,
                depart_ns: self.e.now,
                arrive_ns: self.e.now + delay,
                kind: LegKind::Reply { outcome },
                lost,
            });
        }
    }

    /// True if a successful reply reaching client job of source `s` at `arrive_ns` can be
    /// settled now: nothing can happen to a client waiting for a reply except its own timeout,
    /// so if that cannot fire first and the arrival is before the end of this batch of events
    /// (no command, interval close or view in between), the outcome is already known.
    #[inline]
    fn can_settle_client_reply(&self, s: u32, timeout: EventHandle, arrive_ns: Nanos) -> bool {
        if !self.e.fast_paths
            || arrive_ns >= self.e.limit_ns
            || !self.e.model.sources[s as usize].call.is_plain()
            // A closed population's user acts on its answer when it arrives.
            || self.e.model.sources[s as usize].closed().is_some()
        {
            return false;
        }
        if timeout.is_some() {
            // A timeout at the same instant was scheduled first, so it would win the tie.
            self.e.sched.time_of(timeout).is_none_or(|t| t > arrive_ns)
        } else {
            self.e.model.sources[s as usize].call.timeout_ns == NEVER
        }
    }

    /// What a successful reply's arrival at client job `j` at `arrive_ns` does (see
    /// [`Ctx::on_reply_arrive`] and [`Ctx::finish_client`]), done at its departure.
    fn settle_client_reply(&mut self, j: u32, arrive_ns: Nanos) {
        self.e.fast_path_counts.settled_replies += 1;
        let job = self.e.jobs.get_mut(j);
        if job.timeout.is_some() {
            self.e.sched.cancel(job.timeout);
            job.timeout = EventHandle::NONE;
        }
        let (s, created_ns) = (job.node, job.arrive_ns);
        let source = &self.e.model.sources[s as usize];
        self.e.links[source.call.link as usize].interval.successes += 1;
        self.sources[s as usize].last_success_ns = Some(arrive_ns);
        let m = &mut self.sources[s as usize].metrics;
        let latency = arrive_ns - created_ns;
        m.interval.succeeded += 1;
        m.interval.goodput += 1;
        m.interval.residence_ns += u128::from(latency);
        m.hist.record_ns(latency);
        self.e.jobs.free(j);
    }

    /// [`PUSHBACK`] if job `k`'s failure with `outcome` says "don't retry": an answer for
    /// overload from a service whose admission says so, or a dependency failure caused by
    /// such an answer (passed up); else 0.
    #[inline]
    fn pushback(&self, k: u32, outcome: Outcome) -> u8 {
        let job = self.e.jobs.get(k);
        let says = match outcome {
            Outcome::Success => false,
            Outcome::Rejected | Outcome::Shed | Outcome::Throttled | Outcome::Overloaded => {
                self.e.model.services[job.node as usize]
                    .mech
                    .as_ref()
                    .is_some_and(|m| m.dont_retry)
            }
            Outcome::DependencyFailed => job.last_outcome & PUSHBACK != 0,
            _ => false,
        };
        if says { PUSHBACK } else { 0 }
    }

    /// Replies and frees a job that never held a worker (rejected, refused, expired).
    pub(crate) fn reply_and_free(&mut self, k: u32, outcome: Outcome) {
        self.reply(k, outcome);
        self.e.jobs.free(k);
    }

    /// [`Ctx::reply_and_free`] with a failure that started at `origin`.
    fn reply_and_free_with(&mut self, k: u32, outcome: Outcome, origin: u16) {
        self.reply_with(k, outcome, origin);
        self.e.jobs.free(k);
    }

    /// Job `k`, turned away by the queue of service `node`'s instance `inst` (full, or waited
    /// too long), fails with `outcome` where the queue's failures start
    /// ([`Ctx::queue_origin`]).
    fn fail_in_queue(&mut self, k: u32, node: u32, inst: u32, outcome: Outcome) {
        let origin = self.queue_origin(node, inst);
        self.reply_and_free_with(k, outcome, origin);
    }

    /// Where a request turned away for want of an instance of service `s` fails from: the
    /// failure that took out the first of its instances out of service for one (a gating
    /// periodic or a startup call that failed), else `s` itself (killed, scaled to zero,
    /// ejected, removed).
    fn no_instance_origin(&self, s: u32) -> u16 {
        self.services[s as usize]
            .instances
            .iter()
            .filter_map(|&g| {
                let is = &self.instances[g as usize];
                is.mech
                    .as_deref()
                    .filter(|m| !is.routable && m.out_origin != causality::UNKNOWN_CODE)
                    .map(|m| m.out_origin)
            })
            .next()
            .unwrap_or_else(|| causality::service_code(s))
    }

    /// A client request is over.
    pub(crate) fn finish_client(&mut self, j: u32, outcome: Outcome) {
        let now = self.e.now;
        let job = self.e.jobs.get(j);
        let (node, arrive_ns) = (job.node, job.arrive_ns);
        if outcome == Outcome::Success {
            self.sources[node as usize].last_success_ns = Some(now);
        }
        let m = &mut self.sources[node as usize].metrics;
        if outcome == Outcome::Success {
            let latency = now - arrive_ns;
            m.interval.succeeded += 1;
            m.interval.goodput += 1;
            m.interval.residence_ns += u128::from(latency);
            m.hist.record_ns(latency);
        } else {
            m.interval.failed[outcome as usize] += 1;
            let origin = self.e.jobs.get(j).origin;
            self.sources[node as usize].failure_origins.add(origin);
        }
        self.e.jobs.free(j);
        self.user_done(node, outcome != Outcome::Success);
    }

    /// A client request of source `s` is over (`failed` or not). If `s` is a closed
    /// population, its user thinks before its next request (for the time after a failure if
    /// it failed), unless the population has shrunk (an edit, the end of a load spike) and it
    /// retires.
    fn user_done(&mut self, s: u32, failed: bool) {
        let model = &self.e.model.sources[s as usize];
        let Some((users, think_ms)) = model.closed() else {
            return;
        };
        let think_ms = if failed {
            model.think_after_failure_ms().unwrap_or(think_ms)
        } else {
            think_ms
        };
        let st = &mut *self.sources[s as usize];
        st.users_waiting = st.users_waiting.saturating_sub(1);
        if model.removed
            || st.users_waiting + st.users_thinking >= closed_population(users, st.rate_factor)
        {
            return;
        }
        st.users_thinking += 1;
        let now = self.e.now;
        self.schedule_think(s, now, think_ms);
    }

    /// One user of closed source `s` thinks from `from_ns` (exponential, mean `think_ms`) and
    /// then sends its next request: its arrival, under the source's current token.
    fn schedule_think(&mut self, s: u32, from_ns: Nanos, think_ms: f64) {
        let st = &mut *self.sources[s as usize];
        let at = from_ns.saturating_add(think_ns(&mut st.rng, think_ms));
        self.e
            .sched
            .schedule(at, EventKind::SourceArrival, s, st.arrival_token, 0, 0);
    }

    /// Kills instance `inst`: its queued and in-progress work is lost. With `Refuse`, callers
    /// of lost work get a connection-refused reply; with `Blackhole`, nothing.
    pub(crate) fn crash_instance(&mut self, inst: u32, mode: KillMode) {
        // Planned requests are not in the queue or at a worker event by event: put them there
        // first, so they are lost with the rest (a no-op for an instance in ordinary mode).
        self.materialize(inst);
        let now = self.e.now;
        let lost = self.e.jobs.find(|j| {
            !j.is_client()
                && j.instance == inst
                && matches!(
                    j.phase,
                    Phase::Queued
                        | Phase::Working
                        | Phase::Calling
                        | Phase::Backoff
                        | Phase::Gathering
                        | Phase::Joined
                )
        });
        let s = self.instances[inst as usize].service;
        for k in lost {
            let job = *self.e.jobs.get(k);
            // A process that dies resets its connections (its callees hear of it); a
            // blackholed one just stops answering.
            match mode {
                KillMode::Refuse => self.orphan_attempts(k),
                KillMode::Blackhole => self.orphan_attempts_silently(k),
            }
            if job.flags & super::jobs::FILLING != 0 {
                self.end_cache_fill(k, false);
            }
            if job.flags & (INTERNAL | PROBE | BRANCH) == 0 {
                let m = &mut self.services[s as usize].metrics.interval;
                match mode {
                    KillMode::Refuse => {
                        m.refused += 1;
                        self.reply(k, Outcome::Refused);
                    }
                    KillMode::Blackhole => m.dropped += 1,
                }
            }
            self.e.jobs.free(k);
        }
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.queue.clear();
        is.busy = 0;
        is.cores_busy = 0;
        self.load_changed(inst);
        let is = &mut *self.instances[inst as usize];
        if let Some(m) = is.mech.as_mut() {
            m.core_queue.clear();
            m.probe = None;
            for g in &mut m.calls {
                g.in_call = 0;
                g.waiting.clear();
            }
        }
    }
}

/// Who sends a message on a link, for [`Ctx::wire`]: the calling job (a request) or the
/// called job (a reply). Its random stream draws the message's loss and latency spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sender {
    /// Job `j` calls.
    Caller(u32),
    /// Job `k` answers.
    Callee(u32),
}

/// How a call's request is delivered by [`Ctx::send_attempt_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    /// Sent now: the arrival goes on its delay line.
    Line,
    /// A deferred send (made one link delay ago) whose arrival is now: it is returned to
    /// be processed at once; the timeout goes on the line of `timeout − delay`.
    Now,
    /// Sent in the past, arrival still ahead: request and timeout are scheduled at their
    /// absolute times.
    Absolute,
}

/// The users of a closed population of `users` under a load-spike `factor`, rounded.
pub(crate) fn closed_population(users: u32, factor: f64) -> u32 {
    (f64::from(users) * factor)
        .round()
        .clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A think time of mean `think_ms` drawn from `rng` (exponential), ns, at least 1.
fn think_ns(rng: &mut SimRng, think_ms: f64) -> Nanos {
    ((rng::exp1(rng) * think_ms * 1e6 + 0.5) as Nanos).clamp(1, HORIZON_NS)
}

/// A one-way latency drawn from `|N(mean, sd)|`, at least one tick.
#[inline]
pub(crate) fn varied_latency(
    mean_ns: Nanos,
    sd_ns: Nanos,
    tick_ns: Nanos,
    rng: &mut SimRng,
) -> Nanos {
    let x = (mean_ns as f64 + sd_ns as f64 * rng::std_normal(rng)).abs();
    ((x + 0.5) as Nanos).max(tick_ns)
}

/// Own-work time of a request from its sampled time under an instance's slow factor and added
/// latency (at least 1 ns).
#[inline]
pub(crate) fn work_ns(sampled_ns: Nanos, slow_factor: f64, added_ns: Nanos) -> Nanos {
    let mut work = sampled_ns;
    if slow_factor != 1.0 {
        work = ((work as f64 * slow_factor + 0.5) as Nanos).min(HORIZON_NS);
    }
    (work + added_ns).clamp(1, HORIZON_NS)
}

/// Collects mutable references to components into a dense vector by their index; `None` if
/// some index in `0..len` has no component (a broken world, never a valid one).
pub(crate) fn dense<'a, T>(
    items: impl Iterator<Item = &'a mut T>,
    len: usize,
    index: impl Fn(&T) -> u32,
) -> Option<Vec<&'a mut T>>
where
    T: 'a,
{
    let mut slots: Vec<Option<&'a mut T>> = (0..len).map(|_| None).collect();
    for item in items {
        let i = index(item) as usize;
        if i < len {
            slots[i] = Some(item);
        }
    }
    slots.into_iter().collect()
}

/// Routable instances up to which least-outstanding scans them; above, it keeps an index. In
/// debug builds (the tests) the index serves from two instances on, and every pick it makes
/// is checked against the scan.
const LEAST_LOADED_SCAN: usize = if cfg!(debug_assertions) { 1 } else { 32 };

/// One pick of load balancer `lb` among `list` (not empty), with the cursor and random stream
/// it keeps; least-outstanding by a scan.
#[inline(always)]
fn pick_among(
    lb: LoadBalancer,
    list: &[u32],
    cursor: &mut u32,
    rng: &mut SimRng,
    instances: &[&mut InstanceState],
) -> u32 {
    let n = list.len() as u32;
    match lb {
        LoadBalancer::RoundRobin => {
            let i = if *cursor >= n { 0 } else { *cursor };
            *cursor = i + 1;
            list[i as usize]
        }
        LoadBalancer::Random => list[rng::below(rng, n) as usize],
        LoadBalancer::LeastOutstanding => {
            let start = *cursor % n;
            *cursor = cursor.wrapping_add(1);
            least_outstanding_scan(list, start, instances)
        }
        LoadBalancer::PowerOfTwoChoices => {
            if n == 1 {
                list[0]
            } else {
                let a = rng::below(rng, n);
                let mut b = rng::below(rng, n - 1);
                if b >= a {
                    b += 1;
                }
                let (ga, gb) = (list[a as usize], list[b as usize]);
                if instances[gb as usize].in_system() < instances[ga as usize].in_system() {
                    gb
                } else {
                    ga
                }
            }
        }
    }
}

/// Least-outstanding by a scan: from routable position `start`, the first instance in cyclic
/// order with the fewest requests (queued + at a worker).
fn least_outstanding_scan(routable: &[u32], start: u32, instances: &[&mut InstanceState]) -> u32 {
    let n = routable.len() as u32;
    let mut best = routable[start as usize];
    let mut best_load = instances[best as usize].in_system();
    for off in 1..n {
        let g = routable[((start + off) % n) as usize];
        let load = instances[g as usize].in_system();
        if load < best_load {
            best = g;
            best_load = load;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::fast_path_check::{assert_same, parse, steps};

    #[test]
    fn a_rate_too_small_to_ever_send_sends_nothing_and_the_run_ends() {
        // The gap to the next arrival lies past the end of time: the source is silent (the
        // scheduler used to loop there forever). After a step to a real rate it sends as
        // Poisson: 100/s over the last 5 s, 500 ± 4·√500.
        let run = |rate: &str| {
            let s = parse(&format!(
                r#"(version: 1, name: "tiny", duration_s: 1, seed: 5,
                    sources: [(name: "c", target: "api", rate: {rate})],
                    services: [(name: "api", workers: 1, service_time: Exponential(mean_ms: 1.0))])"#
            ));
            let mut sim = crate::Simulation::new(&s);
            sim.run_to(10.0, |_| {});
            sim.summary().hops as f64
        };
        assert_eq!(run("Constant(1e-300)"), 0.0);
        let hops = run("Step(from_per_s: 1e-300, to_per_s: 100, at_s: 5.0)");
        assert!((hops - 500.0).abs() <= 4.0 * 500f64.sqrt(), "{hops}");
    }

    #[test]
    fn deferred_sends_match_the_event_path_under_caller_faults_and_timeouts() {
        // The caller's own work is long against the client timeout (timeouts often fire while
        // a send is deferred), and every fault that touches the caller or its link hits it.
        let s = parse(
            r#"(version: 1, name: "deferred", duration_s: 1, seed: 31, sample_every: 11,
                sources: [(name: "c", target: "api", rate: Constant(400), timeout_ms: 6.0, retry: (max_attempts: 2))],
                services: [
                    (name: "api", instances: 2, workers: 8, service_time: Exponential(mean_ms: 4.0),
                     calls: [(to: "db", timeout_ms: 8.0, retry: (max_attempts: 2)), (to: "db", probability: 0.5)]),
                    (name: "db", workers: 6, lb: LeastOutstanding, service_time: Exponential(mean_ms: 2.0)),
                ],
                faults: [
                    (at_s: 0.4, duration_s: 0.3, fault: Kill(service: "api", instances: First(1), mode: Refuse)),
                    (at_s: 0.9, duration_s: 0.3, fault: Kill(service: "api", instances: First(1), mode: Blackhole)),
                    (at_s: 1.4, duration_s: 0.3, fault: Errors(service: "api", probability: 0.2)),
                    (at_s: 1.9, duration_s: 0.3, fault: Slow(service: "api", factor: 2.0)),
                    (at_s: 2.4, duration_s: 0.3, fault: CapacityCut(service: "api", workers: Some(2))),
                    (at_s: 2.9, duration_s: 0.2, fault: Partition(from: "api", to: "db")),
                    (at_s: 3.3, duration_s: 0.3, fault: LinkLatency(from: "api", to: "db", added_ms: 2.0)),
                    (at_s: 3.8, duration_s: 0.3, fault: Kill(service: "db", mode: Refuse)),
                ])"#,
        );
        assert_same("deferred", &s, &steps(4.5), |c| {
            c.deferred_sends > 1000 && c.planned == 0
        });
    }

    #[test]
    fn settled_client_replies_match_the_event_path() {
        // Client timeouts close to the response time: many replies race their timeout.
        let s = parse(
            r#"(version: 1, name: "settle", duration_s: 1, seed: 8, sample_every: 3,
                sources: [(name: "a", target: "s", rate: Constant(300), timeout_ms: 9.0, retry: (max_attempts: 3)),
                          (name: "b", target: "s", rate: Ramp(from_per_s: 10, to_per_s: 200, start_s: 0.5, end_s: 2.0))],
                services: [(name: "s", workers: 3, lb: PowerOfTwoChoices, instances: 2, service_time: Exponential(mean_ms: 5.0))])"#,
        );
        assert_same("settle", &s, &steps(3.0), |c| c.settled_replies > 500);
    }
}
