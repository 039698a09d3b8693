//! Causality (DESIGN §3.4) against answers stated in advance: where each failure started
//! follows from the faults a scenario injects, and from nothing else.
//!
//! Each scenario has one or two faults; the test states which node (or link) every user's
//! failure must have started at, or, for two independent error sources in sequence, the
//! binomial share each must have (within [`common::Z`] standard errors).

mod common;

use cascade_sim::Simulation;
use cascade_sim::causality::{CauseSite, Origin};
use cascade_sim::scenario::Scenario;

/// Runs `scenario` to `until_s`.
fn run(scenario: &Scenario, until_s: f64) -> Simulation {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(until_s);
    sim
}

/// Users' failures over the run by origin (all sources).
fn user_origins(sim: &Simulation) -> Vec<(Origin, u64)> {
    let mut v: Vec<(Origin, u64)> = Vec::new();
    for (&(site, origin), &n) in &sim.history().causes.totals {
        if let CauseSite::Source(_) = site {
            match v.iter_mut().find(|(o, _)| *o == origin) {
                Some((_, m)) => *m += n,
                None => v.push((origin, n)),
            }
        }
    }
    v
}

/// Users' failures of intervals `[from, to)` by origin (all sources).
fn user_origins_in(sim: &Simulation, from: u32, to: u32) -> Vec<(Origin, u64)> {
    let mut v: Vec<(Origin, u64)> = Vec::new();
    for r in &sim.history().causes.rows {
        if matches!(r.site, CauseSite::Source(_)) && (from..to).contains(&r.interval) {
            match v.iter_mut().find(|(o, _)| *o == r.origin) {
                Some((_, m)) => *m += r.failures,
                None => v.push((r.origin, r.failures)),
            }
        }
    }
    v.sort();
    v
}

/// Users' failed requests of intervals `[from, to)`, from the metrics rows.
fn user_failures_in(sim: &Simulation, from: u32, to: u32) -> u64 {
    sim.history()
        .sources
        .iter()
        .map(|rows| common::window(rows, from, to).failed_total())
        .sum()
}

/// Users' failed requests (all sources, whole run), from the metrics rows.
fn user_failures(sim: &Simulation) -> u64 {
    sim.history()
        .sources
        .iter()
        .flat_map(|rows| rows.iter())
        .map(|r| r.counters.failed_total())
        .sum()
}

#[test]
fn two_error_sources_in_sequence_share_the_failures_as_the_binomial_says() {
    // api calls db1, then db2 (one attempt each). db1 fails a share p1 of its requests, db2
    // p2, independently: a user's request fails at db1 with probability p1 and at db2 with
    // (1 − p1)·p2, so db1's share of the failures is p1 / (p1 + (1 − p1)·p2) = 0.6818, and no
    // failure starts anywhere else.
    let (p1, p2) = (0.3, 0.2);
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "two error sources", duration_s: 1, seed: 5,
            sources: [(name: "users", target: "api", rate: Constant(500), timeout_ms: 1000.0)],
            services: [
                (name: "api", workers: 100, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "db1", timeout_ms: 200.0), (to: "db2", timeout_ms: 200.0)]),
                (name: "db1", workers: 100, service_time: Exponential(mean_ms: 1.0)),
                (name: "db2", workers: 100, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [
                (at_s: 0.0, duration_s: 100.0, fault: Errors(service: "db1", probability: {p1})),
                (at_s: 0.0, duration_s: 100.0, fault: Errors(service: "db2", probability: {p2})),
            ],
        )"#
    ));
    let mut sim = run(&s, 40.0);
    let origins = user_origins(&sim);
    let total: u64 = origins.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total,
        user_failures(&sim),
        "every failure has its origin counted"
    );
    let at = |o| origins.iter().find(|(x, _)| *x == o).map_or(0, |(_, n)| *n);
    let (db1, db2) = (at(Origin::Service(1)), at(Origin::Service(2)));
    assert_eq!(
        db1 + db2,
        total,
        "failures start only at the two faulty services"
    );
    let expected = p1 / (p1 + (1.0 - p1) * p2);
    let n = total as f64;
    let share = db1 as f64 / n;
    let se = (expected * (1.0 - expected) / n).sqrt();
    assert!(
        (share - expected).abs() <= common::Z * se,
        "db1's share {share:.4} vs {expected:.4} ({total} failures)"
    );
    // The report: db1 is the root, reached from the users through api.
    let report = sim.summary().causality.expect("failures were seen");
    assert_eq!(report.root, "db1");
    assert_eq!(report.failure_path, ["users", "api", "db1"]);
    let reached: Vec<&str> = report
        .blast_radius
        .iter()
        .map(|r| r.node.as_str())
        .collect();
    assert!(reached.contains(&"api") && reached.contains(&"users") && !reached.contains(&"db2"));
    let summary = sim.summary();
    let by_name = &summary.sources["users"].failure_origins;
    assert_eq!((by_name["db1"], by_name["db2"]), (db1, db2));
}

/// users → api → mid → db: api gives mid 100 ms, mid waits for db as long as it takes.
/// `fault` is injected at 10 s for 20 s.
fn chain(fault: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "chain", duration_s: 1, seed: 9,
            sources: [(name: "users", target: "api", rate: Constant(200), timeout_ms: 5000.0)],
            services: [
                (name: "api", workers: 200, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "mid", timeout_ms: 100.0, latency_ms: 1.0)]),
                (name: "mid", workers: 20, service_time: Deterministic(ms: 0.001),
                 calls: [(to: "db", latency_ms: 1.0)]),
                (name: "db", workers: 20, service_time: Exponential(mean_ms: 2.0)),
            ],
            faults: [(at_s: 10.0, duration_s: 20.0, fault: {fault})],
        )"#
    ))
}

#[test]
fn a_timeout_starts_where_the_attempt_is_blocked_followed_down_through_waiting_workers() {
    // db slows 500-fold (1 s per request): mid's 20 workers all wait on db, and api's calls
    // to mid time out either in mid's queue (behind workers that wait on db) or at a mid
    // worker waiting on db. Both are db's doing: the users' failures start at db, none at api
    // or on a link. A queued attempt is judged by the last 32 jobs to take a mid worker (those
    // still holding one, the 20 workers' jobs); each does its own work for 1 µs of its 1 s
    // hold, so a timeout finds more of them at their own work than waiting far less often
    // than once in the 4,000-odd timeouts: mid may take a couple at most (3 or more would
    // need three such coincidences).
    let s = chain(r#"Slow(service: "db", factor: 500.0)"#);
    let sim = run(&s, 40.0);
    let failures = user_failures(&sim);
    assert!(failures > 1_000, "the slowdown fails requests: {failures}");
    let origins = user_origins(&sim);
    let at = |o| origins.iter().find(|(x, _)| *x == o).map_or(0, |(_, n)| *n);
    let (mid, db) = (at(Origin::Service(1)), at(Origin::Service(2)));
    assert_eq!(mid + db, failures, "only db and mid: {origins:?}");
    assert!(
        mid <= 2,
        "{mid} of {failures} judged by a sample doing its own work"
    );
}

#[test]
fn a_timeout_at_a_slow_service_starts_there_not_at_the_callee_it_would_call() {
    // Now mid's own work slows to 0.5 s (the fault multiplies its 1 µs by 500,000): its
    // workers are busy with their own work, not waiting on db, so api's timeouts while the
    // fault lasts (10 s to 30 s) start at mid. (Its backlog drains after the fault behind
    // workers that call db; those timeouts are judged by what holds the workers then, db:
    // the rule looks at the moment, not at how the queue grew.)
    let s = chain(r#"Slow(service: "mid", factor: 500000.0)"#);
    let sim = run(&s, 40.0);
    let failures = user_failures_in(&sim, 10, 30);
    assert!(failures > 1_000, "the slowdown fails requests: {failures}");
    assert_eq!(
        user_origins_in(&sim, 10, 30),
        vec![(Origin::Service(1), failures)]
    );
}

#[test]
fn a_partition_starts_failures_on_its_link_and_the_path_ends_at_its_caller() {
    // api → mid is cut: api's attempts are lost on that link, and their timeouts start there.
    let s = chain(r#"Partition(from: "api", to: "mid")"#);
    let mut sim = run(&s, 40.0);
    let failures = user_failures(&sim);
    assert!(failures > 1_000, "the partition fails requests: {failures}");
    assert_eq!(user_origins(&sim), vec![(Origin::Link(1), failures)]);
    let report = sim.summary().causality.expect("failures were seen");
    assert_eq!(report.root, "api → mid");
    assert_eq!(report.failure_path, ["users", "api"]);
}

#[test]
fn a_full_queue_starts_its_rejections_at_its_own_service() {
    // db's queue is bounded and its capacity is cut to one worker: its rejections start at db
    // and pass up through mid (which fails its request, "dependency failed") and api.
    let s = common::parse(
        r#"(
            version: 1, name: "rejections", duration_s: 1, seed: 3,
            sources: [(name: "users", target: "api", rate: Constant(400), timeout_ms: 5000.0)],
            services: [
                (name: "api", workers: 200, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "mid", timeout_ms: 2000.0)]),
                (name: "mid", workers: 200, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "db", timeout_ms: 2000.0)]),
                (name: "db", workers: 8, queue: (capacity: 4), service_time: Exponential(mean_ms: 5.0)),
            ],
            faults: [(at_s: 5.0, duration_s: 10.0, fault: CapacityCut(service: "db", workers: 1))],
        )"#,
    );
    let mut sim = run(&s, 20.0);
    let failures = user_failures(&sim);
    assert!(failures > 1_000, "the cut fails requests: {failures}");
    assert_eq!(user_origins(&sim), vec![(Origin::Service(2), failures)]);
    let report = sim.summary().causality.expect("failures were seen");
    assert_eq!(report.failure_path, ["users", "api", "mid", "db"]);
    let first: Vec<(&str, f64)> = report
        .blast_radius
        .iter()
        .map(|r| (r.node.as_str(), r.first_failing_s))
        .collect();
    assert!(
        first.iter().all(|&(_, t)| t == 5.0),
        "all reached within the first second: {first:?}"
    );
}

#[test]
fn requests_turned_away_by_instances_a_dependency_took_out_start_at_that_dependency() {
    // storage's instances will not serve on membership they could not refresh: a failed
    // periodic call to metadata takes each out of rotation. metadata fails every request for
    // 20 s, so storage's instances leave one by one and api's calls find none: the users'
    // failures (storage's rejections, passed up through api) start at metadata, the only
    // fault, not at storage, which did nothing wrong.
    let s = common::parse(
        r#"(
            version: 1, name: "disqualified", duration_s: 1, seed: 11,
            sources: [(name: "users", target: "api", rate: Constant(200), timeout_ms: 5000.0)],
            services: [
                (name: "api", workers: 100, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "storage", timeout_ms: 1000.0)]),
                (name: "storage", instances: 2, workers: 50, service_time: Exponential(mean_ms: 2.0),
                 lifecycle: (periodic: [(every_s: 1.0, disqualify_on_failure: true,
                     call: (to: "metadata", timeout_ms: 500.0))])),
                (name: "metadata", workers: 10, service_time: Exponential(mean_ms: 5.0)),
            ],
            faults: [(at_s: 10.0, duration_s: 20.0, fault: Errors(service: "metadata", probability: 1.0))],
        )"#,
    );
    let mut sim = run(&s, 40.0);
    let failures = user_failures(&sim);
    assert!(
        failures > 1_000,
        "the disqualified storage fails requests: {failures}"
    );
    assert_eq!(user_origins(&sim), vec![(Origin::Service(2), failures)]);
    let report = sim.summary().causality.expect("failures were seen");
    assert_eq!(report.root, "metadata");
}

#[test]
fn a_breakers_fast_failures_and_a_failed_branch_start_at_the_callee_that_failed() {
    // api calls inventory behind a breaker and, in parallel, prices and stock (both needed).
    // inventory fails everything from 10 s for 20 s: its errors, then the open breaker's
    // refusals, start at inventory. stock fails 20% throughout: a request whose stock branch
    // fails fails at stock. No failure starts anywhere else, and the breaker did refuse calls.
    let s = common::parse(
        r#"(
            version: 1, name: "breaker and branches", duration_s: 1, seed: 13,
            sources: [
                (name: "shoppers", target: "api", rate: Constant(300), timeout_ms: 5000.0),
                (name: "browsers", target: "catalog", rate: Constant(300), timeout_ms: 5000.0),
            ],
            services: [
                (name: "api", workers: 100, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "inventory", timeout_ms: 100.0,
                          breaker: (window_s: 5.0, error_ratio: 0.5, min_requests: 20, open_s: 3.0, probes: 1))]),
                (name: "inventory", workers: 50, service_time: Exponential(mean_ms: 2.0)),
                (name: "catalog", workers: 100, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "prices", timeout_ms: 200.0), (to: "stock", timeout_ms: 200.0)],
                 fan_out: Parallel),
                (name: "prices", workers: 50, service_time: Exponential(mean_ms: 2.0)),
                (name: "stock", workers: 50, service_time: Exponential(mean_ms: 2.0)),
            ],
            faults: [
                (at_s: 10.0, duration_s: 20.0, fault: Errors(service: "inventory", probability: 1.0)),
                (at_s: 0.0, duration_s: 100.0, fault: Errors(service: "stock", probability: 0.2)),
            ],
        )"#,
    );
    let mut sim = run(&s, 40.0);
    let summary = sim.summary();
    let shoppers = &summary.sources["shoppers"];
    let browsers = &summary.sources["browsers"];
    // Only api → inventory has a breaker: the calls failed fast on any edge are its refusals.
    let fast_failed: u64 = sim
        .history()
        .edges
        .iter()
        .flat_map(|rows| rows.iter())
        .map(|r| r.counters.fast_failed)
        .sum();
    assert!(
        fast_failed > 1_000,
        "the breaker refused calls: {fast_failed}"
    );
    let failed = |f: &std::collections::BTreeMap<String, u64>| f.values().sum::<u64>();
    assert_eq!(
        shoppers.failure_origins.iter().collect::<Vec<_>>(),
        [(&"inventory".to_owned(), &failed(&shoppers.failures))]
    );
    assert_eq!(
        browsers.failure_origins.iter().collect::<Vec<_>>(),
        [(&"stock".to_owned(), &failed(&browsers.failures))]
    );
}
