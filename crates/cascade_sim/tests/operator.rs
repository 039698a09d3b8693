//! An operator's rate limits (`LimitSource`, `RateLimit` and their removals), against what a
//! token bucket admits: offered far above the rate, a bucket of size b that starts full admits
//! b + r·t over t seconds (to within the one token it may hold at the window's edge), because
//! it never fills again and every token is taken by the next arrival, a millisecond or so
//! after it accrues.

mod common;

use cascade_sim::Simulation;
use cascade_sim::commands::SimCommand;
use cascade_sim::metrics::{NodeCounters, Outcome};
use cascade_sim::scenario::Scenario;

fn run(scenario: &Scenario, until_s: f64) -> Simulation {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(until_s);
    sim
}

fn source(sim: &Simulation, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().sources[0], from, to)
}

fn service(sim: &Simulation, i: usize, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().services[i], from, to)
}

#[test]
fn a_limited_source_sends_its_rate_and_answers_the_rest_throttled_at_the_edge() {
    // 1,000 new requests/s; from 10 s to 40 s at most 300/s (burst 10) pass the edge.
    let s = common::parse(
        r#"(
            version: 1, name: "edge limit", duration_s: 1, seed: 5,
            sources: [(name: "users", target: "api", rate: Constant(1000), timeout_ms: 1000.0)],
            services: [(name: "api", instances: 2, workers: 50, service_time: Deterministic(ms: 2.0))],
            operator: [
                (when: At(10.0), action: LimitSource(source: "users", rate_per_s: 300.0)),
                (when: At(40.0), action: RemoveSourceLimit(source: "users")),
            ],
        )"#,
    );
    let sim = run(&s, 60.0);
    let before = source(&sim, 0, 10);
    assert_eq!(before.local_rejected, 0, "no limit before 10 s");
    let during = source(&sim, 10, 40);
    let admitted = during.offered_first - during.local_rejected;
    // The full bucket (10) and 300/s × 30 s, less what the bucket holds at 40 s: under one
    // token after the last arrival's take, plus 0.3 a millisecond since that arrival (below
    // 3 tokens unless no request came for 6.7 ms: probability e^-6.7 ≈ 0.001).
    assert!(
        (9_007..=9_010).contains(&admitted),
        "admitted {admitted} of {} against 9,010",
        during.offered_first
    );
    assert_eq!(
        during.failed[Outcome::Throttled as usize],
        during.local_rejected,
        "every request over the limit fails throttled"
    );
    // What passed reached the service (1 ms later: a few cross the window's edges).
    let (api, users) = (service(&sim, 0, 11, 39), source(&sim, 11, 39));
    let sent = users.offered_first - users.local_rejected;
    assert!(
        api.offered_first.abs_diff(sent) <= 3,
        "the service saw {} of {sent} sent",
        api.offered_first
    );
    let after = source(&sim, 41, 60);
    assert_eq!(after.local_rejected, 0, "lifted at 40 s");
    assert!(after.offered_first > 18_000);
}

#[test]
fn an_operator_rate_limit_throttles_each_instance_and_lifting_it_restores_the_services_own() {
    // Four instances in round robin, 500/s each offered. `plain` has no mechanisms (a leaf the
    // engine plans at arrival); `limited` has its own 200/s limit per instance.
    for (own, after_per_instance) in [
        ("", None),
        (
            ", admission: (rate_limit: (rate_per_s: 200.0, burst: 10.0))",
            Some(200.0),
        ),
    ] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "operator rate limit", duration_s: 1, seed: 9,
                sources: [(name: "users", target: "db", rate: Constant(2000), timeout_ms: 1000.0)],
                services: [(name: "db", instances: 4, workers: 40, service_time: Exponential(mean_ms: 5.0){own})],
                operator: [
                    (when: At(10.0), action: RateLimit(service: "db", rate_per_s: 100.0, burst: 10.0)),
                    (when: At(40.0), action: RemoveRateLimit(service: "db")),
                ],
            )"#
        ));
        let sim = run(&s, 70.0);
        let db = service(&sim, 0, 10, 40);
        // Each instance: its full bucket (10) and 100/s × 30 s, less a token's fraction.
        let admitted = db.offered_first - db.throttled;
        assert!(
            (4 * 3_009..=4 * 3_010).contains(&admitted),
            "{own:?}: admitted {admitted} of {} against 12,040",
            db.offered_first
        );
        if after_per_instance.is_none() {
            // Each throttled attempt fails its request (no retries); the answers of the last
            // millisecond before 40 s reach the users after it, and nothing is throttled then.
            let users = source(&sim, 10, 41);
            assert_eq!(users.failed[Outcome::Throttled as usize], db.throttled);
        }
        // After the removal: the service's own limit again, or none.
        let after = service(&sim, 0, 40, 70);
        match after_per_instance {
            None => assert_eq!(after.throttled, 0, "no limit of its own"),
            Some(rate) => {
                let admitted = after.offered_first - after.throttled;
                // The bucket left by the operator's limit is replaced by a full one at 40 s.
                let expected = 4.0 * (10.0 + rate * 30.0);
                assert!(
                    (admitted as f64 - expected).abs() <= 4.0,
                    "its own limit again: {admitted} against {expected}"
                );
            }
        }
    }
}

#[test]
fn what_the_operator_changed_holds_through_a_live_edit() {
    // The operator turns retries off and rate-limits the service at 5 s; at 10 s a live edit
    // changes something else (the service's work, 2 ms → 1.5 ms). The docs say an action
    // holds for the rest of the run: after the edit nothing is retried and the limit still
    // throttles (two instances at 100/s each: at most 200 + a bucket's 20 admitted a second).
    let s = common::parse(
        r#"(
            version: 1, name: "operator and edits", duration_s: 1, seed: 2,
            sources: [(name: "users", target: "db", rate: Constant(1000), timeout_ms: 1000.0,
                       retry: (max_attempts: 3))],
            services: [(name: "db", instances: 2, workers: 40, service_time: Deterministic(ms: 2.0))],
            operator: [
                (when: At(5.0), action: DisableRetries()),
                (when: At(5.0), action: RateLimit(service: "db", rate_per_s: 100.0)),
            ],
        )"#,
    );
    let mut sim = Simulation::new(&s);
    sim.run_until_s(10.0);
    let mut edited = s.clone();
    edited.services[0].service_time = cascade_sim::scenario::ServiceTime::Deterministic { ms: 1.5 };
    sim.command(SimCommand::Reconfigure(Box::new(edited)))
        .expect("a valid edit");
    sim.run_until_s(20.0);
    let before = service(&sim, 0, 0, 5);
    assert!(
        before.offered_retry == 0 && before.throttled == 0,
        "nothing to retry before"
    );
    let after = service(&sim, 0, 11, 20);
    assert_eq!(after.offered_retry, 0, "retries stay off after the edit");
    let admitted = after.offered_first - after.throttled;
    // 100/s × 9 s per instance, give or take what each bucket holds at the window's ends
    // (under a token plus a millisecond's accrual: the offered 500/s per instance take every
    // token within about 2 ms of its accrual).
    assert!(
        (1_797..=1_802).contains(&admitted),
        "the limit still holds after the edit: {admitted} admitted in 9 s"
    );
}
