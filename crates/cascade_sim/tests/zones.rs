//! Availability zones against answers stated in advance: which instances a zone fault takes,
//! and which messages a zone partition loses, follow from the zones alone.
//!
//! Instances are spread over their service's `zones` in turn; a `ZoneOutage` takes down every
//! instance in its zone; a `ZonePartition` loses every request and reply between an instance
//! in one of its zones and an instance in another zone (docs/model.md, "Zones").

mod common;

use cascade_sim::Simulation;
use cascade_sim::metrics::{NodeCounters, Outcome};
use cascade_sim::scenario::Scenario;

fn run(scenario: &Scenario, until_s: f64) -> Simulation {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(until_s);
    sim
}

/// Messages lost on link `link` over intervals `[from, to)`.
fn lost_on(sim: &Simulation, link: usize, from: u32, to: u32) -> u64 {
    sim.history().edges[link]
        .iter()
        .filter(|r| (from..to).contains(&r.interval))
        .map(|r| r.counters.lost)
        .sum()
}

fn users(sim: &Simulation, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().sources[0], from, to)
}

/// Three zones, `api` and `db` with one instance in each; `db` picked at random; users at
/// `rate`.
fn three_zones(rate: &str, faults: &str, db_work: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "three zones", duration_s: 1, seed: 21,
            sources: [(name: "users", target: "api", rate: {rate}, timeout_ms: 2000.0,
                       retry: (max_attempts: 1))],
            services: [
                (name: "api", instances: 3, zones: ["a", "b", "c"], workers: 400,
                 service_time: Deterministic(ms: 0.5), calls: [(to: "db", timeout_ms: 1000.0)]),
                (name: "db", instances: 3, zones: ["a", "b", "c"], lb: Random, workers: 400,
                 service_time: {db_work}),
            ],
            faults: [{faults}],
        )"#
    ))
}

#[test]
fn a_zone_cut_off_loses_the_calls_that_cross_it() {
    // Zone a is cut off from b and c for 20 s. Users are in no zone and reach every api
    // instance; api's instance in zone z (a third of the requests, round robin) calls a db
    // instance picked at random. A call crosses the cut when exactly one of the two is in a:
    // 1/3 · 2/3 + 2/3 · 1/3 = 4/9 of them, and those time out (1 s), so 5/9 of the users'
    // requests succeed, within the binomial error of the window.
    let s = three_zones(
        "Constant(1000)",
        r#"(at_s: 5.0, duration_s: 20.0, fault: ZonePartition(zones: ["a"]))"#,
        "Exponential(mean_ms: 2.0)",
    );
    let sim = run(&s, 30.0);
    assert_eq!(users(&sim, 0, 5).failed_total(), 0);
    // Requests sent from 7 s to 24 s finish in [7, 25) s.
    let c = users(&sim, 7, 25);
    let n = (c.succeeded + c.failed_total()) as f64;
    let share = c.succeeded as f64 / n;
    let p = 5.0 / 9.0;
    let se = (p * (1.0 - p) / n).sqrt();
    assert!(
        (share - p).abs() <= common::Z * se,
        "{share:.4} of {n} succeeded, expected 5/9 = {p:.4} (se {se:.4})"
    );
    assert_eq!(
        c.failed[Outcome::DependencyFailed as usize],
        c.failed_total(),
        "every failure is api's call timing out"
    );
    // Each failed call's request (or, for one sent just before the cut, its answer) was
    // lost on the api → db link.
    let lost = lost_on(&sim, 1, 5, 26);
    assert_eq!(lost, users(&sim, 5, 27).failed_total());
    // The requests among them reached db's load balancer and vanished there (`dropped`); the
    // few others are answers that were on their way back when the cut began.
    let dropped = common::window(&sim.history().services[1], 5, 26).dropped;
    assert!(
        dropped <= lost && lost - dropped <= 10,
        "{dropped} dropped of {lost} lost"
    );
    assert_eq!(users(&sim, 27, 30).failed_total(), 0, "healed");
}

#[test]
fn answers_sent_across_the_cut_are_lost_even_for_work_begun_before_it() {
    // 900 requests at once at 4.9 s; db works 200 ms on each, so they all reach db before
    // the cut (at 4.902 s) and answer after it starts (5.0 s). Round robin gives each api
    // instance 300 of them; a request whose api and db instances are on the two sides of the
    // cut (zone a against b and c) loses its answer: 300·2/3 + 600·1/3 = 400 expected, with
    // variance 300·(2/3)(1/3) + 600·(1/3)(2/3) = 200. Those users' requests time out; the
    // others succeed. (db is a FIFO leaf whose answers the engine plans at arrival: the cut
    // must re-plan them.)
    let s = three_zones(
        "Burst(count: 900, at_s: 4.9)",
        r#"(at_s: 5.0, duration_s: 10.0, fault: ZonePartition(zones: ["a"]))"#,
        "Deterministic(ms: 200.0)",
    );
    let sim = run(&s, 20.0);
    let c = users(&sim, 0, 20);
    assert_eq!(c.succeeded + c.failed_total(), 900);
    let lost = c.failed[Outcome::DependencyFailed as usize];
    assert_eq!(lost, c.failed_total(), "every failure is a lost answer");
    let sd = 200f64.sqrt();
    assert!(
        (lost as f64 - 400.0).abs() <= common::Z * sd,
        "{lost} of 900 answers lost, expected 400 (sd {sd:.1})"
    );
    assert_eq!(
        lost_on(&sim, 1, 0, 20),
        lost,
        "each lost on the api → db link"
    );
}

#[test]
fn a_zone_outage_takes_every_instance_in_the_zone() {
    // Zone b fails from 5 s to 15 s: api's instance 1 (of zones a, b, c) and all of `batch`
    // (in b alone) are down. Round robin sends a third of the users' requests to the dead
    // instance, which refuses them: a third fail, to within one request a second.
    let s = common::parse(
        r#"(
            version: 1, name: "zone outage", duration_s: 1, seed: 4,
            sources: [(name: "users", target: "api", rate: Constant(900), timeout_ms: 1000.0,
                       retry: (max_attempts: 1))],
            services: [
                (name: "api", instances: 3, zones: ["a", "b", "c"], workers: 100,
                 service_time: Exponential(mean_ms: 1.0)),
                (name: "batch", instances: 2, zones: ["b"], workers: 10,
                 service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 5.0, duration_s: 10.0, fault: ZoneOutage(zone: "b"))],
        )"#,
    );
    let sim = run(&s, 20.0);
    let history = sim.history();
    for k in 6..15u32 {
        let c = users(&sim, k, k + 1);
        let n = c.succeeded + c.failed_total();
        let refused = c.failed[Outcome::Refused as usize];
        assert_eq!(refused, c.failed_total(), "second {k}");
        assert!(
            refused.abs_diff(n / 3) <= 2,
            "second {k}: {refused} of {n} refused"
        );
        let api = cascade_sim::metrics::MetricsHistory::row_at(&history.services[0], k).unwrap();
        let batch = cascade_sim::metrics::MetricsHistory::row_at(&history.services[1], k).unwrap();
        assert_eq!(
            (api.live_instances, batch.live_instances),
            (2, 0),
            "second {k}"
        );
    }
    assert_eq!(
        users(&sim, 16, 20).failed_total(),
        0,
        "back after the outage"
    );
}

#[test]
fn clients_in_a_zone_are_cut_off_with_it() {
    // Internal clients in zone a call `api`, one instance in each of zones a, b and c, in
    // round robin. When zone a is cut off, the two thirds of their requests sent to b and c
    // are lost on the way (the clients time out); users outside every zone lose nothing.
    let s = common::parse(
        r#"(
            version: 1, name: "clients in a zone", duration_s: 1, seed: 9,
            sources: [
                (name: "batch", target: "api", zone: Some("a"), rate: Constant(900), timeout_ms: 500.0),
                (name: "users", target: "api", rate: Constant(300), timeout_ms: 500.0),
            ],
            services: [(name: "api", instances: 3, zones: ["a", "b", "c"], workers: 100,
                        service_time: Exponential(mean_ms: 1.0))],
            faults: [(at_s: 5.0, duration_s: 10.0, fault: ZonePartition(zones: ["a"]))],
        )"#,
    );
    let sim = run(&s, 20.0);
    let window = |source: usize| common::window(&sim.history().sources[source], 6, 15);
    let (batch, users) = (window(0), window(1));
    let n = batch.succeeded + batch.failed_total();
    assert_eq!(
        batch.failed[Outcome::Timeout as usize],
        batch.failed_total()
    );
    // Round robin over both sources' requests: each instance gets a third of the batch's,
    // to within the interleaving of two Poisson streams (binomial, p = 2/3).
    let p = 2.0 / 3.0;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (batch.failed_total() as f64 - p * n as f64).abs() <= common::Z * sd,
        "{} of {n} batch requests lost, expected two thirds (sd {sd:.1})",
        batch.failed_total()
    );
    assert_eq!(users.failed_total(), 0, "users in no zone reach every zone");
}

#[test]
fn bad_zones_are_explained() {
    let text = |zones: &str, fault: &str| {
        format!(
            r#"(
                version: 1, name: "bad", duration_s: 10,
                sources: [(name: "users", target: "api", rate: Constant(10))],
                services: [(name: "api", instances: 3, zones: {zones}, workers: 1,
                            service_time: Exponential(mean_ms: 1.0))],
                faults: [(at_s: 1.0, fault: {fault})],
            )"#
        )
    };
    let first = |zones: &str, fault: &str| common::first_problem(&text(zones, fault));
    let abc = r#"["a", "b", "c"]"#;
    let (path, message, hint) = first(abc, r#"ZoneOutage(zone: "d")"#);
    assert_eq!(path, "faults[0].fault.zone");
    assert_eq!(message, "unknown zone \"d\"");
    assert!(hint.is_some_and(|h| h.contains("a, b, c")));
    let (path, _, hint) = first(abc, r#"ZonePartition(zones: ["bb"])"#);
    assert_eq!(path, "faults[0].fault.zones[0]");
    assert!(hint.is_some_and(|h| h.contains("\"b\"")));
    let (path, message, _) = first(abc, r#"ZonePartition(zones: ["a", "b", "c"])"#);
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("faults[0].fault.zones", "the partition holds every zone")
    );
    let (path, message, _) = first(r#"["a", "a"]"#, r#"ZoneOutage(zone: "a")"#);
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("services[0].zones[1]", "zone \"a\" is named twice")
    );
    let (_, _, hint) = first("[]", r#"ZoneOutage(zone: "a")"#);
    assert!(hint.is_some_and(|h| h.contains("zones:")));
}

/// Two zones: `web` (one instance in each, picked in turn) calls `db` (four instances: 0 and 2
/// in zone a, 1 and 3 in b, picked in turn) with `routing`. db's instance 0 is killed at 2 s
/// and its health checks take it out of rotation by 3 s; zone a is cut off from b from 10 s
/// to 40 s. Calls that cross the cut are lost.
fn routed(routing: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "zone routing", duration_s: 1, seed: 8,
            sources: [(name: "users", target: "web", rate: Constant(400), timeout_ms: 2000.0)],
            services: [
                (name: "web", instances: 2, zones: ["a", "b"], workers: 100,
                 service_time: Exponential(mean_ms: 1.0), calls: [(to: "db", timeout_ms: 100.0)]),
                (name: "db", instances: 4, zones: ["a", "b"], workers: 100, zone_routing: {routing},
                 service_time: Exponential(mean_ms: 2.0),
                 health_check: (interval_s: 0.25, timeout_ms: 50.0, unhealthy_after: 2, healthy_after: 2)),
            ],
            faults: [
                (at_s: 2.0, fault: Kill(service: "db", instances: First(1))),
                (at_s: 10.0, duration_s: 30.0, fault: ZonePartition(zones: ["a"])),
            ],
        )"#
    ))
}

/// web's calls to db over intervals `[from, to)`: `(attempts, lost)`.
fn db_calls(sim: &Simulation, from: u32, to: u32) -> (u64, u64) {
    sim.history().edges[1]
        .iter()
        .filter(|r| (from..to).contains(&r.interval))
        .fold((0, 0), |(a, l), r| {
            (a + r.counters.attempts, l + r.counters.lost)
        })
}

#[test]
fn same_zone_routing_keeps_calls_in_the_callers_zone_until_too_few_instances_are_left() {
    // Instances 1, 2 and 3 are routable during the cut: zone a has 1 of its 2.
    // Every zone alike: web's instance in a sends 2 of every 3 calls across the cut (to 1 and
    // 3), the one in b 1 of 3 (to 2); they share db's round robin, so about half of all calls
    // are lost (binomial error).
    let sim = run(&routed("AllZones"), 45.0);
    let (attempts, lost) = db_calls(&sim, 12, 38);
    let se = (0.25 / attempts as f64).sqrt();
    let share = lost as f64 / attempts as f64;
    assert!(
        (share - 0.5).abs() <= common::Z * se,
        "every zone: {lost} of {attempts} lost, expected half (se {se:.4})"
    );
    // In the caller's zone, spilling below half: zone a keeps 1 of 2 (not below half), so
    // every call stays in its caller's zone and none crosses the cut.
    let sim = run(&routed("SameZone(spill_below: 0.5)"), 45.0);
    let (attempts, lost) = db_calls(&sim, 0, 45);
    assert_eq!(lost, 0, "no call crosses the cut ({attempts} calls)");
    // (Only the calls refused by instance 0 before its health checks took it out fail.)
    assert_eq!(users(&sim, 3, 45).failed_total(), 0);
    // Spilling below three quarters: zone a spills over to every zone, so web's instance in a
    // (every other request, round robin) sends 2 of 3 calls across (db's own round robin over
    // 1, 2, 3), and the one in b none: a third of all calls, to within the cursors' phase.
    let sim = run(&routed("SameZone(spill_below: 0.75)"), 45.0);
    let (attempts, lost) = db_calls(&sim, 12, 38);
    let third = attempts as f64 / 3.0;
    assert!(
        (lost as f64 - third).abs() <= 3.0,
        "spilling: {lost} of {attempts} lost, expected a third ({third:.1})"
    );
    // Before the kill (both of a's instances routable) nothing spills and nothing is cut yet.
    assert_eq!(users(&sim, 0, 2).failed_total(), 0);
}

#[test]
fn zone_routing_is_explained_when_it_cannot_apply() {
    let text = |extra: &str| {
        format!(
            r#"(
                version: 1, name: "bad", duration_s: 10,
                sources: [(name: "users", target: "api", rate: Constant(10))],
                services: [(name: "api", instances: 3, workers: 1{extra},
                            service_time: Exponential(mean_ms: 1.0))],
            )"#
        )
    };
    let (path, message, hint) = common::first_problem(&text(", zone_routing: SameZone()"));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("services[0].zone_routing", "zone routing without zones")
    );
    assert!(hint.is_some_and(|h| h.contains("zones:")));
    let (path, _, _) = common::first_problem(&text(
        r#", zones: ["a"], zone_routing: SameZone(spill_below: 1.5)"#,
    ));
    assert_eq!(path, "services[0].zone_routing.spill_below");
    let (path, message, _) = common::first_problem(&text(
        r#", zones: ["a"], zone_routing: SameZone(), sharding: (keys: 10)"#,
    ));
    assert_eq!(path, "services[0].zone_routing");
    assert!(message.contains("key-routed"), "{message}");
}
