//! Play, pause, step and speed: how fast simulated time runs against the wall clock.
//!
//! The simulation advances only in `FixedUpdate` (the `SimPlugin` schedule). At a speed of
//! ×s, `Time<Virtual>` runs s times faster than real time and the fixed timestep is sized so
//! that each `FixedUpdate` advances `ticks_per_update` ticks and runs about twice per frame —
//! cheap at 1,000× and still smooth at 0.1× (visuals interpolate inside the step with
//! `overstep_fraction`). "Max" pauses virtual time and instead runs the fixed schedule
//! directly for a wall-clock budget per frame, as fast as the machine allows. Results do not
//! depend on any of this: events carry exact times (see docs/model.md).
//!
//! A `Times` speed the machine cannot keep up with is governed by the same budget: the fixed
//! loop's cost per simulated second is measured every frame ([`Pace`]), and a frame asks for no
//! more simulated time than the budget buys at that cost (virtual time's `max_delta`, and fixed
//! steps small enough that a frame runs about two). Without it, a slow frame asked for more
//! simulated time the next frame, which was slower still, up to Bevy's 250 ms cap: at ×1,000
//! that is 250 simulated seconds per frame, and the window froze for seconds at a time. The
//! budget is the larger of a floor (24 ms) and half of a recent frame ([`sim_budget`]): on a
//! fast GPU the floor rules and frames stay near 30 fps at worst; where drawing is slow (a
//! software renderer takes 250 ms a frame) the simulation still gets half the machine instead
//! of a tenth. The speed actually reached is measured too, and the top bar shows it when it
//! falls short.

use std::time::{Duration, Instant};

use bevy::app::FixedMain;
use bevy::prelude::*;
use cascade_sim::{Engine, SimClock};

/// Playback plugin.
pub(crate) fn plugin(app: &mut App) {
    // Clocks are configured at the end of a frame, so a pause or speed change made this
    // frame governs how much virtual time the next frame brings.
    app.init_resource::<Playback>()
        .init_resource::<SimTime>()
        .init_resource::<Pace>()
        .add_systems(
            PreUpdate,
            run_unthrottled.in_set(crate::AppSystems::Playback),
        )
        .add_systems(Startup, configure_clocks)
        .add_systems(Last, configure_clocks);
    app.add_systems(
        RunFixedMainLoop,
        (
            begin_fixed_loop.in_set(RunFixedMainLoopSystems::BeforeFixedMainLoop),
            (end_fixed_loop, update_sim_time)
                .chain()
                .in_set(RunFixedMainLoopSystems::AfterFixedMainLoop),
        ),
    );
}

/// The speed notches offered by the UI and the +/- keys (× real time).
pub const SPEED_NOTCHES: [f64; 13] = [
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
];

/// How fast simulated time runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// This many simulated seconds per real second.
    Times(f64),
    /// As fast as the machine allows.
    Max,
}

impl Speed {
    /// The next notch up.
    pub fn faster(self) -> Speed {
        match self {
            Speed::Max => Speed::Max,
            Speed::Times(s) => SPEED_NOTCHES
                .iter()
                .copied()
                .find(|&n| n > s * 1.0001)
                .map_or(Speed::Max, Speed::Times),
        }
    }

    /// The next notch down.
    pub fn slower(self) -> Speed {
        match self {
            Speed::Max => Speed::Times(SPEED_NOTCHES[SPEED_NOTCHES.len() - 1]),
            Speed::Times(s) => Speed::Times(
                SPEED_NOTCHES
                    .iter()
                    .rev()
                    .copied()
                    .find(|&n| n < s * 0.9999)
                    .unwrap_or(SPEED_NOTCHES[0]),
            ),
        }
    }

    /// Label such as "×10" or "max".
    pub fn label(self) -> String {
        match self {
            Speed::Max => "max".to_owned(),
            Speed::Times(s) if s < 1.0 => format!("×{s}"),
            Speed::Times(s) => format!("×{}", s.round()),
        }
    }
}

/// Play state.
#[derive(Resource, Debug, Clone)]
pub struct Playback {
    /// Time runs.
    pub playing: bool,
    /// At this speed.
    pub speed: Speed,
    /// Advance one tick at the next frame (while paused).
    pub step_requested: bool,
    /// Least wall-clock time per frame for the simulation (see [`sim_budget`]): all of the
    /// budget at max speed, the most a `Times` speed may take (beyond it simulated time falls
    /// behind the speed asked for).
    pub least_sim_budget: Duration,
    /// Share of a frame the simulation's budget grows to when frames are long.
    pub sim_share_of_frame: f64,
    /// Every frame advances the simulated time its speed asks for, whatever that costs in
    /// wall time (the screenshot mode: what follows the speed reached — the steps, the
    /// sampling of journeys, the particles — must not depend on the machine's speed).
    pub fixed_pace: bool,
}

impl Default for Playback {
    fn default() -> Self {
        Playback {
            playing: true,
            speed: Speed::Times(1.0),
            step_requested: false,
            least_sim_budget: Duration::from_millis(24),
            sim_share_of_frame: 0.5,
            fixed_pace: false,
        }
    }
}

/// Simulated time for visuals: the last completed tick plus the part of the next fixed step
/// already elapsed in virtual time (so motion does not stutter at low speeds).
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct SimTime {
    /// Interpolated simulated time, ns.
    pub now_ns: f64,
}

/// Ticks one `FixedUpdate` should advance at `speed` for about two fixed steps per 60 Hz frame.
pub fn ticks_per_update(speed: f64, tick_ns: u64) -> u32 {
    let sim_ns_per_frame = speed * 1e9 / 60.0;
    ((sim_ns_per_frame / 2.0 / tick_ns.max(1) as f64).round() as u64).clamp(1, 1_000_000) as u32
}

/// The fixed loop's measured cost and the speed reached; see the module docs.
#[derive(Resource, Debug, Clone, Default)]
pub struct Pace {
    /// Wall seconds the fixed loop spends per simulated second, smoothed over recent frames;
    /// `None` until a frame has advanced simulated time.
    pub wall_per_sim_s: Option<f64>,
    /// Simulated seconds per real second over the last half second or more of play; `None`
    /// while paused and for half a second after a pause, reset or change of speed.
    pub achieved_speed: Option<f64>,
    /// Wall seconds per frame, smoothed (`None` before the first frame).
    pub frame_s: Option<f64>,
    /// Ticks per batch at max speed, carried from frame to frame (0: not yet chosen).
    pub max_speed_ticks: u32,
    /// Wall time and simulated time when this frame's fixed loop began.
    loop_start: Option<(Instant, u64)>,
    /// Start of the window the achieved speed is measured over (real time elapsed, simulated
    /// time), and the speed it is for.
    window: Option<(Duration, u64, Speed)>,
}

/// Cost assumed before anything is measured: simulation as slow as real time, so a heavy model
/// does not freeze the first frame.
const UNMEASURED_WALL_PER_SIM_S: f64 = 1.0;
/// Weight of the newest frame in the smoothed cost.
const PACE_SMOOTHING: f64 = 0.3;
/// Longest real time one frame may bring to virtual time (Bevy's own default cap).
const MAX_FRAME_DELTA: Duration = Duration::from_millis(250);
/// Real time the achieved speed is measured over.
const SPEED_WINDOW: Duration = Duration::from_millis(500);

impl Pace {
    /// Records that `wall` of wall time advanced simulated time by `sim_ns`.
    pub fn record(&mut self, wall: Duration, sim_ns: u64) {
        if sim_ns == 0 {
            return;
        }
        let sample = wall.as_secs_f64() / (sim_ns as f64 * 1e-9);
        self.wall_per_sim_s = Some(smooth(self.wall_per_sim_s, sample));
    }

    /// Records a frame of `real` wall time (a hitch, such as the first frames compiling
    /// shaders, counts as one second at most).
    pub fn record_frame(&mut self, real: Duration) {
        if !real.is_zero() {
            self.frame_s = Some(smooth(self.frame_s, real.as_secs_f64().min(1.0)));
        }
    }
}

fn smooth(old: Option<f64>, sample: f64) -> f64 {
    match old {
        Some(v) => v + PACE_SMOOTHING * (sample - v),
        None => sample,
    }
}

/// Longest wall time per frame the simulation's budget grows to (about 2 frames per second).
const MOST_SIM_BUDGET: Duration = Duration::from_millis(250);

/// Wall time the simulation may take this frame: `share` of a recent frame, at least `least`
/// and at most [`MOST_SIM_BUDGET`].
pub fn sim_budget(least: Duration, share: f64, frame_s: Option<f64>) -> Duration {
    let of_frame = frame_s.map_or(0.0, |f| f * share);
    if of_frame.is_finite() && of_frame > least.as_secs_f64() {
        Duration::from_secs_f64(of_frame.min(MOST_SIM_BUDGET.max(least).as_secs_f64()))
    } else {
        least
    }
}

impl Playback {
    /// Wall time the simulation may take this frame, by the measured frames ([`sim_budget`]).
    pub fn frame_budget(&self, pace: &Pace) -> Duration {
        sim_budget(self.least_sim_budget, self.sim_share_of_frame, pace.frame_s)
    }
}

/// Simulated seconds a frame may ask for: what `budget` of wall time buys at the measured
/// cost per simulated second.
pub fn sim_s_per_frame_allowed(budget: Duration, wall_per_sim_s: Option<f64>) -> f64 {
    let cost = wall_per_sim_s
        .filter(|c| c.is_finite() && *c > 0.0)
        .unwrap_or(UNMEASURED_WALL_PER_SIM_S);
    budget.as_secs_f64() / cost
}

/// Ticks per fixed step and the most real time one frame may bring to virtual time, at `speed`
/// when a frame may advance at most `allowed_sim_s`: steps of about half the allowance (so a
/// governed frame still runs about two), never more than [`ticks_per_update`] gives.
pub fn governed_steps(speed: f64, tick_ns: u64, allowed_sim_s: f64) -> (u32, Duration) {
    let free = ticks_per_update(speed, tick_ns);
    let affordable = allowed_sim_s * 1e9 / 2.0 / tick_ns.max(1) as f64;
    let k = if affordable >= f64::from(free) {
        free
    } else {
        // A power of two, so a cost that wavers does not change the step every frame.
        let k = affordable.max(1.0) as u32;
        1 << (31 - k.leading_zeros())
    };
    let max_delta_s = (allowed_sim_s / speed.max(1e-9)).clamp(1e-6, MAX_FRAME_DELTA.as_secs_f64());
    (k, Duration::from_secs_f64(max_delta_s))
}

fn configure_clocks(
    playback: Res<Playback>,
    real: Res<Time<Real>>,
    mut pace: ResMut<Pace>,
    mut virtual_time: ResMut<Time<Virtual>>,
    mut fixed: ResMut<Time<Fixed>>,
    mut clock: ResMut<SimClock>,
) {
    measure_speed(
        &mut pace,
        playback.playing,
        playback.speed,
        real.elapsed(),
        clock.now_ns(),
    );
    pace.record_frame(real.delta());
    match (playback.playing, playback.speed) {
        (true, Speed::Times(speed)) => {
            let allowed = if playback.fixed_pace {
                f64::INFINITY
            } else {
                sim_s_per_frame_allowed(playback.frame_budget(&pace), pace.wall_per_sim_s)
            };
            let (k, max_delta) = governed_steps(speed, clock.tick_ns, allowed);
            if clock.ticks_per_update != k {
                clock.ticks_per_update = k;
            }
            // One fixed step of virtual time = k ticks of simulated time ÷ speed … expressed
            // in virtual time, which runs `speed` times faster than real time.
            let step = Duration::from_nanos(clock.tick_ns * u64::from(k));
            if fixed.timestep() != step {
                fixed.set_timestep(step);
            }
            virtual_time.set_relative_speed_f64(speed);
            if virtual_time.max_delta() != max_delta {
                virtual_time.set_max_delta(max_delta);
            }
            if virtual_time.is_paused() {
                virtual_time.unpause();
            }
        }
        _ => {
            if !virtual_time.is_paused() {
                virtual_time.pause();
            }
        }
    }
}

/// Updates the achieved speed: simulated over real time since the window began. Real time is
/// Bevy's (`Time<Real>`, read at the frame's start): the wall clock in the app, a fixed step
/// per frame in the screenshot mode, so what depends on the speed reached (the sampling of
/// journeys) is the same on every machine there.
fn measure_speed(pace: &mut Pace, playing: bool, speed: Speed, now: Duration, now_ns: u64) {
    match pace.window {
        Some((start, start_ns, at)) if playing && at == speed && now_ns >= start_ns => {
            let real = now.saturating_sub(start);
            if real >= SPEED_WINDOW {
                pace.achieved_speed = Some((now_ns - start_ns) as f64 * 1e-9 / real.as_secs_f64());
                pace.window = Some((now, now_ns, speed));
            }
        }
        _ => {
            pace.achieved_speed = None;
            pace.window = playing.then_some((now, now_ns, speed));
        }
    }
}

fn begin_fixed_loop(mut pace: ResMut<Pace>, clock: Res<SimClock>) {
    pace.loop_start = Some((Instant::now(), clock.now_ns()));
}

fn end_fixed_loop(mut pace: ResMut<Pace>, clock: Res<SimClock>) {
    if let Some((started, from_ns)) = pace.loop_start.take() {
        pace.record(started.elapsed(), clock.now_ns().saturating_sub(from_ns));
    }
}

/// Max speed and single steps: run the fixed schedule directly.
fn run_unthrottled(world: &mut World) {
    let (playing, speed, step, budget) = {
        let p = world.resource::<Playback>();
        let budget = p.frame_budget(world.resource::<Pace>());
        (p.playing, p.speed, p.step_requested, budget)
    };
    if step {
        world.resource_mut::<Playback>().step_requested = false;
        world.resource_mut::<SimClock>().ticks_per_update = 1;
        world.run_schedule(FixedMain);
        return;
    }
    let engine = world.resource::<Engine>();
    if !(playing && speed == Speed::Max && engine.loaded && engine.halted.is_none()) {
        return;
    }
    run_for(world, budget);
}

/// Runs the fixed schedule repeatedly for about `budget` of wall time, in batches that grow
/// while they stay short (under an eighth of the budget) and shrink when one takes over half;
/// the batch size carries over to the next frame, and the cost is recorded in [`Pace`].
pub fn run_for(world: &mut World, budget: Duration) {
    let started = Instant::now();
    let from_ns = world.resource::<SimClock>().now_ns();
    let mut k = match world.resource::<Pace>().max_speed_ticks {
        0 => 100,
        k => k,
    };
    while started.elapsed() < budget {
        world.resource_mut::<SimClock>().ticks_per_update = k;
        let t = Instant::now();
        world.run_schedule(FixedMain);
        if world.resource::<Engine>().halted.is_some() {
            // The run stopped for good (see `cascade_sim`'s limits): nothing more to run.
            break;
        }
        let took = t.elapsed();
        if took < budget / 8 {
            k = k.saturating_mul(2).min(1_000_000);
        } else if took > budget / 2 {
            k = (k / 2).max(1);
        }
    }
    let advanced_ns = world
        .resource::<SimClock>()
        .now_ns()
        .saturating_sub(from_ns);
    let mut pace = world.resource_mut::<Pace>();
    pace.max_speed_ticks = k;
    pace.record(started.elapsed(), advanced_ns);
}

fn update_sim_time(
    playback: Res<Playback>,
    clock: Res<SimClock>,
    fixed: Res<Time<Fixed>>,
    mut sim_time: ResMut<SimTime>,
) {
    let base = clock.now_ns() as f64;
    sim_time.now_ns = match (playback.playing, playback.speed) {
        (true, Speed::Times(_)) => {
            let step_ns = (clock.tick_ns * u64::from(clock.ticks_per_update)) as f64;
            base + fixed.overstep_fraction_f64().clamp(0.0, 1.0) * step_ns
        }
        _ => base,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_notches_step_up_and_down() {
        assert_eq!(Speed::Times(1.0).faster(), Speed::Times(2.0));
        assert_eq!(Speed::Times(1000.0).faster(), Speed::Max);
        assert_eq!(Speed::Max.slower(), Speed::Times(1000.0));
        assert_eq!(Speed::Times(0.1).slower(), Speed::Times(0.1));
        assert_eq!(
            Speed::Times(3.0).slower(),
            Speed::Times(2.0),
            "off-notch speeds snap to the next notch"
        );
    }

    #[test]
    fn fixed_steps_cover_a_frame_in_about_two_updates() {
        // 1 ms ticks: ×1 → 8 ticks (8.3 ms of sim per update, 16.7 ms per frame).
        assert_eq!(ticks_per_update(1.0, 1_000_000), 8);
        assert_eq!(ticks_per_update(0.1, 1_000_000), 1);
        assert_eq!(ticks_per_update(1000.0, 1_000_000), 8333);
    }

    #[test]
    fn a_speed_the_machine_keeps_up_with_is_not_governed() {
        // Simulation 1,000× faster than real time, 24 ms budget: 24 simulated s per frame.
        let allowed = sim_s_per_frame_allowed(Duration::from_millis(24), Some(0.001));
        assert!((allowed - 24.0).abs() < 1e-9);
        let (k, max_delta) = governed_steps(100.0, 1_000_000, allowed);
        assert_eq!(k, ticks_per_update(100.0, 1_000_000));
        // 24 s ÷ ×100: a frame may last 240 ms before the clock falls behind, far beyond 16.7 ms.
        assert!(
            (max_delta.as_secs_f64() - 0.240).abs() < 1e-9,
            "{max_delta:?}"
        );
        let (_, max_delta) = governed_steps(10.0, 1_000_000, allowed);
        assert_eq!(max_delta, MAX_FRAME_DELTA, "at ×10, Bevy's own cap");
    }

    #[test]
    fn a_speed_the_machine_cannot_reach_asks_only_for_what_the_budget_buys() {
        // Simulation at 50× real time asked for ×1,000: a 24 ms budget buys 1.2 simulated s
        // per frame, so a frame may bring at most 1.2 ms of real time (1.2 s of virtual) and
        // steps are the power of two of ticks at or below half of that (512 of 1 ms).
        let allowed = sim_s_per_frame_allowed(Duration::from_millis(24), Some(0.02));
        assert!((allowed - 1.2).abs() < 1e-9);
        let (k, max_delta) = governed_steps(1000.0, 1_000_000, allowed);
        assert_eq!(k, 512);
        assert!((max_delta.as_secs_f64() - 0.0012).abs() < 1e-12);
        // Even a model slower than one tick per budget advances a tick per step.
        let (k, max_delta) = governed_steps(1000.0, 1_000_000, 1e-6);
        assert_eq!(k, 1);
        assert_eq!(max_delta, Duration::from_micros(1));
    }

    #[test]
    fn before_any_measurement_the_simulation_is_assumed_as_slow_as_real_time() {
        assert!((sim_s_per_frame_allowed(Duration::from_millis(24), None) - 0.024).abs() < 1e-12);
    }

    #[test]
    fn the_budget_is_half_a_long_frame_and_never_below_its_floor() {
        let least = Duration::from_millis(24);
        assert_eq!(sim_budget(least, 0.5, None), least);
        assert_eq!(
            sim_budget(least, 0.5, Some(1.0 / 60.0)),
            least,
            "a fast GPU"
        );
        assert_eq!(
            sim_budget(least, 0.5, Some(0.2)),
            Duration::from_millis(100),
            "a software renderer's 200 ms frames"
        );
        assert_eq!(sim_budget(least, 0.5, Some(10.0)), MOST_SIM_BUDGET);
        assert_eq!(sim_budget(least, 0.0, Some(10.0)), least);
    }

    #[test]
    fn the_cost_is_smoothed_over_frames() {
        let mut pace = Pace::default();
        pace.record(Duration::from_millis(10), 1_000_000_000);
        assert_eq!(
            pace.wall_per_sim_s,
            Some(0.01),
            "the first sample is taken as it is"
        );
        pace.record(Duration::from_millis(20), 0);
        assert_eq!(
            pace.wall_per_sim_s,
            Some(0.01),
            "a frame that advanced nothing says nothing"
        );
        pace.record(Duration::from_millis(20), 1_000_000_000);
        let c = pace.wall_per_sim_s.unwrap();
        assert!((c - (0.01 + PACE_SMOOTHING * 0.01)).abs() < 1e-12);
    }
}
