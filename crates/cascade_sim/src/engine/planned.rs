//! Planned leaf instances: exact FIFO queueing without a completion event per request.
//!
//! A *leaf* instance (its service makes no downstream calls) with a FIFO queue, no deadline
//! checks and no fault that decides anything at completion time (errors) serves each request
//! in a way that is fixed the moment it arrives: FIFO order fixes the order in which requests
//! start, and a request's start is the earlier of its arrival and the moment the first worker
//! frees up (Kiefer–Wolfowitz / Lindley recursion for c servers). So at arrival the instance
//! draws the service time (the same draw, from the same stream, in the same order as the
//! event-by-event path, which draws at start), computes start and completion, and schedules
//! the reply's arrival at the caller directly. The completion itself is not an event: its
//! effects (metrics of the interval it falls in, the worker freeing, the next request
//! starting) are already known, and are *settled* — counted — at the first of: the reply's
//! arrival, the end of the interval, the end of the batch of events (so views and metrics
//! read at tick boundaries are exact), or a change that needs the event-by-event state.
//!
//! Anything that could change the plan puts the instance back into ordinary (event-by-event)
//! mode first, *materialising* the plan at that instant: requests already finished are
//! settled, requests at a worker get their completion event, and requests still waiting go
//! back into the queue with the instance's random stream rewound to before their draws (so
//! they draw at start, exactly as if they had never been planned). That happens on every
//! fault start or end on the service or on a link to it, every live edit, every crash of the
//! instance (a kill, a restart, a latched failure: its planned requests are lost with the
//! rest), and an arrival the plan cannot take (over a partitioned link). An instance enters planned mode again when an
//! eligible request arrives and it is empty.
//!
//! Requests whose journey is sampled keep one event at their completion, which settles them
//! and publishes the reply leg at its exact time.
//!
//! Results are identical to the event-by-event path ([`Engine::fast_paths`] off): the reply
//! is scheduled as of the work's end, so it takes the reference's place among events at the
//! same nanosecond (`scheduler.rs`, up to what its stamps cannot tell apart). A
//! fingerprint test checks this on scenarios exercising every fault and edit.
//!
//! [`Engine::fast_paths`]: super::step::Engine::fast_paths

use std::cmp::Reverse;

use super::jobs::{NONE, POISON, Phase, STARTED};
use super::model::NodeRef;
use super::scheduler::{AsOf, EventKind};
use super::state::{InstanceState, PlanEntry, PlanTotals};
use super::step::{Ctx, work_ns};
use crate::metrics::Outcome;
use crate::sampling::{LegKind, SampledLeg};
use crate::time::Nanos;

/// Makes `is.queue` the plan's requests from `first_unstarted` on (its waiting requests),
/// touching only those that started or arrived since the last publication: the ones that
/// started leave the front of the queue, the newly planned ones join its back.
fn publish_queue(is: &mut InstanceState, first_unstarted: usize) {
    let waiting = is.plan.len().saturating_sub(first_unstarted);
    let totals = &mut is.plan_totals;
    if std::mem::take(&mut totals.queue_dirty) {
        is.queue.clear();
        is.queue
            .extend(is.plan.range(is.plan.len() - waiting..).map(|e| e.job));
    } else {
        // Newly planned and still waiting: a suffix of the plan (a started one would mean
        // that every request before it has started too).
        let fresh = is
            .plan
            .range(is.plan.len() - waiting..)
            .rev()
            .take_while(|e| e.seq >= totals.queue_seq_end)
            .count();
        // Of the requests already in the queue, the ones still waiting are its back part.
        let kept = waiting - fresh;
        let gone = is.queue.len() - kept;
        is.queue.drain(..gone);
        is.queue
            .extend(is.plan.range(is.plan.len() - fresh..).map(|e| e.job));
    }
    totals.queue_seq_end = totals.next_seq;
    if cfg!(feature = "expensive-checks") {
        debug_assert!(
            is.queue
                .iter()
                .eq(is.plan.range(is.plan.len() - waiting..).map(|e| &e.job))
        );
    }
}

/// Length of `[from, to)` ∩ `[lo, hi)`.
#[inline]
fn overlap(from: Nanos, to: Nanos, lo: Nanos, hi: Nanos) -> u64 {
    to.min(hi).saturating_sub(from.max(lo))
}

impl Ctx<'_, '_> {
    /// Offers job `k`, just arrived at live instance `inst` (whose `arrive_ns` and `instance`
    /// are set), to the planner. Returns true if the instance took it planned; false if the
    /// caller must handle it event by event (the instance is then in ordinary mode).
    #[inline]
    pub(crate) fn try_plan(&mut self, k: u32, inst: u32) -> bool {
        let job = self.e.jobs.get(k);
        let (node, link, poison) = (job.node, job.link, job.flags & POISON != 0);
        let is = &*self.instances[inst as usize];
        let l = &self.e.links[link as usize];
        let eligible = self.e.fast_paths
            && !l.partitioned
            && !l.cut_replies
            && l.loss == 0.0
            && self.e.zone_cuts.is_empty()
            && self.e.model.links[link as usize].latency_sd_ns == 0
            && self.e.model.services[node as usize].plannable()
            // A query of death is worked event by event (its instance may crash on it).
            && !poison
            && is.mech.is_none()
            && is.error_probability == 0.0
            && is.workers > 0;
        if is.planned {
            if eligible {
                self.plan_arrival(k, inst);
                return true;
            }
            self.materialize(inst);
            return false;
        }
        if eligible && is.busy == 0 && is.queue.is_empty() {
            let now = self.e.now;
            let is = &mut *self.instances[inst as usize];
            is.touch(now);
            is.planned = true;
            is.plan_totals = PlanTotals {
                acct_ns: now,
                ..PlanTotals::default()
            };
            self.plan_arrival(k, inst);
            return true;
        }
        false
    }

    /// Plans job `k` at planned instance `inst`: start, completion and reply, or rejection
    /// when the queue is full.
    fn plan_arrival(&mut self, k: u32, inst: u32) {
        let now = self.e.now;
        let job = self.e.jobs.get(k);
        let (node, generation, link, journey) = (job.node, job.generation, job.link, job.journey);
        let svc = &self.e.model.services[node as usize];
        let (capacity, dist) = (svc.queue_capacity, svc.dist);
        let is = &mut *self.instances[inst as usize];
        // Settled or finished requests at the front of the plan are forgotten.
        while let Some(front) = is.plan.front() {
            if self
                .e
                .jobs
                .live(front.job, front.generation)
                .is_some_and(|j| j.phase == Phase::Planned)
            {
                break;
            }
            is.plan.pop_front();
        }
        while is.busy_until.peek().is_some_and(|&Reverse(t)| t <= now) {
            is.busy_until.pop();
        }
        let start = if is.busy_until.len() < is.workers as usize {
            now
        } else {
            if capacity != u32::MAX {
                // The waiting requests are the plan's tail that starts after now (starts never
                // decrease along it, and only a started request can have been settled): a
                // binary search, not a walk of the queue.
                let waiting = is.plan.len() - is.plan.partition_point(|e| e.start_ns <= now);
                if cfg!(feature = "expensive-checks") {
                    debug_assert_eq!(
                        waiting,
                        is.plan
                            .iter()
                            .rev()
                            .take_while(|e| self
                                .e
                                .jobs
                                .live(e.job, e.generation)
                                .is_some_and(|j| j.phase == Phase::Planned && j.start_ns > now))
                            .count()
                    );
                }
                if waiting >= capacity as usize {
                    self.services[node as usize].metrics.interval.rejected += 1;
                    self.reply_and_free(k, Outcome::Rejected);
                    return;
                }
            }
            self.services[node as usize].metrics.interval.queued += 1;
            let Some(Reverse(free_at)) = is.busy_until.pop() else {
                unreachable!("every worker is busy")
            };
            free_at
        };
        self.e.fast_path_counts.planned += 1;
        let rng_before = is.rng.clone();
        let raw = dist.sample_ns(&mut is.rng);
        let done = start + work_ns(raw, is.slow_factor, is.added_ns);
        is.busy_until.push(Reverse(done));
        let totals = &mut is.plan_totals;
        is.plan.push_back(PlanEntry {
            job: k,
            generation,
            start_ns: start,
            rng_before,
            seq: totals.next_seq,
        });
        totals.next_seq += 1;
        totals.live += 1;
        totals.unaccounted_from_sum += u128::from(now.max(totals.acct_ns));
        let job = self.e.jobs.get_mut(k);
        job.phase = Phase::Planned;
        job.start_ns = start;
        job.done_ns = done;
        if start == now {
            job.flags |= STARTED;
            self.services[node as usize].metrics.interval.started += 1;
        }
        let reply_at = done
            + self.e.model.links[link as usize].latency_ns
            + self.e.links[link as usize].extra_ns;
        self.e.sched.schedule_as_of(
            // The reply leaves at the work's end, whose event is scheduled at its start.
            AsOf {
                vsched_ns: done,
                parent_vsched_ns: start,
            },
            reply_at,
            EventKind::PlannedReply,
            k,
            generation,
            0,
            0,
        );
        if journey != NONE {
            if start == now {
                // Scheduled by the arrival, as the reference path does.
                self.e
                    .sched
                    .schedule(done, EventKind::PlannedDone, k, generation, 0, 0);
            } else {
                // By the end of the work before it.
                self.e.sched.schedule_as_of(
                    AsOf::estimated(start),
                    done,
                    EventKind::PlannedDone,
                    k,
                    generation,
                    0,
                    0,
                );
            }
        }
    }

    /// Counts planned job `k` as completed (at its `done_ns`, which is in the open interval):
    /// the metrics `finish` records, and its share of the time integrals.
    fn settle(&mut self, k: u32) {
        let job = self.e.jobs.get_mut(k);
        debug_assert_eq!(job.phase, Phase::Planned);
        job.phase = Phase::Settled;
        let (inst, node, arrive, start, done) = (
            job.instance,
            job.node,
            job.arrive_ns,
            job.start_ns,
            job.done_ns,
        );
        let (orphaned, superseded, counted) =
            (job.orphaned(), job.superseded(), job.flags & STARTED != 0);
        job.flags |= STARTED;
        let is = &mut *self.instances[inst as usize];
        let totals = &mut is.plan_totals;
        let acct = arrive.max(totals.acct_ns);
        totals.live -= 1;
        totals.unaccounted_from_sum -= u128::from(acct);
        let queue = overlap(arrive, start, acct, done);
        let busy = overlap(start, done, acct, done);
        is.area_queue += queue;
        is.area_busy += busy;
        is.area_in_system += queue + busy;
        let m = &mut self.services[node as usize].metrics;
        if !counted {
            m.interval.started += 1;
            m.interval.wait_ns += u128::from(start - arrive);
        }
        let residence = done - arrive;
        m.interval.residence_ns += u128::from(residence);
        m.hist.record_ns(residence);
        m.interval.succeeded += 1;
        m.interval.goodput += u64::from(!orphaned);
        m.interval.orphaned += u64::from(orphaned);
        m.interval.superseded += u64::from(superseded);
    }

    /// The reply of planned job `k` reaches its caller.
    pub(crate) fn on_planned_reply(&mut self, k: u32, generation: u32) {
        let Some(job) = self.e.jobs.live(k, generation) else {
            return;
        };
        match job.phase {
            Phase::Planned => self.settle(k),
            Phase::Settled => {}
            // Materialised: its completion event replies.
            _ => return,
        }
        let job = self.e.jobs.get(k);
        let (parent, parent_gen, parent_token) = (job.parent, job.parent_gen, job.parent_token);
        self.e.jobs.free(k);
        self.on_reply_arrive(
            parent,
            parent_gen,
            parent_token,
            Outcome::Success,
            false,
            crate::causality::UNKNOWN_CODE,
        );
    }

    /// Planned job `k` with a sampled journey completes: settle it and publish its reply leg.
    pub(crate) fn on_planned_done(&mut self, k: u32, generation: u32) {
        let Some(job) = self.e.jobs.live(k, generation) else {
            return;
        };
        if job.phase != Phase::Planned {
            return;
        }
        self.settle(k);
        let job = self.e.jobs.get(k);
        let (parent, parent_gen, parent_token, link, journey, node) = (
            job.parent,
            job.parent_gen,
            job.parent_token,
            job.link,
            job.journey,
            job.node,
        );
        let Some(p) = self.e.jobs.live(parent, parent_gen) else {
            return;
        };
        if !self.e.jobs.awaits(parent, parent_token) {
            return;
        }
        let to = if p.is_client() {
            NodeRef::Source(p.node)
        } else {
            NodeRef::Service(p.node)
        };
        let now = self.e.now;
        let delay =
            self.e.model.links[link as usize].latency_ns + self.e.links[link as usize].extra_ns;
        self.e.legs.push(SampledLeg {
            journey,
            from: NodeRef::Service(node),
            to,
            depart_ns: now,
            arrive_ns: now + delay,
            kind: LegKind::Reply {
                outcome: Outcome::Success,
            },
            lost: false,
        });
    }

    /// Brings planned instance `inst` up to time `t` (all events before `t` processed):
    /// settles requests completed before `t`, counts those started, and with `integrate`
    /// adds everyone's share of the time integrals up to `t`. Returns `(busy, first unstarted
    /// plan index)` at `t`.
    ///
    /// It walks only the requests that start by `t` (at most one per worker still working,
    /// plus those that finished since the last time): the ones still waiting after them
    /// are all in the queue for the whole of `[acct_ns, t)` past their arrival, so their
    /// share of the integrals comes from the running totals, not a walk of the backlog.
    fn sync_planned(&mut self, inst: u32, t: Nanos, integrate: bool) -> (u32, usize) {
        let acct = self.instances[inst as usize].plan_totals.acct_ns;
        let mut busy = 0;
        let mut first_unstarted = usize::MAX;
        // The walked requests still planned after the walk: how many, and Σ max(arrival, acct).
        let (mut walked_live, mut walked_from_sum) = (0u32, 0u128);
        let mut i = 0;
        while let Some(e) = self.instances[inst as usize].plan.get(i)
            && e.start_ns <= t
        {
            let (k, generation) = (e.job, e.generation);
            let Some(job) = self
                .e
                .jobs
                .live(k, generation)
                .filter(|j| j.phase == Phase::Planned)
            else {
                // Settled already (its reply arrived, or its sampled completion passed).
                let is = &mut *self.instances[inst as usize];
                is.plan.remove(i);
                is.plan_totals.queue_dirty |= first_unstarted != usize::MAX;
                continue;
            };
            let (node, arrive, start, done) = (job.node, job.arrive_ns, job.start_ns, job.done_ns);
            // FIFO: once one request has not started, none after it has.
            let started = first_unstarted == usize::MAX && (start < t || start == arrive);
            if !started && first_unstarted == usize::MAX {
                first_unstarted = i;
            }
            if started && self.e.jobs.get(k).flags & STARTED == 0 {
                self.e.jobs.get_mut(k).flags |= STARTED;
                let m = &mut self.services[node as usize].metrics.interval;
                m.started += 1;
                m.wait_ns += u128::from(start - arrive);
            }
            if done < t {
                self.settle(k);
                self.instances[inst as usize].plan.remove(i);
                if first_unstarted != usize::MAX {
                    first_unstarted -= 1;
                }
                continue;
            }
            busy += u32::from(started);
            let from = arrive.max(acct);
            walked_live += 1;
            walked_from_sum += u128::from(from);
            if integrate {
                let is = &mut *self.instances[inst as usize];
                let queue = overlap(arrive, start, from, t);
                let work = overlap(start, done, from, t);
                is.area_queue += queue;
                is.area_busy += work;
                is.area_in_system += queue + work;
            }
            i += 1;
        }
        let is = &mut *self.instances[inst as usize];
        if i < is.plan.len() {
            first_unstarted = first_unstarted.min(i);
        }
        if integrate {
            // The rest start after `t`: each waits from max(arrival, acct) to `t`.
            let totals = &mut is.plan_totals;
            let rest = u128::from(totals.live - walked_live);
            let rest_from_sum = totals.unaccounted_from_sum - walked_from_sum;
            // Saturating like `InstanceState::touch` (only an absurd backlog × interval
            // would reach it).
            let waiting = u64::try_from(rest * u128::from(t) - rest_from_sum).unwrap_or(u64::MAX);
            if cfg!(feature = "expensive-checks") {
                debug_assert_eq!(
                    waiting,
                    is.plan
                        .range(i..)
                        .map(|e| t - self.e.jobs.get(e.job).arrive_ns.max(acct))
                        .sum::<u64>()
                );
            }
            is.area_queue = is.area_queue.saturating_add(waiting);
            is.area_in_system = is.area_in_system.saturating_add(waiting);
            totals.acct_ns = t;
            totals.unaccounted_from_sum = u128::from(totals.live) * u128::from(t);
            let dt = t.saturating_sub(is.last_change_ns);
            if is.counts_capacity() {
                is.area_capacity += u64::from(is.workers) * dt;
            }
            is.last_change_ns = t;
        }
        (busy, first_unstarted)
    }

    /// Before an interval closes at `end_ns`: every planned instance settles and integrates
    /// up to the boundary.
    pub(crate) fn sync_planned_instances(&mut self, end_ns: Nanos) {
        for g in 0..self.instances.len() as u32 {
            if self.instances[g as usize].planned {
                self.sync_planned(g, end_ns, true);
            }
        }
    }

    /// At the end of a batch of events (a tick boundary, where views read the state):
    /// planned instances settle what has completed and show their workers and queue as the
    /// event-by-event path would have them in `busy` and `queue`.
    pub(crate) fn publish_planned(&mut self) {
        let now = self.e.now;
        for g in 0..self.instances.len() as u32 {
            if !self.instances[g as usize].planned {
                continue;
            }
            let (busy, first_unstarted) = self.sync_planned(g, now, false);
            let is = &mut *self.instances[g as usize];
            is.busy = busy;
            publish_queue(is, first_unstarted);
        }
    }

    /// Puts planned instance `inst` back into event-by-event mode now (see the module docs).
    pub(crate) fn materialize(&mut self, inst: u32) {
        if !self.instances[inst as usize].planned {
            return;
        }
        let now = self.e.now;
        let (_, first_unstarted) = self.sync_planned(inst, now, true);
        let is = &mut *self.instances[inst as usize];
        is.planned = false;
        is.plan_totals = PlanTotals::default();
        is.busy = 0;
        is.queue.clear();
        is.busy_until.clear();
        if let Some(e) = is.plan.get(first_unstarted) {
            // Waiting requests draw their service time when they start, as if never planned.
            is.rng = e.rng_before.clone();
        }
        for i in 0..is.plan.len() {
            let (k, generation) = (is.plan[i].job, is.plan[i].generation);
            let job = self.e.jobs.get_mut(k);
            if i < first_unstarted {
                job.phase = Phase::Working;
                is.busy += 1;
                // Its start, as `Ctx::start_work` records it on the event-by-event path (in
                // start order: the plan's), for the blocked-on walk's sample of the workers.
                is.record_start(k, generation);
                self.e.sched.schedule_as_of(
                    AsOf::estimated(job.start_ns),
                    job.done_ns,
                    EventKind::WorkDone,
                    k,
                    generation,
                    0,
                    0,
                );
            } else {
                job.phase = Phase::Queued;
                is.queue.push_back(k);
                // Queued before any controlled delay applied to it.
                self.e.jobs.side_mut(k).codel_timeout_ns = crate::time::NEVER;
            }
        }
        is.plan.clear();
        if is.busy < is.workers && !is.queue.is_empty() {
            self.dispatch(inst);
        }
    }

    /// Materialises every planned instance of service `s`.
    pub(crate) fn materialize_service(&mut self, s: u32) {
        for i in 0..self.services[s as usize].instances.len() {
            let g = self.services[s as usize].instances[i];
            self.materialize(g);
        }
    }

    /// Materialises every planned instance.
    pub fn materialize_all(&mut self) {
        for g in 0..self.instances.len() as u32 {
            self.materialize(g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fast_path_check::{assert_same, parse, steps};

    #[test]
    fn a_saturated_bounded_multi_server_queue_matches_the_event_path() {
        // M/M/3 with a waiting room of 4 near and above saturation (rejections, long queues).
        let s = parse(
            r#"(version: 1, name: "mmck", duration_s: 1, seed: 4, sample_every: 9,
                sources: [(name: "c", target: "s", rate: Step(from_per_s: 250, to_per_s: 400, at_s: 3.0), timeout_ms: 30.0,
                           retry: (max_attempts: 2))],
                services: [(name: "s", workers: 3, queue: (capacity: 4), service_time: Exponential(mean_ms: 10.0))])"#,
        );
        assert_same("mmck", &s, &steps(6.0), |c| c.planned > 1000);
    }

    #[test]
    fn faults_on_a_planned_leaf_re_plan_it_exactly() {
        // Every fault that touches a leaf or its links, while requests wait and work there.
        let s = parse(
            r#"(version: 1, name: "faults", duration_s: 1, seed: 12, sample_every: 5,
                sources: [(name: "c", target: "api", rate: Constant(500), timeout_ms: 200.0)],
                services: [
                    (name: "api", workers: 50, service_time: Exponential(mean_ms: 1.0),
                     calls: [(to: "db", timeout_ms: 25.0, retry: (max_attempts: 3))]),
                    (name: "db", instances: 2, lb: Random, workers: 3, queue: (capacity: 10), service_time: LogNormal(mean_ms: 4.0, sigma: 0.5)),
                ],
                faults: [
                    (at_s: 0.5, duration_s: 0.4, fault: Slow(service: "db", instances: First(1), factor: 3.0)),
                    (at_s: 1.1, duration_s: 0.2, fault: Kill(service: "db", instances: First(1), mode: Refuse)),
                    (at_s: 1.5, duration_s: 0.2, fault: Kill(service: "db", mode: Blackhole)),
                    (at_s: 2.0, duration_s: 0.3, fault: Latency(service: "db", added_ms: 2.0)),
                    (at_s: 2.5, duration_s: 0.3, fault: Errors(service: "db", probability: 0.3)),
                    (at_s: 3.0, duration_s: 0.3, fault: CapacityCut(service: "db", workers: Some(1), instances: Some(1))),
                    (at_s: 3.5, duration_s: 0.2, fault: Partition(from: "api", to: "db")),
                    (at_s: 4.0, duration_s: 0.3, fault: LinkLatency(from: "api", to: "db", added_ms: 3.0)),
                ])"#,
        );
        assert_same("faults", &s, &steps(5.0), |c| c.planned > 1000);
    }

    #[test]
    fn a_leaf_called_over_several_links_and_by_a_source_matches_the_event_path() {
        // Two callers and a source share the leaf; one link is partitioned for a while, so
        // requests over it fall back to events while the others are planned.
        let s = parse(
            r#"(version: 1, name: "shared", duration_s: 1, seed: 21, sample_every: 0,
                sources: [(name: "web", target: "a", rate: Constant(300)),
                          (name: "direct", target: "leaf", rate: Constant(100), timeout_ms: 15.0, retry: (max_attempts: 2))],
                services: [
                    (name: "a", workers: 20, service_time: Exponential(mean_ms: 1.0),
                     calls: [(to: "leaf", timeout_ms: 20.0), (to: "b", probability: 0.5)]),
                    (name: "b", workers: 20, service_time: Uniform(min_ms: 0.5, max_ms: 1.5), calls: [(to: "leaf", count: 2, timeout_ms: 20.0)]),
                    (name: "leaf", workers: 4, service_time: Deterministic(ms: 1.3)),
                ],
                faults: [(at_s: 1.0, duration_s: 0.5, fault: Partition(from: "b", to: "leaf"))])"#,
        );
        assert_same("shared", &s, &steps(3.0), |c| c.planned > 1000);
    }
}
