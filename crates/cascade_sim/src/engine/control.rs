//! The control loops around services: the autoscaler, failover of a primary to its replica,
//! alerts from metrics, and scripted operator actions.
//!
//! The autoscaler and alerts are evaluated when a metrics interval closes, from the rows just
//! written (an autoscaler's period and an alert's delay are whole intervals). Failover is
//! checked whenever a primary's state may have changed (faults, restarts, latches) and
//! promotes the replica once the primary has looked down for its detection delay plus
//! hold-down. Operator steps run at their time or when their alert fires, after their delay.

use super::mech::{InstanceMech, LifePhase};
use super::scheduler::EventKind;
use super::state::InstanceState;
use super::step::Ctx;
use crate::events::SimEventKind;
use crate::mechanisms::autoscale::{self, Decision};
use crate::mechanisms::throttle::TokenBucket;
use crate::metrics::{Health, NodeCounters};
use crate::retry::RetryModel;
use crate::scenario::{AlertMetric, OperatorAction, OperatorTrigger, ScaleMetric};
use crate::time::{NEVER, Nanos, s_to_ns};

/// Runtime state of one alert.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AlertState {
    /// How long the condition has held while the alert could see, ns.
    pub held_ns: Nanos,
    /// It fired.
    pub fired: bool,
}

impl Ctx<'_, '_> {
    // ---------------------------------------------------------------- failover

    /// Primary `s` looks down: no provisioned instance is up, or every link into it is cut.
    fn primary_down(&self, s: u32) -> bool {
        let svc = &self.services[s as usize];
        let all_down = svc
            .instances
            .iter()
            .map(|&g| &*self.instances[g as usize])
            .filter(|is| is.provisioned)
            .all(|is| is.down.is_some());
        let mut links = self
            .e
            .model
            .links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.to == s)
            .map(|(i, _)| &self.e.links[i])
            .peekable();
        let unreachable = links.peek().is_some()
            && links.all(|l| l.partitioned || l.cut_requests || l.cut_replies);
        all_down || unreachable
    }

    /// Re-checks whether primary `s` (if it has a failover) is down, arming the failover timer.
    pub(crate) fn check_primary(&mut self, s: u32) {
        let Some(f) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.failover)
        else {
            return;
        };
        let now = self.e.now;
        let down = self.primary_down(s);
        let Some(rt) = self.services[s as usize].rt.as_deref_mut() else {
            return;
        };
        if rt.promoted {
            return;
        }
        if down && rt.down_since == NEVER {
            rt.down_since = now;
            self.e.sched.schedule(
                now + f.promote_after_ns,
                EventKind::FailoverCheck,
                s,
                0,
                0,
                0,
            );
        } else if !down {
            rt.down_since = NEVER;
        }
    }

    /// The failover timer of primary `s` expired: promote if it is still down.
    pub(crate) fn on_failover_check(&mut self, s: u32) {
        let Some(f) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.failover)
        else {
            return;
        };
        let now = self.e.now;
        let Some(rt) = self.services[s as usize].rt.as_deref_mut() else {
            return;
        };
        if rt.promoted || rt.down_since == NEVER || now < rt.down_since + f.promote_after_ns {
            return;
        }
        rt.promoted = true;
        let alt: Vec<(u32, u32)> = self
            .e
            .model
            .failover_alt
            .iter()
            .copied()
            .filter(|&(l, _)| self.e.model.links[l as usize].to == s)
            .collect();
        let latency = f.replica_latency_ns;
        let repoint = |c: &mut super::model::CallModel| {
            if let Some(&(_, to_link)) = alt.iter().find(|&&(l, _)| l == c.link) {
                c.to = f.replica;
                c.link = to_link;
                c.latency_ns = latency;
            }
        };
        for svc in &mut self.e.model.services {
            svc.calls.iter_mut().for_each(repoint);
        }
        for src in &mut self.e.model.sources {
            repoint(&mut src.call);
        }
        let replica = self.e.model.services[f.replica as usize].name.clone();
        self.log_mech(s, format!("failed over to {replica}"));
    }

    // ---------------------------------------------------------------- autoscaler

    /// Runs the autoscalers whose period ends at `end_ns` (after the interval's rows are written).
    pub(crate) fn run_autoscalers(&mut self, end_ns: Nanos) {
        for s in 0..self.services.len() as u32 {
            let Some(a) = self.e.model.services[s as usize]
                .mech
                .as_ref()
                .and_then(|m| m.autoscale)
            else {
                continue;
            };
            if !end_ns.is_multiple_of(a.period_ns) {
                continue;
            }
            let intervals = (a.period_ns / self.history.interval_ns.max(1)).max(1) as usize;
            let Some(rows) = self.history.services.get(s as usize) else {
                continue;
            };
            let mut c = NodeCounters::default();
            for row in rows.iter().rev().take(intervals) {
                c.add(&row.counters);
            }
            let (current, starting) = self.instance_counts(s);
            let span_s = (intervals as u64 * self.history.interval_ns) as f64 / 1e9;
            let per_instance = f64::from(current.max(1));
            let metric = match a.metric() {
                ScaleMetric::Cpu => c.cpu_utilization().unwrap_or_else(|| c.utilization()),
                ScaleMetric::Workers => c.utilization(),
                ScaleMetric::QueueLength => c.area_queue as f64 / (span_s * 1e9) / per_instance,
                ScaleMetric::RequestsPerInstance => c.offered() as f64 / span_s / per_instance,
            };
            let spec = a.spec;
            let desired = autoscale::desired(current, metric, spec.target, spec.min, spec.max);
            let rt = self.services[s as usize].rt.as_deref();
            let cooldown_over = rt
                .and_then(|r| r.last_scale_ns)
                .is_none_or(|t| end_ns >= t + a.cooldown_ns);
            match autoscale::decide(current, starting, desired, cooldown_over, spec.scale_in) {
                Decision::Hold => {}
                Decision::ScaleOut(n) => {
                    let room = spec
                        .max_provisioning
                        .saturating_sub(starting)
                        .min(spec.max.saturating_sub(current + starting));
                    let n = n.min(room);
                    if n > 0 {
                        self.scale_out(s, n, a.provision_ns);
                        self.log_mech(s, format!("autoscaler: {:?} at {metric:.2} (target {}): adding {n} instance(s)", a.metric(), spec.target));
                        if let Some(rt) = self.services[s as usize].rt.as_deref_mut() {
                            rt.last_scale_ns = Some(end_ns);
                        }
                    }
                }
                Decision::ScaleIn(n) => {
                    self.scale_in(s, n);
                    self.log_mech(
                        s,
                        format!(
                            "autoscaler: {:?} at {metric:.2} (target {}): removing {n} instance(s)",
                            a.metric(),
                            spec.target
                        ),
                    );
                    if let Some(rt) = self.services[s as usize].rt.as_deref_mut() {
                        rt.last_scale_ns = Some(end_ns);
                    }
                }
            }
        }
    }

    /// `(up, starting)`: provisioned instances of `s` that are up, and those being provisioned
    /// or starting.
    pub(crate) fn instance_counts(&self, s: u32) -> (u32, u32) {
        let mut up = 0;
        let mut starting = 0;
        for &g in &self.services[s as usize].instances {
            let is = &self.instances[g as usize];
            if !is.provisioned {
                continue;
            }
            match is.mech.as_deref().map(|m| m.life) {
                Some(LifePhase::Provisioning { .. } | LifePhase::Starting { .. }) => starting += 1,
                _ => up += 1,
            }
        }
        (up, starting)
    }

    /// Provisions `n` more instances of `s`; each starts after `delay_ns`. The slots are the
    /// service's `max` instances: empty ones first (lowest-numbered first); one whose retired
    /// instance is still draining only when no empty one is left, and then as a new machine:
    /// the old one's remaining work is lost, as at a termination.
    pub(crate) fn scale_out(&mut self, s: u32, n: u32, delay_ns: Nanos) {
        let now = self.e.now;
        let draining = |is: &InstanceState| is.busy > 0 || !is.queue.is_empty() || is.planned;
        let unprovisioned = || {
            self.services[s as usize]
                .instances
                .iter()
                .copied()
                .filter(|&g| !self.instances[g as usize].provisioned)
        };
        let idle: Vec<u32> = unprovisioned()
            .filter(|&g| !draining(self.instances[g as usize]))
            .chain(unprovisioned().filter(|&g| draining(self.instances[g as usize])))
            .take(n as usize)
            .collect();
        for g in idle {
            if draining(self.instances[g as usize]) && self.instances[g as usize].down.is_none() {
                self.crash_instance(g, crate::scenario::KillMode::Refuse);
            }
            let m = self.instance_mech_mut(g);
            m.incarnation = m.incarnation.wrapping_add(1);
            m.life = LifePhase::Provisioning {
                until_ns: now + delay_ns,
            };
            m.latched = false;
            let inc = m.incarnation;
            let is = &mut *self.instances[g as usize];
            is.touch(now);
            is.provisioned = true;
            is.down = Some(crate::scenario::KillMode::Refuse);
            is.queue.clear();
            is.busy = 0;
            self.load_changed(g);
            self.e
                .sched
                .schedule(now + delay_ns, EventKind::LifeStep, g, inc, 0, 0);
        }
        self.rebuild_routable(s);
    }

    /// Retires `n` provisioned instances of `s`. Those that do not serve (being provisioned,
    /// starting, restarting, latched) go first, as Kubernetes' ReplicaSet deletes pods that
    /// are not ready before ready ones; then the serving ones; the highest-numbered first
    /// within each. A serving instance drains (finishes the requests it holds); one that does
    /// not serve holds none and simply ends, its life's pending steps and calls with it.
    pub(crate) fn scale_in(&mut self, s: u32, n: u32) {
        let now = self.e.now;
        let serving = |is: &InstanceState| is.mech.as_deref().is_none_or(InstanceMech::started);
        let provisioned = || {
            self.services[s as usize]
                .instances
                .iter()
                .rev()
                .copied()
                .filter(|&g| self.instances[g as usize].provisioned)
        };
        let retired: Vec<u32> = provisioned()
            .filter(|&g| !serving(self.instances[g as usize]))
            .chain(provisioned().filter(|&g| serving(self.instances[g as usize])))
            .take(n as usize)
            .collect();
        for g in retired {
            let is = &mut *self.instances[g as usize];
            if !serving(is)
                && let Some(m) = is.mech.as_deref_mut()
            {
                m.incarnation = m.incarnation.wrapping_add(1);
                m.life = LifePhase::Up;
                m.latched = false;
            }
            is.touch(now);
            is.provisioned = false;
        }
        self.rebuild_routable(s);
    }

    /// Sets the number of provisioned instances of `s` (operator): new ones start at once
    /// (through their startup calls), surplus ones drain.
    fn set_instances(&mut self, s: u32, n: u32) {
        let (up, starting) = self.instance_counts(s);
        let have = up + starting;
        if n > have {
            self.scale_out(s, n - have, 0);
        } else if n < have {
            self.scale_in(s, have - n);
        }
    }

    // ---------------------------------------------------------------- alerts and operator

    /// Evaluates every alert on the interval that just closed (`interval_ns` long).
    pub(crate) fn run_alerts(&mut self, interval_ns: Nanos) {
        let now = self.e.now;
        for i in 0..self.e.model.alerts.len() {
            let alert = &self.e.model.alerts[i];
            if self.e.alert_state.get(i).is_some_and(|a| a.fired) {
                continue;
            }
            // Blind while the monitoring path is failing: the delay clock stops.
            let blind = alert
                .via
                .as_deref()
                .and_then(|v| self.e.model.service_index(v))
                .is_some_and(|v| {
                    matches!(
                        self.services[v as usize].metrics.health,
                        Health::Failing | Health::Down
                    )
                });
            if blind {
                continue;
            }
            let row = match self.e.model.source_index(&alert.node) {
                Some(src) => self
                    .history
                    .sources
                    .get(src as usize)
                    .and_then(|r| r.back())
                    .map(|r| (r, true)),
                None => self
                    .e
                    .model
                    .service_index(&alert.node)
                    .and_then(|x| self.history.services.get(x as usize))
                    .and_then(|r| r.back())
                    .map(|r| (r, false)),
            };
            let Some((row, is_source)) = row else {
                continue;
            };
            let c = &row.counters;
            let value = match alert.metric {
                AlertMetric::ErrorRatio => {
                    if is_source {
                        let done = c.succeeded + c.failed_total();
                        if done == 0 {
                            0.0
                        } else {
                            c.failed_total() as f64 / done as f64
                        }
                    } else {
                        c.failure_ratio()
                    }
                }
                AlertMetric::SuccessRatio => {
                    let offered = if is_source {
                        c.offered_first
                    } else {
                        c.offered()
                    };
                    if offered == 0 {
                        1.0
                    } else {
                        c.goodput as f64 / offered as f64
                    }
                }
                AlertMetric::P99Ms => row.latency_ms[2],
                AlertMetric::QueueLength => c.mean_queue(interval_ns),
                AlertMetric::Utilization => c.utilization(),
            };
            let firing =
                alert.above.is_some_and(|t| value > t) || alert.below.is_some_and(|t| value < t);
            let (for_ns, name, node) =
                (s_to_ns(alert.for_s), alert.name.clone(), alert.node.clone());
            if self.e.alert_state.len() <= i {
                self.e.alert_state.resize(i + 1, AlertState::default());
            }
            let st = &mut self.e.alert_state[i];
            st.held_ns = if firing { st.held_ns + interval_ns } else { 0 };
            if firing && st.held_ns >= for_ns.max(1) {
                st.fired = true;
                self.e.log(SimEventKind::AlertFired {
                    name: name.clone(),
                    node,
                });
                let steps: Vec<(usize, f64)> = self
                    .e
                    .model
                    .operator
                    .iter()
                    .enumerate()
                    .filter(|(_, step)| step.when == OperatorTrigger::Alert(name.clone()))
                    .map(|(k, step)| (k, step.after_s))
                    .collect();
                for (k, after_s) in steps {
                    self.e.sched.schedule(
                        now + s_to_ns(after_s),
                        EventKind::OperatorFire,
                        k as u32,
                        0,
                        0,
                        0,
                    );
                }
            }
        }
    }

    /// Schedules the operator steps that run at a time (at load).
    pub(crate) fn schedule_operator(&mut self) {
        let timed: Vec<(usize, Nanos)> = self
            .e
            .model
            .operator
            .iter()
            .enumerate()
            .filter_map(|(k, step)| match step.when {
                OperatorTrigger::At(t) => Some((k, s_to_ns(t + step.after_s))),
                OperatorTrigger::Alert(_) => None,
            })
            .collect();
        for (k, at) in timed {
            self.e
                .sched
                .schedule(at, EventKind::OperatorFire, k as u32, 0, 0, 0);
        }
    }

    /// What operator `action` changes in the compiled model (retries, workers, a rate
    /// limit), when it changes anything; the service it changed, if one. Applied when the step
    /// acts and again after every live edit (`operator_model_changes`). A service that gets a
    /// rate limit and has no mechanisms gets their state, all off but the limit: its planned
    /// instances go back to event-by-event mode first (a planned leaf has none). The caller
    /// brings the service's state in line (`sync_mechanisms`, `refresh_service`).
    pub(crate) fn change_model(&mut self, action: &OperatorAction) -> Option<u32> {
        let model = &self.e.model;
        let service = |name: &str| {
            model
                .service_index(name)
                .filter(|&i| !model.services[i as usize].removed)
        };
        match action {
            OperatorAction::DisableRetries { service: target } => {
                let only = target.as_deref().and_then(service);
                if target.is_some() && only.is_none() {
                    return None;
                }
                for (i, svc) in self.e.model.services.iter_mut().enumerate() {
                    if only.is_none_or(|o| o == i as u32) {
                        for c in &mut svc.calls {
                            c.retry = RetryModel::NONE;
                        }
                    }
                }
                if target.is_none() {
                    for src in &mut self.e.model.sources {
                        src.call.retry = RetryModel::NONE;
                    }
                }
                None
            }
            OperatorAction::SetWorkers {
                service: name,
                workers,
            } => {
                let s = service(name)?;
                self.e.model.services[s as usize].workers = *workers;
                Some(s)
            }
            OperatorAction::RateLimit {
                service: name,
                rate_per_s,
                burst,
            } => {
                let s = service(name)?;
                self.set_rate_limit(s, Some((*rate_per_s, *burst)));
                Some(s)
            }
            OperatorAction::RemoveRateLimit { service: name } => {
                let s = service(name)?;
                let own = self.e.model.services[s as usize]
                    .mech
                    .as_ref()
                    .and_then(|m| m.own_rate_limit);
                self.set_rate_limit(s, own);
                Some(s)
            }
            _ => None,
        }
    }

    /// Applies the operator's model changes so far again, in order, to a freshly compiled
    /// model (after a live edit; the caller then syncs every service).
    pub(crate) fn reapply_operator_model_changes(&mut self) {
        let changes = std::mem::take(&mut self.e.operator_model_changes);
        for action in &changes {
            self.change_model(action);
        }
        self.e.operator_model_changes = changes;
    }

    /// Sets the model's rate limit of each instance of service `s` (an operator's, or the
    /// service's own again), giving a service without mechanisms their state (see
    /// [`Ctx::change_model`]).
    fn set_rate_limit(&mut self, s: u32, limit: Option<(f64, f64)>) {
        if self.e.model.services[s as usize].mech.is_none() {
            if limit.is_none() {
                return;
            }
            self.materialize_service(s);
            let plain = self.e.model.plain_mech(s);
            self.e.model.services[s as usize].mech = Some(plain);
        }
        if let Some(m) = self.e.model.services[s as usize].mech.as_mut() {
            m.rate_limit = limit;
        }
    }

    /// Operator step `k` acts.
    pub(crate) fn on_operator_fire(&mut self, k: u32) {
        let Some(step) = self.e.model.operator.get(k as usize).cloned() else {
            return;
        };
        let now = self.e.now;
        let service = |ctx: &Self, name: &str| {
            ctx.e
                .model
                .service_index(name)
                .filter(|&i| !ctx.e.model.services[i as usize].removed)
        };
        match &step.action {
            OperatorAction::ShedLoad { source, keep } => {
                if let Some(src) = self.e.model.source_index(source) {
                    self.sources[src as usize].keep = keep.clamp(0.0, 1.0);
                }
            }
            OperatorAction::LimitSource {
                source,
                rate_per_s,
                burst,
            } => {
                if let Some(src) = self.e.model.source_index(source) {
                    self.sources[src as usize].limit = Some(TokenBucket::new(*rate_per_s, *burst));
                }
            }
            OperatorAction::RemoveSourceLimit { source } => {
                if let Some(src) = self.e.model.source_index(source) {
                    self.sources[src as usize].limit = None;
                }
            }
            OperatorAction::RateLimit { .. }
            | OperatorAction::RemoveRateLimit { .. }
            | OperatorAction::DisableRetries { .. } => {
                self.e.operator_model_changes.push(step.action.clone());
                if let Some(s) = self.change_model(&step.action) {
                    self.sync_mechanisms(s);
                    self.refresh_service(s);
                }
            }
            OperatorAction::RestartInstances {
                service: name,
                per_minute,
            } => {
                if let Some(s) = service(self, name) {
                    let gap = s_to_ns(60.0 / per_minute.max(1e-9));
                    let targets: Vec<u32> = self.services[s as usize]
                        .instances
                        .iter()
                        .copied()
                        .filter(|&g| self.instances[g as usize].provisioned)
                        .collect();
                    for (i, g) in targets.into_iter().enumerate() {
                        self.e.sched.schedule(
                            now + gap * i as u64,
                            EventKind::RestartAt,
                            g,
                            0,
                            0,
                            0,
                        );
                    }
                }
            }
            OperatorAction::SetInstances {
                service: name,
                instances,
            } => {
                if let Some(s) = service(self, name) {
                    self.set_instances(s, *instances);
                }
            }
            OperatorAction::SetWorkers {
                service: name,
                workers,
            } => {
                self.e.operator_model_changes.push(step.action.clone());
                if let Some(s) = service(self, name) {
                    self.change_model(&step.action);
                    // Implicit cores (as many as workers) follow the workers.
                    let implicit = self.e.model.services[s as usize]
                        .mech
                        .as_ref()
                        .is_some_and(|m| m.cores == u32::MAX);
                    if implicit {
                        let now = self.e.now;
                        for &g in &self.services[s as usize].instances {
                            let is = &mut *self.instances[g as usize];
                            if is.mech.is_some() && is.cores != *workers {
                                is.touch(now);
                                is.cores = *workers;
                            }
                        }
                    }
                    self.refresh_service(s);
                }
            }
            OperatorAction::ClearFaults => {
                let active: Vec<u32> = self
                    .e
                    .faults
                    .iter()
                    .filter(|f| f.active)
                    .map(|f| f.id)
                    .collect();
                for id in active {
                    self.end_fault(id);
                }
            }
            OperatorAction::FreezeChanges => {
                // Cleared before it starts, a fault never starts (`end_fault`).
                let pending: Vec<u32> = self
                    .e
                    .faults
                    .iter()
                    .filter(|f| !f.active && f.start_ns >= now && f.end_ns > now)
                    .map(|f| f.id)
                    .collect();
                for id in pending {
                    self.end_fault(id);
                }
            }
            OperatorAction::ResetLatched { service: name } => {
                if let Some(s) = service(self, name) {
                    self.reset_latched(s);
                }
            }
            OperatorAction::PausePeriodic { service: name }
            | OperatorAction::ResumePeriodic { service: name } => {
                let pause = matches!(step.action, OperatorAction::PausePeriodic { .. });
                if let Some(s) = service(self, name)
                    && let Some(rt) = self.services[s as usize].rt.as_deref_mut()
                {
                    rt.periodic_paused = pause;
                }
            }
            OperatorAction::PauseDeliveries { service: name }
            | OperatorAction::ResumeDeliveries { service: name } => {
                let pause = matches!(step.action, OperatorAction::PauseDeliveries { .. });
                if let Some(s) = service(self, name) {
                    if let Some(q) = self.services[s as usize]
                        .rt
                        .as_deref_mut()
                        .and_then(|rt| rt.queue.as_mut())
                    {
                        q.paused = pause;
                    }
                    self.try_deliver(s);
                }
            }
        }
        let description = step.action.describe();
        self.e.log(SimEventKind::OperatorActed { description });
    }

    /// Mechanism gauges of service `s` at an interval close.
    pub(crate) fn gauges(&self, s: u32, end_ns: Nanos) -> crate::metrics::Gauges {
        let svc = &self.services[s as usize];
        let mut g = crate::metrics::Gauges {
            healthy_instances: svc.routable.len() as u32,
            ..Default::default()
        };
        for &i in &svc.instances {
            let is = &self.instances[i as usize];
            if let Some(m) = is.mech.as_deref() {
                if is.provisioned
                    && matches!(
                        m.life,
                        LifePhase::Provisioning { .. }
                            | LifePhase::Starting { .. }
                            | LifePhase::Restarting { .. }
                    )
                {
                    g.starting_instances += 1;
                }
                g.latched_instances += u32::from(m.latched);
            }
        }
        if let Some(rt) = svc.rt.as_deref() {
            g.cache_warmth = rt.cache.as_ref().map_or(0.0, |t| t.warmth(end_ns));
            if let Some(q) = &rt.queue {
                g.queue_backlog = q.items.len() as u64;
                g.dead_letters = q.dead_letters;
                g.expired_items = q.expired;
            }
            g.failed_over = rt.promoted;
            g.panic = rt.panic;
        }
        g
    }

    /// Open breakers on calls to each service (by callee), over every caller instance and
    /// source.
    pub(crate) fn open_breakers(&self, end_ns: Nanos) -> Vec<u32> {
        let mut open = vec![0u32; self.services.len()];
        for is in self.instances.iter() {
            let Some(m) = is.mech.as_deref() else {
                continue;
            };
            let calls = &self.e.model.services[is.service as usize].calls;
            for (guard, call) in m.calls.iter().zip(calls) {
                if guard.breaker.as_ref().is_some_and(|b| b.is_open(end_ns))
                    && let Some(slot) = open.get_mut(call.to as usize)
                {
                    *slot += 1;
                }
            }
        }
        open
    }
}
