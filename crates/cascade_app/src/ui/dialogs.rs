//! Dialogs: open / save / export with the system's file dialog (rfd over the XDG desktop
//! portal), a typed-path window when no dialog can be shown, the error window, and the
//! right-click menu.
//!
//! On Linux rfd talks to the desktop portal over D-Bus. Without a session bus (or when the
//! portal answers at once with nothing — no portal running) the typed-path window opens
//! instead; it is also always reachable from the File menu.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, block_on, poll_once};
use bevy_egui::egui::{self, RichText};

use crate::session::{AppAction, Document, ErrorWindow, ViewRequests};

/// What a path is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Open a scenario.
    Open,
    /// Save the document.
    Save,
    /// Export the run's data files into a folder.
    ExportData,
    /// Export a picture of the window.
    ExportPicture,
    /// Save the run as a scenario with its faults at their times.
    SaveRecording,
    /// Pick a scenario to compare with.
    Compare,
    /// Pick a traffic trace (CSV) to replay as a source's rate.
    ReplayRate,
}

impl Purpose {
    /// The typed-path window's title.
    fn title(self) -> &'static str {
        match self {
            Purpose::Open => "Open scenario",
            Purpose::Save => "Save scenario as",
            Purpose::ExportData => "Export run data",
            Purpose::ExportPicture => "Export picture",
            Purpose::SaveRecording => "Save run as scenario",
            Purpose::Compare => "Compare with",
            Purpose::ReplayRate => "Replay a traffic trace",
        }
    }

    /// What the typed-path window asks for.
    fn what(self) -> &'static str {
        match self {
            Purpose::Open | Purpose::Save | Purpose::SaveRecording | Purpose::Compare => {
                "Path of the .ron file"
            }
            Purpose::ExportData => {
                "Folder for metrics.csv, events.jsonl and summary.json (created if missing)"
            }
            Purpose::ExportPicture => "Path of the .png file",
            Purpose::ReplayRate => "Path of the .csv file (a header, then time_s,rate_per_s rows)",
        }
    }

    /// The confirming button.
    fn verb(self) -> &'static str {
        match self {
            Purpose::Open => "Open",
            Purpose::Compare => "Compare",
            Purpose::ReplayRate => "Replay",
            Purpose::Save | Purpose::SaveRecording => "Save",
            Purpose::ExportData | Purpose::ExportPicture => "Export",
        }
    }

    /// The action for a chosen path.
    fn action(self, path: PathBuf) -> AppAction {
        match self {
            Purpose::Open => AppAction::OpenPath(path),
            Purpose::Save => AppAction::SaveAsPath(path),
            Purpose::ExportData => AppAction::ExportDataTo(path),
            Purpose::ExportPicture => AppAction::ExportPictureTo(path),
            Purpose::SaveRecording => AppAction::SaveRecordingTo(path),
            Purpose::Compare => AppAction::CompareWith(path),
            Purpose::ReplayRate => AppAction::ReplayRateFrom(path),
        }
    }
}

/// Where an export goes unless the user says otherwise: `exports/` in the working directory,
/// named after the scenario file and the simulated second (`exports/retry-storm-45s`,
/// `exports/retry-storm-45s.png`); a recorded run beside its scenario
/// (`scenarios/teaching/retry-storm-45s-recorded.ron`).
pub fn export_suggestion(doc: &Document, now_s: f64, purpose: Purpose) -> PathBuf {
    let stem = doc.path.as_ref().and_then(|p| p.file_stem()).map_or_else(
        || "untitled".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let name = format!("{stem}-{}s", now_s.floor() as u64);
    match purpose {
        Purpose::ExportPicture => PathBuf::from("exports").join(format!("{name}.png")),
        // Beside the scenario it was recorded from, where the library lists it.
        Purpose::SaveRecording => doc
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .map_or_else(|| PathBuf::from("scenarios"), PathBuf::from)
            .join(format!("{name}-recorded.ron")),
        _ => PathBuf::from("exports").join(name),
    }
}

/// The typed-path window.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPrompt {
    /// Open or save.
    pub purpose: Purpose,
    /// The text typed so far.
    pub text: String,
}

/// Dialog state.
#[derive(Resource, Default)]
pub struct Dialogs {
    task: Option<(Purpose, Task<Option<PathBuf>>, Instant)>,
    /// The typed-path window, when open.
    pub prompt: Option<PathPrompt>,
}

fn portal_available() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
}

/// Starts the system dialog, or opens the typed-path window when none can be shown.
pub fn start_dialogs(
    mut requests: ResMut<ViewRequests>,
    mut dialogs: ResMut<Dialogs>,
    doc: Res<Document>,
    clock: Res<cascade_sim::SimClock>,
) {
    for (asked, purpose) in [
        (std::mem::take(&mut requests.open_dialog), Purpose::Open),
        (std::mem::take(&mut requests.save_dialog), Purpose::Save),
        (
            std::mem::take(&mut requests.export_data_dialog),
            Purpose::ExportData,
        ),
        (
            std::mem::take(&mut requests.export_picture_dialog),
            Purpose::ExportPicture,
        ),
        (
            std::mem::take(&mut requests.save_recording_dialog),
            Purpose::SaveRecording,
        ),
        (
            std::mem::take(&mut requests.compare_dialog),
            Purpose::Compare,
        ),
        (
            requests.replay_rate_dialog.take().is_some(),
            Purpose::ReplayRate,
        ),
    ] {
        if !asked || dialogs.task.is_some() {
            continue;
        }
        let default_dir = doc
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .map(PathBuf::from)
            .or_else(crate::ui::library::library_root);
        let now_s = clock.now_s();
        if !portal_available() {
            dialogs.prompt = Some(prompt_for(purpose, &doc, now_s));
            continue;
        }
        let file_name = match purpose {
            Purpose::Open | Purpose::Save | Purpose::Compare | Purpose::ReplayRate => doc
                .path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario.ron".into()),
            Purpose::ExportData | Purpose::ExportPicture | Purpose::SaveRecording => {
                export_suggestion(&doc, now_s, purpose)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }
        };
        let task = AsyncComputeTaskPool::get().spawn(async move {
            let mut dialog = rfd::AsyncFileDialog::new();
            if let Some(dir) = default_dir {
                dialog = dialog.set_directory(dir);
            }
            let ron = |d: rfd::AsyncFileDialog| d.add_filter("Cascade scenario", &["ron"]);
            let file = match purpose {
                Purpose::Open | Purpose::Compare => ron(dialog).pick_file().await,
                Purpose::ReplayRate => {
                    dialog
                        .add_filter("Traffic trace", &["csv"])
                        .pick_file()
                        .await
                }
                Purpose::Save | Purpose::SaveRecording => {
                    ron(dialog).set_file_name(file_name).save_file().await
                }
                Purpose::ExportData => dialog.pick_folder().await,
                Purpose::ExportPicture => {
                    dialog
                        .add_filter("PNG picture", &["png"])
                        .set_file_name(file_name)
                        .save_file()
                        .await
                }
            };
            file.map(|f| f.path().to_path_buf())
        });
        dialogs.task = Some((purpose, task, Instant::now()));
    }
}

fn prompt_for(purpose: Purpose, doc: &Document, now_s: f64) -> PathPrompt {
    let text = match purpose {
        Purpose::Open | Purpose::Compare | Purpose::ReplayRate => String::new(),
        Purpose::Save => doc
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "scenarios/my-scenario.ron".into()),
        Purpose::ExportData | Purpose::ExportPicture | Purpose::SaveRecording => {
            export_suggestion(doc, now_s, purpose).display().to_string()
        }
    };
    PathPrompt { purpose, text }
}

/// Polls a running system dialog.
pub fn poll_dialogs(
    mut dialogs: ResMut<Dialogs>,
    doc: Res<Document>,
    clock: Res<cascade_sim::SimClock>,
    mut actions: MessageWriter<AppAction>,
) {
    let Some((purpose, task, started)) = dialogs.task.as_mut() else {
        return;
    };
    let Some(result) = block_on(poll_once(task)) else {
        return;
    };
    let (purpose, quick) = (*purpose, started.elapsed() < Duration::from_millis(400));
    dialogs.task = None;
    match result {
        Some(path) => {
            actions.write(purpose.action(path));
        }
        // Nothing, at once: there is no portal to show a dialog. Ask for a typed path.
        None if quick => dialogs.prompt = Some(prompt_for(purpose, &doc, clock.now_s())),
        None => {}
    }
}

/// The typed-path window; returns actions.
pub fn path_prompt_ui(ctx: &egui::Context, prompt: &mut Option<PathPrompt>) -> Vec<AppAction> {
    let mut out = Vec::new();
    let Some(p) = prompt.as_mut() else { return out };
    let mut close = false;
    egui::Window::new(p.purpose.title())
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
        .show(ctx, |ui| {
            ui.label(format!(
                "{} (no file dialog is available on this desktop):",
                p.purpose.what()
            ));
            let edit = ui.add(
                egui::TextEdit::singleline(&mut p.text)
                    .desired_width(420.0)
                    .hint_text("scenarios/teaching/retry-storm.ron"),
            );
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                let ok = ui.button(p.purpose.verb()).clicked();
                if (ok || enter) && !p.text.trim().is_empty() {
                    out.push(p.purpose.action(PathBuf::from(p.text.trim())));
                    close = true;
                }
                if ui.button("Cancel").clicked() {
                    close = true;
                }
            });
        });
    if close {
        *prompt = None;
    }
    out
}

/// The error window (file load failures, rejected edits, a run the engine stopped).
pub fn error_window_ui(ctx: &egui::Context, errors: &ErrorWindow) -> Vec<AppAction> {
    let mut out = Vec::new();
    let Some((title, body)) = &errors.open else {
        return out;
    };
    egui::Window::new(RichText::new(title).strong())
        .id(egui::Id::new("error-window"))
        .collapsible(false)
        .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
        .show(ctx, |ui| {
            let note = if errors.run_stopped {
                "The run has stopped; the scenario is unchanged."
            } else {
                "The current run is unchanged."
            };
            ui.label(RichText::new(note).weak());
            egui::ScrollArea::vertical()
                .max_height(320.0)
                .show(ui, |ui| {
                    ui.label(RichText::new(body).monospace());
                });
            if ui.button("OK").clicked() {
                out.push(AppAction::DismissError);
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: Option<&str>) -> Document {
        let scenario =
            cascade_sim::scenario::Scenario::from_ron_str(crate::DEFAULT_SCENARIO, "built-in")
                .expect("the built-in scenario parses");
        Document::new(scenario, path.map(PathBuf::from))
    }

    #[test]
    fn an_export_is_named_after_the_scenario_file_and_the_simulated_second() {
        let storm = doc(Some("scenarios/teaching/retry-storm.ron"));
        assert_eq!(
            export_suggestion(&storm, 45.9, Purpose::ExportData),
            PathBuf::from("exports/retry-storm-45s")
        );
        assert_eq!(
            export_suggestion(&storm, 45.9, Purpose::ExportPicture),
            PathBuf::from("exports/retry-storm-45s.png")
        );
        assert_eq!(
            export_suggestion(&doc(None), 0.2, Purpose::ExportData),
            PathBuf::from("exports/untitled-0s")
        );
        assert_eq!(
            export_suggestion(&storm, 45.9, Purpose::SaveRecording),
            PathBuf::from("scenarios/teaching/retry-storm-45s-recorded.ron")
        );
    }

    #[test]
    fn each_purpose_ends_in_its_own_action() {
        let p = PathBuf::from("x");
        assert_eq!(
            Purpose::Open.action(p.clone()),
            AppAction::OpenPath(p.clone())
        );
        assert_eq!(
            Purpose::Save.action(p.clone()),
            AppAction::SaveAsPath(p.clone())
        );
        assert_eq!(
            Purpose::ExportData.action(p.clone()),
            AppAction::ExportDataTo(p.clone())
        );
        assert_eq!(
            Purpose::ExportPicture.action(p.clone()),
            AppAction::ExportPictureTo(p.clone())
        );
        assert_eq!(
            Purpose::SaveRecording.action(p.clone()),
            AppAction::SaveRecordingTo(p)
        );
    }
}
