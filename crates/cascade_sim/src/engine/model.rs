//! The compiled model: a scenario turned into flat tables the engine reads on every event.
//!
//! Names become indices, milliseconds become nanoseconds, retry policies and distributions
//! become their fast forms. Indices are *stable for the life of a run*: a service, source or
//! link keeps its index across live edits (a removed one stays as a tombstone), so jobs in
//! flight never point at the wrong thing. The model owns configuration only; mutable state
//! lives in the ECS components (`state.rs`).

use std::collections::BTreeMap;

use crate::dist::Dist;
use crate::retry::RetryModel;
use crate::scenario::{LoadBalancer, NodeKind, QueueDiscipline, RateProfile, Scenario};
use crate::time::{ms_to_ns, s_to_ns, Nanos, NEVER};

/// A node: a source or a service, by index (callers of links are either).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum NodeRef {
    /// A source, by index.
    Source(u32),
    /// A service, by index.
    Service(u32),
}

/// One call of a service (or the one call of a source), compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallModel {
    /// Called service.
    pub to: u32,
    /// Link index (network state and edge metrics).
    pub link: u32,
    /// Probability of making the call.
    pub probability: f64,
    /// Repetitions when made.
    pub count: u32,
    /// Per-attempt timeout (`NEVER` = none).
    pub timeout_ns: Nanos,
    /// Retry policy.
    pub retry: RetryModel,
    /// One-way network latency.
    pub latency_ns: Nanos,
}

/// A service, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceModel {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: NodeKind,
    /// Removed by a live edit (tombstone: attempts are rejected).
    pub removed: bool,
    /// Configured instances.
    pub instances: u32,
    /// Configured workers per instance.
    pub workers: u32,
    /// Queue capacity (`u32::MAX` = unbounded).
    pub queue_capacity: u32,
    /// LIFO instead of FIFO.
    pub lifo: bool,
    /// Own work time.
    pub dist: Dist,
    /// Load balancing.
    pub lb: LoadBalancer,
    /// Downstream calls in order.
    pub calls: Vec<CallModel>,
    /// Drop expired work at dequeue and propagate deadlines downstream.
    pub deadline_propagation: bool,
}

impl ServiceModel {
    /// Its instances can plan requests at arrival (`planned.rs`): a leaf with a FIFO queue,
    /// no deadline checks, and a load balancer that does not read instance load.
    #[inline]
    pub fn plannable(&self) -> bool {
        self.calls.is_empty()
            && !self.lifo
            && !self.deadline_propagation
            && !self.removed
            && matches!(self.lb, LoadBalancer::RoundRobin | LoadBalancer::Random)
    }
}

/// A source, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceModel {
    /// Name.
    pub name: String,
    /// Removed by a live edit (sends nothing).
    pub removed: bool,
    /// Its call to its target.
    pub call: CallModel,
    /// Rate over time.
    pub rate: RateProfile,
}

/// A link (caller → callee), compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkModel {
    /// The calling node.
    pub from: NodeRef,
    /// Callee service.
    pub to: u32,
    /// One-way latency, ns (requests and replies).
    pub latency_ns: Nanos,
}

/// All compiled tables. See the module docs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// Tick length.
    pub tick_ns: Nanos,
    /// Ticks per metrics interval.
    pub interval_ticks: u64,
    /// Run length.
    pub duration_ns: Nanos,
    /// Seed.
    pub seed: u64,
    /// Sample every Nth client request (0 = none).
    pub sample_every: u32,
    /// Services by index.
    pub services: Vec<ServiceModel>,
    /// Sources by index.
    pub sources: Vec<SourceModel>,
    /// Links by index.
    pub links: Vec<LinkModel>,
    service_index: BTreeMap<String, u32>,
    source_index: BTreeMap<String, u32>,
    link_index: BTreeMap<(NodeRef, u32, u32), u32>,
}

impl Model {
    /// Compiles a (validated) scenario from scratch.
    pub fn compile(scenario: &Scenario) -> Model {
        let tick_ns = ms_to_ns(scenario.tick_ms).max(1);
        let mut m = Model {
            tick_ns,
            interval_ticks: (s_to_ns(scenario.metrics_interval_s) / tick_ns).max(1),
            duration_ns: s_to_ns(scenario.duration_s),
            seed: scenario.seed,
            sample_every: scenario.sample_every,
            ..Default::default()
        };
        m.update(scenario);
        m
    }

    /// Applies an edited scenario, keeping every existing index. Run settings (tick, seed,
    /// interval) are not changed by an edit; duration and sampling are.
    pub fn update(&mut self, scenario: &Scenario) {
        self.duration_ns = s_to_ns(scenario.duration_s);
        self.sample_every = scenario.sample_every;
        // Indices first, so calls can refer to services defined later in the file.
        for s in &scenario.services {
            let next = self.service_index.len() as u32;
            self.service_index.entry(s.name.clone()).or_insert(next);
        }
        for s in &scenario.sources {
            let next = self.source_index.len() as u32;
            self.source_index.entry(s.name.clone()).or_insert(next);
        }
        let placeholder_service = |name: &str| ServiceModel {
            name: name.to_owned(),
            kind: NodeKind::Service,
            removed: true,
            instances: 0,
            workers: 0,
            queue_capacity: 0,
            lifo: false,
            dist: Dist::Deterministic { ns: 1 },
            lb: LoadBalancer::RoundRobin,
            calls: Vec::new(),
            deadline_propagation: false,
        };
        self.services.resize_with(self.service_index.len(), || placeholder_service(""));
        for (name, &i) in &self.service_index {
            let svc = &mut self.services[i as usize];
            if svc.name.is_empty() {
                svc.name.clone_from(name);
            }
            svc.removed = true;
        }
        for (i, s) in scenario.sources.iter().enumerate() {
            let _ = i;
            let idx = self.source_index[&s.name];
            let call = self.compile_call(
                NodeRef::Source(idx),
                0,
                &s.target,
                1.0,
                1,
                s.timeout_ms,
                &s.retry,
                s.latency_ms,
            );
            let model = SourceModel { name: s.name.clone(), removed: false, call, rate: s.rate.clone() };
            if (idx as usize) < self.sources.len() {
                self.sources[idx as usize] = model;
            } else {
                self.sources.push(model);
            }
        }
        let live_sources: Vec<&str> = scenario.sources.iter().map(|s| s.name.as_str()).collect();
        for src in &mut self.sources {
            src.removed = !live_sources.contains(&src.name.as_str());
        }
        for s in &scenario.services {
            let idx = self.service_index[&s.name];
            let mut occurrence: BTreeMap<&str, u32> = BTreeMap::new();
            let calls = s
                .calls
                .iter()
                .map(|c| {
                    let n = occurrence.entry(c.to.as_str()).or_insert(0);
                    let k = *n;
                    *n += 1;
                    self.compile_call(
                        NodeRef::Service(idx),
                        k,
                        &c.to,
                        c.probability,
                        c.count,
                        c.timeout_ms,
                        &c.retry,
                        c.latency_ms,
                    )
                })
                .collect();
            self.services[idx as usize] = ServiceModel {
                name: s.name.clone(),
                kind: s.kind,
                removed: false,
                instances: s.instances,
                workers: s.workers,
                queue_capacity: s.queue.capacity.unwrap_or(u32::MAX),
                lifo: s.queue.discipline == QueueDiscipline::Lifo,
                dist: Dist::compile(&s.service_time),
                lb: s.lb,
                calls,
                deadline_propagation: s.deadline_propagation,
            };
        }
    }

    #[expect(clippy::too_many_arguments, reason = "mirrors the fields of a call spec")]
    fn compile_call(
        &mut self,
        from: NodeRef,
        occurrence: u32,
        to: &str,
        probability: f64,
        count: u32,
        timeout_ms: Option<f64>,
        retry: &crate::scenario::RetryPolicy,
        latency_ms: f64,
    ) -> CallModel {
        let to = self.service_index.get(to).copied().unwrap_or(0);
        let next = self.links.len() as u32;
        let link = *self.link_index.entry((from, to, occurrence)).or_insert(next);
        let latency_ns = ms_to_ns(latency_ms).max(self.tick_ns);
        if link == next {
            self.links.push(LinkModel { from, to, latency_ns });
        } else {
            self.links[link as usize].latency_ns = latency_ns;
        }
        CallModel {
            to,
            link,
            probability,
            count: count.max(1),
            timeout_ns: timeout_ms.map_or(NEVER, ms_to_ns),
            retry: RetryModel::compile(retry),
            latency_ns: ms_to_ns(latency_ms).max(self.tick_ns),
        }
    }

    /// Index of a service by name (including removed ones).
    pub fn service_index(&self, name: &str) -> Option<u32> {
        self.service_index.get(name).copied()
    }

    /// Index of a source by name (including removed ones).
    pub fn source_index(&self, name: &str) -> Option<u32> {
        self.source_index.get(name).copied()
    }

    /// Index of the first link from `from` to service `to`.
    pub fn link_index(&self, from: NodeRef, to: u32) -> Option<u32> {
        self.link_index.get(&(from, to, 0)).copied()
    }

    /// Every link from `from` to `to` (a caller may call the same service more than once).
    pub fn links_between(&self, from: NodeRef, to: u32) -> impl Iterator<Item = u32> + '_ {
        self.link_index.range((from, to, 0)..=(from, to, u32::MAX)).map(|(_, &l)| l)
    }

    /// Display name of a caller.
    pub fn caller_name(&self, c: NodeRef) -> &str {
        match c {
            NodeRef::Source(i) => &self.sources[i as usize].name,
            NodeRef::Service(i) => &self.services[i as usize].name,
        }
    }

    /// The call a job is making: a source's call, or a service's call `call_idx`.
    #[inline]
    pub fn call_of(&self, client: bool, node: u32, call_idx: u16) -> Option<&CallModel> {
        if client {
            self.sources.get(node as usize).map(|s| &s.call)
        } else {
            self.services.get(node as usize)?.calls.get(call_idx as usize)
        }
    }
}

/// Rate of a profile at time `t_ns`, requests per second.
pub fn rate_at(profile: &RateProfile, t_ns: Nanos) -> f64 {
    let t = t_ns as f64 / 1e9;
    match *profile {
        RateProfile::Constant(r) => r,
        RateProfile::Step { from_per_s, to_per_s, at_s } => {
            if t < at_s { from_per_s } else { to_per_s }
        }
        RateProfile::Ramp { from_per_s, to_per_s, start_s, end_s } => {
            if t <= start_s {
                from_per_s
            } else if t >= end_s {
                to_per_s
            } else {
                from_per_s + (to_per_s - from_per_s) * (t - start_s) / (end_s - start_s)
            }
        }
        RateProfile::Spike { base_per_s, peak_per_s, start_s, duration_s } => {
            if t >= start_s && t < start_s + duration_s { peak_per_s } else { base_per_s }
        }
        // A burst is a batch of arrivals at one instant, generated apart from the Poisson stream.
        RateProfile::Burst { .. } => 0.0,
    }
}

/// The next time after `t_ns` at which the profile's rate formula changes shape, and the
/// largest rate on `[t_ns, that time)`. Arrivals are generated exactly by thinning against
/// this bound (Lewis & Shedler), restarting at each breakpoint (Poisson is memoryless).
pub fn rate_segment(profile: &RateProfile, t_ns: Nanos) -> (Nanos, f64) {
    let t = t_ns as f64 / 1e9;
    let to_ns = |s: f64| s_to_ns(s).max(t_ns + 1);
    match *profile {
        RateProfile::Constant(r) => (NEVER, r),
        RateProfile::Step { from_per_s, to_per_s, at_s } => {
            if t < at_s { (to_ns(at_s), from_per_s) } else { (NEVER, to_per_s) }
        }
        RateProfile::Ramp { from_per_s, to_per_s, start_s, end_s } => {
            if t < start_s {
                (to_ns(start_s), from_per_s)
            } else if t < end_s {
                (to_ns(end_s), from_per_s.max(to_per_s))
            } else {
                (NEVER, to_per_s)
            }
        }
        RateProfile::Spike { base_per_s, peak_per_s, start_s, duration_s } => {
            if t < start_s {
                (to_ns(start_s), base_per_s)
            } else if t < start_s + duration_s {
                (to_ns(start_s + duration_s), peak_per_s)
            } else {
                (NEVER, base_per_s)
            }
        }
        RateProfile::Burst { .. } => (NEVER, 0.0),
    }
}

/// True when the profile is constant over `[t_ns, ∞)` or piecewise constant here (no thinning needed).
pub fn rate_is_flat(profile: &RateProfile, t_ns: Nanos) -> bool {
    match *profile {
        RateProfile::Ramp { start_s, end_s, .. } => {
            let t = t_ns as f64 / 1e9;
            !(t >= start_s && t < end_s)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_profiles_have_the_documented_shape() {
        let s = |x: f64| s_to_ns(x);
        let step = RateProfile::Step { from_per_s: 10.0, to_per_s: 20.0, at_s: 5.0 };
        assert_eq!(rate_at(&step, s(4.999)), 10.0);
        assert_eq!(rate_at(&step, s(5.0)), 20.0);
        let ramp = RateProfile::Ramp { from_per_s: 10.0, to_per_s: 30.0, start_s: 10.0, end_s: 20.0 };
        assert_eq!(rate_at(&ramp, s(15.0)), 20.0);
        assert_eq!(rate_segment(&ramp, s(12.0)), (s(20.0), 30.0));
        let spike = RateProfile::Spike { base_per_s: 1.0, peak_per_s: 9.0, start_s: 2.0, duration_s: 1.0 };
        assert_eq!(rate_at(&spike, s(2.5)), 9.0);
        assert_eq!(rate_at(&spike, s(3.0)), 1.0);
        assert_eq!(rate_segment(&spike, s(0.0)), (s(2.0), 1.0));
    }
}
