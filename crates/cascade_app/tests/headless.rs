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
use cascade_sim::scenario::RateProfile;
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
    // The default scenario's story pauses at 29.5 s; these tests are about the clock and the
    // session (story pauses have their own test).
    app.world_mut()
        .resource_mut::<cascade_app::story::StoryHold>()
        .enabled = false;
    let mut playback = app.world_mut().resource_mut::<Playback>();
    playback.speed = speed;
    // The clock tests are about virtual time, not the test machine's speed: a budget no
    // frame reaches, so the governor never holds the clock back (see the test of it below).
    playback.least_sim_budget = Duration::from_secs(3600);
    app.update(); // Bevy's first update only starts the clocks
    app
}

/// Runs `n` frames.
fn frames(app: &mut App, n: usize) {
    for _ in 0..n {
        app.update();
    }
}

/// `metrics.csv` of the run in `world` (the app's or a headless runner's), as exported.
fn metrics_csv(world: &World) -> Vec<u8> {
    let mut csv = cascade_report::MetricsCsv::new();
    csv.append(world.resource(), world.resource::<cascade_sim::Engine>())
        .unwrap();
    csv.into_bytes().unwrap()
}

/// The error window's title and body; fails when none is open.
#[track_caller]
fn open_error(app: &App) -> (String, String) {
    app.world()
        .resource::<ErrorWindow>()
        .open
        .clone()
        .expect("an error window is open")
}

fn sim_s(app: &App) -> f64 {
    app.world().resource::<SimClock>().now_s()
}

#[test]
fn the_simulation_clock_follows_the_chosen_speed() {
    for speed in [1.0, 10.0, 100.0] {
        let mut app = app(Speed::Times(speed));
        let start = sim_s(&app);
        let n = 120;
        frames(&mut app, n);
        let expected = speed * n as f64 * FRAME.as_secs_f64();
        let step_s = app
            .world()
            .resource::<Time<Fixed>>()
            .timestep()
            .as_secs_f64();
        let advanced = sim_s(&app) - start;
        // The fixed loop runs whole steps of `step_s`: at most one step behind virtual time.
        assert!(
            advanced <= expected + 1e-9 && advanced > expected - step_s - 1e-9,
            "×{speed}: {advanced} simulated s after {n} frames, expected {expected} (step {step_s})"
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
    frames(&mut app, 120);
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
    frames(&mut app, 10);
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
    frames(&mut app, 3);
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
    frames(&mut app, 3);
    let mut q = app.world_mut().query::<&InstanceState>();
    let db: Vec<u32> = q
        .iter(app.world())
        .filter(|i| i.service == db_index)
        .map(|i| i.workers)
        .collect();
    assert_eq!(db, vec![10], "undo restores 10 workers");
}

#[test]
fn replaying_a_traffic_trace_sets_the_sources_rate_in_one_undoable_edit() {
    let mut app = app(Speed::Times(1.0));
    let source = app.world().resource::<Document>().scenario.sources[0].clone();
    let dir = std::env::temp_dir().join(format!("cascade-app-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("day.csv");
    std::fs::write(&trace, "time_s,rate_per_s\n100,500\n160,900\n220,400\n").unwrap();
    let replay = |app: &mut App, path: &std::path::Path| {
        app.world_mut()
            .write_message(AppAction::ReplayRateDialog(source.name.clone()));
        frames(app, 1);
        app.world_mut()
            .write_message(AppAction::ReplayRateFrom(path.to_path_buf()));
        frames(app, 3);
    };
    replay(&mut app, &trace);
    let expected = RateProfile::Points(vec![(0.0, 500.0), (60.0, 900.0), (120.0, 400.0)]);
    let rate = |app: &App| {
        app.world().resource::<Document>().scenario.sources[0]
            .rate
            .clone()
    };
    assert_eq!(rate(&app), expected, "the first row is the run's start");
    assert_eq!(
        app.world().resource::<ActiveScenario>().0.sources[0].rate,
        expected,
        "the running simulation has it"
    );
    app.world_mut().write_message(AppAction::Undo);
    frames(&mut app, 3);
    assert_eq!(rate(&app), source.rate, "one undo restores the rate");
    // A broken trace says where and leaves the document alone.
    std::fs::write(&trace, "time_s,rate_per_s\n0,500\n60,lots\n").unwrap();
    replay(&mut app, &trace);
    let (title, body) = open_error(&app);
    assert!(title.contains("day.csv"), "{title}");
    assert!(
        body.contains("line 3: the rate \"lots\" is not a number"),
        "{body}"
    );
    assert_eq!(rate(&app), source.rate);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_a_broken_file_keeps_the_current_run_and_shows_the_error() {
    let mut app = app(Speed::Times(10.0));
    frames(&mut app, 30);
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
    frames(&mut app, 10);
    let errors = open_error(&app);
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
    frames(&mut app, 120);
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
    // Its export is what `cascade-cli run --out` writes for a stopped run: metrics and
    // events up to the stop, no summary or report.
    app.world_mut().write_message(AppAction::DismissError);
    let dir = std::env::temp_dir().join(format!("cascade-app-halted-{}", std::process::id()));
    app.world_mut()
        .write_message(AppAction::ExportDataTo(dir.clone()));
    app.update();
    assert!(dir.join("metrics.csv").exists() && dir.join("events.jsonl").exists());
    assert!(!dir.join("summary.json").exists() && !dir.join("report.md").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A random edit of `scenario` a user could make in the inspector: workers, instances, a rate,
/// a call removed. Some are invalid (no workers, no rate): the app must refuse those.
fn random_edit(
    scenario: &cascade_sim::Scenario,
    rng: &mut cascade_sim::rng::SimRng,
) -> cascade_sim::Scenario {
    use cascade_sim::rng::below;
    let mut s = scenario.clone();
    let n = s.services.len() as u32;
    let i = below(rng, n) as usize;
    match below(rng, 4) {
        0 => s.services[i].workers = [0, 1, 2, 7, 1000][below(rng, 5) as usize],
        1 => s.services[i].instances = [0, 1, 3, 10][below(rng, 4) as usize],
        2 if !s.sources.is_empty() => {
            let k = below(rng, s.sources.len() as u32) as usize;
            s.sources[k].rate =
                RateProfile::Constant([0.0, 0.5, 50.0, 5000.0][below(rng, 4) as usize]);
        }
        _ => {
            if !s.services[i].calls.is_empty() {
                let c = below(rng, s.services[i].calls.len() as u32) as usize;
                s.services[i].calls.remove(c);
            }
        }
    }
    s
}

#[test]
fn random_user_sessions_never_panic_and_keep_a_valid_document() {
    // Seeded, so the same every run: sessions over the shipped library, each opening a file
    // and then taking random actions (edits valid and not, faults, clears, undo and redo,
    // resets, play, pause, steps, speeds, selections of real and missing nodes, sampling,
    // saves, a missing file), two frames after each.
    use cascade_sim::rng::{below, unit};
    // The library as the app's panel lists it.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let files: Vec<_> = cascade_app::ui::library::scan(&root)
        .into_iter()
        .map(|entry| entry.path)
        .collect();
    assert!(files.len() > 30, "the shipped library is found");
    let save_dir = std::env::temp_dir().join(format!("cascade-session-{}", std::process::id()));
    std::fs::create_dir_all(&save_dir).unwrap();
    // `CASCADE_SESSION_SEED` runs other sessions (a soak).
    let seed = std::env::var("CASCADE_SESSION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut rng = cascade_sim::rng::stream(seed, "app:random-session", 0);
    let mut app = app(Speed::Times(10.0));
    {
        let mut playback = app.world_mut().resource_mut::<Playback>();
        playback.least_sim_budget = Duration::from_millis(5);
        playback.sim_share_of_frame = 0.0;
    }
    let mut refused = 0;
    for _ in 0..16 {
        let file = files[below(&mut rng, files.len() as u32) as usize].clone();
        app.world_mut()
            .write_message(AppAction::OpenPath(file.clone()));
        app.update();
        for _ in 0..40 {
            let doc = app.world().resource::<Document>().scenario.clone();
            let names: Vec<String> = doc.services.iter().map(|s| s.name.clone()).collect();
            let now_s = sim_s(&app);
            let action = match below(&mut rng, 21) {
                0..=3 => AppAction::Edit {
                    scenario: Box::new(random_edit(&doc, &mut rng)),
                    label: "random edit".into(),
                },
                4 if !doc.faults.is_empty() => AppAction::InjectFault {
                    fault: doc.faults[below(&mut rng, doc.faults.len() as u32) as usize]
                        .fault
                        .clone(),
                    duration_s: (unit(&mut rng) < 0.7).then(|| 0.1 + 5.0 * unit(&mut rng)),
                },
                5 => AppAction::ClearAllFaults,
                6 => AppAction::Undo,
                7 => AppAction::Redo,
                8 => AppAction::Reset {
                    seed: (unit(&mut rng) < 0.5).then(|| u64::from(below(&mut rng, 1000))),
                },
                9 => AppAction::TogglePlay,
                10 => AppAction::Step,
                11 => [
                    AppAction::Faster,
                    AppAction::Slower,
                    AppAction::SetSpeed(Speed::Max),
                    AppAction::SetSpeed(Speed::Times(1.0)),
                ][below(&mut rng, 4) as usize]
                    .clone(),
                12 => AppAction::Select(cascade_app::session::Selection {
                    node: Some(if names.is_empty() || unit(&mut rng) < 0.2 {
                        "no such node".into()
                    } else {
                        names[below(&mut rng, names.len() as u32) as usize].clone()
                    }),
                    ..Default::default()
                }),
                13 => AppAction::SetSampling(below(&mut rng, 50)),
                14 => AppAction::SaveAsPath(save_dir.join("session.ron")),
                15 => AppAction::OpenPath(save_dir.join("missing.ron")),
                16 => AppAction::RewindTo(now_s * unit(&mut rng) * 1.1),
                17 => AppAction::SaveRecordingTo(save_dir.join("recorded.ron")),
                18 => AppAction::ExportDataTo(save_dir.join("export")),
                19 => AppAction::CompareWith(
                    files[below(&mut rng, files.len() as u32) as usize].clone(),
                ),
                _ => AppAction::StopComparing,
            };
            app.world_mut().write_message(action);
            app.update();
            app.update();
            let errors = app.world().resource::<ErrorWindow>();
            if errors.open.is_some() {
                refused += 1;
                app.world_mut().write_message(AppAction::DismissError);
            }
        }
        let doc = &app.world().resource::<Document>().scenario;
        let problems = cascade_sim::scenario::validate(doc);
        assert!(problems.is_empty(), "{}: {problems:?}", file.display());
        let recorded = save_dir.join("recorded.ron");
        if recorded.exists() {
            cascade_sim::scenario::load(&recorded).expect("a saved run is a valid scenario");
        }
    }
    assert!(
        refused > 0,
        "some random edits are invalid and must be refused"
    );
    let _ = std::fs::remove_dir_all(&save_dir);
}

#[test]
fn exported_run_data_are_the_files_the_headless_runner_writes_for_the_same_run() {
    // The app plays the run frame by frame at ×100 and is paused at some tick; the headless
    // runner (`cascade_sim::Simulation`, what `cascade-cli run` drives) runs the same scenario
    // and seed for the same ticks. Same model, same ticks: the same bytes.
    let mut app = app(Speed::Times(100.0));
    frames(&mut app, 12);
    app.world_mut().write_message(AppAction::TogglePlay);
    app.update();
    let ticks = app.world().resource::<SimClock>().ticks_done;
    assert!(sim_s(&app) > 10.0, "ten intervals or more to compare");
    let dir = std::env::temp_dir().join(format!("cascade-app-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    app.world_mut()
        .write_message(AppAction::ExportDataTo(dir.join("run")));
    app.update();
    assert_eq!(
        app.world().resource::<SimClock>().ticks_done,
        ticks,
        "paused"
    );
    assert!(app.world().resource::<ErrorWindow>().open.is_none());

    let scenario = app.world().resource::<ActiveScenario>().0.clone();
    let mut sim = cascade_sim::Simulation::new(&scenario);
    sim.run_ticks(ticks);
    let summary = cascade_report::summary_json(&sim.summary(), None).unwrap();
    let read = |name: &str| std::fs::read(dir.join("run").join(name)).expect(name);
    let metrics = read("metrics.csv");
    assert_eq!(
        String::from_utf8_lossy(&metrics),
        String::from_utf8_lossy(&metrics_csv(sim.world()))
    );
    assert_eq!(
        metrics.iter().filter(|&&b| b == b'\n').count(),
        1 + 5 * (sim_s(&app).floor() as usize),
        "a header and a row per node (1 source, 4 services) per closed interval"
    );
    assert_eq!(
        String::from_utf8_lossy(&read("events.jsonl")),
        String::from_utf8_lossy(
            &cascade_report::events_jsonl(sim.world().resource::<cascade_sim::EventLog>()).unwrap()
        )
    );
    assert_eq!(
        String::from_utf8_lossy(&read("summary.json")),
        format!("{summary}\n")
    );
    let report = String::from_utf8(read("report.md")).unwrap();
    let cli_report = cascade_report::postmortem_md(&cascade_report::RunRecord {
        scenario: &scenario,
        file: app
            .world()
            .resource::<Document>()
            .path
            .as_ref()
            .and_then(|p| p.file_name())
            .and_then(|f| f.to_str()),
        summary: &sim.summary(),
        events: sim.world().resource::<cascade_sim::EventLog>(),
        history: sim.history(),
    });
    assert_eq!(report, cli_report);
    assert!(
        report.contains("**stable** so far (") && report.contains("that is judged at its end"),
        "a run exported before its end is judged so far: {report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_export_that_cannot_be_written_says_why_and_leaves_the_run() {
    let mut app = app(Speed::Times(10.0));
    frames(&mut app, 10);
    let before_doc = app.world().resource::<Document>().scenario.clone();
    // A folder inside a regular file cannot be created.
    let file = std::env::temp_dir().join(format!("cascade-app-export-file-{}", std::process::id()));
    std::fs::write(&file, b"not a folder").unwrap();
    app.world_mut()
        .write_message(AppAction::ExportDataTo(file.join("run")));
    let t_before = sim_s(&app);
    frames(&mut app, 5);
    let (title, body) = open_error(&app);
    assert!(title.contains("Could not export the run data"), "{title}");
    assert!(body.contains("cannot create"), "{body}");
    assert_eq!(app.world().resource::<Document>().scenario, before_doc);
    assert!(sim_s(&app) > t_before, "the run goes on");
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn export_picture_asks_the_renderer_for_a_capture_of_the_window() {
    // Capturing and saving need a renderer: the screenshot test covers them (the `--screenshot`
    // mode saves with the same function). Here: the action turns into a capture request.
    let mut app = app(Speed::Times(1.0));
    let path = std::env::temp_dir().join("cascade-never-written.png");
    app.world_mut()
        .write_message(AppAction::ExportPictureTo(path.clone()));
    app.update();
    let mut q = app
        .world_mut()
        .query::<&bevy::render::view::screenshot::Screenshot>();
    assert_eq!(q.iter(app.world()).count(), 1, "one capture of the window");
    assert!(
        !path.exists(),
        "nothing is written before a frame is captured"
    );
}

#[test]
fn every_shipped_scenario_runs_in_the_app_as_in_the_headless_runner() {
    // The app advances the model by frames of whatever length the machine gives, many ticks
    // and interval closes per frame at speed; the headless runner by one interval per update.
    // The exports of both must agree byte for byte for every scenario (mechanisms, faults,
    // live verdict), or the app shows another run than the one `cascade-cli` reports.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "{} scenarios", files.len());
    let dir = std::env::temp_dir().join(format!("cascade-app-parity-{}", std::process::id()));
    for file in &files {
        let document = cascade_app::session::load_document(file).expect("a shipped scenario");
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(SimViewPlugins { document });
        app.insert_resource(Settings::default());
        // 50 ms frames at ×300: 15 simulated seconds a frame, many interval closes each.
        app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
            50,
        )));
        // The teaching scenarios' stories would pause them: run the full 75 s.
        app.world_mut()
            .resource_mut::<cascade_app::story::StoryHold>()
            .enabled = false;
        {
            let mut playback = app.world_mut().resource_mut::<Playback>();
            playback.speed = Speed::Times(300.0);
            playback.least_sim_budget = Duration::from_secs(3600);
        }
        frames(&mut app, 5);
        app.world_mut().write_message(AppAction::TogglePlay);
        app.update();
        let out = dir.join(file.file_stem().unwrap());
        app.world_mut()
            .write_message(AppAction::ExportDataTo(out.clone()));
        app.update();
        let ticks = app.world().resource::<SimClock>().ticks_done;
        assert!(ticks > 0, "{}: the app ran", file.display());

        let scenario = app.world().resource::<ActiveScenario>().0.clone();
        let mut sim = cascade_sim::Simulation::new(&scenario);
        sim.run_ticks(ticks);
        let events =
            cascade_report::events_jsonl(sim.world().resource::<cascade_sim::EventLog>()).unwrap();
        let read = |name: &str| std::fs::read(out.join(name)).expect(name);
        assert!(
            read("metrics.csv") == metrics_csv(sim.world()),
            "{}: metrics.csv differs after {ticks} ticks",
            file.display()
        );
        let (app_events, cli_events) = (read("events.jsonl"), events);
        assert!(
            app_events == cli_events,
            "{}: events.jsonl differs after {ticks} ticks:\napp:\n{}\ncli:\n{}",
            file.display(),
            String::from_utf8_lossy(&app_events),
            String::from_utf8_lossy(&cli_events)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_pausing_story_step_stops_the_run_exactly_on_its_time_once_per_pass() {
    // At ×100 a frame covers 1.67 simulated seconds; the run must stop on the step's tick,
    // not at the end of the frame that crosses it.
    let mut scenario =
        cascade_sim::scenario::Scenario::from_ron_str(cascade_app::DEFAULT_SCENARIO, "built-in")
            .unwrap();
    scenario.story = vec![
        cascade_sim::scenario::StoryStep {
            at_s: 2.0,
            text: "Everything is healthy.".into(),
            pause: false,
        },
        cascade_sim::scenario::StoryStep {
            at_s: 5.25,
            text: "Watch db.".into(),
            pause: true,
        },
    ];
    let document = Document::new(scenario, None);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SimViewPlugins { document });
    app.insert_resource(Settings::default());
    app.insert_resource(TimeUpdateStrategy::ManualDuration(FRAME));
    {
        let mut playback = app.world_mut().resource_mut::<Playback>();
        playback.speed = Speed::Times(100.0);
        playback.least_sim_budget = Duration::from_secs(3600);
    }
    frames(&mut app, 10);
    let stopped_at = app.world().resource::<SimClock>().ticks_done;
    assert_eq!(stopped_at, 5_250, "stopped on the step's tick (1-ms ticks)");
    assert!(!app.world().resource::<Playback>().playing);
    frames(&mut app, 5);
    assert_eq!(
        app.world().resource::<SimClock>().ticks_done,
        5_250,
        "and stays"
    );

    app.world_mut().write_message(AppAction::TogglePlay);
    frames(&mut app, 5);
    assert!(sim_s(&app) > 6.0, "Play goes on past the step");
    assert!(app.world().resource::<Playback>().playing);

    app.world_mut()
        .write_message(AppAction::Reset { seed: None });
    frames(&mut app, 10);
    assert_eq!(
        app.world().resource::<SimClock>().ticks_done,
        5_250,
        "after a reset the step pauses again"
    );
}

#[test]
fn going_back_replays_the_run_to_that_moment_and_drops_what_came_after() {
    let mut app = app(Speed::Times(10.0));
    frames(&mut app, 20);
    app.world_mut().write_message(AppAction::InjectFault {
        fault: cascade_sim::scenario::FaultKind::Slow {
            service: "db".into(),
            instances: cascade_sim::scenario::InstanceSelector::All,
            factor: 4.0,
        },
        duration_s: None,
    });
    frames(&mut app, 30);
    let fault_at_ns = app.world().resource::<cascade_sim::CommandLog>().applied[0].0;
    assert!(sim_s(&app) > 7.0);
    assert_eq!(
        app.world()
            .resource::<cascade_app::session::UndoHistory>()
            .undo
            .len(),
        1
    );
    let doc_before = app.world().resource::<Document>().scenario.clone();

    app.world_mut().write_message(AppAction::RewindTo(2.0));
    app.update();
    let clock = *app.world().resource::<SimClock>();
    assert_eq!(clock.now_ns(), 2_000_000_000, "back at 2 s");
    assert!(fault_at_ns > clock.now_ns());
    let engine = app.world().resource::<cascade_sim::Engine>();
    assert!(
        engine.faults.iter().all(|f| f.scripted),
        "the live fault came later: gone (the scenario's own, at 30 s, stays)"
    );
    assert!(
        app.world()
            .resource::<cascade_sim::CommandLog>()
            .applied
            .is_empty()
    );
    assert!(!app.world().resource::<Playback>().playing, "paused there");
    assert!(
        app.world()
            .resource::<cascade_app::session::UndoHistory>()
            .undo
            .is_empty()
    );
    assert_eq!(
        app.world().resource::<Document>().scenario,
        doc_before,
        "no edit to drop"
    );
    assert_eq!(
        app.world()
            .resource::<cascade_sim::metrics::MetricsHistory>()
            .intervals(),
        2
    );
    // Ahead of the run: refused, nothing changes.
    app.world_mut().write_message(AppAction::RewindTo(50.0));
    app.update();
    assert!(app.world().resource::<ErrorWindow>().open.is_some());
    assert_eq!(app.world().resource::<SimClock>().now_ns(), 2_000_000_000);
    // Play on: a run without the fault.
    app.world_mut().write_message(AppAction::DismissError);
    app.world_mut().write_message(AppAction::TogglePlay);
    frames(&mut app, 10);
    assert!(sim_s(&app) > 2.5);
    assert!(
        app.world()
            .resource::<cascade_sim::Engine>()
            .faults
            .iter()
            .all(|f| f.scripted)
    );
}

#[test]
fn a_run_saved_as_a_scenario_replays_in_the_headless_runner_as_it_ran_in_the_app() {
    let mut app = app(Speed::Times(10.0));
    frames(&mut app, 20);
    app.world_mut().write_message(AppAction::InjectFault {
        fault: cascade_sim::scenario::FaultKind::Errors {
            service: "catalog".into(),
            instances: cascade_sim::scenario::InstanceSelector::All,
            probability: 0.5,
        },
        duration_s: None,
    });
    frames(&mut app, 20);
    app.world_mut().write_message(AppAction::ClearAllFaults);
    frames(&mut app, 20);
    app.world_mut().write_message(AppAction::TogglePlay);
    app.update();
    let dir = std::env::temp_dir().join(format!("cascade-app-recording-{}", std::process::id()));
    let path = dir.join("storm-recorded.ron");
    app.world_mut()
        .write_message(AppAction::SaveRecordingTo(path.clone()));
    app.update();
    assert_eq!(app.world().resource::<ErrorWindow>().open, None);
    let recorded = cascade_sim::scenario::load(&path).expect("a valid scenario file");
    // The live fault, cleared at its time; "clear all" also cancelled the scenario's own
    // fault at 30 s before it started, so the recording leaves that out.
    assert_eq!(recorded.faults.len(), 1);
    let live = &recorded.faults[0];
    assert!(live.duration_s.is_some_and(|d| d > 2.0), "{live:?}");

    let ticks = app.world().resource::<SimClock>().ticks_done;
    let mut sim = cascade_sim::Simulation::new(&recorded);
    sim.run_ticks(ticks);
    assert!(
        metrics_csv(app.world()) == metrics_csv(sim.world()),
        "the recording replays the app's run, metrics byte for byte"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_comparison_runs_beside_under_the_same_seed_and_faults_and_keeps_pace() {
    use cascade_app::compare::Comparison;
    let mut app = app(Speed::Times(100.0));
    frames(&mut app, 6);
    let mitigated = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/teaching/retry-storm-mitigated.ron");
    app.world_mut()
        .write_message(AppAction::CompareWith(mitigated.clone()));
    app.update();
    let b_ticks = |app: &App| {
        app.world()
            .non_send::<Comparison>()
            .sim
            .world()
            .resource::<SimClock>()
            .ticks_done
    };
    assert_eq!(
        b_ticks(&app),
        app.world().resource::<SimClock>().ticks_done,
        "in step"
    );
    let seed = app.world().resource::<ActiveScenario>().0.seed;
    {
        let cmp = app.world().non_send::<Comparison>();
        let b = &cmp.sim.world().resource::<ActiveScenario>().0;
        assert_eq!(b.seed, seed, "A's seed");
        assert_eq!(b.faults.len(), 1, "A's scripted fault: db slowed at 30 s");
        assert_eq!(b.faults[0].at_s, 30.0);
    }
    frames(&mut app, 22);
    assert!(sim_s(&app) > 44.0);
    assert_eq!(b_ticks(&app), app.world().resource::<SimClock>().ticks_done);
    let verdict = |v: &cascade_sim::LiveVerdict| v.verdict.as_ref().map(|v| v.kind);
    assert_eq!(
        verdict(app.world().resource::<cascade_sim::LiveVerdict>()),
        Some(cascade_sim::scenario::VerdictKind::Metastable),
        "A: the storm"
    );
    assert_eq!(
        verdict(
            app.world()
                .non_send::<Comparison>()
                .sim
                .world()
                .resource::<cascade_sim::LiveVerdict>()
        ),
        Some(cascade_sim::scenario::VerdictKind::Recovered),
        "B, the same slowdown with the mitigations: recovered"
    );

    // A live fault in A reaches B; going back takes B back too.
    app.world_mut().write_message(AppAction::InjectFault {
        fault: cascade_sim::scenario::FaultKind::Slow {
            service: "catalog".into(),
            instances: cascade_sim::scenario::InstanceSelector::All,
            factor: 2.0,
        },
        duration_s: Some(5.0),
    });
    app.update();
    app.update();
    assert_eq!(
        app.world()
            .non_send::<Comparison>()
            .sim
            .world()
            .resource::<ActiveScenario>()
            .0
            .faults
            .len(),
        2
    );
    app.world_mut().write_message(AppAction::RewindTo(10.0));
    app.update();
    assert_eq!(b_ticks(&app), 10_000);

    app.world_mut().write_message(AppAction::StopComparing);
    app.update();
    assert!(app.world().get_non_send::<Comparison>().is_none());
    app.world_mut().write_message(AppAction::CompareWith(
        mitigated.with_file_name("missing.ron"),
    ));
    app.update();
    assert!(app.world().resource::<ErrorWindow>().open.is_some());
}
