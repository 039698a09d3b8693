//! A run that needs more memory than a run may hold stops, says why, and stays stopped
//! (`engine/limits.rs`). The limits are lowered here so the tests are small; when each run
//! stops is predicted from the model's fluid growth (arrivals minus completions), with a
//! tolerance from the Poisson count of arrivals.

mod common;

use cascade_sim::{Engine, EventLog, SimEventKind, Simulation};
use common::{Z, parse};

/// One server that completes 100 requests per second, offered 2,000 per second, no timeout,
/// unbounded queue: requests in flight grow at 1,900 per second.
const OVERLOAD: &str = r#"(
    version: 1,
    name: "overload",
    seed: 3,
    duration_s: 60,
    sources: [(name: "users", target: "server", rate: Constant(2000))],
    services: [(name: "server", workers: 1, service_time: Deterministic(ms: 10.0))],
)"#;

#[test]
fn a_run_past_the_limit_of_jobs_in_flight_stops_where_the_fluid_model_says() {
    let mut sim = Simulation::new(&parse(OVERLOAD));
    let limit = 10_000;
    sim.world_mut()
        .resource_mut::<Engine>()
        .jobs
        .set_limit(limit);
    sim.run_for_s(10.0);

    let halt = sim.halted().expect("the run stops").clone();
    // Each request in flight is two jobs (the client's, and the attempt at `server`), so the
    // slab passes the limit when arrivals A(t) − completions 100·t reach limit / 2. A(t) is
    // Poisson(2000·t): the time has a standard error of √(2000·t) / 1,900.
    let t_fluid = limit as f64 / 2.0 / 1_900.0;
    let se = (2_000.0 * t_fluid).sqrt() / 1_900.0;
    let t = sim.world().resource::<Engine>().now as f64 / 1e9;
    assert!(
        (t - t_fluid).abs() < Z * se + 0.002,
        "stopped at {t:.3} s, fluid model {t_fluid:.3} ± {se:.3} s"
    );
    assert!(
        halt.reason
            .contains("more than 10,000 requests were in flight")
    );
    assert!(
        halt.reason.contains("at service `server`"),
        "{}",
        halt.reason
    );
    assert!(halt.hint.contains("bound the queues"));

    // The log ends with it, once.
    let log = sim.world().resource::<EventLog>();
    let halts: Vec<_> = log
        .events
        .iter()
        .filter(|e| matches!(e.kind, SimEventKind::Halted { .. }))
        .collect();
    assert_eq!(halts.len(), 1);

    // Nothing more happens: no time passes, no request moves.
    let (now, hops) = {
        let e = sim.world().resource::<Engine>();
        (e.now, e.hops_total)
    };
    let clock = sim.now_ns();
    sim.run_for_s(5.0);
    let e = sim.world().resource::<Engine>();
    assert_eq!((e.now, e.hops_total, sim.now_ns()), (now, hops, clock));
}

#[test]
fn a_stopped_run_stops_at_the_same_event_every_time() {
    let stop = || {
        let mut sim = Simulation::new(&parse(OVERLOAD));
        sim.world_mut()
            .resource_mut::<Engine>()
            .jobs
            .set_limit(5_000);
        sim.run_for_s(10.0);
        let e = sim.world().resource::<Engine>();
        (e.now, e.hops_total, sim.halted().cloned())
    };
    assert_eq!(stop(), stop());
}

#[test]
fn loading_the_scenario_again_starts_a_fresh_run() {
    let scenario = parse(OVERLOAD);
    let mut sim = Simulation::new(&scenario);
    sim.world_mut()
        .resource_mut::<Engine>()
        .jobs
        .set_limit(2_000);
    sim.run_for_s(5.0);
    assert!(sim.halted().is_some());
    cascade_sim::engine::load_scenario(sim.world_mut(), &scenario);
    assert!(sim.halted().is_none());
    sim.run_for_s(1.0);
    // The default limit is far above one second of this overload (about 3,800 jobs).
    assert!(sim.halted().is_none());
    assert!(sim.world().resource::<Engine>().hops_total > 1_500);
}

#[test]
fn a_work_queue_past_the_limit_of_items_stops_at_the_interval_it_went_over() {
    // 1,000 items a second in, 100 a second out: the backlog grows 900 a second and passes
    // 5,000 between 5 s (4,500 ± 70 expected) and 6 s (5,400 ± 80). Items are counted at each
    // step (one metrics interval here), so the run stops at the 6 s boundary.
    let text = r#"(
        version: 1,
        name: "backlog",
        seed: 5,
        duration_s: 60,
        sources: [(name: "producers", target: "jobs", rate: Constant(1000))],
        services: [
            (name: "jobs", kind: Queue, workers: 1000, service_time: Deterministic(ms: 1.0),
             work_queue: (consumer: "workers", concurrency: 1000, rate_per_s: 100.0)),
            (name: "workers", workers: 1000, service_time: Exponential(mean_ms: 5.0)),
        ],
    )"#;
    let mut sim = Simulation::new(&parse(text));
    sim.world_mut().resource_mut::<Engine>().max_queued_items = 5_000;
    sim.run_for_s(20.0);
    let halt = sim.halted().expect("the run stops").clone();
    assert!(
        halt.reason
            .starts_with("the run stopped at 6.000 s: more than 5,000 items"),
        "{}",
        halt.reason
    );
    assert_eq!(
        sim.now_ns(),
        5_000_000_000,
        "the clock stays at the last whole step"
    );
}
