//! Faults: the registry of scripted and live faults, name resolution, and how active faults
//! combine into per-instance, per-link and per-source modifiers.
//!
//! A fault has a target, a start, and an end (or none: until cleared). Scripted faults are
//! registered when a scenario loads and start/end through engine events at their exact
//! times; live faults (from the app or tests) start at the next tick. Whenever a fault starts
//! or ends, the engine recomputes the modifiers of just the affected targets from the list
//! of active faults (pure functions below), so nothing is scanned per request.
//!
//! Combination rules: kills — any active kill takes the instance down (blackhole wins over
//! refuse); slow factors multiply; added latencies add; error probabilities combine as
//! independent failures `1 − Π(1 − p)`; capacity cuts take the minimum; partitions — any;
//! link latencies add; packet losses combine like error probabilities; load spikes multiply;
//! throttles take the lowest rate; DNS failures of one name — the earliest started. A config
//! push acts like a slow or error fault on the instances it has reached so far (in ordinal
//! order, `progress` of them). Instantaneous faults (restart, latch, cache flush, TTL storm)
//! act when they start and have no modifiers.

use crate::engine::{LinkModel, Model, NodeRef};
use crate::scenario::{
    Direction, FaultKind, InstanceSelector, KillMode, PushedChange, crosses_partition,
};
use crate::time::{NEVER, Nanos, s_to_ns};

/// Stable id of a fault within a run.
pub type FaultId = u32;

/// What a fault is attached to, as indices.
#[derive(Clone, Debug, PartialEq)]
pub enum ResolvedTarget {
    /// A service's instances.
    Service(u32),
    /// Links (every call from `from` to `to`).
    Links(Vec<u32>),
    /// A source.
    Source(u32),
    /// The instances of one zone (by id), of every service in it.
    Zone(u16),
    /// A set of zones (bit `z` for zone id `z`) against every other zone.
    Zones(u64),
}

/// A fault known to the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRecord {
    /// Id.
    pub id: FaultId,
    /// What it does.
    pub kind: FaultKind,
    /// Resolved target.
    pub target: ResolvedTarget,
    /// Start time.
    pub start_ns: Nanos,
    /// End time (`NEVER`: until cleared).
    pub end_ns: Nanos,
    /// Currently in effect.
    pub active: bool,
    /// Came from the scenario file (else: a live command).
    pub scripted: bool,
    /// Instances a config push has reached so far.
    pub progress: u32,
}

impl FaultRecord {
    /// Human-readable target, e.g. `db`, `api → db` or `east ↮ the rest`.
    pub fn target_label(&self) -> String {
        self.kind.target_label()
    }
}

/// The source or service (not removed) called `name`; `Err` says it is unknown.
fn node_ref(model: &Model, name: &str) -> Result<NodeRef, String> {
    model
        .source_index(name)
        .filter(|&i| !model.sources[i as usize].removed)
        .map(NodeRef::Source)
        .or_else(|| {
            model
                .service_index(name)
                .filter(|&i| !model.services[i as usize].removed)
                .map(NodeRef::Service)
        })
        .ok_or_else(|| format!("unknown node \"{name}\""))
}

/// The links between nodes still in the model (not removed by a live edit) that `keep`
/// accepts, in link order.
fn live_links(model: &Model, keep: impl Fn(&LinkModel) -> bool) -> Vec<u32> {
    let live = |n: NodeRef| match n {
        NodeRef::Source(i) => !model.sources[i as usize].removed,
        NodeRef::Service(i) => !model.services[i as usize].removed,
    };
    (0..model.links.len() as u32)
        .filter(|&l| {
            let link = &model.links[l as usize];
            live(link.from) && live(NodeRef::Service(link.to)) && keep(link)
        })
        .collect()
}

/// Every link between a node of `group` and a node of `others` (every node not in `group`
/// when `others` is empty), either way, in link order. `Err` names an unknown node.
fn group_links(model: &Model, group: &[String], others: &[String]) -> Result<Vec<u32>, String> {
    let node = |name: &String| node_ref(model, name);
    let group: Vec<NodeRef> = group.iter().map(node).collect::<Result<_, _>>()?;
    let others: Vec<NodeRef> = others.iter().map(node).collect::<Result<_, _>>()?;
    let links = live_links(model, |link| {
        let (from, to) = (link.from, NodeRef::Service(link.to));
        crosses_partition(&group, &others, &from, &to)
    });
    if links.is_empty() {
        Err("no call crosses the partition".to_owned())
    } else {
        Ok(links)
    }
}

/// Resolves a fault's names against the model; `Err` explains what is unknown.
pub fn resolve(model: &Model, kind: &FaultKind) -> Result<ResolvedTarget, String> {
    let service = |name: &str| {
        model
            .service_index(name)
            .filter(|&i| !model.services[i as usize].removed)
            .ok_or_else(|| format!("unknown service \"{name}\""))
    };
    match kind {
        FaultKind::Kill { service: s, .. }
        | FaultKind::Slow { service: s, .. }
        | FaultKind::Latency { service: s, .. }
        | FaultKind::Errors { service: s, .. }
        | FaultKind::CapacityCut { service: s, .. }
        | FaultKind::CacheFlush { service: s, .. }
        | FaultKind::TtlStorm { service: s, .. }
        | FaultKind::Restart { service: s, .. }
        | FaultKind::ConfigPush { service: s, .. }
        | FaultKind::LatchedFailure { service: s, .. }
        | FaultKind::Isolate { service: s, .. }
        | FaultKind::Throttle { service: s, .. } => service(s).map(ResolvedTarget::Service),
        FaultKind::QueryOfDeath {
            service: s, source, ..
        } => {
            if let Some(name) = source
                && model
                    .source_index(name)
                    .is_none_or(|i| model.sources[i as usize].removed)
            {
                return Err(format!("unknown source \"{name}\""));
            }
            service(s).map(ResolvedTarget::Service)
        }
        FaultKind::LinkLatency { from, to, .. }
        | FaultKind::Partition { from, to }
        | FaultKind::PacketLoss { from, to, .. }
        | FaultKind::OneWayPartition { from, to, .. } => {
            let to_idx = service(to)?;
            let caller = node_ref(model, from)?;
            let links: Vec<u32> = model.links_between(caller, to_idx).collect();
            if links.is_empty() {
                Err(format!("\"{from}\" does not call \"{to}\""))
            } else {
                Ok(ResolvedTarget::Links(links))
            }
        }
        FaultKind::GroupPartition { group, others } => {
            group_links(model, group, others).map(ResolvedTarget::Links)
        }
        FaultKind::DnsFailure { service: s, .. } => {
            let to = service(s)?;
            let links = live_links(model, |link| link.to == to);
            if links.is_empty() {
                Err(format!("nothing calls \"{s}\""))
            } else {
                Ok(ResolvedTarget::Links(links))
            }
        }
        FaultKind::ZoneOutage { zone, .. } => model
            .zone_index(zone)
            .map(ResolvedTarget::Zone)
            .ok_or_else(|| format!("unknown zone \"{zone}\"")),
        FaultKind::ZonePartition { zones } => {
            let mut mask = 0u64;
            for zone in zones {
                let z = model
                    .zone_index(zone)
                    .ok_or_else(|| format!("unknown zone \"{zone}\""))?;
                if z >= 64 {
                    return Err(format!(
                        "zone \"{zone}\" is past the 64 zones a partition can name"
                    ));
                }
                mask |= 1 << z;
            }
            Ok(ResolvedTarget::Zones(mask))
        }
        FaultKind::LoadSpike { source, .. } => model
            .source_index(source)
            .filter(|&i| !model.sources[i as usize].removed)
            .map(ResolvedTarget::Source)
            .ok_or_else(|| format!("unknown source \"{source}\"")),
    }
}

/// Start and end of a scripted fault in ns.
pub fn window_ns(at_s: f64, duration_s: Option<f64>) -> (Nanos, Nanos) {
    let start = s_to_ns(at_s);
    (start, duration_s.map_or(NEVER, |d| start + s_to_ns(d)))
}

/// Fault effects on one instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InstanceModifiers {
    /// Killed, and how.
    pub down: Option<KillMode>,
    /// Service-time multiplier.
    pub slow_factor: f64,
    /// Added own-work time.
    pub added_ns: Nanos,
    /// Error probability.
    pub error_probability: f64,
    /// Worker limit.
    pub workers: u32,
    /// CPU cores left by a capacity cut (`u32::MAX`: not cut).
    pub cores: u32,
    /// In the load balancer.
    pub in_rotation: bool,
    /// Throttled to this rate per instance (requests/s), by a throttle fault.
    pub throttle_per_s: Option<f64>,
    /// Cut off from the network.
    pub isolated: bool,
    /// Load-dependent service time pushed by a config push (replaces the service's own).
    pub scaling: Option<crate::mechanisms::scaling::Scaling>,
}

/// Fault effects on one link.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct LinkModifiers {
    /// Both directions cut.
    pub partitioned: bool,
    /// Requests lost (one-way partition).
    pub cut_requests: bool,
    /// Replies lost (one-way partition).
    pub cut_replies: bool,
    /// Loss probability per message.
    pub loss: f64,
    /// Added one-way latency.
    pub added_ns: Nanos,
    /// The callee's name fails to resolve (a `DnsFailure`).
    pub unresolved: Option<DnsOutage>,
}

/// A DNS failure of a link's callee as its callers see it: since when resolution fails and
/// how long their cached answers last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsOutage {
    /// When the name stopped resolving.
    pub since_ns: Nanos,
    /// How long a caller caches a resolved address.
    pub ttl_ns: Nanos,
}

impl DnsOutage {
    /// When the cached answer of a caller whose entry is at `fraction` ∈ [0, 1) of its
    /// lifetime's spread runs out: the entries were filled at moments spread evenly over the
    /// TTL before the failure, so they run out spread evenly over the TTL after it.
    pub fn expiry_ns(self, fraction: f64) -> Nanos {
        self.since_ns + (self.ttl_ns as f64 * fraction) as Nanos
    }

    /// The share of a population of callers (a source's users) whose cached answers have
    /// run out at `now_ns`.
    pub fn expired_share(self, now_ns: Nanos) -> f64 {
        let elapsed = now_ns.saturating_sub(self.since_ns);
        if elapsed >= self.ttl_ns {
            1.0
        } else {
            elapsed as f64 / self.ttl_ns as f64
        }
    }
}

/// Where instance `ordinal` of `instances` stands in the spread of cached answers' expiries:
/// the midpoints `(ordinal + ½) / instances`, so one instance's runs out half a TTL in and
/// three instances' at a sixth, a half and five sixths.
pub fn dns_fraction(ordinal: u32, instances: u32) -> f64 {
    (f64::from(ordinal) + 0.5) / f64::from(instances.max(1))
}

/// Instances of `instances` a config push reaching `share` of them covers, in ordinal order.
pub fn push_reach(share: f64, instances: u32) -> u32 {
    ((share * f64::from(instances)).ceil() as u32).min(instances)
}

/// True if `sel` picks instance `ordinal`.
pub fn selects(sel: InstanceSelector, ordinal: u32) -> bool {
    match sel {
        InstanceSelector::All => true,
        InstanceSelector::First(n) => ordinal < n,
    }
}

/// Modifiers of instance `ordinal` of `service` (of `instances` configured), in `zone`, under
/// the active faults.
pub fn instance_modifiers<'a>(
    faults: impl Iterator<Item = &'a FaultRecord>,
    service: u32,
    ordinal: u32,
    zone: Option<u16>,
    base_workers: u32,
    instances: u32,
) -> InstanceModifiers {
    let mut m = InstanceModifiers {
        down: None,
        slow_factor: 1.0,
        added_ns: 0,
        error_probability: 0.0,
        workers: base_workers,
        cores: u32::MAX,
        in_rotation: true,
        throttle_per_s: None,
        isolated: false,
        scaling: None,
    };
    let mut ok_prob = 1.0;
    for f in faults {
        let hits = match f.target {
            ResolvedTarget::Service(s) => s == service,
            ResolvedTarget::Zone(z) => zone == Some(z),
            _ => false,
        };
        if !f.active || !hits {
            continue;
        }
        match &f.kind {
            FaultKind::ZoneOutage { mode, .. } => m.down = Some(kill_mode(m.down, *mode)),
            FaultKind::Kill {
                instances, mode, ..
            } if selects(*instances, ordinal) => m.down = Some(kill_mode(m.down, *mode)),
            FaultKind::Slow {
                instances, factor, ..
            } if selects(*instances, ordinal) => m.slow_factor *= factor,
            FaultKind::Isolate { instances, .. } if selects(*instances, ordinal) => {
                m.isolated = true;
            }
            FaultKind::Latency {
                instances,
                added_ms,
                ..
            } if selects(*instances, ordinal) => {
                m.added_ns += crate::time::ms_to_ns(*added_ms);
            }
            FaultKind::Errors {
                instances,
                probability,
                ..
            } if selects(*instances, ordinal) => {
                ok_prob *= 1.0 - probability;
            }
            FaultKind::CapacityCut {
                workers,
                cores,
                instances,
                ..
            } => {
                if let Some(w) = workers {
                    m.workers = m.workers.min(*w);
                }
                if let Some(c) = cores {
                    m.cores = m.cores.min(*c);
                }
                if let Some(n) = instances
                    && ordinal >= *n
                {
                    m.in_rotation = false;
                }
            }
            FaultKind::ConfigPush { share, change, .. }
                if ordinal < f.progress.min(push_reach(*share, instances)) =>
            {
                match change {
                    PushedChange::Errors(p) => ok_prob *= 1.0 - p,
                    PushedChange::Slow(factor) => m.slow_factor *= factor,
                    PushedChange::Latch => {}
                    PushedChange::Scaling {
                        contention,
                        coherency,
                        counts,
                    } => {
                        m.scaling = Some(
                            crate::scenario::ScalingSpec {
                                contention: *contention,
                                coherency: *coherency,
                                counts: *counts,
                            }
                            .into(),
                        );
                    }
                }
            }
            FaultKind::Throttle { rate_per_s, .. } => {
                m.throttle_per_s =
                    Some(m.throttle_per_s.map_or(*rate_per_s, |r| r.min(*rate_per_s)));
            }
            _ => {}
        }
    }
    m.error_probability = 1.0 - ok_prob;
    m
}

/// How an instance already `down` (or not) is down once another kill in `mode` hits it:
/// blackhole wins over refuse.
fn kill_mode(down: Option<KillMode>, mode: KillMode) -> KillMode {
    match (down, mode) {
        (Some(KillMode::Blackhole), _) | (_, KillMode::Blackhole) => KillMode::Blackhole,
        _ => KillMode::Refuse,
    }
}

/// The zone sets the active `ZonePartition` faults cut off from the other zones (bit `z` for
/// zone id `z`), in fault order.
pub fn zone_cuts<'a>(faults: impl Iterator<Item = &'a FaultRecord>) -> Vec<u64> {
    faults
        .filter(|f| f.active)
        .filter_map(|f| match f.target {
            ResolvedTarget::Zones(mask) => Some(mask),
            _ => None,
        })
        .collect()
}

/// Whether a message between zones `a` and `b` is lost to one of the zone cuts `cuts` (a
/// node in no zone is never cut off).
#[inline]
pub fn zones_cut(cuts: &[u64], a: Option<u16>, b: Option<u16>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    a < 64 && b < 64 && cuts.iter().any(|&m| zone_in(m, a) != zone_in(m, b))
}

/// Whether zone `z` is in the zone set `mask` (bit `z`; a zone past 64 is in none).
#[inline]
pub fn zone_in(mask: u64, z: u16) -> bool {
    z < 64 && mask >> z & 1 != 0
}

/// Modifiers of a link under the active faults.
pub fn link_modifiers<'a>(
    faults: impl Iterator<Item = &'a FaultRecord>,
    link: u32,
) -> LinkModifiers {
    let mut m = LinkModifiers::default();
    let mut pass = 1.0;
    for f in faults {
        let ResolvedTarget::Links(links) = &f.target else {
            continue;
        };
        if !f.active || !links.contains(&link) {
            continue;
        }
        match &f.kind {
            FaultKind::Partition { .. } | FaultKind::GroupPartition { .. } => {
                m.partitioned = true;
            }
            FaultKind::LinkLatency { added_ms, .. } => {
                m.added_ns += crate::time::ms_to_ns(*added_ms);
            }
            FaultKind::PacketLoss { probability, .. } => pass *= 1.0 - probability,
            FaultKind::OneWayPartition {
                direction: Direction::Requests,
                ..
            } => m.cut_requests = true,
            FaultKind::OneWayPartition {
                direction: Direction::Replies,
                ..
            } => m.cut_replies = true,
            FaultKind::DnsFailure { ttl_s, .. } => {
                // Overlapping failures of one name: the earliest started rules.
                let outage = DnsOutage {
                    since_ns: f.start_ns,
                    ttl_ns: s_to_ns(*ttl_s),
                };
                if m.unresolved
                    .is_none_or(|o| (outage.since_ns, outage.ttl_ns) < (o.since_ns, o.ttl_ns))
                {
                    m.unresolved = Some(outage);
                }
            }
            _ => {}
        }
    }
    m.loss = 1.0 - pass;
    m
}

/// Load multiplier of a source under the active faults.
pub fn source_factor<'a>(faults: impl Iterator<Item = &'a FaultRecord>, source: u32) -> f64 {
    faults
        .filter(|f| f.active && f.target == ResolvedTarget::Source(source))
        .map(|f| match f.kind {
            FaultKind::LoadSpike { factor, .. } => factor,
            _ => 1.0,
        })
        .product()
}

/// Share of source `source`'s new requests that are queries of death under the active
/// `QueryOfDeath` faults: `1 − Π(1 − share)` over those that name it or every source.
pub fn poison_share<'a>(faults: impl Iterator<Item = &'a FaultRecord>, source: &str) -> f64 {
    1.0 - faults
        .filter(|f| f.active)
        .filter_map(|f| match &f.kind {
            FaultKind::QueryOfDeath {
                share,
                source: from,
                ..
            } if from.as_deref().is_none_or(|n| n == source) => Some(1.0 - share),
            _ => None,
        })
        .product::<f64>()
}

/// Whether an active `QueryOfDeath` fault makes service `s` crash on poisoned requests.
pub fn poisoned<'a>(mut faults: impl Iterator<Item = &'a FaultRecord>, s: u32) -> bool {
    faults.any(|f| {
        f.active
            && f.target == ResolvedTarget::Service(s)
            && matches!(f.kind, FaultKind::QueryOfDeath { .. })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: FaultKind, target: ResolvedTarget) -> FaultRecord {
        FaultRecord {
            id: 0,
            kind,
            target,
            start_ns: 0,
            end_ns: NEVER,
            active: true,
            scripted: true,
            progress: 0,
        }
    }

    #[test]
    fn a_zone_cut_loses_only_what_crosses_it() {
        let a_cut = [0b001];
        assert!(zones_cut(&a_cut, Some(0), Some(1)));
        assert!(zones_cut(&a_cut, Some(2), Some(0)));
        assert!(
            !zones_cut(&a_cut, Some(1), Some(2)),
            "b and c stay together"
        );
        assert!(!zones_cut(&a_cut, Some(0), Some(0)), "inside a zone");
        assert!(
            !zones_cut(&a_cut, None, Some(0)),
            "a node in no zone reaches every zone"
        );
        assert!(!zones_cut(&[], Some(0), Some(1)));
        // Two cuts: a alone, and {a, b} against c.
        let two = [0b001, 0b011];
        assert!(zones_cut(&two, Some(1), Some(2)));
        assert!(zones_cut(&two, Some(0), Some(1)));
        assert!(!zones_cut(&two, Some(2), Some(2)));
        assert!(
            !zones_cut(&two, Some(70), Some(0)),
            "zones past 64 are never cut"
        );
    }

    #[test]
    fn a_zone_outage_downs_the_instances_in_its_zone_only() {
        let outage = rec(
            FaultKind::ZoneOutage {
                zone: "b".into(),
                mode: KillMode::Blackhole,
            },
            ResolvedTarget::Zone(1),
        );
        let down = |zone| instance_modifiers([outage.clone()].iter(), 3, 0, zone, 4, 3).down;
        assert_eq!(down(Some(1)), Some(KillMode::Blackhole));
        assert_eq!(down(Some(0)), None);
        assert_eq!(down(None), None);
        let cuts = zone_cuts(
            [
                rec(
                    FaultKind::ZonePartition {
                        zones: vec!["a".into()],
                    },
                    ResolvedTarget::Zones(0b1),
                ),
                outage.clone(),
            ]
            .iter(),
        );
        assert_eq!(cuts, [0b1]);
    }

    #[test]
    fn cached_answers_run_out_at_the_midpoints_of_the_ttl() {
        assert_eq!(dns_fraction(0, 1), 0.5);
        let quarters: Vec<f64> = (0..4).map(|i| dns_fraction(i, 4)).collect();
        assert_eq!(quarters, [0.125, 0.375, 0.625, 0.875]);
        let outage = DnsOutage {
            since_ns: 10_000_000_000,
            ttl_ns: 8_000_000_000,
        };
        assert_eq!(outage.expiry_ns(dns_fraction(0, 4)), 11_000_000_000);
        assert_eq!(outage.expiry_ns(dns_fraction(3, 4)), 17_000_000_000);
        assert_eq!(outage.expired_share(10_000_000_000), 0.0);
        assert_eq!(outage.expired_share(12_000_000_000), 0.25);
        assert_eq!(outage.expired_share(18_000_000_000), 1.0);
        // Without caching every caller has run out from the first instant.
        let uncached = DnsOutage {
            since_ns: 5,
            ttl_ns: 0,
        };
        assert_eq!(uncached.expired_share(5), 1.0);
        assert_eq!(uncached.expiry_ns(0.875), 5);
    }

    #[test]
    fn overlapping_dns_failures_of_a_name_take_the_earliest() {
        let dns = |start_s: f64, ttl_s: f64| FaultRecord {
            start_ns: s_to_ns(start_s),
            ..rec(
                FaultKind::DnsFailure {
                    service: "db".into(),
                    ttl_s,
                },
                ResolvedTarget::Links(vec![0]),
            )
        };
        let faults = [dns(20.0, 5.0), dns(10.0, 60.0), dns(10.0, 30.0)];
        let m = link_modifiers(faults.iter(), 0);
        assert_eq!(
            m.unresolved,
            Some(DnsOutage {
                since_ns: s_to_ns(10.0),
                ttl_ns: s_to_ns(30.0)
            })
        );
        assert_eq!(link_modifiers(faults.iter(), 1).unresolved, None);
        let ended = [FaultRecord {
            active: false,
            ..dns(10.0, 30.0)
        }];
        assert_eq!(link_modifiers(ended.iter(), 0).unresolved, None);
    }

    #[test]
    fn active_faults_combine_by_the_documented_rules() {
        let s = || "db".to_owned();
        let faults = [
            rec(
                FaultKind::Slow {
                    service: s(),
                    instances: InstanceSelector::All,
                    factor: 2.0,
                },
                ResolvedTarget::Service(1),
            ),
            rec(
                FaultKind::Slow {
                    service: s(),
                    instances: InstanceSelector::First(1),
                    factor: 3.0,
                },
                ResolvedTarget::Service(1),
            ),
            rec(
                FaultKind::Errors {
                    service: s(),
                    instances: InstanceSelector::All,
                    probability: 0.5,
                },
                ResolvedTarget::Service(1),
            ),
            rec(
                FaultKind::Errors {
                    service: s(),
                    instances: InstanceSelector::All,
                    probability: 0.5,
                },
                ResolvedTarget::Service(1),
            ),
            rec(
                FaultKind::CapacityCut {
                    service: s(),
                    workers: Some(4),
                    cores: None,
                    instances: Some(2),
                },
                ResolvedTarget::Service(1),
            ),
            rec(
                FaultKind::Kill {
                    service: s(),
                    instances: InstanceSelector::First(1),
                    mode: KillMode::Refuse,
                },
                ResolvedTarget::Service(1),
            ),
            rec(
                FaultKind::Kill {
                    service: s(),
                    instances: InstanceSelector::All,
                    mode: KillMode::Blackhole,
                },
                ResolvedTarget::Service(2),
            ),
        ];
        let m0 = instance_modifiers(faults.iter(), 1, 0, None, 10, 3);
        assert_eq!(m0.slow_factor, 6.0, "slow factors multiply");
        assert_eq!(m0.error_probability, 0.75, "independent error faults");
        assert_eq!(m0.workers, 4);
        assert!(m0.in_rotation);
        assert_eq!(m0.down, Some(KillMode::Refuse));
        let m2 = instance_modifiers(faults.iter(), 1, 2, None, 10, 3);
        assert_eq!(m2.slow_factor, 2.0, "First(1) does not reach instance 2");
        assert!(
            !m2.in_rotation,
            "capacity cut to 2 instances drains instance 2"
        );
        assert_eq!(m2.down, None, "a fault on another service does not apply");
    }

    #[test]
    fn queries_of_death_combine_as_independent_draws_per_source() {
        let qod = |share: f64, source: Option<&str>| {
            rec(
                FaultKind::QueryOfDeath {
                    service: "search".to_owned(),
                    share,
                    source: source.map(str::to_owned),
                },
                ResolvedTarget::Service(3),
            )
        };
        let mut faults = [qod(0.5, None), qod(0.2, Some("bots"))];
        assert_eq!(poison_share(faults.iter(), "users"), 0.5);
        // 1 − (1 − 0.5)(1 − 0.2)
        assert!((poison_share(faults.iter(), "bots") - 0.6).abs() < 1e-12);
        assert!(poisoned(faults.iter(), 3));
        assert!(!poisoned(faults.iter(), 2), "another service");
        faults[0].active = false;
        faults[1].active = false;
        assert_eq!(poison_share(faults.iter(), "bots"), 0.0);
        assert!(!poisoned(faults.iter(), 3), "over when the faults end");
    }

    #[test]
    fn inactive_faults_have_no_effect() {
        let mut f = rec(
            FaultKind::Slow {
                service: "x".into(),
                instances: InstanceSelector::All,
                factor: 5.0,
            },
            ResolvedTarget::Service(0),
        );
        f.active = false;
        assert_eq!(
            instance_modifiers([f].iter(), 0, 0, None, 3, 1).slow_factor,
            1.0
        );
    }
}
