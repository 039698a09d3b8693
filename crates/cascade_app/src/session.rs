//! The open document and everything the user asks of it.
//!
//! [`Document`] is the scenario as the user sees and edits it (positions included) and where
//! it lives on disk; the simulation runs a copy (`cascade_sim::ActiveScenario`) that changes
//! only through `SimCommand`s. Panels, the keyboard and the canvas never change state
//! directly: they emit [`AppAction`] messages, and [`apply_actions`] turns each into document
//! edits, undo entries and simulation commands. Every edit and every fault is undoable.
//!
//! A file that fails to load or an edit that does not validate leaves the document and the
//! running simulation untouched and opens an error window with the same `file:line:col`
//! message as `cascade-cli validate`. Dialogs and settings live in `dialogs.rs` and
//! `settings.rs`.

use std::path::PathBuf;

use bevy::prelude::*;
use cascade_sim::faults::FaultId;
use cascade_sim::scenario::{self, FaultKind, Scenario};
use cascade_sim::{Engine, Halt, SimCommand};

use crate::canvas::BuildTool;
use crate::playback::{Playback, Speed};
use crate::settings::{PanelLayout, Settings};

/// Session plugin: document, selection, undo history, action handling.
pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<UndoHistory>()
        .init_resource::<Selection>()
        .init_resource::<ErrorWindow>()
        .init_resource::<Notice>()
        .init_resource::<ViewRequests>()
        .add_message::<AppAction>()
        .add_systems(Update, apply_actions.in_set(crate::AppSystems::Apply))
        .add_systems(Update, pause_on_halt.after(crate::AppSystems::Apply));
}

/// The scenario being shown, edited and saved.
#[derive(Resource, Debug, Clone)]
pub struct Document {
    /// The scenario as edited (what Save writes).
    pub scenario: Scenario,
    /// Where it was loaded from or last saved to.
    pub path: Option<PathBuf>,
    /// Changed since last saved.
    pub dirty: bool,
    /// Bumped on every change of structure or positions (views rebuild on it).
    pub version: u64,
}

impl Document {
    /// A document for a freshly loaded scenario.
    pub fn new(scenario: Scenario, path: Option<PathBuf>) -> Self {
        Document {
            scenario,
            path,
            dirty: false,
            version: 0,
        }
    }

    /// The file name or "untitled".
    pub fn title(&self) -> String {
        self.path.as_ref().and_then(|p| p.file_name()).map_or_else(
            || "untitled".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// What is selected on the canvas or in the fault list.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// A node, by name.
    pub node: Option<String>,
    /// A call edge, `(caller, callee)`.
    pub edge: Option<(String, String)>,
    /// A live fault (Delete clears it).
    pub fault: Option<FaultId>,
}

/// What the user asked for. Produced by panels, keys and the canvas; applied by [`apply_actions`].
#[derive(Message, Debug, Clone, PartialEq)]
pub enum AppAction {
    /// Open a scenario file.
    OpenPath(PathBuf),
    /// Show the open-file dialog.
    OpenDialog,
    /// Save to the current path (or ask for one).
    Save,
    /// Save to this path.
    SaveAsPath(PathBuf),
    /// Show the save-as dialog.
    SaveAsDialog,
    /// Show the dialog for a folder to export the run's data into.
    ExportDataDialog,
    /// Write the run's data files (metrics.csv, events.jsonl, summary.json) into this folder
    /// (handled by [`crate::export`]).
    ExportDataTo(PathBuf),
    /// Show the dialog for a picture's path.
    ExportPictureDialog,
    /// Save a picture of the window to this PNG file (handled by [`crate::export`]).
    ExportPictureTo(PathBuf),
    /// Show the dialog for where to save the run as a scenario.
    SaveRecordingDialog,
    /// Save the run as a scenario whose faults are the run's, at their times
    /// (`cascade_sim::replay::recorded_scenario`): opening it replays them.
    SaveRecordingTo(PathBuf),
    /// Show the dialog for a scenario to compare with.
    CompareDialog,
    /// Run this scenario beside the one on screen, under its seed and faults
    /// ([`crate::compare`]).
    CompareWith(PathBuf),
    /// End the comparison.
    StopComparing,
    /// Show the dialog for a recorded traffic trace (CSV) to replay as this source's rate.
    ReplayRateDialog(String),
    /// Read this CSV trace into the rate of the source the dialog was opened for
    /// (`cascade_report::rate_trace`), as one undoable edit.
    ReplayRateFrom(PathBuf),
    /// Go back to this simulated second: the run is replayed to it and what came after is
    /// dropped (`cascade_sim::replay`); playing on from there is a branch.
    RewindTo(f64),
    /// Restart the run from t = 0, optionally with another seed.
    Reset {
        /// New seed, or keep the current one.
        seed: Option<u64>,
    },
    /// Replace the document with an edited version (applied live to the simulation).
    Edit {
        /// The edited scenario.
        scenario: Box<Scenario>,
        /// What changed, for the undo list.
        label: String,
    },
    /// Break something now.
    InjectFault {
        /// Kind and target.
        fault: FaultKind,
        /// Seconds, or until cleared.
        duration_s: Option<f64>,
    },
    /// End one fault.
    ClearFault(FaultId),
    /// End all faults.
    ClearAllFaults,
    /// Undo the last edit or fault.
    Undo,
    /// Redo what was undone.
    Redo,
    /// Play ↔ pause.
    TogglePlay,
    /// Advance one tick while paused.
    Step,
    /// Set the speed.
    SetSpeed(Speed),
    /// One notch faster.
    Faster,
    /// One notch slower.
    Slower,
    /// Change the selection.
    Select(Selection),
    /// Fit the graph into the view.
    FitView,
    /// Close the error window.
    DismissError,
    /// Publish every Nth request's journey (particles).
    SetSampling(u32),
    /// Build mode on or off.
    SetBuilding(bool),
    /// Show or hide panels.
    SetPanels(PanelLayout),
}

/// One undoable step.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoEntry {
    /// A document edit.
    Edit {
        /// Before.
        before: Box<Scenario>,
        /// After.
        after: Box<Scenario>,
        /// What changed.
        label: String,
    },
    /// A fault injected from the UI.
    Fault {
        /// Kind and target.
        fault: FaultKind,
        /// Its duration.
        duration_s: Option<f64>,
    },
}

impl UndoEntry {
    /// Label for menus and tooltips.
    pub fn label(&self) -> String {
        match self {
            UndoEntry::Edit { label, .. } => label.clone(),
            UndoEntry::Fault { fault, .. } => {
                format!("{} on {}", fault.label(), fault.target_label())
            }
        }
    }
}

/// Undo and redo stacks.
#[derive(Resource, Debug, Clone, Default)]
pub struct UndoHistory {
    /// Most recent last.
    pub undo: Vec<UndoEntry>,
    /// Most recently undone last.
    pub redo: Vec<UndoEntry>,
    /// Label and real time of the last edit (to fold repeated edits of one value).
    pub last_edit: Option<(String, f64)>,
}

/// A modal error message (load failures, rejected edits, a run the engine stopped).
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ErrorWindow {
    /// Title and body, when open.
    pub open: Option<(String, String)>,
    /// The run stopped (the window says so instead of "the current run is unchanged").
    pub run_stopped: bool,
}

impl ErrorWindow {
    /// Opens the window for a problem that leaves the run as it was.
    pub fn show(&mut self, title: String, body: String) {
        self.open = Some((title, body));
        self.run_stopped = false;
    }
}

/// A short status line message (saved, opened…).
#[derive(Resource, Debug, Clone, Default)]
pub struct Notice {
    /// The text.
    pub text: String,
}

/// One-shot requests to views (fit the camera, open dialogs), consumed by their systems.
#[derive(Resource, Debug, Clone, Default)]
pub struct ViewRequests {
    /// Fit the graph into the view.
    pub fit: bool,
    /// Show the open dialog.
    pub open_dialog: bool,
    /// Show the save-as dialog.
    pub save_dialog: bool,
    /// Show the export-data dialog.
    pub export_data_dialog: bool,
    /// Show the export-picture dialog.
    pub export_picture_dialog: bool,
    /// Show the save-run-as-scenario dialog.
    pub save_recording_dialog: bool,
    /// Show the compare-with dialog.
    pub compare_dialog: bool,
    /// Show the dialog for a traffic trace to replay as this source's rate.
    pub replay_rate_dialog: Option<String>,
    /// The source a chosen traffic trace is for (kept from the dialog's start to its answer).
    pub replay_rate_source: Option<String>,
}

/// Applies an edit to the document and the running simulation and records it for undo (edits
/// of the same thing within a second fold into one step: dragging a value changes it every
/// frame). On failure nothing changes and the message says why.
fn record_edit(
    doc: &mut Document,
    history: &mut UndoHistory,
    sim: &mut MessageWriter<SimCommand>,
    scenario: Scenario,
    label: String,
    now_s: f64,
) -> Result<(), String> {
    let before = edit(doc, scenario, sim)?;
    let after = Box::new(doc.scenario.clone());
    let fold = history
        .last_edit
        .as_ref()
        .is_some_and(|(l, t)| *l == label && now_s - t < 1.0);
    match history.undo.last_mut() {
        Some(UndoEntry::Edit {
            after: last_after, ..
        }) if fold => *last_after = after,
        _ => history.undo.push(UndoEntry::Edit {
            before: Box::new(before),
            after,
            label: label.clone(),
        }),
    }
    history.last_edit = Some((label, now_s));
    history.redo.clear();
    Ok(())
}

/// `scenario` with source `source` replaying the traffic trace at `path`, and the edit's
/// label; or what is wrong with the file.
pub fn replayed(
    scenario: &Scenario,
    source: &str,
    path: &std::path::Path,
) -> Result<(Scenario, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let points = cascade_report::rate_trace::points_from_csv(&text, &Default::default())
        .map_err(|e| e.to_string())?;
    let mut s = scenario.clone();
    let slot = s
        .sources
        .iter_mut()
        .find(|x| x.name == source)
        .ok_or_else(|| format!("there is no source named {source} any more"))?;
    slot.rate = cascade_report::rate_trace::profile(points);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((s, format!("replay {name} on {source}")))
}

/// Loads a file into a new document; on failure returns the message to show.
pub fn load_document(path: &std::path::Path) -> Result<Document, String> {
    scenario::load(path)
        .map(|s| Document::new(s, Some(path.to_path_buf())))
        .map_err(|e| e.to_string())
}

/// The error window's title and body for a run the engine stopped.
pub fn halt_message(halt: &Halt) -> (String, String) {
    (
        "The simulation stopped".to_owned(),
        format!(
            "{}.\n\nHint: {}. Your scenario is as you left it: edit it and press Reset.",
            upper_first(&halt.reason),
            halt.hint
        ),
    )
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// When the engine stops a run (it needed more memory than a run may hold), pauses playback
/// and says why, once per stop; the document is left as it is.
pub fn pause_on_halt(
    engine: Res<Engine>,
    mut shown: Local<bool>,
    mut playback: ResMut<Playback>,
    mut errors: ResMut<ErrorWindow>,
) {
    match (&engine.halted, *shown) {
        (Some(halt), false) => {
            playback.playing = false;
            errors.open = Some(halt_message(halt));
            errors.run_stopped = true;
            *shown = true;
        }
        (None, true) => *shown = false,
        _ => {}
    }
}

/// Applies every queued [`AppAction`].
pub fn apply_actions(
    mut actions: MessageReader<AppAction>,
    mut doc: ResMut<Document>,
    mut history: ResMut<UndoHistory>,
    mut selection: ResMut<Selection>,
    mut errors: ResMut<ErrorWindow>,
    mut notice: ResMut<Notice>,
    mut playback: ResMut<Playback>,
    mut requests: ResMut<ViewRequests>,
    mut settings: ResMut<Settings>,
    engine: Res<Engine>,
    mut build: ResMut<BuildTool>,
    time: Res<Time<Real>>,
    mut sim: MessageWriter<SimCommand>,
    mut commands: Commands,
) {
    for action in actions.read() {
        match action.clone() {
            AppAction::OpenPath(path) => match load_document(&path) {
                Ok(new_doc) => {
                    sim.write(SimCommand::LoadScenario(Box::new(new_doc.scenario.clone())));
                    let version = doc.version + 1;
                    *doc = new_doc;
                    doc.version = version;
                    *history = UndoHistory::default();
                    *selection = Selection::default();
                    settings.remember(&path);
                    notice.text = format!("opened {}", path.display());
                    requests.fit = true;
                }
                Err(message) => {
                    errors.show(format!("Could not open {}", path.display()), message);
                }
            },
            AppAction::OpenDialog => requests.open_dialog = true,
            AppAction::SaveAsDialog => requests.save_dialog = true,
            AppAction::ExportDataDialog => requests.export_data_dialog = true,
            AppAction::ExportPictureDialog => requests.export_picture_dialog = true,
            // Exports read the whole world: `crate::export` handles them.
            AppAction::ExportDataTo(_) | AppAction::ExportPictureTo(_) => {}
            AppAction::SaveRecordingDialog => requests.save_recording_dialog = true,
            AppAction::SaveRecordingTo(path) => {
                commands.queue(move |world: &mut World| save_recording(world, &path));
            }
            AppAction::CompareDialog => requests.compare_dialog = true,
            AppAction::CompareWith(path) => {
                commands.queue(move |world: &mut World| crate::compare::start(world, &path));
            }
            AppAction::StopComparing => commands.queue(crate::compare::stop),
            AppAction::RewindTo(to_s) => {
                commands.queue(move |world: &mut World| rewind_run(world, to_s));
            }
            AppAction::Save => match doc.path.clone() {
                Some(path) => save(&mut doc, &path, &mut errors, &mut notice, &mut settings),
                None => requests.save_dialog = true,
            },
            AppAction::SaveAsPath(path) => {
                save(&mut doc, &path, &mut errors, &mut notice, &mut settings);
            }
            AppAction::Reset { seed } => {
                if let Some(seed) = seed {
                    doc.scenario.seed = seed;
                    doc.dirty = true;
                }
                sim.write(SimCommand::LoadScenario(Box::new(doc.scenario.clone())));
                notice.text = format!("reset (seed {})", doc.scenario.seed);
            }
            AppAction::Edit { scenario, label } => {
                let now = time.elapsed_secs_f64();
                if let Err(message) =
                    record_edit(&mut doc, &mut history, &mut sim, *scenario, label, now)
                {
                    errors.show("That edit is not valid".to_owned(), message);
                }
            }
            AppAction::ReplayRateDialog(source) => {
                requests.replay_rate_dialog = Some(source.clone());
                requests.replay_rate_source = Some(source);
            }
            AppAction::ReplayRateFrom(path) => {
                let Some(source) = requests.replay_rate_source.take() else {
                    continue;
                };
                let now = time.elapsed_secs_f64();
                let result = replayed(&doc.scenario, &source, &path).and_then(|(s, label)| {
                    record_edit(&mut doc, &mut history, &mut sim, s, label, now)
                });
                match result {
                    Ok(()) => notice.text = format!("{source} replays {}", path.display()),
                    Err(message) => {
                        errors.show(format!("Could not replay {}", path.display()), message);
                    }
                }
            }
            AppAction::InjectFault { fault, duration_s } => {
                sim.write(SimCommand::InjectFault {
                    fault: fault.clone(),
                    duration_s,
                });
                history.undo.push(UndoEntry::Fault { fault, duration_s });
                history.redo.clear();
            }
            AppAction::ClearFault(id) => {
                sim.write(SimCommand::ClearFault(id));
                if selection.fault == Some(id) {
                    selection.fault = None;
                }
            }
            AppAction::ClearAllFaults => {
                sim.write(SimCommand::ClearAllFaults);
            }
            AppAction::Undo => {
                history.last_edit = None;
                undo(&mut doc, &mut history, &engine, &mut sim, &mut notice);
            }
            AppAction::Redo => redo(&mut doc, &mut history, &mut sim, &mut notice),
            AppAction::TogglePlay => playback.playing = !playback.playing,
            AppAction::Step => {
                playback.playing = false;
                playback.step_requested = true;
            }
            AppAction::SetSpeed(speed) => playback.speed = speed,
            AppAction::Faster => playback.speed = playback.speed.faster(),
            AppAction::Slower => playback.speed = playback.speed.slower(),
            AppAction::Select(s) => *selection = s,
            AppAction::FitView => requests.fit = true,
            AppAction::DismissError => errors.open = None,
            AppAction::SetSampling(every) => {
                sim.write(SimCommand::SetSampling { every });
            }
            AppAction::SetBuilding(on) => build.building = on,
            AppAction::SetPanels(panels) => settings.panels = panels,
        }
    }
}

/// Saves the run as a scenario (see [`AppAction::SaveRecordingTo`]): the document as it
/// stands, with the run's faults at their times. The document itself is unchanged; the file
/// joins the recent files.
fn save_recording(world: &mut World, path: &std::path::Path) {
    let base = world.resource::<Document>().scenario.clone();
    let faults = world.resource::<Engine>().faults.clone();
    let edits = world
        .get_resource::<cascade_sim::CommandLog>()
        .map_or(0, |log| {
            log.applied
                .iter()
                .filter(|(_, c)| matches!(c, SimCommand::Reconfigure(_)))
                .count()
        });
    let recorded = cascade_sim::replay::recorded_scenario(&base, &faults);
    let problems = scenario::validate(&recorded);
    let result = if problems.is_empty() {
        cascade_report::write_file(path, recorded.to_ron_string().as_bytes())
            .map_err(|e| e.to_string())
    } else {
        let text = recorded.to_ron_string();
        Err(scenario::ScenarioError::from_diagnostics("recording", &text, problems).to_string())
    };
    match result {
        Ok(()) => {
            world.resource_mut::<Settings>().remember(path);
            let later = if edits > 0 {
                format!("; the {edits} edit(s) made during the run apply from its start")
            } else {
                String::new()
            };
            world.resource_mut::<Notice>().text = format!(
                "saved the run as {} ({} fault(s) at their times{later})",
                path.display(),
                recorded.faults.len()
            );
        }
        Err(reason) => world.resource_mut::<ErrorWindow>().show(
            format!("Could not save the run as {}", path.display()),
            reason,
        ),
    }
}

/// Goes back to `to_s` (see [`AppAction::RewindTo`]): the document becomes the scenario as it
/// ran then (edits made later are gone), the undo history is cleared (its steps lie in the
/// dropped future), and the run waits, paused, at that moment.
fn rewind_run(world: &mut World, to_s: f64) {
    let to_ns = cascade_sim::time::s_to_ns(to_s.max(0.0));
    if let Err(reason) = cascade_sim::replay::rewind(world, to_ns) {
        world
            .resource_mut::<ErrorWindow>()
            .show("Could not go back".to_owned(), reason);
        return;
    }
    let then = world.resource::<cascade_sim::ActiveScenario>().0.clone();
    let mut doc = world.resource_mut::<Document>();
    if doc.scenario != then {
        doc.scenario = then;
        doc.dirty = true;
        doc.version += 1;
    }
    *world.resource_mut::<UndoHistory>() = UndoHistory::default();
    world.resource_mut::<Selection>().fault = None;
    world.resource_mut::<Playback>().playing = false;
    let now_s = world.resource::<cascade_sim::SimClock>().now_s();
    world.resource_mut::<Notice>().text =
        format!("back at {now_s:.1} s: what came after is gone; play on for a what-if");
}

/// Validates and applies an edit: the document changes and the simulation is reconfigured.
/// Returns the previous scenario (for the undo stack); nothing changes if it does not validate.
fn edit(
    doc: &mut Document,
    new: Scenario,
    sim: &mut MessageWriter<SimCommand>,
) -> Result<Scenario, String> {
    let problems = scenario::validate(&new);
    if !problems.is_empty() {
        let text = new.to_ron_string();
        return Err(scenario::ScenarioError::from_diagnostics("edit", &text, problems).to_string());
    }
    sim.write(SimCommand::Reconfigure(Box::new(new.clone())));
    let before = std::mem::replace(&mut doc.scenario, new);
    doc.dirty = true;
    doc.version += 1;
    Ok(before)
}

fn save(
    doc: &mut Document,
    path: &std::path::Path,
    errors: &mut ErrorWindow,
    notice: &mut Notice,
    settings: &mut Settings,
) {
    match scenario::save_to_path(&doc.scenario, path) {
        Ok(()) => {
            doc.path = Some(path.to_path_buf());
            doc.dirty = false;
            settings.remember(path);
            notice.text = format!("saved {}", path.display());
        }
        Err(e) => errors.show(format!("Could not save {}", path.display()), e.to_string()),
    }
}

fn undo(
    doc: &mut Document,
    history: &mut UndoHistory,
    engine: &Engine,
    sim: &mut MessageWriter<SimCommand>,
    notice: &mut Notice,
) {
    let Some(entry) = history.undo.pop() else {
        return;
    };
    match &entry {
        UndoEntry::Edit { before, label, .. } => {
            sim.write(SimCommand::Reconfigure(before.clone()));
            doc.scenario = (**before).clone();
            doc.dirty = true;
            doc.version += 1;
            notice.text = format!("undid: {label}");
        }
        UndoEntry::Fault { fault, .. } => {
            // The most recent live fault of this kind and target that is still in effect.
            if let Some(f) = engine
                .faults
                .iter()
                .rev()
                .find(|f| !f.scripted && f.active && f.kind == *fault)
            {
                sim.write(SimCommand::ClearFault(f.id));
            }
            notice.text = format!("undid: {}", entry.label());
        }
    }
    history.redo.push(entry);
}

fn redo(
    doc: &mut Document,
    history: &mut UndoHistory,
    sim: &mut MessageWriter<SimCommand>,
    notice: &mut Notice,
) {
    let Some(entry) = history.redo.pop() else {
        return;
    };
    match &entry {
        UndoEntry::Edit { after, label, .. } => {
            sim.write(SimCommand::Reconfigure(after.clone()));
            doc.scenario = (**after).clone();
            doc.dirty = true;
            doc.version += 1;
            notice.text = format!("redid: {label}");
        }
        UndoEntry::Fault { fault, duration_s } => {
            sim.write(SimCommand::InjectFault {
                fault: fault.clone(),
                duration_s: *duration_s,
            });
            notice.text = format!("redid: {}", entry.label());
        }
    }
    history.undo.push(entry);
}
