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
//! | [`step_engine`] | `SimSystems::Step`, called by `step_and_judge` (crate root) one interval close at a time | runs `ticks_per_update` ticks of events, closing metrics intervals on their boundaries |
//! | `publish_outputs` | `SimSystems::Publish` | moves sampled legs and log events out as messages; keeps the log |
//!
//! Time inside a tick is exact (ns); ticks only bound when commands apply and what one
//! `FixedUpdate` advances. The engine does not parallelise instances (all events are
//! processed in one global `(time, stamp)` order), so results never depend on thread timing.

mod admission;
mod close;
mod control;
mod data;
mod dns;
mod effects;
mod fan_out;
mod guard;
mod jobs;
mod least_loaded;
mod life;
mod limits;
mod load;
mod mech;
mod model;
mod planned;
mod scheduler;
mod state;
mod step;

use bevy_ecs::prelude::*;

pub use jobs::{Attempt, Job, Jobs, MAX_JOBS_IN_FLIGHT, NONE, Phase};
pub use limits::{Halt, MAX_QUEUED_ITEMS};
pub use load::{despawn_world, load_scenario, spawn_instances, with_ctx};
pub(crate) use load::{service_state, source_guard, source_state};
pub use mech::{CallGuard, InstanceMech, LifePhase, QueueState, ServiceMech, ServiceRuntime};
pub use model::{CallModel, LinkModel, Model, NodeRef, ServiceModel, SourceModel, rate_at};
pub use scheduler::{Event, EventHandle, EventKind, Scheduler};
pub use state::{
    InstanceNode, InstanceState, NodeMetrics, ServiceNode, ServiceState, SimEntity, SourceNode,
    SourceState,
};
pub use step::{Ctx, Engine, FastPathCounts, LinkState};

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
    if !engine.loaded || engine.halted.is_some() {
        return;
    }
    let (n_src, n_svc, n_inst) = (
        engine.model.sources.len(),
        engine.model.services.len(),
        instances.iter().len(),
    );
    let (Some(mut src), Some(mut svc), Some(mut inst)) = (
        step::dense(sources.iter_mut().map(Mut::into_inner), n_src, |s| s.index),
        step::dense(services.iter_mut().map(Mut::into_inner), n_svc, |s| s.index),
        step::dense(instances.iter_mut().map(Mut::into_inner), n_inst, |s| {
            s.global
        }),
    ) else {
        engine.loaded = false;
        engine.log(crate::events::SimEventKind::CommandRejected {
            reason: "internal error: the simulation world lost an entity; reload the scenario"
                .into(),
        });
        return;
    };
    let interval_ticks = engine.model.interval_ticks.max(1);
    let tick_ns = clock.tick_ns;
    let mut ctx = Ctx {
        e: &mut engine,
        history: &mut history,
        sources: &mut src,
        services: &mut svc,
        instances: &mut inst,
    };
    // Events carry exact times, so the engine runs straight to the next interval boundary or
    // the end of this update, whichever comes first; ticks only matter at those boundaries.
    let end_tick = clock.ticks_done + u64::from(clock.ticks_per_update);
    while clock.ticks_done < end_tick {
        let next_boundary = (clock.ticks_done / interval_ticks + 1) * interval_ticks;
        let stop = next_boundary.min(end_tick);
        ctx.run_until(stop * tick_ns);
        if let Some(halt) = ctx.over_capacity(ctx.e.max_queued_items) {
            // Stopped where it went over (mid-interval for jobs): the clock stays at the last
            // whole step, and nothing more runs until the scenario is loaded again.
            ctx.e.log(crate::events::SimEventKind::Halted {
                reason: halt.reason.clone(),
                hint: halt.hint.clone(),
            });
            ctx.e.halted = Some(halt);
            break;
        }
        clock.ticks_done = stop;
        ctx.e.now = stop * tick_ns;
        ctx.e.sched.advance_to(ctx.e.now);
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

/// Test support: runs a scenario with the fast paths on and off and compares everything.
#[cfg(test)]
pub(crate) mod fast_path_check {
    use std::fmt::Write as _;

    use bevy_ecs::message::Messages;

    use crate::engine::{Engine, FastPathCounts, InstanceState, ServiceState};
    use crate::scenario::Scenario;
    use crate::{EventLog, SampledLeg, Simulation};

    /// Everything a run shows: rows of every node and link, events, legs, instance views
    /// (at every step boundary), and how often the fast paths were taken.
    pub(crate) fn run(scenario: &Scenario, fast: bool, steps: &[f64]) -> (String, FastPathCounts) {
        let mut sim = Simulation::new(scenario);
        sim.world_mut().resource_mut::<Engine>().fast_paths = fast;
        let mut cursor = sim.world().resource::<Messages<SampledLeg>>().get_cursor();
        let mut out = String::new();
        for &t in steps {
            sim.run_until_s(t);
            for leg in cursor.read(sim.world().resource::<Messages<SampledLeg>>()) {
                writeln!(out, "{leg:?}").unwrap();
            }
            let world = sim.world_mut();
            let mut q = world.query::<&InstanceState>();
            let mut views: Vec<_> = q
                .iter(world)
                .map(|i| (i.global, i.busy, i.queue.len(), i.workers, i.down))
                .collect();
            views.sort_by_key(|v| v.0);
            writeln!(out, "t={t} {views:?}").unwrap();
            let mut q = world.query::<&ServiceState>();
            let mut live: Vec<_> = q
                .iter(world)
                .map(|s| (s.index, s.metrics.interval))
                .collect();
            live.sort_by_key(|v| v.0);
            writeln!(out, "open interval {live:?}").unwrap();
        }
        let h = sim.history();
        writeln!(
            out,
            "{:?}\n{:?}\n{:?}\n{:?}",
            h.services, h.sources, h.edges, h.system
        )
        .unwrap();
        writeln!(out, "{:?}", sim.world().resource::<EventLog>().events).unwrap();
        (out, sim.world().resource::<Engine>().fast_path_counts)
    }

    /// Asserts both paths give the same outputs, and that `used` holds for the fast path's
    /// counts (so the comparison proves something).
    pub(crate) fn assert_same(
        name: &str,
        scenario: &Scenario,
        steps: &[f64],
        used: impl Fn(&FastPathCounts) -> bool,
    ) {
        let (fast, counts) = run(scenario, true, steps);
        let (reference, none) = run(scenario, false, steps);
        assert_eq!(
            none,
            FastPathCounts::default(),
            "{name}: fast paths taken while off"
        );
        assert!(
            used(&counts),
            "{name}: the fast path under test was not taken: {counts:?}"
        );
        if let Some((i, (f, r))) = fast
            .lines()
            .zip(reference.lines())
            .enumerate()
            .find(|(_, (f, r))| f != r)
        {
            panic!("{name}: line {i} differs\n fast:      {f}\n reference: {r}");
        }
        assert_eq!(
            fast.len(),
            reference.len(),
            "{name}: outputs differ in length"
        );
    }

    pub(crate) fn parse(text: &str) -> Scenario {
        Scenario::from_ron_str(text, "<test>").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Uneven steps: views are compared mid-interval too.
    pub(crate) fn steps(until_s: f64) -> Vec<f64> {
        let mut t = 0.0;
        let mut out = Vec::new();
        while t < until_s {
            t += if out.len() % 3 == 0 { 0.0173 } else { 0.61 };
            out.push(t.min(until_s));
        }
        out
    }
}
