//! The simulation as an ECS: the plugin's schedule, commands applied at the next tick and
//! logged with their simulated time, live edits reaching components, the sampling feed, and
//! results that do not depend on how many ticks one update runs.

mod common;

use bevy_app::{App, FixedUpdate};
use bevy_ecs::message::Messages;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings};
use cascade_sim::engine::{InstanceState, ServiceState, load_scenario};
use cascade_sim::scenario::{FaultKind, InstanceSelector, KillMode};
use cascade_sim::testing::{TestAppExt, test_app};
use cascade_sim::{
    CommandLog, EventLog, LegKind, MetricsHistory, SampledLeg, SimClock, SimCommand, SimEventKind,
};

fn three_tier_app() -> App {
    let mut app = test_app();
    load_scenario(app.world_mut(), &common::shipped("bench/three-tier.ron"));
    app
}

#[test]
fn each_update_advances_the_clock_by_the_configured_ticks() {
    let mut app = three_tier_app();
    app.step_ticks(250);
    let clock = *app.world().resource::<SimClock>();
    assert_eq!(
        clock.ticks_done, 250,
        "one FixedUpdate per app update, one tick each"
    );
    assert_eq!(clock.now_ns(), 250_000_000);
    app.world_mut().resource_mut::<SimClock>().ticks_per_update = 10;
    app.step_ticks(5);
    assert_eq!(app.world().resource::<SimClock>().ticks_done, 300);
}

#[test]
fn fixed_update_has_no_ambiguous_system_order() {
    let mut app = three_tier_app();
    app.edit_schedule(FixedUpdate, |s| {
        s.set_build_settings(ScheduleBuildSettings {
            ambiguity_detection: LogLevel::Error,
            ..Default::default()
        });
    });
    app.step_ticks(3);
}

#[test]
fn a_fault_command_applies_at_the_next_tick_and_is_logged_with_its_time() {
    let mut app = three_tier_app();
    app.step_ticks(1000);
    app.world_mut().write_message(SimCommand::InjectFault {
        fault: FaultKind::Kill {
            service: "db".into(),
            instances: InstanceSelector::All,
            mode: KillMode::Refuse,
        },
        duration_s: Some(2.0),
    });
    app.step_ticks(1);
    let log = app.world().resource::<CommandLog>();
    assert_eq!(log.applied.len(), 1);
    assert_eq!(
        log.applied[0].0, 1_000_000_000,
        "applied at the start of tick 1000 = 1.000 s"
    );
    let mut q = app.world_mut().query::<&InstanceState>();
    let down: Vec<bool> = q
        .iter(app.world())
        .filter(|i| i.service == 1)
        .map(|i| i.down.is_some())
        .collect();
    assert_eq!(down, vec![true], "db's instance is down");
    let events = &app.world().resource::<EventLog>().events;
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::FaultStarted { .. })
                && e.time_ns == 1_000_000_000)
    );
    app.step_ticks(2000);
    let events = &app.world().resource::<EventLog>().events;
    assert!(
        events.iter().any(
            |e| matches!(e.kind, SimEventKind::FaultEnded { .. }) && e.time_ns == 3_000_000_000
        ),
        "the fault ends exactly 2 s later"
    );
    let mut q = app.world_mut().query::<&InstanceState>();
    assert!(q.iter(app.world()).all(|i| i.down.is_none()));
}

#[test]
fn an_invalid_command_is_rejected_and_changes_nothing() {
    let mut app = three_tier_app();
    app.step_ticks(10);
    app.world_mut().write_message(SimCommand::InjectFault {
        fault: FaultKind::Slow {
            service: "dbb".into(),
            instances: InstanceSelector::All,
            factor: 2.0,
        },
        duration_s: None,
    });
    app.step_ticks(1);
    let events = &app.world().resource::<EventLog>().events;
    let rejected = events.iter().find_map(|e| match &e.kind {
        SimEventKind::CommandRejected { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(rejected.is_some_and(|r| r.contains("dbb")), "{events:?}");
    assert!(app.world().resource::<CommandLog>().applied.is_empty());
}

#[test]
fn a_live_edit_changes_the_instance_components() {
    let mut app = three_tier_app();
    app.step_ticks(10);
    let mut edited = app
        .world()
        .resource::<cascade_sim::ActiveScenario>()
        .0
        .clone();
    edited.services[1].workers = 4;
    edited.services[1].instances = 3;
    app.world_mut()
        .write_message(SimCommand::Reconfigure(Box::new(edited)));
    app.step_ticks(1);
    let mut q = app.world_mut().query::<&InstanceState>();
    let db: Vec<u32> = q
        .iter(app.world())
        .filter(|i| i.service == 1)
        .map(|i| i.workers)
        .collect();
    assert_eq!(db, vec![4, 4, 4], "db now has 3 instances of 4 workers");
    let mut q = app.world_mut().query::<&ServiceState>();
    let routable = q
        .iter(app.world())
        .find(|s| s.index == 1)
        .unwrap()
        .routable
        .len();
    assert_eq!(routable, 3);
    app.step_ticks(100);
}

#[test]
fn sampled_requests_are_published_leg_by_leg() {
    let mut app = three_tier_app();
    app.world_mut()
        .write_message(SimCommand::SetSampling { every: 10 });
    let mut cursor = app.world().resource::<Messages<SampledLeg>>().get_cursor();
    let mut legs = Vec::new();
    for _ in 0..200 {
        app.update();
        legs.extend(
            cursor
                .read(app.world().resource::<Messages<SampledLeg>>())
                .copied(),
        );
    }
    assert!(!legs.is_empty());
    // ~800/s × 0.2 s / 10 = 16 journeys; each has request and reply legs, arriving ≥ 1 ms later.
    let journeys: std::collections::BTreeSet<u32> = legs.iter().map(|l| l.journey).collect();
    assert!(journeys.len() >= 8, "{} journeys", journeys.len());
    assert!(
        legs.iter()
            .all(|l| l.arrive_ns >= l.depart_ns + 1_000_000 || l.kind == LegKind::Timeout)
    );
    let first = *journeys.iter().next().unwrap();
    let kinds: Vec<_> = legs
        .iter()
        .filter(|l| l.journey == first)
        .map(|l| l.kind)
        .collect();
    assert!(
        matches!(kinds[0], LegKind::Request { attempt: 1 }),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| matches!(k, LegKind::Reply { .. })),
        "{kinds:?}"
    );
}

#[test]
fn results_do_not_depend_on_ticks_per_update() {
    // The metrics and the event log, the live verdict's changes included: those are judged at
    // every interval close even when one update covers several (the app at high speed), and
    // stamped with that close's time.
    let scenario = common::shipped("teaching/retry-storm.ron");
    let run_with = |ticks_per_update: u32| {
        let mut app = test_app();
        load_scenario(app.world_mut(), &scenario);
        app.world_mut().resource_mut::<SimClock>().ticks_per_update = ticks_per_update;
        app.step_ticks(42_000 / ticks_per_update);
        let h = app.world().resource::<MetricsHistory>();
        let events = app.world().resource::<EventLog>().events.clone();
        (
            h.services.clone(),
            h.sources.clone(),
            h.system.clone(),
            events,
        )
    };
    let fine = run_with(1);
    assert_eq!(fine.2.len(), 42);
    let verdicts: Vec<(u64, String)> = fine
        .3
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::VerdictChanged { verdict } => {
                Some((e.time_ns, verdict.as_str().to_owned()))
            }
            _ => None,
        })
        .collect();
    assert!(
        verdicts.len() >= 2 && verdicts.iter().all(|(t, _)| t % 1_000_000_000 == 0),
        "the storm changes the verdict, at interval closes: {verdicts:?}"
    );
    assert!(
        fine == run_with(1000),
        "1 tick per update and 1000 ticks per update give the same run"
    );
    assert!(fine == run_with(7), "…and any other batching");
    assert!(
        fine == run_with(3_500),
        "…and updates that each cover three or four interval closes"
    );
}

#[test]
fn a_reloaded_run_is_the_same_as_a_fresh_one_whatever_ran_before() {
    // A reset (the app's Reset, or opening another file) loads a scenario into a world that
    // ran before. Nothing of the earlier run may leak into the new one: not its live verdict
    // (the new run's first verdict_changed must be logged), nor anything else.
    let scenario = common::shipped("teaching/retry-storm.ron");
    let run = |prefix_ticks: Option<u32>| {
        let mut app = test_app();
        app.world_mut().resource_mut::<SimClock>().ticks_per_update = 1000;
        if let Some(ticks) = prefix_ticks {
            load_scenario(app.world_mut(), &scenario);
            app.step_ticks(ticks / 1000);
        }
        load_scenario(app.world_mut(), &scenario);
        app.step_ticks(5);
        let events = app.world().resource::<EventLog>().events.clone();
        let h = app.world().resource::<MetricsHistory>();
        (h.system.clone(), h.services.clone(), events)
    };
    let fresh = run(None);
    assert!(
        fresh
            .2
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::VerdictChanged { .. })),
        "a fresh run logs its first verdict"
    );
    for prefix in [1_000, 3_000, 40_000] {
        assert!(
            run(Some(prefix)) == fresh,
            "after {prefix} ticks of an earlier run"
        );
    }
}

/// The retry storm with live commands at 10 s (kill one db instance for 3 s), 15 s (orders
/// gets more workers) and 20 s (every fault cleared), each given only if its time is before
/// `last_command_s`; run to `until_s` one second per update.
fn storm_with_commands(last_command_s: u32, until_s: u32) -> App {
    let scenario = common::shipped("teaching/retry-storm.ron");
    let mut app = test_app();
    load_scenario(app.world_mut(), &scenario);
    app.world_mut().resource_mut::<SimClock>().ticks_per_update = 1000;
    let mut edited = scenario.clone();
    edited.services[2].workers += 100;
    let commands = [
        (
            10,
            SimCommand::InjectFault {
                fault: FaultKind::Slow {
                    service: "db".into(),
                    instances: InstanceSelector::All,
                    factor: 3.0,
                },
                duration_s: Some(3.0),
            },
        ),
        (15, SimCommand::Reconfigure(Box::new(edited))),
        (20, SimCommand::ClearAllFaults),
    ];
    let mut t = 0;
    for (at, command) in commands {
        if at >= last_command_s || at >= until_s {
            break;
        }
        app.step_ticks(at - t);
        app.world_mut().write_message(command);
        t = at;
    }
    app.step_ticks(until_s - t);
    app
}

fn outputs(app: &App) -> (Vec<cascade_sim::metrics::SystemRow>, String, usize) {
    let h = app.world().resource::<MetricsHistory>();
    let events = app.world().resource::<EventLog>().events.clone();
    (
        h.system.clone(),
        format!("{:?}{:?}", h.services, events),
        app.world().resource::<CommandLog>().applied.len(),
    )
}

#[test]
fn rewinding_replays_the_run_to_that_moment_and_going_on_is_a_branch() {
    // The run with its commands, to 40 s; rewound to 17 s (after the fault and the edit,
    // before the clear): the state of the run at 17 s, byte for byte — the same as a run that
    // only ever went to 17 s. Going on from there to 40 s is the run without the later clear.
    let mut app = storm_with_commands(u32::MAX, 40);
    assert_eq!(app.world().resource::<CommandLog>().applied.len(), 3);
    cascade_sim::replay::rewind(app.world_mut(), 17_000_000_000).expect("rewinds");
    assert_eq!(app.world().resource::<SimClock>().ticks_done, 17_000);
    assert!(
        outputs(&app) == outputs(&storm_with_commands(u32::MAX, 17)),
        "rewound to 17 s = run to 17 s"
    );
    assert!(
        app.world()
            .resource::<Messages<SampledLeg>>()
            .iter_current_update_messages()
            .next()
            .is_none(),
        "the replay's journeys are not published as news"
    );
    app.step_ticks(23);
    assert!(
        outputs(&app) == outputs(&storm_with_commands(17, 40)),
        "going on = the run without the commands after 17 s"
    );
    // A rewind to a command's own moment comes before that command.
    cascade_sim::replay::rewind(app.world_mut(), 15_000_000_000).expect("rewinds");
    assert_eq!(app.world().resource::<CommandLog>().applied.len(), 1);
    // Not ahead.
    let err = cascade_sim::replay::rewind(app.world_mut(), 16_000_000_000).unwrap_err();
    assert!(err.contains("not ahead"), "{err}");
    assert_eq!(app.world().resource::<SimClock>().ticks_done, 15_000);
}

#[test]
fn a_recorded_session_replays_as_it_ran() {
    // Faults broken live (one for 3 s, one until cleared, then cleared) and the scenario's
    // own scripted one, recorded into a scenario file: a fresh run of that file is the live
    // run, metrics byte for byte.
    let scenario = common::shipped("teaching/retry-storm.ron");
    let mut app = test_app();
    load_scenario(app.world_mut(), &scenario);
    app.world_mut().resource_mut::<SimClock>().ticks_per_update = 1000;
    app.step_ticks(10);
    app.world_mut().write_message(SimCommand::InjectFault {
        fault: FaultKind::Kill {
            service: "db".into(),
            instances: InstanceSelector::All,
            mode: KillMode::Refuse,
        },
        duration_s: Some(3.0),
    });
    app.step_ticks(5);
    app.world_mut().write_message(SimCommand::InjectFault {
        fault: FaultKind::Latency {
            service: "catalog".into(),
            instances: InstanceSelector::All,
            added_ms: 40.0,
        },
        duration_s: None,
    });
    app.step_ticks(5);
    app.world_mut().write_message(SimCommand::ClearFault(2));
    app.step_ticks(30);
    let live = app.world().resource::<MetricsHistory>().clone();

    let engine = app.world().resource::<cascade_sim::Engine>();
    let recorded = cascade_sim::replay::recorded_scenario(&scenario, &engine.faults);
    assert_eq!(recorded.faults.len(), 3);
    assert_eq!(
        (recorded.faults[2].at_s, recorded.faults[2].duration_s),
        (15.0, Some(5.0)),
        "the latency fault, cleared at 20 s"
    );
    let text = recorded.to_ron_string();
    let reloaded = cascade_sim::scenario::Scenario::from_ron_str(&text, "recorded.ron").unwrap();
    let mut sim = cascade_sim::Simulation::new(&reloaded);
    sim.run_until_s(50.0);
    let replayed = sim.history();
    assert_eq!(replayed.system.len(), 50);
    assert!(replayed.system == live.system, "system series");
    assert!(replayed.services == live.services, "every service's rows");
    assert!(replayed.sources == live.sources, "every source's rows");
}
