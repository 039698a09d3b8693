//! The compiled model: a scenario turned into flat tables the engine reads on every event.
//!
//! Names become indices, milliseconds become nanoseconds, retry policies and distributions
//! become their fast forms. Indices are *stable for the life of a run*: a service, source or
//! link keeps its index across live edits (a removed one stays as a tombstone), so jobs in
//! flight never point at the wrong thing. The model owns configuration only; mutable state
//! lives in the ECS components (`state.rs`).

use std::collections::BTreeMap;

use super::jobs::{Job, Purpose};
use super::mech::{
    AutoscaleModel, CacheModel, CallGuardModel, FailoverModel, HealthModel, LifecycleModel,
    OutlierModel, PeriodicModel, QueueModel, ServiceMech,
};
use crate::dist::Dist;
use crate::mechanisms::breaker::BreakerConfig;
use crate::mechanisms::occ::KeyChooser;
use crate::mechanisms::scaling::Scaling;
use crate::retry::RetryModel;
use crate::scenario::{
    AlertSpec, CallSpec, FanOut, LoadBalancer, NodeKind, OperatorAction, OperatorStep,
    QueueDiscipline, RateProfile, Scenario, ServiceSpec, ZoneRouting,
};
use crate::time::{NEVER, Nanos, ms_to_ns, s_to_ns};

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
    /// Standard deviation of the one-way latency (0: fixed).
    pub latency_sd_ns: Nanos,
    /// Breaker, throttling, hedging, bulkhead, fallback (`None`: none of them).
    pub guard: Option<CallGuardModel>,
}

impl CallModel {
    /// True when nothing but its latency, timeout and retries applies (fast paths allowed).
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.guard.is_none() && self.latency_sd_ns == 0
    }
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
    /// A priority queue: by criticality, most critical first (`step.rs`, `Ctx::enqueue_job`).
    pub priority: bool,
    /// An earliest-deadline-first queue (`step.rs`, `Ctx::enqueue_job`).
    pub edf: bool,
    /// Own work time.
    pub dist: Dist,
    /// Load balancing.
    pub lb: LoadBalancer,
    /// The zones its instances are spread over, in turn (ids of [`Model::zone_names`]; empty:
    /// in no zone).
    pub zones: Vec<u16>,
    /// Zone routing: the share of a zone's registered instances that must be routable to keep
    /// a caller's requests in its zone (`None`: every zone alike).
    pub same_zone: Option<f64>,
    /// Key-based routing (`None`: `lb` for every request).
    pub shard: Option<Box<ShardModel>>,
    /// Downstream calls in order.
    pub calls: Vec<CallModel>,
    /// Sequential or parallel calls (`fan_out.rs`).
    pub fan_out: FanOut,
    /// Drop expired work at dequeue and propagate deadlines downstream.
    pub deadline_propagation: bool,
    /// Honour cancellations from callers (`step.rs`, `Ctx::on_cancel_arrive`).
    pub cancellation: bool,
    /// Resilience mechanisms (`None`: none configured; the fast paths apply).
    pub mech: Option<Box<ServiceMech>>,
    /// Instances to create: the configured count, or more when an autoscaler or an operator
    /// step may ask for them (the extra ones start unprovisioned).
    pub capacity: u32,
}

impl ServiceModel {
    /// Its queue is kept in an order of its own (by criticality or by deadline), not FIFO.
    #[inline]
    pub fn ordered(&self) -> bool {
        self.priority | self.edf
    }

    /// Its instances can plan requests at arrival (`planned.rs`): a leaf with a FIFO queue,
    /// no deadline checks, no cancellation, no mechanisms, and a load balancer that does not read instance load.
    /// (Always inlined: it is tested at every arrival, and a call costs more than its tests.)
    #[inline(always)]
    pub fn plannable(&self) -> bool {
        self.calls.is_empty()
            && !self.lifo
            && !self.ordered()
            && !self.deadline_propagation
            && !self.cancellation
            && !self.removed
            && self.mech.is_none()
            && matches!(self.lb, LoadBalancer::RoundRobin | LoadBalancer::Random)
    }
}

/// Key-based routing of a service, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardModel {
    /// Key popularity.
    pub keys: KeyChooser,
    /// Instances holding each key.
    pub replicas: u32,
}

/// The instance ordinals holding key `key` among `n` instances, `replicas` of them, starting
/// with the one attempt `attempt` of a call tries first: `(key + (attempt − 1 + j) mod
/// replicas) mod n` for j = 0, 1, …
pub fn shard_owners(key: u32, n: u32, replicas: u32, attempt: u8) -> impl Iterator<Item = u32> {
    let r = replicas.clamp(1, n.max(1));
    let first = u32::from(attempt.max(1) - 1) % r;
    (0..r).map(move |j| (key % n.max(1) + (first + j) % r) % n.max(1))
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
    /// Its requests' criticality rank ([`Criticality::rank`](crate::scenario::Criticality)).
    pub criticality: u8,
    /// The zone its clients are in (`None`: outside every zone).
    pub zone: Option<u16>,
}

impl SourceModel {
    /// A batch of `count` requests at one time, for a `Burst` profile.
    pub fn burst(&self) -> Option<(u32, Nanos)> {
        match self.rate {
            RateProfile::Burst { count, at_s } => Some((count, s_to_ns(at_s))),
            _ => None,
        }
    }

    /// A closed population of `users` users thinking `think_ms` on average between
    /// requests, for a `Closed` profile.
    pub fn closed(&self) -> Option<(u32, f64)> {
        match self.rate {
            RateProfile::Closed {
                users, think_ms, ..
            } => Some((users, think_ms)),
            _ => None,
        }
    }

    /// A closed population's own mean think time after a request that failed, ms (`None`:
    /// none set, or not a closed population).
    pub fn think_after_failure_ms(&self) -> Option<f64> {
        match self.rate {
            RateProfile::Closed {
                think_after_failure_ms,
                ..
            } => think_after_failure_ms,
            _ => None,
        }
    }
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
    /// Standard deviation of the one-way latency, ns (0: fixed).
    pub latency_sd_ns: Nanos,
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
    /// Some service routes by key: only then does a call look at its callee's sharding.
    pub any_sharded: bool,
    /// Some service routes by its callers' zones: only then is a caller's zone carried with
    /// its attempts.
    pub any_zone_routed: bool,
    /// Some service honours cancellation: only then does an abandoned attempt send a cancel.
    pub any_cancellation: bool,
    /// Sources by index.
    pub sources: Vec<SourceModel>,
    /// Links by index.
    pub links: Vec<LinkModel>,
    /// Alerts (evaluated at interval closes).
    pub alerts: Vec<AlertSpec>,
    /// Scripted operator steps.
    pub operator: Vec<OperatorStep>,
    /// For each link into a primary with failover: `(link, the same caller's link to the
    /// replica)`; a failover re-points calls from the first to the second.
    pub failover_alt: Vec<(u32, u32)>,
    /// Every zone named so far, by id (in the order they were first named; an edit never
    /// renumbers them).
    pub zone_names: Vec<String>,
    service_index: BTreeMap<String, u32>,
    source_index: BTreeMap<String, u32>,
    link_index: BTreeMap<(NodeRef, u32, u32), u32>,
}

impl Model {
    /// The id of zone `name`, given a new one if it was never named.
    fn zone_id(&mut self, name: &str) -> u16 {
        match self.zone_names.iter().position(|z| z == name) {
            Some(i) => i as u16,
            None => {
                self.zone_names.push(name.to_owned());
                (self.zone_names.len() - 1) as u16
            }
        }
    }

    /// The id of zone `name`, if a service names it.
    pub fn zone_index(&self, name: &str) -> Option<u16> {
        self.zone_names
            .iter()
            .position(|z| z == name)
            .map(|i| i as u16)
    }

    /// The zone of instance `ordinal` of service `s` (`None`: the service is in no zone).
    #[inline]
    pub fn zone_of(&self, s: u32, ordinal: u32) -> Option<u16> {
        let zones = &self.services[s as usize].zones;
        (!zones.is_empty()).then(|| zones[ordinal as usize % zones.len()])
    }

    /// Whether service `s` keeps its callers' requests in their zones (one flag test when
    /// none does).
    #[inline]
    pub fn zone_routed(&self, s: u32) -> bool {
        self.any_zone_routed && self.services[s as usize].same_zone.is_some()
    }

    /// Whether requests to service `s` are routed by key (one flag test when none is).
    #[inline]
    pub fn key_routed(&self, s: u32) -> bool {
        self.any_sharded && self.services[s as usize].shard.is_some()
    }

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
            priority: false,
            edf: false,
            dist: Dist::Deterministic { ns: 1 },
            lb: LoadBalancer::RoundRobin,
            zones: Vec::new(),
            same_zone: None,
            shard: None,
            calls: Vec::new(),
            fan_out: FanOut::Sequential,
            deadline_propagation: false,
            cancellation: false,
            mech: None,
            capacity: 0,
        };
        self.services
            .resize_with(self.service_index.len(), || placeholder_service(""));
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
            let spec = CallSpec {
                to: s.target.clone(),
                timeout_ms: s.timeout_ms,
                retry: s.retry,
                latency_ms: s.latency_ms,
                latency_sd_ms: s.latency_sd_ms,
                adaptive_throttle: s.adaptive_throttle,
                hedge_after_ms: s.hedge_after_ms,
                ..Default::default()
            };
            let call = self.compile_call(NodeRef::Source(idx), 0, &spec);
            let zone = s.zone.as_deref().map(|z| self.zone_id(z));
            let model = SourceModel {
                name: s.name.clone(),
                removed: false,
                call,
                rate: s.rate.clone(),
                criticality: s.criticality.rank(),
                zone,
            };
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
            // A cache's backing fill is its call 0.
            let specs: Vec<&CallSpec> = s
                .cache
                .iter()
                .map(|c| &c.backing)
                .chain(s.calls.iter())
                .collect();
            let calls = specs
                .into_iter()
                .map(|c| {
                    let n = occurrence.entry(c.to.as_str()).or_insert(0);
                    let k = *n;
                    *n += 1;
                    self.compile_call(NodeRef::Service(idx), k, c)
                })
                .collect();
            let mech = self.compile_mech(idx, s, &mut occurrence);
            let zones = s.zones.iter().map(|z| self.zone_id(z)).collect();
            let capacity = capacity_of(s, scenario);
            self.services[idx as usize] = ServiceModel {
                name: s.name.clone(),
                kind: s.kind,
                removed: false,
                instances: s.instances,
                workers: s.workers,
                queue_capacity: s.queue.capacity.unwrap_or(u32::MAX),
                lifo: s.queue.discipline == QueueDiscipline::Lifo,
                priority: s.queue.discipline == QueueDiscipline::Priority,
                edf: s.queue.discipline == QueueDiscipline::Deadline,
                dist: Dist::compile(&s.service_time),
                lb: s.lb,
                // Zone routing needs zones; a key-routed service ignores it (validation says).
                same_zone: match s.zone_routing {
                    ZoneRouting::SameZone { spill_below } if !s.zones.is_empty() => {
                        Some(spill_below)
                    }
                    _ => None,
                },
                zones,
                shard: s.sharding.map(|sh| {
                    Box::new(ShardModel {
                        keys: KeyChooser::new(sh.keys, sh.zipf_s),
                        replicas: sh.replicas.max(1),
                    })
                }),
                calls,
                fan_out: s.fan_out,
                deadline_propagation: s.deadline_propagation,
                cancellation: s.cancellation,
                mech,
                capacity,
            };
        }
        self.any_sharded = self.services.iter().any(|s| s.shard.is_some());
        self.any_zone_routed = self.services.iter().any(|s| s.same_zone.is_some());
        self.any_cancellation = self.services.iter().any(|s| s.cancellation);
        self.alerts.clone_from(&scenario.alerts);
        self.operator.clone_from(&scenario.operator);
        self.compile_failover_links();
    }

    /// Links from every caller of a primary to its replica (`failover_alt`).
    fn compile_failover_links(&mut self) {
        self.failover_alt.clear();
        let primaries: Vec<(u32, u32, Nanos)> = self
            .services
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.removed)
            .filter_map(|(i, s)| {
                s.mech
                    .as_ref()?
                    .failover
                    .map(|f| (i as u32, f.replica, f.replica_latency_ns))
            })
            .collect();
        for (primary, replica, latency_ns) in primaries {
            let into: Vec<((NodeRef, u32, u32), u32)> = self
                .link_index
                .iter()
                .filter(|((_, to, _), _)| *to == primary)
                .map(|(&key, &l)| (key, l))
                .collect();
            for ((from, _, occurrence), link) in into {
                let key = (from, replica, occurrence | FAILOVER_OCCURRENCE);
                let next = self.links.len() as u32;
                let alt = *self.link_index.entry(key).or_insert(next);
                if alt == next {
                    self.links.push(LinkModel {
                        from,
                        to: replica,
                        latency_ns,
                        latency_sd_ns: 0,
                    });
                } else {
                    self.links[alt as usize].latency_ns = latency_ns;
                }
                self.failover_alt.push((link, alt));
            }
        }
    }

    /// The mechanisms of service `s`, or `None` when it has none.
    fn compile_mech<'a>(
        &mut self,
        idx: u32,
        s: &'a ServiceSpec,
        occurrence: &mut BTreeMap<&'a str, u32>,
    ) -> Option<Box<ServiceMech>> {
        let a = &s.admission;
        let lifecycle_calls = !s.lifecycle.is_empty();
        let any = s.cores.is_some()
            || s.scaling.is_some()
            || *a != Default::default()
            || s.health_check.is_some()
            || s.panic_threshold.is_some()
            || s.outlier_ejection.is_some()
            || s.autoscale.is_some()
            || s.cache.is_some()
            || lifecycle_calls
            || s.work_queue.is_some()
            || s.occ.is_some()
            || s.failover.is_some()
            || s.calls
                .iter()
                .any(|c| compile_guard(c).is_some_and(|g| g.needs_state()));
        if !any {
            return None;
        }
        let from = NodeRef::Service(idx);
        let mut next_link = |model: &mut Model, c: &'a CallSpec| {
            let n = occurrence.entry(c.to.as_str()).or_insert(0);
            let k = *n;
            *n += 1;
            model.compile_call(from, k, c)
        };
        let startup = s
            .lifecycle
            .startup_calls
            .iter()
            .map(|c| next_link(self, c))
            .collect();
        let periodic = s
            .lifecycle
            .periodic
            .iter()
            .map(|p| PeriodicModel {
                every_ns: s_to_ns(p.every_s).max(1),
                call: next_link(self, &p.call),
                disqualify: p.disqualify_on_failure,
                disqualify_after: p.disqualify_after.max(1),
            })
            .collect();
        let work_queue = s.work_queue.as_ref().map(|q| {
            let spec = CallSpec {
                to: q.consumer.clone(),
                timeout_ms: q.timeout_ms,
                latency_ms: q.latency_ms,
                ..Default::default()
            };
            let n = occurrence.entry(q.consumer.as_str()).or_insert(0);
            let k = *n;
            *n += 1;
            QueueModel {
                delivery: self.compile_call(from, k, &spec),
                concurrency: q.concurrency.max(1),
                rate_per_s: q.rate_per_s,
                ttl_ns: q.ttl_s.map_or(NEVER, s_to_ns),
                max_deliveries: q.max_deliveries.max(1),
                dead_letter: q.dead_letter,
            }
        });
        let failover = s.failover.as_ref().map(|f| FailoverModel {
            replica: self.service_index.get(&f.replica).copied().unwrap_or(idx),
            promote_after_ns: s_to_ns(f.detection_s + f.hold_down_s),
            replica_latency_ns: ms_to_ns(f.replica_latency_ms).max(self.tick_ns),
        });
        let autoscale = s.autoscale.map(|spec| AutoscaleModel {
            spec,
            period_ns: s_to_ns(spec.period_s).max(1),
            cooldown_ns: s_to_ns(spec.cooldown_s),
            provision_ns: s_to_ns(spec.provision_delay_s),
            warmup_ns: s_to_ns(spec.warmup_s),
        });
        Some(Box::new(ServiceMech {
            cores: s.cores.unwrap_or(u32::MAX),
            scaling: s.scaling.map(Scaling::from),
            max_wait_ns: a.max_queue_wait_ms.map_or(NEVER, ms_to_ns),
            lifo_above: a.lifo_above.unwrap_or(u32::MAX),
            codel: a
                .codel
                .map(|c| (ms_to_ns(c.target_ms), ms_to_ns(c.interval_ms))),
            rate_limit: a.rate_limit.map(|r| (r.rate_per_s, r.burst)),
            own_rate_limit: a.rate_limit.map(|r| (r.rate_per_s, r.burst)),
            max_in_flight: a.max_in_flight.unwrap_or(u32::MAX),
            latch_above: a.latch_above.unwrap_or(u32::MAX),
            retry_after_ns: a.retry_after_ms.map_or(0, ms_to_ns),
            dont_retry: a.dont_retry,
            health: s.health_check.map(|h| HealthModel {
                interval_ns: s_to_ns(h.interval_s).max(1),
                timeout_ns: ms_to_ns(h.timeout_ms).max(1),
                unhealthy_after: h.unhealthy_after.max(1),
                healthy_after: h.healthy_after.max(1),
                through_queue: h.through_queue,
                probe_ns: ms_to_ns(h.probe_ms).max(1),
                restart_after: h.restart_after.map_or(u32::MAX, |n| n.max(1)),
            }),
            panic_threshold: s.panic_threshold,
            outlier: s.outlier_ejection.map(|o| OutlierModel {
                consecutive: o.consecutive_errors.unwrap_or(0),
                error_ratio: o.error_ratio,
                window_ns: s_to_ns(o.window_s).max(1),
                min_requests: u64::from(o.min_requests.max(1)),
                eject_ns: s_to_ns(o.eject_s),
                max_ejected: o.max_ejected,
            }),
            autoscale,
            cache: s.cache.as_ref().map(|c| CacheModel {
                max_hit_ratio: c.max_hit_ratio,
                keys: c.keys.max(1),
                ttl_ns: c.ttl_s.map(s_to_ns),
                coalescing: c.coalescing,
                initial_warmth: c.initial_warmth,
            }),
            lifecycle: LifecycleModel {
                startup,
                periodic,
                restart_ns: s_to_ns(s.lifecycle.restart_s),
                warmup_ns: s_to_ns(s.lifecycle.warmup_s),
                warmup_factor: s.lifecycle.warmup_factor,
            },
            work_queue,
            occ: s.occ.map(|o| KeyChooser::new(o.keys, o.zipf_s)),
            failover,
        }))
    }

    /// Mechanism state for service `s` with every mechanism off: where an operator's rate
    /// limit lives on a service that configures none.
    pub(crate) fn plain_mech(&mut self, s: u32) -> Box<ServiceMech> {
        // A service whose only mechanism is a rate limit, with the limit taken off again.
        let spec = ServiceSpec {
            admission: crate::scenario::AdmissionSpec {
                rate_limit: Some(crate::scenario::RateLimitSpec {
                    rate_per_s: 1.0,
                    burst: 1.0,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut mech = self
            .compile_mech(s, &spec, &mut BTreeMap::new())
            .unwrap_or_else(|| unreachable!("a rate limit is a mechanism"));
        mech.rate_limit = None;
        mech.own_rate_limit = None;
        mech
    }

    fn compile_call(&mut self, from: NodeRef, occurrence: u32, spec: &CallSpec) -> CallModel {
        let CallSpec {
            probability,
            count,
            timeout_ms,
            latency_ms,
            ..
        } = *spec;
        let retry = &spec.retry;
        let to = self.service_index.get(&spec.to).copied().unwrap_or(0);
        let next = self.links.len() as u32;
        let link = *self
            .link_index
            .entry((from, to, occurrence))
            .or_insert(next);
        let latency_ns = ms_to_ns(latency_ms).max(self.tick_ns);
        let latency_sd_ns = ms_to_ns(spec.latency_sd_ms);
        if link == next {
            self.links.push(LinkModel {
                from,
                to,
                latency_ns,
                latency_sd_ns,
            });
        } else {
            self.links[link as usize].latency_ns = latency_ns;
            self.links[link as usize].latency_sd_ns = latency_sd_ns;
        }
        CallModel {
            to,
            link,
            probability,
            count: count.max(1),
            timeout_ns: timeout_ms.map_or(NEVER, ms_to_ns),
            retry: RetryModel::compile(retry),
            latency_ns: ms_to_ns(latency_ms).max(self.tick_ns),
            latency_sd_ns: ms_to_ns(spec.latency_sd_ms),
            guard: compile_guard(spec),
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
        self.link_index
            .range((from, to, 0)..=(from, to, u32::MAX))
            .map(|(_, &l)| l)
    }

    /// Display name of a caller.
    pub fn caller_name(&self, c: NodeRef) -> &str {
        match c {
            NodeRef::Source(i) => &self.sources[i as usize].name,
            NodeRef::Service(i) => &self.services[i as usize].name,
        }
    }

    /// The call a job is making: a source's call, a service's call `call_idx`, or an internal
    /// job's lifecycle call or queue delivery.
    #[inline]
    pub fn call_for(&self, job: &Job) -> Option<&CallModel> {
        if job.is_client() {
            self.sources.get(job.node as usize).map(|s| &s.call)
        } else if job.is_internal() {
            let mech = self.services.get(job.node as usize)?.mech.as_ref()?;
            match job.purpose {
                Purpose::Startup => mech.lifecycle.startup.get(job.call_idx as usize),
                Purpose::Periodic => mech
                    .lifecycle
                    .periodic
                    .get(job.call_idx as usize)
                    .map(|p| &p.call),
                Purpose::Delivery => mech.work_queue.as_ref().map(|q| &q.delivery),
                Purpose::Request => None,
            }
        } else {
            self.services
                .get(job.node as usize)?
                .calls
                .get(job.call_idx as usize)
        }
    }
}

/// Marks the occurrence numbers of failover links (apart from a caller's own links).
const FAILOVER_OCCURRENCE: u32 = 1 << 30;

/// The mechanisms on a call, or `None` when it has none.
fn compile_guard(spec: &CallSpec) -> Option<CallGuardModel> {
    let guarded = spec.breaker.is_some()
        || spec.adaptive_throttle.is_some()
        || spec.hedge_after_ms.is_some()
        || spec.max_concurrent.is_some()
        || spec.fallback != crate::scenario::Fallback::Fail;
    guarded.then(|| CallGuardModel {
        breaker: spec.breaker.map(|b| BreakerConfig {
            window_ns: s_to_ns(b.window_s).max(1),
            error_ratio: b.error_ratio,
            min_requests: u64::from(b.min_requests.max(1)),
            consecutive_failures: b.consecutive_failures.unwrap_or(0),
            open_ns: s_to_ns(b.open_s).max(1),
            probes: b.probes.max(1),
        }),
        throttle: spec
            .adaptive_throttle
            .map(|t| (t.k, s_to_ns(t.window_s).max(1))),
        hedge_ns: spec.hedge_after_ms.map_or(NEVER, |h| ms_to_ns(h).max(1)),
        max_concurrent: spec.max_concurrent.unwrap_or(u32::MAX),
        bulkhead_wait_ns: spec.bulkhead_wait_ms.map_or(0, ms_to_ns),
        degrade: spec.fallback == crate::scenario::Fallback::Degrade,
    })
}

/// Instances to create for a service: its count, an autoscaler's maximum, and any count an
/// operator step sets.
fn capacity_of(s: &ServiceSpec, scenario: &Scenario) -> u32 {
    let by_operator = scenario
        .operator
        .iter()
        .filter_map(|step| match &step.action {
            OperatorAction::SetInstances { service, instances } if *service == s.name => {
                Some(*instances)
            }
            _ => None,
        })
        .max()
        .unwrap_or(0);
    s.instances
        .max(s.autoscale.map_or(0, |a| a.max))
        .max(by_operator)
}

/// Rate of a profile at time `t_ns`, requests per second.
pub fn rate_at(profile: &RateProfile, t_ns: Nanos) -> f64 {
    let t = t_ns as f64 / 1e9;
    match *profile {
        RateProfile::Constant(r) => r,
        RateProfile::Step {
            from_per_s,
            to_per_s,
            at_s,
        } => {
            if t < at_s {
                from_per_s
            } else {
                to_per_s
            }
        }
        RateProfile::Ramp {
            from_per_s,
            to_per_s,
            start_s,
            end_s,
        } => {
            if t <= start_s {
                from_per_s
            } else if t >= end_s {
                to_per_s
            } else {
                from_per_s + (to_per_s - from_per_s) * (t - start_s) / (end_s - start_s)
            }
        }
        RateProfile::Spike {
            base_per_s,
            peak_per_s,
            start_s,
            duration_s,
        } => {
            if t >= start_s && t < start_s + duration_s {
                peak_per_s
            } else {
                base_per_s
            }
        }
        // A burst is a batch of arrivals at one instant, generated apart from the Poisson stream.
        RateProfile::Burst { .. } | RateProfile::Closed { .. } => 0.0,
        RateProfile::Diurnal {
            mean_per_s,
            amplitude_per_s,
            period_s,
            peak_at_s,
        } => {
            let phase = std::f64::consts::TAU * (t - peak_at_s) / period_s;
            (mean_per_s + amplitude_per_s * phase.cos()).max(0.0)
        }
        RateProfile::Points(ref points) => match points_around(points, t) {
            (Some(&(t0, r0)), Some(&(t1, r1))) if t1 > t0 => r0 + (r1 - r0) * (t - t0) / (t1 - t0),
            (Some(&(_, r0)), _) => r0,
            (None, Some(&(_, r1))) => r1,
            (None, None) => 0.0,
        },
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
        RateProfile::Step {
            from_per_s,
            to_per_s,
            at_s,
        } => {
            if t < at_s {
                (to_ns(at_s), from_per_s)
            } else {
                (NEVER, to_per_s)
            }
        }
        RateProfile::Ramp {
            from_per_s,
            to_per_s,
            start_s,
            end_s,
        } => {
            if t < start_s {
                (to_ns(start_s), from_per_s)
            } else if t < end_s {
                (to_ns(end_s), from_per_s.max(to_per_s))
            } else {
                (NEVER, to_per_s)
            }
        }
        RateProfile::Spike {
            base_per_s,
            peak_per_s,
            start_s,
            duration_s,
        } => {
            if t < start_s {
                (to_ns(start_s), base_per_s)
            } else if t < start_s + duration_s {
                (to_ns(start_s + duration_s), peak_per_s)
            } else {
                (NEVER, base_per_s)
            }
        }
        RateProfile::Burst { .. } | RateProfile::Closed { .. } => (NEVER, 0.0),
        // One segment: thinning against the crest.
        RateProfile::Diurnal {
            mean_per_s,
            amplitude_per_s,
            ..
        } => (NEVER, mean_per_s + amplitude_per_s),
        // From one point to the next, bounded by the larger of their rates.
        RateProfile::Points(ref points) => match points_around(points, t) {
            (Some(&(_, r0)), Some(&(t1, r1))) => (to_ns(t1), r0.max(r1)),
            (Some(&(_, r0)), None) => (NEVER, r0),
            (None, Some(&(t1, r1))) => (to_ns(t1), r1),
            (None, None) => (NEVER, 0.0),
        },
    }
}

/// The last point of a `Points` profile at or before `t` s and the first after it.
#[inline]
fn points_around(points: &[(f64, f64)], t: f64) -> (Option<&(f64, f64)>, Option<&(f64, f64)>) {
    let i = points.partition_point(|p| p.0 <= t);
    (i.checked_sub(1).and_then(|k| points.get(k)), points.get(i))
}

/// True when the profile is constant over `[t_ns, ∞)` or piecewise constant here (no thinning needed).
pub fn rate_is_flat(profile: &RateProfile, t_ns: Nanos) -> bool {
    let t = || t_ns as f64 / 1e9;
    match *profile {
        RateProfile::Ramp { start_s, end_s, .. } => !(t() >= start_s && t() < end_s),
        RateProfile::Diurnal {
            amplitude_per_s, ..
        } => amplitude_per_s == 0.0,
        RateProfile::Points(ref points) => match points_around(points, t()) {
            (Some(&(_, r0)), Some(&(_, r1))) => r0 == r1,
            _ => true,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_profiles_have_the_documented_shape() {
        let s = |x: f64| s_to_ns(x);
        let step = RateProfile::Step {
            from_per_s: 10.0,
            to_per_s: 20.0,
            at_s: 5.0,
        };
        assert_eq!(rate_at(&step, s(4.999)), 10.0);
        assert_eq!(rate_at(&step, s(5.0)), 20.0);
        let ramp = RateProfile::Ramp {
            from_per_s: 10.0,
            to_per_s: 30.0,
            start_s: 10.0,
            end_s: 20.0,
        };
        assert_eq!(rate_at(&ramp, s(15.0)), 20.0);
        assert_eq!(rate_segment(&ramp, s(12.0)), (s(20.0), 30.0));
        let spike = RateProfile::Spike {
            base_per_s: 1.0,
            peak_per_s: 9.0,
            start_s: 2.0,
            duration_s: 1.0,
        };
        assert_eq!(rate_at(&spike, s(2.5)), 9.0);
        assert_eq!(rate_at(&spike, s(3.0)), 1.0);
        assert_eq!(rate_segment(&spike, s(0.0)), (s(2.0), 1.0));
    }
}
