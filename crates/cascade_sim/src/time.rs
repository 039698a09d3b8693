//! Simulated time: integer nanoseconds, and the [`SimClock`] resource.
//!
//! Time inside the engine is exact: a `u64` count of nanoseconds since the start of the run,
//! so event order never depends on floating-point rounding. A *tick* (default 1 ms) is the
//! unit in which the ECS advances the model and commands take effect; inside a tick events
//! happen at their exact times. This module owns the clock and unit conversions only.

use bevy_ecs::prelude::*;

/// Nanoseconds of simulated time.
pub type Nanos = u64;

/// Nanoseconds in a millisecond.
pub const NS_PER_MS: u64 = 1_000_000;
/// Nanoseconds in a second.
pub const NS_PER_S: u64 = 1_000_000_000;
/// "No time": used for absent deadlines and timeouts.
pub const NEVER: Nanos = u64::MAX;
/// The longest time Cascade represents, in seconds (10^8 s, about three years). Every time a
/// scenario states is at most this (the loader says so otherwise), and every sampled duration
/// is clamped to it, so that a sum of a few times never overflows the `u64` of nanoseconds
/// (1.8·10^19 ns, about 580 years).
pub const HORIZON_S: f64 = 1e8;
/// [`HORIZON_S`] in nanoseconds.
pub const HORIZON_NS: Nanos = 100_000_000 * NS_PER_S;

/// Milliseconds (as written in scenarios) to nanoseconds, rounded to the nearest nanosecond.
pub fn ms_to_ns(ms: f64) -> Nanos {
    (ms * NS_PER_MS as f64).round().max(0.0) as Nanos
}

/// Seconds to nanoseconds, rounded to the nearest nanosecond.
pub fn s_to_ns(s: f64) -> Nanos {
    (s * NS_PER_S as f64).round().max(0.0) as Nanos
}

/// Nanoseconds to milliseconds.
pub fn ns_to_ms(ns: Nanos) -> f64 {
    ns as f64 / NS_PER_MS as f64
}

/// Nanoseconds to seconds.
pub fn ns_to_s(ns: Nanos) -> f64 {
    ns as f64 / NS_PER_S as f64
}

/// The simulation clock: how long a tick is, how many have run, and how many one run of
/// `FixedUpdate` advances.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimClock {
    /// Length of one tick.
    pub tick_ns: Nanos,
    /// Ticks completed since the start of the run.
    pub ticks_done: u64,
    /// Ticks one run of the `FixedUpdate` schedule advances (1 in tests and at low app
    /// speeds; large in the headless runner, where results are identical but faster).
    pub ticks_per_update: u32,
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock {
            tick_ns: NS_PER_MS,
            ticks_done: 0,
            ticks_per_update: 1,
        }
    }
}

impl SimClock {
    /// Simulated time at the end of the last completed tick.
    pub fn now_ns(&self) -> Nanos {
        self.ticks_done * self.tick_ns
    }

    /// Simulated seconds elapsed.
    pub fn now_s(&self) -> f64 {
        ns_to_s(self.now_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_to_the_nearest_nanosecond() {
        assert_eq!(ms_to_ns(1.0), 1_000_000);
        assert_eq!(ms_to_ns(0.0000004), 0);
        assert_eq!(ms_to_ns(0.0000006), 1);
        assert_eq!(s_to_ns(3600.0), 3_600_000_000_000);
        assert_eq!(ns_to_ms(2_500_000), 2.5);
    }
}
