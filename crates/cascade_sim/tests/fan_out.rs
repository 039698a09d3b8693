//! Parallel fan-out (`fan_out: Parallel` and `Quorum(k)`) against order statistics, the
//! binomial law and Dean & Barroso's "The Tail at Scale".
//!
//! The model in every test: a source, 1 ms links each way, a `front` service with
//! deterministic 1 ms of own work and more workers than it can ever use, fanning out to
//! `leaf` services with more workers than they can use (no queueing anywhere), so a request's
//! time is fixed delays plus order statistics of independent leaf times. Tolerances are
//! `Z` = 4 standard errors from batch means (see `common`), or exact where nothing is random.

mod common;

use cascade_sim::metrics::{NodeCounters, Outcome};
use common::{Batches, Z, assert_close, parse, run_for_batches};

const WARMUP_S: f64 = 5.0;
const BATCH_S: f64 = 10.0;
const BATCHES: usize = 20;

/// Exponential leaf times, mean `leaf_ms`; `front` sends `count` branches with `fan_out`.
/// `extra` is inserted in the source (a timeout) and `faults` in the scenario.
fn fan_out_scenario(rate: f64, count: u32, fan_out: &str, extra: &str, faults: &str) -> String {
    format!(
        r#"(
            version: 1, name: "fan-out", duration_s: 1, seed: 7,
            sources: [(name: "users", target: "front", rate: Constant({rate}), latency_ms: 1.0{extra})],
            services: [
                (name: "front", workers: 100000, service_time: Deterministic(ms: 1.0),
                 calls: [(to: "leaf", count: {count}, latency_ms: 1.0)], fan_out: {fan_out}),
                (name: "leaf", workers: 100000, service_time: Exponential(mean_ms: 10.0)),
            ],
            faults: [{faults}],
        )"#
    )
}

/// Batches of the source (`users`), `front` and `leaf`.
fn run(text: &str) -> (Batches, Batches, Batches) {
    let sim = run_for_batches(&parse(text), WARMUP_S, BATCH_S, BATCHES);
    let h = sim.history();
    let cut = |ring| Batches::of(ring, h, WARMUP_S, BATCH_S, BATCHES);
    (cut(&h.sources[0]), cut(&h.services[0]), cut(&h.services[1]))
}

/// E[k-th smallest of n exponentials of mean m] = m·Σ_{i=n−k+1}^{n} 1/i.
fn order_statistic_ms(k: u32, n: u32, mean_ms: f64) -> f64 {
    mean_ms * (n - k + 1..=n).map(|i| 1.0 / f64::from(i)).sum::<f64>()
}

fn success_ratio(c: &NodeCounters) -> f64 {
    c.succeeded as f64 / c.completed() as f64
}

#[test]
fn parallel_calls_wait_for_the_slowest_branch_and_a_quorum_for_its_kth() {
    // Front residence = 1 ms own work + 1 ms there + the k-th leaf time + 1 ms back.
    for (count, fan_out, k) in [
        (10, "Parallel", 10),
        (3, "Quorum(2)", 2),
        (3, "Quorum(1)", 1),
    ] {
        let (_, front, leaf) = run(&fan_out_scenario(200.0, count, fan_out, "", ""));
        let expected = 3.0 + order_statistic_ms(k, count, 10.0);
        assert_close(
            &format!("{fan_out} of {count}: front residence"),
            front.estimate(|c, _| c.mean_residence_ms()),
            expected,
            0.005,
        );
        // Every branch is sent: the leaf sees count × the front's requests.
        let (f, l) = (front.total(), leaf.total());
        let ratio = l.offered() as f64 / f.offered() as f64;
        assert!(
            (ratio - f64::from(count)).abs() < 0.01,
            "{fan_out}: {ratio} leaf attempts per request, expected {count}"
        );
    }
}

#[test]
fn a_quorum_abandons_the_branches_still_out_and_their_work_is_orphaned() {
    // Quorum 2 of 3: the parent goes on when the second reply arrives, 1 ms after the second
    // leaf finished. The third leaf's remaining time is exponential (memoryless), so it
    // finishes unwanted — orphaned — with probability e^(−1 ms / 10 ms), and one leaf
    // completion in three is that third one.
    let (users, _, leaf) = run(&fan_out_scenario(200.0, 3, "Quorum(2)", "", ""));
    assert_close(
        "orphaned share of leaf completions",
        leaf.estimate(|c, _| c.orphaned_ratio()),
        (-0.1f64).exp() / 3.0,
        0.01,
    );
    let u = users.total();
    assert_eq!(u.succeeded, u.completed(), "no request fails");
}

#[test]
fn parallel_success_follows_the_binomial_law_and_failure_is_fast() {
    // Every leaf attempt fails with p = 0.2, independently; no retries. A request needs k of
    // 3 branches: P(success) = P(Binomial(3, 0.8) ≥ k).
    let faults = r#"(at_s: 0.0, fault: Errors(service: "leaf", probability: 0.2))"#;
    for (fan_out, expected) in [
        ("Parallel", 0.8f64.powi(3)),
        ("Quorum(2)", 0.8f64.powi(3) + 3.0 * 0.8 * 0.8 * 0.2),
        ("Quorum(1)", 1.0 - 0.2f64.powi(3)),
    ] {
        let (users, front, _) = run(&fan_out_scenario(200.0, 3, fan_out, "", faults));
        assert_close(
            &format!("{fan_out}: success ratio"),
            users.estimate(|c, _| success_ratio(c)),
            expected,
            0.01,
        );
        let f = front.total();
        assert_eq!(
            f.failed_total(),
            f.failed[Outcome::DependencyFailed as usize],
            "{fan_out}: the front fails only with dependency_failed"
        );
    }
}

#[test]
fn one_failed_branch_fails_the_request_at_once_and_orphans_the_rest() {
    // `bad` fails every request after 1 ms; `slow` takes 100 ms. With `Parallel` the front
    // fails when bad's reply arrives: 1 ms own work + 1 + 1 + 1 ms = 4 ms exactly, and every
    // slow completion is orphaned (its caller abandoned it 96 ms before).
    let s = parse(
        r#"(
            version: 1, name: "fail fast", duration_s: 1, seed: 3,
            sources: [(name: "users", target: "front", rate: Constant(100), latency_ms: 1.0)],
            services: [
                (name: "front", workers: 100000, service_time: Deterministic(ms: 1.0),
                 calls: [(to: "slow", latency_ms: 1.0), (to: "bad", latency_ms: 1.0)],
                 fan_out: Parallel),
                (name: "slow", workers: 100000, service_time: Deterministic(ms: 100.0)),
                (name: "bad", workers: 100000, service_time: Deterministic(ms: 1.0)),
            ],
            faults: [(at_s: 0.0, fault: Errors(service: "bad", probability: 1.0))],
        )"#,
    );
    let sim = run_for_batches(&s, WARMUP_S, BATCH_S, BATCHES);
    let h = sim.history();
    let cut = |ring| Batches::of(ring, h, WARMUP_S, BATCH_S, BATCHES).total();
    let (front, slow) = (cut(&h.services[0]), cut(&h.services[1]));
    assert!(front.completed() > 10_000);
    assert_eq!(front.succeeded, 0);
    assert!(
        (front.mean_residence_ms() - 4.0).abs() < 1e-6,
        "failed after {} ms, not 4 ms",
        front.mean_residence_ms()
    );
    assert!(slow.completed() > 10_000);
    assert_eq!(
        slow.orphaned,
        slow.completed(),
        "every slow completion orphaned"
    );
}

#[test]
fn a_client_timeout_orphans_the_gathering_request_and_its_open_branches() {
    // Client timeout 30 ms, 10 parallel branches, M the slowest leaf time. Sent at 0, the
    // request reaches front at 1 ms, its branches reach the leaves at 3 ms, leaf i is done at
    // 3 + S_i, front at 4 + M, and the reply would arrive at 5 + M. So the client times out
    // when M > 25 ms; front is orphaned (still gathering at 30 ms) when M > 26 ms; a leaf's
    // work is orphaned when it is still running at 30 ms: S_i > 27 ms.
    let p_max_above = |t_ms: f64| 1.0 - (1.0 - (-t_ms / 10.0f64).exp()).powi(10);
    let (_, front, leaf) = run(&fan_out_scenario(
        200.0,
        10,
        "Parallel",
        ", timeout_ms: 30.0",
        "",
    ));
    assert_close(
        "timed-out share of the front's requests",
        front.estimate(|c, _| c.timed_out as f64 / c.offered() as f64),
        p_max_above(25.0),
        0.01,
    );
    assert_close(
        "orphaned share of the front's completions",
        front.estimate(|c, _| c.orphaned_ratio()),
        p_max_above(26.0),
        0.01,
    );
    assert_close(
        "orphaned share of the leaves' completions",
        leaf.estimate(|c, _| c.orphaned_ratio()),
        (-2.7f64).exp(),
        0.02,
    );
}

#[test]
fn one_slow_server_in_a_hundred_slows_most_requests_that_fan_out_to_a_hundred() {
    // Dean & Barroso, The Tail at Scale (CACM 2013): if one request in a hundred to a server
    // takes a second, a request that fans out to 100 servers in parallel is that slow with
    // probability 1 − 0.99^100 = 63%. Here 100 leaf instances behind a random load balancer,
    // one of them 1 s slower; the client gives up at 500 ms, so the timed-out share is the
    // share of requests that touched it. The others wait only for the slowest fast branch:
    // 6 ms exactly (fixed work and links), where 100 sequential calls would take 300 ms.
    let s = parse(
        r#"(
            version: 1, name: "tail at scale", duration_s: 1, seed: 5,
            sources: [(name: "users", target: "front", rate: Constant(20), latency_ms: 1.0,
                       timeout_ms: 500.0)],
            services: [
                (name: "front", workers: 100000, service_time: Deterministic(ms: 1.0),
                 calls: [(to: "leaf", count: 100, latency_ms: 1.0)], fan_out: Parallel),
                (name: "leaf", instances: 100, workers: 1000, lb: Random,
                 service_time: Deterministic(ms: 1.0)),
            ],
            faults: [(at_s: 0.0, fault: Latency(service: "leaf", instances: First(1),
                      added_ms: 1000.0))],
        )"#,
    );
    let sim = run_for_batches(&s, WARMUP_S, 50.0, BATCHES);
    let h = sim.history();
    let users = Batches::of(&h.sources[0], h, WARMUP_S, 50.0, BATCHES);
    let expected = 1.0 - 0.99f64.powi(100);
    let u = users.total();
    let n = u.completed() as f64;
    let timed_out = u.failed[Outcome::Timeout as usize] as f64 / n;
    let se = (expected * (1.0 - expected) / n).sqrt();
    assert!(
        (timed_out - expected).abs() <= Z * se,
        "timed out {timed_out:.4}, expected {expected:.4} ± {:.4}",
        Z * se
    );
    // A source records the latency of its successes only.
    let success_ms = u.residence_ns as f64 / u.succeeded as f64 / 1e6;
    assert!(
        (success_ms - 6.0).abs() < 1e-6,
        "fast requests took {success_ms} ms, not 6 ms"
    );
}
