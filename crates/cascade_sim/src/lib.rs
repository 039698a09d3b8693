#![doc = include_str!("../README.md")]

pub mod causality;
pub mod commands;
pub mod dist;
pub mod engine;
pub mod events;
pub mod faults;
pub mod generate;
pub mod graph;
pub mod mechanisms;
pub mod metrics;
pub mod outcome;
pub mod replay;
pub mod retry;
pub mod rng;
pub mod runner;
pub mod sampling;
pub mod scenario;
pub mod summary;
pub mod testing;
pub mod text;
pub mod time;
pub mod verdict;

use bevy_app::{App, FixedUpdate, Plugin};
use bevy_ecs::prelude::*;

/// Whether the engine was built with its `expensive-checks` (the tests turn them on).
#[doc(hidden)]
pub const EXPENSIVE_CHECKS: bool = cfg!(feature = "expensive-checks");

pub use commands::{CommandLog, SimCommand};
pub use engine::{Engine, Halt, NodeRef};
pub use events::{EventLog, SimEvent, SimEventKind};
pub use metrics::{Health, MetricsHistory, NodeCounters, NodeRow, Outcome};
pub use runner::Simulation;
pub use sampling::{LegKind, SampledLeg};
pub use scenario::{Scenario, ScenarioError};
pub use summary::RunSummary;
pub use time::SimClock;
pub use verdict::{LiveVerdict, Verdict};

/// Phases of one simulation update, run in order in [`FixedUpdate`].
///
/// 1. `ApplyCommands`: apply queued [`SimCommand`]s (user edits, faults) at the tick boundary.
/// 2. `Step`: advance the model by `SimClock::ticks_per_update` ticks of exact-time events,
///    re-judging the live verdict at every interval close on the way.
/// 3. `Publish`: write sampled legs and events as messages.
///
/// Order new variants by adding them here and in [`SimPlugin::build`].
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSystems {
    /// Apply queued commands.
    ApplyCommands,
    /// Advance the model.
    Step,
    /// Publish outputs for views.
    Publish,
}

/// The scenario document the running world was built from (with live edits applied).
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct ActiveScenario(pub Scenario);

/// The simulation: resources, messages and the ordered [`SimSystems`] in [`FixedUpdate`].
/// Runs headless (CLI, tests) and inside the app alike. Load a scenario with
/// [`engine::load_scenario`] or a [`SimCommand::LoadScenario`] message.
pub struct SimPlugin;

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SimClock>()
            .init_resource::<Engine>()
            .init_resource::<MetricsHistory>()
            .init_resource::<EventLog>()
            .init_resource::<CommandLog>()
            .init_resource::<LiveVerdict>()
            .add_message::<SimCommand>()
            .add_message::<SampledLeg>()
            .add_message::<SimEvent>()
            .configure_sets(
                FixedUpdate,
                (
                    SimSystems::ApplyCommands,
                    SimSystems::Step,
                    SimSystems::Publish,
                )
                    .chain(),
            )
            .add_systems(
                FixedUpdate,
                (
                    commands::apply_commands.in_set(SimSystems::ApplyCommands),
                    step_and_judge.in_set(SimSystems::Step),
                    engine::publish_outputs.in_set(SimSystems::Publish),
                ),
            );
    }
}

/// Steps the engine through this update's ticks ([`engine::step_engine`]) one interval close
/// at a time, re-judging the live verdict after each. So a `verdict_changed` event is stamped
/// with the close that decided it, and no change is skipped, however many intervals one update
/// covers: the app at high speed covers many, the CLI one, and both log the same events.
pub(crate) fn step_and_judge(world: &mut World) {
    let (start, per_update) = {
        let clock = world.resource::<SimClock>();
        (clock.ticks_done, clock.ticks_per_update)
    };
    let end = start + u64::from(per_update);
    let interval_ticks = world.resource::<Engine>().model.interval_ticks.max(1);
    loop {
        let done = world.resource::<SimClock>().ticks_done;
        if done >= end {
            break;
        }
        let next_close = (done / interval_ticks + 1) * interval_ticks;
        let chunk = next_close.min(end) - done;
        world.resource_mut::<SimClock>().ticks_per_update = chunk as u32;
        let stepped = world.run_system_cached(engine::step_engine);
        debug_assert!(
            stepped.is_ok(),
            "the engine step is always runnable: {stepped:?}"
        );
        if stepped.is_err() {
            break;
        }
        update_live_verdict(world);
        if world.resource::<SimClock>().ticks_done == done {
            break; // nothing loaded, or the run halted: no progress to make
        }
    }
    world.resource_mut::<SimClock>().ticks_per_update = per_update;
}

/// Re-judges the run (live rule) when an interval has closed; logs verdict changes.
fn update_live_verdict(world: &mut World) {
    let intervals = world.resource::<MetricsHistory>().intervals();
    if intervals == world.resource::<LiveVerdict>().intervals {
        return;
    }
    // The health series is kept between closes, so each close costs O(smoothing), not O(run).
    let mut health = std::mem::take(&mut world.resource_mut::<LiveVerdict>().health);
    let verdict = {
        let history = world.resource::<MetricsHistory>();
        let settings = world
            .get_resource::<ActiveScenario>()
            .map(|s| s.0.verdict)
            .unwrap_or_default();
        let interval_s = history.interval_ns as f64 / 1e9;
        let healthy = health.update(verdict::Series::of(history), interval_s, &settings);
        summary::current_verdict_with(world, true, healthy)
    };
    let mut live = world.resource_mut::<LiveVerdict>();
    live.health = health;
    let changed = live.verdict.as_ref().map(|v| v.kind) != verdict.as_ref().map(|v| v.kind);
    live.intervals = intervals;
    live.verdict.clone_from(&verdict);
    if changed && let Some(v) = verdict {
        world
            .resource_mut::<Engine>()
            .log(SimEventKind::VerdictChanged { verdict: v.kind });
    }
}
