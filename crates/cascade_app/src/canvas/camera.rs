//! The canvas camera: zoom with the wheel around the cursor, pan by dragging empty space
//! (driven from `interact`), and fit the graph into the part of the window not covered by
//! panels (`F`, on open, and on request).

use bevy::input::mouse::{AccumulatedMouseScroll, MouseScrollUnit};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_egui::input::egui_wants_any_pointer_input;

use super::layout::bounds;
use super::nodes::LABEL_REACH;
use super::{CanvasGraph, CanvasRect};
use crate::session::ViewRequests;
use crate::theme::NODE_RADIUS;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_camera).add_systems(
        Update,
        (
            zoom.run_if(not(egui_wants_any_pointer_input)),
            fit_when_asked,
        )
            .in_set(crate::AppSystems::Sync),
    );
}

/// Marks the canvas camera.
#[derive(Component, Debug, Default)]
pub struct CanvasCamera;

/// Smallest and largest world units per logical pixel.
const ZOOM_RANGE: (f32, f32) = (0.1, 40.0);

fn spawn_camera(mut commands: Commands, mut requests: ResMut<ViewRequests>) {
    commands.spawn((Name::new("canvas camera"), CanvasCamera, Camera2d));
    requests.fit = true;
}

/// World units per logical pixel of the camera.
pub fn scale_of(projection: &Projection) -> f32 {
    match projection {
        Projection::Orthographic(o) => o.scale,
        _ => 1.0,
    }
}

fn set_scale(projection: &mut Projection, scale: f32) {
    if let Projection::Orthographic(o) = projection {
        o.scale = scale.clamp(ZOOM_RANGE.0, ZOOM_RANGE.1);
    }
}

fn zoom(
    scroll: Res<AccumulatedMouseScroll>,
    window: Single<&Window, With<PrimaryWindow>>,
    mut camera: Single<(&mut Transform, &mut Projection), With<CanvasCamera>>,
) {
    if scroll.delta.y == 0.0 {
        return;
    }
    let lines = match scroll.unit {
        MouseScrollUnit::Line => scroll.delta.y,
        MouseScrollUnit::Pixel => scroll.delta.y / 40.0,
    };
    let (transform, projection) = &mut *camera;
    let old = scale_of(projection);
    let new = (old * 1.15f32.powf(-lines)).clamp(ZOOM_RANGE.0, ZOOM_RANGE.1);
    // Keep the world point under the cursor where it is.
    if let Some(cursor) = window.cursor_position() {
        let from_center = (cursor - window.size() / 2.0) * Vec2::new(1.0, -1.0);
        let world = transform.translation.truncate() + from_center * old;
        let moved = world - from_center * new;
        transform.translation = moved.extend(transform.translation.z);
    }
    set_scale(projection, new);
}

/// Camera translation and scale that fit world bounds `lo..hi` into `rect` (logical pixels)
/// of a window of `window` size, clear of the rect's top-left overlay: right of it or below
/// it, whichever shows the graph larger (right of it on a tie).
pub fn fit(lo: Vec2, hi: Vec2, rect: CanvasRect, window: Vec2) -> (Vec2, f32) {
    if rect.overlay == Vec2::ZERO {
        return fit_in(lo, hi, rect.min, rect.max, window);
    }
    let right = fit_in(
        lo,
        hi,
        rect.min + Vec2::new(rect.overlay.x, 0.0),
        rect.max,
        window,
    );
    let below = fit_in(
        lo,
        hi,
        rect.min + Vec2::new(0.0, rect.overlay.y),
        rect.max,
        window,
    );
    if below.1 < right.1 { below } else { right }
}

/// [`fit`] into the rectangle `min..max`.
fn fit_in(lo: Vec2, hi: Vec2, min: Vec2, max: Vec2, window: Vec2) -> (Vec2, f32) {
    let size = (max - min).max(Vec2::splat(50.0));
    let world = (hi - lo).max(Vec2::splat(1.0));
    // Never magnify small graphs beyond 1.25×: nodes stay a readable, familiar size.
    let scale = (world.x / size.x)
        .max(world.y / size.y)
        .clamp(0.8, ZOOM_RANGE.1);
    let rect_center = (min + max) / 2.0;
    let offset = (rect_center - window / 2.0) * Vec2::new(1.0, -1.0) * scale;
    ((lo + hi) / 2.0 - offset, scale)
}

/// World bounds a fit shows for nodes at `positions`: a margin of three node radii, and on
/// the right the labels' reach (they sit right of their nodes; a box around the nodes alone
/// cut off the right-hand column's labels of a wide graph), `name_end` where a name reaches
/// further ([`super::layout::name_end`]).
pub fn fit_box(positions: impl Iterator<Item = Vec2>, name_end: f32) -> Option<(Vec2, Vec2)> {
    let margin = NODE_RADIUS * 3.0;
    let (lo, hi) = bounds(positions, 0.0)?;
    let reach = LABEL_REACH.max(name_end);
    Some((
        lo - Vec2::splat(margin),
        hi + Vec2::new(margin.max(reach + NODE_RADIUS / 2.0), margin),
    ))
}

fn fit_when_asked(
    mut requests: ResMut<ViewRequests>,
    graph: Res<CanvasGraph>,
    rect: Res<CanvasRect>,
    window: Single<&Window, With<PrimaryWindow>>,
    mut camera: Single<(&mut Transform, &mut Projection), With<CanvasCamera>>,
    mut waited: Local<bool>,
) {
    if !requests.fit || graph.nodes.is_empty() || rect.max == Vec2::ZERO {
        return;
    }
    // A frame late: the panels drawn after the request (a newly loaded scenario's story
    // banner) have then set the rect it fits into.
    if !*waited {
        *waited = true;
        return;
    }
    *waited = false;
    requests.fit = false;
    let name_end = super::layout::name_end(graph.positions.keys().map(String::as_str));
    let Some((lo, hi)) = fit_box(graph.positions.values().copied(), name_end) else {
        return;
    };
    let (center, scale) = fit(lo, hi, *rect, window.size());
    let (transform, projection) = &mut *camera;
    transform.translation = center.extend(transform.translation.z);
    set_scale(projection, scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_keeps_the_right_hand_labels_in_view() {
        // Ten columns 250 apart: wider than tall, so the width decides the scale.
        let positions = (0..10).map(|i| Vec2::new(250.0 * i as f32, 0.0));
        let (lo, hi) = fit_box(positions, 0.0).unwrap();
        let rect = CanvasRect {
            min: Vec2::new(270.0, 24.0),
            max: Vec2::new(1300.0, 630.0),
            overlay: Vec2::ZERO,
        };
        let window = Vec2::new(1600.0, 960.0);
        let (center, scale) = fit(lo, hi, rect, window);
        // Logical x of a world x: the window centre shows `center`.
        let screen_x = |x: f32| window.x / 2.0 + (x - center.x) / scale;
        let last_label_end = 250.0 * 9.0 + LABEL_REACH;
        assert!(
            screen_x(last_label_end) <= rect.max.x,
            "the last column's labels end at {} px, past the canvas's right edge {}",
            screen_x(last_label_end),
            rect.max.x
        );
        assert!(
            screen_x(-NODE_RADIUS) >= rect.min.x,
            "the first column's nodes in view"
        );
    }

    #[test]
    fn fit_centres_the_graph_in_the_free_rectangle() {
        // Window 1000×800, panels leave x 200..800, y 100..500.
        let rect = CanvasRect {
            min: Vec2::new(200.0, 100.0),
            max: Vec2::new(800.0, 500.0),
            overlay: Vec2::ZERO,
        };
        let (center, scale) = fit(
            Vec2::new(-300.0, -100.0),
            Vec2::new(300.0, 100.0),
            rect,
            Vec2::new(1000.0, 800.0),
        );
        assert_eq!(scale, 1.0, "600 world units across 600 pixels");
        // The rect's centre (500, 300) is 100 px above the window centre (500, 400): the
        // camera sits 100 world units below the graph's centre.
        assert_eq!(center, Vec2::new(0.0, -100.0));
    }

    #[test]
    fn a_fit_keeps_the_graph_clear_of_the_story_banner() {
        // The canvas x 200..800, y 100..500 with a banner of 250 × 150 px in its top-left
        // corner. A wide graph (600 × 100) loses less going below it (350 px tall left: the
        // width still decides, scale 1) than right of it (350 px wide: scale 600/350); a tall
        // one (100 × 400) the other way round.
        let rect = CanvasRect {
            min: Vec2::new(200.0, 100.0),
            max: Vec2::new(800.0, 500.0),
            overlay: Vec2::new(250.0, 150.0),
        };
        let window = Vec2::new(1000.0, 800.0);
        let screen = |p: Vec2, (center, scale): (Vec2, f32)| {
            Vec2::new(
                window.x / 2.0 + (p.x - center.x) / scale,
                window.y / 2.0 - (p.y - center.y) / scale,
            )
        };
        let wide = fit(
            Vec2::new(-300.0, -50.0),
            Vec2::new(300.0, 50.0),
            rect,
            window,
        );
        assert_eq!(wide.1, 1.0, "below the banner at full size");
        let top_left = screen(Vec2::new(-300.0, 50.0), wide);
        assert!(top_left.y >= 250.0, "clear below the banner: {top_left}");
        let tall = fit(
            Vec2::new(-50.0, -200.0),
            Vec2::new(50.0, 200.0),
            rect,
            window,
        );
        assert_eq!(tall.1, 1.0, "right of the banner at full size");
        let top_left = screen(Vec2::new(-50.0, 200.0), tall);
        assert!(top_left.x >= 450.0, "clear right of the banner: {top_left}");
    }
}
