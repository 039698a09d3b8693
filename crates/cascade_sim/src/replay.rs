//! Rewinding a run to an earlier moment. The run is replayed from its start — the scenario it
//! was loaded with and every command applied since, each at the tick it took effect
//! ([`CommandLog`]) — up to that moment, and what came after is dropped. Runs are
//! deterministic, so the replay is the run as it was then, byte for byte: metrics, events,
//! faults, live verdict. Going on from there is a branch: a what-if from that moment.
//!
//! The replay costs the simulation of the time rewound to (all 120 s of the retry-storm
//! lesson take about 0.14 s in a release build). Also [`recorded_scenario`]: a run's faults,
//! broken live or scripted, written into a scenario file at their times, so that opening the
//! file replays them. Owns the replay and the recording; not when they are asked for (the
//! app's clock menu and *File → Save run as scenario*).

use bevy_ecs::message::Messages;
use bevy_ecs::prelude::*;

use crate::commands::{self, CommandLog};
use crate::engine::{self, Engine};
use crate::events::SimEvent;
use crate::faults::FaultRecord;
use crate::sampling::SampledLeg;
use crate::scenario::{FaultSpec, Scenario};
use crate::time::{NEVER, Nanos, SimClock};

/// Replays the run in `world` up to `to_ns` (rounded down to a tick): the state it had then,
/// before any command applied at that very moment. `Err` (and nothing changed) when there is
/// no run to replay or `to_ns` lies ahead of the run.
pub fn rewind(world: &mut World, to_ns: Nanos) -> Result<(), String> {
    let Some(log) = world.get_resource::<CommandLog>() else {
        return Err("nothing has run yet".to_owned());
    };
    let Some(start) = log.start.clone() else {
        return Err("nothing has run yet".to_owned());
    };
    let applied = log.applied.clone();
    let clock = *world.resource::<SimClock>();
    if to_ns > clock.now_ns() {
        return Err(format!(
            "the run is at {:.3} s: it can go back, not ahead to {:.3} s",
            clock.now_ns() as f64 / 1e9,
            to_ns as f64 / 1e9
        ));
    }
    let to_tick = to_ns / clock.tick_ns;
    engine::load_scenario(world, &start);
    for (at_ns, command) in applied
        .into_iter()
        .filter(|(at_ns, _)| *at_ns < to_tick * clock.tick_ns)
    {
        advance_to(world, at_ns / clock.tick_ns);
        // Applied as it was the first time (it was accepted then, so it is again).
        let _ = commands::apply_command(world, command);
    }
    advance_to(world, to_tick);
    world.resource_mut::<SimClock>().ticks_per_update = clock.ticks_per_update;
    // What the replay published is history, not news: views must not animate it again.
    if let Some(mut legs) = world.get_resource_mut::<Messages<SampledLeg>>() {
        legs.clear();
    }
    if let Some(mut events) = world.get_resource_mut::<Messages<SimEvent>>() {
        events.clear();
    }
    Ok(())
}

/// Runs the model (and only the model: none of a host's own fixed-step systems) up to
/// `tick`, as `SimPlugin`'s schedule would.
fn advance_to(world: &mut World, tick: u64) {
    loop {
        let done = world.resource::<SimClock>().ticks_done;
        if done >= tick || world.resource::<Engine>().halted.is_some() {
            return;
        }
        world.resource_mut::<SimClock>().ticks_per_update =
            (tick - done).min(u64::from(u32::MAX)) as u32;
        crate::step_and_judge(world);
        let published = world.run_system_cached(engine::publish_outputs);
        debug_assert!(published.is_ok(), "publishing is always runnable");
        if world.resource::<SimClock>().ticks_done == done {
            return; // nothing loaded: no progress to make
        }
    }
}

/// `base` with every fault of the run — scripted or broken live, cleared early or lasting —
/// as a scripted fault at its own start and for its own length (none when it lasted to the
/// end or acts once), in the order the run registered them, so that they keep their ids.
/// Faults cleared before they started are left out. Live edits cannot be timed in the format:
/// whatever `base` holds applies from the start.
pub fn recorded_scenario(base: &Scenario, faults: &[FaultRecord]) -> Scenario {
    let mut scenario = base.clone();
    scenario.faults = faults
        .iter()
        .filter(|f| f.kind.is_instantaneous() || f.end_ns > f.start_ns)
        .map(|f| FaultSpec {
            at_s: f.start_ns as f64 / 1e9,
            duration_s: (!f.kind.is_instantaneous() && f.end_ns != NEVER)
                .then(|| (f.end_ns - f.start_ns) as f64 / 1e9),
            fault: f.kind.clone(),
        })
        .collect();
    scenario
}
