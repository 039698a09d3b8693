//! No heap allocation per request. Once warmed up, the engine allocates only per interval
//! (a metrics row per node, a histogram growing to a latency it has not seen before), never
//! per request: jobs live in a reused slab, events in pre-grown queues. So over the same
//! stretch of simulated time the same model must allocate about as often at half the load,
//! and far less often than it serves requests. (The allocation counter replaces the global
//! allocator of this test binary only.)

mod common;

use cascade_sim::Simulation;
use cascade_sim::engine::Engine;
use cascade_sim::scenario::{RateProfile, Scenario};

/// Allocations and hops between `from_s` and `to_s` of simulated time.
fn allocations(scenario: &Scenario, from_s: f64, to_s: f64) -> (u64, u64) {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(from_s);
    let hops = |sim: &Simulation| sim.world().resource::<Engine>().hops_total;
    let h0 = hops(&sim);
    let info = allocation_counter::measure(|| sim.run_until_s(to_s));
    (info.count_total, hops(&sim) - h0)
}

/// `scenario` with every constant source rate multiplied by `factor`.
fn scaled(scenario: &Scenario, factor: f64) -> Scenario {
    let mut s = scenario.clone();
    for src in &mut s.sources {
        if let RateProfile::Constant(r) = &mut src.rate {
            *r *= factor;
        }
    }
    s
}

/// Runs `scenario` at full and half load from `from_s` to `to_s` and checks that the
/// allocations do not follow the load: within a quarter of each other while the hops halve
/// (what is left is per interval and per node: metrics rows, the live verdict), and far
/// fewer than the hops (one per 20 at most).
fn assert_allocates_per_interval(name: &str, scenario: &Scenario, from_s: f64, to_s: f64) {
    let (full, full_hops) = allocations(&scaled(scenario, 1.0), from_s, to_s);
    let (half, half_hops) = allocations(&scaled(scenario, 0.5), from_s, to_s);
    eprintln!("{name}: {full} allocations in {full_hops} hops; half load {half} in {half_hops}");
    assert!(
        full_hops > 2 * half_hops - half_hops / 10,
        "{name}: the load did not halve"
    );
    assert!(
        full * 20 <= full_hops,
        "{name}: {full} allocations for {full_hops} hops"
    );
    let ratio = full as f64 / half as f64;
    assert!(
        (0.8..=1.25).contains(&ratio),
        "{name}: allocations follow the load ({full} at full load, {half} at half)"
    );
}

#[test]
fn the_three_tier_model_allocates_per_interval_not_per_request() {
    let base = common::shipped("bench/three-tier.ron");
    assert_allocates_per_interval("three-tier", &base, 60.0, 180.0);
}

#[test]
fn a_layered_model_of_100_services_allocates_per_interval_not_per_request() {
    let base = cascade_sim::generate::layered(&cascade_sim::generate::LayeredParams {
        services: 100,
        ..Default::default()
    });
    assert_allocates_per_interval("layered-100", &base, 30.0, 60.0);
}
