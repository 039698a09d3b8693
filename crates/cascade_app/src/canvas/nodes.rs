//! Node visuals: a body shaped by kind and filled by health, a utilisation ring, a queue bar,
//! a fault badge, a label with the instance count, live stats, and a pulse when health changes.

use std::f32::consts::TAU;

use bevy::prelude::*;
use bevy::sprite::Anchor;
use cascade_sim::engine::{InstanceState, ServiceState, SourceState};
use cascade_sim::faults::ResolvedTarget;
use cascade_sim::metrics::Health;
use cascade_sim::scenario::{FaultKind, NodeKind};
use cascade_sim::{Engine, MetricsHistory, NodeRef};

use super::{CanvasGraph, NodeShape, NodeVisual};
use crate::session::{Document, Selection};
use crate::theme::{self, NODE_RADIUS};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, configure_gizmos).add_systems(
        Update,
        (place_nodes, sync_nodes, draw_node_overlays, label_detail)
            .chain()
            .in_set(crate::AppSystems::Sync),
    );
}

#[derive(Component)]
pub(super) struct NodeBody;

#[derive(Component)]
struct NodeLabel;

#[derive(Component)]
struct NodeStats;

#[derive(Component)]
struct QueueFill;

#[derive(Component)]
struct FaultBadge;

/// Per-node animation and smoothed values.
#[derive(Component, Debug, Clone, Default)]
pub(super) struct NodeAnim {
    /// Health shown.
    pub health: Health,
    /// Seconds left of the pulse that marks a health change.
    pub pulse_s: f32,
    /// Smoothed worker utilisation (0..1).
    pub utilization: f32,
    /// Smoothed queue length.
    pub queue: f32,
}

fn configure_gizmos(mut store: ResMut<GizmoConfigStore>) {
    let (config, _) = store.config_mut::<DefaultGizmoConfigGroup>();
    config.line.width = 3.0;
}

/// The body mesh of a node shape.
pub(super) fn body_mesh(shape: NodeShape) -> Mesh {
    let r = NODE_RADIUS;
    match shape {
        NodeShape::Client => Rectangle::new(2.0 * r, 1.3 * r).into(),
        NodeShape::Service(NodeKind::Gateway) => RegularPolygon::new(r, 6).into(),
        NodeShape::Service(NodeKind::Service) => Circle::new(r).into(),
        NodeShape::Service(NodeKind::Cache) => Rhombus::new(2.3 * r, 2.3 * r).into(),
        NodeShape::Service(NodeKind::Database) => Capsule2d::new(0.78 * r, 0.7 * r).into(),
        NodeShape::Service(NodeKind::Queue) => Rectangle::new(2.4 * r, 1.1 * r).into(),
        NodeShape::Service(NodeKind::ControlPlane) => RegularPolygon::new(r, 8).into(),
        NodeShape::Service(NodeKind::Monitoring) => RegularPolygon::new(r, 5).into(),
    }
}

/// Where a service's labels start, right of its centre (beyond the queue bar).
pub(super) const LABEL_X: f32 = NODE_RADIUS + 26.0;
/// How far right of a node's centre its labels reach: a stats line such as
/// "1829/s · p99 7.5 s" at 12 px is about 130 px wide, and most names are shorter. The
/// camera's fit keeps this much in view.
pub const LABEL_REACH: f32 = LABEL_X + 130.0;

/// Smallest text, logical pixels on screen, worth drawing: below it a label is a grey smudge
/// that clutters a zoomed-out graph (names at 16 px hide beyond about ×2.7, stats at 12 px
/// beyond ×2); zooming in brings them back.
const LEAST_TEXT_PX: f32 = 6.0;

/// Whether text of `font_px` world units shows at camera `scale` (world units per pixel).
pub fn text_readable(font_px: f32, scale: f32) -> bool {
    font_px / scale.max(1e-6) >= LEAST_TEXT_PX
}

/// Hides node names and stats that would be too small to read at the camera's zoom.
fn label_detail(
    camera: Single<&Projection, With<super::camera::CanvasCamera>>,
    mut names: Query<&mut Visibility, (With<NodeLabel>, Without<NodeStats>)>,
    mut stats: Query<&mut Visibility, (With<NodeStats>, Without<NodeLabel>)>,
) {
    let scale = super::camera::scale_of(&camera);
    let show = |font_px: f32| {
        if text_readable(font_px, scale) {
            Visibility::Inherited
        } else {
            Visibility::Hidden
        }
    };
    for mut v in &mut names {
        v.set_if_neq(show(NAME_FONT_PX));
    }
    for mut v in &mut stats {
        v.set_if_neq(show(STATS_FONT_PX));
    }
}

/// A service's stats line: attempts offered per second and the p99 of the interval's
/// completions, or a dash when nothing completed in it (its percentiles then read 0, which
/// is not a latency: a partitioned service read "p99 0.0 ms").
fn service_stats(offered_per_s: f64, latency_ms: [f64; 4]) -> String {
    let p99 = cascade_sim::metrics::recorded_latency(latency_ms)
        .map_or_else(|| "—".to_owned(), |l| fmt_ms(l[2]));
    format!("{offered_per_s:.0}/s · p99 {p99}")
}

/// A source's stats line: new requests a second and the share of finished ones that
/// succeeded; when none finished in the interval, what it sent instead (its users may all be
/// waiting on retries, as in a congestive collapse), or that it is idle.
fn source_stats(c: &cascade_sim::metrics::NodeCounters, interval_s: f64) -> String {
    let new_per_s = c.offered_first as f64 / interval_s;
    let done = c.succeeded + c.failed_total();
    if done > 0 {
        let ok = c.succeeded as f64 / done as f64;
        format!("{new_per_s:.0}/s · {:.0}% ok", ok * 100.0)
    } else if c.offered_retry > 0 {
        let retries_per_s = c.offered_retry as f64 / interval_s;
        format!("{new_per_s:.0}/s + {retries_per_s:.0} retries/s · none finished")
    } else if c.offered_first > 0 {
        format!("{new_per_s:.0}/s · none finished")
    } else {
        "idle".to_owned()
    }
}

/// Font sizes of a node's name and stats lines.
pub(super) const NAME_FONT_PX: f32 = 16.0;
const STATS_FONT_PX: f32 = 12.0;

/// A node's name line: a service's instance count (`api ×4`), and how many of them serve
/// when not all do (`api ×4 (1 serving)`: the others are killed, restarting, latched, out of
/// rotation or ejected by health checks), so a death spiral's ejections or a partial kill
/// show on the canvas.
pub(super) fn label_text(name: &str, shape: NodeShape, serving: u32, provisioned: u32) -> String {
    match shape {
        NodeShape::Service(_) if serving < provisioned => {
            format!("{name} ×{provisioned} ({serving} serving)")
        }
        NodeShape::Service(_) if provisioned != 1 => format!("{name} ×{provisioned}"),
        _ => name.to_owned(),
    }
}

/// A service's instances summed for display, by the canvas's node and by the inspector.
/// Instances an autoscaler retired or has not provisioned yet keep their records and are
/// left out; busy and workers count the live instances only, queued all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceSummary {
    /// Busy workers of live instances.
    pub busy: u32,
    /// Workers of live instances.
    pub workers: u32,
    /// Requests waiting in any provisioned instance's queue.
    pub queued: usize,
    /// Live instances: up, provisioned, in rotation and started.
    pub live: u32,
    /// Live instances the load balancer routes to (not ejected or failing health checks;
    /// under panic routing every live one).
    pub serving: u32,
    /// Provisioned instances.
    pub provisioned: u32,
}

impl InstanceSummary {
    /// The summary of a service's instances; `routable` is its load balancer's list
    /// (`ServiceState::routable`, global instance indices).
    pub fn of<'a>(
        instances: impl IntoIterator<Item = &'a InstanceState>,
        routable: &[u32],
    ) -> Self {
        let mut s = Self::default();
        for is in instances {
            let live = is.serving();
            s.add(
                is.provisioned,
                live,
                live && routable.contains(&is.global),
                (is.busy, is.workers, is.queue.len()),
            );
        }
        s
    }

    /// Adds one instance; `load` is its busy workers, workers and queued requests.
    fn add(&mut self, provisioned: bool, live: bool, routed: bool, load: (u32, u32, usize)) {
        if !provisioned {
            return;
        }
        let (busy, workers, queued) = load;
        self.provisioned += 1;
        self.queued += queued;
        if live {
            self.live += 1;
            self.busy += busy;
            self.workers += workers;
        }
        if routed {
            self.serving += 1;
        }
    }

    /// Busy share of the live instances' workers (0 with none).
    pub fn utilization(&self) -> f32 {
        if self.workers == 0 {
            0.0
        } else {
            self.busy as f32 / self.workers as f32
        }
    }
}

/// Spawns a node's entities; returns the root.
#[expect(
    clippy::too_many_arguments,
    reason = "spawning needs the asset stores and the node's description"
)]
pub(super) fn spawn_node(
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<ColorMaterial>,
    font: &Handle<Font>,
    name: &str,
    shape: NodeShape,
    instances: u32,
    pos: Vec2,
) -> Entity {
    let body = meshes.add(body_mesh(shape));
    let fill = materials.add(theme::health_color(Health::Idle));
    let bar_bg = meshes.add(Rectangle::new(7.0, 44.0));
    let bar_fill = meshes.add(Rectangle::new(7.0, 1.0));
    let badge = meshes.add(Circle::new(10.0));
    let r = NODE_RADIUS;
    commands
        .spawn((
            Name::new(format!("node {name}")),
            NodeVisual {
                name: name.to_owned(),
            },
            NodeAnim::default(),
            Transform::from_translation(pos.extend(2.0)),
            Visibility::default(),
        ))
        .with_children(|p| {
            p.spawn((
                NodeBody,
                Mesh2d(body),
                MeshMaterial2d(fill),
                Transform::from_xyz(0.0, 0.0, 0.1),
            ));
            // Labels sit to the right (beyond the queue bar), clear of vertical edges.
            let label_x = if shape == NodeShape::Client {
                r + 12.0
            } else {
                LABEL_X
            };
            p.spawn((
                NodeLabel,
                Text2d::new(label_text(name, shape, instances, instances)),
                TextFont::from_font_size(NAME_FONT_PX).with_font(font.clone()),
                TextColor(Color::srgb(0.92, 0.94, 0.96)),
                Anchor::CENTER_LEFT,
                Transform::from_xyz(label_x, 8.0, 0.3),
            ));
            p.spawn((
                NodeStats,
                Text2d::new(""),
                TextFont::from_font_size(STATS_FONT_PX).with_font(font.clone()),
                TextColor(theme::MUTED_TEXT),
                Anchor::CENTER_LEFT,
                Transform::from_xyz(label_x, -11.0, 0.3),
            ));
            if shape != NodeShape::Client {
                p.spawn((
                    Mesh2d(bar_bg),
                    MeshMaterial2d(materials.add(Color::srgb(0.2, 0.22, 0.26))),
                    Transform::from_xyz(r + 14.0, 0.0, 0.1),
                ));
                p.spawn((
                    QueueFill,
                    Mesh2d(bar_fill),
                    MeshMaterial2d(materials.add(theme::health_color(Health::Degraded))),
                    Transform::from_xyz(r + 14.0, -22.0, 0.2).with_scale(Vec3::new(1.0, 0.0, 1.0)),
                ));
            }
            p.spawn((
                FaultBadge,
                Mesh2d(badge),
                MeshMaterial2d(materials.add(theme::health_color(Health::Down))),
                Transform::from_xyz(-r * 0.8, r * 0.8, 0.4),
                Visibility::Hidden,
            ))
            .with_children(|b| {
                b.spawn((
                    Text2d::new("⚡"),
                    TextFont::from_font_size(13.0).with_font(font.clone()),
                    TextColor(Color::WHITE),
                    Transform::from_xyz(0.0, 0.0, 0.1),
                ));
            });
        })
        .id()
}

/// Moves node roots to their layout positions.
fn place_nodes(graph: Res<CanvasGraph>, mut roots: Query<(&NodeVisual, &mut Transform)>) {
    if !graph.is_changed() {
        return;
    }
    for (node, mut t) in &mut roots {
        let p = graph.pos(&node.name);
        if t.translation.truncate() != p {
            t.translation = p.extend(t.translation.z);
        }
    }
}

/// Live figures of one node this frame.
#[derive(Debug, Clone, Default)]
struct NodeLive {
    health: Health,
    utilization: f32,
    queue: f32,
    /// Serving and provisioned instances of a service (`None` before its instances exist).
    serving: Option<(u32, u32)>,
    faulted: bool,
    stats: String,
}

fn live_figures(
    graph: &CanvasGraph,
    engine: &Engine,
    history: &MetricsHistory,
    services: &Query<&ServiceState>,
    instances: &Query<&InstanceState>,
    sources: &Query<&SourceState>,
) -> Vec<NodeLive> {
    let interval_s = history.interval_ns as f64 / 1e9;
    let by_global: std::collections::BTreeMap<u32, &InstanceState> =
        instances.iter().map(|i| (i.global, i)).collect();
    graph
        .nodes
        .iter()
        .map(|n| {
            let mut live = NodeLive::default();
            match n.node {
                NodeRef::Service(i) => {
                    if let Some(st) = services.iter().find(|s| s.index == i) {
                        live.health = st.metrics.health;
                        let sum = InstanceSummary::of(
                            st.instances
                                .iter()
                                .filter_map(|g| by_global.get(g).copied()),
                            &st.routable,
                        );
                        live.utilization = sum.utilization();
                        live.queue = sum.queued as f32;
                        live.serving = Some((sum.serving, sum.provisioned));
                        if sum.provisioned > 0 && sum.live == 0 {
                            live.health = Health::Down;
                        }
                    }
                    if let Some(row) = history.services.get(i as usize).and_then(|r| r.back()) {
                        // A work queue's items wait in the queue itself, not in its
                        // instances: the bar shows them too (as of the last interval's end).
                        live.queue += row.gauges.queue_backlog as f32;
                        let c = &row.counters;
                        live.stats = service_stats(c.offered() as f64 / interval_s, row.latency_ms);
                    }
                }
                NodeRef::Source(i) => {
                    if let Some(st) = sources.iter().find(|s| s.index == i) {
                        live.health = st.metrics.health;
                    }
                    if let Some(row) = history.sources.get(i as usize).and_then(|r| r.back()) {
                        live.stats = source_stats(&row.counters, interval_s);
                    }
                }
            }
            live.faulted = engine.faults.iter().any(|f| {
                f.active
                    && match (&f.target, n.node) {
                        (ResolvedTarget::Service(s), NodeRef::Service(i)) => *s == i,
                        (ResolvedTarget::Source(s), NodeRef::Source(i)) => *s == i,
                        // A group partition marks its group; a link fault its caller.
                        (ResolvedTarget::Links(_), _) => match &f.kind {
                            FaultKind::GroupPartition { group, .. } => group.contains(&n.name),
                            kind => kind.target_node() == n.name,
                        },
                        // A zone fault marks every service with instances in its zones.
                        (ResolvedTarget::Zone(z), NodeRef::Service(i)) => {
                            engine.model.services[i as usize].zones.contains(z)
                        }
                        (ResolvedTarget::Zones(mask), NodeRef::Service(i)) => engine.model.services
                            [i as usize]
                            .zones
                            .iter()
                            .any(|&z| cascade_sim::faults::zone_in(*mask, z)),
                        _ => false,
                    }
            });
            live
        })
        .collect()
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "a sync system reads the model and writes several visuals"
)]
fn sync_nodes(
    time: Res<Time<Real>>,
    graph: Res<CanvasGraph>,
    doc: Res<Document>,
    engine: Res<Engine>,
    history: Res<MetricsHistory>,
    services: Query<&ServiceState>,
    instances: Query<&InstanceState>,
    sources: Query<&SourceState>,
    mut roots: Query<(&NodeVisual, &mut NodeAnim, &Children)>,
    bodies: Query<&MeshMaterial2d<ColorMaterial>, With<NodeBody>>,
    mut fills: Query<
        (&mut Transform, &MeshMaterial2d<ColorMaterial>),
        (With<QueueFill>, Without<NodeBody>),
    >,
    mut badges: Query<&mut Visibility, With<FaultBadge>>,
    mut labels: Query<&mut Text2d, (With<NodeLabel>, Without<NodeStats>)>,
    mut stats: Query<&mut Text2d, (With<NodeStats>, Without<NodeLabel>)>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    if !engine.loaded {
        return;
    }
    let figures = live_figures(&graph, &engine, &history, &services, &instances, &sources);
    let dt = time.delta_secs();
    let smoothing = 1.0 - (-dt * 8.0).exp();
    for (node, live) in graph.nodes.iter().zip(figures) {
        let Ok((_, mut anim, children)) = roots.get_mut(node.entity) else {
            continue;
        };
        if anim.health != live.health {
            if anim.health != Health::Idle || live.health != Health::Healthy {
                anim.pulse_s = 1.0;
            }
            anim.health = live.health;
        }
        anim.pulse_s = (anim.pulse_s - dt).max(0.0);
        anim.utilization += (live.utilization - anim.utilization) * smoothing;
        anim.queue += (live.queue - anim.queue) * smoothing;
        let configured = doc.scenario.service(&node.name).map_or(1, |s| s.instances);
        let (serving, provisioned) = live.serving.unwrap_or((configured, configured));
        for child in children.iter() {
            if let Ok(material) = bodies.get(child)
                && let Some(mut m) = materials.get_mut(&material.0)
            {
                m.color = theme::health_color(live.health);
            }
            if let Ok((mut t, material)) = fills.get_mut(child) {
                // Log scale: 1 request fills 10%, 1,000 fill the bar.
                let fill = ((1.0 + anim.queue).log10() / 3.0).clamp(0.0, 1.0);
                t.scale.y = fill * 44.0;
                t.translation.y = -22.0 + fill * 22.0;
                if let Some(mut m) = materials.get_mut(&material.0) {
                    m.color = if fill > 0.66 {
                        theme::health_color(Health::Down)
                    } else {
                        theme::health_color(Health::Degraded)
                    };
                }
            }
            if let Ok(mut v) = badges.get_mut(child) {
                *v = if live.faulted {
                    Visibility::Inherited
                } else {
                    Visibility::Hidden
                };
            }
            if let Ok(mut text) = labels.get_mut(child) {
                let wanted = label_text(&node.name, node.shape, serving, provisioned);
                if text.0 != wanted {
                    text.0 = wanted;
                }
            }
            if let Ok(mut text) = stats.get_mut(child)
                && text.0 != live.stats
            {
                text.0.clone_from(&live.stats);
            }
        }
    }
}

/// Rings drawn each frame: utilisation, selection, health-change pulse.
fn draw_node_overlays(
    mut gizmos: Gizmos,
    graph: Res<CanvasGraph>,
    roots: Query<&NodeAnim>,
    selection: Res<Selection>,
) {
    for node in &graph.nodes {
        let Ok(anim) = roots.get(node.entity) else {
            continue;
        };
        let center = graph.pos(&node.name);
        if node.shape != NodeShape::Client {
            let radius = NODE_RADIUS + 6.0;
            ring(
                &mut gizmos,
                center,
                radius,
                1.0,
                Color::srgba(1.0, 1.0, 1.0, 0.08),
            );
            if anim.utilization > 0.005 {
                let color = if anim.utilization > 0.95 {
                    theme::health_color(Health::Failing)
                } else {
                    Color::srgb(0.85, 0.9, 0.95)
                };
                ring(&mut gizmos, center, radius, anim.utilization, color);
            }
        }
        if selection.node.as_deref() == Some(node.name.as_str()) {
            ring(
                &mut gizmos,
                center,
                NODE_RADIUS + 13.0,
                1.0,
                Color::srgb(0.4, 0.7, 1.0),
            );
        }
        if anim.pulse_s > 0.0 {
            let t = 1.0 - anim.pulse_s;
            let mut c = theme::health_color(anim.health);
            c.set_alpha(anim.pulse_s);
            ring(&mut gizmos, center, NODE_RADIUS + 8.0 + 30.0 * t, 1.0, c);
        }
    }
}

/// A clockwise arc from 12 o'clock covering `fraction` of a full turn.
fn ring(gizmos: &mut Gizmos, center: Vec2, radius: f32, fraction: f32, color: Color) {
    let segments = (48.0 * fraction).ceil().max(2.0) as usize;
    let points = (0..=segments).map(|i| {
        let a = std::f32::consts::FRAC_PI_2 - TAU * fraction * i as f32 / segments as f32;
        center + Vec2::new(a.cos(), a.sin()) * radius
    });
    gizmos.linestrip_2d(points, color);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_says_what_finished_or_what_it_sent() {
        use cascade_sim::metrics::{NodeCounters, Outcome};
        let mut c = NodeCounters {
            offered_first: 200,
            succeeded: 150,
            ..Default::default()
        };
        c.failed[Outcome::Timeout as usize] = 50;
        assert_eq!(source_stats(&c, 1.0), "200/s · 75% ok");
        // Every user waiting on retries: nothing finished, thousands of retries sent.
        let waiting = NodeCounters {
            offered_retry: 6000,
            ..Default::default()
        };
        assert_eq!(
            source_stats(&waiting, 1.0),
            "0/s + 6000 retries/s · none finished"
        );
        let sent = NodeCounters {
            offered_first: 10,
            ..Default::default()
        };
        assert_eq!(source_stats(&sent, 2.0), "5/s · none finished");
        assert_eq!(source_stats(&NodeCounters::default(), 1.0), "idle");
    }

    #[test]
    fn a_service_with_nothing_completed_shows_no_latency() {
        assert_eq!(service_stats(0.0, [0.0; 4]), "0/s · p99 —");
        assert_eq!(
            service_stats(620.4, [302.1, 305.0, 308.2, 309.0]),
            "620/s · p99 308 ms"
        );
    }

    #[test]
    fn a_service_label_counts_its_instances_and_says_how_many_serve_when_not_all() {
        let service = NodeShape::Service(NodeKind::default());
        assert_eq!(label_text("db", service, 1, 1), "db");
        assert_eq!(label_text("api", service, 4, 4), "api ×4");
        assert_eq!(label_text("api", service, 1, 4), "api ×4 (1 serving)");
        assert_eq!(label_text("db", service, 0, 1), "db ×1 (0 serving)");
        assert_eq!(label_text("users", NodeShape::Client, 0, 0), "users");
    }

    #[test]
    fn the_instance_summary_leaves_out_unprovisioned_and_counts_workers_of_live_ones() {
        let mut s = InstanceSummary::default();
        // (provisioned, live, routed, (busy, workers, queued))
        s.add(true, true, true, (3, 4, 2)); // serving
        s.add(true, true, false, (4, 4, 9)); // ejected by health checks, still working
        s.add(true, false, false, (1, 4, 5)); // out of rotation, finishing its queue
        s.add(false, false, false, (0, 4, 0)); // retired by an autoscaler
        assert_eq!(
            s,
            InstanceSummary {
                busy: 7,
                workers: 8,
                queued: 16,
                live: 2,
                serving: 1,
                provisioned: 3,
            }
        );
        assert_eq!(s.utilization(), 7.0 / 8.0);
        assert_eq!(InstanceSummary::default().utilization(), 0.0);
    }

    #[test]
    fn labels_hide_when_smaller_than_six_pixels() {
        // A 16-px name is 6.4 px on screen at ×2.5 (shown) and 5.3 px at ×3 (hidden); a 12-px
        // stats line is 6 px at ×2 and 5.5 px at ×2.2.
        assert!(text_readable(NAME_FONT_PX, 2.5));
        assert!(!text_readable(NAME_FONT_PX, 3.0));
        assert!(text_readable(STATS_FONT_PX, 2.0));
        assert!(!text_readable(STATS_FONT_PX, 2.2));
    }
}
