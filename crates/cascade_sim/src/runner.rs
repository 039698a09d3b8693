//! A headless run: the same `SimPlugin` schedule the app steps, driven as fast as possible.
//!
//! [`Simulation`] owns a Bevy [`App`] with [`SimPlugin`](crate::SimPlugin), loads a scenario
//! and runs `FixedUpdate` directly, one metrics interval of ticks per run (results do not
//! depend on that batch size: events carry exact times). Used by `cascade-cli`, by tests and
//! by benchmarks. Does not own any model logic.

use bevy_app::{App, FixedUpdate};
use bevy_ecs::message::Messages;
use bevy_ecs::prelude::*;

use crate::SimPlugin;
use crate::commands::{SimCommand, apply_command};
use crate::engine::{Engine, Halt, load_scenario};
use crate::events::SimEvent;
use crate::metrics::MetricsHistory;
use crate::sampling::SampledLeg;
use crate::scenario::Scenario;
use crate::summary::{RunSummary, summarize};
use crate::time::{SimClock, s_to_ns};

/// A headless simulation. See the module docs.
pub struct Simulation {
    app: App,
}

impl Simulation {
    /// A world with `scenario` loaded at time 0 (the scenario must be valid).
    pub fn new(scenario: &Scenario) -> Simulation {
        let mut app = App::new();
        app.add_plugins(SimPlugin);
        load_scenario(app.world_mut(), scenario);
        Simulation { app }
    }

    /// The ECS world (read).
    pub fn world(&self) -> &World {
        self.app.world()
    }

    /// The ECS world (write).
    pub fn world_mut(&mut self) -> &mut World {
        self.app.world_mut()
    }

    /// Simulated time, ns.
    pub fn now_ns(&self) -> u64 {
        self.world().resource::<SimClock>().now_ns()
    }

    /// Applies a command now (as if sent by the app before the next tick).
    pub fn command(&mut self, command: SimCommand) -> Result<(), String> {
        apply_command(self.world_mut(), command)
    }

    /// Runs `ticks` ticks.
    pub fn run_ticks(&mut self, ticks: u64) {
        let batch_max = self
            .world()
            .resource::<Engine>()
            .model
            .interval_ticks
            .clamp(1, u64::from(u32::MAX));
        let mut left = ticks;
        while left > 0 {
            let batch = left.min(batch_max);
            self.world_mut().resource_mut::<SimClock>().ticks_per_update = batch as u32;
            self.world_mut().run_schedule(FixedUpdate);
            let world = self.world_mut();
            world.resource_mut::<Messages<SampledLeg>>().update();
            world.resource_mut::<Messages<SimEvent>>().update();
            world.resource_mut::<Messages<SimCommand>>().update();
            left -= batch;
        }
    }

    /// Runs until simulated time `t_s` (rounded down to a tick).
    pub fn run_until_s(&mut self, t_s: f64) {
        let clock = *self.world().resource::<SimClock>();
        let target = s_to_ns(t_s) / clock.tick_ns;
        self.run_ticks(target.saturating_sub(clock.ticks_done));
    }

    /// Runs for `s` more simulated seconds.
    pub fn run_for_s(&mut self, s: f64) {
        let now = self.now_ns() as f64 / 1e9;
        self.run_until_s(now + s);
    }

    /// Runs `duration_s` from the start, rounded up to a whole number of metrics intervals,
    /// calling `progress(fraction)` after each interval.
    pub fn run_to(&mut self, duration_s: f64, mut progress: impl FnMut(f64)) {
        self.run_to_with(duration_s, |_, fraction| progress(fraction));
    }

    /// Like [`Simulation::run_to`], with the world lent to `after_interval(world, fraction)`
    /// after each interval (e.g. to stream rows out before the history drops them).
    pub fn run_to_with(&mut self, duration_s: f64, mut after_interval: impl FnMut(&World, f64)) {
        let interval_ns = self.world().resource::<MetricsHistory>().interval_ns;
        let intervals = s_to_ns(duration_s).div_ceil(interval_ns);
        let clock = *self.world().resource::<SimClock>();
        let per_interval = interval_ns / clock.tick_ns;
        let done = clock.ticks_done / per_interval.max(1);
        for k in done..intervals {
            self.run_ticks(per_interval);
            if self.halted().is_some() {
                break;
            }
            after_interval(self.world(), (k + 1) as f64 / intervals as f64);
        }
    }

    /// Why the run stopped for good, if it did (it needed more memory than a run may hold;
    /// see [`Engine::halted`]). Running further does nothing then.
    pub fn halted(&self) -> Option<&Halt> {
        self.world().resource::<Engine>().halted.as_ref()
    }

    /// Summary of the run so far.
    pub fn summary(&mut self) -> RunSummary {
        summarize(self.world_mut())
            .unwrap_or_else(|| unreachable!("a Simulation always has a scenario loaded"))
    }

    /// The metrics history.
    pub fn history(&self) -> &MetricsHistory {
        self.world().resource::<MetricsHistory>()
    }
}
