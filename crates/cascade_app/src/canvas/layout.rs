//! Automatic layered layout: clients at the top, storage at the bottom.
//!
//! Pure function over the scenario: each node's layer is its longest call-path depth
//! (`DependencyGraph::layers`); within a layer nodes are ordered by the barycentre of their
//! neighbours in the layer above, a few sweeps down and up (Sugiyama-style crossing
//! reduction); positions the user has dragged (stored in the scenario) always win.

use std::collections::BTreeMap;

use bevy::math::Vec2;
use cascade_sim::graph::DependencyGraph;
use cascade_sim::scenario::Scenario;

/// Vertical distance between layers, world units.
pub const LAYER_GAP: f32 = 150.0;
/// Horizontal distance between neighbours in a layer, world units: wide enough for a label
/// such as "1,000/s · p99 300 ms" beside its node.
pub const NODE_GAP: f32 = 250.0;

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
    let mut out = BTreeMap::new();
    for (r, row) in rows.iter().enumerate() {
        let width = (row.len().saturating_sub(1)) as f32 * NODE_GAP;
        for (i, name) in row.iter().enumerate() {
            out.insert(
                name.clone(),
                Vec2::new(i as f32 * NODE_GAP - width / 2.0, -(r as f32) * LAYER_GAP),
            );
        }
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
