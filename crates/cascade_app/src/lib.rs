//! `cascade_app`: the Cascade desktop program.
//!
//! A person opens a scenario, runs it, breaks a component with a click and watches the
//! failure travel. The app steps the very same `cascade_sim::SimPlugin` schedule as
//! `cascade-cli`; it only reads the simulation world and sends `SimCommand`s into it.
//!
//! # Plugins
//!
//! | module | owns |
//! |---|---|
//! | [`session`] | the document, selection, undo/redo, every user action |
//! | [`playback`] | play, pause, step, speed (drives `FixedUpdate` through `Time<Virtual>`) |
//! | [`settings`] | recent files and panel layout, remembered between runs |
//! | [`canvas`] | the graph drawn with Bevy 2D: nodes, edges, particles, camera, pointer |
//! | [`ui`] | egui panels, dialogs, keyboard shortcuts |
//! | [`compare`] | A/B: another scenario run beside this one under its seed and faults |
//! | [`export`] | *File → Export*: the run's data files and a picture of the window |
//! | [`story`] | story mode: the current step of a scenario's story, pauses exactly at a step |
//! | [`screenshot`] | `--screenshot` and `--measure-frames` modes |
//!
//! # Sets (in `Update`, in order)
//!
//! `AppSystems::Input` (pointer and keys → actions) → `AppSystems::Apply` (actions → document
//! and `SimCommand`s) → `AppSystems::Sync` (visuals from the simulation). `Playback` runs in
//! `PreUpdate`, before the fixed main loop; panels run in `EguiPrimaryContextPass`.

pub mod args;
pub mod canvas;
pub mod compare;
pub mod export;
pub mod playback;
pub mod screenshot;
pub mod session;
pub mod settings;
pub mod story;
pub mod theme;
pub mod ui;

use bevy::prelude::*;
use cascade_sim::SimPlugin;
use cascade_sim::scenario::Scenario;

pub use args::Args;

/// The app's system sets in `Update`, run in this order.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppSystems {
    /// Configure clocks before the fixed loop (in `PreUpdate`).
    Playback,
    /// Pointer and keyboard → actions.
    Input,
    /// Actions → document edits and simulation commands.
    Apply,
    /// Visuals follow the simulation.
    Sync,
}

/// The retry-storm teaching scenario, built in so the app always has something to open.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/teaching/retry-storm.ron");

/// The scenario to open at start, from the arguments.
pub fn initial_document(args: &Args) -> Result<session::Document, String> {
    if let Some(path) = &args.scenario {
        return session::load_document(path);
    }
    if let Some(n) = args.layered {
        let params = cascade_sim::generate::LayeredParams {
            services: n.max(1),
            duration_s: 600.0,
            ..Default::default()
        };
        return Ok(session::Document::new(
            cascade_sim::generate::layered(&params),
            None,
        ));
    }
    let on_disk = ui::library::library_root()
        .map(|r| r.join("teaching/retry-storm.ron"))
        .filter(|p| p.exists());
    match on_disk {
        Some(path) => session::load_document(&path),
        None => Scenario::from_ron_str(DEFAULT_SCENARIO, "built-in")
            .map(|s| session::Document::new(s, None))
            .map_err(|e| e.to_string()),
    }
}

/// The simulation with its session and playback, without any window or renderer: what the
/// app shows, testable headless.
pub struct SimViewPlugins {
    /// The document to open.
    pub document: session::Document,
}

impl Plugin for SimViewPlugins {
    fn build(&self, app: &mut App) {
        app.add_plugins(SimPlugin)
            .configure_sets(
                Update,
                (AppSystems::Input, AppSystems::Apply, AppSystems::Sync).chain(),
            )
            .configure_sets(PreUpdate, AppSystems::Playback)
            .add_plugins((
                session::plugin,
                playback::plugin,
                settings::plugin,
                export::plugin,
                story::plugin,
                compare::plugin,
            ));
        if !app.world().contains_resource::<canvas::BuildTool>() {
            app.init_resource::<canvas::BuildTool>();
        }
        cascade_sim::engine::load_scenario(app.world_mut(), &self.document.scenario);
        app.insert_resource(self.document.clone());
    }
}

/// The whole desktop app (add after `DefaultPlugins` and `EguiPlugin`).
pub struct AppPlugin {
    /// Command-line options.
    pub args: Args,
    /// The document to open.
    pub document: session::Document,
}

impl Plugin for AppPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins(SimViewPlugins {
            document: self.document.clone(),
        })
        .add_plugins((
            canvas::plugin,
            ui::plugin,
            screenshot::plugin(self.args.clone()),
        ));
        let mut playback = app.world_mut().resource_mut::<playback::Playback>();
        playback.speed = if self.args.speed > 0.0 {
            playback::Speed::Times(self.args.speed)
        } else {
            playback::Speed::Max
        };
        app.insert_resource(canvas::ParticleDensity {
            journeys_per_s: self.args.journeys_per_second.max(0.1),
        });
        if let Some(node) = &self.args.select {
            app.world_mut().resource_mut::<session::Selection>().node = Some(node.clone());
        }
        if let Some(path) = &self.args.compare {
            app.world_mut()
                .write_message(session::AppAction::CompareWith(path.clone()));
        }
    }
}
