//! Story mode: a scenario's `story` steps (narrative the app shows as the run reaches each
//! one) and the pauses some of them ask for.
//!
//! A pausing step stops the run exactly at its tick, however many ticks a frame covers: before
//! the engine steps, [`hold_at_pause`] shortens the update to end on that tick and freezes the
//! rest of the frame's updates; [`pause_for_step`] then pauses playback, and Play goes on
//! from there (the step is behind the clock, so it does not hold again). Going back in time
//! (a reset) brings its pauses back. The unattended modes turn pauses off.
//!
//! Owns when the run pauses for a step and which step is current; not the banner that shows
//! it (`ui::story`) nor the story's format (`cascade_sim::scenario::StoryStep`).

use bevy::prelude::*;
use cascade_sim::scenario::StoryStep;
use cascade_sim::{ActiveScenario, SimClock, SimSystems};

use crate::playback::Playback;

/// Story plugin.
pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<StoryHold>()
        .add_systems(First, thaw)
        .add_systems(
            FixedUpdate,
            (
                hold_at_pause
                    .after(SimSystems::ApplyCommands)
                    .before(SimSystems::Step),
                restore_ticks.after(SimSystems::Step),
            ),
        )
        .add_systems(Update, pause_for_step.in_set(crate::AppSystems::Apply));
}

/// Whether story steps may pause the run, and the hold in progress.
#[derive(Resource, Debug, Clone)]
pub struct StoryHold {
    /// Pausing steps pause the run (off in the screenshot and measurement modes).
    pub enabled: bool,
    /// The run reached a pausing step this frame: no more ticks until the next frame.
    frozen: bool,
    /// A pausing step was reached and playback is not paused for it yet.
    reached: bool,
    /// The update's tick count, put back after the engine stepped.
    saved_ticks: Option<u32>,
}

impl Default for StoryHold {
    fn default() -> Self {
        StoryHold {
            enabled: true,
            frozen: false,
            reached: false,
            saved_ticks: None,
        }
    }
}

/// The tick a step falls on.
pub fn step_tick(at_s: f64, tick_ns: u64) -> u64 {
    (at_s * 1e9 / tick_ns.max(1) as f64).round() as u64
}

/// Ticks this update may run so that it ends on the first pausing step after `ticks_done`
/// and no later than `ticks_done + per_update`; `None` when no pausing step falls in between.
pub fn ticks_to_pause(
    story: &[StoryStep],
    tick_ns: u64,
    ticks_done: u64,
    per_update: u32,
) -> Option<u32> {
    let end = ticks_done + u64::from(per_update);
    story
        .iter()
        .filter(|s| s.pause)
        .map(|s| step_tick(s.at_s, tick_ns))
        .filter(|&t| t > ticks_done && t <= end)
        .min()
        .map(|t| (t - ticks_done) as u32)
}

/// The step shown at `now_s`: the latest one that has begun (the later in the file on a tie).
pub fn current_step(story: &[StoryStep], now_s: f64) -> Option<usize> {
    // A tenth of a microsecond of slack: a step at 30 s shows at the tick of 30 s.
    let now = now_s + 1e-7;
    story
        .iter()
        .enumerate()
        .filter(|(_, s)| s.at_s <= now)
        .max_by(|(i, a), (j, b)| a.at_s.total_cmp(&b.at_s).then(i.cmp(j)))
        .map(|(i, _)| i)
}

fn thaw(mut hold: ResMut<StoryHold>) {
    hold.frozen = false;
}

fn hold_at_pause(
    mut clock: ResMut<SimClock>,
    mut hold: ResMut<StoryHold>,
    scenario: Option<Res<ActiveScenario>>,
) {
    if !hold.enabled {
        return;
    }
    let per_update = clock.ticks_per_update;
    if hold.frozen {
        hold.saved_ticks = Some(per_update);
        clock.ticks_per_update = 0;
        return;
    }
    let Some(scenario) = scenario else { return };
    if let Some(k) = ticks_to_pause(
        &scenario.0.story,
        clock.tick_ns,
        clock.ticks_done,
        per_update,
    ) {
        hold.saved_ticks = Some(per_update);
        clock.ticks_per_update = k;
        hold.frozen = true;
        hold.reached = true;
    }
}

fn restore_ticks(mut clock: ResMut<SimClock>, mut hold: ResMut<StoryHold>) {
    if let Some(per_update) = hold.saved_ticks.take() {
        clock.ticks_per_update = per_update;
    }
}

fn pause_for_step(mut hold: ResMut<StoryHold>, mut playback: ResMut<Playback>) {
    if hold.reached {
        hold.reached = false;
        playback.playing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_s: f64, pause: bool) -> StoryStep {
        StoryStep {
            at_s,
            text: format!("at {at_s}"),
            pause,
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn an_update_is_cut_to_end_on_the_first_pausing_step_inside_it() {
        let story = [step(5.0, true), step(2.0, false), step(3.0, true)];
        // 1-ms ticks: the step at 3 s is tick 3,000.
        assert_eq!(ticks_to_pause(&story, MS, 0, 10_000), Some(3_000));
        assert_eq!(ticks_to_pause(&story, MS, 2_990, 1_000), Some(10));
        assert_eq!(ticks_to_pause(&story, MS, 0, 2_999), None, "before it");
        // Reached (the clock is on its tick): Play goes on to the next one.
        assert_eq!(ticks_to_pause(&story, MS, 3_000, 10_000), Some(2_000));
        assert_eq!(ticks_to_pause(&story, MS, 5_000, 10_000), None);
        assert_eq!(
            ticks_to_pause(&[step(0.0, true)], MS, 0, 10),
            None,
            "at the start"
        );
    }

    #[test]
    fn the_current_step_is_the_latest_begun() {
        let story = [step(10.0, false), step(2.0, false), step(10.0, true)];
        assert_eq!(current_step(&story, 1.0), None);
        assert_eq!(current_step(&story, 2.0), Some(1));
        assert_eq!(current_step(&story, 9.999), Some(1));
        assert_eq!(
            current_step(&story, 10.0),
            Some(2),
            "the later in the file on a tie"
        );
    }

    #[test]
    fn a_step_falls_on_the_nearest_tick() {
        assert_eq!(step_tick(30.0, MS), 30_000);
        assert_eq!(step_tick(0.0004, MS), 0);
        assert_eq!(step_tick(0.0006, MS), 1);
        assert_eq!(step_tick(2.5, 100 * MS), 25);
    }
}
