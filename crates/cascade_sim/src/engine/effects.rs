//! Fault effects: starting and ending faults, and recomputing the modifiers of exactly the
//! targets they touch (instances of one service, some links, or one source).
//!
//! Combination rules are pure functions in `crate::faults`; this file applies their results to
//! state: it crashes instances that go down, restarts queued work when workers come back,
//! rebuilds the load balancer's routable list, and resamples a source's next arrival when its
//! rate multiplier changes.

use super::jobs::Phase;
use super::scheduler::EventKind;
use super::step::Ctx;
use crate::events::SimEventKind;
use crate::faults::{self, FaultId, ResolvedTarget};
use crate::mechanisms::throttle::TokenBucket;
use crate::scenario::{FaultKind, PushedChange};
use crate::time::{NEVER, ns_to_s, s_to_ns};

impl Ctx<'_, '_> {
    /// Fault `id` starts now.
    pub(crate) fn start_fault(&mut self, id: FaultId) {
        let Some(f) = self.e.faults.get_mut(id as usize) else {
            return;
        };
        if f.active || f.end_ns <= self.e.now {
            return;
        }
        f.active = true;
        self.e.trigger_in_interval = true;
        let (kind, target, until) = (f.kind.label().to_owned(), f.target_label(), f.end_ns);
        let resolved = f.target.clone();
        self.e.log(SimEventKind::FaultStarted {
            id,
            kind,
            target,
            until_s: (until != NEVER).then(|| ns_to_s(until)),
        });
        if self.act_on_start(id) {
            // Instantaneous: done as soon as it acted (its effects run their course).
            if let Some(f) = self.e.faults.get_mut(id as usize) {
                f.active = false;
                f.end_ns = self.e.now;
            }
            return;
        }
        self.refresh_target(&resolved);
    }

    /// Fault `id` ends now (its duration passed, or it was cleared).
    pub(crate) fn end_fault(&mut self, id: FaultId) {
        let Some(f) = self.e.faults.get_mut(id as usize) else {
            return;
        };
        if !f.active {
            // Cleared before it started: make sure it never starts.
            f.end_ns = f.end_ns.min(self.e.now);
            return;
        }
        f.active = false;
        f.end_ns = self.e.now;
        let (kind, target) = (f.kind.label().to_owned(), f.target_label());
        let resolved = f.target.clone();
        self.e.log(SimEventKind::FaultEnded { id, kind, target });
        self.refresh_target(&resolved);
    }

    /// Recomputes the state of everything `target` covers from the active faults.
    pub(crate) fn refresh_target(&mut self, target: &ResolvedTarget) {
        match target {
            ResolvedTarget::Service(s) => self.refresh_service(*s),
            ResolvedTarget::Links(links) => {
                for &l in links {
                    // Planned replies travel back over the link: re-plan under the new state;
                    // deferred sends over it are made under the old one.
                    let callee = self.e.model.links[l as usize].to;
                    self.materialize_service(callee);
                    let model = &self.e.model;
                    let first_link = |j: &crate::engine::Job| {
                        !j.is_client()
                            && model.services[j.node as usize]
                                .calls
                                .first()
                                .is_some_and(|c| c.link == l)
                    };
                    let deferred = self
                        .e
                        .jobs
                        .find(|j| j.flags & crate::engine::jobs::DEFERRED != 0 && first_link(j));
                    for k in deferred {
                        self.flush_deferred(k);
                    }
                    let m = faults::link_modifiers(self.e.faults.iter(), l);
                    let st = &mut self.e.links[l as usize];
                    st.partitioned = m.partitioned;
                    st.cut_requests = m.cut_requests;
                    st.cut_replies = m.cut_replies;
                    st.loss = m.loss;
                    st.extra_ns = m.added_ns;
                    match (st.unresolved.is_some(), m.unresolved.is_some()) {
                        (false, true) => self.e.unresolved_links += 1,
                        (true, false) => self.e.unresolved_links -= 1,
                        _ => {}
                    }
                    self.e.links[l as usize].unresolved = m.unresolved;
                    self.check_primary(callee);
                }
            }
            ResolvedTarget::Zone(z) => {
                let zoned: Vec<u32> = (0..self.e.model.services.len() as u32)
                    .filter(|&s| {
                        let svc = &self.e.model.services[s as usize];
                        !svc.removed && svc.zones.contains(z)
                    })
                    .collect();
                for s in zoned {
                    self.refresh_service(s);
                }
            }
            ResolvedTarget::Zones(_) => {
                // Planned replies and deferred sends were fixed under the old cuts: make them
                // event by event (the fast paths stay off while any cut is active).
                for s in 0..self.e.model.services.len() as u32 {
                    self.materialize_service(s);
                }
                self.flush_deferred_where(|_| true);
                self.e.zone_cuts = faults::zone_cuts(self.e.faults.iter());
                self.e.recount_instance_cuts();
            }
            ResolvedTarget::Source(s) => {
                let factor = faults::source_factor(self.e.faults.iter(), *s);
                let st = &mut *self.sources[*s as usize];
                if st.rate_factor != factor {
                    st.rate_factor = factor;
                    let now = self.e.now;
                    self.schedule_next_arrival(*s, now);
                }
            }
        }
    }

    /// Recomputes every instance of service `s`: kills, slowdowns, errors, worker limits,
    /// rotation; then the load balancer's routable list.
    pub(crate) fn refresh_service(&mut self, s: u32) {
        self.materialize_service(s);
        self.refresh_poison(s);
        self.flush_deferred_where(|j| !j.is_client() && j.node == s);
        let now = self.e.now;
        let base_workers = self.e.model.services[s as usize].workers;
        let configured = self.e.model.services[s as usize].instances;
        let instances = self.services[s as usize].instances.clone();
        for (ordinal, &g) in instances.iter().enumerate() {
            let mut m = faults::instance_modifiers(
                self.e.faults.iter(),
                s,
                ordinal as u32,
                self.e.model.zone_of(s, ordinal as u32),
                base_workers,
                configured,
            );
            self.apply_throttle(g, m.throttle_per_s);
            if m.scaling.is_some() {
                self.instance_mech_mut(g).pushed_scaling = m.scaling;
            } else if let Some(x) = self.instances[g as usize].mech.as_deref_mut() {
                x.pushed_scaling = None;
            }
            // Mechanisms keep an instance down too: latched, restarting, being provisioned.
            let mech_down = self.instances[g as usize].mech.as_deref().is_some_and(|x| {
                x.latched
                    || matches!(
                        x.life,
                        super::mech::LifePhase::Restarting { .. }
                            | super::mech::LifePhase::Provisioning { .. }
                    )
            });
            if mech_down && m.down.is_none() {
                m.down = Some(crate::scenario::KillMode::Refuse);
            }
            let (was_down, old_workers) = {
                let is = &mut *self.instances[g as usize];
                is.touch(now);
                let before = (is.down, is.workers);
                is.slow_factor = m.slow_factor;
                is.added_ns = m.added_ns;
                is.error_probability = m.error_probability;
                is.workers = m.workers;
                is.in_rotation = m.in_rotation;
                if is.isolated != m.isolated {
                    is.isolated = m.isolated;
                    if m.isolated {
                        self.e.isolated_instances += 1;
                    } else {
                        self.e.isolated_instances -= 1;
                    }
                    self.e.recount_instance_cuts();
                }
                before
            };
            match (was_down, m.down) {
                (None, Some(mode)) => {
                    self.crash_instance(g, mode);
                    self.instances[g as usize].down = Some(mode);
                }
                (Some(_), None) => {
                    // Back up: a fresh process with an empty queue (and resolver cache).
                    let is = &mut *self.instances[g as usize];
                    is.down = None;
                    is.up_since_ns = now;
                }
                (Some(_), Some(mode)) => self.instances[g as usize].down = Some(mode),
                (None, None) => {}
            }
            self.apply_cores_cut(g, m.cores, base_workers);
            if m.down.is_none() && m.workers > old_workers {
                self.dispatch(g);
            }
        }
        self.rebuild_routable(s);
        self.check_primary(s);
    }

    /// Cuts instance `inst`'s CPU cores to `cut` (`u32::MAX`: no cut) and starts the work a
    /// raised limit lets in. An instance whose cores are not counted (a service without
    /// mechanisms) starts counting them when a cut first reaches it, as many as its workers
    /// (the cores it had, never a constraint), with the requests then at their own work busy;
    /// its cores follow the service's workers from then on.
    fn apply_cores_cut(&mut self, inst: u32, cut: u32, base_workers: u32) {
        let now = self.e.now;
        let plain = self.e.model.services[self.instances[inst as usize].service as usize]
            .mech
            .is_none();
        let uncounted = self.instances[inst as usize].cores == u32::MAX;
        if uncounted && cut != u32::MAX {
            let working = self
                .e
                .jobs
                .find(|j| j.phase == Phase::Working && j.instance == inst && !j.is_client())
                .len() as u32;
            self.instance_mech_mut(inst);
            let is = &mut *self.instances[inst as usize];
            is.touch(now);
            is.cores = base_workers;
            is.cores_busy = working;
        } else if plain && !uncounted && self.instances[inst as usize].cores != base_workers {
            let is = &mut *self.instances[inst as usize];
            is.touch(now);
            is.cores = base_workers;
        }
        let is = &mut *self.instances[inst as usize];
        if is.cores_cut != cut {
            is.touch(now);
            is.cores_cut = cut;
        }
        if is.cores != u32::MAX {
            self.start_core_waiters(inst);
        }
    }

    /// Queries of death: whether service `s` crashes on them, and the share of each source's
    /// new requests that carry one.
    fn refresh_poison(&mut self, s: u32) {
        self.services[s as usize].poisoned = faults::poisoned(self.e.faults.iter(), s);
        for i in 0..self.sources.len() {
            let name = &self.e.model.sources[i].name;
            self.sources[i].poison_share = faults::poison_share(self.e.faults.iter(), name);
        }
    }

    /// Sets or clears the throttle-fault limiter of instance `inst`.
    fn apply_throttle(&mut self, inst: u32, rate_per_s: Option<f64>) {
        let current = self.instances[inst as usize]
            .mech
            .as_deref()
            .and_then(|m| m.fault_limiter.map(|l| l.rate_per_s));
        if current == rate_per_s {
            return;
        }
        match rate_per_s {
            // A tenth of a second of burst, as provider throttles allow.
            Some(rate) => {
                self.instance_mech_mut(inst).fault_limiter =
                    Some(TokenBucket::new(rate, (rate * 0.1).max(1.0)));
            }
            None => {
                if let Some(m) = self.instances[inst as usize].mech.as_deref_mut() {
                    m.fault_limiter = None;
                }
            }
        }
    }

    /// What an instantaneous fault or a config push does when it starts. Returns true when the
    /// fault is over at once (instantaneous).
    fn act_on_start(&mut self, id: FaultId) -> bool {
        let now = self.e.now;
        let Some(f) = self.e.faults.get(id as usize) else {
            return false;
        };
        let (kind, target) = (f.kind.clone(), f.target.clone());
        let ResolvedTarget::Service(s) = target else {
            return false;
        };
        match kind {
            FaultKind::CacheFlush { share, .. } => {
                if let Some(rt) = self.services[s as usize].rt.as_deref_mut()
                    && let (Some(table), Some(rng)) = (rt.cache.as_mut(), rt.rng.as_mut())
                {
                    table.flush(share, rng);
                }
                self.log_mech(
                    s,
                    format!("cache flushed ({:.0}% of entries)", share * 100.0),
                );
                true
            }
            FaultKind::TtlStorm { within_s, .. } => {
                if let Some(rt) = self.services[s as usize].rt.as_deref_mut()
                    && let (Some(table), Some(rng)) = (rt.cache.as_mut(), rt.rng.as_mut())
                {
                    table.expire_within(now, s_to_ns(within_s), rng);
                }
                self.log_mech(s, format!("every cache entry expires within {within_s} s"));
                true
            }
            FaultKind::Restart {
                instances: sel,
                spread_s,
                ..
            } => {
                let chosen = self.selected(s, sel);
                let m = chosen.len().max(1) as u64;
                for i in 0..chosen.len() {
                    let at = now + s_to_ns(spread_s) * i as u64 / m;
                    self.e
                        .sched
                        .schedule(at, EventKind::FaultStep, id, i as u32, 0, 0);
                }
                true
            }
            FaultKind::LatchedFailure { instances: sel, .. } => {
                for g in self.selected(s, sel) {
                    self.latch_instance(g, "latched-failure fault");
                }
                true
            }
            FaultKind::ConfigPush {
                share,
                propagation_s,
                ..
            } => {
                let reach = faults::push_reach(share, self.e.model.services[s as usize].instances);
                for i in 0..reach {
                    let at = now + s_to_ns(propagation_s) * u64::from(i) / u64::from(reach.max(1));
                    self.e.sched.schedule(at, EventKind::FaultStep, id, i, 0, 0);
                }
                false
            }
            _ => false,
        }
    }

    /// Provisioned instances of `s` picked by `sel`, in ordinal order.
    fn selected(&self, s: u32, sel: crate::scenario::InstanceSelector) -> Vec<u32> {
        self.services[s as usize]
            .instances
            .iter()
            .enumerate()
            .filter(|&(ordinal, &g)| {
                faults::selects(sel, ordinal as u32) && self.instances[g as usize].provisioned
            })
            .map(|(_, &g)| g)
            .collect()
    }

    /// Step `step` of fault `id`: the next staggered restart, or a config push reaching its
    /// next instance.
    pub(crate) fn on_fault_step(&mut self, id: FaultId, step: u32) {
        let Some(f) = self.e.faults.get(id as usize) else {
            return;
        };
        let (kind, active) = (f.kind.clone(), f.active);
        let ResolvedTarget::Service(s) = f.target else {
            return;
        };
        match kind {
            FaultKind::Restart { instances: sel, .. } => {
                if let Some(&g) = self.selected(s, sel).get(step as usize) {
                    self.restart_instance(g, "restart fault");
                }
            }
            FaultKind::ConfigPush { change, .. } if active => {
                if let Some(f) = self.e.faults.get_mut(id as usize) {
                    f.progress = f.progress.max(step + 1);
                }
                if change == PushedChange::Latch
                    && let Some(&g) = self.services[s as usize].instances.get(step as usize)
                {
                    self.latch_instance(g, "bad configuration");
                }
                self.log_mech(s, format!("configuration push reached instance {step}"));
                self.refresh_service(s);
            }
            _ => {}
        }
    }
}
