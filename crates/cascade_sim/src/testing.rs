//! Test helpers for ECS-level tests of the model (public so the app's tests can use them).

use bevy_app::App;

use crate::SimPlugin;

/// A headless app with the simulation and a clock where each `update()` runs exactly one
/// `FixedUpdate` (one tick with the default `ticks_per_update` of 1).
pub fn test_app() -> App {
    let mut app = App::new();
    app.add_plugins((
        bevy_app::TaskPoolPlugin::default(),
        bevy_time::TimePlugin,
        SimPlugin,
    ));
    app.insert_resource(bevy_time::TimeUpdateStrategy::FixedTimesteps(1));
    // Bevy's first update only starts the clocks (zero delta); run it here so that every
    // `update()` a test makes runs exactly one `FixedUpdate`.
    app.update();
    app
}

/// Test-only conveniences, in the style of bevy_replicon's `ServerTestAppExt`.
pub trait TestAppExt {
    /// Runs `n` app updates (each runs one `FixedUpdate`).
    fn step_ticks(&mut self, n: u32);
}

impl TestAppExt for App {
    fn step_ticks(&mut self, n: u32) {
        for _ in 0..n {
            self.update();
        }
    }
}
