//! Causality (DESIGN §3.4): where each failure started, the failure path from that origin to
//! the users, and the blast radius with the time the failure reached each node (the
//! wavefront).
//!
//! Owns the types the engine records ([`Origin`], its 16-bit code, [`OriginTally`], the
//! per-interval [`CauseRow`]s kept in [`CauseHistory`]) and the pure analysis of a run's
//! records ([`analyse`]). It does not decide origins: the engine does, where failures happen
//! (`engine/step.rs`: a service's own answer, a lost message, the blocked-on walk of a
//! timeout), and carries them up with every failed reply.
//!
//! The rule, in words (docs/model.md, "Causality"):
//! - a failure a service answers on its own (rejected, refused, error, shed, expired,
//!   throttled, overloaded, conflict) starts at that service, except a rejection for want of
//!   an instance when its instances are out because a gating periodic or startup call of
//!   theirs failed: that starts where the call's failure started;
//! - a failure answered because a call failed ("dependency failed") carries that call's origin;
//! - a message lost on a link (partition, packet loss) starts at the link;
//! - a request an operator sheds at the edge starts at its source;
//! - a caller's breaker, bulkhead or adaptive throttle refusing a call starts at the callee it
//!   protects the caller from;
//! - a timeout starts where the attempt is blocked when the caller gives up: on the wire (the
//!   link), at a service's own work or in its queue (that service), or, when that service's
//!   workers are themselves waiting on a call, wherever that call is blocked, followed down.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::engine::NodeRef;

/// Where a failure started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A service (by index).
    Service(u32),
    /// A source (by index): its requests refused at the edge (an operator's shedding).
    Source(u32),
    /// A link (by index): a message lost on it, or an attempt still on it when its caller gave
    /// up.
    Link(u32),
    /// Not known (an index too large for the 16-bit code, or a path that records none).
    Unknown,
}

/// Between a link's caller and callee in its name ("api → db"), as origins and stated roots
/// write it.
pub const LINK_ARROW: &str = " → ";

/// A link's name split into caller and callee (`None`: the name of a node).
pub fn split_link(name: &str) -> Option<(&str, &str)> {
    name.split_once(LINK_ARROW)
}

/// The code of [`Origin::Unknown`].
pub const UNKNOWN_CODE: u16 = 0;
/// The bit that marks a link's code.
const LINK_BIT: u16 = 0x8000;
/// The bit that marks a source's code (below [`LINK_BIT`]).
const SOURCE_BIT: u16 = 0x4000;

impl Origin {
    /// The 16-bit code carried by jobs and reply events: one more than the index, with bit
    /// 14 set for a source and bit 15 for a link; 0 (a new job's) is [`Origin::Unknown`], as
    /// are indices too large for the code (services and sources from 16,383, links from
    /// 32,767).
    #[inline]
    pub fn code(self) -> u16 {
        match self {
            Origin::Service(s) if s < u32::from(SOURCE_BIT - 1) => s as u16 + 1,
            Origin::Source(s) if s < u32::from(SOURCE_BIT - 1) => SOURCE_BIT | (s as u16 + 1),
            Origin::Link(l) if l < u32::from(LINK_BIT - 1) => LINK_BIT | (l as u16 + 1),
            _ => UNKNOWN_CODE,
        }
    }

    /// The origin of a code made by [`Origin::code`].
    pub fn from_code(code: u16) -> Origin {
        if code == UNKNOWN_CODE {
            Origin::Unknown
        } else if code & LINK_BIT != 0 {
            Origin::Link(u32::from(code & !LINK_BIT) - 1)
        } else if code & SOURCE_BIT != 0 {
            Origin::Source(u32::from(code & !SOURCE_BIT) - 1)
        } else {
            Origin::Service(u32::from(code) - 1)
        }
    }
}

/// The code of service `s`'s origin ([`Origin::code`]).
#[inline]
pub fn service_code(s: u32) -> u16 {
    Origin::Service(s).code()
}

/// The code of source `s`'s origin ([`Origin::code`]).
#[inline]
pub fn source_code(s: u32) -> u16 {
    Origin::Source(s).code()
}

/// The code of link `l`'s origin ([`Origin::code`]).
#[inline]
pub fn link_code(l: u32) -> u16 {
    Origin::Link(l).code()
}

/// Failures of one open interval at one site, counted by origin code. A handful of origins
/// per site in practice: a linear search, and storage kept across intervals (no allocation
/// once it has grown).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OriginTally {
    counts: Vec<(u16, u64)>,
}

impl OriginTally {
    /// Counts one failure that started at `code`.
    #[inline]
    pub fn add(&mut self, code: u16) {
        match self.counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((code, 1)),
        }
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The counts, by origin code in ascending order (the storage stays for reuse).
    pub fn take_sorted(&mut self) -> impl Iterator<Item = (Origin, u64)> + '_ {
        self.counts.sort_unstable_by_key(|&(c, _)| c);
        self.counts
            .drain(..)
            .map(|(c, n)| (Origin::from_code(c), n))
    }
}

/// Where failures were counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CauseSite {
    /// A source's client requests that failed (what its users saw).
    Source(u32),
    /// Failed attempts of the calls on a link, as its caller saw them (failed answers,
    /// timeouts, refusals by the caller's own guard).
    Link(u32),
}

/// Failures at one site in one interval that started at one origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CauseRow {
    /// Interval number.
    pub interval: u32,
    /// Where they were counted.
    pub site: CauseSite,
    /// Where they started.
    pub origin: Origin,
    /// How many.
    pub failures: u64,
}

/// The run's causality records: per-interval rows (the last `rows_per_node` intervals, as the
/// metrics rows) and totals over the whole run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CauseHistory {
    /// Rows, in interval order, then site, then origin.
    pub rows: VecDeque<CauseRow>,
    /// Failures per site and origin over the run.
    pub totals: BTreeMap<(CauseSite, Origin), u64>,
    /// The first interval each (site, origin) pair was counted in.
    pub first_interval: BTreeMap<(CauseSite, Origin), u32>,
}

impl CauseHistory {
    /// Records interval `k`'s counts at `site` (`counts` sorted by origin).
    pub fn record(
        &mut self,
        k: u32,
        site: CauseSite,
        counts: impl IntoIterator<Item = (Origin, u64)>,
    ) {
        for (origin, failures) in counts {
            self.rows.push_back(CauseRow {
                interval: k,
                site,
                origin,
                failures,
            });
            *self.totals.entry((site, origin)).or_default() += failures;
            self.first_interval.entry((site, origin)).or_insert(k);
        }
    }

    /// Moves the open interval `k`'s counts at `site` out of `tally` into the history.
    pub fn record_tally(&mut self, k: u32, site: CauseSite, tally: &mut OriginTally) {
        self.record(k, site, tally.take_sorted());
    }

    /// The rows of interval `k` (a binary search: rows are in interval order).
    pub fn rows_of(&self, k: u32) -> impl Iterator<Item = &CauseRow> {
        let from = self.rows.partition_point(|r| r.interval < k);
        self.rows.range(from..).take_while(move |r| r.interval == k)
    }

    /// Drops rows of intervals before `first_kept`.
    pub fn prune_before(&mut self, first_kept: u32) {
        while self.rows.front().is_some_and(|r| r.interval < first_kept) {
            self.rows.pop_front();
        }
    }
}

/// The graph the analysis walks: names and the links between nodes.
#[derive(Clone, Debug, Default)]
pub struct CauseGraph {
    /// Service names, by index.
    pub services: Vec<String>,
    /// Source names, by index.
    pub sources: Vec<String>,
    /// Each link's caller and callee service, by link index.
    pub links: Vec<(NodeRef, u32)>,
}

impl CauseGraph {
    /// The graph of a compiled model.
    pub fn of(model: &crate::engine::Model) -> CauseGraph {
        CauseGraph {
            services: model.services.iter().map(|s| s.name.clone()).collect(),
            sources: model.sources.iter().map(|s| s.name.clone()).collect(),
            links: model.links.iter().map(|l| (l.from, l.to)).collect(),
        }
    }

    /// A node's name.
    pub fn node_name(&self, node: NodeRef) -> String {
        match node {
            NodeRef::Source(s) => self.sources.get(s as usize),
            NodeRef::Service(s) => self.services.get(s as usize),
        }
        .cloned()
        .unwrap_or_else(|| "?".to_owned())
    }

    /// An origin's name: a service's name, or "caller → callee" for a link.
    pub fn origin_name(&self, origin: Origin) -> String {
        match origin {
            Origin::Service(s) => self.node_name(NodeRef::Service(s)),
            Origin::Source(s) => self.node_name(NodeRef::Source(s)),
            Origin::Link(l) => match self.links.get(l as usize) {
                Some(&(from, to)) => format!(
                    "{}{LINK_ARROW}{}",
                    self.node_name(from),
                    self.node_name(NodeRef::Service(to))
                ),
                None => "?".to_owned(),
            },
            Origin::Unknown => "unknown".to_owned(),
        }
    }
}

/// Failures that started at one origin.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OriginShare {
    /// The origin's name (a service, or "caller → callee" for a link).
    pub origin: String,
    /// Users' failed requests that started there.
    pub failures: u64,
    /// Their share of all users' failed requests.
    pub share: f64,
}

/// A node the root's failures reached, and when.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reached {
    /// The node.
    pub node: String,
    /// The start of the first interval in which failures that started at the root passed
    /// through it (for the root, the first in which any started there), simulated seconds.
    pub first_failing_s: f64,
    /// The start of the unhealthy streak (health other than healthy or idle) that its first
    /// failing interval ends, simulated seconds: when it began to degrade on the way (its
    /// first failing interval when it was healthy then).
    pub first_degraded_s: f64,
}

/// What the run's causality records say about its users' failures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CausalityReport {
    /// Users' failed requests over the run (all sources).
    pub user_failures: u64,
    /// Where they started, most first.
    pub origins: Vec<OriginShare>,
    /// The origin of the most of them, leaving out requests shed at the edge unless nothing
    /// else failed.
    pub root: String,
    /// The nodes their failures passed through, from the source most of them reached to the
    /// root (a link root ends with its caller).
    pub failure_path: Vec<String>,
    /// Every node the root's failures passed through, in the order they reached it (the
    /// wavefront; ties by name).
    pub blast_radius: Vec<Reached>,
}

/// Source `s`'s failed requests over the run by the name of their origin.
pub fn origins_of(history: &CauseHistory, graph: &CauseGraph, s: u32) -> BTreeMap<String, u64> {
    let site = CauseSite::Source(s);
    history
        .totals
        .range((site, Origin::Service(0))..=(site, Origin::Unknown))
        .map(|(&(_, o), &n)| (graph.origin_name(o), n))
        .collect()
}

/// Users' failures by origin, most first; among equals services, then sources, then links,
/// lower index first ([`Origin`]'s order).
pub fn rank(by_origin: BTreeMap<Origin, u64>) -> Vec<(Origin, u64)> {
    let mut ranked: Vec<(Origin, u64)> = by_origin.into_iter().filter(|&(_, n)| n > 0).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

/// The root of `ranked` failures ([`rank`]): the origin of most of them. Requests an operator
/// shed at the edge are a response, not a cause: the root is the origin of most of the rest,
/// when there are any.
pub fn root_of(ranked: &[(Origin, u64)]) -> Option<Origin> {
    ranked
        .iter()
        .find(|(o, _)| !matches!(o, Origin::Source(_)))
        .or(ranked.first())
        .map(|&(o, _)| o)
}

/// Interval `k`'s users' failures (all sources) by origin, ranked ([`rank`]).
pub fn ranked_in_interval(history: &CauseHistory, k: u32) -> Vec<(Origin, u64)> {
    ranked_where(history, k, |site| matches!(site, CauseSite::Source(_)))
}

/// Interval `k`'s failures counted at `site` by origin, ranked ([`rank`]).
pub fn ranked_at(history: &CauseHistory, k: u32, site: CauseSite) -> Vec<(Origin, u64)> {
    ranked_where(history, k, |s| s == site)
}

fn ranked_where(
    history: &CauseHistory,
    k: u32,
    counted: impl Fn(CauseSite) -> bool,
) -> Vec<(Origin, u64)> {
    let mut by_origin = BTreeMap::new();
    for r in history.rows_of(k).filter(|r| counted(r.site)) {
        *by_origin.entry(r.origin).or_default() += r.failures;
    }
    rank(by_origin)
}

/// The report of a run's records (`None` when the users saw no failure). `unhealthy(node, k)`:
/// the node's health in interval `k` was other than healthy or idle.
pub fn analyse(
    history: &CauseHistory,
    graph: &CauseGraph,
    interval_s: f64,
    unhealthy: impl Fn(NodeRef, u32) -> bool,
) -> Option<CausalityReport> {
    // Users' failures by origin, over all sources.
    let mut by_origin: BTreeMap<Origin, u64> = BTreeMap::new();
    for (&(site, origin), &n) in &history.totals {
        if let CauseSite::Source(_) = site {
            *by_origin.entry(origin).or_default() += n;
        }
    }
    let user_failures: u64 = by_origin.values().sum();
    if user_failures == 0 {
        return None;
    }
    let ranked = rank(by_origin);
    let root = root_of(&ranked)?;
    let origins = ranked
        .iter()
        .map(|&(o, n)| OriginShare {
            origin: graph.origin_name(o),
            failures: n,
            share: n as f64 / user_failures as f64,
        })
        .collect();

    // Failures from the root counted on each link.
    let from_root = |l: u32| {
        history
            .totals
            .get(&(CauseSite::Link(l), root))
            .copied()
            .unwrap_or(0)
    };
    // The path: from the source with most of the root's failures, follow the outgoing link
    // that carried most of them until the root.
    let mut path = Vec::new();
    let source = history
        .totals
        .iter()
        .filter_map(|(&(site, o), &n)| match site {
            CauseSite::Source(s) if o == root => Some((s, n)),
            _ => None,
        })
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
    if let Some((s, _)) = source {
        let mut at = NodeRef::Source(s);
        path.push(graph.node_name(at));
        for _ in 0..graph.links.len() {
            let next = (0..graph.links.len() as u32)
                .filter(|&l| graph.links[l as usize].0 == at && from_root(l) > 0)
                .max_by(|&a, &b| from_root(a).cmp(&from_root(b)).then(b.cmp(&a)));
            let Some(l) = next else { break };
            if root == Origin::Link(l) {
                break;
            }
            let to = graph.links[l as usize].1;
            at = NodeRef::Service(to);
            path.push(graph.node_name(at));
            if root == Origin::Service(to) {
                break;
            }
        }
        // A root whose callers waited on it without a failed attempt of theirs (for a pooled
        // connection, say) ends the walk one link short: the last node calls it.
        if let Origin::Service(r) = root
            && at != NodeRef::Service(r)
            && graph.links.iter().any(|&(from, to)| from == at && to == r)
        {
            path.push(graph.node_name(NodeRef::Service(r)));
        }
    }

    // The wavefront: each node's first interval with the root's failures passing through; the
    // root's own is the first interval any failure started there.
    let mut first: BTreeMap<NodeRef, u32> = BTreeMap::new();
    let mut note = |name: NodeRef, k: u32| {
        let e = first.entry(name).or_insert(k);
        *e = (*e).min(k);
    };
    let root_node = match root {
        Origin::Service(r) => Some(NodeRef::Service(r)),
        Origin::Source(r) => Some(NodeRef::Source(r)),
        Origin::Link(_) | Origin::Unknown => None,
    };
    if let Some(node) = root_node
        && let Some(k) = history
            .first_interval
            .iter()
            .filter(|((_, o), _)| *o == root)
            .map(|(_, &k)| k)
            .min()
    {
        note(node, k);
    }
    for (&(site, o), &k) in &history.first_interval {
        if o != root {
            continue;
        }
        match site {
            CauseSite::Source(s) => note(NodeRef::Source(s), k),
            CauseSite::Link(l) => {
                let Some(&(from, to)) = graph.links.get(l as usize) else {
                    continue;
                };
                note(from, k);
                // The failures started at the callee, or passed through it from below.
                if root != Origin::Link(l) {
                    note(NodeRef::Service(to), k);
                }
            }
        }
    }
    let mut blast_radius: Vec<Reached> = first
        .into_iter()
        .map(|(node, k)| {
            let mut degraded = k;
            if unhealthy(node, k) {
                while degraded > 0 && unhealthy(node, degraded - 1) {
                    degraded -= 1;
                }
            }
            Reached {
                node: graph.node_name(node),
                first_failing_s: f64::from(k) * interval_s,
                first_degraded_s: f64::from(degraded) * interval_s,
            }
        })
        .collect();
    blast_radius.sort_by(|a, b| {
        a.first_failing_s
            .total_cmp(&b.first_failing_s)
            .then_with(|| a.node.cmp(&b.node))
    });
    Some(CausalityReport {
        user_failures,
        origins,
        root: graph.origin_name(root),
        failure_path: path,
        blast_radius,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_large_indices_are_unknown() {
        for o in [
            Origin::Service(0),
            Origin::Service(0x3FFE),
            Origin::Source(0),
            Origin::Source(0x3FFE),
            Origin::Link(0),
            Origin::Link(0x7FFE),
            Origin::Unknown,
        ] {
            assert_eq!(Origin::from_code(o.code()), o);
        }
        assert_eq!(Origin::Service(0x3FFF).code(), UNKNOWN_CODE);
        assert_eq!(Origin::Source(0x3FFF).code(), UNKNOWN_CODE);
        assert_eq!(Origin::Link(0x7FFF).code(), UNKNOWN_CODE);
    }

    #[test]
    fn a_tally_counts_by_origin_in_code_order_and_keeps_its_storage() {
        let mut t = OriginTally::default();
        for c in [link_code(2), service_code(3), link_code(2), service_code(1)] {
            t.add(c);
        }
        let out: Vec<_> = t.take_sorted().collect();
        assert_eq!(
            out,
            vec![
                (Origin::Service(1), 1),
                (Origin::Service(3), 1),
                (Origin::Link(2), 2)
            ]
        );
        assert!(t.is_empty() && t.counts.capacity() >= 3);
    }

    /// users → api → {db, cache}: db's failures pass up api → db and users → api.
    fn graph() -> CauseGraph {
        CauseGraph {
            services: vec!["api".into(), "db".into(), "cache".into()],
            sources: vec!["users".into()],
            links: vec![
                (NodeRef::Source(0), 0),
                (NodeRef::Service(0), 1),
                (NodeRef::Service(0), 2),
            ],
        }
    }

    #[test]
    fn the_root_is_the_origin_of_most_failures_and_the_path_follows_its_links() {
        let mut h = CauseHistory::default();
        let db = Origin::Service(1);
        h.record(3, CauseSite::Link(1), [(db, 40)]);
        h.record(4, CauseSite::Link(0), [(Origin::Service(2), 5), (db, 30)]);
        h.record(4, CauseSite::Link(2), [(Origin::Service(2), 6)]);
        h.record(5, CauseSite::Source(0), [(Origin::Service(2), 5), (db, 30)]);
        let r = analyse(&h, &graph(), 1.0, |_, _| false).unwrap();
        assert_eq!(r.user_failures, 35);
        assert_eq!(r.root, "db");
        assert_eq!(r.origins[0].failures, 30);
        assert_eq!(r.origins[1].origin, "cache");
        assert_eq!(r.failure_path, ["users", "api", "db"]);
        let wave: Vec<(&str, f64)> = r
            .blast_radius
            .iter()
            .map(|x| (x.node.as_str(), x.first_failing_s))
            .collect();
        assert_eq!(wave, [("api", 3.0), ("db", 3.0), ("users", 4.0)]);
        assert!(
            r.blast_radius
                .iter()
                .all(|x| x.first_degraded_s == x.first_failing_s)
        );
        // db was unhealthy from interval 1 on, api only from 3 (when it failed), users in
        // 2 (an earlier streak, over before its failures came): db degraded first.
        let r = analyse(&h, &graph(), 1.0, |node, k| match node {
            NodeRef::Service(1) => k >= 1,
            NodeRef::Service(0) => k >= 3,
            _ => k == 2,
        })
        .unwrap();
        let degraded: Vec<(&str, f64)> = r
            .blast_radius
            .iter()
            .map(|x| (x.node.as_str(), x.first_degraded_s))
            .collect();
        assert_eq!(degraded, [("api", 3.0), ("db", 1.0), ("users", 4.0)]);
    }

    #[test]
    fn a_root_its_caller_only_waited_on_ends_the_path_and_leads_the_wavefront() {
        // api's workers wait on db (a pool, say) without a failed attempt on api → db: the
        // users' timeouts still start at db.
        let mut h = CauseHistory::default();
        let db = Origin::Service(1);
        h.record(7, CauseSite::Link(0), [(db, 12)]);
        h.record(7, CauseSite::Source(0), [(db, 12)]);
        let r = analyse(&h, &graph(), 1.0, |_, _| false).unwrap();
        assert_eq!(r.failure_path, ["users", "api", "db"]);
        let wave: Vec<&str> = r.blast_radius.iter().map(|x| x.node.as_str()).collect();
        assert_eq!(wave, ["api", "db", "users"]);
    }

    #[test]
    fn a_link_root_ends_the_path_at_its_caller_and_no_failures_give_no_report() {
        let mut h = CauseHistory::default();
        assert!(analyse(&h, &graph(), 1.0, |_, _| false).is_none());
        let cut = Origin::Link(1);
        h.record(0, CauseSite::Link(1), [(cut, 9)]);
        h.record(0, CauseSite::Link(0), [(cut, 9)]);
        h.record(0, CauseSite::Source(0), [(cut, 9)]);
        let r = analyse(&h, &graph(), 0.5, |_, _| false).unwrap();
        assert_eq!(r.root, "api → db");
        assert_eq!(r.failure_path, ["users", "api"]);
        assert!(r.blast_radius.iter().all(|x| x.node != "db"));
    }
}
