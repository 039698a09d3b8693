//! Mechanisms on the caller's side of a call: circuit breakers, client-side adaptive
//! throttling, bulkheads, fallbacks and hedged requests.
//!
//! Every attempt of a guarded call asks [`Ctx::guard_admit`] first (an open breaker or the
//! throttle may fail it locally, without sending); every answered attempt is reported to
//! [`Ctx::guard_record`]. A bulkhead is entered when a logical call starts and left when it
//! ends, however it ends. A failed call with a fallback lets the request carry on without it.
//! A hedged call sends a second attempt when the first has not answered within the hedge delay;
//! the first success wins and the other attempt is abandoned (orphaned).
//!
//! Guard state lives with the caller: per source, or per instance and call (`mech.rs`). Calls
//! without guards never reach this file.

use super::jobs::{
    ALT, Attempt, BULKHEAD, FILLING, HEDGE_COPY, HEDGED, MISSED, NONE, ORPHANED, Phase, SUPERSEDED,
};
use super::mech::CallGuard;
use super::scheduler::EventKind;
use super::step::{Ctx, Sender};
use crate::metrics::Outcome;
use crate::rng::SimRng;

/// True for replies that mean the callee accepted the request (adaptive throttling counts
/// these): it answered, even with an error of its own. Rejections, throttling, shedding,
/// refusals and timeouts are not acceptances.
fn accepted(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Success | Outcome::Error | Outcome::Conflict | Outcome::DependencyFailed
    )
}

impl Ctx<'_, '_> {
    /// The random stream of job `j`'s side of a call: its source, its instance, or (for a
    /// work queue's deliveries) its service.
    pub(crate) fn caller_rng(&mut self, j: u32) -> &mut SimRng {
        let job = self.e.jobs.get(j);
        let (node, inst) = (job.node, job.instance);
        if job.is_client() {
            &mut self.sources[node as usize].rng
        } else if inst != NONE {
            &mut self.instances[inst as usize].rng
        } else {
            let svc = &mut *self.services[node as usize];
            match svc.rt.as_mut().and_then(|rt| rt.rng.as_mut()) {
                Some(r) => r,
                None => &mut svc.lb_rng,
            }
        }
    }

    /// The random stream of the callee side of job `k` (its instance, or its service's load
    /// balancer when it never reached one).
    pub(crate) fn callee_rng(&mut self, k: u32) -> &mut SimRng {
        let job = self.e.jobs.get(k);
        let (node, inst) = (job.node, job.instance);
        if inst != NONE {
            &mut self.instances[inst as usize].rng
        } else {
            &mut self.services[node as usize].lb_rng
        }
    }

    /// Guard state of job `j`'s current call, if any.
    fn guard_state(&mut self, j: u32) -> Option<&mut CallGuard> {
        let job = self.e.jobs.get(j);
        if job.is_client() {
            self.sources[job.node as usize].guard.as_deref_mut()
        } else if job.is_internal() || job.instance == NONE {
            None
        } else {
            let idx = job.call_idx as usize;
            self.instances[job.instance as usize]
                .mech
                .as_mut()?
                .calls
                .get_mut(idx)
        }
    }

    /// Enters the bulkhead of job `j`'s current call: `Ok(true)` when it is in (or the call
    /// has no bulkhead), `Ok(false)` when it waits for a place (`bulkhead_wait_ms`; its call
    /// goes on when one frees, or fails at [`Ctx::on_bulkhead_timeout`]), and
    /// `Err(BulkheadFull)` when it is full and the call does not wait.
    #[inline]
    pub(crate) fn enter_bulkhead(&mut self, j: u32) -> Result<bool, Outcome> {
        let Some(guard) = self
            .e
            .model
            .call_for(self.e.jobs.get(j))
            .and_then(|c| c.guard)
        else {
            return Ok(true);
        };
        let (max, wait_ns) = (guard.max_concurrent, guard.bulkhead_wait_ns);
        if max == u32::MAX {
            return Ok(true);
        }
        let Some(g) = self.guard_state(j) else {
            return Ok(true);
        };
        if g.in_call < max {
            g.in_call += 1;
            self.e.jobs.get_mut(j).flags |= BULKHEAD;
            return Ok(true);
        }
        if wait_ns == 0 {
            return Err(Outcome::BulkheadFull);
        }
        // Wait for a place, holding the worker (a connection pool's acquire).
        let jm = self.e.jobs.get_mut(j);
        jm.token = jm.token.wrapping_add(1);
        jm.phase = Phase::Backoff;
        let (generation, token) = (jm.generation, jm.token);
        if let Some(g) = self.guard_state(j) {
            g.waiting.push_back((j, generation, token));
        }
        let at = self.e.now + wait_ns;
        self.e
            .sched
            .schedule(at, EventKind::BulkheadTimeout, j, generation, token, 0);
        Ok(false)
    }

    /// Leaves the bulkhead job `j` holds, if any; the oldest request still waiting for a
    /// place in it takes the one freed and makes its call.
    #[inline]
    pub(crate) fn leave_bulkhead(&mut self, j: u32) {
        if self.e.jobs.get(j).flags & BULKHEAD == 0 {
            return;
        }
        self.e.jobs.get_mut(j).flags &= !BULKHEAD;
        let Some(g) = self.guard_state(j) else {
            return;
        };
        g.in_call = g.in_call.saturating_sub(1);
        if !g.waiting.is_empty() {
            self.admit_waiter(j);
        }
    }

    /// A place freed in the bulkhead of job `j`'s current call: the oldest request still
    /// waiting for one (entries of requests that moved on are dropped) takes it.
    #[cold]
    fn admit_waiter(&mut self, j: u32) {
        let max = self
            .e
            .model
            .call_for(self.e.jobs.get(j))
            .and_then(|c| c.guard)
            .map_or(u32::MAX, |g| g.max_concurrent);
        loop {
            let Some(g) = self.guard_state(j) else {
                return;
            };
            if g.in_call >= max {
                return;
            }
            let Some((w, generation, token)) = g.waiting.pop_front() else {
                return;
            };
            let waiting = self
                .e
                .jobs
                .live(w, generation)
                .is_some_and(|x| x.phase == Phase::Backoff && x.token == token);
            if !waiting {
                continue;
            }
            if let Some(g) = self.guard_state(j) {
                g.in_call += 1;
            }
            let wm = self.e.jobs.get_mut(w);
            wm.flags |= BULKHEAD;
            // Its wait's end turns stale.
            wm.token = wm.token.wrapping_add(1);
            self.send_attempt(w);
            return;
        }
    }

    /// Job `j` waited for a bulkhead place as long as its call allows: the call fails as
    /// `bulkhead_full` (its entry in the waiting list is dropped when reached).
    pub(crate) fn on_bulkhead_timeout(&mut self, j: u32, generation: u32, token: u32) {
        let Some(job) = self.e.jobs.live(j, generation) else {
            return;
        };
        if job.phase != Phase::Backoff || job.token != token {
            return;
        }
        let jm = self.e.jobs.get_mut(j);
        jm.token = jm.token.wrapping_add(1);
        self.fail_call_locally(j, Outcome::BulkheadFull);
    }

    /// May job `j` send its next attempt? `Some(outcome)` when its breaker is open or its
    /// adaptive throttle rejects it.
    pub(crate) fn guard_admit(&mut self, j: u32) -> Option<Outcome> {
        let now = self.e.now;
        let job = self.e.jobs.get(j);
        let (client, node, inst, idx) = (
            job.is_client(),
            job.node,
            job.instance,
            job.call_idx as usize,
        );
        let (guard, rng): (&mut CallGuard, &mut SimRng) = if client {
            let st = &mut *self.sources[node as usize];
            (st.guard.as_deref_mut()?, &mut st.rng)
        } else if inst != NONE && !job.is_internal() {
            let is = &mut *self.instances[inst as usize];
            (is.mech.as_mut()?.calls.get_mut(idx)?, &mut is.rng)
        } else {
            return None;
        };
        if let Some(b) = guard.breaker.as_mut()
            && !b.allow(now)
        {
            return Some(Outcome::BreakerOpen);
        }
        if let Some(t) = guard.throttle.as_mut()
            && !t.admit(now, rng)
        {
            return Some(Outcome::LocallyThrottled);
        }
        None
    }

    /// Reports the outcome of job `j`'s answered (or timed-out) attempt to its guards.
    pub(crate) fn guard_record(&mut self, j: u32, outcome: Outcome) {
        let now = self.e.now;
        let Some(g) = self.guard_state(j) else { return };
        if let Some(b) = g.breaker.as_mut() {
            b.record(now, outcome == Outcome::Success);
        }
        if accepted(outcome)
            && let Some(t) = g.throttle.as_mut()
        {
            t.accepted(now);
        }
    }

    /// Job `j`'s call failed locally (breaker open, bulkhead full, throttled) without sending.
    pub(crate) fn fail_call_locally(&mut self, j: u32, outcome: Outcome) {
        let job = self.e.jobs.get(j);
        let (client, node) = (job.is_client(), job.node);
        if let Some((link, _)) = self.e.model.call_for(job).map(|c| (c.link, c.to)) {
            self.e.links[link as usize].interval.fast_failed += 1;
        }
        if client {
            self.sources[node as usize].metrics.interval.local_rejected += 1;
        } else {
            self.services[node as usize].metrics.interval.local_rejected += 1;
        }
        self.e.jobs.get_mut(j).last_outcome = outcome as u8;
        // The refusal protects the caller from its callee: the failure starts there.
        if let Some(to) = self.e.model.call_for(self.e.jobs.get(j)).map(|c| c.to) {
            self.note_failed_attempt(j, crate::causality::service_code(to));
        }
        self.fail_caller(j, outcome);
    }

    /// Job `j`'s call failed and its fallback applies: the request carries on without it.
    pub(crate) fn fall_back(&mut self, j: u32) {
        let (node, flags) = (self.e.jobs.get(j).node, self.e.jobs.get(j).flags);
        if flags & (FILLING | MISSED) != 0 {
            // A cache miss whose backing call failed: nothing to cache, though the request
            // carries on (requests waiting on the same fill fall back with it).
            self.end_cache_fill(j, false);
        }
        let job = self.e.jobs.get(j);
        if let Some(link) = self.e.model.call_for(job).map(|c| c.link) {
            self.e.links[link as usize].interval.fallbacks += 1;
        }
        self.services[node as usize].metrics.interval.fallbacks += 1;
        self.leave_bulkhead(j);
        if self.e.jobs.get(j).is_branch() {
            // A parallel branch that falls back counts as answered.
            self.branch_done(j, Outcome::Success);
            return;
        }
        let jm = self.e.jobs.get_mut(j);
        jm.call_idx += 1;
        jm.reps_left = 0;
        self.enter_next_call(j);
    }

    /// The hedge delay of job `j`'s attempt `token` passed: send a second attempt if the first
    /// is still unanswered.
    pub(crate) fn on_hedge_fire(&mut self, j: u32, generation: u32, token: u32) {
        let Some(job) = self.e.jobs.live(j, generation) else {
            return;
        };
        // A first attempt lost on the wire (`child` NONE) is hedged too: the hedge is the
        // request's only chance before the timeout.
        if job.phase != Phase::Calling || job.token != token || job.flags & HEDGED != 0 {
            return;
        }
        let p = *job;
        let Some(call) = self.e.model.call_for(&p).copied() else {
            return;
        };
        // The request the hedge duplicates (still on the wire or at the callee).
        let deadline = self
            .e
            .jobs
            .live(p.child, p.child_gen)
            .map_or(crate::time::NEVER, |c| c.deadline_ns);
        let new_token = token.wrapping_add(1);
        let (k, kgen) = self.e.jobs.alloc_attempt(Attempt {
            to: call.to,
            link: call.link,
            parent: j,
            parent_gen: generation,
            token: new_token,
            attempt: p.call_attempt,
            deadline_ns: deadline,
            journey: NONE,
            caller_flags: p.flags,
            key: if self.e.model.key_routed(call.to) {
                self.e.jobs.side(j).shard_key
            } else {
                NONE
            },
            criticality: p.criticality,
        });
        self.e.jobs.get_mut(k).flags |= HEDGE_COPY;
        if self.e.model.zone_routed(call.to) {
            self.e.jobs.side_mut(k).caller_zone = self.caller_zone(j);
        }
        let jm = self.e.jobs.get_mut(j);
        jm.token = new_token;
        jm.child = k;
        jm.child_gen = kgen;
        jm.flags |= HEDGED | ALT;
        let side = self.e.jobs.side_mut(j);
        side.alt_token = token;
        side.alt_child = p.child;
        side.alt_child_gen = p.child_gen;
        let now = self.e.now;
        let (lost, delay) = self.wire(
            call.link,
            call.latency_ns,
            call.latency_sd_ns,
            Sender::Caller(j),
        );
        let c = &mut self.e.links[call.link as usize].interval;
        c.attempts += 1;
        c.hedges += 1;
        if p.is_client() {
            self.sources[p.node as usize].metrics.interval.hedges += 1;
        } else {
            self.services[p.node as usize].metrics.interval.hedges += 1;
        }
        if lost {
            self.e.links[call.link as usize].interval.lost += 1;
            self.e.jobs.free(k);
            self.e.jobs.get_mut(j).child = NONE;
        } else {
            self.e
                .sched
                .schedule(now + delay, EventKind::RequestArrive, k, kgen, 0, 0);
        }
    }

    /// A reply to one of two hedged attempts of job `j`. Returns true when the call is decided
    /// by it (a success, or a failure with the other attempt already gone), after abandoning
    /// the other attempt; false when the other attempt may still succeed.
    pub(crate) fn settle_hedge(&mut self, j: u32, token: u32, outcome: Outcome) -> bool {
        let job = *self.e.jobs.get(j);
        let side = *self.e.jobs.side(j);
        let from_hedge = token == job.token;
        let other_pending = if from_hedge {
            side.alt_child != NONE
        } else {
            job.child != NONE
        };
        let jm = self.e.jobs.get_mut(j);
        jm.flags &= !HEDGED;
        if outcome == Outcome::Success || !other_pending {
            // The other copy lost the race (or is no longer needed): superseded, not failed.
            let flags = ORPHANED | SUPERSEDED;
            if from_hedge {
                self.orphan_chain_as(side.alt_child, side.alt_child_gen, flags);
            } else {
                // The token stays the hedge's (the larger): the next call's token must differ
                // from both attempts', or the abandoned hedge's late reply would answer it.
                self.orphan_chain_as(job.child, job.child_gen, flags);
            }
            self.e.jobs.get_mut(j).flags &= !ALT;
            return true;
        }
        if from_hedge {
            // The hedge failed: wait for the first attempt (its token stays valid).
            jm.token = side.alt_token;
            jm.child = side.alt_child;
            jm.child_gen = side.alt_child_gen;
            jm.flags &= !ALT;
        }
        // Else the first failed and the hedge goes on; its timeout still carries the first
        // attempt's token, which `alt_token` keeps valid.
        false
    }
}
