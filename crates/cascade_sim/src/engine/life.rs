//! Instance lifecycle and the load balancer's view of instances: restarts, provisioning,
//! startup calls that gate readiness, periodic calls, warm-up, latched failures, health-check
//! probes (with or without queueing delay), outlier ejection, the panic threshold, and which
//! instances are routable.
//!
//! An instance's life: `Up` → (restart) `Restarting` for the restart time, refusing requests →
//! `Starting`, making its startup calls in order (a failure restarts it again) → `Up`, warming
//! up, and (with health checks) taking traffic only after passing `healthy_after` probes.
//! Autoscaled instances begin in `Provisioning`. Every restart bumps the instance's
//! incarnation, so events of a previous life are recognised and ignored.

use super::jobs::{CRITICAL, INTERNAL, NONE, PROBE, Phase, Purpose};
use super::load::instance_mech;
use super::mech::{InstanceMech, LifePhase};
use super::scheduler::EventKind;
use super::step::Ctx;
use crate::events::SimEventKind;
use crate::faults;
use crate::mechanisms::health::{HealthState, in_panic};
use crate::mechanisms::rolling::Rolling;
use crate::mechanisms::throttle::TokenBucket;
use crate::metrics::Outcome;
use crate::scenario::KillMode;
use crate::time::Nanos;

impl Ctx<'_, '_> {
    /// Logs a mechanism event about service `s`.
    pub(crate) fn log_mech(&mut self, s: u32, what: String) {
        let node = self.e.model.services[s as usize].name.clone();
        self.e.log(SimEventKind::Mechanism { node, what });
    }

    /// Mechanism state of instance `inst`, created when a fault needs it on a service without
    /// mechanisms.
    pub(crate) fn instance_mech_mut(&mut self, inst: u32) -> &mut InstanceMech {
        let s = self.instances[inst as usize].service as usize;
        let fresh = || match &self.e.model.services[s].mech {
            Some(m) => {
                instance_mech(
                    m,
                    &self.e.model.services[s].calls,
                    self.e.model.services[s].workers,
                )
                .1
            }
            None => InstanceMech {
                warm_factor: 1.0,
                ..Default::default()
            },
        };
        let is = &mut *self.instances[inst as usize];
        if is.mech.is_none() {
            is.mech = Some(Box::new(fresh()));
        }
        is.mech
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("just created"))
    }

    /// Ordinal of instance `inst` within its service (its place in the service's list, which
    /// only grows).
    pub(crate) fn ordinal(&self, inst: u32) -> u32 {
        self.instances[inst as usize].ordinal
    }

    /// Whether faults keep instance `inst` down, and how.
    fn fault_down(&self, inst: u32) -> Option<KillMode> {
        let s = self.instances[inst as usize].service;
        let ordinal = self.ordinal(inst);
        let base = self.e.model.services[s as usize].workers;
        let n = self.e.model.services[s as usize].instances;
        let zone = self.e.model.zone_of(s, ordinal);
        faults::instance_modifiers(self.e.faults.iter(), s, ordinal, zone, base, n).down
    }

    // ---------------------------------------------------------------- restarts and starts

    /// Restarts instance `inst`: its work is lost, it refuses requests for the restart time,
    /// then starts again (startup calls, warm-up). Clears a latched failure.
    pub(crate) fn restart_instance(&mut self, inst: u32, why: &str) {
        let now = self.e.now;
        let s = self.instances[inst as usize].service;
        let restart_ns = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .map_or(0, |m| m.lifecycle.restart_ns);
        if self.instances[inst as usize].down.is_none() {
            self.crash_instance(inst, KillMode::Refuse);
        }
        let m = self.instance_mech_mut(inst);
        m.latched = false;
        m.incarnation = m.incarnation.wrapping_add(1);
        m.life = LifePhase::Restarting {
            until_ns: now + restart_ns,
        };
        m.warm_until = 0;
        m.probe = None;
        let inc = m.incarnation;
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.down = Some(KillMode::Refuse);
        self.flush_cache_shard(inst);
        let ordinal = self.ordinal(inst);
        self.log_mech(s, format!("instance {ordinal} restarting ({why})"));
        self.e
            .sched
            .schedule(now + restart_ns, EventKind::LifeStep, inst, inc, 0, 0);
        self.rebuild_routable(s);
        self.check_primary(s);
    }

    /// A restart or provisioning delay of `inst` is over: the process starts.
    pub(crate) fn on_life_step(&mut self, inst: u32, incarnation: u32) {
        let Some(m) = self.instances[inst as usize].mech.as_deref_mut() else {
            return;
        };
        if m.incarnation != incarnation
            || !matches!(
                m.life,
                LifePhase::Restarting { .. } | LifePhase::Provisioning { .. }
            )
        {
            return;
        }
        m.life = LifePhase::Starting { step: 0 };
        let now = self.e.now;
        let down = self.fault_down(inst);
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.down = down;
        is.up_since_ns = now;
        self.next_startup_step(inst);
    }

    /// Makes instance `inst`'s next startup call, or makes it ready when none is left.
    fn next_startup_step(&mut self, inst: u32) {
        let s = self.instances[inst as usize].service;
        let Some(m) = self.instances[inst as usize].mech.as_deref() else {
            return;
        };
        let LifePhase::Starting { step } = m.life else {
            return;
        };
        let inc = m.incarnation;
        let steps = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .map_or(0, |m| m.lifecycle.startup.len());
        if (step as usize) < steps {
            let j = self.internal_job(s, inst, Purpose::Startup, step as u16, inc);
            self.start_call(j);
        } else {
            self.become_ready(inst);
        }
    }

    /// A new internal job of instance `inst` (startup or periodic call).
    fn internal_job(
        &mut self,
        s: u32,
        inst: u32,
        purpose: Purpose,
        call_idx: u16,
        incarnation: u32,
    ) -> u32 {
        let now = self.e.now;
        let j = self
            .e
            .jobs
            .alloc_root(Phase::Calling, INTERNAL, (s, inst), now, NONE, CRITICAL);
        let job = self.e.jobs.get_mut(j);
        job.purpose = purpose;
        job.call_idx = call_idx;
        self.e.jobs.side_mut(j).incarnation = incarnation;
        j
    }

    /// Instance `inst` finished starting: it takes traffic (after passing health checks, when
    /// the service has them) and warms up.
    fn become_ready(&mut self, inst: u32) {
        let now = self.e.now;
        let s = self.instances[inst as usize].service;
        let mech = self.e.model.services[s as usize].mech.as_deref();
        let (warmup_ns, factor) = mech.map_or((0, 1.0), |m| {
            let auto = m
                .autoscale
                .map_or((0, 1.0), |a| (a.warmup_ns, a.spec.warmup_factor));
            let life = (m.lifecycle.warmup_ns, m.lifecycle.warmup_factor);
            if auto.0 > life.0 { auto } else { life }
        });
        let checked = mech.is_some_and(|m| m.health.is_some());
        let m = self.instance_mech_mut(inst);
        m.life = LifePhase::Up;
        m.warm_until = now + warmup_ns;
        m.warm_factor = factor;
        m.disqualified = false;
        m.periodic_failures.clear();
        m.health = if checked {
            HealthState::starting()
        } else {
            HealthState::default()
        };
        let inc = m.incarnation;
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        let ordinal = self.ordinal(inst);
        self.log_mech(
            s,
            format!(
                "instance {ordinal} started{}",
                if checked {
                    "; waiting for health checks"
                } else {
                    ""
                }
            ),
        );
        self.schedule_periodic(inst, inc, now);
        self.rebuild_routable(s);
        self.dispatch(inst);
        self.check_primary(s);
    }

    /// Schedules instance `inst`'s periodic calls for incarnation `inc`, spread by ordinal.
    pub(crate) fn schedule_periodic(&mut self, inst: u32, inc: u32, from_ns: Nanos) {
        let s = self.instances[inst as usize].service;
        let Some(mech) = self.e.model.services[s as usize].mech.as_deref() else {
            return;
        };
        let n = self.services[s as usize].instances.len().max(1) as u64;
        let ordinal = u64::from(self.ordinal(inst));
        let periods: Vec<Nanos> = mech.lifecycle.periodic.iter().map(|p| p.every_ns).collect();
        for (idx, every) in periods.into_iter().enumerate() {
            let offset = every * (ordinal % n) / n;
            self.e.sched.schedule(
                from_ns + offset.max(1),
                EventKind::PeriodicFire,
                inst,
                inc,
                idx as u32,
                0,
            );
        }
    }

    /// Instance `inst`'s periodic call `idx` is due.
    pub(crate) fn on_periodic_fire(&mut self, inst: u32, incarnation: u32, idx: u32) {
        let now = self.e.now;
        let Some(m) = self.instances[inst as usize].mech.as_deref() else {
            return;
        };
        if m.incarnation != incarnation {
            return;
        }
        let s = self.instances[inst as usize].service;
        let Some(every) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.lifecycle.periodic.get(idx as usize))
            .map(|p| p.every_ns)
        else {
            return;
        };
        self.e.sched.schedule(
            now + every,
            EventKind::PeriodicFire,
            inst,
            incarnation,
            idx,
            0,
        );
        let up =
            m.life == LifePhase::Up && !m.latched && self.instances[inst as usize].down.is_none();
        // A refresh loop: the previous call of this entry, still retrying, is not doubled.
        let busy = m
            .periodic_out
            .get(idx as usize)
            .is_some_and(|&(j, generation)| self.e.jobs.live(j, generation).is_some());
        if up && !busy && !self.periodic_paused(s) && self.instances[inst as usize].provisioned {
            let j = self.internal_job(s, inst, Purpose::Periodic, idx as u16, incarnation);
            let generation = self.e.jobs.get(j).generation;
            let out = &mut self.instance_mech_mut(inst).periodic_out;
            if out.len() <= idx as usize {
                out.resize(idx as usize + 1, (NONE, 0));
            }
            out[idx as usize] = (j, generation);
            self.start_call(j);
        }
    }

    /// An internal job ends (its call succeeded, or failed after its retries).
    pub(crate) fn finish_internal(&mut self, j: u32, outcome: Outcome) {
        let job = *self.e.jobs.get(j);
        if job.purpose == Purpose::Delivery {
            self.end_delivery(j, outcome);
            return;
        }
        let current = !self.lifecycle_call_orphaned(j);
        self.e.jobs.free(j);
        if !current {
            return;
        }
        let inst = job.instance;
        let s = job.node;
        let Some(m) = self.instances[inst as usize].mech.as_deref_mut() else {
            return;
        };
        match job.purpose {
            Purpose::Startup => {
                if outcome == Outcome::Success {
                    m.out_origin = crate::causality::UNKNOWN_CODE;
                    m.life = LifePhase::Starting {
                        step: u32::from(job.call_idx) + 1,
                    };
                    self.next_startup_step(inst);
                } else {
                    m.out_origin = job.origin;
                    let target = self.e.model.services[s as usize]
                        .mech
                        .as_ref()
                        .and_then(|m| m.lifecycle.startup.get(job.call_idx as usize))
                        .map_or(String::new(), |c| {
                            self.e.model.services[c.to as usize].name.clone()
                        });
                    self.retry_start(
                        inst,
                        &format!("startup call to {target} failed: {}", outcome.as_str()),
                    );
                }
            }
            Purpose::Periodic => {
                self.periodic_verdict(
                    inst,
                    job.call_idx,
                    (outcome != Outcome::Success).then_some(job.origin),
                );
            }
            Purpose::Delivery | Purpose::Request => {}
        }
    }

    /// A gating periodic call of `inst` (number `call_idx`) succeeded, or one of its attempts
    /// failed: the instance leaves the load balancer at the `disqualify_after`-th failed
    /// attempt in a row (by default the first: it will not serve on what it could not refresh,
    /// while it retries) and returns when a call succeeds.
    /// `failed`: the origin of the failure (`None`: the call succeeded).
    fn periodic_verdict(&mut self, inst: u32, call_idx: u16, failed: Option<u16>) {
        let ok = failed.is_none();
        let s = self.instances[inst as usize].service;
        let (gates, after) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.lifecycle.periodic.get(call_idx as usize))
            .map_or((false, 1), |p| (p.disqualify, p.disqualify_after));
        let Some(m) = self.instances[inst as usize].mech.as_deref_mut() else {
            return;
        };
        // Failed attempts in a row: the instance leaves at the `after`-th.
        let idx = call_idx as usize;
        if m.periodic_failures.len() <= idx {
            m.periodic_failures.resize(idx + 1, 0);
        }
        let failures = &mut m.periodic_failures[idx];
        *failures = if ok { 0 } else { failures.saturating_add(1) };
        let too_few = !ok && *failures < after;
        // A success clears it: whatever takes the instance out next says why.
        m.out_origin = failed.unwrap_or(crate::causality::UNKNOWN_CODE);
        if gates && !too_few && m.disqualified == ok {
            m.disqualified = !ok;
            let ordinal = self.ordinal(inst);
            let what = if ok {
                "back in rotation: its periodic call succeeded"
            } else {
                "out of rotation: its periodic call failed"
            };
            self.log_mech(s, format!("instance {ordinal} {what}"));
            self.rebuild_routable(s);
        }
    }

    /// Internal job `j`'s attempt failed and will be retried: a gating periodic call takes
    /// its instance out of rotation now (see [`Ctx::periodic_verdict`]).
    pub(crate) fn internal_attempt_failed(&mut self, j: u32) {
        let job = *self.e.jobs.get(j);
        if job.purpose != Purpose::Periodic || job.instance == NONE {
            return;
        }
        if self.of_current_incarnation(j) {
            self.periodic_verdict(job.instance, job.call_idx, Some(job.origin));
        }
    }

    /// Whether internal job `j` is an instance's own call (startup or periodic) whose
    /// instance has been retired or has restarted since the job began: the process that made
    /// it is gone, so the call makes no further attempts and its end changes nothing.
    pub(crate) fn lifecycle_call_orphaned(&self, j: u32) -> bool {
        let job = self.e.jobs.get(j);
        matches!(job.purpose, Purpose::Startup | Purpose::Periodic)
            && (!self.of_current_incarnation(j)
                || !self.instances[job.instance as usize].provisioned)
    }

    /// Whether internal job `j`'s call must make no further attempts: its instance's life ended
    /// ([`Ctx::lifecycle_call_orphaned`]), or it is a periodic call of a service whose periodic
    /// calls an operator paused (its outcome so far still counts).
    pub(crate) fn lifecycle_retries_stopped(&self, j: u32) -> bool {
        let job = self.e.jobs.get(j);
        self.lifecycle_call_orphaned(j)
            || (job.purpose == Purpose::Periodic && self.periodic_paused(job.node))
    }

    /// An operator paused service `s`'s periodic calls.
    fn periodic_paused(&self, s: u32) -> bool {
        self.services[s as usize]
            .rt
            .as_deref()
            .is_some_and(|r| r.periodic_paused)
    }

    /// Internal job `j` belongs to its instance's current life (not one a crash or restart
    /// ended since the job began).
    fn of_current_incarnation(&self, j: u32) -> bool {
        let inst = self.e.jobs.get(j).instance;
        inst != NONE
            && self.instances[inst as usize]
                .mech
                .as_deref()
                .is_some_and(|m| m.incarnation == self.e.jobs.side(j).incarnation)
    }

    /// A start of `inst` failed: it goes down and tries again after the restart time (at
    /// least one second: a crash loop).
    fn retry_start(&mut self, inst: u32, why: &str) {
        let now = self.e.now;
        let s = self.instances[inst as usize].service;
        let wait = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .map_or(0, |m| m.lifecycle.restart_ns)
            .max(1_000_000_000);
        let m = self.instance_mech_mut(inst);
        m.incarnation = m.incarnation.wrapping_add(1);
        m.life = LifePhase::Restarting {
            until_ns: now + wait,
        };
        let inc = m.incarnation;
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.down = Some(KillMode::Refuse);
        let ordinal = self.ordinal(inst);
        self.log_mech(s, format!("instance {ordinal}: {why}; retrying"));
        self.e
            .sched
            .schedule(now + wait, EventKind::LifeStep, inst, inc, 0, 0);
    }

    /// Instance `inst` falls into a latched failure: down (refusing) until reset.
    pub(crate) fn latch_instance(&mut self, inst: u32, why: &str) {
        let now = self.e.now;
        let s = self.instances[inst as usize].service;
        if self.instances[inst as usize].down.is_none() {
            self.crash_instance(inst, KillMode::Refuse);
        }
        let m = self.instance_mech_mut(inst);
        if m.latched {
            return;
        }
        m.latched = true;
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.down = Some(KillMode::Refuse);
        let ordinal = self.ordinal(inst);
        self.log_mech(
            s,
            format!("instance {ordinal} latched ({why}); only a reset brings it back"),
        );
        self.rebuild_routable(s);
        self.check_primary(s);
    }

    /// Resets the latched instances of service `s` (each restarts).
    pub(crate) fn reset_latched(&mut self, s: u32) {
        let latched: Vec<u32> = self.services[s as usize]
            .instances
            .iter()
            .copied()
            .filter(|&g| {
                self.instances[g as usize]
                    .mech
                    .as_ref()
                    .is_some_and(|m| m.latched)
            })
            .collect();
        for g in latched {
            self.restart_instance(g, "reset");
        }
    }

    // ---------------------------------------------------------------- health checks

    /// Starts the probe loops of service `s`'s instances (spread over one interval).
    pub(crate) fn start_probes(&mut self, s: u32) {
        let now = self.e.now;
        let Some(h) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.health)
        else {
            return;
        };
        let instances = self.services[s as usize].instances.clone();
        let n = instances.len().max(1) as u64;
        for (ordinal, g) in instances.into_iter().enumerate() {
            let m = self.instance_mech_mut(g);
            if m.probing {
                continue;
            }
            m.probing = true;
            let offset = (u128::from(h.interval_ns) * ordinal as u128 / u128::from(n)) as Nanos;
            self.e
                .sched
                .schedule(now + offset.max(1), EventKind::ProbeFire, g, 0, 0, 0);
        }
    }

    /// A probe of instance `inst` is due.
    pub(crate) fn on_probe_fire(&mut self, inst: u32, _unused: u32) {
        let now = self.e.now;
        let s = self.instances[inst as usize].service;
        let Some(h) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.health)
        else {
            if let Some(m) = self.instances[inst as usize].mech.as_deref_mut() {
                m.probing = false;
            }
            return;
        };
        self.e
            .sched
            .schedule(now + h.interval_ns, EventKind::ProbeFire, inst, 0, 0, 0);
        let is = &*self.instances[inst as usize];
        if !is.provisioned {
            return;
        }
        let Some(m) = is.mech.as_deref() else { return };
        if m.probe.is_some() {
            // The previous probe is still waiting; it will pass or time out.
            return;
        }
        // An isolated instance cannot be reached by the probe either.
        let alive = is.down.is_none() && !is.isolated && m.life == LifePhase::Up;
        if !alive {
            self.probe_result(inst, false);
            return;
        }
        if !h.through_queue {
            self.probe_result(inst, true);
            return;
        }
        // A probe request: waits for a worker like any request.
        let k = self
            .e
            .jobs
            .alloc_root(Phase::Queued, PROBE, (s, inst), now, NONE, CRITICAL);
        let generation = self.e.jobs.get(k).generation;
        let capacity = self.e.model.services[s as usize].queue_capacity;
        let is = &mut *self.instances[inst as usize];
        if let Some(m) = is.mech.as_deref_mut() {
            m.probe = Some((k, generation));
        }
        self.e.sched.schedule(
            now + h.timeout_ns,
            EventKind::ProbeTimeout,
            inst,
            k,
            generation,
            0,
        );
        if is.busy < is.workers {
            self.start_work(k, inst);
        } else if (is.queue.len() as u32) < capacity {
            is.touch(now);
            self.enqueue_job(k, inst);
            self.load_changed(inst);
        } else {
            if let Some(m) = is.mech.as_deref_mut() {
                m.probe = None;
            }
            self.e.jobs.free(k);
            self.probe_result(inst, false);
        }
    }

    /// A probe waiting at `inst` timed out.
    pub(crate) fn on_probe_timeout(&mut self, inst: u32, k: u32, generation: u32) {
        let Some(m) = self.instances[inst as usize].mech.as_deref_mut() else {
            return;
        };
        if m.probe != Some((k, generation)) {
            return;
        }
        m.probe = None;
        self.probe_result(inst, false);
    }

    /// A probe job's work is done: it frees its worker and passes if it is still awaited.
    pub(crate) fn finish_probe(&mut self, k: u32) {
        let now = self.e.now;
        let job = self.e.jobs.get(k);
        let (inst, generation) = (job.instance, job.generation);
        let is = &mut *self.instances[inst as usize];
        is.touch(now);
        is.busy = is.busy.saturating_sub(1);
        self.load_changed(inst);
        let is = &mut *self.instances[inst as usize];
        let awaited = is
            .mech
            .as_deref()
            .is_some_and(|m| m.probe == Some((k, generation)));
        if awaited && let Some(m) = is.mech.as_deref_mut() {
            m.probe = None;
        }
        self.e.jobs.free(k);
        if awaited {
            self.probe_result(inst, true);
        }
        self.dispatch(inst);
    }

    /// Records a probe result of `inst`; ejects or restores it when its state flips.
    fn probe_result(&mut self, inst: u32, passed: bool) {
        let s = self.instances[inst as usize].service;
        let Some(h) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.health)
        else {
            return;
        };
        let Some(m) = self.instances[inst as usize].mech.as_deref_mut() else {
            return;
        };
        let changed = m.health.probe(passed, h.unhealthy_after, h.healthy_after);
        // Liveness: only a running instance's failures count (one restarting or starting is
        // already coming back).
        let restart = m.life == LifePhase::Up && m.health.failed_in_a_row() >= h.restart_after;
        if changed {
            let healthy = m.health.healthy;
            let ordinal = self.ordinal(inst);
            let what = if healthy {
                "passes health checks: back in the load balancer"
            } else {
                "fails health checks: ejected from the load balancer"
            };
            self.log_mech(s, format!("instance {ordinal} {what}"));
            self.rebuild_routable(s);
        }
        if restart {
            let why = format!("failed {} health checks in a row", h.restart_after);
            self.restart_instance(inst, &why);
        }
    }

    // ---------------------------------------------------------------- outlier ejection

    /// Records a request outcome at `inst` for outlier ejection.
    pub(crate) fn outlier_record(&mut self, inst: u32, ok: bool) {
        let now = self.e.now;
        let s = self.instances[inst as usize].service;
        let Some(o) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.outlier)
        else {
            return;
        };
        let Some(m) = self.instances[inst as usize].mech.as_deref_mut() else {
            return;
        };
        if m.ejected_until > now {
            return;
        }
        m.error_streak = if ok { 0 } else { m.error_streak + 1 };
        let by_streak = o.consecutive > 0 && m.error_streak >= o.consecutive;
        let window = m.outlier.get_or_insert_with(|| Rolling::new(o.window_ns));
        window.add(now, 1, u64::from(!ok));
        let (n, errors) = window.totals(now);
        let by_share = n >= o.min_requests && (errors as f64) >= o.error_ratio * n as f64;
        if !by_share && !by_streak {
            return;
        }
        let ejected = self.services[s as usize]
            .instances
            .iter()
            .filter(|&&g| {
                self.instances[g as usize]
                    .mech
                    .as_deref()
                    .is_some_and(|x| x.ejected_until > now)
            })
            .count();
        let total = self.services[s as usize]
            .instances
            .iter()
            .filter(|&&g| self.instances[g as usize].provisioned)
            .count();
        if (ejected + 1) as f64 > o.max_ejected * total as f64 {
            return;
        }
        let Some(m) = self.instances[inst as usize].mech.as_deref_mut() else {
            return;
        };
        m.ejected_until = now + o.eject_ns;
        m.error_streak = 0;
        if let Some(w) = m.outlier.as_mut() {
            w.clear();
        }
        let ordinal = self.ordinal(inst);
        let why = if by_share {
            format!("{errors} errors in {n} requests")
        } else {
            format!("{} errors in a row", o.consecutive)
        };
        self.log_mech(
            s,
            format!("instance {ordinal} ejected as an outlier ({why})"),
        );
        self.e
            .sched
            .schedule(now + o.eject_ns, EventKind::Reroute, s, 0, 0, 0);
        self.rebuild_routable(s);
    }

    // ---------------------------------------------------------------- routing

    /// The load balancer's instances: provisioned (and no longer being provisioned), in
    /// rotation, and — where the mechanisms say so — started, healthy, not ejected, not
    /// disqualified. Under a panic threshold, when too few qualify, every registered one
    /// (provisioned, not being provisioned, in rotation). Killed instances stay routable
    /// unless health checks find them out: a load balancer cannot tell otherwise.
    pub(crate) fn rebuild_routable(&mut self, s: u32) {
        self.drop_least_loaded(s);
        let now = self.e.now;
        let base: Vec<u32> = self.services[s as usize]
            .instances
            .iter()
            .copied()
            .filter(|&g| {
                let is = &self.instances[g as usize];
                // A machine still being provisioned is not registered with the load balancer.
                is.provisioned
                    && is.in_rotation
                    && is
                        .mech
                        .as_deref()
                        .is_none_or(|m| !matches!(m.life, LifePhase::Provisioning { .. }))
            })
            .collect();
        let qualified: Vec<u32> = base
            .iter()
            .copied()
            .filter(|&g| {
                self.instances[g as usize]
                    .mech
                    .as_deref()
                    .is_none_or(|m| m.routable(now))
            })
            .collect();
        let threshold = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.panic_threshold);
        let panic = threshold.is_some_and(|t| in_panic(qualified.len(), base.len(), t));
        if let Some(rt) = self.services[s as usize].rt.as_deref_mut()
            && rt.panic != panic
        {
            rt.panic = panic;
            let what = if panic {
                format!(
                    "load balancer in panic: {} of {} instances healthy, routing to all",
                    qualified.len(),
                    base.len()
                )
            } else {
                "load balancer out of panic".to_owned()
            };
            self.log_mech(s, what);
        }
        let registered = if self.e.model.zone_routed(s) {
            self.zone_counts(&base)
        } else {
            Vec::new()
        };
        let routable = if panic { base } else { qualified };
        for i in 0..self.services[s as usize].instances.len() {
            let g = self.services[s as usize].instances[i];
            self.instances[g as usize].routable = false;
        }
        for &g in &routable {
            self.instances[g as usize].routable = true;
        }
        self.rebuild_zone_routable(s, &routable, registered);
        self.services[s as usize].routable = routable;
    }

    /// Instances of `list` in each zone, by zone id.
    fn zone_counts(&self, list: &[u32]) -> Vec<u32> {
        let mut counts = vec![0u32; self.e.model.zone_names.len()];
        for &g in list {
            if let Some(z) = self.instance_zone(g) {
                counts[z as usize] += 1;
            }
        }
        counts
    }

    /// Zone routing's per-zone lists of service `s`, from its new routable list and its
    /// registered instances per zone (cleared for a service without zone routing). A zone's
    /// round-robin cursor is kept.
    fn rebuild_zone_routable(&mut self, s: u32, routable: &[u32], registered: Vec<u32>) {
        let zones = registered.len();
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); zones];
        if zones > 0 {
            for &g in routable {
                if let Some(z) = self.instance_zone(g) {
                    lists[z as usize].push(g);
                }
            }
        }
        let svc = &mut *self.services[s as usize];
        svc.zone_cursor.resize(zones, 0);
        svc.zone_routable = lists;
        svc.zone_registered = registered;
    }

    // ---------------------------------------------------------------- live edits

    /// Brings the mechanism state of service `s` and its instances in line with the model
    /// after a live edit: guards per call, limiters, cores, cache and queue state, probe and
    /// periodic loops. State that still fits (breaker windows, cache entries) is kept.
    pub(crate) fn sync_mechanisms(&mut self, s: u32) {
        let now = self.e.now;
        let svc = &self.e.model.services[s as usize];
        let instances = self.services[s as usize].instances.clone();
        match svc.mech.as_deref() {
            None => {
                for &g in &instances {
                    let is = &mut *self.instances[g as usize];
                    // A cut of its cores keeps them counted (and the requests waiting for one).
                    let cut = is.cores_cut != u32::MAX;
                    let keep = is.mech.as_deref().is_some_and(|m| {
                        m.latched
                            || m.life != LifePhase::Up
                            || m.fault_limiter.is_some()
                            || cut
                            || !m.core_queue.is_empty()
                    });
                    if !keep && is.mech.is_some() {
                        is.touch(now);
                        is.mech = None;
                        is.cores = u32::MAX;
                        is.cores_busy = 0;
                    }
                }
            }
            Some(mech) => {
                let calls = svc.calls.clone();
                let cores = if mech.cores == u32::MAX {
                    svc.workers
                } else {
                    mech.cores
                };
                let rate_limit = mech.rate_limit;
                for &g in &instances {
                    let m = self.instance_mech_mut(g);
                    m.calls.resize_with(calls.len(), Default::default);
                    for (guard, call) in m.calls.iter_mut().zip(&calls) {
                        let want = call.guard;
                        let fits = guard.breaker.as_ref().map(|b| b.config)
                            == want.and_then(|w| w.breaker)
                            && guard.throttle.as_ref().map(|t| t.k)
                                == want.and_then(|w| w.throttle).map(|t| t.0);
                        if !fits {
                            let in_call = guard.in_call;
                            *guard = super::mech::CallGuard::new(want.as_ref());
                            guard.in_call = in_call;
                        }
                    }
                    match (
                        rate_limit,
                        m.limiter.as_ref().map(|l| (l.rate_per_s, l.burst)),
                    ) {
                        (Some(want), Some(have)) if want == have => {}
                        (Some((rate, burst)), _) => m.limiter = Some(TokenBucket::new(rate, burst)),
                        (None, _) => m.limiter = None,
                    }
                    let is = &mut *self.instances[g as usize];
                    if is.cores != cores {
                        is.touch(now);
                        is.cores = cores;
                    }
                }
                if self.services[s as usize].rt.is_none() {
                    self.services[s as usize].rt = super::load::service_runtime(&self.e.model, s);
                } else if let Some(fresh) = super::load::service_runtime(&self.e.model, s) {
                    let rt = self.services[s as usize]
                        .rt
                        .as_deref_mut()
                        .unwrap_or_else(|| unreachable!("checked above"));
                    let keys = |t: &Option<crate::mechanisms::cache::KeyTable>| {
                        t.as_ref().map(|t| t.len())
                    };
                    if keys(&rt.cache) != keys(&fresh.cache) {
                        rt.cache = fresh.cache;
                        rt.waiters = fresh.waiters;
                    }
                    if rt.versions.as_ref().map(|v| v.len())
                        != fresh.versions.as_ref().map(|v| v.len())
                    {
                        rt.versions = fresh.versions;
                    }
                    if rt.queue.is_none() {
                        rt.queue = fresh.queue;
                    }
                }
                self.start_probes(s);
            }
        }
    }
}
