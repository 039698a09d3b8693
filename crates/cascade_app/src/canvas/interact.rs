//! Pointer interaction on the canvas: hit testing, selection, dragging nodes, panning,
//! right-click fault menus and, in build mode, connecting two nodes by dragging from one to
//! the other. Everything that changes the document leaves as an `AppAction`.

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_egui::input::egui_wants_any_pointer_input;
use cascade_sim::scenario::{CallSpec, Position};

use super::CanvasGraph;
use super::camera::{CanvasCamera, scale_of};
use crate::session::{AppAction, Document, Selection};
use crate::theme::NODE_RADIUS;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<CanvasPointer>()
        .init_resource::<BuildTool>()
        .init_resource::<ContextMenu>()
        .add_systems(
            Update,
            (
                track_pointer,
                press.run_if(not(egui_wants_any_pointer_input)),
                drag_and_release,
                draw_connect_preview,
            )
                .chain()
                .in_set(crate::AppSystems::Input),
        );
}

/// What the pointer is over.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Hit {
    /// Empty canvas.
    #[default]
    Nothing,
    /// A node, by name.
    Node(String),
    /// An edge, by index in the canvas graph.
    Edge(usize),
}

#[derive(Debug, Clone, PartialEq, Default)]
enum Drag {
    #[default]
    None,
    Pan {
        last: Vec2,
    },
    Move {
        name: String,
        offset: Vec2,
        moved: bool,
    },
    Connect {
        from: String,
    },
}

/// Pointer state on the canvas.
#[derive(Resource, Debug, Default)]
pub struct CanvasPointer {
    /// Cursor in world units, when over the window.
    pub world: Option<Vec2>,
    /// Cursor in logical pixels.
    pub screen: Option<Vec2>,
    /// What is under it.
    pub hover: Hit,
    drag: Drag,
}

/// Build mode and its tool.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BuildTool {
    /// Build mode is on (palette shown, drags connect nodes).
    pub building: bool,
}

/// What a right-click menu is about.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextTarget {
    /// A node.
    Node(String),
    /// A call edge.
    Edge(String, String),
}

/// An open right-click menu (drawn by the UI).
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ContextMenu {
    /// Target and screen position, when open.
    pub open: Option<(ContextTarget, Vec2)>,
}

/// What is under world point `p`: nodes first (nearest within their radius), then edges
/// (within a few units of the segment).
pub fn hit_test(graph: &CanvasGraph, p: Vec2, tolerance: f32) -> Hit {
    let node = graph
        .nodes
        .iter()
        .map(|n| (n, graph.pos(&n.name).distance(p)))
        .filter(|(_, d)| *d <= NODE_RADIUS + tolerance)
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((n, _)) = node {
        return Hit::Node(n.name.clone());
    }
    for (i, e) in graph.edges.iter().enumerate() {
        let (a, b) = (graph.pos(&e.from), graph.pos(&e.to));
        if segment_distance(p, a, b) <= 6.0 + tolerance {
            return Hit::Edge(i);
        }
    }
    Hit::Nothing
}

fn segment_distance(p: Vec2, a: Vec2, b: Vec2) -> f32 {
    let ab = b - a;
    let t = if ab.length_squared() == 0.0 {
        0.0
    } else {
        ((p - a).dot(ab) / ab.length_squared()).clamp(0.0, 1.0)
    };
    p.distance(a + ab * t)
}

fn track_pointer(
    window: Single<&Window, With<PrimaryWindow>>,
    camera: Single<(&Camera, &GlobalTransform, &Projection), With<CanvasCamera>>,
    graph: Res<CanvasGraph>,
    mut pointer: ResMut<CanvasPointer>,
) {
    let (camera, transform, projection) = *camera;
    pointer.screen = window.cursor_position();
    pointer.world = pointer
        .screen
        .and_then(|c| camera.viewport_to_world_2d(transform, c).ok());
    pointer.hover = pointer.world.map_or(Hit::Nothing, |w| {
        hit_test(&graph, w, 4.0 * scale_of(projection))
    });
}

fn press(
    buttons: Res<ButtonInput<MouseButton>>,
    mut pointer: ResMut<CanvasPointer>,
    graph: Res<CanvasGraph>,
    tool: Res<BuildTool>,
    mut menu: ResMut<ContextMenu>,
    mut actions: MessageWriter<AppAction>,
    selection: Res<Selection>,
) {
    let (Some(world), Some(screen)) = (pointer.world, pointer.screen) else {
        return;
    };
    if buttons.just_pressed(MouseButton::Left) {
        menu.open = None;
        match pointer.hover.clone() {
            Hit::Node(name) => {
                actions.write(AppAction::Select(Selection {
                    node: Some(name.clone()),
                    edge: None,
                    fault: selection.fault,
                }));
                pointer.drag = if tool.building {
                    Drag::Connect { from: name }
                } else {
                    let offset = world - graph.pos(&name);
                    Drag::Move {
                        name,
                        offset,
                        moved: false,
                    }
                };
            }
            Hit::Edge(i) => {
                let e = &graph.edges[i];
                actions.write(AppAction::Select(Selection {
                    node: None,
                    edge: Some((e.from.clone(), e.to.clone())),
                    fault: selection.fault,
                }));
            }
            Hit::Nothing => {
                actions.write(AppAction::Select(Selection::default()));
                pointer.drag = Drag::Pan { last: screen };
            }
        }
    }
    if buttons.just_pressed(MouseButton::Right) {
        menu.open = match pointer.hover.clone() {
            Hit::Node(name) => Some((ContextTarget::Node(name), screen)),
            Hit::Edge(i) => Some((
                ContextTarget::Edge(graph.edges[i].from.clone(), graph.edges[i].to.clone()),
                screen,
            )),
            Hit::Nothing => None,
        };
    }
}

fn drag_and_release(
    buttons: Res<ButtonInput<MouseButton>>,
    mut pointer: ResMut<CanvasPointer>,
    mut graph: ResMut<CanvasGraph>,
    doc: Res<Document>,
    mut camera: Single<(&mut Transform, &Projection), With<CanvasCamera>>,
    mut actions: MessageWriter<AppAction>,
) {
    let released = buttons.just_released(MouseButton::Left) || !buttons.pressed(MouseButton::Left);
    let drag = std::mem::take(&mut pointer.drag);
    pointer.drag = match drag {
        Drag::None => Drag::None,
        Drag::Pan { last } => match pointer.screen {
            Some(now) if !released => {
                let (transform, projection) = &mut *camera;
                let delta = (now - last) * Vec2::new(-1.0, 1.0) * scale_of(projection);
                transform.translation += delta.extend(0.0);
                Drag::Pan { last: now }
            }
            _ => Drag::None,
        },
        Drag::Move {
            name,
            offset,
            moved,
        } => {
            if released {
                if moved {
                    let p = graph.pos(&name);
                    actions.write(AppAction::Edit {
                        scenario: Box::new(with_position(&doc, &name, p)),
                        label: format!("move {name}"),
                    });
                }
                Drag::None
            } else {
                let mut moved = moved;
                if let Some(w) = pointer.world {
                    let target = w - offset;
                    if target.distance(graph.pos(&name)) > 0.5 {
                        graph.positions.insert(name.clone(), target);
                        moved = true;
                    }
                }
                Drag::Move {
                    name,
                    offset,
                    moved,
                }
            }
        }
        Drag::Connect { from } => {
            if released {
                if let Hit::Node(to) = pointer.hover.clone()
                    && to != from
                    && let Some(next) = with_call(&doc, &from, &to)
                {
                    actions.write(AppAction::Edit {
                        scenario: Box::new(next),
                        label: format!("connect {from} → {to}"),
                    });
                }
                Drag::None
            } else {
                Drag::Connect { from }
            }
        }
    };
}

fn draw_connect_preview(pointer: Res<CanvasPointer>, graph: Res<CanvasGraph>, mut gizmos: Gizmos) {
    if let (Drag::Connect { from }, Some(w)) = (&pointer.drag, pointer.world) {
        gizmos.line_2d(graph.pos(from), w, Color::srgb(0.4, 0.7, 1.0));
    }
}

/// The document with node `name` at `p` (all current positions are written, so the layout
/// stays as the user sees it).
pub fn with_position(doc: &Document, name: &str, p: Vec2) -> cascade_sim::Scenario {
    let mut s = doc.scenario.clone();
    let at = Some(Position {
        x: p.x.round(),
        y: p.y.round(),
    });
    if let Some(src) = s.sources.iter_mut().find(|x| x.name == name) {
        src.position = at;
    }
    if let Some(svc) = s.services.iter_mut().find(|x| x.name == name) {
        svc.position = at;
    }
    s
}

/// The document with a new call `from → to` (a source is re-pointed instead), or `None` if
/// `to` is not a service.
pub fn with_call(doc: &Document, from: &str, to: &str) -> Option<cascade_sim::Scenario> {
    let mut s = doc.scenario.clone();
    s.service(to)?;
    if let Some(src) = s.sources.iter_mut().find(|x| x.name == from) {
        src.target = to.to_owned();
        return Some(s);
    }
    let svc = s.services.iter_mut().find(|x| x.name == from)?;
    if svc.calls.iter().any(|c| c.to == to) {
        return None;
    }
    svc.calls.push(CallSpec {
        to: to.to_owned(),
        timeout_ms: Some(1000.0),
        ..Default::default()
    });
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_distance_is_perpendicular_inside_and_to_endpoints_outside() {
        let (a, b) = (Vec2::ZERO, Vec2::new(10.0, 0.0));
        assert_eq!(segment_distance(Vec2::new(5.0, 3.0), a, b), 3.0);
        assert_eq!(segment_distance(Vec2::new(-4.0, 3.0), a, b), 5.0);
    }
}
