//! Mechanisms on the callee's side of a request, inside one instance: admission (rate limits
//! and throttles answering 429, a hard in-flight limit, latching over a limit), key choice for
//! caches and optimistic concurrency, CPU cores, warm-up slowdown, and the optimistic write at
//! the end of own work.
//!
//! Queue-time shedding and adaptive LIFO are decided where requests leave the queue
//! (`step.rs`: `start_work`, `dispatch`). Instances without mechanism state never come here.

use super::jobs::{NONE, PROBE, Phase};
use super::scheduler::EventKind;
use super::step::{Ctx, work_ns};
use crate::metrics::Outcome;
use crate::rng;

impl Ctx<'_, '_> {
    /// Admission of job `k` at instance `inst` (it has mechanism state). Returns false when the
    /// request was turned away (and answered).
    pub(crate) fn admit(&mut self, k: u32, inst: u32) -> bool {
        let now = self.e.now;
        let s = self.e.jobs.get(k).node;
        let (max_in_flight, latch_above) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .map_or((u32::MAX, u32::MAX), |m| (m.max_in_flight, m.latch_above));
        let is = &mut *self.instances[inst as usize];
        let in_system = is.in_system();
        let Some(m) = is.mech.as_mut() else {
            return true;
        };
        let throttled = m.fault_limiter.as_mut().is_some_and(|l| !l.try_take(now))
            || m.limiter.as_mut().is_some_and(|l| !l.try_take(now));
        if throttled {
            self.services[s as usize].metrics.interval.throttled += 1;
            self.reply_and_free(k, Outcome::Throttled);
            return false;
        }
        if in_system >= max_in_flight {
            self.services[s as usize].metrics.interval.overloaded += 1;
            self.outlier_record(inst, false);
            self.reply_and_free(k, Outcome::Overloaded);
            return false;
        }
        if in_system >= latch_above {
            // One more than the instance can hold: it falls over and stays down until reset.
            self.latch_instance(inst, "exceeded its limit of requests held");
            self.services[s as usize].metrics.interval.refused += 1;
            self.reply_and_free(k, Outcome::Refused);
            return false;
        }
        self.choose_key(k);
        true
    }

    /// Picks the cache or optimistic-concurrency key of job `k` at its service.
    fn choose_key(&mut self, k: u32) {
        let s = self.e.jobs.get(k).node as usize;
        let Some(mech) = self.e.model.services[s].mech.as_ref() else {
            return;
        };
        let Some(rt) = self.services[s].rt.as_mut() else {
            return;
        };
        let Some(r) = rt.rng.as_mut() else { return };
        let key = if let Some(c) = &mech.cache {
            if c.max_hit_ratio >= 1.0 || rng::chance(r, c.max_hit_ratio) {
                rng::below(r, c.keys)
            } else {
                NONE
            }
        } else if let Some(chooser) = &mech.occ {
            chooser.choose(r)
        } else {
            return;
        };
        self.e.jobs.get_mut(k).key = key;
    }

    /// Job `k` took a worker of `inst` (which has mechanism state): own work starts when a core
    /// is free.
    pub(crate) fn start_guarded_work(&mut self, k: u32, inst: u32) {
        let is = &mut *self.instances[inst as usize];
        if is.cores_busy >= is.cores.min(is.cores_cut)
            && let Some(m) = is.mech.as_mut()
        {
            m.core_queue.push_back(k);
            return;
        }
        if is.cores != u32::MAX {
            is.touch(self.e.now);
            is.cores_busy += 1;
        }
        self.schedule_own_work(k, inst);
    }

    /// Starts the own work of jobs waiting for a core at `inst`, first come first served,
    /// while it has cores free (one freed, or more after a capacity cut ended).
    pub(crate) fn start_core_waiters(&mut self, inst: u32) {
        loop {
            let is = &mut *self.instances[inst as usize];
            if is.cores_busy >= is.cores.min(is.cores_cut) {
                return;
            }
            let Some(next) = is.mech.as_mut().and_then(|m| m.core_queue.pop_front()) else {
                return;
            };
            is.touch(self.e.now);
            is.cores_busy += 1;
            self.schedule_own_work(next, inst);
        }
    }

    /// Samples and schedules job `k`'s own work at `inst` (it has a worker and a core).
    fn schedule_own_work(&mut self, k: u32, inst: u32) {
        let now = self.e.now;
        let job = self.e.jobs.get(k);
        let (s, generation, probe, key) = (
            job.node as usize,
            job.generation,
            job.flags & PROBE != 0,
            job.key,
        );
        let svc = &self.e.model.services[s];
        let is = &mut *self.instances[inst as usize];
        let warm = is.mech.as_ref().map_or(1.0, |m| m.warm_factor_at(now));
        let work = if probe {
            svc.mech
                .as_ref()
                .and_then(|m| m.health)
                .map_or(1, |h| h.probe_ns)
        } else {
            // Load-dependent (a config push's scaling before the service's own): `cores_busy`
            // counts the requests in their own work here, this one included (the busy workers
            // where cores are not counted: an instance given mechanism state by a fault);
            // `busy` and the queue every request at the instance.
            let scaling = is
                .mech
                .as_ref()
                .and_then(|m| m.pushed_scaling)
                .or_else(|| svc.mech.as_ref().and_then(|m| m.scaling));
            let crowd = match scaling {
                Some(scaling) => {
                    let n = if scaling.counts_present {
                        is.busy.saturating_add(is.queue.len() as u32)
                    } else if is.cores == u32::MAX {
                        is.busy
                    } else {
                        is.cores_busy
                    };
                    let slowdown = scaling.slowdown(n);
                    self.services[s].metrics.interval.slowdown_excess_milli +=
                        ((slowdown - 1.0) * 1000.0 + 0.5) as u64;
                    slowdown
                }
                None => 1.0,
            };
            work_ns(
                svc.dist.sample_ns(&mut is.rng),
                is.slow_factor * warm * crowd,
                is.added_ns,
            )
        };
        if !probe
            && svc.mech.as_ref().is_some_and(|m| m.occ.is_some())
            && let Some(v) = self.services[s]
                .rt
                .as_ref()
                .and_then(|rt| rt.versions.as_ref())
        {
            let version = v.read(key);
            self.e.jobs.get_mut(k).read_version = version;
        }
        self.e
            .sched
            .schedule(now + work, EventKind::WorkDone, k, generation, 0, 0);
    }

    /// Job `k`'s own work at `inst` ended: frees its core (starting the next waiting job's
    /// work), ends probes, and makes the optimistic write. Returns false when the job is done
    /// here (a probe, or a write conflict).
    pub(crate) fn end_guarded_work(&mut self, k: u32, inst: u32) -> bool {
        let now = self.e.now;
        let is = &mut *self.instances[inst as usize];
        if is.cores != u32::MAX {
            is.touch(now);
            is.cores_busy = is.cores_busy.saturating_sub(1);
            self.start_core_waiters(inst);
        }
        let job = self.e.jobs.get(k);
        if job.flags & PROBE != 0 {
            self.finish_probe(k);
            return false;
        }
        let (s, key, read) = (job.node as usize, job.key, job.read_version);
        if self.e.model.services[s]
            .mech
            .as_ref()
            .is_some_and(|m| m.occ.is_some())
            && let Some(v) = self.services[s]
                .rt
                .as_mut()
                .and_then(|rt| rt.versions.as_mut())
            && !v.write(key, read)
        {
            self.finish(k, Outcome::Conflict);
            return false;
        }
        true
    }

    /// A probe job takes a worker of `inst`: it waits for a core like a request.
    pub(crate) fn start_probe_work(&mut self, k: u32, inst: u32) {
        let now = self.e.now;
        self.e.jobs.get_mut(k).phase = Phase::Working;
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.busy += 1;
        self.load_changed(inst);
        self.start_guarded_work(k, inst);
    }
}
