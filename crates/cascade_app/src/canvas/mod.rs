//! The canvas: the dependency graph drawn with Bevy 2D, alive with the simulation.
//!
//! Owns the graph's entities (nodes, edges, particles), the camera and pointer interaction.
//! It only *reads* the simulation (state components, metrics history, sampled legs) and the
//! document; every change the user makes on the canvas leaves as an `AppAction`.
//!
//! # Plugins
//!
//! | module | does |
//! |---|---|
//! | [`layout`] | automatic layered layout (pure) |
//! | `camera` | pan, zoom around the cursor, fit to view |
//! | `nodes` | node bodies by kind, health fill, utilisation ring, queue bar, fault badge, pulses |
//! | `edges` | call edges: width by traffic (log), colour by error share, arrowheads, failure path |
//! | `particles` | sampled real requests moving along edges, shaped by outcome |
//! | `interact` | hit testing, select, drag, right-click menus, connect-by-drag in build mode |

mod camera;
mod edges;
mod interact;
pub mod layout;
mod nodes;
mod particles;

use std::collections::BTreeMap;

use bevy::prelude::*;
use cascade_sim::scenario::{FanOut, NodeKind, Scenario};
use cascade_sim::{Engine, NodeRef};

pub use camera::CanvasCamera;
pub use interact::{BuildTool, CanvasPointer, ContextMenu, ContextTarget};
pub use nodes::InstanceSummary;
pub use particles::{ParticleDensity, clear_particles};

use crate::session::Document;

/// Canvas plugin.
pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<CanvasGraph>()
        .init_resource::<CanvasRect>()
        .add_systems(Startup, setup_canvas)
        .add_systems(
            Update,
            rebuild_graph
                .in_set(crate::AppSystems::Apply)
                .after(crate::session::apply_actions),
        )
        .add_plugins((
            camera::plugin,
            nodes::plugin,
            edges::plugin,
            particles::plugin,
            interact::plugin,
        ));
}

/// The text font of the canvas (DejaVu Sans, embedded: it has the glyphs we use, like ×).
#[derive(Resource, Clone)]
pub struct CanvasFont(pub Handle<Font>);

/// The part of the window not covered by panels, in logical pixels (set by the UI each frame).
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct CanvasRect {
    /// Top-left corner.
    pub min: Vec2,
    /// Bottom-right corner.
    pub max: Vec2,
    /// Size of what the UI draws over the canvas's top-left corner (the story banner, with
    /// its margin); zero when nothing. A fit keeps the graph clear of it.
    pub overlay: Vec2,
}

/// What a canvas node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeShape {
    /// A traffic source.
    Client,
    /// A service of this kind.
    Service(NodeKind),
}

/// One node on the canvas.
#[derive(Debug, Clone)]
pub struct CanvasNode {
    /// Name.
    pub name: String,
    /// Model reference (source or service index).
    pub node: NodeRef,
    /// Drawn as.
    pub shape: NodeShape,
    /// Root entity.
    pub entity: Entity,
}

/// One call edge on the canvas.
#[derive(Debug, Clone)]
pub struct CanvasEdge {
    /// Caller name.
    pub from: String,
    /// Callee name.
    pub to: String,
    /// Model links carrying this edge (a caller may call a callee more than once).
    pub links: Vec<u32>,
    /// How a parallel fan-out uses the edge ([`fan_out_note`]); empty for sequential calls.
    pub note: String,
    /// Root entity.
    pub entity: Entity,
}

/// The graph as drawn, and positions (world units) by node name.
#[derive(Resource, Debug, Default)]
pub struct CanvasGraph {
    /// Nodes in scenario order (sources, then services).
    pub nodes: Vec<CanvasNode>,
    /// Edges in scenario order.
    pub edges: Vec<CanvasEdge>,
    /// World positions by name.
    pub positions: BTreeMap<String, Vec2>,
    /// Document version and model shape this was built for.
    built_for: Option<(u64, usize, usize, usize)>,
}

impl CanvasGraph {
    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&CanvasNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Position of a node.
    pub fn pos(&self, name: &str) -> Vec2 {
        self.positions.get(name).copied().unwrap_or_default()
    }

    /// Position of a model node.
    pub fn pos_of(&self, node: NodeRef) -> Option<Vec2> {
        self.nodes
            .iter()
            .find(|n| n.node == node)
            .map(|n| self.pos(&n.name))
    }
}

/// Marks a node's root entity.
#[derive(Component, Debug, Clone)]
pub struct NodeVisual {
    /// Node name.
    pub name: String,
}

/// Marks an edge's root entity.
#[derive(Component, Debug, Clone)]
pub struct EdgeVisual {
    /// Index in `CanvasGraph::edges`.
    pub index: usize,
}

fn setup_canvas(mut commands: Commands, mut fonts: ResMut<Assets<Font>>) {
    let font = fonts.add(Font::from_bytes(
        include_bytes!("../../../../assets/fonts/DejaVuSans.ttf").to_vec(),
    ));
    commands.insert_resource(CanvasFont(font));
    commands.insert_resource(ClearColor(crate::theme::BACKGROUND));
}

/// Rebuilds the node and edge entities when the document's structure or the model changed.
fn rebuild_graph(
    mut commands: Commands,
    doc: Res<Document>,
    engine: Res<Engine>,
    mut graph: ResMut<CanvasGraph>,
    font: Res<CanvasFont>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    let key = (
        doc.version,
        engine.model.sources.len(),
        engine.model.services.len(),
        engine.model.links.len(),
    );
    if graph.built_for == Some(key) || !engine.loaded {
        return;
    }
    let positions = layout::layout(&doc.scenario);
    let same_structure = graph.built_for.is_some()
        && {
            let names: Vec<&str> = doc.scenario.node_names().collect();
            names.len() == graph.nodes.len()
                && names.iter().zip(&graph.nodes).all(|(a, n)| *a == n.name)
        }
        && {
            let edges = edge_list(&doc.scenario);
            edges.len() == graph.edges.len()
                && edges
                    .iter()
                    .zip(&graph.edges)
                    .all(|((f, t), e)| *f == e.from && *t == e.to)
        };
    graph.positions = positions;
    graph.built_for = Some(key);
    if same_structure {
        // Only positions or parameters changed: entities stay, transforms and notes follow.
        for e in &mut graph.edges {
            e.note = fan_out_note(&doc.scenario, &e.from, &e.to);
        }
        return;
    }
    for n in graph.nodes.drain(..) {
        commands.entity(n.entity).despawn();
    }
    for e in graph.edges.drain(..) {
        commands.entity(e.entity).despawn();
    }
    let mut nodes = Vec::new();
    for s in &doc.scenario.sources {
        let Some(i) = engine.model.source_index(&s.name) else {
            continue;
        };
        let entity = nodes::spawn_node(
            &mut commands,
            &mut meshes,
            &mut materials,
            &font.0,
            &s.name,
            NodeShape::Client,
            1,
            graph.pos(&s.name),
        );
        nodes.push(CanvasNode {
            name: s.name.clone(),
            node: NodeRef::Source(i),
            shape: NodeShape::Client,
            entity,
        });
    }
    for s in &doc.scenario.services {
        let Some(i) = engine.model.service_index(&s.name) else {
            continue;
        };
        let shape = NodeShape::Service(s.kind);
        let entity = nodes::spawn_node(
            &mut commands,
            &mut meshes,
            &mut materials,
            &font.0,
            &s.name,
            shape,
            s.instances,
            graph.pos(&s.name),
        );
        nodes.push(CanvasNode {
            name: s.name.clone(),
            node: NodeRef::Service(i),
            shape,
            entity,
        });
    }
    let mut edges = Vec::new();
    for (from, to) in edge_list(&doc.scenario) {
        let caller = engine
            .model
            .source_index(&from)
            .map(NodeRef::Source)
            .or_else(|| engine.model.service_index(&from).map(NodeRef::Service));
        let links: Vec<u32> = match (caller, engine.model.service_index(&to)) {
            (Some(c), Some(t)) => engine.model.links_between(c, t).collect(),
            _ => Vec::new(),
        };
        let index = edges.len();
        let entity = edges::spawn_edge(&mut commands, &mut meshes, &mut materials, &font.0, index);
        edges.push(CanvasEdge {
            note: fan_out_note(&doc.scenario, &from, &to),
            from,
            to,
            links,
            entity,
        });
    }
    graph.nodes = nodes;
    graph.edges = edges;
}

/// Every distinct caller → callee pair of the document, in file order: every pair that
/// carries messages (`Scenario::link_targets`: a source's target, a service's calls, its
/// cache's backing fills, its work queue's deliveries, its startup and periodic calls, and the
/// standby path to the replica of a primary it calls, used once promoted). A primary itself
/// never calls its replica.
pub fn edge_list(scenario: &Scenario) -> Vec<(String, String)> {
    scenario
        .node_names()
        .flat_map(|from| {
            scenario
                .link_targets(from)
                .into_iter()
                .map(move |to| (from.to_owned(), to.to_owned()))
        })
        .collect()
}

/// The note on edge `from` → `to` when `from` fans out in parallel: its branches on this edge
/// per request ("×20 in parallel"), and for a quorum how many of all branches it waits for
/// ("×3 in parallel, 2 of 3"). Empty otherwise.
pub fn fan_out_note(scenario: &Scenario, from: &str, to: &str) -> String {
    let Some(service) = scenario.services.iter().find(|s| s.name == from) else {
        return String::new();
    };
    let here = service.calls_sent(Some(to));
    if here == 0 {
        return String::new();
    }
    match service.fan_out {
        FanOut::Sequential => String::new(),
        FanOut::Parallel => format!("×{here} in parallel"),
        FanOut::Quorum(k) => format!("×{here} in parallel, {k} of {}", service.calls_sent(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_edges_say_how_many_branches_and_the_quorum() {
        let s = shipped(include_str!(
            "../../../../scenarios/mechanisms/parallel-fan-out.ron"
        ));
        assert_eq!(fan_out_note(&s, "search", "shard"), "×20 in parallel");
        assert_eq!(
            fan_out_note(&s, "search-partial", "shard"),
            "×20 in parallel, 16 of 20"
        );
        assert_eq!(fan_out_note(&s, "users", "search"), "", "a source's call");
        let seq = shipped(include_str!("../../../../scenarios/bench/three-tier.ron"));
        assert_eq!(fan_out_note(&seq, "api", "db"), "", "sequential calls");
    }

    fn shipped(text: &str) -> Scenario {
        Scenario::from_ron_str(text, "shipped").expect("a shipped scenario loads")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn every_pair_that_carries_messages_is_an_edge() {
        let cache = shipped(include_str!(
            "../../../../scenarios/mechanisms/cache-cold-lock.ron"
        ));
        assert_eq!(
            edge_list(&cache),
            pairs(&[("clients", "cache"), ("cache", "db")]),
            "a cache's backing fills"
        );
        let queue = shipped(include_str!(
            "../../../../scenarios/mechanisms/work-queue-backlog.ron"
        ));
        assert_eq!(
            edge_list(&queue),
            pairs(&[("producers", "jobs"), ("jobs", "workers")]),
            "a work queue's deliveries"
        );
        let startup = shipped(include_str!(
            "../../../../scenarios/mechanisms/control-plane-restart.ron"
        ));
        assert_eq!(
            edge_list(&startup),
            pairs(&[("users", "api"), ("api", "dns")]),
            "startup calls"
        );
        let failover = shipped(include_str!(
            "../../../../scenarios/mechanisms/failover-partition.ron"
        ));
        assert_eq!(
            edge_list(&failover),
            pairs(&[("users", "api"), ("api", "db-east"), ("api", "db-west")]),
            "the standby path to a replica, not one from its primary"
        );
    }
}
