//! Unattended modes: `--screenshot OUT.png --after-seconds S` runs to S simulated seconds
//! (full speed, then the last 0.4 s at ×0.1 so requests are in flight and the layout settles),
//! pauses at S with the speed control back at the user's speed, saves a screenshot of the window and exits; `--measure-frames N` prints frame-time statistics (Bevy's frame-time diagnostics)
//! as JSON and exits. Neither persists settings, and in neither do story steps pause the run.
//!
//! A screenshot is an output like any other: the same scenario, seed and time give the same
//! picture on any machine. So in the screenshot mode every frame advances Bevy's real time by
//! the same [`SCREENSHOT_FRAME`] (`TimeUpdateStrategy::ManualDuration`): the slow approach,
//! the particles' flight, pulses and the journey sampling follow frames, not the machine's
//! speed; and every frame advances the simulated time its speed asks for, however long that
//! takes (`Playback::fixed_pace`: a busy machine's governor would otherwise take smaller steps,
//! reach a lower speed and sample other journeys). The full-speed part is measured in wall
//! time, but it ends at an exact tick.

use std::path::PathBuf;
use std::time::Duration;

use bevy::app::FixedMain;
use bevy::diagnostic::{DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::time::TimeUpdateStrategy;
use cascade_sim::{Engine, SimClock};

use crate::args::Args;
use crate::playback::{Playback, Speed};
use crate::settings::Settings;

/// Frames rendered at least between full speed and the picture (layout, fonts and the
/// camera fit settle).
const SETTLE_FRAMES: u32 = 20;
/// Real time each frame of the screenshot mode advances (see the module docs): the slow
/// approach of [`LEAD_S`] at [`APPROACH_SPEED`] takes 40 frames.
const SCREENSHOT_FRAME: Duration = Duration::from_millis(100);
/// Frames paused at the target time before the picture. Pausing changes text (the clock's
/// last digits, Play for Pause), and egui draws new glyphs in the frame it first lays them
/// out but the font atlas they are drawn from reaches the GPU a frame later: a picture taken
/// in that frame missed those letters (about one run in ten, and every run once frames had a
/// fixed length). After a few paused frames nothing is new.
const STILL_FRAMES: u32 = 3;
/// Frames to warm up before measuring.
const WARMUP_FRAMES: u32 = 60;

/// The screenshot/measurement plugin for these arguments.
pub fn plugin(args: Args) -> impl Fn(&mut App) {
    move |app: &mut App| {
        if let Some(path) = &args.screenshot {
            app.insert_resource(TimeUpdateStrategy::ManualDuration(SCREENSHOT_FRAME))
                .insert_resource(ScreenshotPlan {
                    path: path.clone(),
                    after_s: args.after_seconds,
                    stage: Stage::Running,
                    frames: 0,
                    speed_before: Speed::Times(1.0),
                })
                .add_systems(Startup, |mut p: ResMut<Playback>| p.fixed_pace = true)
                .add_systems(
                    PreUpdate,
                    screenshot_driver.after(crate::AppSystems::Playback),
                );
        }
        if let Some(frames) = args.measure_frames {
            app.add_plugins(FrameTimeDiagnosticsPlugin::default())
                .insert_resource(Measure {
                    frames,
                    seen: 0,
                    samples_ms: Vec::new(),
                    sim_start_s: 0.0,
                })
                .add_systems(Last, measure_frames);
        }
        if args.screenshot.is_some() || args.measure_frames.is_some() {
            app.add_systems(
                Startup,
                |mut s: ResMut<Settings>, mut story: ResMut<crate::story::StoryHold>| {
                    s.file = None;
                    s.panels = Default::default();
                    // Nobody is there to press Play: story steps show but do not pause.
                    story.enabled = false;
                },
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Full speed up to shortly before the target time.
    Running,
    /// Slow play into the target time, so particles are in flight and layout settles.
    Settling,
    /// Paused at the target time, for [`STILL_FRAMES`] before the picture.
    Still,
    /// Waiting for the file.
    Capturing,
}

/// Simulated seconds before the target at which full speed hands over to slow play.
const LEAD_S: f64 = 0.4;
/// Speed of the slow approach.
const APPROACH_SPEED: f64 = 0.1;

#[derive(Resource, Debug)]
struct ScreenshotPlan {
    path: PathBuf,
    after_s: f64,
    stage: Stage,
    frames: u32,
    /// The speed before the slow approach, shown again in the picture (the approach's ×0.1
    /// is the mode's, not the user's).
    speed_before: Speed,
}

/// True once the engine has stopped the run for good (it never reaches the picture's time).
fn halted(world: &World) -> bool {
    world.resource::<Engine>().halted.is_some()
}

fn screenshot_driver(world: &mut World) {
    let (stage, after_s) = {
        let plan = world.resource::<ScreenshotPlan>();
        (plan.stage, plan.after_s)
    };
    world.resource_mut::<ScreenshotPlan>().frames += 1;
    match stage {
        Stage::Running => {
            world.resource_mut::<Playback>().playing = false;
            let target_ticks = {
                let clock = world.resource::<SimClock>();
                ((after_s - LEAD_S).max(0.0) * 1e9 / clock.tick_ns as f64).round() as u64
            };
            // Up to 0.2 s of wall time per frame, so the window stays responsive.
            let started = std::time::Instant::now();
            // A run the engine stopped (see `cascade_sim`'s limits) never reaches the target:
            // the picture shows it stopped.
            while world.resource::<SimClock>().ticks_done < target_ticks
                && started.elapsed() < Duration::from_millis(200)
                && !halted(world)
            {
                let left = target_ticks - world.resource::<SimClock>().ticks_done;
                world.resource_mut::<SimClock>().ticks_per_update = left.min(1000) as u32;
                world.run_schedule(FixedMain);
            }
            if world.resource::<SimClock>().ticks_done >= target_ticks || halted(world) {
                let mut p = world.resource_mut::<Playback>();
                p.playing = true;
                let speed_before = std::mem::replace(&mut p.speed, Speed::Times(APPROACH_SPEED));
                let mut plan = world.resource_mut::<ScreenshotPlan>();
                plan.speed_before = speed_before;
                plan.stage = Stage::Settling;
                plan.frames = 0;
                world.resource_mut::<crate::session::ViewRequests>().fit = true;
                crate::canvas::clear_particles(world);
            }
        }
        Stage::Settling => {
            let reached = world.resource::<SimClock>().now_s() >= after_s || halted(world);
            if reached {
                let speed_before = world.resource::<ScreenshotPlan>().speed_before;
                let mut p = world.resource_mut::<Playback>();
                p.playing = false;
                p.speed = speed_before;
            }
            if reached && world.resource::<ScreenshotPlan>().frames >= SETTLE_FRAMES {
                let mut plan = world.resource_mut::<ScreenshotPlan>();
                plan.stage = Stage::Still;
                plan.frames = 0;
            }
        }
        Stage::Still => {
            if world.resource::<ScreenshotPlan>().frames >= STILL_FRAMES {
                let path = world.resource::<ScreenshotPlan>().path.clone();
                let _ = std::fs::remove_file(&path);
                world.spawn(Screenshot::primary_window()).observe(
                    move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                        if let Err(message) = crate::export::save_picture(&captured.image, &path) {
                            error!("the screenshot was not saved: {message}");
                            exit.write(AppExit::from_code(1));
                        }
                    },
                );
                let mut plan = world.resource_mut::<ScreenshotPlan>();
                plan.stage = Stage::Capturing;
                plan.frames = 0;
            }
        }
        Stage::Capturing => {
            let plan = world.resource::<ScreenshotPlan>();
            let saved = std::fs::metadata(&plan.path).is_ok_and(|m| m.len() > 0);
            if saved && plan.frames > 2 {
                info!("screenshot saved to {}", plan.path.display());
                world.write_message(AppExit::Success);
            } else if plan.frames > 600 {
                error!("the screenshot was not written to {}", plan.path.display());
                world.write_message(AppExit::from_code(1));
            }
        }
    }
}

#[derive(Resource, Debug)]
struct Measure {
    frames: u32,
    seen: u32,
    samples_ms: Vec<f64>,
    /// Simulated seconds when measuring began.
    sim_start_s: f64,
}

fn measure_frames(
    mut m: ResMut<Measure>,
    time: Res<Time<Real>>,
    diagnostics: Res<DiagnosticsStore>,
    graph: Res<crate::canvas::CanvasGraph>,
    particles: Query<(), With<Mesh2d>>,
    clock: Res<SimClock>,
    mut exit: MessageWriter<AppExit>,
) {
    m.seen += 1;
    if m.seen <= WARMUP_FRAMES {
        m.sim_start_s = clock.now_s();
        return;
    }
    m.samples_ms.push(time.delta_secs_f64() * 1000.0);
    if m.samples_ms.len() as u32 >= m.frames {
        let mut v = m.samples_ms.clone();
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let pct = |q: f64| v[((q * v.len() as f64) as usize).min(v.len() - 1)];
        let bevy_fps = diagnostics
            .get(&FrameTimeDiagnosticsPlugin::FPS)
            .and_then(|d| d.smoothed());
        let sim_speed = (clock.now_s() - m.sim_start_s) / (mean * v.len() as f64 / 1000.0);
        println!(
            "{{\"nodes\": {}, \"edges\": {}, \"meshes\": {}, \"frames\": {}, \"mean_ms\": {:.2}, \"p50_ms\": {:.2}, \"p95_ms\": {:.2}, \"fps\": {:.1}, \"bevy_fps\": {}, \"sim_seconds_per_real_second\": {:.2}}}",
            graph.nodes.len(),
            graph.edges.len(),
            particles.iter().count(),
            v.len(),
            mean,
            pct(0.5),
            pct(0.95),
            1000.0 / mean,
            bevy_fps.map_or_else(|| "null".to_owned(), |f| format!("{f:.1}")),
            sim_speed
        );
        exit.write(AppExit::Success);
    }
}
