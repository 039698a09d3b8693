//! Fault effects: starting and ending faults, and recomputing the modifiers of exactly the
//! targets they touch (instances of one service, some links, or one source).
//!
//! Combination rules are pure functions in `crate::faults`; this file applies their results to
//! state: it crashes instances that go down, restarts queued work when workers come back,
//! rebuilds the load balancer's routable list, and resamples a source's next arrival when its
//! rate multiplier changes.

use super::step::Ctx;
use crate::events::SimEventKind;
use crate::faults::{self, FaultId, ResolvedTarget};
use crate::time::{ns_to_s, NEVER};

impl Ctx<'_, '_> {
    /// Fault `id` starts now.
    pub(crate) fn start_fault(&mut self, id: FaultId) {
        let Some(f) = self.e.faults.get_mut(id as usize) else { return };
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
        self.refresh_target(&resolved);
    }

    /// Fault `id` ends now (its duration passed, or it was cleared).
    pub(crate) fn end_fault(&mut self, id: FaultId) {
        let Some(f) = self.e.faults.get_mut(id as usize) else { return };
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
                        !j.is_client() && model.services[j.node as usize].calls.first().is_some_and(|c| c.link == l)
                    };
                    let deferred = self.e.jobs.find(|j| j.flags & crate::engine::jobs::DEFERRED != 0 && first_link(j));
                    for k in deferred {
                        self.flush_deferred(k);
                    }
                    let (partitioned, extra) = faults::link_modifiers(self.e.faults.iter(), l);
                    let st = &mut self.e.links[l as usize];
                    st.partitioned = partitioned;
                    st.extra_ns = extra;
                }
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
        self.flush_deferred_where(|j| !j.is_client() && j.node == s);
        let now = self.e.now;
        let base_workers = self.e.model.services[s as usize].workers;
        let instances = self.services[s as usize].instances.clone();
        for (ordinal, &g) in instances.iter().enumerate() {
            let m = faults::instance_modifiers(self.e.faults.iter(), s, ordinal as u32, base_workers);
            let (was_down, old_workers) = {
                let is = &mut *self.instances[g as usize];
                is.touch(now);
                let before = (is.down, is.workers);
                is.slow_factor = m.slow_factor;
                is.added_ns = m.added_ns;
                is.error_probability = m.error_probability;
                is.workers = m.workers;
                is.in_rotation = m.in_rotation;
                before
            };
            match (was_down, m.down) {
                (None, Some(mode)) => {
                    self.crash_instance(g, mode);
                    self.instances[g as usize].down = Some(mode);
                }
                (Some(_), None) => {
                    // Back up: a fresh process with an empty queue.
                    self.instances[g as usize].down = None;
                }
                (Some(_), Some(mode)) => self.instances[g as usize].down = Some(mode),
                (None, None) => {}
            }
            if m.down.is_none() && m.workers > old_workers {
                self.dispatch(g);
            }
        }
        self.rebuild_routable(s);
    }

    /// The load balancer routes to provisioned, in-rotation instances (killed ones included:
    /// without health checks it cannot tell).
    pub(crate) fn rebuild_routable(&mut self, s: u32) {
        let routable: Vec<u32> = self.services[s as usize]
            .instances
            .iter()
            .copied()
            .filter(|&g| {
                let is = &self.instances[g as usize];
                is.provisioned && is.in_rotation
            })
            .collect();
        self.services[s as usize].routable = routable;
    }
}
