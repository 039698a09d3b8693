//! The dependency graph of a scenario: which service calls which.
//!
//! Pure data on `petgraph::stable_graph::StableDiGraph`, built from a [`Scenario`]; used by
//! validation (self-calls, synchronous call cycles), by the app's automatic layered layout
//! and by the engine's compiler for call targets. Node indices follow file order (sources
//! first, then services), so everything derived from it is deterministic. It owns no
//! simulation state.

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef as _, IntoEdgeReferences as _};

use crate::scenario::Scenario;

/// Whether a graph node is a traffic source or a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphNodeKind {
    /// A traffic source (only has outgoing edges).
    Source,
    /// A service.
    Service,
}

/// A node of the dependency graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphNode {
    /// Node name from the scenario.
    pub name: String,
    /// Source or service.
    pub kind: GraphNodeKind,
}

/// Why one node depends on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// A synchronous call on a request's path (a source's target, a service's call, a
    /// cache's backing fill).
    Request,
    /// A work queue delivering items to its consumer (asynchronous).
    Delivery,
    /// An instance's startup or periodic call (not on a request's path).
    Lifecycle,
    /// A primary's replica, used after a failover.
    Failover,
}

/// Which service calls which (sources included as callers).
#[derive(Clone, Debug, Default)]
pub struct DependencyGraph {
    graph: StableDiGraph<GraphNode, EdgeKind>,
    order: Vec<NodeIndex>,
}

impl DependencyGraph {
    /// Builds the graph; calls to unknown names are skipped (validation reports them).
    pub fn from_scenario(scenario: &Scenario) -> DependencyGraph {
        let mut graph = StableDiGraph::new();
        let mut order = Vec::new();
        for source in &scenario.sources {
            order.push(graph.add_node(GraphNode {
                name: source.name.clone(),
                kind: GraphNodeKind::Source,
            }));
        }
        for service in &scenario.services {
            order.push(graph.add_node(GraphNode {
                name: service.name.clone(),
                kind: GraphNodeKind::Service,
            }));
        }
        let mut g = DependencyGraph { graph, order };
        for source in &scenario.sources {
            g.add_edge_by_name(&source.name, &source.target, EdgeKind::Request);
        }
        for service in &scenario.services {
            if let Some(cache) = &service.cache {
                g.add_edge_by_name(&service.name, &cache.backing.to, EdgeKind::Request);
            }
            for call in &service.calls {
                g.add_edge_by_name(&service.name, &call.to, EdgeKind::Request);
            }
        }
        for service in &scenario.services {
            if let Some(queue) = &service.work_queue {
                g.add_edge_by_name(&service.name, &queue.consumer, EdgeKind::Delivery);
            }
            let lifecycle = &service.lifecycle;
            for call in lifecycle
                .startup_calls
                .iter()
                .chain(lifecycle.periodic.iter().map(|p| &p.call))
            {
                g.add_edge_by_name(&service.name, &call.to, EdgeKind::Lifecycle);
            }
            if let Some(failover) = &service.failover {
                g.add_edge_by_name(&service.name, &failover.replica, EdgeKind::Failover);
            }
        }
        g
    }

    fn index_of(&self, name: &str) -> Option<NodeIndex> {
        self.order
            .iter()
            .copied()
            .find(|&i| self.graph[i].name == name)
    }

    fn add_edge_by_name(&mut self, from: &str, to: &str, kind: EdgeKind) {
        if let (Some(a), Some(b)) = (self.index_of(from), self.index_of(to))
            && self.graph[b].kind == GraphNodeKind::Service
            && self.graph.find_edge(a, b).is_none()
        {
            self.graph.add_edge(a, b, kind);
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    /// A cycle of synchronous request calls as node names, first name repeated at the end
    /// (`["api", "db", "api"]`), or `None`. Deterministic: the cycle found from the first node
    /// in file order, following calls in file order.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let n = self.order.len();
        let pos = |i: NodeIndex| self.order.iter().position(|&o| o == i).unwrap_or(0);
        let mut mark = vec![Mark::New; n];
        for &start in &self.order {
            if mark[pos(start)] != Mark::New {
                continue;
            }
            // Iterative DFS with an explicit stack of (node, next-child cursor).
            let mut stack: Vec<(NodeIndex, usize)> = vec![(start, 0)];
            mark[pos(start)] = Mark::OnStack;
            while let Some(&mut (node, ref mut cursor)) = stack.last_mut() {
                let children = self.callees_of_kind(node, Some(EdgeKind::Request));
                if *cursor < children.len() {
                    let child = children[*cursor];
                    *cursor += 1;
                    match mark[pos(child)] {
                        Mark::New => {
                            mark[pos(child)] = Mark::OnStack;
                            stack.push((child, 0));
                        }
                        Mark::OnStack => {
                            let from = stack.iter().position(|&(s, _)| s == child).unwrap_or(0);
                            let mut names: Vec<String> = stack[from..]
                                .iter()
                                .map(|&(s, _)| self.graph[s].name.clone())
                                .collect();
                            names.push(self.graph[child].name.clone());
                            return Some(names);
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[pos(node)] = Mark::Done;
                    stack.pop();
                }
            }
        }
        None
    }

    /// Callees of a node in the order their edges were added (file order).
    fn callees(&self, node: NodeIndex) -> Vec<NodeIndex> {
        self.callees_of_kind(node, None)
    }

    /// Callees over edges of one kind (or all), in the order the edges were added.
    fn callees_of_kind(&self, node: NodeIndex, kind: Option<EdgeKind>) -> Vec<NodeIndex> {
        let mut edges: Vec<_> = self
            .graph
            .edges(node)
            .filter(|e| kind.is_none_or(|k| *e.weight() == k))
            .map(|e| (e.id(), e.target()))
            .collect();
        edges.sort_by_key(|&(id, _)| id.index());
        edges.into_iter().map(|(_, t)| t).collect()
    }

    /// Layer of every node for a top-to-bottom layout: sources and uncalled services in layer
    /// 0, every callee at least one layer below each of its callers (longest path), and a
    /// failover replica in its primary's layer (beside it: the primary never calls it).
    /// Returns `(name, layer)` in file order. On a cycle, back edges are ignored.
    pub fn layers(&self) -> Vec<(String, usize)> {
        let n = self.order.len();
        // Nodes are never removed, so a node's index is its place in file order.
        let pos = |i: NodeIndex| i.index();
        debug_assert!(self.order.iter().enumerate().all(|(k, &i)| pos(i) == k));
        let edges: Vec<(usize, usize, usize)> = self
            .graph
            .edge_references()
            .map(|e| {
                let step = usize::from(*e.weight() != EdgeKind::Failover);
                (pos(e.source()), pos(e.target()), step)
            })
            .collect();
        let mut layer = vec![0usize; n];
        // Relax edges n times (Bellman-Ford style longest path); bounded so cycles terminate.
        for _ in 0..n {
            let mut changed = false;
            for &(pa, pb, step) in &edges {
                if layer[pb] < layer[pa] + step && layer[pa] + step < n.max(1) {
                    layer[pb] = layer[pa] + step;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        self.order
            .iter()
            .map(|&i| (self.graph[i].name.clone(), layer[pos(i)]))
            .collect()
    }

    /// Every edge as `(caller, callee)` names, in file order.
    pub fn edges(&self) -> Vec<(String, String)> {
        self.edges_with_kind()
            .into_iter()
            .map(|(a, b, _)| (a, b))
            .collect()
    }

    /// Every edge as `(caller, callee, kind)`, in file order.
    pub fn edges_with_kind(&self) -> Vec<(String, String, EdgeKind)> {
        self.order
            .iter()
            .flat_map(|&a| self.callees(a).into_iter().map(move |b| (a, b)))
            .map(|(a, b)| {
                let kind = self
                    .graph
                    .find_edge(a, b)
                    .map_or(EdgeKind::Request, |e| self.graph[e]);
                (self.graph[a].name.clone(), self.graph[b].name.clone(), kind)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(calls: &[(&str, &str)]) -> Scenario {
        let mut names: Vec<&str> = Vec::new();
        for &(a, b) in calls {
            for n in [a, b] {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let services = names
            .iter()
            .map(|&n| {
                let calls = calls
                    .iter()
                    .filter(|(a, _)| *a == n)
                    .map(|(_, b)| crate::scenario::CallSpec {
                        to: (*b).to_owned(),
                        ..Default::default()
                    })
                    .collect();
                crate::scenario::ServiceSpec {
                    name: n.to_owned(),
                    calls,
                    ..Default::default()
                }
            })
            .collect();
        Scenario {
            name: "t".into(),
            services,
            ..Default::default()
        }
    }

    #[test]
    fn asynchronous_and_lifecycle_edges_do_not_make_cycles() {
        // a → b synchronously; b's lifecycle calls a and its queue delivers to a: no request cycle.
        let mut s = scenario(&[("a", "b")]);
        let b = s.services.iter_mut().find(|x| x.name == "b").expect("b");
        b.lifecycle.startup_calls.push(crate::scenario::CallSpec {
            to: "a".into(),
            ..Default::default()
        });
        b.work_queue = Some(crate::scenario::WorkQueueSpec {
            consumer: "a".into(),
            concurrency: 1,
            rate_per_s: None,
            ttl_s: None,
            max_deliveries: 1,
            dead_letter: true,
            timeout_ms: None,
            latency_ms: 1.0,
        });
        let g = DependencyGraph::from_scenario(&s);
        assert_eq!(g.find_cycle(), None);
        let kinds: Vec<EdgeKind> = g.edges_with_kind().into_iter().map(|(_, _, k)| k).collect();
        assert_eq!(kinds, vec![EdgeKind::Request, EdgeKind::Delivery]);
    }

    #[test]
    fn acyclic_graph_has_no_cycle() {
        let g = DependencyGraph::from_scenario(&scenario(&[("a", "b"), ("b", "c"), ("a", "c")]));
        assert_eq!(g.find_cycle(), None);
    }

    #[test]
    fn cycle_is_reported_as_a_path() {
        let g = DependencyGraph::from_scenario(&scenario(&[("a", "b"), ("b", "c"), ("c", "a")]));
        assert_eq!(
            g.find_cycle(),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }

    #[test]
    fn self_call_is_a_cycle() {
        let g = DependencyGraph::from_scenario(&scenario(&[("a", "a")]));
        assert_eq!(g.find_cycle(), Some(vec!["a".into(), "a".into()]));
    }

    #[test]
    fn layers_put_callees_below_all_callers() {
        let g = DependencyGraph::from_scenario(&scenario(&[("a", "b"), ("b", "c"), ("a", "c")]));
        assert_eq!(
            g.layers(),
            vec![("a".into(), 0), ("b".into(), 1), ("c".into(), 2)]
        );
    }

    #[test]
    fn a_failover_replica_sits_beside_its_primary() {
        let mut s = scenario(&[("api", "db-east")]);
        s.services.push(crate::scenario::ServiceSpec {
            name: "db-west".into(),
            ..Default::default()
        });
        let east = s
            .services
            .iter_mut()
            .find(|x| x.name == "db-east")
            .expect("east");
        east.failover = Some(crate::scenario::FailoverSpec {
            replica: "db-west".into(),
            detection_s: 10.0,
            hold_down_s: 0.0,
            replica_latency_ms: 60.0,
        });
        let g = DependencyGraph::from_scenario(&s);
        assert_eq!(
            g.layers(),
            vec![
                ("api".into(), 0),
                ("db-east".into(), 1),
                ("db-west".into(), 1)
            ]
        );
    }
}
