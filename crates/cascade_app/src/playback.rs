//! Play, pause, step and speed: how fast simulated time runs against the wall clock.
//!
//! The simulation advances only in `FixedUpdate` (the `SimPlugin` schedule). At a speed of
//! ×s, `Time<Virtual>` runs s times faster than real time and the fixed timestep is sized so
//! that each `FixedUpdate` advances `ticks_per_update` ticks and runs about twice per frame —
//! cheap at 1,000× and still smooth at 0.1× (visuals interpolate inside the step with
//! `overstep_fraction`). "Max" pauses virtual time and instead runs the fixed schedule
//! directly for a wall-clock budget per frame, as fast as the machine allows. Results do not
//! depend on any of this: events carry exact times (see docs/model.md).

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
        .add_systems(
            PreUpdate,
            run_unthrottled.in_set(crate::AppSystems::Playback),
        )
        .add_systems(Startup, configure_clocks)
        .add_systems(Last, configure_clocks);
    app.add_systems(
        RunFixedMainLoop,
        update_sim_time.in_set(RunFixedMainLoopSystems::AfterFixedMainLoop),
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
    /// Wall-clock budget per frame at max speed.
    pub max_budget: Duration,
}

impl Default for Playback {
    fn default() -> Self {
        Playback {
            playing: true,
            speed: Speed::Times(1.0),
            step_requested: false,
            max_budget: Duration::from_millis(24),
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

fn configure_clocks(
    playback: Res<Playback>,
    mut virtual_time: ResMut<Time<Virtual>>,
    mut fixed: ResMut<Time<Fixed>>,
    mut clock: ResMut<SimClock>,
) {
    match (playback.playing, playback.speed) {
        (true, Speed::Times(speed)) => {
            let k = ticks_per_update(speed, clock.tick_ns);
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
            virtual_time.set_max_delta(Duration::from_millis(250));
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

/// Max speed and single steps: run the fixed schedule directly.
fn run_unthrottled(world: &mut World) {
    let (playing, speed, step, budget) = {
        let p = world.resource::<Playback>();
        (p.playing, p.speed, p.step_requested, p.max_budget)
    };
    if step {
        world.resource_mut::<Playback>().step_requested = false;
        world.resource_mut::<SimClock>().ticks_per_update = 1;
        world.run_schedule(FixedMain);
        return;
    }
    if !(playing && speed == Speed::Max && world.resource::<Engine>().loaded) {
        return;
    }
    run_for(world, budget);
}

/// Runs the fixed schedule repeatedly for about `budget` of wall time, growing the batch while
/// batches stay short. Also used by the screenshot and measurement modes.
pub fn run_for(world: &mut World, budget: Duration) {
    let started = Instant::now();
    let mut k: u32 = 100;
    while started.elapsed() < budget {
        world.resource_mut::<SimClock>().ticks_per_update = k;
        let t = Instant::now();
        world.run_schedule(FixedMain);
        if t.elapsed() < budget / 8 {
            k = k.saturating_mul(2).min(1_000_000);
        }
    }
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
}
