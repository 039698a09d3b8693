//! Parallel fan-out: a request that makes its calls all at once (`fan_out: Parallel` or
//! `Quorum(k)`) and waits for them on its worker.
//!
//! Owns the *branches*: one job per call sent in parallel ([`BRANCH`]; a call with `count: n`
//! sends n). A branch holds no worker; it makes its one call exactly as a sequential request
//! makes each of its calls (retries, backoff, timeouts, budgets, breakers, bulkheads, hedging,
//! fallbacks, deadline propagation, all in `step.rs` and `guard.rs`) and reports how the call
//! ended to its parent. The parent waits in [`Phase::Gathering`] until enough branches have
//! succeeded (it then finishes with success) or too many have failed (it finishes with
//! `dependency_failed` at once: fail fast); the branches still out are then abandoned: their
//! attempts in flight become orphaned work, their timers stale.
//!
//! The branches of one parent form a list (the parent's `child`, then each branch's
//! [`JobSide::next_branch`](super::jobs::JobSide)); ended branches stay allocated in
//! [`Phase::Joined`] until the parent stops gathering, so the list is never broken by a slot's
//! reuse. Nothing here scans jobs: every step follows the list.
//!
//! Does not own: the calls themselves (`step.rs`), what the parent does when it finishes
//! (`Ctx::finish`), or crashes, which free a parent and its branches together
//! (`Ctx::crash_instance`).

use super::jobs::{BRANCH, INHERITED, NONE, ORPHANED, PUSHBACK, Phase, SUPERSEDED};
use super::step::Ctx;
use crate::metrics::Outcome;
use crate::rng;

impl Ctx<'_, '_> {
    /// Job `k`, its own work done, sends every call whose probability fires at once, each
    /// copy as a branch, in call-list order; finishes it with success when none fires.
    pub(crate) fn scatter(&mut self, k: u32) {
        let now = self.e.now;
        let parent = *self.e.jobs.get(k);
        let n_calls = self.e.model.services[parent.node as usize].calls.len();
        let (mut first, mut first_gen, mut last) = (NONE, 0, NONE);
        let mut fired = 0u32;
        for idx in 0..n_calls {
            let call = &self.e.model.services[parent.node as usize].calls[idx];
            let (probability, count) = (call.probability, call.count);
            let fires = probability >= 1.0
                || rng::chance(
                    &mut self.instances[parent.instance as usize].rng,
                    probability,
                );
            if !fires {
                continue;
            }
            for _ in 0..count {
                let b = self.e.jobs.alloc_root(
                    Phase::Calling,
                    BRANCH | (parent.flags & INHERITED),
                    (parent.node, parent.instance),
                    now,
                    parent.journey,
                    parent.criticality,
                );
                let job = self.e.jobs.get_mut(b);
                job.parent = k;
                job.parent_gen = parent.generation;
                job.deadline_ns = parent.deadline_ns;
                job.call_idx = idx as u16;
                let generation = job.generation;
                self.e.jobs.side_mut(b).next_branch = NONE;
                if last == NONE {
                    (first, first_gen) = (b, generation);
                } else {
                    let side = self.e.jobs.side_mut(last);
                    side.next_branch = b;
                    side.next_branch_gen = generation;
                }
                last = b;
                fired += 1;
            }
        }
        if fired == 0 {
            self.finish(k, Outcome::Success);
            return;
        }
        let needed = self.e.model.services[parent.node as usize]
            .fan_out
            .needed(fired);
        let job = self.e.jobs.get_mut(k);
        job.phase = Phase::Gathering;
        job.child = first;
        job.child_gen = first_gen;
        let side = self.e.jobs.side_mut(k);
        side.branches_pending = fired;
        side.branches_needed = needed.max(1);
        // A branch can end as it starts (a breaker open, a bulkhead full, a fallback) and so
        // end the gathering, which frees the branches not yet sent.
        let (mut b, mut b_gen) = (first, first_gen);
        while b != NONE
            && self
                .e
                .jobs
                .live(k, parent.generation)
                .is_some_and(|p| p.phase == Phase::Gathering)
        {
            debug_assert!(self.e.jobs.live(b, b_gen).is_some());
            let side = self.e.jobs.side(b);
            let next = (side.next_branch, side.next_branch_gen);
            self.start_call(b);
            (b, b_gen) = next;
        }
    }

    /// Branch `b`'s call has ended with `outcome`: success, or the failure its retries did not
    /// mend. Its parent goes on when it has enough successes, and fails when it can no longer
    /// get them.
    pub(crate) fn branch_done(&mut self, b: u32, outcome: Outcome) {
        self.leave_bulkhead(b);
        let job = self.e.jobs.get_mut(b);
        job.phase = Phase::Joined;
        job.child = NONE;
        let (timeout, parent, parent_gen) = (job.timeout, job.parent, job.parent_gen);
        if timeout.is_some() {
            self.e.sched.cancel(timeout);
            self.e.jobs.get_mut(b).timeout = super::scheduler::EventHandle::NONE;
        }
        debug_assert!(
            self.e
                .jobs
                .live(parent, parent_gen)
                .is_some_and(|p| p.phase == Phase::Gathering),
            "a branch outlived its parent's gathering"
        );
        if outcome != Outcome::Success {
            // The parent's failure, if this one decides it, says what the branch's said
            // ("don't retry" included).
            let (said, origin) = (
                self.e.jobs.get(b).last_outcome & PUSHBACK,
                self.e.jobs.get(b).origin,
            );
            let p = self.e.jobs.get_mut(parent);
            p.last_outcome = outcome as u8 | said;
            p.origin = origin;
        }
        let side = self.e.jobs.side_mut(parent);
        side.branches_pending -= 1;
        if outcome == Outcome::Success {
            side.branches_needed -= 1;
        }
        if side.branches_needed == 0 {
            self.gather_end(parent, Outcome::Success);
        } else if side.branches_pending < side.branches_needed {
            self.gather_end(parent, Outcome::DependencyFailed);
        }
    }

    /// Parent `p` stops gathering: its branches still out are abandoned, every branch is
    /// freed, and `p` finishes with `outcome`.
    fn gather_end(&mut self, p: u32, outcome: Outcome) {
        self.free_branches(p, outcome == Outcome::Success);
        self.finish(p, outcome);
    }

    /// Frees parent `p`'s branches, abandoning those still out (their attempts orphaned, and
    /// cancelled where their services honour it; superseded when the quorum was met without
    /// them). Also when `p` itself is cancelled (`Ctx::stop_cancelled`).
    pub(crate) fn free_branches(&mut self, p: u32, superseded: bool) {
        let job = self.e.jobs.get(p);
        let (mut b, mut b_gen) = (job.child, job.child_gen);
        while b != NONE {
            let side = *self.e.jobs.side(b);
            if let Some(branch) = self.e.jobs.live(b, b_gen) {
                if branch.phase != Phase::Joined {
                    self.abandon_branch(b, superseded);
                }
                self.e.jobs.free(b);
            }
            (b, b_gen) = (side.next_branch, side.next_branch_gen);
        }
        self.e.jobs.get_mut(p).child = NONE;
    }

    /// Branch `b` is no longer wanted: what it has on the wire is orphaned (the callee still
    /// does the work; superseded when the quorum was met without it), its timeout is
    /// cancelled, its bulkhead place given back. Its pending retry or hedge turns stale when
    /// it is freed.
    fn abandon_branch(&mut self, b: u32, superseded: bool) {
        let flags = if superseded {
            ORPHANED | SUPERSEDED
        } else {
            ORPHANED
        };
        self.orphan_attempts_as(b, flags);
        let job = self.e.jobs.get(b);
        if job.timeout.is_some() {
            self.e.sched.cancel(job.timeout);
        }
        self.leave_bulkhead(b);
    }

    /// Pushes the branches of gathering parent `p` that are still out (not joined) on the
    /// orphan walk's stack.
    pub(crate) fn push_open_branches(&mut self, p: u32, stack: &mut Vec<(u32, u32)>) {
        let job = self.e.jobs.get(p);
        let (mut b, mut b_gen) = (job.child, job.child_gen);
        while b != NONE {
            let side = self.e.jobs.side(b);
            if self
                .e
                .jobs
                .live(b, b_gen)
                .is_some_and(|j| j.phase != Phase::Joined)
            {
                stack.push((b, b_gen));
            }
            (b, b_gen) = (side.next_branch, side.next_branch_gen);
        }
    }
}
