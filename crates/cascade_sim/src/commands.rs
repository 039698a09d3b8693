//! Live commands: how the app and tests change a running simulation.
//!
//! A [`SimCommand`] message is applied at the start of the next tick by [`apply_commands`]
//! (set `SimSystems::ApplyCommands`), logged with its simulated time in [`CommandLog`] (so a
//! session can be recorded and replayed), and reported in the event log as applied or
//! rejected. A rejected command (an invalid edit, an unknown fault target) changes nothing.
//! This module owns the command types and their application; the effects themselves are the
//! engine's (`engine/effects.rs`).

use bevy_ecs::prelude::*;

use crate::ActiveScenario;
use crate::engine::{self, Engine, EventKind, LinkState, SourceNode, spawn_instances, with_ctx};
use crate::events::SimEventKind;
use crate::faults::{self, FaultId, FaultRecord};
use crate::retry::RetryBudget;
use crate::scenario::{FaultKind, Scenario, validate};
use crate::time::{NEVER, Nanos, s_to_ns};

/// A change to the running simulation.
#[derive(Message, Clone, Debug, PartialEq)]
pub enum SimCommand {
    /// Start a fresh run of this scenario (open, reset, new seed).
    LoadScenario(Box<Scenario>),
    /// Apply an edited version of the running scenario: parameters, instances, nodes and calls
    /// change at the next tick; requests in flight carry on. Run settings (seed, tick) need a
    /// [`SimCommand::LoadScenario`].
    Reconfigure(Box<Scenario>),
    /// Break something now.
    InjectFault {
        /// What and where.
        fault: FaultKind,
        /// How long in seconds; `None` until cleared.
        duration_s: Option<f64>,
    },
    /// End a fault (active or still scheduled).
    ClearFault(FaultId),
    /// End every fault.
    ClearAllFaults,
    /// Publish every Nth client request's journey (0: none).
    SetSampling {
        /// N.
        every: u32,
    },
}

impl SimCommand {
    /// One-line description for logs.
    pub fn describe(&self) -> String {
        match self {
            SimCommand::LoadScenario(s) => {
                format!("load scenario \"{}\" (seed {})", s.name, s.seed)
            }
            SimCommand::Reconfigure(_) => "edit the running scenario".to_owned(),
            SimCommand::InjectFault { fault, duration_s } => {
                let target = match fault {
                    FaultKind::GroupPartition { .. } => fault.target_label(),
                    _ => fault.target_node().to_owned(),
                };
                match duration_s {
                    Some(d) => format!("inject {} on {target} for {d} s", fault.label()),
                    None => format!("inject {} on {target} until cleared", fault.label()),
                }
            }
            SimCommand::ClearFault(id) => format!("clear fault {id}"),
            SimCommand::ClearAllFaults => "clear all faults".to_owned(),
            SimCommand::SetSampling { every } => format!("sample every {every}th request"),
        }
    }
}

/// How this run came to be: the scenario it was loaded with and every command applied since,
/// with the simulated time it took effect — enough to replay it ([`crate::replay`]).
#[derive(Resource, Debug, Clone, Default)]
pub struct CommandLog {
    /// The scenario the run started from (set by every load).
    pub start: Option<Box<Scenario>>,
    /// `(time, command)` in order.
    pub applied: Vec<(Nanos, SimCommand)>,
}

/// Applies queued commands (exclusive system; runs first in each `FixedUpdate`).
pub fn apply_commands(world: &mut World) {
    let Some(mut messages) = world.get_resource_mut::<Messages<SimCommand>>() else {
        return;
    };
    let commands: Vec<SimCommand> = messages.drain().collect();
    for command in commands {
        // A rejected command is reported in the event log; the run goes on unchanged.
        let _ = apply_command(world, command);
    }
}

/// Applies one command now. Returns `Err` with the reason if it was rejected.
pub fn apply_command(world: &mut World, command: SimCommand) -> Result<(), String> {
    let now = world.get_resource::<Engine>().map_or(0, |e| e.now);
    let description = command.describe();
    let result = match &command {
        SimCommand::LoadScenario(s) => {
            let problems = validate(s);
            if problems.is_empty() {
                engine::load_scenario(world, s);
                Ok(())
            } else {
                Err(format!("the scenario is invalid: {}", problems[0].message))
            }
        }
        SimCommand::Reconfigure(s) => reconfigure(world, s),
        SimCommand::InjectFault { fault, duration_s } => {
            inject_fault(world, fault, *duration_s).map(|_| ())
        }
        SimCommand::ClearFault(id) => clear_faults(world, Some(*id)),
        SimCommand::ClearAllFaults => clear_faults(world, None),
        SimCommand::SetSampling { every } => {
            let every = *every;
            if let Some(mut e) = world.get_resource_mut::<Engine>() {
                e.model.sample_every = every;
            }
            Ok(())
        }
    };
    let Some(mut engine) = world.get_resource_mut::<Engine>() else {
        return result;
    };
    match &result {
        Ok(()) => {
            engine.log(SimEventKind::CommandApplied { description });
            if !matches!(command, SimCommand::LoadScenario(_)) {
                world
                    .resource_mut::<CommandLog>()
                    .applied
                    .push((now, command));
            }
        }
        Err(reason) => engine.log(SimEventKind::CommandRejected {
            reason: format!("{description}: {reason}"),
        }),
    }
    result
}

/// Registers and starts a fault now; returns its id.
pub fn inject_fault(
    world: &mut World,
    fault: &FaultKind,
    duration_s: Option<f64>,
) -> Result<FaultId, String> {
    let now = world.resource::<Engine>().now;
    if let Some(d) = duration_s
        && !(d > 0.0 && d.is_finite())
    {
        return Err(format!("a fault duration must be positive, got {d} s"));
    }
    let probe = Scenario {
        faults: vec![crate::scenario::FaultSpec {
            at_s: 0.0,
            duration_s,
            fault: fault.clone(),
        }],
        ..world.resource::<ActiveScenario>().0.clone()
    };
    if let Some(problem) = validate(&probe)
        .into_iter()
        .find(|d| d.path.starts_with("faults"))
    {
        return Err(problem.message);
    }
    let id = {
        let mut engine = world.resource_mut::<Engine>();
        let target = faults::resolve(&engine.model, fault)?;
        let id = engine.faults.len() as FaultId;
        let end_ns = duration_s.map_or(NEVER, |d| now + s_to_ns(d));
        engine.faults.push(FaultRecord {
            id,
            kind: fault.clone(),
            target,
            start_ns: now,
            end_ns,
            active: false,
            scripted: false,
            progress: 0,
        });
        if end_ns != NEVER {
            engine
                .sched
                .schedule(end_ns, EventKind::FaultEnd, id, 0, 0, 0);
        }
        id
    };
    with_ctx(world, |ctx| ctx.start_fault(id));
    Ok(id)
}

fn clear_faults(world: &mut World, only: Option<FaultId>) -> Result<(), String> {
    let ids: Vec<FaultId> = {
        let engine = world.resource::<Engine>();
        match only {
            Some(id) if (id as usize) < engine.faults.len() => vec![id],
            Some(id) => return Err(format!("there is no fault {id}")),
            None => engine
                .faults
                .iter()
                .filter(|f| f.active || f.start_ns >= engine.now)
                .map(|f| f.id)
                .collect(),
        }
    };
    with_ctx(world, |ctx| {
        for id in ids {
            ctx.end_fault(id);
        }
    });
    Ok(())
}

/// Applies an edited scenario to the running world (see [`SimCommand::Reconfigure`]).
fn reconfigure(world: &mut World, new: &Scenario) -> Result<(), String> {
    let problems = validate(new);
    if let Some(p) = problems.first() {
        let more = if problems.len() > 1 {
            format!(" (and {} more)", problems.len() - 1)
        } else {
            String::new()
        };
        return Err(format!("{}: {}{more}", p.path, p.message));
    }
    let old = world.resource::<ActiveScenario>().0.clone();
    // Planned instances follow the configuration they were planned with: back to events.
    with_ctx(world, |ctx| ctx.materialize_all());
    let (old_sources, old_services) = {
        let engine = world.resource::<Engine>();
        (engine.model.sources.len(), engine.model.services.len())
    };
    {
        let mut engine = world.resource_mut::<Engine>();
        engine.model.update(new);
        let links = engine.model.links.len();
        engine.links.resize(links, LinkState::default());
    }
    let (sources, services) = {
        let engine = world.resource::<Engine>();
        (engine.model.sources.clone(), engine.model.services.clone())
    };
    // New sources and services get entities.
    for (i, s) in sources.iter().enumerate().skip(old_sources) {
        let state = engine::source_state(&world.resource::<Engine>().model, i as u32);
        world.spawn((
            Name::new(s.name.clone()),
            engine::SimEntity,
            SourceNode { index: i as u32 },
            state,
        ));
    }
    for (i, s) in services.iter().enumerate().skip(old_services) {
        let state = engine::service_state(&world.resource::<Engine>().model, i as u32);
        world.spawn((
            Name::new(s.name.clone()),
            engine::SimEntity,
            engine::ServiceNode { index: i as u32 },
            state,
        ));
    }
    for (i, s) in services.iter().enumerate() {
        spawn_instances(world, i as u32, if s.removed { 0 } else { s.instances });
    }
    let changed_sources: Vec<u32> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            old.source(&s.name)
                .map(|o| (o.rate.clone(), o.target.clone(), o.retry))
                != new
                    .source(&s.name)
                    .map(|n| (n.rate.clone(), n.target.clone(), n.retry))
        })
        .map(|(i, _)| i as u32)
        .collect();
    with_ctx(world, |ctx| {
        // What the operator changed holds for the rest of the run: again on the new model.
        ctx.reapply_operator_model_changes();
        // Retry budgets follow the call lists; worker limits and rotation follow the new config.
        for s in 0..ctx.services.len() {
            let calls = ctx.e.model.services[s].calls.clone();
            for &g in &ctx.services[s].instances {
                let is = &mut *ctx.instances[g as usize];
                is.budgets.resize_with(calls.len(), || {
                    RetryBudget::new(&crate::retry::RetryModel::NONE)
                });
                for (b, c) in is.budgets.iter_mut().zip(&calls) {
                    if c.retry.budget.is_none() {
                        *b = RetryBudget::new(&c.retry);
                    } else if let Some((_, max)) = c.retry.budget {
                        b.tokens = b.tokens.min(max);
                    }
                }
            }
            ctx.sync_mechanisms(s as u32);
            ctx.refresh_service(s as u32);
            if ctx.e.model.services[s].ordered() {
                // Perhaps a priority or deadline queue only now: what waits is put in order.
                for g in ctx.services[s].instances.clone() {
                    ctx.materialize(g);
                    ctx.sort_queue(g);
                }
            }
        }
        for s in 0..ctx.sources.len() {
            let call = ctx.e.model.sources[s].call;
            let st = &mut *ctx.sources[s];
            if call.guard.is_some_and(|g| g.needs_state()) != st.guard.is_some() {
                st.guard = engine::source_guard(&call);
            }
        }
        let now = ctx.e.now;
        for s in changed_sources {
            let st = &mut *ctx.sources[s as usize];
            st.budget = RetryBudget::new(&ctx.e.model.sources[s as usize].call.retry);
            if ctx.e.model.sources[s as usize].closed().is_none() {
                // No longer a closed population: its users are gone (requests still out end
                // as any source's do).
                st.users_thinking = 0;
                st.users_waiting = 0;
            }
            ctx.schedule_next_arrival(s, now);
        }
    });
    world.insert_resource(ActiveScenario(new.clone()));
    Ok(())
}
