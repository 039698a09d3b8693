//! The top bar: file, playback, speed, clock, seed, reset, undo/redo, build mode, verdict.

use std::path::PathBuf;

use bevy_egui::egui::{self, RichText};
use cascade_sim::scenario::VerdictKind;

use crate::playback::{SPEED_NOTCHES, Speed};
use crate::session::AppAction;
use crate::settings::PanelLayout;
use crate::theme;

/// What the top bar shows.
#[derive(Debug, Clone, PartialEq)]
pub struct TopBarView {
    /// Document title (file name).
    pub title: String,
    /// Unsaved changes.
    pub dirty: bool,
    /// Time runs.
    pub playing: bool,
    /// Speed.
    pub speed: Speed,
    /// Simulated seconds per real second actually reached (see `playback::Pace`).
    pub achieved_speed: Option<f64>,
    /// Simulated seconds.
    pub sim_time_s: f64,
    /// Seed of the run.
    pub seed: u64,
    /// Verdict so far and seconds to recover.
    pub verdict: Option<(VerdictKind, Option<f64>)>,
    /// What sustains a metastable state.
    pub sustained_by: Vec<String>,
    /// Undo / redo labels when available.
    pub undo: Option<String>,
    /// Redo label.
    pub redo: Option<String>,
    /// Build mode on.
    pub building: bool,
    /// Recent files.
    pub recent: Vec<PathBuf>,
    /// Panels shown.
    pub panels: PanelLayout,
    /// The comparison run (B), if any: its name and live verdict.
    pub compare: Option<(String, Option<(VerdictKind, Option<f64>)>)>,
}

/// How far the quick "back" (the clock menu's button and the ← key) goes, simulated seconds.
pub const BACK_STEP_S: f64 = 10.0;

/// The clock's menu: go back to an earlier moment of the run.
fn rewind_menu(ui: &mut egui::Ui, now_s: f64, out: &mut Vec<AppAction>) {
    let id = ui.make_persistent_id("rewind-to");
    ui.set_max_width(280.0);
    let mut to_s: f64 = ui.data_mut(|d| d.get_temp(id)).unwrap_or(now_s).min(now_s);
    ui.label("Go back to an earlier moment. The run is replayed to it; what came after is dropped, and playing on is a what-if.");
    ui.add(
        egui::Slider::new(&mut to_s, 0.0..=now_s.max(0.0))
            .suffix(" s")
            .fixed_decimals(1),
    );
    ui.data_mut(|d| d.insert_temp(id, to_s));
    if ui.button(format!("⏪ Go back to {to_s:.1} s")).clicked() {
        out.push(AppAction::RewindTo(to_s));
        ui.close();
    }
    if ui
        .button(format!("⏪ {BACK_STEP_S:.0} s back"))
        .on_hover_text("Also the ← key")
        .clicked()
    {
        out.push(AppAction::RewindTo((now_s - BACK_STEP_S).max(0.0)));
        ui.close();
    }
}

/// Draws the bar; returns what the user asked for.
pub fn top_bar_ui(ui: &mut egui::Ui, view: &TopBarView, seed_text: &mut String) -> Vec<AppAction> {
    let mut out = Vec::new();
    ui.horizontal_wrapped(|ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open…").on_hover_text("Open a scenario file (Ctrl+O)").clicked() {
                out.push(AppAction::OpenDialog);
                ui.close();
            }
            if ui.button("Save").on_hover_text("Save to the current file (Ctrl+S)").clicked() {
                out.push(AppAction::Save);
                ui.close();
            }
            if ui.button("Save as…").on_hover_text("Save to another file").clicked() {
                out.push(AppAction::SaveAsDialog);
                ui.close();
            }
            if ui
                .button("Compare with…")
                .on_hover_text("Run another scenario beside this one under the same seed and faults (live ones too) and chart its goodput, errors and p99 over these")
                .clicked()
            {
                out.push(AppAction::CompareDialog);
                ui.close();
            }
            if view.compare.is_some() && ui.button("Stop comparing").clicked() {
                out.push(AppAction::StopComparing);
                ui.close();
            }
            if ui
                .button("Save run as scenario…")
                .on_hover_text("Save a scenario with this run's faults — broken live or scripted, cleared early or not — at their times: opening it replays them")
                .clicked()
            {
                out.push(AppAction::SaveRecordingDialog);
                ui.close();
            }
            ui.separator();
            if ui
                .button("Export run data…")
                .on_hover_text("Write the run so far as metrics.csv, events.jsonl and summary.json into a folder (the files cascade-cli run --out writes)")
                .clicked()
            {
                out.push(AppAction::ExportDataDialog);
                ui.close();
            }
            if ui.button("Export picture…").on_hover_text("Save the window as a PNG picture").clicked() {
                out.push(AppAction::ExportPictureDialog);
                ui.close();
            }
            if !view.recent.is_empty() {
                ui.separator();
                ui.label(RichText::new("Recent").weak());
                for path in &view.recent {
                    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                    if ui.button(name).on_hover_text(path.display().to_string()).clicked() {
                        out.push(AppAction::OpenPath(path.clone()));
                        ui.close();
                    }
                }
            }
        });
        ui.menu_button("View", |ui| {
            let mut p = view.panels;
            ui.checkbox(&mut p.left, "Library and faults").on_hover_text("Left panel");
            ui.checkbox(&mut p.right, "Inspector").on_hover_text("Right panel");
            ui.checkbox(&mut p.bottom, "Charts and events").on_hover_text("Bottom panel");
            ui.checkbox(&mut p.story, "Story").on_hover_text("The scenario's story over the canvas, when it has one");
            ui.horizontal(|ui| {
                ui.label("charts height");
                for (label, h) in [("S", 220.0), ("M", 330.0), ("L", 480.0)] {
                    if ui.selectable_label((p.bottom_height - h).abs() < 1.0, label).clicked() {
                        p.bottom_height = h;
                    }
                }
            });
            if p != view.panels {
                out.push(AppAction::SetPanels(p));
            }
            if ui.button("Fit graph (F)").clicked() {
                out.push(AppAction::FitView);
                ui.close();
            }
        });
        ui.separator();
        let title = if view.dirty { format!("{} •", view.title) } else { view.title.clone() };
        ui.label(RichText::new(title).strong()).on_hover_text(if view.dirty { "Unsaved changes" } else { "Saved" });
        ui.separator();

        let play = if view.playing { "⏸ Pause" } else { "▶ Play" };
        if ui.button(play).on_hover_text("Play or pause simulated time (Space)").clicked() {
            out.push(AppAction::TogglePlay);
        }
        if ui.button("⏭ Step").on_hover_text("Advance one tick while paused (.)").clicked() {
            out.push(AppAction::Step);
        }
        if ui.button("➖").on_hover_text("Slower (−)").clicked() {
            out.push(AppAction::Slower);
        }
        speed_menu(ui, view.speed, &mut out);
        if ui.button("➕").on_hover_text("Faster (+)").clicked() {
            out.push(AppAction::Faster);
        }
        if let Some(note) = speed_note(view) {
            let text = RichText::new(note.text).monospace();
            let text = if note.behind { text.color(egui::Color32::from_rgb(255, 190, 70)) } else { text.weak() };
            ui.label(text).on_hover_text(note.hover);
        }
        let clock = RichText::new(format!("t = {:.1} s", view.sim_time_s)).monospace();
        ui.menu_button(clock, |ui| rewind_menu(ui, view.sim_time_s, &mut out))
            .response
            .on_hover_text("Simulated time since the start of the run; click to go back to an earlier moment");
        ui.separator();

        ui.label("seed");
        let seed_edit = ui.add(egui::TextEdit::singleline(seed_text).desired_width(70.0)).on_hover_text("Seed of every random stream; press Enter or Reset to restart with it");
        let enter = seed_edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let reset = ui.button("⟲ Reset").on_hover_text("Restart the run from t = 0 with this seed").clicked();
        if enter || reset {
            match seed_text.trim().parse::<u64>() {
                Ok(seed) if seed != view.seed => out.push(AppAction::Reset { seed: Some(seed) }),
                Ok(_) => out.push(AppAction::Reset { seed: None }),
                Err(_) => *seed_text = view.seed.to_string(),
            }
        }
        ui.separator();

        let undo = ui.add_enabled(view.undo.is_some(), egui::Button::new("Undo"));
        if undo.on_hover_text(view.undo.as_ref().map_or_else(|| "Nothing to undo".to_owned(), |l| format!("Undo {l} (Ctrl+Z)"))).clicked() {
            out.push(AppAction::Undo);
        }
        let redo = ui.add_enabled(view.redo.is_some(), egui::Button::new("Redo"));
        if redo.on_hover_text(view.redo.as_ref().map_or_else(|| "Nothing to redo".to_owned(), |l| format!("Redo {l} (Ctrl+Shift+Z)"))).clicked() {
            out.push(AppAction::Redo);
        }
        let build = ui.selectable_label(view.building, "🔧 Build");
        if build.on_hover_text("Build mode: add nodes from the palette, drag from one node to another to connect them (B)").clicked() {
            out.push(AppAction::SetBuilding(!view.building));
        }
        if ui.button("⛶ Fit").on_hover_text("Fit the graph to the view (F)").clicked() {
            out.push(AppAction::FitView);
        }

        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            verdict_badge(ui, view.verdict, &view.sustained_by, "verdict");
            if let Some((name, verdict)) = &view.compare {
                ui.separator();
                verdict_badge(ui, *verdict, &[], &format!("B: {name}"));
            }
        });
    });
    out
}

fn speed_menu(ui: &mut egui::Ui, speed: Speed, out: &mut Vec<AppAction>) {
    egui::ComboBox::from_id_salt("speed")
        .selected_text(speed.label())
        .width(64.0)
        .show_ui(ui, |ui| {
            for s in SPEED_NOTCHES {
                if ui
                    .selectable_label(speed == Speed::Times(s), Speed::Times(s).label())
                    .clicked()
                {
                    out.push(AppAction::SetSpeed(Speed::Times(s)));
                }
            }
            if ui
                .selectable_label(speed == Speed::Max, "max")
                .on_hover_text("As fast as this machine can simulate")
                .clicked()
            {
                out.push(AppAction::SetSpeed(Speed::Max));
            }
        })
        .response
        .on_hover_text("Simulated seconds per real second");
}

/// What the bar says about the speed reached, beside the speed asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedNote {
    /// Such as "running ×240".
    pub text: String,
    /// The speed asked for is not reached.
    pub behind: bool,
    /// Explanation on hover.
    pub hover: &'static str,
}

/// Share of the speed asked for below which the bar says the run is behind.
const BEHIND_BELOW: f64 = 0.8;

/// The note for this view, if any: at max speed the speed reached, at a set speed only when
/// the run falls short of it.
pub fn speed_note(view: &TopBarView) -> Option<SpeedNote> {
    let achieved = view.achieved_speed.filter(|_| view.playing)?;
    match view.speed {
        Speed::Max => Some(SpeedNote {
            text: format!("= {}", speed_text(achieved)),
            behind: false,
            hover: "Simulated seconds per real second this machine reaches at max speed",
        }),
        Speed::Times(asked) if achieved < BEHIND_BELOW * asked => Some(SpeedNote {
            text: format!("running {}", speed_text(achieved)),
            behind: true,
            hover: "This machine cannot simulate the model that fast: the clock runs behind the \
                    speed asked for, so the window stays responsive. Results are the same at any \
                    speed.",
        }),
        Speed::Times(_) => None,
    }
}

/// A speed as "×0.25", "×12" or "×1,850".
fn speed_text(speed: f64) -> String {
    if speed < 10.0 {
        format!("×{:.2}", speed)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        format!(
            "×{}",
            cascade_sim::text::group_digits(&format!("{:.0}", speed))
        )
    }
}

/// A verdict badge with its caption on the left ("verdict", or a comparison's "B: name").
fn verdict_badge(
    ui: &mut egui::Ui,
    verdict: Option<(VerdictKind, Option<f64>)>,
    sustained_by: &[String],
    caption: &str,
) {
    let Some((kind, recovery)) = verdict else {
        ui.label(RichText::new("no verdict yet").weak());
        ui.label(RichText::new(caption).weak());
        return;
    };
    let text = match (kind, recovery) {
        (VerdictKind::Recovered, Some(r)) => format!("RECOVERED in {r:.0} s"),
        _ => kind.as_str().to_uppercase(),
    };
    let color = theme::verdict_color32(kind);
    let tip = match kind {
        VerdictKind::Stable => "Healthy throughout (goodput ≥ 90% of offered load)".to_owned(),
        VerdictKind::Recovered => "Was unhealthy, healthy again through the last 30 s".to_owned(),
        VerdictKind::Metastable => {
            let why = if sustained_by.is_empty() {
                String::new()
            } else {
                format!(":\n• {}", sustained_by.join("\n• "))
            };
            format!("The trigger is over but the system stays unhealthy{why}")
        }
        VerdictKind::Down => {
            "Unhealthy while the trigger is still active (or plain overload)".to_owned()
        }
    };
    egui::Frame::new()
        .fill(color)
        .corner_radius(4.0)
        .inner_margin(egui::Margin::symmetric(8, 2))
        .show(ui, |ui| {
            ui.label(RichText::new(text).strong().color(egui::Color32::BLACK));
        })
        .response
        .on_hover_text(tip);
    ui.label(RichText::new(caption).weak());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(speed: Speed, playing: bool, achieved: Option<f64>) -> TopBarView {
        TopBarView {
            title: String::new(),
            dirty: false,
            playing,
            speed,
            achieved_speed: achieved,
            sim_time_s: 0.0,
            seed: 1,
            verdict: None,
            sustained_by: vec![],
            undo: None,
            redo: None,
            building: false,
            recent: vec![],
            panels: Default::default(),
            compare: None,
        }
    }

    #[test]
    fn the_bar_says_when_a_run_falls_behind_its_speed() {
        let note = speed_note(&view(Speed::Times(1000.0), true, Some(241.6))).unwrap();
        assert_eq!(note.text, "running ×242");
        assert!(note.behind);
        assert_eq!(
            speed_note(&view(Speed::Times(1000.0), true, Some(950.0))),
            None
        );
        assert_eq!(
            speed_note(&view(Speed::Times(1000.0), false, Some(1.0))),
            None
        );
        assert_eq!(speed_note(&view(Speed::Times(1.0), true, None)), None);
        let max = speed_note(&view(Speed::Max, true, Some(18_504.2))).unwrap();
        assert_eq!(max.text, "= ×18,504");
        assert!(!max.behind);
    }

    #[test]
    fn speeds_read_naturally() {
        assert_eq!(speed_text(0.25), "×0.25");
        assert_eq!(speed_text(0.5), "×0.5");
        assert_eq!(speed_text(2.0), "×2");
        assert_eq!(speed_text(999.6), "×1,000");
        assert_eq!(speed_text(1_234_567.0), "×1,234,567");
    }
}
