//! The event log: faults, commands, health and verdict changes, newest at the bottom; clicking
//! one goes back to just before it.

use bevy_egui::egui::{self, Color32, RichText};
use cascade_sim::{SimEvent, SimEventKind};

use crate::session::AppAction;
use crate::theme;

/// One line of the log: its time, a mark for faults and alerts, the event's words
/// ([`SimEventKind::text`], shared with the postmortem report) and its colour.
pub fn describe(ev: &SimEvent) -> (String, Color32) {
    let t = ev.time_ns as f64 / 1e9;
    let (mark, color) = match &ev.kind {
        SimEventKind::ScenarioLoaded { .. } => ("", Color32::GRAY),
        SimEventKind::FaultStarted { .. } => ("⚡ ", Color32::from_rgb(240, 120, 110)),
        SimEventKind::FaultEnded { .. } => ("✓ ", Color32::from_rgb(140, 200, 160)),
        SimEventKind::CommandApplied { .. } => ("", Color32::from_rgb(150, 170, 200)),
        SimEventKind::Halted { .. } => ("⏹ ", Color32::from_rgb(240, 90, 80)),
        SimEventKind::CommandRejected { .. } => ("", Color32::from_rgb(240, 170, 60)),
        SimEventKind::HealthChanged { to, .. } => ("", theme::health_color32(*to)),
        SimEventKind::Mechanism { .. } => ("", Color32::from_rgb(190, 170, 230)),
        SimEventKind::AlertFired { .. } => ("🔔 ", Color32::from_rgb(250, 200, 90)),
        SimEventKind::OperatorActed { .. } => ("", Color32::from_rgb(120, 200, 230)),
        SimEventKind::VerdictChanged { verdict } => ("", theme::verdict_color32(*verdict)),
    };
    (format!("{t:>9.3} s  {mark}{}", ev.kind.text()), color)
}

/// Shows the log; `health_changes` toggles the (chatty) health lines. Clicking a line goes
/// back to just before it (one tick earlier: the run as it was when that happened).
pub fn event_log_ui(
    ui: &mut egui::Ui,
    events: &[SimEvent],
    health_changes: &mut bool,
    tick_s: f64,
) -> Vec<AppAction> {
    let mut out = Vec::new();
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("{} events", events.len())).strong());
        ui.checkbox(health_changes, "health changes")
            .on_hover_text("Show every node's health changes");
        ui.label(RichText::new("click an event to go back to just before it").weak());
    });
    egui::ScrollArea::vertical()
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let shown = events.iter().filter(|e| {
                *health_changes || !matches!(e.kind, SimEventKind::HealthChanged { .. })
            });
            let lines: Vec<&SimEvent> = shown.collect();
            // Long logs: only the last 2,000 lines are drawn.
            for ev in lines.iter().skip(lines.len().saturating_sub(2000)) {
                let (text, color) = describe(ev);
                let line = ui.add(
                    egui::Label::new(RichText::new(text).monospace().color(color))
                        .sense(egui::Sense::click()),
                );
                if line.on_hover_text("Go back to just before this").clicked() {
                    out.push(AppAction::RewindTo(before_s(ev.time_ns, tick_s)));
                }
            }
        });
    out
}

/// Just before an event at `time_ns`: one tick earlier (the start of the run at most).
pub fn before_s(time_ns: u64, tick_s: f64) -> f64 {
    (time_ns as f64 / 1e9 - tick_s).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn just_before_an_event_is_one_tick_earlier() {
        assert!((before_s(30_000_000_000, 0.001) - 29.999).abs() < 1e-12);
        assert_eq!(before_s(0, 0.001), 0.0);
    }
}
