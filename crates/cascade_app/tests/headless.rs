//! The app's simulation-facing plugins without a window or renderer: the clock follows the
//! chosen speed, user actions reach the simulation, a broken file leaves the run alone.

use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use cascade_app::SimViewPlugins;
use cascade_app::playback::{Playback, Speed};
use cascade_app::session::{AppAction, Document, ErrorWindow};
use cascade_app::settings::Settings;
use cascade_sim::engine::InstanceState;
use cascade_sim::{ActiveScenario, SimClock};

const FRAME: Duration = Duration::from_micros(16_667);

fn app(speed: Speed) -> App {
    let document =
        cascade_app::initial_document(&Default::default()).expect("the default scenario loads");
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SimViewPlugins { document });
    app.insert_resource(Settings::default()); // never touch the user's settings file
    app.insert_resource(TimeUpdateStrategy::ManualDuration(FRAME));
    let mut playback = app.world_mut().resource_mut::<Playback>();
    playback.speed = speed;
    // The clock tests are about virtual time, not the test machine's speed: a budget no
    // frame reaches, so the governor never holds the clock back (see the test of it below).
    playback.least_sim_budget = Duration::from_secs(3600);
    app.update(); // Bevy's first update only starts the clocks
    app
}

fn sim_s(app: &App) -> f64 {
    app.world().resource::<SimClock>().now_s()
}

#[test]
fn the_simulation_clock_follows_the_chosen_speed() {
    for speed in [1.0, 10.0, 100.0] {
        let mut app = app(Speed::Times(speed));
        let start = sim_s(&app);
        let frames = 120;
        for _ in 0..frames {
            app.update();
        }
        let expected = speed * frames as f64 * FRAME.as_secs_f64();
        let step_s = app
            .world()
            .resource::<Time<Fixed>>()
            .timestep()
            .as_secs_f64();
        let advanced = sim_s(&app) - start;
        // The fixed loop runs whole steps of `step_s`: at most one step behind virtual time.
        assert!(
            advanced <= expected + 1e-9 && advanced > expected - step_s - 1e-9,
            "×{speed}: {advanced} simulated s after {frames} frames, expected {expected} (step {step_s})"
        );
    }
}

#[test]
fn a_speed_the_machine_cannot_reach_falls_behind_instead_of_freezing_frames() {
    let mut app = app(Speed::Times(100.0));
    // A budget of a nanosecond per frame: no machine simulates the retry storm that fast, so
    // each frame may ask for a few microseconds of simulated time at most.
    let mut playback = app.world_mut().resource_mut::<Playback>();
    playback.least_sim_budget = Duration::from_nanos(1);
    playback.sim_share_of_frame = 0.0;
    let start = sim_s(&app);
    for _ in 0..120 {
        app.update();
    }
    let advanced = sim_s(&app) - start;
    let asked = 100.0 * 120.0 * FRAME.as_secs_f64();
    assert!(
        advanced < 0.01 * asked,
        "{advanced} simulated s advanced, {asked} asked"
    );
    assert!(advanced > 0.0, "the clock still moves");
    assert_eq!(
        app.world().resource::<SimClock>().ticks_per_update,
        1,
        "steps shrink to what the budget buys"
    );
    let pace = app.world().resource::<cascade_app::playback::Pace>();
    assert!(pace.wall_per_sim_s.is_some_and(|c| c > 0.0), "{pace:?}");
}

#[test]
fn pause_stops_the_clock_and_step_advances_one_tick() {
    let mut app = app(Speed::Times(1.0));
    app.world_mut().write_message(AppAction::TogglePlay);
    app.update();
    let paused_at = app.world().resource::<SimClock>().ticks_done;
    for _ in 0..10 {
        app.update();
    }
    assert_eq!(
        app.world().resource::<SimClock>().ticks_done,
        paused_at,
        "paused"
    );
    app.world_mut().write_message(AppAction::Step);
    app.update();
    app.update();
    assert_eq!(
        app.world().resource::<SimClock>().ticks_done,
        paused_at + 1,
        "one step is one tick"
    );
}

#[test]
fn editing_a_parameter_changes_the_sim_component() {
    let mut app = app(Speed::Times(1.0));
    let mut edited = app.world().resource::<Document>().scenario.clone();
    edited
        .services
        .iter_mut()
        .find(|s| s.name == "db")
        .unwrap()
        .workers = 3;
    let db_index = edited.services.iter().position(|s| s.name == "db").unwrap() as u32;
    app.world_mut().write_message(AppAction::Edit {
        scenario: Box::new(edited),
        label: "edit db".into(),
    });
    for _ in 0..3 {
        app.update();
    }
    let mut q = app.world_mut().query::<&InstanceState>();
    let db: Vec<u32> = q
        .iter(app.world())
        .filter(|i| i.service == db_index)
        .map(|i| i.workers)
        .collect();
    assert_eq!(db, vec![3], "db's instance now has 3 workers");
    assert_eq!(
        app.world()
            .resource::<ActiveScenario>()
            .0
            .service("db")
            .unwrap()
            .workers,
        3
    );
    // And it can be undone.
    app.world_mut().write_message(AppAction::Undo);
    for _ in 0..3 {
        app.update();
    }
    let mut q = app.world_mut().query::<&InstanceState>();
    let db: Vec<u32> = q
        .iter(app.world())
        .filter(|i| i.service == db_index)
        .map(|i| i.workers)
        .collect();
    assert_eq!(db, vec![10], "undo restores 10 workers");
}

#[test]
fn loading_a_broken_file_keeps_the_current_run_and_shows_the_error() {
    let mut app = app(Speed::Times(10.0));
    for _ in 0..30 {
        app.update();
    }
    let before_doc = app.world().resource::<Document>().scenario.clone();
    let t_before = sim_s(&app);
    assert!(t_before > 0.0);
    let dir = std::env::temp_dir().join(format!("cascade-app-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.ron");
    std::fs::write(
        &broken,
        "(\n    version: 1, name: \"x\", duration_s: 1,\n    sources: [(name: \"u\", target: \"apx\", rate: Constant(10))],\n    services: [(name: \"api\", workers: 1, service_time: Exponential(mean_ms: 1.0))],\n)\n",
    )
    .unwrap();
    app.world_mut()
        .write_message(AppAction::OpenPath(broken.clone()));
    for _ in 0..10 {
        app.update();
    }
    let errors = app
        .world()
        .resource::<ErrorWindow>()
        .open
        .clone()
        .expect("an error window is open");
    assert!(errors.0.contains("broken.ron"), "{errors:?}");
    assert!(
        errors
            .1
            .contains("broken.ron:3:35: unknown service \"apx\""),
        "same line:col message as cascade-cli validate: {}",
        errors.1
    );
    assert!(errors.1.contains("did you mean \"api\"?"));
    assert_eq!(
        app.world().resource::<Document>().scenario,
        before_doc,
        "the document is unchanged"
    );
    assert!(sim_s(&app) > t_before, "the run goes on (not reset)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_that_outgrows_memory_stops_pauses_and_says_why_leaving_the_document() {
    let mut app = app(Speed::Times(100.0));
    let before = app.world().resource::<Document>().scenario.clone();
    // A limit of jobs in flight the retry storm passes within its first simulated second.
    app.world_mut()
        .resource_mut::<cascade_sim::Engine>()
        .jobs
        .set_limit(50);
    for _ in 0..120 {
        app.update();
    }
    let engine = app.world().resource::<cascade_sim::Engine>();
    let halt = engine.halted.clone().expect("the run stopped");
    assert!(
        !app.world().resource::<Playback>().playing,
        "playback paused"
    );
    let (title, body) = app
        .world()
        .resource::<ErrorWindow>()
        .open
        .clone()
        .expect("the error window is open");
    assert_eq!(title, "The simulation stopped");
    assert!(
        body.contains("more than 50 requests were in flight"),
        "{body}"
    );
    assert!(body.contains(&halt.hint), "{body}");
    assert_eq!(app.world().resource::<Document>().scenario, before);
}
