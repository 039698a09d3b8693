//! Automatic layered layout: clients at the top, storage at the bottom.
//!
//! Pure function over the scenario: each node's layer is its longest call-path depth
//! (`DependencyGraph::layers`); within a layer nodes are ordered by the barycentre of their
//! neighbours in the layer above, a few sweeps down and up (Sugiyama-style crossing
//! reduction); positions the user has dragged (stored in the scenario) always win.
//!
//! A layer wider than the graph is tall is folded into a few sub-rows (its order runs down
//! each column, then on to the next, so left-to-right order is kept between layers), as many
//! as bring the whole picture nearest to the canvas's shape ([`TARGET_ASPECT`]). Unfolded, 200
//! generated services made a strip 50 nodes wide and 5 deep, every node a dot.

use std::collections::BTreeMap;

use bevy::math::Vec2;

use super::NodeShape;
use super::nodes::{LABEL_X, NAME_FONT_PX, label_text};
use crate::theme::NODE_RADIUS;
use cascade_sim::graph::DependencyGraph;
use cascade_sim::scenario::Scenario;

/// Vertical distance between layers, world units.
pub const LAYER_GAP: f32 = 150.0;
/// Horizontal distance between neighbours in a layer, world units: wide enough for a label
/// such as "1,000/s · p99 300 ms" beside its node. More where names are long ([`node_gap`]).
pub const NODE_GAP: f32 = 250.0;

/// Average advance of a name's character, in ems, of the canvas font (DejaVu Sans: about
/// 0.6 for lower-case letters, digits and underscores).
const NAME_EM_PER_CHAR: f32 = 0.6;

/// Horizontal distance between neighbours in a layer for nodes labelled `names`: [`NODE_GAP`],
/// or more where the longest label beside its node would run into the next node (a scenario
/// naming nodes like `ebs_restore_backlog` had its labels overlap).
pub fn node_gap<'a>(names: impl Iterator<Item = &'a str>) -> f32 {
    // The next node's body starts a radius left of its centre; a little air between.
    (name_end(names) + NODE_RADIUS + 12.0).max(NODE_GAP)
}

/// How far right of its node's centre the longest of `names` ends, world units.
pub fn name_end<'a>(names: impl Iterator<Item = &'a str>) -> f32 {
    let chars = names.map(|n| n.chars().count()).max().unwrap_or(0);
    LABEL_X + chars as f32 * NAME_EM_PER_CHAR * NAME_FONT_PX
}

/// Vertical distance between the sub-rows of a folded layer, world units: room for a node and
/// its two label lines.
pub const SUBROW_GAP: f32 = 110.0;
/// Width over height the layout aims for when it folds wide layers: about the free canvas
/// between the side panels and above the charts of a 1600 × 960 window.
pub const TARGET_ASPECT: f32 = 1.8;

/// How much nearer the target shape a fold must bring the picture to be worth it (a ratio):
/// folding costs something too, edges that pass beside the sub-rows of their own layer.
const FOLD_GAIN: f32 = 1.5;

/// The widest a layer may be (in nodes) for layers of `sizes` nodes: the width whose folded
/// picture has the aspect nearest [`TARGET_ASPECT`] (in ratio, so ×2 too wide and ×2 too tall
/// are as far), the widest on a tie; unfolded unless that is [`FOLD_GAIN`] times nearer. A
/// graph no wider than tall is never folded.
pub fn fold_width(sizes: &[usize], gap: f32) -> usize {
    let widest = sizes.iter().copied().max().unwrap_or(1).max(1);
    let off = |cap: usize| {
        let (w, h) = folded_extent(sizes, cap, gap);
        ((w.max(gap) / h.max(LAYER_GAP)) / TARGET_ASPECT).ln().abs()
    };
    let best = (1..=widest).rev().fold(widest, |best, cap| {
        if off(cap) < off(best) - 1e-6 {
            cap
        } else {
            best
        }
    });
    if off(best) < off(widest) - FOLD_GAIN.ln() {
        best
    } else {
        widest
    }
}

/// Sub-rows of a layer of `n` nodes at most `cap` wide.
fn subrow_count(n: usize, cap: usize) -> usize {
    n.div_ceil(cap.max(1)).max(1)
}

/// Width (world units, node centres) of a layer of `n` nodes in `subrows` sub-rows: each node
/// a `gap / subrows` step right of the one before (see [`layout`]).
fn layer_width(n: usize, subrows: usize, gap: f32) -> f32 {
    n.saturating_sub(1) as f32 * gap / subrows.max(1) as f32
}

/// Width and height (world units, node centres) of layers of `sizes` folded at `cap`.
fn folded_extent(sizes: &[usize], cap: usize, gap: f32) -> (f32, f32) {
    let width = sizes
        .iter()
        .map(|&n| layer_width(n, subrow_count(n, cap), gap))
        .fold(0.0, f32::max);
    let extra_rows: usize = sizes.iter().map(|&n| subrow_count(n, cap) - 1).sum();
    let height = sizes.len().saturating_sub(1) as f32 * LAYER_GAP + extra_rows as f32 * SUBROW_GAP;
    (width, height)
}

/// World position of every node (sources and services), by name.
pub fn layout(scenario: &Scenario) -> BTreeMap<String, Vec2> {
    let graph = DependencyGraph::from_scenario(scenario);
    let layers = graph.layers();
    let edges = graph.edges();
    let depth = layers.iter().map(|(_, l)| *l).max().unwrap_or(0);
    let mut rows: Vec<Vec<String>> = vec![Vec::new(); depth + 1];
    for (name, layer) in &layers {
        rows[*layer].push(name.clone());
    }
    // Barycentre ordering: position of each node = mean index of its neighbours in the
    // adjacent row; alternate downward and upward sweeps.
    let neighbours = |name: &str, up: bool| -> Vec<&str> {
        edges
            .iter()
            .filter_map(|(a, b)| {
                if up && b == name {
                    Some(a.as_str())
                } else if !up && a == name {
                    Some(b.as_str())
                } else {
                    None
                }
            })
            .collect()
    };
    for sweep in 0..4 {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down {
            (1..rows.len()).collect()
        } else {
            (0..rows.len().saturating_sub(1)).rev().collect()
        };
        for r in order {
            let reference = if down { r - 1 } else { r + 1 };
            let index: BTreeMap<&str, usize> = rows[reference]
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            let mut keyed: Vec<(f64, usize, String)> = rows[r]
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let ns: Vec<usize> = neighbours(n, down)
                        .iter()
                        .filter_map(|m| index.get(m).copied())
                        .collect();
                    let key = if ns.is_empty() {
                        i as f64
                    } else {
                        ns.iter().sum::<usize>() as f64 / ns.len() as f64
                    };
                    (key, i, n.clone())
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[r] = keyed.into_iter().map(|(_, _, n)| n).collect();
        }
    }
    let sizes: Vec<usize> = rows.iter().map(Vec::len).collect();
    // Labels as the canvas writes them at their widest: every instance the service can have
    // (its autoscaler's maximum), one of them not serving (`api ×4 (3 serving)`), so that a
    // death spiral's label does not run into the next node.
    let labels: Vec<String> = scenario
        .sources
        .iter()
        .map(|x| label_text(&x.name, NodeShape::Client, 1, 1))
        .chain(scenario.services.iter().map(|x| {
            let most = x.autoscale.map_or(x.instances, |a| a.max.max(x.instances));
            label_text(
                &x.name,
                NodeShape::Service(x.kind),
                most.saturating_sub(1),
                most,
            )
        }))
        .collect();
    let gap = node_gap(labels.iter().map(String::as_str));
    let cap = fold_width(&sizes, gap);
    let mut out = BTreeMap::new();
    let mut y = 0.0;
    for row in &rows {
        let subrows = subrow_count(row.len(), cap);
        let width = layer_width(row.len(), subrows, gap);
        for (i, name) in row.iter().enumerate() {
            // Down each column, then the next, each sub-row a step further right: x grows
            // with the row's order, and an edge leaving an upper sub-row passes between the
            // nodes below it rather than through them.
            let subrow = i % subrows;
            out.insert(
                name.clone(),
                Vec2::new(
                    i as f32 * gap / subrows as f32 - width / 2.0,
                    y - subrow as f32 * SUBROW_GAP,
                ),
            );
        }
        y -= (subrows - 1) as f32 * SUBROW_GAP + LAYER_GAP;
    }
    // Dragged positions win.
    for s in &scenario.sources {
        if let Some(p) = s.position {
            out.insert(s.name.clone(), Vec2::new(p.x, p.y));
        }
    }
    for s in &scenario.services {
        if let Some(p) = s.position {
            out.insert(s.name.clone(), Vec2::new(p.x, p.y));
        }
    }
    out
}

/// Axis-aligned bounds of a set of positions, padded by `pad`.
pub fn bounds(points: impl Iterator<Item = Vec2>, pad: f32) -> Option<(Vec2, Vec2)> {
    let mut it = points.peekable();
    it.peek()?;
    let (mut lo, mut hi) = (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN));
    for p in it {
        lo = lo.min(p);
        hi = hi.max(p);
    }
    Some((lo - Vec2::splat(pad), hi + Vec2::splat(pad)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_sim::generate::{LayeredParams, layered};

    fn retry_storm() -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios/teaching/retry-storm.ron");
        cascade_sim::scenario::load(&path).unwrap()
    }

    /// Every node's label of `chars` characters ends before the next node to its right.
    #[track_caller]
    fn labels_end_before_their_neighbours(pos: &BTreeMap<String, Vec2>, chars: usize) {
        let label_end = LABEL_X + chars as f32 * 0.6 * NAME_FONT_PX;
        for (a, pa) in pos {
            for (b, pb) in pos {
                if a != b && (pa.y - pb.y).abs() < 1.0 && pb.x > pa.x {
                    assert!(
                        pb.x - NODE_RADIUS - pa.x >= label_end,
                        "{a}'s label runs into {b}: {} apart",
                        pb.x - pa.x
                    );
                }
            }
        }
    }

    fn shipped(rel: &str) -> Scenario {
        cascade_sim::scenario::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scenarios")
                .join(rel),
        )
        .unwrap()
    }

    #[test]
    fn long_names_widen_the_layer_so_labels_end_before_the_next_node() {
        // The S3 reconstruction's sources and queues: names up to 20 characters, at 16 px
        // and about 0.6 em a character 192 px of text starting 56 px right of the node.
        let s = shipped("incidents/s3-2017.ron");
        let pos = layout(&s);
        let longest = pos.keys().map(|n| n.chars().count()).max().unwrap();
        assert_eq!(longest, 20);
        labels_end_before_their_neighbours(&pos, 20);
        // Roblox's game services lose instances to failed discovery refreshes: at 400 s the
        // label reads `game_svcs ×10 (7 serving)`, 25 characters, which ran into vault.
        let pos = layout(&shipped("incidents/roblox-2021.ron"));
        labels_end_before_their_neighbours(&pos, "game_svcs ×10 (9 serving)".chars().count());
        // Short names keep the usual spacing.
        assert_eq!(
            node_gap(["users", "gateway", "orders"].into_iter()),
            NODE_GAP
        );
    }

    #[test]
    fn callers_are_above_callees() {
        let s = retry_storm();
        let p = layout(&s);
        assert!(
            p["users"].y > p["gateway"].y
                && p["gateway"].y > p["orders"].y
                && p["orders"].y > p["db"].y,
            "{p:?}"
        );
    }

    #[test]
    fn every_node_gets_a_distinct_position() {
        let s = layered(&LayeredParams {
            services: 200,
            depth: 5,
            ..Default::default()
        });
        let p = layout(&s);
        assert_eq!(p.len(), s.services.len() + s.sources.len());
        let mut seen: Vec<(i64, i64)> = p
            .values()
            .map(|v| (v.x.round() as i64, v.y.round() as i64))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), p.len(), "no two nodes overlap");
    }

    #[test]
    fn small_graphs_are_not_folded() {
        // The retry storm: layers of 1, 1, 2 and 1 nodes, taller than wide.
        assert_eq!(fold_width(&[1, 1, 2, 1], NODE_GAP), 2);
        let p = layout(&retry_storm());
        assert_eq!(
            p["catalog"].y, p["orders"].y,
            "one row for the two of layer 2"
        );
    }

    #[test]
    fn wide_layers_fold_towards_the_canvas_shape_and_keep_callers_above() {
        // 200 services in 4 layers of 50 under 50 sources: unfolded, 12,250 × 600 world
        // units (aspect 20).
        let s = layered(&LayeredParams {
            services: 200,
            ..Default::default()
        });
        let graph = DependencyGraph::from_scenario(&s);
        let layers: BTreeMap<String, usize> = graph.layers().into_iter().collect();
        let p = layout(&s);
        let (lo, hi) = bounds(p.values().copied(), 0.0).unwrap();
        let aspect = (hi.x - lo.x) / (hi.y - lo.y);
        assert!(
            (aspect / TARGET_ASPECT).ln().abs() < 2f32.ln(),
            "within ×2 of {TARGET_ASPECT}: {aspect}"
        );
        // Every caller is above every callee's layer.
        for (a, b) in graph.edges() {
            assert!(
                p[a.as_str()].y > p[b.as_str()].y,
                "{a} (layer {}) above {b} (layer {})",
                layers[a.as_str()],
                layers[b.as_str()]
            );
        }
        // Sub-rows of a layer are SUBROW_GAP apart and layers LAYER_GAP apart.
        let mut ys: Vec<i64> = p.values().map(|v| v.y.round() as i64).collect();
        ys.sort_unstable();
        ys.dedup();
        for pair in ys.windows(2) {
            let gap = (pair[1] - pair[0]) as f32;
            assert!(gap == SUBROW_GAP || gap == LAYER_GAP, "{ys:?}");
        }
    }

    #[test]
    fn the_fold_is_the_one_nearest_the_target_shape() {
        // Five layers of ten, by hand (a layer of n in k sub-rows is (n − 1)·250/k wide; the
        // height is 4·150 plus 110 per extra sub-row): unfolded 2,250 × 600 (aspect 3.75,
        // |ln(3.75/1.8)| = 0.734); two sub-rows 1,125 × 1,150 (0.978, 0.610). Nearer, but not
        // by ln 1.5 = 0.405: unfolded.
        assert_eq!(subrow_count(10, fold_width(&[10; 5], NODE_GAP)), 1);
        // Five layers of fifty (200 generated services under their 50 sources): unfolded
        // 12,250 × 600 (20.4, 2.43); three sub-rows 4,083 × 1,700 (2.40, 0.289); four
        // 3,063 × 2,250 (1.36, 0.280); five 2,450 × 2,800 (0.875, 0.721). Four, of 13 nodes.
        let k = subrow_count(50, fold_width(&[50; 5], NODE_GAP));
        assert_eq!((k, 50usize.div_ceil(k)), (4, 13));
    }

    #[test]
    fn dragged_positions_win() {
        let mut s = retry_storm();
        s.services[0].position = Some(cascade_sim::scenario::Position { x: 999.0, y: -5.0 });
        assert_eq!(
            layout(&s)[s.services[0].name.as_str()],
            Vec2::new(999.0, -5.0)
        );
    }

    #[test]
    fn barycentre_ordering_uncrosses_a_simple_swap() {
        // a→d, b→c with c listed before d: the lower row should follow the upper one.
        let text = r#"(version: 1, name: "x", duration_s: 1,
            sources: [(name: "a", target: "d", rate: Constant(1)), (name: "b", target: "c", rate: Constant(1))],
            services: [(name: "c", workers: 1, service_time: Exponential(mean_ms: 1.0)),
                       (name: "d", workers: 1, service_time: Exponential(mean_ms: 1.0))])"#;
        let s = Scenario::from_ron_str(text, "t").unwrap();
        let p = layout(&s);
        assert!(p["d"].x < p["c"].x, "d sits under a, c under b: {p:?}");
    }
}
