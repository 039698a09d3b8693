//! Colours, sizes and shapes shared by the canvas and the panels, in one place.
//!
//! Health colours are chosen to stay distinguishable for the common colour-vision
//! deficiencies (blue/amber/red with different lightness), and every state the canvas shows
//! in colour is also shown by shape or text (particle shapes, badges, labels).

use bevy::color::Color;
use bevy_egui::egui::Color32;
use cascade_sim::metrics::Health;
use cascade_sim::scenario::NodeKind;

/// Canvas background.
pub const BACKGROUND: Color = Color::srgb(0.105, 0.115, 0.135);
/// Secondary text on the canvas: a node's figures, an edge's note.
pub const MUTED_TEXT: Color = Color::srgb(0.62, 0.67, 0.73);

/// RGB of a health state.
pub fn health_rgb(h: Health) -> [u8; 3] {
    match h {
        Health::Idle => [110, 118, 129],
        Health::Healthy => [46, 160, 112],
        Health::Degraded => [222, 170, 40],
        Health::Failing => [232, 112, 40],
        Health::Down => [215, 48, 58],
    }
}

/// Bevy colour of a health state.
pub fn health_color(h: Health) -> Color {
    let [r, g, b] = health_rgb(h);
    Color::srgb_u8(r, g, b)
}

/// egui colour of a health state.
pub fn health_color32(h: Health) -> Color32 {
    let [r, g, b] = health_rgb(h);
    Color32::from_rgb(r, g, b)
}

/// Edge colour for an error share in `[0, 1]`: grey when clean, through amber to red.
pub fn error_share_color(share: f64) -> Color {
    let s = share.clamp(0.0, 1.0) as f32;
    // Distinct from the health fills (edges are bands, nodes are bodies; a picture test
    // tells them apart by colour).
    let calm = Color::srgb(0.42, 0.46, 0.52).to_linear();
    let amber = Color::srgb(0.93, 0.76, 0.35).to_linear();
    let red = Color::srgb(0.95, 0.35, 0.45).to_linear();
    let c = if s < 0.2 {
        mix(calm, amber, s / 0.2)
    } else {
        mix(amber, red, ((s - 0.2) / 0.5).min(1.0))
    };
    Color::LinearRgba(c)
}

fn mix(a: bevy::color::LinearRgba, b: bevy::color::LinearRgba, t: f32) -> bevy::color::LinearRgba {
    bevy::color::LinearRgba::rgb(
        a.red + (b.red - a.red) * t,
        a.green + (b.green - a.green) * t,
        a.blue + (b.blue - a.blue) * t,
    )
}

/// Particle colours: success, retry, timeout, error.
pub const PARTICLE_OK: Color = Color::srgb(0.55, 0.85, 1.0);
/// A retry attempt.
pub const PARTICLE_RETRY: Color = Color::srgb(1.0, 0.78, 0.25);
/// A caller giving up.
pub const PARTICLE_TIMEOUT: Color = Color::srgb(0.85, 0.55, 1.0);
/// A failure reply.
pub const PARTICLE_ERROR: Color = Color::srgb(1.0, 0.3, 0.3);

/// Radius of a node body, world units.
pub const NODE_RADIUS: f32 = 30.0;

/// egui accent for the verdict badge.
pub fn verdict_color32(v: cascade_sim::scenario::VerdictKind) -> Color32 {
    use cascade_sim::scenario::VerdictKind as V;
    match v {
        V::Stable => health_color32(Health::Healthy),
        V::Recovered => Color32::from_rgb(80, 150, 230),
        V::Metastable => health_color32(Health::Failing),
        V::Down => health_color32(Health::Down),
    }
}

/// Short glyph-free tag for a node kind (used in lists).
pub fn kind_tag(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Service => "svc",
        NodeKind::Gateway => "gw",
        NodeKind::Cache => "cache",
        NodeKind::Database => "db",
        NodeKind::Queue => "queue",
        NodeKind::ControlPlane => "ctl",
        NodeKind::Monitoring => "mon",
    }
}
