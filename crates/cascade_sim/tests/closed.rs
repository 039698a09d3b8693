//! Closed populations (`rate: Closed(users, think_ms)`): a fixed number of users, each waiting
//! for its answer and thinking before the next request. Tested against exact Mean Value
//! Analysis of the closed queueing network (Reiser & Lavenberg 1980), which the model is: an
//! infinite-server think station, an infinite-server network delay, and one FIFO server with
//! exponential work (product form: the delays may have any distribution).

mod common;

use cascade_sim::{SimCommand, Simulation};
use common::{assert_close, parse};

/// Exact MVA for `users` users, think time `think_s`, a pure delay of `delay_s` per request
/// and one exponential server of mean `service_s`: `(throughput per s, server residence s)`.
/// Q(0) = 0; R(n) = S(1 + Q(n−1)); X(n) = n / (Z + D + R(n)); Q(n) = X(n)·R(n).
fn mva(users: u32, think_s: f64, delay_s: f64, service_s: f64) -> (f64, f64) {
    let (mut q, mut x, mut r) = (0.0f64, 0.0f64, 0.0f64);
    for n in 1..=users {
        r = service_s * (1.0 + q);
        x = f64::from(n) / (think_s + delay_s + r);
        q = x * r;
    }
    (x, r)
}

/// Runs `scenario` (a closed population of `users` thinking a mean `think_s` in all, 1 ms
/// each way, one exponential server of 1 ms) in 40 batches of 5 s and asserts the server's
/// throughput (to 1%) and residence (to `residence_rel_se`) against MVA; returns MVA's
/// throughput and the batches.
fn assert_mva(
    scenario: &cascade_sim::scenario::Scenario,
    users: u32,
    think_s: f64,
    residence_rel_se: f64,
) -> (f64, common::Batches) {
    let (x, r) = mva(users, think_s, 0.002, 0.001);
    let b = common::run_batches(scenario, 0, 5.0, 5.0, 40);
    let per_s = |c: &cascade_sim::metrics::NodeCounters, span_ns: u64| {
        c.completed() as f64 / (span_ns as f64 / 1e9)
    };
    assert_close(
        &format!("{users} users: throughput"),
        b.estimate(per_s),
        x,
        0.01,
    );
    assert_close(
        &format!("{users} users: residence at the server"),
        b.estimate(|c, _| c.mean_residence_ms()),
        r * 1000.0,
        residence_rel_se,
    );
    (x, b)
}

fn population(users: u32) -> cascade_sim::scenario::Scenario {
    parse(&format!(
        r#"(
            version: 1, name: "closed", duration_s: 1, seed: 31,
            sources: [(name: "users", target: "server", rate: Closed(users: {users}, think_ms: 10.0))],
            services: [(name: "server", workers: 1, service_time: Exponential(mean_ms: 1.0))],
        )"#
    ))
}

#[test]
fn a_closed_population_matches_mean_value_analysis() {
    // Think 10 ms, 1 ms each way, 1 ms of work: saturation at N* = (10 + 2 + 1)/1 = 13 users.
    // Below it the users are mostly thinking; above it the server is busy and every extra
    // user only waits: X(30) = 999.99/s, R(30) = 18.0 ms (= N/μ − Z − D). An open source at
    // the same offered rate would have no such ceiling.
    for users in [5u32, 13, 30] {
        let (x, b) = assert_mva(&population(users), users, 0.010, 0.01);
        if users < 30 {
            // (At 30 the server is never idle in a 5-s batch: no spread to test with.)
            assert_close(
                &format!("{users} users: utilisation"),
                b.estimate(|c, _| c.utilization()),
                x * 0.001,
                0.01,
            );
        }
    }
}

#[test]
fn a_population_edited_live_or_spiked_settles_at_its_new_size() {
    // 5 users, then an edit to 30 at 20 s: from 25 s on, the run is MVA's at 30 users. A
    // load spike ×2 on 13 users makes 26.
    let mut sim = Simulation::new(&population(5));
    // At `at_s` the population becomes `users`; 5 s later the run is MVA's for them.
    let mut edit_and_check = |at_s: f64, users: u32| {
        sim.run_until_s(at_s);
        let mut edited = population(users);
        edited.duration_s = 1.0;
        sim.command(SimCommand::Reconfigure(Box::new(edited)))
            .expect("the edit applies");
        sim.run_until_s(at_s + 205.0);
        let b = common::Batches::of(
            &sim.history().services[0],
            sim.history(),
            at_s + 5.0,
            5.0,
            40,
        );
        assert_close(
            &format!("edited to {users} users at {at_s} s: throughput"),
            b.estimate(|c, span_ns| c.completed() as f64 / (span_ns as f64 / 1e9)),
            mva(users, 0.010, 0.002, 0.001).0,
            0.01,
        );
    };
    edit_and_check(20.0, 30);
    // And back to 5: the extra users retire as their requests end.
    edit_and_check(225.0, 5);

    let s = parse(
        r#"(
            version: 1, name: "closed", duration_s: 1, seed: 37,
            sources: [(name: "users", target: "server", rate: Closed(users: 13, think_ms: 10.0))],
            services: [(name: "server", workers: 1, service_time: Exponential(mean_ms: 1.0))],
            faults: [(at_s: 20.0, duration_s: 300.0, fault: LoadSpike(source: "users", factor: 2.0))],
        )"#,
    );
    let b = common::run_batches(&s, 0, 25.0, 5.0, 40);
    let (_, r26) = mva(26, 0.010, 0.002, 0.001);
    assert_close(
        "13 users spiked ×2: residence at the server",
        b.estimate(|c, _| c.mean_residence_ms()),
        r26 * 1000.0,
        0.01,
    );
}

#[test]
fn mva_gives_the_known_limits() {
    // One user never queues: X = 1/(Z + D + S). Many users: X → μ.
    let (x1, r1) = mva(1, 0.010, 0.002, 0.001);
    assert!((x1 - 1.0 / 0.013).abs() < 1e-9 && (r1 - 0.001).abs() < 1e-12);
    let (x, r) = mva(1000, 0.010, 0.002, 0.001);
    assert!((x - 1000.0).abs() < 1e-6 && (r - (1000.0 / 1000.0 - 0.012)).abs() < 1e-6);
}

#[test]
fn users_who_think_longer_after_a_failure_match_mean_value_analysis() {
    // Half the requests fail (an `Errors` fault at the server, decided after the work, so the
    // server's work is as before), and a user thinks 100 ms after a failure instead of 10 ms.
    // The outcome is an independent coin per request, so the think station is two
    // infinite-server stations visited with probabilities ½ and ½: the network stays
    // product-form, and MVA holds with the mean think time Z = ½·10 + ½·100 = 55 ms.
    // Saturation at N* = (55 + 2 + 1)/1 = 58 users: below and above it.
    for users in [30u32, 90] {
        let s = parse(&format!(
            r#"(
                version: 1, name: "closed, failures", duration_s: 1, seed: 32,
                sources: [(name: "users", target: "server",
                           rate: Closed(users: {users}, think_ms: 10.0, think_after_failure_ms: Some(100.0)))],
                services: [(name: "server", workers: 1, service_time: Exponential(mean_ms: 1.0))],
                faults: [(at_s: 0.0, duration_s: 10000.0, fault: Errors(service: "server", probability: 0.5))],
            )"#
        ));
        assert_mva(&s, users, 0.055, 0.02);
    }
}
