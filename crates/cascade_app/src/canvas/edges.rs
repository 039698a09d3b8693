//! Edge visuals: a band from caller to callee, wide with traffic (log scale) and coloured by
//! its error share, with an arrowhead at the callee. The failure path: edges where more than
//! 10% of the attempts failed with failures that started at the root — the origin of most of
//! the users' failures in the last interval, as the model traced them
//! (`cascade_sim::causality`) — are lit and numbered in the order it happened, so the spread
//! of a failure reads from 1 to n; the numbering resets when an edge heals.

use bevy::prelude::*;
use bevy::sprite::Anchor;
use cascade_sim::SimClock;
use cascade_sim::causality::{self, CauseSite};
use cascade_sim::engine::LinkModel;
use cascade_sim::metrics::{EdgeCounters, MetricsHistory};

use super::{CanvasEdge, CanvasGraph, EdgeVisual};
use crate::session::Selection;
use crate::theme::{self, NODE_RADIUS};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<FailurePath>().add_systems(
        Update,
        (track_failure_path, sync_edges)
            .chain()
            .in_set(crate::AppSystems::Sync),
    );
}

#[derive(Component)]
struct EdgeBand;

#[derive(Component)]
struct EdgeArrow;

#[derive(Component)]
struct EdgeOrder;

/// The fan-out note of an edge (`CanvasEdge::note`), near its caller's end.
#[derive(Component)]
struct EdgeNote;

/// Share of an edge's attempts failing from the root above which it joins the failure path.
const PATH_ON: f64 = 0.10;
/// Share below which it leaves it.
const PATH_OFF: f64 = 0.03;

/// When each edge joined the failure path (simulated ns), by edge index.
#[derive(Resource, Debug, Default)]
pub struct FailurePath {
    /// Onset time per edge (None: healthy).
    pub onset_ns: Vec<Option<u64>>,
    /// Intervals seen.
    seen_intervals: u32,
}

impl FailurePath {
    /// Edge indices on the path, in order of onset; edges that failed in the same interval
    /// are ordered deepest callee first (`depth` per edge: larger is deeper), since failures
    /// usually travel from a dependency up to its callers.
    pub fn ordered(&self, depth: &[f32]) -> Vec<usize> {
        let mut on: Vec<(u64, f32, usize)> = self
            .onset_ns
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (t, -depth.get(i).copied().unwrap_or(0.0), i)))
            .collect();
        on.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        on.into_iter().map(|(_, _, i)| i).collect()
    }
}

/// Pure update of the onset table from one interval's shares of failures from the root
/// (hysteresis between the on and off thresholds). `onset_ns` is the interval's end.
pub fn update_onsets(onsets: &mut [Option<u64>], shares: &[f64], onset_ns: u64) {
    for (o, &s) in onsets.iter_mut().zip(shares) {
        match *o {
            None if s >= PATH_ON => *o = Some(onset_ns),
            Some(_) if s < PATH_OFF => *o = None,
            _ => {}
        }
    }
}

pub(super) fn spawn_edge(
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<ColorMaterial>,
    font: &Handle<Font>,
    index: usize,
) -> Entity {
    let band = meshes.add(Rectangle::new(1.0, 1.0));
    let arrow = meshes.add(Triangle2d::new(
        Vec2::new(0.0, 0.0),
        Vec2::new(-14.0, 7.0),
        Vec2::new(-14.0, -7.0),
    ));
    let color = materials.add(theme::error_share_color(0.0));
    commands
        .spawn((
            Name::new(format!("edge {index}")),
            EdgeVisual { index },
            Transform::default(),
            Visibility::default(),
        ))
        .with_children(|p| {
            p.spawn((
                EdgeBand,
                Mesh2d(band),
                MeshMaterial2d(color.clone()),
                Transform::from_xyz(0.0, 0.0, 0.0),
            ));
            p.spawn((
                EdgeArrow,
                Mesh2d(arrow),
                MeshMaterial2d(color),
                Transform::from_xyz(0.0, 0.0, 0.05),
            ));
            p.spawn((
                EdgeOrder,
                Text2d::new(""),
                TextFont::from_font_size(13.0).with_font(font.clone()),
                TextColor(Color::WHITE),
                Transform::from_xyz(0.0, 12.0, 0.3),
            ));
            p.spawn((
                EdgeNote,
                Text2d::new(""),
                TextFont::from_font_size(12.0).with_font(font.clone()),
                Anchor::CENTER_LEFT,
                TextColor(theme::MUTED_TEXT),
                Transform::from_xyz(0.0, -12.0, 0.3),
            ));
        })
        .id()
}

/// Sum of an edge's links in the last closed interval.
pub fn last_interval(history: &MetricsHistory, links: &[u32]) -> EdgeCounters {
    history
        .intervals()
        .checked_sub(1)
        .map_or_else(EdgeCounters::default, |k| in_interval(history, links, k))
}

/// Sum of an edge's links in interval `k` (zero where the history no longer keeps it).
pub fn in_interval(history: &MetricsHistory, links: &[u32], k: u32) -> EdgeCounters {
    let mut c = EdgeCounters::default();
    for &l in links {
        if let Some(row) = history
            .edges
            .get(l as usize)
            .and_then(|r| MetricsHistory::row_at(r, k))
        {
            c.add(&row.counters);
        }
    }
    c
}

fn track_failure_path(
    history: Res<MetricsHistory>,
    engine: Res<cascade_sim::Engine>,
    graph: Res<CanvasGraph>,
    clock: Res<SimClock>,
    mut path: ResMut<FailurePath>,
) {
    if path.onset_ns.len() != graph.edges.len() || clock.ticks_done == 0 {
        path.onset_ns = vec![None; graph.edges.len()];
        path.seen_intervals = history.intervals();
        return;
    }
    if history.intervals() == path.seen_intervals {
        return;
    }
    // Every interval closed since the last frame, in order: the path must not depend on how
    // many intervals a frame covered (the machine's speed).
    let from = path.seen_intervals.min(history.intervals());
    path.seen_intervals = history.intervals();
    for k in from..history.intervals() {
        let shares = root_shares(&history, k, &graph.edges, &engine.model.links);
        let end = u64::from(k + 1) * history.interval_ns;
        update_onsets(&mut path.onset_ns, &shares, end);
    }
}

/// Per edge, the share of its attempts in interval `k` that failed with a failure that started
/// at that interval's root — the origin of most of the users' failures in it
/// (`cascade_sim::causality`): the edges lit are the path from that root to the users, not
/// every edge with errors.
pub fn root_shares(
    history: &MetricsHistory,
    k: u32,
    edges: &[CanvasEdge],
    links: &[LinkModel],
) -> Vec<f64> {
    let root = causality::root_of(&causality::ranked_in_interval(&history.causes, k));
    let from_root = |l: u32| -> u64 {
        history
            .causes
            .rows_of(k)
            .filter(|r| r.site == CauseSite::Link(l) && Some(r.origin) == root)
            .map(|r| r.failures)
            .sum()
    };
    let mut shares: Vec<f64> = edges
        .iter()
        .map(|e| {
            let attempts = in_interval(history, &e.links, k).attempts;
            if attempts == 0 || root.is_none() {
                return 0.0;
            }
            let failed: u64 = e.links.iter().map(|&l| from_root(l)).sum();
            (failed as f64 / attempts as f64).min(1.0)
        })
        .collect();
    // A root its callers only waited on (slow answers, a pool's wait) has no failed attempts
    // on the edges into it: an edge into the root from a node the path reaches takes the
    // share of the path's edge into that node.
    if let Some(causality::Origin::Service(r)) = root {
        let into_root = |e: &CanvasEdge| {
            e.links
                .iter()
                .any(|&l| links.get(l as usize).is_some_and(|m| m.to == r))
        };
        for i in 0..edges.len() {
            if !into_root(&edges[i]) {
                continue;
            }
            let reached = edges
                .iter()
                .zip(&shares)
                .filter(|(e, _)| e.to == edges[i].from)
                .map(|(_, &s)| s)
                .fold(0.0, f64::max);
            shares[i] = shares[i].max(reached);
        }
    }
    shares
}

#[expect(
    clippy::too_many_arguments,
    reason = "a sync system reads the model and writes several visuals"
)]
fn sync_edges(
    graph: Res<CanvasGraph>,
    history: Res<MetricsHistory>,
    path: Res<FailurePath>,
    selection: Res<Selection>,
    mut roots: Query<(&EdgeVisual, &mut Transform, &Children)>,
    mut bands: Query<
        (&mut Transform, &MeshMaterial2d<ColorMaterial>),
        (With<EdgeBand>, Without<EdgeVisual>, Without<EdgeArrow>),
    >,
    mut arrows: Query<&mut Transform, (With<EdgeArrow>, Without<EdgeVisual>, Without<EdgeBand>)>,
    mut orders: Query<
        (&mut Text2d, &mut Transform),
        (
            With<EdgeOrder>,
            Without<EdgeVisual>,
            Without<EdgeBand>,
            Without<EdgeArrow>,
            Without<EdgeNote>,
        ),
    >,
    mut notes: Query<
        (&mut Text2d, &mut Transform, &mut Anchor),
        (
            With<EdgeNote>,
            Without<EdgeVisual>,
            Without<EdgeBand>,
            Without<EdgeArrow>,
            Without<EdgeOrder>,
        ),
    >,
    mut materials: ResMut<Assets<ColorMaterial>>,
    mut gizmos: Gizmos,
) {
    let interval_s = history.interval_ns as f64 / 1e9;
    // Depth of an edge: how far down its callee is drawn.
    let depth: Vec<f32> = graph.edges.iter().map(|e| -graph.pos(&e.to).y).collect();
    let order = path.ordered(&depth);
    for (edge, mut root, children) in &mut roots {
        let Some(e) = graph.edges.get(edge.index) else {
            continue;
        };
        let (a, b) = (graph.pos(&e.from), graph.pos(&e.to));
        let d = b - a;
        let len = d.length();
        if len < 1.0 {
            continue;
        }
        let dir = d / len;
        let gap = NODE_RADIUS + 10.0;
        let (start, end) = (a + dir * gap, b - dir * gap);
        let shown = (end - start).length().max(1.0);
        let c = last_interval(&history, &e.links);
        let rate = c.attempts as f64 / interval_s;
        let width = (1.5 + 2.2 * (1.0 + rate).log10()) as f32;
        let share = c.error_share();
        root.translation = ((start + end) / 2.0).extend(0.5);
        let angle = dir.y.atan2(dir.x);
        root.rotation = Quat::from_rotation_z(angle);
        let position_in_path = order.iter().position(|&i| i == edge.index);
        for child in children.iter() {
            if let Ok((mut t, material)) = bands.get_mut(child) {
                t.scale = Vec3::new(shown, width, 1.0);
                if let Some(mut m) = materials.get_mut(&material.0) {
                    m.color = theme::error_share_color(share);
                }
            }
            if let Ok(mut t) = arrows.get_mut(child) {
                t.translation.x = shown / 2.0 + 2.0;
                t.scale = Vec3::splat((0.8 + width / 10.0).min(1.6));
            }
            if let Ok((mut text, mut t)) = orders.get_mut(child) {
                // Upright whatever the edge's direction, clear of the band.
                t.rotation = Quat::from_rotation_z(-angle);
                t.translation.y = width / 2.0 + 11.0;
                let wanted = position_in_path
                    .map(|p| format!("{}", p + 1))
                    .unwrap_or_default();
                if text.0 != wanted {
                    text.0 = wanted;
                }
            }
            if let Ok((mut text, mut t, mut anchor)) = notes.get_mut(child) {
                // Upright, beside the caller's end of the band on the side away from the
                // failure path's number, and growing away from the band.
                t.rotation = Quat::from_rotation_z(-angle);
                t.translation.x = -shown / 4.0;
                t.translation.y = -(width / 2.0 + 8.0);
                let away = Vec2::new(dir.y, -dir.x);
                let wanted = if away.x >= 0.0 {
                    Anchor::CENTER_LEFT
                } else {
                    Anchor::CENTER_RIGHT
                };
                if *anchor != wanted {
                    *anchor = wanted;
                }
                if text.0 != e.note {
                    text.0.clone_from(&e.note);
                }
            }
        }
        if position_in_path.is_some() {
            let glow = Color::srgba(1.0, 0.35, 0.3, 0.35);
            gizmos.line_2d(start, end, glow);
        }
        if selection
            .edge
            .as_ref()
            .is_some_and(|(f, t)| *f == e.from && *t == e.to)
        {
            let n = Vec2::new(-dir.y, dir.x) * (width / 2.0 + 5.0);
            gizmos.line_2d(start + n, end + n, Color::srgb(0.4, 0.7, 1.0));
            gizmos.line_2d(start - n, end - n, Color::srgb(0.4, 0.7, 1.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_edges_carrying_the_roots_failures_join_the_path() {
        use cascade_sim::NodeRef;
        use cascade_sim::causality::Origin;
        use cascade_sim::metrics::{EdgeRow, SystemRow};
        // users →(0) api →(1) db1, api →(2) db2, interval 0. db1 is the origin of 60 of the
        // users' 70 failures, db2 of 10: db2's edge fails 15% of its attempts, but not from
        // the root, so it stays off the path.
        let mut h = MetricsHistory::default();
        h.system.push(SystemRow::default());
        for (attempts, failures) in [(100, 70), (100, 60), (67, 10)] {
            let row = EdgeRow {
                interval: 0,
                counters: EdgeCounters {
                    attempts,
                    failures,
                    ..Default::default()
                },
            };
            h.edges.push([row].into());
        }
        let (db1, db2) = (Origin::Service(1), Origin::Service(2));
        h.causes
            .record(0, CauseSite::Source(0), [(db1, 60), (db2, 10)]);
        h.causes
            .record(0, CauseSite::Link(0), [(db1, 60), (db2, 10)]);
        h.causes.record(0, CauseSite::Link(1), [(db1, 60)]);
        h.causes.record(0, CauseSite::Link(2), [(db2, 10)]);
        let edge = |from: &str, to: &str, l: u32| CanvasEdge {
            from: from.into(),
            to: to.into(),
            links: vec![l],
            note: String::new(),
            entity: Entity::PLACEHOLDER,
        };
        let edges = [
            edge("users", "api", 0),
            edge("api", "db1", 1),
            edge("api", "db2", 2),
        ];
        // Links 0, 1, 2 call services 0 (api), 1 (db1) and 2 (db2).
        let link = |from: NodeRef, to: u32| LinkModel {
            from,
            to,
            latency_ns: 0,
            latency_sd_ns: 0,
        };
        let links = [
            link(NodeRef::Source(0), 0),
            link(NodeRef::Service(0), 1),
            link(NodeRef::Service(0), 2),
        ];
        let shares = root_shares(&h, 0, &edges, &links);
        assert_eq!(shares, [0.6, 0.6, 0.0]);
        // The same failures from a db1 api only waited on (no failed attempt on api → db1):
        // its edge takes the share of the path's edge into api.
        h.causes = Default::default();
        h.causes
            .record(0, CauseSite::Source(0), [(db1, 60), (db2, 10)]);
        h.causes
            .record(0, CauseSite::Link(0), [(db1, 60), (db2, 10)]);
        h.causes.record(0, CauseSite::Link(2), [(db2, 10)]);
        assert_eq!(root_shares(&h, 0, &edges, &links), [0.6, 0.6, 0.0]);
        let mut onsets = vec![None; 3];
        update_onsets(&mut onsets, &shares, 1);
        assert_eq!(onsets, [Some(1), Some(1), None]);
    }

    #[test]
    fn failure_path_orders_edges_by_onset_with_hysteresis() {
        let mut path = FailurePath {
            onset_ns: vec![None; 3],
            seen_intervals: 0,
        };
        let flat = [0.0; 3];
        update_onsets(&mut path.onset_ns, &[0.0, 0.5, 0.0], 1);
        update_onsets(&mut path.onset_ns, &[0.2, 0.6, 0.05], 2);
        assert_eq!(
            path.ordered(&flat),
            vec![1, 0],
            "edge 1 failed first, then edge 0"
        );
        update_onsets(&mut path.onset_ns, &[0.05, 0.6, 0.5], 3);
        assert_eq!(
            path.ordered(&flat),
            vec![1, 0, 2],
            "5% is above the off threshold: edge 0 stays"
        );
        update_onsets(&mut path.onset_ns, &[0.0, 0.0, 0.5], 4);
        assert_eq!(path.ordered(&flat), vec![2], "healed edges leave the path");
        let mut tie = FailurePath {
            onset_ns: vec![Some(5), Some(5)],
            seen_intervals: 0,
        };
        assert_eq!(
            tie.ordered(&[1.0, 2.0]),
            vec![1, 0],
            "same interval: deeper callee first"
        );
        tie.onset_ns[0] = Some(4);
        assert_eq!(tie.ordered(&[1.0, 2.0]), vec![0, 1]);
    }
}
