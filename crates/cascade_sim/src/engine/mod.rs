//! The request-level engine: the model's truth.
//!
//! Owns the compiled [`Model`], the [`Engine`] resource (scheduler, job slab, links, faults)
//! and the state components ([`SourceState`], [`ServiceState`], [`InstanceState`]), and the
//! systems that advance them. Everything a request does is in `step.rs`; fault effects in
//! `effects.rs`; interval closing in `close.rs`; building the world from a scenario in
//! `load.rs`.
//!
//! # Systems
//!
//! | system | set | does |
//! |---|---|---|
//! | [`step_engine`] | `SimSystems::Step` | runs `ticks_per_update` ticks of events, closing metrics intervals on their boundaries |
//! | `publish_outputs` | `SimSystems::Publish` | moves sampled legs and log events out as messages; keeps the log |
//!
//! Time inside a tick is exact (ns); ticks only bound when commands apply and what one
//! `FixedUpdate` advances. The engine does not parallelise instances (all events are
//! processed in one global `(time, seq)` order), so results never depend on thread timing.

mod close;
mod effects;
mod jobs;
mod load;
mod model;
mod planned;
mod scheduler;
mod state;
mod step;

use bevy_ecs::prelude::*;

pub use jobs::{Job, Jobs, Phase, NONE};
pub use load::{despawn_world, load_scenario, spawn_instances, with_ctx};
pub use model::{rate_at, CallModel, LinkModel, Model, NodeRef, ServiceModel, SourceModel};
pub use scheduler::{Event, EventKind, Scheduler};
pub use state::{InstanceNode, InstanceState, NodeMetrics, ServiceNode, ServiceState, SimEntity, SourceNode, SourceState};
pub use step::{Ctx, Engine, LinkState};

use crate::events::{EventLog, SimEvent};
use crate::metrics::MetricsHistory;
use crate::sampling::SampledLeg;
use crate::time::SimClock;

/// Advances the model by `clock.ticks_per_update` ticks.
pub fn step_engine(
    mut clock: ResMut<SimClock>,
    mut engine: ResMut<Engine>,
    mut history: ResMut<MetricsHistory>,
    mut sources: Query<&mut SourceState>,
    mut services: Query<&mut ServiceState>,
    mut instances: Query<&mut InstanceState>,
) {
    if !engine.loaded {
        return;
    }
    let (n_src, n_svc, n_inst) = (engine.model.sources.len(), engine.model.services.len(), instances.iter().len());
    let (Some(mut src), Some(mut svc), Some(mut inst)) = (
        step::dense(sources.iter_mut().map(Mut::into_inner), n_src, |s| s.index),
        step::dense(services.iter_mut().map(Mut::into_inner), n_svc, |s| s.index),
        step::dense(instances.iter_mut().map(Mut::into_inner), n_inst, |s| s.global),
    ) else {
        engine.loaded = false;
        engine.log(crate::events::SimEventKind::CommandRejected {
            reason: "internal error: the simulation world lost an entity; reload the scenario".into(),
        });
        return;
    };
    let interval_ticks = engine.model.interval_ticks.max(1);
    let tick_ns = clock.tick_ns;
    let mut ctx = Ctx { e: &mut engine, history: &mut history, sources: &mut src, services: &mut svc, instances: &mut inst };
    // Events carry exact times, so the engine runs straight to the next interval boundary or
    // the end of this update, whichever comes first; ticks only matter at those boundaries.
    let end_tick = clock.ticks_done + u64::from(clock.ticks_per_update);
    while clock.ticks_done < end_tick {
        let next_boundary = (clock.ticks_done / interval_ticks + 1) * interval_ticks;
        let stop = next_boundary.min(end_tick);
        ctx.run_until(stop * tick_ns);
        clock.ticks_done = stop;
        ctx.e.now = stop * tick_ns;
        if stop == next_boundary {
            ctx.close_interval(stop * tick_ns);
        }
    }
    ctx.publish_planned();
}

/// Publishes sampled legs and log events as messages, and appends events to the [`EventLog`].
pub fn publish_outputs(
    mut engine: ResMut<Engine>,
    mut log: ResMut<EventLog>,
    mut legs: MessageWriter<SampledLeg>,
    mut events: MessageWriter<SimEvent>,
) {
    if !engine.legs.is_empty() {
        legs.write_batch(engine.legs.drain(..));
    }
    if !engine.events.is_empty() {
        for ev in engine.events.drain(..) {
            log.events.push(ev.clone());
            events.write(ev);
        }
    }
}
