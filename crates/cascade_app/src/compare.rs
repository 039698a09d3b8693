//! A/B comparison: another scenario file (B) runs beside the one on screen (A) under A's seed
//! and A's faults — the scripted ones and those broken live, at their times — and keeps pace
//! with A's clock, so the charts can draw B's goodput, errors and p99 over A's and the top bar
//! can show B's verdict. B is a headless [`Simulation`] of `cascade_sim`; it is rebuilt from
//! scratch (replayed to A's moment) whenever A's faults, seed or time line change (a live
//! fault, a clear, a reset, going back), so it never drifts from "B under A's faults"; A's
//! edits are A's design and leave B alone.
//!
//! Faults on nodes B does not have are left out of B (the notice says how many). Owns the
//! comparison run; not the charts' drawing (`ui::charts`) nor the dialog that picks B. Started
//! and stopped by `AppAction::CompareWith` / `AppAction::StopComparing`.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use cascade_sim::scenario::{FaultSpec, Scenario};
use cascade_sim::{CommandLog, Engine, SimClock, SimCommand, Simulation};

use crate::session::{ErrorWindow, Notice};

/// Compare plugin.
pub(crate) fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        keep_pace
            .after(crate::AppSystems::Apply)
            .before(crate::AppSystems::Sync),
    );
}

/// The B run (a non-send resource: a [`Simulation`] owns a whole Bevy app).
pub struct Comparison {
    /// B's file.
    pub path: PathBuf,
    /// B as read from its file.
    base: Scenario,
    /// B under A's seed and faults, running.
    pub sim: Simulation,
    /// What B was built from: A's seed, and how many fault commands A had applied.
    built_from: (u64, usize),
    /// A's faults left out of B (their nodes are not in B).
    pub faults_left_out: usize,
}

impl Comparison {
    /// A short name for B: its file's stem.
    pub fn label(&self) -> String {
        self.path
            .file_stem()
            .map_or_else(|| "B".to_owned(), |s| s.to_string_lossy().into_owned())
    }
}

/// B under A's seed and A's faults: `(scenario, faults left out)`.
pub fn b_under_a(
    base: &Scenario,
    seed: u64,
    a_faults: &[cascade_sim::faults::FaultRecord],
) -> (Scenario, usize) {
    let recorded = cascade_sim::replay::recorded_scenario(base, a_faults);
    let has = |name: &str| base.service(name).is_some() || base.source(name).is_some();
    let (kept, left): (Vec<FaultSpec>, Vec<FaultSpec>) = recorded
        .faults
        .into_iter()
        .partition(|f| f.fault.named_nodes().into_iter().all(has));
    let mut b = Scenario {
        faults: kept,
        ..recorded
    };
    b.seed = seed;
    // Journeys animate A's canvas only.
    b.sample_every = 0;
    (b, left.len())
}

fn build(world: &World, path: &Path, base: Scenario) -> Result<Comparison, String> {
    let seed = world.resource::<cascade_sim::ActiveScenario>().0.seed;
    let (b, left_out) = b_under_a(&base, seed, &world.resource::<Engine>().faults);
    let problems = cascade_sim::scenario::validate(&b);
    if let Some(p) = problems.first() {
        return Err(format!(
            "B under A's faults is not valid: {}: {}",
            p.path, p.message
        ));
    }
    let mut sim = Simulation::new(&b);
    sim.run_ticks(world.resource::<SimClock>().ticks_done);
    Ok(Comparison {
        path: path.to_path_buf(),
        base,
        sim,
        built_from: (seed, fault_commands(world)),
        faults_left_out: left_out,
    })
}

/// Starts comparing with the scenario at `path` (see [`AppAction::CompareWith`]).
pub fn start(world: &mut World, path: &Path) {
    let result = cascade_sim::scenario::load(path)
        .map_err(|e| e.to_string())
        .and_then(|base| build(world, path, base));
    match result {
        Ok(c) => {
            let left = if c.faults_left_out > 0 {
                format!(
                    " ({} fault(s) on nodes it lacks left out)",
                    c.faults_left_out
                )
            } else {
                String::new()
            };
            world.resource_mut::<Notice>().text = format!(
                "comparing with {} under the same seed and faults{left}",
                c.label()
            );
            world.insert_non_send(c);
        }
        Err(reason) => world
            .resource_mut::<ErrorWindow>()
            .show(format!("Could not compare with {}", path.display()), reason),
    }
}

/// Stops comparing.
pub fn stop(world: &mut World) {
    world.remove_non_send::<Comparison>();
}

/// How many of A's commands changed its faults (the only ones B follows: A's edits are A's
/// design, and a change of journey sampling changes no result).
fn fault_commands(world: &World) -> usize {
    world.get_resource::<CommandLog>().map_or(0, |log| {
        log.applied
            .iter()
            .filter(|(_, c)| {
                matches!(
                    c,
                    SimCommand::InjectFault { .. }
                        | SimCommand::ClearFault(_)
                        | SimCommand::ClearAllFaults
                )
            })
            .count()
    })
}

fn keep_pace(world: &mut World) {
    let Some(mut cmp) = world.remove_non_send::<Comparison>() else {
        return;
    };
    let a_ticks = world.resource::<SimClock>().ticks_done;
    let seed = world.resource::<cascade_sim::ActiveScenario>().0.seed;
    let b_ticks = cmp.sim.world().resource::<SimClock>().ticks_done;
    if (seed, fault_commands(world)) != cmp.built_from || a_ticks < b_ticks {
        // A's faults, seed or time line changed: B is replayed under the new ones.
        match build(world, &cmp.path.clone(), cmp.base.clone()) {
            Ok(rebuilt) => cmp = rebuilt,
            Err(reason) => {
                world
                    .resource_mut::<ErrorWindow>()
                    .show("The comparison stopped".to_owned(), reason);
                return;
            }
        }
    } else if a_ticks > b_ticks {
        cmp.sim.run_ticks(a_ticks - b_ticks);
    }
    world.insert_non_send(cmp);
}
