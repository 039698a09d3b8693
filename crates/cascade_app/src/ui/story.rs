//! The story banner: the scenario's current story step at the top of the canvas, with a
//! Continue button when the run paused for it. When and whether to pause is `crate::story`'s.

use bevy_egui::egui::{self, RichText};
use cascade_sim::scenario::StoryStep;

use crate::canvas::CanvasRect;
use crate::session::AppAction;

/// What the banner shows.
pub struct StoryView<'a> {
    /// The scenario's story.
    pub story: &'a [StoryStep],
    /// The current step (`crate::story::current_step`).
    pub current: Option<usize>,
    /// The run is playing.
    pub playing: bool,
    /// The run is paused on the current step's own time (it paused for it).
    pub held_here: bool,
}

/// Draws the banner over the canvas; returns Continue as a play action, and the size of the
/// canvas corner the banner covers (with its margin), if it is drawn.
pub fn story_banner_ui(
    ctx: &egui::Context,
    canvas: CanvasRect,
    view: &StoryView,
) -> (Vec<AppAction>, Option<bevy::math::Vec2>) {
    let mut out = Vec::new();
    let Some(i) = view.current else {
        return (out, None);
    };
    let Some(step) = view.story.get(i) else {
        return (out, None);
    };
    // Top left of the canvas; a fit of the graph keeps clear of it (`CanvasRect::overlay`).
    let width = ((canvas.max.x - canvas.min.x) * 0.3).clamp(220.0, 380.0);
    let shown = egui::Area::new(egui::Id::new("story-banner"))
        .order(egui::Order::Foreground)
        .pivot(egui::Align2::LEFT_TOP)
        .fixed_pos(egui::pos2(canvas.min.x + MARGIN, canvas.min.y + MARGIN))
        .interactable(true)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_max_width(width);
                // Its place in time order (file order on a tie).
                let order = view
                    .story
                    .iter()
                    .enumerate()
                    .filter(|&(j, s)| (s.at_s, j) <= (step.at_s, i))
                    .count();
                ui.label(
                    RichText::new(format!(
                        "Story · {order} of {} · {:.0} s",
                        view.story.len(),
                        step.at_s
                    ))
                    .small()
                    .weak(),
                );
                ui.label(RichText::new(&step.text).size(15.0));
                if view.held_here && !view.playing {
                    ui.add_space(4.0);
                    if ui
                        .button("▶ Continue")
                        .on_hover_text("Play on from here (Space)")
                        .clicked()
                    {
                        out.push(AppAction::TogglePlay);
                    }
                }
            });
        });
    let corner = shown.response.rect.max - egui::pos2(canvas.min.x, canvas.min.y);
    (
        out,
        Some(bevy::math::Vec2::new(corner.x, corner.y) + MARGIN),
    )
}

/// Space kept between the banner and the graph, logical pixels.
const MARGIN: f32 = 12.0;
