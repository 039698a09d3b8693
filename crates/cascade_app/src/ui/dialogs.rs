//! Dialogs: open / save with the system's file dialog (rfd over the XDG desktop portal), a
//! typed-path window when no dialog can be shown, the error window, and the right-click menu.
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
) {
    for (asked, purpose) in [
        (std::mem::take(&mut requests.open_dialog), Purpose::Open),
        (std::mem::take(&mut requests.save_dialog), Purpose::Save),
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
        if !portal_available() {
            dialogs.prompt = Some(prompt_for(purpose, &doc));
            continue;
        }
        let file_name = doc
            .path
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario.ron".into());
        let task = AsyncComputeTaskPool::get().spawn(async move {
            let mut dialog = rfd::AsyncFileDialog::new().add_filter("Cascade scenario", &["ron"]);
            if let Some(dir) = default_dir {
                dialog = dialog.set_directory(dir);
            }
            let file = match purpose {
                Purpose::Open => dialog.pick_file().await,
                Purpose::Save => dialog.set_file_name(file_name).save_file().await,
            };
            file.map(|f| f.path().to_path_buf())
        });
        dialogs.task = Some((purpose, task, Instant::now()));
    }
}

fn prompt_for(purpose: Purpose, doc: &Document) -> PathPrompt {
    let text = match purpose {
        Purpose::Open => String::new(),
        Purpose::Save => doc
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "scenarios/my-scenario.ron".into()),
    };
    PathPrompt { purpose, text }
}

/// Polls a running system dialog.
pub fn poll_dialogs(
    mut dialogs: ResMut<Dialogs>,
    doc: Res<Document>,
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
    match (result, purpose) {
        (Some(path), Purpose::Open) => {
            actions.write(AppAction::OpenPath(path));
        }
        (Some(path), Purpose::Save) => {
            actions.write(AppAction::SaveAsPath(path));
        }
        // Nothing, at once: there is no portal to show a dialog. Ask for a typed path.
        (None, _) if quick => dialogs.prompt = Some(prompt_for(purpose, &doc)),
        (None, _) => {}
    }
}

/// The typed-path window; returns actions.
pub fn path_prompt_ui(ctx: &egui::Context, prompt: &mut Option<PathPrompt>) -> Vec<AppAction> {
    let mut out = Vec::new();
    let Some(p) = prompt.as_mut() else { return out };
    let mut close = false;
    let title = match p.purpose {
        Purpose::Open => "Open scenario",
        Purpose::Save => "Save scenario as",
    };
    egui::Window::new(title)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
        .show(ctx, |ui| {
            ui.label("Path of the .ron file (no file dialog is available on this desktop):");
            let edit = ui.add(
                egui::TextEdit::singleline(&mut p.text)
                    .desired_width(420.0)
                    .hint_text("scenarios/teaching/retry-storm.ron"),
            );
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                let ok = ui
                    .button(if p.purpose == Purpose::Open {
                        "Open"
                    } else {
                        "Save"
                    })
                    .clicked();
                if (ok || enter) && !p.text.trim().is_empty() {
                    let path = PathBuf::from(p.text.trim());
                    out.push(match p.purpose {
                        Purpose::Open => AppAction::OpenPath(path),
                        Purpose::Save => AppAction::SaveAsPath(path),
                    });
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
