//! Building the simulation world from a scenario, and borrowing it for out-of-schedule work.
//!
//! [`load_scenario`] despawns any previous run and spawns one entity per source, service and
//! instance (each named, marked [`SimEntity`]), compiles the model, registers scripted faults
//! and schedules first arrivals. [`with_ctx`] lends the engine and all states to code outside
//! the step system (commands, tests). Owns no per-tick logic.

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;

use super::mech::{CallGuard, InstanceMech, QueueState, ServiceMech, ServiceRuntime};
use super::model::{CallModel, Model};
use super::scheduler::{EventKind, Scheduler};
use super::state::{
    InstanceNode, InstanceState, NodeMetrics, ServiceNode, ServiceState, SimEntity, SourceNode,
    SourceState,
};
use super::step::{Ctx, Engine, LinkState, dense};
use crate::ActiveScenario;
use crate::events::{EventLog, SimEventKind};
use crate::faults::{self, FaultRecord};
use crate::mechanisms::cache::KeyTable;
use crate::mechanisms::occ::Versions;
use crate::mechanisms::rolling::Rolling;
use crate::mechanisms::throttle::TokenBucket;
use crate::metrics::MetricsHistory;
use crate::retry::RetryBudget;
use crate::rng;
use crate::scenario::Scenario;
use crate::time::{NEVER, SimClock};

/// Replaces whatever runs in `world` with a fresh run of `scenario` (which must be valid).
pub fn load_scenario(world: &mut World, scenario: &Scenario) {
    despawn_world(world);
    let model = Model::compile(scenario);
    let tick_ns = model.tick_ns;
    let interval_ns = model.interval_ticks * tick_ns;
    let nodes = model.services.len() + model.sources.len();
    let links = model.links.len();
    world.insert_resource(SimClock {
        tick_ns,
        ticks_done: 0,
        ticks_per_update: world
            .get_resource::<SimClock>()
            .map_or(1, |c| c.ticks_per_update),
    });
    world.insert_resource(MetricsHistory::new(interval_ns, nodes));
    world.insert_resource(EventLog::default());
    // The live verdict of a run that ran here before must not carry over: its judged-interval
    // count could match the new run's first close (which then went unjudged) and its verdict
    // hid the new run's first verdict_changed when they agreed.
    world.insert_resource(crate::verdict::LiveVerdict::default());
    world.insert_resource(crate::commands::CommandLog {
        start: Some(Box::new(scenario.clone())),
        applied: Vec::new(),
    });
    world.insert_resource(ActiveScenario(scenario.clone()));
    let fast_paths = world.get_resource::<Engine>().is_none_or(|e| e.fast_paths);
    let mut engine = Engine {
        sched: Scheduler::new(),
        links: vec![LinkState::default(); links],
        fast_paths,
        ..Default::default()
    };

    for (i, s) in model.sources.iter().enumerate() {
        world.spawn((
            Name::new(s.name.clone()),
            SimEntity,
            SourceNode { index: i as u32 },
            source_state(&model, i as u32),
        ));
    }
    let mut service_entities = Vec::with_capacity(model.services.len());
    for (i, s) in model.services.iter().enumerate() {
        service_entities.push(
            world
                .spawn((
                    Name::new(s.name.clone()),
                    SimEntity,
                    ServiceNode { index: i as u32 },
                    service_state(&model, i as u32),
                ))
                .id(),
        );
    }
    engine.model = model;
    world.insert_resource(engine);
    let counts: Vec<u32> = world
        .resource::<Engine>()
        .model
        .services
        .iter()
        .map(|s| s.instances)
        .collect();
    for (s, n) in counts.into_iter().enumerate() {
        spawn_instances_of(world, service_entities[s], s as u32, n);
    }

    // Scripted faults: registered now, started and ended by events at their exact times.
    {
        let mut engine = world.resource_mut::<Engine>();
        for spec in &scenario.faults {
            let Ok(target) = faults::resolve(&engine.model, &spec.fault) else {
                continue;
            };
            let (start_ns, end_ns) = faults::window_ns(spec.at_s, spec.duration_s);
            let id = engine.faults.len() as u32;
            engine.faults.push(FaultRecord {
                id,
                kind: spec.fault.clone(),
                target,
                start_ns,
                end_ns,
                active: false,
                scripted: true,
                progress: 0,
            });
            engine
                .sched
                .schedule(start_ns, EventKind::FaultStart, id, 0, 0, 0);
            if end_ns != NEVER {
                engine
                    .sched
                    .schedule(end_ns, EventKind::FaultEnd, id, 0, 0, 0);
            }
        }
        engine.loaded = true;
        engine.now = 0;
        let (name, seed) = (scenario.name.clone(), scenario.seed);
        engine.log(SimEventKind::ScenarioLoaded { name, seed });
    }
    with_ctx(world, |ctx| {
        for s in 0..ctx.services.len() as u32 {
            ctx.refresh_service(s);
        }
        for s in 0..ctx.services.len() as u32 {
            if ctx.e.model.services[s as usize].mech.is_some() {
                ctx.start_probes(s);
                for g in ctx.services[s as usize].instances.clone() {
                    if ctx.instances[g as usize].provisioned {
                        ctx.schedule_periodic(g, 0, 0);
                    }
                }
            }
        }
        ctx.schedule_operator();
        for s in 0..ctx.sources.len() as u32 {
            ctx.schedule_next_arrival(s, 0);
        }
    });
}

/// Spawns instances of service `s` until it has `count` provisioned (and as many more,
/// unprovisioned, as its autoscaler or operator may need); re-provisions retired ones first,
/// retires the surplus (they drain and leave the load balancer).
pub fn spawn_instances(world: &mut World, s: u32, count: u32) {
    let mut q = world.query::<(Entity, &ServiceState)>();
    let Some(entity) = q.iter(world).find(|(_, st)| st.index == s).map(|(e, _)| e) else {
        return;
    };
    spawn_instances_of(world, entity, s, count);
}

/// [`spawn_instances`] for the service whose entity is `entity` (O(new instances), so that
/// loading a scenario stays linear in its size).
fn spawn_instances_of(world: &mut World, entity: Entity, s: u32, count: u32) {
    let (now_ns, seed, name, calls, existing, total, mech) = {
        let engine = world.resource::<Engine>();
        let svc = &engine.model.services[s as usize];
        let existing = world
            .get::<ServiceState>(entity)
            .map_or(0, |st| st.instances.len() as u32);
        let mech = svc
            .mech
            .as_ref()
            .map(|m| instance_mech(m, &svc.calls, svc.workers));
        (
            engine.now,
            engine.model.seed,
            svc.name.clone(),
            svc.calls.clone(),
            existing,
            count.max(svc.capacity),
            mech,
        )
    };
    let mut globals = Vec::with_capacity(total.saturating_sub(existing) as usize);
    for ordinal in existing..total {
        let global = {
            let mut engine = world.resource_mut::<Engine>();
            engine.instance_count += 1;
            engine.instance_count - 1
        };
        let state = InstanceState {
            global,
            service: s,
            ordinal,
            workers: 0,
            busy: 0,
            queue: Default::default(),
            down: None,
            up_since_ns: now_ns,
            provisioned: ordinal < count,
            in_rotation: true,
            isolated: false,
            slow_factor: 1.0,
            added_ns: 0,
            error_probability: 0.0,
            rng: rng::stream(seed, &format!("instance:{name}"), u64::from(ordinal)),
            budgets: calls.iter().map(|c| RetryBudget::new(&c.retry)).collect(),
            last_change_ns: world.resource::<Engine>().now,
            area_queue: 0,
            area_in_system: 0,
            area_busy: 0,
            area_capacity: 0,
            cores: mech.as_ref().map_or(u32::MAX, |(cores, _)| *cores),
            cores_busy: 0,
            cores_cut: u32::MAX,
            area_cpu: 0,
            area_cores: 0,
            mech: mech.as_ref().map(|(_, m)| Box::new(m.clone())),
            started: [(super::NONE, 0); super::state::STARTED_SAMPLES],
            started_next: 0,
            planned: false,
            busy_until: Default::default(),
            plan: Default::default(),
            plan_totals: Default::default(),
            lb_pos: u32::MAX,
            routable: false,
            load_dirty: false,
        };
        world.spawn((
            Name::new(format!("{name}#{ordinal}")),
            SimEntity,
            InstanceNode {
                service: s,
                ordinal,
                global,
            },
            state,
        ));
        globals.push(global);
    }
    if let Some(mut st) = world.get_mut::<ServiceState>(entity) {
        st.instances.extend(globals);
    }
    if existing == 0 {
        return;
    }
    // A live edit: the provisioning flags of the instances that were there follow the
    // configured count (capacity integrals counted up to now under the old flag).
    let now = world.resource::<Engine>().now;
    let mut q = world.query::<(&InstanceNode, &mut InstanceState)>();
    for (node, mut st) in q.iter_mut(world) {
        let provisioned = node.ordinal < count;
        if node.service == s && st.provisioned != provisioned {
            st.touch(now);
            st.provisioned = provisioned;
        }
    }
}

/// A fresh state for source `i` of `model`.
pub(crate) fn source_state(model: &Model, i: u32) -> SourceState {
    let s = &model.sources[i as usize];
    SourceState {
        index: i,
        rng: rng::stream(model.seed, &format!("source:{}", s.name), 0),
        arrival_token: 0,
        rate_factor: 1.0,
        budget: RetryBudget::new(&s.call.retry),
        metrics: NodeMetrics::default(),
        guard: source_guard(&s.call),
        keep: 1.0,
        limit: None,
        poison_share: 0.0,
        last_success_ns: None,
        burst_fired: false,
        users_thinking: 0,
        users_waiting: 0,
        failure_origins: Default::default(),
    }
}

/// A source's call guard state, when its call needs one.
pub(crate) fn source_guard(call: &CallModel) -> Option<Box<CallGuard>> {
    call.guard
        .filter(|g| g.needs_state())
        .map(|g| Box::new(CallGuard::new(Some(&g))))
}

/// A fresh state for service `i` of `model` (no instances yet).
pub(crate) fn service_state(model: &Model, i: u32) -> ServiceState {
    let s = &model.services[i as usize];
    ServiceState {
        index: i,
        instances: Vec::new(),
        poisoned: false,
        routable: Vec::new(),
        rr_cursor: 0,
        lb_rng: rng::stream(model.seed, &format!("lb:{}", s.name), 0),
        metrics: NodeMetrics::default(),
        live_instances: s.instances,
        rt: service_runtime(model, i),
        least_loaded: None,
        load_dirty: Vec::new(),
        zone_routable: Vec::new(),
        zone_registered: Vec::new(),
        zone_cursor: Vec::new(),
    }
}

/// Fresh per-instance mechanism state for a service's mechanisms: `(cores, state)`.
pub(crate) fn instance_mech(
    m: &ServiceMech,
    calls: &[CallModel],
    workers: u32,
) -> (u32, InstanceMech) {
    let state = InstanceMech {
        calls: calls
            .iter()
            .map(|c| CallGuard::new(c.guard.as_ref()))
            .collect(),
        limiter: m
            .rate_limit
            .map(|(rate, burst)| TokenBucket::new(rate, burst)),
        outlier: m.outlier.map(|o| Rolling::new(o.window_ns)),
        warm_factor: 1.0,
        ..Default::default()
    };
    // Without configured cores, as many as workers: never a constraint, but CPU is measured.
    (
        if m.cores == u32::MAX {
            workers
        } else {
            m.cores
        },
        state,
    )
}

/// Fresh service-level mechanism state, when the service needs some.
pub(crate) fn service_runtime(model: &Model, s: u32) -> Option<Box<ServiceRuntime>> {
    let svc = &model.services[s as usize];
    let m = svc.mech.as_ref()?;
    let mut rt = ServiceRuntime::new();
    let mut rng = rng::stream(model.seed, &format!("mech:{}", svc.name), 0);
    if let Some(c) = &m.cache {
        rt.cache = Some(KeyTable::new(c.keys, c.initial_warmth, c.ttl_ns, &mut rng));
        if c.coalescing {
            rt.waiters = vec![Vec::new(); c.keys as usize];
        }
    }
    if let Some(chooser) = &m.occ {
        rt.versions = Some(Versions::new(chooser.len()));
    }
    if let Some(q) = &m.work_queue {
        rt.queue = Some(QueueState {
            limiter: q.rate_per_s.map(|r| TokenBucket::new(r, 1.0)),
            ..Default::default()
        });
    }
    rt.rng = Some(rng);
    Some(Box::new(rt))
}

/// Despawns every simulation entity and marks the engine unloaded.
pub fn despawn_world(world: &mut World) {
    let mut q = world.query_filtered::<Entity, With<SimEntity>>();
    let entities: Vec<Entity> = q.iter(world).collect();
    for e in entities {
        world.despawn(e);
    }
    if let Some(mut engine) = world.get_resource_mut::<Engine>() {
        engine.loaded = false;
    }
}

/// Runs `f` with the engine and every state borrowed, outside the schedule. `None` when no
/// scenario is loaded or the world is inconsistent.
pub fn with_ctx<R>(world: &mut World, f: impl FnOnce(&mut Ctx) -> R) -> Option<R> {
    let mut state: SystemState<(
        ResMut<Engine>,
        ResMut<MetricsHistory>,
        Query<&mut SourceState>,
        Query<&mut ServiceState>,
        Query<&mut InstanceState>,
    )> = SystemState::new(world);
    let Ok((mut engine, mut history, mut sq, mut svq, mut iq)) = state.get_mut(world) else {
        return None;
    };
    if !engine.loaded {
        return None;
    }
    let n_inst = iq.iter().len();
    let mut src = dense(
        sq.iter_mut().map(Mut::into_inner),
        engine.model.sources.len(),
        |s| s.index,
    )?;
    let mut svc = dense(
        svq.iter_mut().map(Mut::into_inner),
        engine.model.services.len(),
        |s| s.index,
    )?;
    let mut inst = dense(iq.iter_mut().map(Mut::into_inner), n_inst, |s| s.global)?;
    let mut ctx = Ctx {
        e: &mut engine,
        history: &mut history,
        sources: &mut src,
        services: &mut svc,
        instances: &mut inst,
    };
    Some(f(&mut ctx))
}
