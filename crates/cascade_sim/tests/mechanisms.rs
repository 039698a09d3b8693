//! The resilience mechanisms against known results: each test states the answer from a closed
//! form, a published figure or the mechanism's configuration, then runs the engine.
//!
//! Tolerances follow `common` (about four standard errors of the estimate) unless a test says
//! why it needs another.

mod common;

use cascade_sim::Simulation;
use cascade_sim::metrics::{MetricsHistory, NodeCounters, NodeRow, Outcome};
use cascade_sim::scenario::Scenario;

/// Runs `scenario` to `until_s` and returns the simulation.
fn run(scenario: &Scenario, until_s: f64) -> Simulation {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(until_s);
    sim
}

fn source(sim: &Simulation, i: usize, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().sources[i], from, to)
}

fn service(sim: &Simulation, i: usize, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().services[i], from, to)
}

fn service_row(sim: &Simulation, i: usize, k: u32) -> NodeRow {
    *MetricsHistory::row_at(&sim.history().services[i], k).expect("row")
}

/// Every request the counters saw resolve succeeded.
#[track_caller]
fn assert_all_served(c: &NodeCounters) {
    assert_eq!(
        c.goodput,
        c.resolved(),
        "every request served: {} of {}",
        c.goodput,
        c.resolved()
    );
}

/// A binomial proportion's standard error.
fn se(p: f64, n: f64) -> f64 {
    (p * (1.0 - p) / n).sqrt()
}

/// Asserts that `c`'s success ratio is `expected` within [`common::Z`] binomial standard
/// errors.
#[track_caller]
fn assert_success_ratio(what: &str, c: &NodeCounters, expected: f64) {
    let n = (c.succeeded + c.failed_total()) as f64;
    let ok = c.succeeded as f64 / n;
    assert!(
        (ok - expected).abs() <= common::Z * se(expected, n),
        "{what}: success ratio {ok:.4} vs {expected:.4} ({n} requests)"
    );
}

// ------------------------------------------------------------------- retries and throttling

#[test]
fn a_ten_percent_retry_budget_keeps_amplification_near_1_1x_where_three_attempts_give_3x() {
    // SRE book ch. 22: against a backend that fails everything, three attempts per request
    // triple the load; a 10% retry budget (token bucket) allows 0.1 retries per request.
    let make = |budget: &str| {
        common::parse(&format!(
            r#"(
                version: 1, name: "budget", duration_s: 1, seed: 3,
                sources: [(name: "clients", target: "api", rate: Constant(1000), timeout_ms: 100.0,
                           retry: (max_attempts: 3{budget}))],
                services: [(name: "api", workers: 100, service_time: Exponential(mean_ms: 1.0))],
                faults: [(at_s: 0.0, fault: Errors(service: "api", probability: 1.0))],
            )"#
        ))
    };
    for (budget, expected) in [("", 3.0), (", budget: (ratio: 0.1, max_tokens: 10.0)", 1.1)] {
        let sim = run(&make(budget), 61.0);
        let c = service(&sim, 0, 1, 61);
        let amplification = c.offered() as f64 / c.offered_first as f64;
        // Exact up to the bucket's initial 10 tokens and the boundary intervals (< 0.002).
        assert!(
            (amplification - expected).abs() < 0.005,
            "budget {budget:?}: {amplification:.4}× vs {expected}×"
        );
    }
}

#[test]
fn retries_at_every_layer_multiply_the_load_on_the_failing_one() {
    // SRE book ch. 22 ("Retries" in cascading failures): retries at each layer of a stack
    // multiply, so with A attempts per call at each of L layers above a failing backend the
    // backend sees A^L attempts per user request. A burst of 100 requests through three layers
    // that each try 3 times reaches the failing `c` 2,700 times, `b` 900, `a` 300 — exactly,
    // since nothing times out or is shed.
    let s = common::parse(
        r#"(
            version: 1, name: "amplification", duration_s: 1, seed: 9,
            sources: [(name: "users", target: "a", rate: Burst(count: 100, at_s: 0.5),
                       retry: (max_attempts: 3))],
            services: [
                (name: "a", workers: 1000, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "b", retry: (max_attempts: 3))]),
                (name: "b", workers: 1000, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "c", retry: (max_attempts: 3))]),
                (name: "c", workers: 1000, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 0.0, fault: Errors(service: "c", probability: 1.0))],
        )"#,
    );
    let sim = run(&s, 10.0);
    let users = source(&sim, 0, 0, 10);
    assert_eq!(users.offered_first, 100);
    assert_eq!(users.offered(), 300, "the users try 3 times");
    assert_eq!(users.succeeded, 0);
    for (i, expected) in [(0, 300), (1, 900), (2, 2_700)] {
        let c = service(&sim, i, 0, 10);
        assert_eq!(c.offered(), expected, "attempts reaching service {i}");
        assert_eq!(c.succeeded, 0, "service {i} never succeeds");
    }
}

#[test]
fn adaptive_throttling_settles_at_k_times_what_the_backend_accepts() {
    // SRE book ch. 21: P(reject) = max(0, (requests − K·accepts)/(requests + 1)). Against a
    // backend that accepts C a second (a 429 rate limit) and demand R > K·C, the client sends
    // K·C a second and rejects 1 − K·C/R of its requests locally.
    let (r, c, k) = (1000.0, 200.0, 2.0);
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "throttle", duration_s: 1, seed: 5,
            sources: [(name: "clients", target: "api", rate: Constant({r}), timeout_ms: 1000.0,
                       adaptive_throttle: (k: {k}, window_s: 10.0))],
            services: [(name: "api", workers: 100, service_time: Exponential(mean_ms: 1.0),
                        admission: (rate_limit: (rate_per_s: {c}, burst: 10.0)))],
        )"#
    ));
    let sim = run(&s, 130.0);
    let client = source(&sim, 0, 30, 130);
    let api = service(&sim, 0, 30, 130);
    let n = client.offered_first as f64;
    let rejected_locally = client.local_rejected as f64 / n;
    let expected = 1.0 - k * c / r;
    // The formula is applied to window counts (10 s × 1000/s): its own noise is ~1/√10⁴.
    assert!(
        (rejected_locally - expected).abs() < 0.01,
        "local rejections {rejected_locally:.4} vs {expected}"
    );
    let sent_per_s = api.offered() as f64 / 100.0;
    assert!(
        (sent_per_s / (k * c) - 1.0).abs() < 0.03,
        "sent {sent_per_s:.1}/s vs K·C = {}",
        k * c
    );
    let accepted_per_s = api.succeeded as f64 / 100.0;
    assert!(
        (accepted_per_s / c - 1.0).abs() < 0.01,
        "accepted {accepted_per_s:.1}/s vs C = {c}"
    );
}

// ------------------------------------------------------------------- load shedding

/// One server of capacity 1000/s (10 workers × 10 ms) behind clients with a 500 ms timeout.
fn overloaded(load: f64, admission: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "overload", duration_s: 1, seed: 17,
            sources: [(name: "clients", target: "server", rate: Constant({rate}), timeout_ms: 500.0)],
            services: [(name: "server", workers: 10, service_time: Exponential(mean_ms: 10.0){admission})],
        )"#,
        rate = 1000.0 * load,
    ))
}

#[test]
fn without_shedding_goodput_collapses_once_queue_wait_exceeds_the_timeout() {
    // AWS Builders' Library, "Using load shedding to avoid overload": FIFO and client timeouts,
    // goodput falls to zero while the server stays busy.
    for load in [1.2, 1.5, 2.0] {
        let sim = run(&overloaded(load, ""), 120.0);
        let clients = source(&sim, 0, 90, 120);
        let server = service(&sim, 0, 90, 120);
        let goodput_per_s = clients.goodput as f64 / 30.0;
        assert!(
            goodput_per_s < 10.0,
            "load {load}×: goodput {goodput_per_s}/s should be ~0"
        );
        assert!(
            server.utilization() > 0.99,
            "load {load}×: the server is busy all the same ({})",
            server.utilization()
        );
    }
}

#[test]
fn shedding_by_queue_time_keeps_goodput_near_capacity_up_to_twice_the_load() {
    // Same source: with shedding, goodput stays at or above 0.9 × capacity up to 2× load.
    for load in [1.2, 1.5, 2.0] {
        let sim = run(
            &overloaded(load, ", admission: (max_queue_wait_ms: 300.0)"),
            120.0,
        );
        let goodput_per_s = source(&sim, 0, 30, 120).goodput as f64 / 90.0;
        assert!(
            goodput_per_s >= 900.0,
            "load {load}×: goodput {goodput_per_s:.0}/s below 0.9 × capacity"
        );
        let server = service(&sim, 0, 30, 120);
        assert!(server.shed > 0, "load {load}×: nothing was shed");
    }
}

#[test]
fn controlled_delay_times_out_a_standing_queue_after_the_target() {
    // Maurer, "Fail at Scale" (ACM Queue 2015): a request put in a queue that has not been
    // empty for the last N = 100 ms may wait M = 5 ms, otherwise N. One worker of exactly
    // 1 ms; bursts of 80 at 0 s, 50 at 50 ms and 50 at 120 ms. The queue is never empty from
    // 0 to 129 ms (the first burst is served by 80 ms, the second, queued behind it, from 80
    // to 130 ms, waiting 30–79 ms: within N). So the second burst, queued after 50 ms of
    // standing, gets N; the third, after 120 ms, gets M, and all of it has waited at least
    // 10 ms when the worker comes to it: shed. A plain 100-ms queue-time limit serves it all.
    let text = |admission: &str| {
        format!(
            r#"(
            version: 1, name: "codel", duration_s: 1, seed: 1,
            sources: [
                (name: "a", target: "server", rate: Burst(count: 80, at_s: 0.0)),
                (name: "b", target: "server", rate: Burst(count: 50, at_s: 0.05)),
                (name: "c", target: "server", rate: Burst(count: 50, at_s: 0.12)),
            ],
            services: [(name: "server", workers: 1, service_time: Deterministic(ms: 1.0),
                        admission: {admission})],
        )"#
        )
    };
    for (admission, third_served) in [
        ("(codel: (target_ms: 5.0, interval_ms: 100.0))", 0),
        ("(max_queue_wait_ms: 100.0)", 50),
    ] {
        let sim = run(&common::parse(&text(admission)), 1.0);
        let served = |i| source(&sim, i, 0, 1).goodput;
        assert_eq!(
            (served(0), served(1), served(2)),
            (80, 50, third_served),
            "{admission}"
        );
        assert_eq!(
            service(&sim, 0, 0, 1).shed,
            50 - third_served,
            "{admission}"
        );
    }
}

#[test]
fn controlled_delay_sheds_less_than_its_target_alone_and_keeps_goodput_under_overload() {
    // At 0.9 of capacity (10 workers, exponential 10 ms) a fixed 5-ms limit sheds what M/M/10
    // with deterministic patience says (0.0639). Controlled delay gives every request at least
    // that patience (5 ms in a standing queue, 100 ms otherwise), and more patience means fewer
    // abandonments (M/M/c+G is monotone in the patience distribution), so it sheds less.
    let codel = ", admission: (codel: (target_ms: 5.0, interval_ms: 100.0))";
    let (fixed, _) = common::mmc_plus_d(10, 900.0, 100.0, 0.005);
    let shed_share = |admission: &str| {
        let b = common::run_batches(&overloaded(0.9, admission), 0, 5.0, 10.0, 20);
        b.estimate(|c, _| c.shed as f64 / c.offered() as f64)
    };
    common::assert_close(
        "fixed 5-ms limit at 0.9 load: shed share",
        shed_share(", admission: (max_queue_wait_ms: 5.0)"),
        fixed,
        0.03,
    );
    let (codel_shed, se) = shed_share(codel);
    assert!(
        codel_shed + common::Z * se < fixed,
        "controlled delay shed {codel_shed:.4} ± {se:.4} at 0.9 load, a fixed 5 ms {fixed:.4}"
    );
    // Under overload shed requests cost nothing, so goodput stays at capacity (AWS Builders'
    // Library, load shedding: at least 0.9 × capacity up to twice the load).
    for load in [1.5, 2.0] {
        let sim = run(&overloaded(load, codel), 60.0);
        let goodput_per_s = source(&sim, 0, 10, 60).goodput as f64 / 50.0;
        assert!(
            goodput_per_s >= 900.0,
            "load {load}×: goodput {goodput_per_s:.0}/s below 0.9 × capacity"
        );
    }
}

#[test]
fn an_in_flight_limit_refuses_as_the_finite_queue_says() {
    // `max_in_flight: K` on an instance of c workers is the M/M/c/K queue: an attempt that
    // finds K requests in the instance is refused. c = 10, K = 15, a = 8 erlangs:
    // P_B = 0.03004 (ground-truths.md), the same as a queue bounded at K − c = 5.
    let s = common::parse(
        r#"(
            version: 1, name: "in flight", duration_s: 1, seed: 19,
            sources: [(name: "clients", target: "server", rate: Constant(8000))],
            services: [(name: "server", workers: 10, service_time: Exponential(mean_ms: 1.0),
                        admission: (max_in_flight: 15))],
        )"#,
    );
    let b = common::run_batches(&s, 0, 5.0, 10.0, 40);
    common::assert_close(
        "M/M/10/15 through max_in_flight: P(refused)",
        b.estimate(|c, _| c.overloaded as f64 / c.offered() as f64),
        0.03004,
        0.03,
    );
}

#[test]
fn shedding_by_queue_time_matches_m_m_1_with_deterministic_patience() {
    // `max_queue_wait_ms: τ` drops at dequeue a request that waited τ or longer: the work it
    // would have added never enters, so the server is M/M/1 with deterministic patience
    // (Barrer 1957; see queueing.rs): P(shed) = ρ(1−ρ)E/(1−ρ²E), E = e^{−(μ−λ)τ}. ρ = 1.2
    // (overloaded, stable through the shedding), τ = 3 ms: P(shed) = 0.2693. And with ten
    // workers at the same load per worker, M/M/10+D (see queueing.rs): 0.1669.
    let (mu, tau_s) = (1000.0f64, 0.003f64);
    for (workers, lambda, p_shed, batch_s) in [
        (1, 1200.0, common::barrer_drop(1200.0, mu, tau_s), 10.0),
        (
            10,
            12_000.0,
            common::mmc_plus_d(10, 12_000.0, mu, tau_s).0,
            5.0,
        ),
    ] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "shed", duration_s: 1, seed: 21,
                sources: [(name: "clients", target: "server", rate: Constant({lambda}))],
                services: [(name: "server", workers: {workers}, service_time: Exponential(mean_ms: 1.0),
                            admission: (max_queue_wait_ms: 3.0))],
            )"#
        ));
        let b = common::run_batches(&s, 0, 5.0, batch_s, 40);
        common::assert_close(
            &format!("M/M/{workers}+D through max_queue_wait: P(shed)"),
            b.estimate(|c, _| c.shed as f64 / c.offered() as f64),
            p_shed,
            0.01,
        );
    }
}

#[test]
fn a_one_token_rate_limit_is_a_dead_time_counter() {
    // A token bucket of one token refilled at r a second admits a request and then refuses
    // everything for exactly 1/r: a non-paralysable dead-time counter, which passes
    // λ/(1 + λ/r) of a Poisson stream of λ (Feller 1948). λ = 300, r = 100: 75/s, 3 in 4
    // throttled; λ = r = 100: half.
    for (lambda, r) in [(300.0f64, 100.0f64), (100.0, 100.0)] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "dead time", duration_s: 1, seed: 23,
                sources: [(name: "clients", target: "server", rate: Constant({lambda}))],
                services: [(name: "server", workers: 1000, service_time: Exponential(mean_ms: 1.0),
                            admission: (rate_limit: (rate_per_s: {r}, burst: 1.0)))],
            )"#
        ));
        let b = common::run_batches(&s, 0, 5.0, 20.0, 40);
        let ratio = lambda / r;
        common::assert_close(
            &format!("dead time λ = {lambda}, r = {r}: share throttled"),
            b.estimate(|c, _| c.throttled as f64 / c.offered() as f64),
            ratio / (1.0 + ratio),
            0.01,
        );
    }
}

/// Blocking probability of M/D/1/K (arrival rate λ, deterministic service 1/μ, at most K in
/// the system), from the embedded chain at departures (Gross & Harris, M/G/1/K): with
/// a_k = e^{−ρ}ρ^k/k! arrivals during a service, the departure-epoch probabilities π solve
/// π_{j+1} = (π_j − π_0·a_j − Σ_{i=1..j} π_i·a_{j−i+1}) / a_0, and P_B = 1 − 1/(π_0 + ρ).
fn md1k_blocking(lambda: f64, mu: f64, k: usize) -> f64 {
    let rho = lambda / mu;
    let a: Vec<f64> = (0..k)
        .scan(1.0f64, |term, n| {
            let v = *term;
            *term *= rho / (n + 1) as f64;
            Some(v * (-rho).exp())
        })
        .collect();
    let mut pi = vec![1.0f64; k];
    for j in 0..k.saturating_sub(1) {
        let inflow: f64 = (1..=j).map(|i| pi[i] * a[j - i + 1]).sum();
        pi[j + 1] = (pi[j] - pi[0] * a[j] - inflow) / a[0];
    }
    let total: f64 = pi.iter().sum();
    1.0 - 1.0 / (pi[0] / total + rho)
}

#[test]
fn a_token_bucket_refuses_as_the_m_d_1_k_queue_blocks() {
    // A bucket of b tokens refilled at r a second is short of tokens by V, which grows by one
    // per admitted request and drains at r: the workload of an M/D/1 queue whose service is
    // 1/r, in which V ≤ b − 1 exactly when fewer than b requests are in it. So a request is
    // throttled exactly when M/D/1/b would block it. b = 10, r = 100: P_B = 0.0508 at λ = 100
    // and 0.1709 at λ = 120. (b = 1 is the dead-time counter above.)
    assert!(
        (md1k_blocking(300.0, 100.0, 1) - 0.75).abs() < 1e-12,
        "K = 1: ρ/(1+ρ)"
    );
    for lambda in [100.0f64, 120.0] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "token bucket", duration_s: 1, seed: 27,
                sources: [(name: "clients", target: "server", rate: Constant({lambda}))],
                services: [(name: "server", workers: 1000, service_time: Exponential(mean_ms: 1.0),
                            admission: (rate_limit: (rate_per_s: 100.0, burst: 10.0)))],
            )"#
        ));
        let b = common::run_batches(&s, 0, 5.0, 50.0, 40);
        common::assert_close(
            &format!("token bucket of 10 at 100/s, λ = {lambda}: share throttled"),
            b.estimate(|c, _| c.throttled as f64 / c.offered() as f64),
            md1k_blocking(lambda, 100.0, 10),
            0.03,
        );
    }
}

#[test]
fn adaptive_lifo_under_backlog_also_keeps_goodput() {
    // Serving newest first while a backlog stands (Facebook's adaptive LIFO) answers most
    // requests before their caller gives up, at any overload.
    let sim = run(&overloaded(1.5, ", admission: (lifo_above: 20)"), 120.0);
    let goodput_per_s = source(&sim, 0, 30, 120).goodput as f64 / 90.0;
    assert!(goodput_per_s >= 900.0, "goodput {goodput_per_s:.0}/s");
}

// ------------------------------------------------------------------- hedging

#[test]
fn hedged_requests_match_the_minimum_of_two_closed_form() {
    // Exponential work (mean m) with no queueing, a hedge after d, a link of L each way: the
    // answer comes at 2L + min(X₁, d + X₂), whose mean is 2L + m(1 − e^(−d/m)) + (m/2)e^(−d/m);
    // a hedge is sent when the first reply is not back by d, for a share e^(−(d − 2L)/m).
    let (m, d) = (10.0f64, 10.0f64);
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "hedge", duration_s: 1, seed: 23,
            sources: [(name: "clients", target: "store", rate: Constant(2000), hedge_after_ms: {d})],
            services: [(name: "store", workers: 100000, service_time: Exponential(mean_ms: {m}))],
        )"#
    ));
    let sim = run(&s, 61.0);
    let c = source(&sim, 0, 1, 61);
    let n = c.succeeded as f64;
    let mean_ms = c.residence_ns as f64 / n / 1e6;
    let link = 1.0;
    let tail = (-d / m).exp();
    let expected = 2.0 * link + m * (1.0 - tail) + m / 2.0 * tail;
    // The latency's standard deviation is below m, so its standard error is below m/√n.
    assert!(
        (mean_ms - expected).abs() < common::Z * m / n.sqrt() + 0.01,
        "mean {mean_ms:.3} ms vs {expected:.3} ms"
    );
    let hedged = c.hedges as f64 / n;
    let share = (-(d - 2.0 * link) / m).exp();
    assert!(
        (hedged - share).abs() < common::Z * se(share, n),
        "hedged share {hedged:.4} vs {share:.4}"
    );
    // Nothing fails and nothing times out: every orphan at the store is a race's loser, which
    // it counts as superseded. A loser is still working when the winner's reply arrives
    // unless it finishes within a link's latency after it. Given a hedge (no reply by d, so
    // X₁ > d − 2L), by memorylessness the replies come at d + Y₁ and d + 2L + X₂ with Y₁, X₂
    // independent Exp(m): Y₁ − X₂ is Laplace(0, m), and the loser is done in time when the
    // replies come within L of each other, |Y₁ − X₂ − 2L| ≤ L: probability
    // ½(e^(−L/m) − e^(−3L/m)) = 0.0820. So superseded ≈ 0.918 × hedges (binomial, 4 SE; plus the window's edges,
    // about rate · share · m ≈ 9). It is no failure of the store: healthy in every interval,
    // though 45% of the requests are raced.
    let store = service(&sim, 0, 1, 61);
    assert_eq!(
        store.orphaned, store.superseded,
        "every orphan is a lost race"
    );
    let in_time = 0.5 * ((-link / m).exp() - (-3.0 * link / m).exp());
    let hedges = c.hedges as f64;
    let expected = hedges * (1.0 - in_time);
    assert!(
        (store.superseded as f64 - expected).abs()
            <= common::Z * (hedges * in_time * (1.0 - in_time)).sqrt() + 30.0,
        "{} superseded copies for {} hedges, expected {expected:.0}",
        store.superseded,
        c.hedges
    );
    for k in 1..61 {
        assert_eq!(
            service_row(&sim, 0, k).health,
            cascade_sim::metrics::Health::Healthy,
            "interval {k}"
        );
    }
}

#[test]
fn a_hedge_recovers_requests_lost_on_the_wire() {
    // Loss p on each leg, deterministic 1 ms work, a hedge at 10 ms (after any reply could be
    // back), a 50 ms timeout, no retries. The first attempt answers with probability
    // a = (1 − p)²; otherwise the hedge is sent (whether the request or the reply was lost)
    // and answers with probability a: success = a + (1 − a)·a.
    let p = 0.3f64;
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "hedged loss", duration_s: 1, seed: 37,
            sources: [(name: "clients", target: "api", rate: Constant(1000), timeout_ms: 50.0, hedge_after_ms: 10.0)],
            services: [(name: "api", workers: 100, service_time: Deterministic(ms: 1.0))],
            faults: [(at_s: 0.0, fault: PacketLoss(from: "clients", to: "api", probability: {p}))],
        )"#
    ));
    let sim = run(&s, 62.0);
    let c = source(&sim, 0, 1, 61);
    let done = (c.succeeded + c.failed_total()) as f64;
    let ok = c.succeeded as f64 / done;
    let a = (1.0 - p) * (1.0 - p);
    let expected = a + (1.0 - a) * a;
    assert!(
        (ok - expected).abs() < common::Z * se(expected, done),
        "success {ok:.4} vs {expected:.4}"
    );
    let hedged = c.hedges as f64 / done;
    assert!(
        (hedged - (1.0 - a)).abs() < common::Z * se(1.0 - a, done),
        "hedged share {hedged:.4} vs {:.4}",
        1.0 - a
    );
}

// ------------------------------------------------------------------- the network

#[test]
fn packet_loss_with_retries_succeeds_as_the_binomial_says() {
    // Each message is lost with p; an attempt needs its request and its reply: (1 − p)².
    // Three attempts: success = 1 − (1 − (1 − p)²)³.
    let p: f64 = 0.2;
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "loss", duration_s: 1, seed: 29,
            sources: [(name: "clients", target: "api", rate: Constant(1000), timeout_ms: 50.0, retry: (max_attempts: 3))],
            services: [(name: "api", workers: 100, service_time: Exponential(mean_ms: 1.0))],
            faults: [(at_s: 0.0, fault: PacketLoss(from: "clients", to: "api", probability: {p}))],
        )"#
    ));
    let sim = run(&s, 62.0);
    let c = source(&sim, 0, 1, 61);
    let done = (c.succeeded + c.failed_total()) as f64;
    let ok = c.succeeded as f64 / done;
    let q = (1.0 - p) * (1.0 - p);
    let expected = 1.0 - (1.0 - q).powi(3);
    assert!(
        (ok - expected).abs() < common::Z * se(expected, done),
        "success {ok:.4} vs {expected:.4}"
    );
}

#[test]
fn retries_past_a_refusing_instance_succeed_as_independent_picks_say() {
    // One of four randomly balanced instances is killed and refuses connections: each attempt
    // picks it with probability 1/4, independently, so A attempts fail together with
    // probability 4^−A, and a request makes 1 + 1/4 + … + 4^−(A−1) attempts on average.
    for attempts in [2i32, 3] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "refused", duration_s: 1, seed: 37,
                sources: [(name: "clients", target: "api", rate: Constant(1000), retry: (max_attempts: {attempts}))],
                services: [(name: "api", instances: 4, lb: Random, workers: 100, service_time: Exponential(mean_ms: 1.0))],
                faults: [(at_s: 0.0, fault: Kill(service: "api", instances: First(1), mode: Refuse))],
            )"#
        ));
        let sim = run(&s, 62.0);
        let c = source(&sim, 0, 1, 61);
        let done = (c.succeeded + c.failed_total()) as f64;
        let failed = c.failed_total() as f64 / done;
        let expected = 0.25f64.powi(attempts);
        assert!(
            (failed - expected).abs() < common::Z * se(expected, done),
            "{attempts} attempts: failed {failed:.5} vs {expected:.5}"
        );
        let per_request = c.offered() as f64 / c.offered_first as f64;
        // Extra attempts X of a request: P(X ≥ i) = 4^−i for i < A, so E[X] = Σ 4^−i and
        // E[X²] = Σ (2i − 1)·4^−i.
        let tail = |i: i32| 0.25f64.powi(i);
        let mean_x: f64 = (1..attempts).map(tail).sum();
        let square_x: f64 = (1..attempts).map(|i| f64::from(2 * i - 1) * tail(i)).sum();
        let var = square_x - mean_x * mean_x;
        let expected_attempts = 1.0 + mean_x;
        assert!(
            (per_request - expected_attempts).abs()
                < common::Z * (var / c.offered_first as f64).sqrt(),
            "{attempts} attempts: {per_request:.4} attempts per request vs {expected_attempts:.4}"
        );
    }
}

/// The first source of `s` in 20 batches of 3 s after 1 s of warm-up.
fn first_source_batches(s: &Scenario) -> common::Batches {
    let sim = common::run_for_batches(s, 1.0, 3.0, 20);
    let h = sim.history();
    common::Batches::of(&h.sources[0], h, 1.0, 3.0, 20)
}

/// Attempts sent per first attempt (a batch statistic).
fn attempts_per_request(c: &NodeCounters, _span_ns: u64) -> f64 {
    c.offered() as f64 / c.offered_first as f64
}

#[test]
fn retry_on_retries_only_the_failures_it_names() {
    // One of two randomly balanced instances refuses connections, the other fails 30% of its
    // requests with an error: each attempt is refused (1/2), fails (0.15) or succeeds (0.35),
    // independently. With 3 attempts, retrying every failure, a request fails with
    // probability 0.65³ and makes 1 + 0.65 + 0.65² attempts; retrying only refusals, an error
    // ends it: it succeeds with probability 0.35·(1 + 1/2 + 1/4) after 1 + 1/2 + 1/4 attempts;
    // retrying only timeouts (there are none), it makes one attempt and succeeds 0.35 of the
    // time.
    for (retry_on, success, attempts) in [
        ("", 1.0 - 0.65f64.powi(3), 1.0 + 0.65 + 0.65 * 0.65),
        (", retry_on: [Refused]", 0.35 * 1.75, 1.75),
        (", retry_on: [Timeout]", 0.35, 1.0),
    ] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "retry on", duration_s: 1, seed: 41,
                sources: [(name: "clients", target: "api", rate: Constant(1000),
                           retry: (max_attempts: 3{retry_on}))],
                services: [(name: "api", instances: 2, lb: Random, workers: 100,
                            service_time: Exponential(mean_ms: 1.0))],
                faults: [
                    (at_s: 0.0, fault: Kill(service: "api", instances: First(1), mode: Refuse)),
                    (at_s: 0.0, fault: Errors(service: "api", probability: 0.3)),
                ],
            )"#
        ));
        let clients = first_source_batches(&s);
        common::assert_close(
            &format!("success{retry_on}"),
            clients.estimate(|c, _| c.succeeded as f64 / c.completed() as f64),
            success,
            0.01,
        );
        common::assert_close(
            &format!("attempts per request{retry_on}"),
            clients.estimate(attempts_per_request),
            attempts,
            0.01,
        );
    }
}

#[test]
fn retries_past_an_isolated_instance_succeed_as_independent_picks_say() {
    // An isolated instance is up but unreachable: an attempt routed to it vanishes and times
    // out. One of four randomly balanced instances isolated, 3 attempts, timeout 20 ms: a
    // request fails when all three picks hit it, 4^−3, after 1 + 1/4 + 1/16 attempts.
    let s = common::parse(
        r#"(
            version: 1, name: "isolated", duration_s: 1, seed: 53,
            sources: [(name: "clients", target: "api", rate: Constant(1000), timeout_ms: 20.0,
                       retry: (max_attempts: 3))],
            services: [(name: "api", instances: 4, lb: Random, workers: 100,
                        service_time: Exponential(mean_ms: 1.0))],
            faults: [(at_s: 0.0, fault: Isolate(service: "api", instances: First(1)))],
        )"#,
    );
    let clients = first_source_batches(&s);
    common::assert_close(
        "failures past an isolated instance",
        clients.estimate(|c, _| c.failed[Outcome::Timeout as usize] as f64 / c.completed() as f64),
        0.25f64.powi(3),
        0.05,
    );
    common::assert_close(
        "attempts per request",
        clients.estimate(attempts_per_request),
        1.0 + 0.25 + 0.0625,
        0.01,
    );
}

#[test]
fn an_isolated_instance_loses_its_own_calls_and_leaves_rotation_until_it_is_back() {
    // Two api instances re-register with a registry every second (timeout 100 ms) and leave
    // the load balancer when that fails. From 10 s to 30 s the first is isolated: its
    // registration is lost, so by 11.1 s it is out of rotation and every request goes to the
    // other (none is lost after that), and the registry hears from one instance a second
    // instead of two. Its first registration after 30 s brings it back.
    let s = common::parse(
        r#"(
            version: 1, name: "isolated member", duration_s: 1, seed: 59,
            sources: [(name: "users", target: "api", rate: Constant(200), timeout_ms: 100.0)],
            services: [
                (name: "api", instances: 2, workers: 50, service_time: Exponential(mean_ms: 5.0),
                 lifecycle: (periodic: [(every_s: 1.0, call: (to: "registry", timeout_ms: 100.0),
                                        disqualify_on_failure: true)])),
                (name: "registry", kind: ControlPlane, workers: 10,
                 service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 10.0, duration_s: 20.0, fault: Isolate(service: "api", instances: First(1)))],
        )"#,
    );
    let sim = run(&s, 40.0);
    assert!(
        source(&sim, 0, 10, 12).failed[Outcome::Timeout as usize] > 0,
        "requests sent to it before it left rotation vanished"
    );
    let users = source(&sim, 0, 12, 30);
    assert_eq!(users.failed_total(), 0, "none lost once it left rotation");
    assert!(users.succeeded > 3000);
    assert_eq!(service_row(&sim, 0, 20).gauges.healthy_instances, 1);
    let registry = service(&sim, 1, 12, 30);
    assert_eq!(
        registry.offered(),
        18,
        "one registration a second, from the other instance"
    );
    assert_eq!(service_row(&sim, 0, 35).gauges.healthy_instances, 2, "back");
    let before = service(&sim, 1, 1, 10);
    assert_eq!(before.offered(), 18, "two a second before");
}

#[test]
fn a_one_way_partition_of_replies_wastes_all_the_work() {
    // Replies cut: the server does every request, the caller hears nothing and times out.
    let s = common::parse(
        r#"(
            version: 1, name: "one way", duration_s: 1, seed: 31,
            sources: [(name: "clients", target: "api", rate: Constant(500), timeout_ms: 100.0)],
            services: [(name: "api", workers: 100, service_time: Exponential(mean_ms: 2.0))],
            faults: [(at_s: 10.0, duration_s: 20.0, fault: OneWayPartition(from: "clients", to: "api", direction: Replies))],
        )"#,
    );
    let sim = run(&s, 40.0);
    let during = source(&sim, 0, 11, 30);
    assert_eq!(during.succeeded, 0, "no reply gets through");
    let api = service(&sim, 0, 11, 30);
    assert!(
        api.succeeded as f64 > 0.99 * api.offered() as f64,
        "the server still works every request"
    );
    let after = source(&sim, 0, 31, 40);
    assert_eq!(after.failed_total(), 0, "healed");
}

/// Two regions: each has its users, an `api` and a `db`; west's `api` also reads east's `db`
/// (the accounts of record) for a share `p_east` of its requests. East's users call
/// `east_entry`; `faults` is the file's faults list.
fn two_regions(p_east: f64, east_entry: &str, faults: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "two regions", duration_s: 1, seed: 43,
            sources: [
                (name: "east-users", target: "{east_entry}", rate: Constant(400), timeout_ms: 1000.0),
                (name: "west-users", target: "west-api", rate: Constant(500), timeout_ms: 1000.0),
            ],
            services: [
                (name: "east-api", workers: 100, service_time: Exponential(mean_ms: 2.0),
                 calls: [(to: "east-db", timeout_ms: 100.0, latency_ms: 1.0)]),
                (name: "east-db", workers: 100, service_time: Exponential(mean_ms: 2.0)),
                (name: "west-api", workers: 100, service_time: Exponential(mean_ms: 2.0),
                 calls: [(to: "west-db", timeout_ms: 100.0, latency_ms: 1.0),
                         (to: "east-db", probability: {p_east}, timeout_ms: 100.0, latency_ms: 30.0)]),
                (name: "west-db", workers: 100, service_time: Exponential(mean_ms: 2.0)),
            ],
            faults: [{faults}],
        )"#
    ))
}

#[test]
fn a_group_partition_cuts_the_calls_between_its_sides_and_no_others() {
    // West is cut off from east from 10 s to 30 s. Only west's reads of east's `db` cross the
    // partition: east's users see nothing, and a west request fails exactly when it reads
    // east (its call times out; one attempt, no fallback), so west's success ratio is
    // 1 − p_east, a binomial share (about 9,500 requests in the window: se 0.0047).
    let p_east = 0.3;
    let s = two_regions(
        p_east,
        "east-api",
        r#"(at_s: 10.0, duration_s: 20.0, fault: GroupPartition(group: ["west-users", "west-api", "west-db"]))"#,
    );
    let sim = run(&s, 40.0);
    let east = source(&sim, 0, 1, 40);
    assert_eq!(east.failed_total(), 0, "east never crosses the partition");
    assert!(east.succeeded > 15_000);
    let west = source(&sim, 1, 11, 30);
    assert_success_ratio("west, 1 − p", &west, 1.0 - p_east);
    assert_eq!(
        west.failed_total(),
        west.failed[Outcome::DependencyFailed as usize],
        "every failure is a failed call to east (its timeout)"
    );
    let west_db = service(&sim, 3, 11, 30);
    assert_eq!(west_db.failed_total(), 0, "west still works within itself");
    assert_eq!(source(&sim, 1, 31, 40).failed_total(), 0, "healed");
    assert_eq!(source(&sim, 1, 1, 10).failed_total(), 0, "before");
}

#[test]
fn a_group_partition_is_a_partition_of_each_link_it_crosses() {
    // The same run, to the byte, as the link partitions of every call between the sides:
    // west → east (`west-api` → `east-db`) and, once east's users also call west, east → west.
    let outputs = |faults: &str| {
        let s = two_regions(0.3, "west-api", faults);
        let mut sim = Simulation::new(&s);
        sim.run_until_s(25.0);
        let h = sim.history();
        format!("{:?} {:?} {:?}", h.services, h.sources, h.edges)
    };
    let window = "at_s: 5.0, duration_s: 10.0";
    let links = outputs(&format!(
        r#"({window}, fault: Partition(from: "west-api", to: "east-db")),
           ({window}, fault: Partition(from: "east-users", to: "west-api"))"#
    ));
    let group = outputs(&format!(
        r#"({window}, fault: GroupPartition(group: ["east-users", "east-api", "east-db"]))"#
    ));
    let sides = outputs(&format!(
        r#"({window}, fault: GroupPartition(group: ["west-api"], others: ["east-users", "east-db"]))"#
    ));
    let untouched = outputs("");
    assert_ne!(links, untouched, "the partition bites");
    assert!(links == group, "a group against the rest");
    assert!(links == sides, "two named sides");
}

// ------------------------------------------------------------------- faults on instances

#[test]
fn a_config_push_to_half_the_instances_fails_half_the_requests_then_rolls_back() {
    // Round robin over 4 instances; the push reaches 2 of them, one at 10 s and one at 15 s
    // (propagation 10 s over 2 instances: steps at 0 and 5 s), and is rolled back at 40 s.
    let s = common::parse(
        r#"(
            version: 1, name: "push", duration_s: 1, seed: 37,
            sources: [(name: "clients", target: "api", rate: Constant(400))],
            services: [(name: "api", instances: 4, workers: 50, service_time: Exponential(mean_ms: 5.0))],
            faults: [(at_s: 10.0, duration_s: 30.0, fault: ConfigPush(service: "api", share: 0.5, propagation_s: 10.0, change: Errors(1.0)))],
        )"#,
    );
    let sim = run(&s, 50.0);
    let share = |from, to| {
        let c = source(&sim, 0, from, to);
        c.failed_total() as f64 / (c.succeeded + c.failed_total()) as f64
    };
    assert_eq!(share(1, 10), 0.0);
    assert!(
        (share(11, 15) - 0.25).abs() < 0.01,
        "one of four instances: {}",
        share(11, 15)
    );
    assert!(
        (share(16, 40) - 0.5).abs() < 0.01,
        "two of four instances: {}",
        share(16, 40)
    );
    assert_eq!(share(41, 50), 0.0, "rolled back");
}

#[test]
fn a_throttle_fault_answers_429_above_its_rate() {
    let s = common::parse(
        r#"(
            version: 1, name: "throttle", duration_s: 1, seed: 41,
            sources: [(name: "clients", target: "provider", rate: Constant(300))],
            services: [(name: "provider", instances: 2, workers: 50, service_time: Exponential(mean_ms: 2.0))],
            faults: [(at_s: 10.0, duration_s: 60.0, fault: Throttle(service: "provider", rate_per_s: 50.0))],
        )"#,
    );
    let sim = run(&s, 80.0);
    let p = service(&sim, 0, 11, 70);
    // Two instances at 50/s each: 100 of 300 requests a second get through (demand is three
    // times the rate, so the bucket's tenth of a second of burst is never wasted).
    let served_per_s = p.succeeded as f64 / 59.0;
    assert!(
        (served_per_s - 100.0).abs() < 0.5,
        "served {served_per_s}/s"
    );
    assert_eq!(p.throttled + p.succeeded, p.offered());
    assert_eq!(service(&sim, 0, 71, 80).throttled, 0);
}

#[test]
fn a_retry_after_holds_the_retries_until_the_throttle_is_gone() {
    // 200 requests/s, two attempts each, no backoff, against a provider that a `Throttle`
    // fault cuts to nothing (one token, then 0.001/s) for 2 s. A throttled attempt's reply
    // comes 2 ms after it left. Without a Retry-After the retry goes at once, is throttled
    // too, and the request fails: about 2 × 400 attempts throttled and 400 requests lost
    // (Poisson count of the 2 s, 4√400 = 80). With `retry_after_ms: 3000` every retry waits
    // 3 s and lands after the fault, so none is throttled twice and no request fails; each
    // throttled attempt is retried exactly once, 3 s later.
    for (retry_after, lost) in [("", true), ("admission: (retry_after_ms: 3000.0),", false)] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "retry-after", duration_s: 1, seed: 53,
                sources: [(name: "clients", target: "provider", rate: Constant(200), timeout_ms: 5000.0,
                           retry: (max_attempts: 2))],
                services: [(name: "provider", workers: 100, service_time: Deterministic(ms: 1.0), {retry_after})],
                faults: [(at_s: 10.0, duration_s: 2.0, fault: Throttle(service: "provider", rate_per_s: 0.001))],
            )"#
        ));
        let sim = run(&s, 20.0);
        let (p, c) = (service(&sim, 0, 0, 20), source(&sim, 0, 0, 20));
        let failed = c.failed_total() as f64;
        if lost {
            assert!(
                (failed - 400.0).abs() <= 80.0,
                "{failed} requests lost without a Retry-After"
            );
            assert!((p.throttled as f64 - 2.0 * failed).abs() <= 2.0);
        } else {
            assert_eq!(c.failed_total(), 0, "every retry came after the fault");
            assert_eq!(
                c.offered_retry, p.throttled,
                "each throttled attempt retried once"
            );
            assert!((p.throttled as f64 - 400.0).abs() <= 80.0);
            // The retries arrive 3.002 s after the throttled attempts: all in [13.002, 15.002).
            assert_eq!(service(&sim, 0, 13, 16).offered_retry, p.throttled);
            assert_eq!(service(&sim, 0, 0, 13).offered_retry, 0);
        }
    }
}

#[test]
fn dont_retry_answers_stop_the_retries_at_every_layer() {
    // Users (500/s, 3 attempts) → api (never queues: 200 workers, 1 ms) → db, one worker and
    // no queue: an Erlang loss system. api's calls to db are Poisson (api is an M/M/∞ station,
    // Burke), so a first attempt finds db busy with probability B = a/(1 + a) = 1/3 at
    // a = 0.5 (Erlang B, one server). With `dont_retry` db's `rejected` answers say "don't
    // retry": api makes no retry (3 attempts allowed), its request fails and says the same to
    // the users, who make no retry either. So db sees first attempts only, and the users'
    // success ratio is 1 − B = 2/3 (binomial: about 15,000 requests, se 0.0038). Without it
    // both layers retry.
    for dont_retry in [true, false] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "don't retry", duration_s: 1, seed: 59,
                sources: [(name: "users", target: "api", rate: Constant(500), timeout_ms: 5000.0,
                           retry: (max_attempts: 3))],
                services: [
                    (name: "api", workers: 200, service_time: Exponential(mean_ms: 1.0),
                     calls: [(to: "db", timeout_ms: 1000.0, retry: (max_attempts: 3))]),
                    (name: "db", workers: 1, queue: (capacity: 0), service_time: Exponential(mean_ms: 1.0),
                     admission: (dont_retry: {dont_retry})),
                ],
            )"#
        ));
        let sim = run(&s, 32.0);
        let (users, api, db) = (
            source(&sim, 0, 2, 32),
            service(&sim, 0, 2, 32),
            service(&sim, 1, 2, 32),
        );
        if dont_retry {
            assert_eq!(
                db.offered_retry, 0,
                "api never retries a don't-retry answer"
            );
            assert_eq!(api.offered_retry, 0, "nor do the users, told in turn");
            assert_eq!(users.offered_retry, 0);
            assert_success_ratio("users, 1 − B", &users, 2.0 / 3.0);
        } else {
            assert!(
                db.offered_retry > 1000,
                "{} retries at db",
                db.offered_retry
            );
            assert!(
                api.offered_retry > 100,
                "{} retries at api",
                api.offered_retry
            );
        }
    }
}

#[test]
fn a_dont_retry_answer_passes_up_out_of_a_parallel_fan_out() {
    // The same loss server behind a parallel fan-out: api calls db and a roomy `profile`
    // service at once and needs both. A request fails exactly when db turns its only attempt
    // away (B = 1/3), and that failure says "don't retry" to the users as a sequential one does.
    let s = common::parse(
        r#"(
            version: 1, name: "don't retry, fanned out", duration_s: 1, seed: 61,
            sources: [(name: "users", target: "api", rate: Constant(500), timeout_ms: 5000.0,
                       retry: (max_attempts: 3))],
            services: [
                (name: "api", workers: 200, service_time: Exponential(mean_ms: 1.0), fan_out: Parallel,
                 calls: [(to: "db", timeout_ms: 1000.0, retry: (max_attempts: 3)),
                         (to: "profile", timeout_ms: 1000.0)]),
                (name: "db", workers: 1, queue: (capacity: 0), service_time: Exponential(mean_ms: 1.0),
                 admission: (dont_retry: true)),
                (name: "profile", workers: 200, service_time: Exponential(mean_ms: 1.0)),
            ],
        )"#,
    );
    let sim = run(&s, 32.0);
    let (users, api, db) = (
        source(&sim, 0, 2, 32),
        service(&sim, 0, 2, 32),
        service(&sim, 1, 2, 32),
    );
    assert_eq!(
        db.offered_retry + api.offered_retry + users.offered_retry,
        0
    );
    assert_success_ratio("users, 1 − B", &users, 2.0 / 3.0);
}

// ------------------------------------------------------------------- caches

/// Clients at `rate`/s → a cache (hit ratio 0.9 when warm, `keys` keys) → a database of
/// capacity B = 2000/s (20 workers × 10 ms, unbounded queue). A fill must come back within
/// T = 200 ms. At 30 s the cache is flushed; with `brownout`, the database also runs ten times
/// slower from 30 to 40 s (so the refill race is lost and its queue is long when it recovers).
fn cache_scenario(rate: f64, keys: u32, coalescing: bool, brownout: bool, extra: &str) -> Scenario {
    let brownout = if brownout {
        r#"(at_s: 30.0, duration_s: 10.0, fault: Slow(service: "db", factor: 10.0)),"#
    } else {
        ""
    };
    cache_in_front(rate, keys, coalescing, ("db", ""), brownout, extra)
}

/// The cache (10% uncacheable, flushed at 30 s) in front of a database of B = 2000/s. Its
/// backing call goes to `backing.0`; `backing.1` adds services between them; `faults` are
/// added to the flush.
fn cache_in_front(
    rate: f64,
    keys: u32,
    coalescing: bool,
    (backing, between): (&str, &str),
    faults: &str,
    extra: &str,
) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "cache", duration_s: 1, seed: 43,
            sources: [(name: "clients", target: "cache", rate: Constant({rate}), timeout_ms: 1000.0)],
            services: [
                (name: "cache", kind: Cache, workers: 100000, service_time: Deterministic(ms: 0.2),
                 cache: (backing: (to: "{backing}", timeout_ms: 200.0), max_hit_ratio: 0.9, keys: {keys}, coalescing: {coalescing})),
                {between}
                (name: "db", kind: Database, workers: 20, service_time: Deterministic(ms: 10.0)),
            ],
            faults: [(at_s: 30.0, fault: CacheFlush(service: "cache")), {faults}],
            {extra}
        )"#
    ))
}

fn warmth(sim: &Simulation, k: u32) -> f64 {
    service_row(sim, 0, k).gauges.cache_warmth
}

fn success(sim: &Simulation, from: u32, to: u32) -> f64 {
    let c = source(sim, 0, from, to);
    c.goodput as f64 / c.offered_first as f64
}

#[test]
fn a_ttl_cache_hits_as_its_renewal_cycle_says() {
    // Each key is a renewal process: a miss starts a fill (coalesced: later misses wait for
    // it), the fill lands D later and the key stays cached for the TTL T, and the first
    // request after that misses again. With Poisson requests of λ_k per key, a cycle lasts
    // E[D] + T + 1/λ_k, so the share of time a key is cached (the warmth Poisson requests
    // see) is T / (1/λ_k + E[D] + T), and each key makes one fill per cycle. Here 10,000
    // requests/s, 90% over 1,000 uniform keys (λ_k = 9/s), T = 0.2 s, D = 1 ms each way + an
    // exponential 1 ms at an ample database (E[D] = 3 ms): warmth 0.6367; fills reaching the
    // database 1,000/s (the uncacheable 10%) + 1,000 keys / 0.3141 s = 4,183.6/s.
    let (lambda_k, ttl_s, fill_s, keys) = (9.0f64, 0.2f64, 0.003f64, 1000.0f64);
    let s = common::parse(
        r#"(
            version: 1, name: "ttl cache", duration_s: 1, seed: 47,
            sources: [(name: "clients", target: "cache", rate: Constant(10000))],
            services: [
                (name: "cache", kind: Cache, workers: 100000, service_time: Deterministic(ms: 0.1),
                 cache: (backing: (to: "db"), max_hit_ratio: 0.9, keys: 1000, ttl_s: 0.2, coalescing: true)),
                (name: "db", kind: Database, workers: 100000, service_time: Exponential(mean_ms: 1.0)),
            ],
        )"#,
    );
    let cycle_s = 1.0 / lambda_k + fill_s + ttl_s;
    let b = common::run_batches(&s, 1, 5.0, 10.0, 40);
    common::assert_close(
        "fills reaching the database per second",
        b.estimate(|c, span| c.offered() as f64 / (span as f64 / 1e9)),
        1000.0 + keys / cycle_s,
        0.01,
    );
    let sim = run(&s, 405.0);
    let warmth: Vec<f64> = (5..405).map(|k| warmth(&sim, k)).collect();
    common::assert_close("warmth", common::mean_se(&warmth), ttl_s / cycle_s, 0.01);
}

#[test]
fn a_failed_fill_that_degrades_caches_nothing() {
    // The database fails every request for the first 20 s and the cache is flushed at 1 s;
    // the cache's backing call degrades (the request is served without the value). Nothing
    // may be cached while no fill succeeds — warmth stays exactly 0 from the flush on —
    // though every client request succeeds (degraded); once the database answers, the cache
    // warms as usual.
    for coalescing in [false, true] {
        let s = common::parse(&format!(
            r#"(
                version: 1, name: "degraded fills", duration_s: 1, seed: 71,
                sources: [(name: "clients", target: "cache", rate: Constant(1000), timeout_ms: 1000.0)],
                services: [
                    (name: "cache", kind: Cache, workers: 100000, service_time: Deterministic(ms: 0.2),
                     cache: (backing: (to: "db", timeout_ms: 200.0, fallback: Degrade), max_hit_ratio: 0.9,
                             keys: 200, coalescing: {coalescing})),
                    (name: "db", kind: Database, workers: 20, service_time: Deterministic(ms: 10.0)),
                ],
                faults: [
                    (at_s: 0.0, duration_s: 20.0, fault: Errors(service: "db", probability: 1.0)),
                    (at_s: 1.0, fault: CacheFlush(service: "cache")),
                ],
            )"#
        ));
        let sim = run(&s, 60.0);
        for k in [5, 10, 19] {
            assert_eq!(
                warmth(&sim, k),
                0.0,
                "coalescing {coalescing}: warmth at {k} s"
            );
        }
        let served = success(&sim, 2, 19);
        assert!(served > 0.999, "coalescing {coalescing}: {served}");
        assert!(
            warmth(&sim, 59) > 0.99,
            "coalescing {coalescing}: warm again"
        );
    }
}

#[test]
fn a_cache_recovers_from_a_flush_when_the_backend_can_take_all_the_load() {
    // λ = 1800/s ≤ B: even cold (and after a brownout), the database's queue drains, fills
    // succeed and the cache warms again.
    for brownout in [false, true] {
        let sim = run(&cache_scenario(1800.0, 200, false, brownout, ""), 180.0);
        assert!(warmth(&sim, 29) > 0.99, "warm before the flush");
        assert!(
            warmth(&sim, 179) > 0.99,
            "brownout {brownout}: warm again, {}",
            warmth(&sim, 179)
        );
        assert!(
            success(&sim, 150, 180) > 0.99,
            "brownout {brownout}: {}",
            success(&sim, 150, 180)
        );
    }
}

#[test]
fn between_b_and_b_over_one_minus_h_a_flush_locks_the_cache_cold() {
    // B < λ = 3000/s ≤ B/(1 − h) = 20000/s: warm, misses are 300/s and the database idles;
    // cold, all 3000/s reach it and its queue grows without bound. After the flush the
    // database's queue stays below (T − s)·B = 380 requests for t* = 380/(λ − B) = 0.38 s;
    // fills started later come back too late. With 20,000 keys only 1 − e^(−λ·h·t*/keys) ≈ 5%
    // are filled by then: misses stay near 2900/s > B and the cache never warms.
    let sim = run(&cache_scenario(3000.0, 20_000, false, false, ""), 120.0);
    assert!(success(&sim, 10, 30) > 0.99, "stable while warm");
    assert!(
        warmth(&sim, 119) < 0.1,
        "locked cold: warmth {}",
        warmth(&sim, 119)
    );
    // The verdict names what keeps it down.
    let verdict = cascade_sim::summary::current_verdict(sim.world(), false).expect("a verdict");
    assert_eq!(verdict.kind, cascade_sim::scenario::VerdictKind::Metastable);
    assert!(
        verdict
            .sustained_by
            .iter()
            .any(|e| e.starts_with("a cold cache at cache")),
        "{:?}",
        verdict.sustained_by
    );
    assert!(
        success(&sim, 100, 120) < 0.2,
        "and the clients see it: {}",
        success(&sim, 100, 120)
    );
    // With 200 keys the same race is won (all keys are asked for within 0.1 s) ...
    let sim = run(&cache_scenario(3000.0, 200, false, false, ""), 120.0);
    assert!(
        warmth(&sim, 119) > 0.99,
        "200 keys refill before the queue builds"
    );
    // ... but not after a brownout of the database: then 3000/s keep its queue growing.
    // (The keys filled in its first 100 ms, while fills still came back in time, stay; no more.)
    let sim = run(&cache_scenario(3000.0, 200, false, true, ""), 180.0);
    assert!(
        warmth(&sim, 179) < 0.5,
        "locked cold after the brownout: {}",
        warmth(&sim, 179)
    );
    assert!(
        warmth(&sim, 179) <= warmth(&sim, 31) + 0.01,
        "no key filled after the brownout began"
    );
    assert!(success(&sim, 150, 180) < 0.2);
}

/// The cache scenario with a miss that costs `k` database reads: the backing call goes to
/// `reader`, which sends them in parallel (each with the fill's deadline, less a hop).
fn scatter_on_miss_scenario(rate: f64, k: u32) -> Scenario {
    let reader = format!(
        r#"(name: "reader", workers: 100000, service_time: Deterministic(ms: 0.1),
            calls: [(to: "db", count: {k}, timeout_ms: 190.0)], fan_out: Parallel),"#
    );
    cache_in_front(rate, 20_000, false, ("reader", &reader), "", "")
}

#[test]
fn a_miss_that_fans_out_k_reads_moves_the_cold_lock_down_by_k() {
    // incidents.md, invariant 4 (Slack 2022): a miss that costs k backend calls makes the
    // backend load k × misses, so the cold cache locks for λ > B/k instead of λ > B. B = 2000/s
    // here. λ = 1000/s: one read per miss is 1000/s cold, which the database serves, and the
    // cache warms again; three reads are 3000/s, the same overload (and the same refill race,
    // lost with 20,000 keys) as 3000/s with one read, and it locks cold. λ = 600/s with three
    // reads is 1800/s ≤ B: it warms again.
    //
    // Warming again takes a while: every fill succeeds, so a key is warm once it has been
    // asked for since the flush; with cacheable requests at λh = 0.9λ spread uniformly over
    // 20,000 keys, the warm share t s after the flush is 1 − e^(−0.9λt / 20,000) (0.983 at
    // λ = 1000/s and 0.912 at 600/s, 90 s after). Its standard deviation, from the binomial
    // count of cold keys, is under 0.0021; the check allows 0.008.
    let keys = 20_000.0;
    for (rate, k, locks) in [(1000.0, 1, false), (1000.0, 3, true), (600.0, 3, false)] {
        let sim = run(&scatter_on_miss_scenario(rate, k), 120.0);
        let case = format!("λ = {rate}/s, {k} reads per miss");
        assert!(success(&sim, 10, 30) > 0.99, "{case}: stable while warm");
        // The gauge of row 119 is read at its close, 90 s after the flush.
        let warm = warmth(&sim, 119);
        if locks {
            assert!(warm < 0.1, "{case}: locked cold, warmth {warm}");
            assert!(
                success(&sim, 100, 120) < 0.2,
                "{case}: {}",
                success(&sim, 100, 120)
            );
        } else {
            let expected = 1.0 - (-0.9 * rate * 90.0 / keys).exp();
            assert!(
                (warm - expected).abs() < 0.008,
                "{case}: warmth {warm}, refilling as 1 − e^(−λht/keys) = {expected}"
            );
            assert!(
                success(&sim, 100, 120) > 0.99,
                "{case}: {}",
                success(&sim, 100, 120)
            );
        }
    }
}

#[test]
fn coalescing_fills_or_a_staged_ramp_avoid_the_cold_lock() {
    // Single-flight: each cold key has one fill in flight, renewed at most once per timeout,
    // so the database sees at most 300/s uncacheable misses + keys/T = 1000/s fills < B: its
    // queue drains, fills come back in time and the cache warms.
    let sim = run(&cache_scenario(3000.0, 200, true, true, ""), 180.0);
    assert!(
        warmth(&sim, 179) > 0.99,
        "coalescing: warmth {}",
        warmth(&sim, 179)
    );
    assert!(success(&sim, 150, 180) > 0.99);
    // A staged ramp: the operator admits 40% (1200/s < B) from the brownout's end until the
    // cache is warm, then everyone.
    let staged = r#"operator: [
        (when: At(40.0), action: ShedLoad(source: "clients", keep: 0.4)),
        (when: At(120.0), action: ShedLoad(source: "clients", keep: 1.0)),
    ],"#;
    let sim = run(&cache_scenario(3000.0, 200, false, true, staged), 180.0);
    assert!(
        warmth(&sim, 119) > 0.99,
        "warm by the end of the ramp: {}",
        warmth(&sim, 119)
    );
    assert!(
        warmth(&sim, 179) > 0.99,
        "and stays warm at full load: {}",
        warmth(&sim, 179)
    );
    assert!(success(&sim, 150, 180) > 0.99);
}

// ------------------------------------------------------------------- health checks

/// Four instances of 10 workers × 10 ms (capacity 4000/s), each with a queue of 200, offered
/// 5000/s: overloaded, each instance's queue stands full (0.2 s of wait).
fn health_scenario(health: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "health", duration_s: 1, seed: 47,
            sources: [(name: "clients", target: "api", rate: Constant(5000), timeout_ms: 2000.0)],
            services: [(name: "api", instances: 4, workers: 10, queue: (capacity: 200),
                        service_time: Exponential(mean_ms: 10.0){health})],
        )"#
    ))
}

#[test]
fn health_checks_that_see_queueing_delay_turn_overload_into_a_death_spiral() {
    // Without health checks an overloaded service still serves its capacity.
    let plain = run(&health_scenario(""), 120.0);
    let served = |sim: &Simulation| source(sim, 0, 30, 120).goodput as f64 / 90.0;
    assert!(
        served(&plain) > 0.95 * 4000.0,
        "no health checks: {}/s",
        served(&plain)
    );
    // Probes that wait in the queue (0.2 s) time out (0.1 s): instances are ejected, the rest
    // take their load and fail too; the service spends most of its time with too few
    // instances.
    let checks = ", health_check: (interval_s: 1.0, timeout_ms: 100.0, unhealthy_after: 2, healthy_after: 2, through_queue: true)";
    let spiral = run(&health_scenario(checks), 120.0);
    assert!(
        served(&spiral) < 0.6 * 4000.0,
        "death spiral: {}/s",
        served(&spiral)
    );
    // A 50% panic threshold: with fewer than half the instances healthy the balancer routes to
    // all of them, and the service serves its capacity again.
    let panic = run(
        &health_scenario(&format!("{checks}, panic_threshold: 0.5")),
        120.0,
    );
    assert!(
        served(&panic) > 0.9 * 4000.0,
        "panic threshold: {}/s",
        served(&panic)
    );
}

#[test]
fn a_spiral_that_outlasts_its_trigger_is_named_as_ejected_capacity() {
    // health-check-death-spiral-locked.ron: 95% load, the spiral goes on after the spike. The
    // verdict names the ejected capacity with the share of live instances out of rotation,
    // averaged over the final 30-s window, which the rows give independently.
    let scenario = common::shipped("mechanisms/health-check-death-spiral-locked.ron");
    let sim = run(&scenario, scenario.duration_s);
    let verdict = cascade_sim::summary::current_verdict(sim.world(), false).expect("a verdict");
    assert_eq!(verdict.kind, cascade_sim::scenario::VerdictKind::Metastable);
    let end = sim.history().intervals();
    let shares: Vec<f64> = (end - 30..end)
        .map(|k| {
            let row = service_row(&sim, 0, k);
            f64::from(row.live_instances - row.gauges.healthy_instances.min(row.live_instances))
                / f64::from(row.live_instances)
        })
        .collect();
    let mean = shares.iter().sum::<f64>() / shares.len() as f64;
    assert!(mean >= 0.25, "out of rotation on average: {mean}");
    let named = format!(
        "ejected capacity at api ({:.0}% of its live instances out of rotation on average)",
        mean * 100.0
    );
    assert!(
        verdict.sustained_by.contains(&named),
        "{named:?} in {:?}",
        verdict.sustained_by
    );
}

#[test]
fn health_checks_that_only_see_the_process_do_not_spiral() {
    let checks = ", health_check: (interval_s: 1.0, timeout_ms: 100.0, unhealthy_after: 2, healthy_after: 2)";
    let sim = run(&health_scenario(checks), 120.0);
    let served = source(&sim, 0, 30, 120).goodput as f64 / 90.0;
    assert!(served > 0.95 * 4000.0, "{served}/s");
}

#[test]
fn health_checks_eject_a_killed_instance_after_unhealthy_after_probes() {
    // One of four instances is killed at 20 s; probes every second, ejected after 3 failures:
    // between 20 and 23 s a quarter of requests are refused, then none.
    let s = common::parse(
        r#"(
            version: 1, name: "eject", duration_s: 1, seed: 53, metrics_interval_s: 0.5,
            sources: [(name: "clients", target: "api", rate: Constant(1000))],
            services: [(name: "api", instances: 4, workers: 20, service_time: Exponential(mean_ms: 5.0),
                        health_check: (interval_s: 1.0, timeout_ms: 100.0, unhealthy_after: 3, healthy_after: 2))],
            faults: [(at_s: 20.0, duration_s: 20.0, fault: Kill(service: "api", instances: First(1)))],
        )"#,
    );
    let sim = run(&s, 60.0);
    let refused = |from_s: f64, to_s: f64| {
        let c = service(&sim, 0, (from_s * 2.0) as u32, (to_s * 2.0) as u32);
        c.refused as f64 / c.offered() as f64
    };
    assert!(
        (refused(20.0, 22.0) - 0.25).abs() < 0.05,
        "before ejection: {}",
        refused(20.0, 22.0)
    );
    assert_eq!(
        refused(24.0, 40.0),
        0.0,
        "ejected after three failed probes"
    );
    assert_eq!(service_row(&sim, 0, 60).gauges.healthy_instances, 3);
    // Back at 40 s: healthy again after two passing probes.
    assert_eq!(service_row(&sim, 0, 90).gauges.healthy_instances, 4);
}

/// Clients at 1000/s (`client` extra fields of the source) → `api`: 4 instances of 20
/// workers, 5 ms, round robin, with `outlier` (extra fields of the service) and one `fault`.
fn four_instances(client: &str, outlier: &str, fault: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "outlier", duration_s: 1, seed: 59,
            sources: [(name: "clients", target: "api", rate: Constant(1000){client})],
            services: [(name: "api", instances: 4, workers: 20, service_time: Exponential(mean_ms: 5.0){outlier})],
            faults: [{fault}],
        )"#
    ))
}

#[test]
fn outlier_ejection_removes_the_instance_that_fails() {
    // One of four instances fails every request. Round robin sends it a quarter of the load;
    // ejected after 20 requests with ≥ 50% errors for 30 s at a time, it sees almost none.
    let make = |outlier: &str| {
        four_instances(
            "",
            outlier,
            r#"(at_s: 10.0, fault: Errors(service: "api", instances: First(1), probability: 1.0))"#,
        )
    };
    let errors = |sim: &Simulation| {
        let c = source(sim, 0, 11, 100);
        c.failed_total() as f64 / (c.succeeded + c.failed_total()) as f64
    };
    let plain = run(&make(""), 100.0);
    assert!((errors(&plain) - 0.25).abs() < 0.01, "{}", errors(&plain));
    // By error share over a 10 s window: the instance's window holds 10 s of successes when it
    // starts failing, so the share reaches 50% after ~5 s (± one 1 s bucket): ~1250 failures
    // at 250/s. Back after 30 s with a fresh window, it is ejected again after 20 failures.
    let by_ratio = run(
        &make(
            ", outlier_ejection: (error_ratio: 0.5, window_s: 10.0, min_requests: 20, eject_s: 30.0, max_ejected: 0.5)",
        ),
        100.0,
    );
    let failed = source(&by_ratio, 0, 11, 100).failed_total() as f64;
    assert!(
        (failed - (1250.0 + 2.0 * 20.0)).abs() < 300.0,
        "{failed} failed requests"
    );
    // Envoy's consecutive-errors rule: 5 failures in a row eject it, each time.
    let consecutive = run(
        &make(", outlier_ejection: (consecutive_errors: 5, eject_s: 30.0, max_ejected: 0.5)"),
        100.0,
    );
    let failed = source(&consecutive, 0, 11, 100).failed_total();
    assert!(failed <= 3 * 5, "{failed} failed requests");
}

/// [`four_instances`] with the first instance killed (`mode`) from 10 s to 100 s: the share of
/// requests that fail from 11 s to 100 s without outlier ejection, and the requests that fail
/// in the whole run with Envoy's consecutive rule (5 errors in a row, 30 s ejections).
fn killed_instance(client: &str, mode: &str) -> (f64, u64) {
    let fault = format!(
        r#"(at_s: 10.0, duration_s: 90.0, fault: Kill(service: "api", instances: First(1), mode: {mode}))"#
    );
    let plain = run(&four_instances(client, "", &fault), 110.0);
    let c = source(&plain, 0, 11, 100);
    let share = c.failed_total() as f64 / (c.succeeded + c.failed_total()) as f64;
    let outlier = ", outlier_ejection: (consecutive_errors: 5, eject_s: 30.0, max_ejected: 0.5)";
    let ejecting = run(&four_instances(client, outlier, &fault), 110.0);
    (share, source(&ejecting, 0, 0, 110).failed_total())
}

#[test]
fn outlier_ejection_finds_an_instance_that_refuses_connections() {
    // One of four instances is killed (refusing connections) from 10 s to 100 s. Without
    // ejection round robin sends it a quarter of the requests, all refused. With Envoy's
    // consecutive rule (5 errors, 30 s ejections) it costs 5 refusals per ejection: at 10 s,
    // 40 s and 70 s, 15 in all, plus the requests it held when it died (about 1000/4 × 5 ms ≈
    // 1.25 on average; 10 covers the Poisson tail to 1 in 10^6).
    let (share, failed) = killed_instance("", "Refuse");
    assert!((share - 0.25).abs() < 0.01, "{share}");
    assert!(failed <= 3 * 5 + 10, "{failed} failed requests");
    assert!(
        failed >= 3 * 5,
        "{failed} failed requests: ejected without 5 refusals each time"
    );
}

#[test]
fn outlier_ejection_finds_a_blackholed_instance_through_timeouts() {
    // One of four instances blackholes from 10 s to 100 s; clients time out after 100 ms.
    // Without ejection a quarter of the requests time out. With 5 errors in a row ejecting
    // for 30 s, the 5th timeout comes 100 ms after the 5th request was sent (~16 ms after the
    // 1st at 250/s), so every request round robin sends it in those ~116 ms fails: about
    // 1 + 250 × 0.116 ≈ 30 per ejection, at 10 s, 40 s and 70 s, about 90 in all. Each count
    // is roughly Poisson (sd ≈ 5.5, ≈ 9.5 for the three), plus the one or two requests it held
    // when it died: ± 30 is over three standard deviations.
    let (share, failed) = killed_instance(", timeout_ms: 100.0", "Blackhole");
    assert!((share - 0.25).abs() < 0.01, "{share}");
    let failed = failed as f64;
    assert!((failed - 90.0).abs() < 30.0, "{failed} failed requests");
}

// ------------------------------------------------------------------- autoscaling and cores

/// An API (8 instances, 20 workers, 4 cores, 5 ms of CPU a request) calling a database
/// (10 ms). At 60 s the database slows by 200 ms: every worker waits on it, the CPUs idle.
/// Targets are set just above the steady state (CPU 0.31, workers 0.21) so that 8 instances
/// is where each autoscaler starts from and stays before the fault.
fn autoscale_scenario(metric: &str, target: f64) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "autoscale", duration_s: 1, seed: 61,
            sources: [(name: "clients", target: "api", rate: Constant(2000), timeout_ms: 2000.0)],
            services: [
                (name: "api", instances: 8, workers: 20, cores: 4, service_time: Deterministic(ms: 5.0),
                 calls: [(to: "db", timeout_ms: 1000.0)],
                 autoscale: (metric: {metric}, target: {target}, period_s: 10.0, cooldown_s: 20.0, provision_delay_s: 5.0,
                             min: 2, max: 40)),
                (name: "db", workers: 10000, service_time: Deterministic(ms: 10.0)),
            ],
            faults: [(at_s: 60.0, duration_s: 120.0, fault: Latency(service: "db", added_ms: 200.0))],
        )"#
    ))
}

#[test]
fn a_cpu_target_autoscaler_scales_in_while_workers_wait_on_a_slow_dependency() {
    // Before: 250 requests/s per instance, CPU 250 × 5 ms / 4 cores = 0.31, workers
    // 250 × 17 ms / 20 = 0.21. During the slowdown each request holds a worker 217 ms: the
    // 20 workers are all busy (54 requests/s each), the CPU falls to 54 × 5 ms / 4 = 0.07.
    let cpu = run(&autoscale_scenario("Cpu", 0.35), 180.0);
    let instances = |sim: &Simulation, k| service_row(sim, 0, k).live_instances;
    assert_eq!(instances(&cpu, 59), 8, "steady before the fault");
    let cpu_during = service(&cpu, 0, 61, 70)
        .cpu_utilization()
        .expect("cores are modelled");
    assert!(
        (cpu_during - 0.115).abs() < 0.02,
        "CPU idles while workers wait: {cpu_during}"
    );
    assert!(
        service(&cpu, 0, 61, 70).utilization() > 0.99,
        "workers are all busy"
    );
    assert!(
        instances(&cpu, 170) < 8,
        "CPU target scales in: {} instances",
        instances(&cpu, 170)
    );
    // The worker-utilisation target sees the saturation and scales out.
    let workers = run(&autoscale_scenario("Workers", 0.22), 180.0);
    assert_eq!(instances(&workers, 59), 8, "steady before the fault");
    assert!(
        instances(&workers, 170) > 8,
        "worker target scales out: {} instances",
        instances(&workers, 170)
    );
    let served = |sim: &Simulation| source(sim, 0, 150, 180).goodput as f64 / 30.0;
    assert!(
        served(&workers) > 2.0 * served(&cpu),
        "more capacity, more goodput: {} vs {}",
        served(&workers),
        served(&cpu)
    );
}

#[test]
fn new_instances_serve_only_after_provisioning_and_health_checks() {
    // A requests-per-instance target (100/s) at 1000/s from 2 instances: desired 10. The first
    // evaluation at 10 s provisions up to 4 at once (max_provisioning), each after 5 s and
    // two passing probes 1 s apart.
    let s = common::parse(
        r#"(
            version: 1, name: "scale out", duration_s: 1, seed: 67,
            sources: [(name: "clients", target: "api", rate: Constant(1000))],
            services: [(name: "api", instances: 2, workers: 100, service_time: Exponential(mean_ms: 2.0),
                        health_check: (interval_s: 1.0, timeout_ms: 500.0, unhealthy_after: 3, healthy_after: 2),
                        autoscale: (metric: RequestsPerInstance, target: 100.0, period_s: 10.0, cooldown_s: 0.0,
                                    provision_delay_s: 5.0, max_provisioning: 4, min: 2, max: 10))],
        )"#,
    );
    let sim = run(&s, 60.0);
    let row = |k| service_row(&sim, 0, k);
    assert_eq!(row(9).gauges.healthy_instances, 2);
    assert_eq!(
        row(10).gauges.starting_instances,
        4,
        "four provisioning at once"
    );
    assert_eq!(
        row(14).gauges.healthy_instances,
        2,
        "not serving during the 5 s of provisioning"
    );
    assert_eq!(
        row(17).gauges.healthy_instances,
        6,
        "serving after two passing probes"
    );
    assert_eq!(
        row(59).gauges.healthy_instances,
        10,
        "and on to the desired 10"
    );
}

#[test]
fn scale_in_retires_instances_that_do_not_serve_first_and_keeps_the_minimum() {
    // Four instances serve 1000 requests/s; at 10 s a requests-per-instance autoscaler adds
    // six, but their startup call needs DNS, dead from 5 s: they crash-loop (down, restarting,
    // failing again). At 40 s the load falls to 100/s (desired: the minimum, 2). A scale-in
    // retires the instances that do not serve before those that do, as Kubernetes'
    // ReplicaSet deletes not-ready pods first; the count left is the minimum, so two serving
    // instances must remain (they can take 2 × 20 / 5 ms = 8000/s).
    let s = common::parse(
        r#"(
            version: 1, name: "scale in past crash loops", duration_s: 1, seed: 71,
            sources: [(name: "clients", target: "api", rate: Step(from_per_s: 1000, to_per_s: 100, at_s: 40), timeout_ms: 1000.0)],
            services: [
                (name: "api", instances: 4, workers: 20, service_time: Deterministic(ms: 5.0),
                 lifecycle: (startup_calls: [(to: "dns", timeout_ms: 500.0)], restart_s: 5.0),
                 autoscale: (metric: RequestsPerInstance, target: 100.0, period_s: 10.0, cooldown_s: 0.0,
                             provision_delay_s: 1.0, min: 2, max: 10)),
                (name: "dns", kind: ControlPlane, workers: 10, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 5.0, duration_s: 100.0, fault: Kill(service: "dns"))],
        )"#,
    );
    let sim = run(&s, 80.0);
    let live = |k| service_row(&sim, 0, k).live_instances;
    assert_eq!(live(9), 4, "four serving before the scale-out");
    assert_eq!(live(39), 4, "the six new ones crash-loop without DNS");
    for k in 51..80 {
        assert_eq!(live(k), 2, "interval {k}: the minimum of two still serves");
    }
    let c = source(&sim, 0, 51, 80);
    assert_all_served(&c);
}

#[test]
fn a_retired_instance_stops_its_refresh_loop() {
    // Six instances refresh their membership every 5 s, retried every second up to 100 times;
    // the registry fails every call from 20 s. At 30 s an operator sets the service to two
    // instances: the four retired ones drain their requests, but their process is going away,
    // so their refresh loops make no further attempts. From 31 s the registry sees the two
    // remaining loops only: one attempt a second each (plus a round trip of ~1 ms).
    let s = retried_refresh(
        6,
        false,
        100.0,
        r#"operator: [(when: At(30.0), action: SetInstances(service: "api", instances: 2))]"#,
    );
    let sim = run(&s, 60.0);
    let before = service(&sim, 1, 25, 30).offered();
    assert!(
        (6 * 5 - 1..=6 * 5).contains(&before),
        "six loops, one attempt a second each: {before}"
    );
    let after = service(&sim, 1, 31, 60).offered();
    assert!(
        (2 * 29 - 1..=2 * 29).contains(&after),
        "two loops after the scale-in: {after} attempts in 29 s"
    );
}

#[test]
fn a_scale_out_takes_empty_slots_before_instances_still_draining() {
    // Found by the soak (seed 1829): a scale-out re-provisioned an instance that was still
    // draining after a scale-in and reset its count of busy workers, so each of its requests
    // that finished afterwards took one off zero. Four instances of 1000 workers, 2 s of work,
    // 300 requests/s, `max: 6`. At 19.5 s an operator sets 2 instances: instances 2 and 3
    // drain (about 300 requests each for up to 2 s). At 20 s the autoscaler (100/s per
    // instance: desired 3) adds one: it must take the empty slot 4, not a draining one, and
    // every request is answered as before: nothing refused, nothing lost.
    let s = common::parse(
        r#"(
            version: 1, name: "scale out past draining", duration_s: 1, seed: 79,
            sources: [(name: "clients", target: "api", rate: Constant(300), timeout_ms: 10000.0)],
            services: [(name: "api", instances: 4, workers: 1000, service_time: Deterministic(ms: 2000.0),
                        autoscale: (metric: RequestsPerInstance, target: 100.0, period_s: 10.0, cooldown_s: 0.0,
                                    provision_delay_s: 1.0, min: 2, max: 6, scale_in: false))],
            operator: [(when: At(19.5), action: SetInstances(service: "api", instances: 2))],
        )"#,
    );
    let sim = run(&s, 40.0);
    assert_eq!(service_row(&sim, 0, 20).gauges.starting_instances, 1);
    assert_eq!(
        service_row(&sim, 0, 25).live_instances,
        3,
        "2 kept + 1 added"
    );
    let c = source(&sim, 0, 0, 38);
    assert_eq!(c.failed_total(), 0, "nothing refused or lost");
    assert_all_served(&c);
    // With `max: 4` no slot is empty: the draining instance 2 is reused as a new machine and
    // the requests it still holds at 20 s are lost, as at a termination: those that arrived
    // in (18, 19.5] s, a quarter (round robin) of Poisson(300/s × 1.5 s): 112.5 ± √450/4.
    let sim = run(
        &common::parse(&s.to_ron_string().replace("max: 6", "max: 4")),
        40.0,
    );
    assert_eq!(service_row(&sim, 0, 25).live_instances, 3);
    let lost = source(&sim, 0, 0, 38).failed_total() as f64;
    assert!(
        (lost - 112.5).abs() < 4.0 * 450f64.sqrt() / 4.0,
        "{lost} requests lost with the draining instance"
    );
}

#[test]
fn instances_being_provisioned_are_not_behind_the_load_balancer_even_in_a_panic() {
    // Two serving instances (health checks, panic threshold 0.5) take 1000/s; at 10 s the
    // autoscaler (100/s per instance) provisions eight more, each 20 s in the making. A
    // machine being launched is not registered with the load balancer yet (an auto scaling
    // group registers it when it is in service), so it counts neither in the panic rule's
    // total nor among the panic's targets: 2 of 2 registered instances are healthy, no panic,
    // and every request is served while the eight are provisioned.
    let s = common::parse(
        r#"(
            version: 1, name: "panic past provisioning", duration_s: 1, seed: 73,
            sources: [(name: "clients", target: "api", rate: Constant(1000), timeout_ms: 1000.0)],
            services: [(name: "api", instances: 2, workers: 100, service_time: Exponential(mean_ms: 2.0),
                        health_check: (interval_s: 1.0, timeout_ms: 500.0, unhealthy_after: 3, healthy_after: 2),
                        panic_threshold: 0.5,
                        autoscale: (metric: RequestsPerInstance, target: 100.0, period_s: 10.0, cooldown_s: 60.0,
                                    provision_delay_s: 20.0, max_provisioning: 8, min: 2, max: 10))],
        )"#,
    );
    let sim = run(&s, 30.0);
    assert_eq!(
        service_row(&sim, 0, 10).gauges.starting_instances,
        8,
        "eight being provisioned"
    );
    for k in 10..30 {
        assert!(
            !service_row(&sim, 0, k).gauges.panic,
            "interval {k}: no panic"
        );
    }
    let c = source(&sim, 0, 11, 30);
    assert_all_served(&c);
}

// ------------------------------------------------------------------- bulkheads

/// An API with 1000 workers takes 10,000 requests/s; 10% call a dependency that hangs from
/// 10 s (requests there never return); the rest call a healthy one.
fn bulkhead_scenario(bulkhead: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "bulkhead", duration_s: 1, seed: 71, metrics_interval_s: 0.05,
            sources: [(name: "clients", target: "api", rate: Constant(10000), timeout_ms: 1000.0)],
            services: [
                (name: "api", workers: 1000, service_time: Exponential(mean_ms: 0.5),
                 calls: [(to: "slow", probability: 0.1{bulkhead}), (to: "fast", probability: 1.0)]),
                (name: "slow", workers: 100000, service_time: Exponential(mean_ms: 1.0)),
                (name: "fast", workers: 100000, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 10.0, duration_s: 20.0, fault: Kill(service: "slow", mode: Blackhole))],
        )"#
    ))
}

#[test]
fn a_shared_pool_is_exhausted_in_pool_size_over_rate_times_share_stuck() {
    // Requests reaching the dead dependency hold their worker forever: 1000 requests/s get
    // stuck, so the 1000 workers are gone after about 1000 / (10000 × 0.1) = 1 s. After that
    // every request, including the 90% that never touch the dependency, waits and fails.
    let sim = run(&bulkhead_scenario(""), 14.0);
    let rows = &sim.history().services[0];
    let exhausted = rows
        .iter()
        .find(|r| r.interval >= 200 && r.counters.utilization() > 0.999)
        .expect("the pool is exhausted");
    let at_s = f64::from(exhausted.interval) * 0.05 - 10.0;
    // Poisson arrivals: the 1000th stuck request comes at 1 s ± 1/√1000 (3%); the requests
    // working on the fast path hold ~25 more workers (2.5%), and a 50 ms interval.
    assert!(
        (at_s - 1.0).abs() < 0.15,
        "exhausted {at_s:.2} s after the fault"
    );
    let after = source(&sim, 0, 240, 280);
    assert!(
        (after.goodput as f64) < 0.02 * after.offered_first as f64,
        "unrelated requests fail too"
    );
}

#[test]
fn a_per_dependency_bulkhead_contains_the_slow_dependency() {
    // At most 100 workers may wait on the bad dependency; the rest keep serving.
    let sim = run(
        &bulkhead_scenario(", max_concurrent: 100, fallback: Degrade"),
        30.0,
    );
    let during = source(&sim, 0, 240, 580);
    assert!(
        during.goodput as f64 > 0.99 * during.offered_first as f64,
        "{} of {}",
        during.goodput,
        during.offered_first
    );
    let api = service(&sim, 0, 240, 580);
    assert!(api.fallbacks > 0, "calls over the bulkhead fall back");
}

#[test]
fn a_bulkhead_is_a_loss_system_blocking_as_erlang_b_says() {
    // A bulkhead admits a call while fewer than `max_concurrent` of the instance's requests are
    // in it and fails it at once otherwise: its slots are an M/G/m/m loss system, so the share
    // of calls refused is Erlang B(m, a) for the offered load a = λ·E[call], whatever the
    // call's duration distribution (insensitivity). Here λ = 1000/s reach the call (own work
    // is deterministic: Poisson in, Poisson out), a call takes 1 ms each way plus an
    // exponential 5 ms at a `db` with ample workers: E[call] = 7 ms, a = 7 erlangs. The call
    // comes first of two, so each slot must be given back to this call, not to the next.
    let (m, a) = (8u32, 7.0f64);
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "bulkhead loss", duration_s: 1, seed: 83,
            sources: [(name: "clients", target: "api", rate: Constant(1000))],
            services: [
                (name: "api", workers: 10000, service_time: Deterministic(ms: 0.1),
                 calls: [(to: "db", max_concurrent: {m}, fallback: Degrade), (to: "log")]),
                (name: "db", workers: 10000, service_time: Exponential(mean_ms: 5.0)),
                (name: "log", workers: 10000, service_time: Deterministic(ms: 0.1)),
            ],
        )"#
    ));
    let mut erlang_b = 1.0f64;
    for k in 1..=m {
        erlang_b = a * erlang_b / (f64::from(k) + a * erlang_b);
    }
    let b = common::run_batches(&s, 0, 5.0, 10.0, 40);
    common::assert_close(
        &format!("bulkhead of {m} at {a} erlangs: share refused"),
        b.estimate(|c, _| c.fallbacks as f64 / c.offered() as f64),
        erlang_b,
        0.03,
    );
}

/// A bulkhead whose requests wait for a place (`bulkhead_wait_ms`: a connection pool with an
/// acquire timeout): its `m` places are the servers of a queue, which is M/M/m when the calls'
/// hold is exponential. Hops of 1 µs (ticks of 1 µs) keep it so: a place is held 2 µs plus an
/// exponential 10 ms at a `db` with ample workers. λ = 800/s, m = 10: 8 erlangs.
fn waiting_bulkhead(wait_ms: f64) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "pool", duration_s: 1, seed: 89, tick_ms: 0.001,
            sources: [(name: "clients", target: "api", rate: Constant(800), latency_ms: 0.001)],
            services: [
                (name: "api", workers: 100000, service_time: Deterministic(ms: 0.001),
                 calls: [(to: "db", latency_ms: 0.001, max_concurrent: 10, bulkhead_wait_ms: {wait_ms})]),
                (name: "db", workers: 100000, service_time: Exponential(mean_ms: 10.0)),
            ],
        )"#
    ))
}

#[test]
fn a_waiting_bulkhead_queues_as_erlang_c_says() {
    // With a wait that never runs out, the requests wait for a place as in M/M/10 at 8
    // erlangs: Erlang C gives P(wait) = 0.4092 and a mean wait C/(mμ − λ) = 2.046 ms, which is
    // api's mean residence less its own work, the hops and the call (10.004 ms in all).
    let (m, mu, lambda) = (10u32, 1000.0 / 10.002, 800.0);
    let a = lambda / mu;
    let (mut term, mut below) = (1.0f64, 1.0f64);
    for k in 1..m {
        term *= a / f64::from(k);
        below += term;
    }
    let top = term * a / f64::from(m) * f64::from(m) / (f64::from(m) - a);
    let erlang_c = top / (below + top);
    let wait_ms = erlang_c / (f64::from(m) * mu - lambda) * 1e3;
    // (The wait at 80% load is noisy: 160 batches of 10 s give about 2% standard error.)
    let b = common::run_batches(&waiting_bulkhead(1e7), 0, 10.0, 10.0, 160);
    common::assert_close(
        "pool of 10 at 8 erlangs: mean wait for a place",
        b.estimate(|c, _| c.mean_residence_ms() - 10.004),
        wait_ms,
        0.025,
    );
    // With a 5-ms acquire timeout it is M/M/10 with deterministic patience (M/M/10+D): the
    // share that gives up waiting and fails `bulkhead_full`.
    let (p_fail, _) = common::mmc_plus_d(m, lambda, mu, 0.005);
    let b = common::run_batches(&waiting_bulkhead(5.0), 0, 10.0, 10.0, 160);
    common::assert_close(
        "pool of 10 at 8 erlangs, 5 ms to acquire: share failed",
        b.estimate(|c, _| c.local_rejected as f64 / c.offered() as f64),
        p_fail,
        0.02,
    );
}

// ------------------------------------------------------------------- circuit breakers

/// Two API instances at 100 calls/s each to a database that fails everything from 30 to 60 s,
/// through a breaker that opens for 5 s and then lets one probe through.
fn breaker_scenario(trip: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "breaker", duration_s: 1, seed: 73, metrics_interval_s: 0.1,
            sources: [(name: "clients", target: "api", rate: Constant(200))],
            services: [
                (name: "api", instances: 2, workers: 50, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "db", timeout_ms: 100.0, breaker: ({trip}, open_s: 5.0, probes: 1))]),
                (name: "db", workers: 50, service_time: Exponential(mean_ms: 2.0)),
            ],
            faults: [(at_s: 30.0, duration_s: 30.0, fault: Errors(service: "db", probability: 1.0))],
        )"#
    ))
}

/// Edge counters of api → db (link 1) over intervals `[from, to)` of 0.1 s.
fn db_edge(sim: &Simulation, from: u32, to: u32) -> cascade_sim::metrics::EdgeCounters {
    let mut c = cascade_sim::metrics::EdgeCounters::default();
    for k in from..to {
        if let Some(r) = MetricsHistory::row_at(&sim.history().edges[1], k) {
            c.add(&r.counters);
        }
    }
    c
}

#[test]
fn a_breaker_opens_fast_fails_half_opens_and_closes_as_configured() {
    // By failure share over a 10 s window (1 s buckets) with ≥ 50% to open: the window holds
    // 10 s of successes when the database starts failing, so the share reaches one half after
    // about 5 s (± one bucket).
    let sim = run(
        &breaker_scenario("window_s: 10.0, error_ratio: 0.5, min_requests: 20"),
        80.0,
    );
    let opened = (300..600)
        .find(|&k| db_edge(&sim, k, k + 1).fast_failed > 0)
        .expect("opens");
    let open_after_s = f64::from(opened) * 0.1 - 30.0;
    assert!(
        (open_after_s - 5.0).abs() <= 1.1,
        "opened {open_after_s:.1} s after the fault"
    );
    // While open (until 60 s), each instance lets one probe through every 5 s, and each probe
    // fails and reopens it: about 2 × (60 − open) / 5 calls reach the database.
    let open = db_edge(&sim, opened + 1, 600);
    let window_s = 60.0 - f64::from(opened + 1) * 0.1;
    let probes = 2.0 * (window_s / 5.0).ceil();
    assert!(
        (open.attempts as f64 - probes).abs() <= 2.0,
        "{} calls sent while open, ~{probes} expected",
        open.attempts
    );
    let fast_fail_ratio = open.fast_failed as f64 / (open.fast_failed + open.attempts) as f64;
    let expected = 1.0 - probes / (200.0 * window_s);
    assert!(
        (fast_fail_ratio - expected).abs() < 0.001,
        "fast-fail ratio {fast_fail_ratio:.5} vs {expected:.5}"
    );
    // Recovery: the first probe after 60 s succeeds and closes it, within one open period.
    let first_ok = (600..800)
        .find(|&k| db_edge(&sim, k, k + 1).successes > 0)
        .expect("recovers");
    let closed_after_s = f64::from(first_ok) * 0.1 - 60.0;
    assert!(
        closed_after_s <= 5.0 + 0.1,
        "closed {closed_after_s:.1} s after the database recovered"
    );
    assert_eq!(
        db_edge(&sim, first_ok + 1, 800).fast_failed,
        0,
        "closed: nothing fails fast any more"
    );
}

#[test]
fn a_consecutive_failures_breaker_opens_at_once() {
    // Five failures in a row: at 100 calls/s per instance, within 50 ms (one 0.1 s interval).
    let sim = run(&breaker_scenario("consecutive_failures: 5"), 40.0);
    let opened = (300..400)
        .find(|&k| db_edge(&sim, k, k + 1).fast_failed > 0)
        .expect("opens");
    assert!(opened <= 301, "opened in interval {opened}");
    // Each instance sent 5 failures, then probes only.
    let failures = db_edge(&sim, 300, 400).failures;
    assert!(failures <= 2 * (5 + 2), "{failures} failed calls");
}

// ------------------------------------------------------------------- lifecycle

#[test]
fn restarts_that_need_a_dead_control_plane_stay_down_until_it_returns() {
    // Each API instance resolves its config through DNS when it starts (restart takes 5 s).
    // DNS is down from 20 to 80 s; the API restarts at 30 s: its startup call fails, it retries
    // every 5 s, and comes back only once DNS answers again (between 80 and 85 s + a call).
    let s = common::parse(
        r#"(
            version: 1, name: "dns", duration_s: 1, seed: 79,
            sources: [(name: "clients", target: "api", rate: Constant(500))],
            services: [
                (name: "api", instances: 3, workers: 20, service_time: Exponential(mean_ms: 5.0),
                 lifecycle: (startup_calls: [(to: "dns", timeout_ms: 500.0, retry: (max_attempts: 2))], restart_s: 5.0)),
                (name: "dns", kind: ControlPlane, workers: 10, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [
                (at_s: 20.0, duration_s: 60.0, fault: Kill(service: "dns")),
                (at_s: 30.0, fault: Restart(service: "api")),
            ],
        )"#,
    );
    let sim = run(&s, 100.0);
    let live = |k| service_row(&sim, 0, k).live_instances;
    assert_eq!(live(25), 3, "DNS down alone does not hurt a running API");
    for k in [31, 40, 60, 79] {
        assert_eq!(live(k), 0, "down at {k} s: it cannot start without DNS");
    }
    let back = (80..100).find(|&k| live(k) == 3).expect("back after DNS");
    assert!(back <= 86, "back at {back} s");
    assert_eq!(source(&sim, 0, back + 1, 100).failed_total(), 0);
}

#[test]
fn a_restart_warms_up_slowly() {
    // After a restart (1 s down) the instance runs 3× slower for 20 s: its mean residence
    // (deterministic 10 ms work, no queueing at this load) is 30 ms, then 10 ms.
    let s = common::parse(
        r#"(
            version: 1, name: "warm", duration_s: 1, seed: 83,
            sources: [(name: "clients", target: "api", rate: Constant(100))],
            services: [(name: "api", workers: 100, service_time: Deterministic(ms: 10.0),
                        lifecycle: (restart_s: 1.0, warmup_s: 20.0, warmup_factor: 3.0))],
            faults: [(at_s: 10.0, fault: Restart(service: "api"))],
        )"#,
    );
    let sim = run(&s, 50.0);
    let mean = |from, to| service(&sim, 0, from, to).mean_residence_ms();
    assert!((mean(2, 10) - 10.0).abs() < 0.01);
    assert!(
        (mean(12, 30) - 30.0).abs() < 0.01,
        "warming: {}",
        mean(12, 30)
    );
    assert!((mean(32, 50) - 10.0).abs() < 0.01, "warm: {}", mean(32, 50));
}

#[test]
fn a_gating_periodic_call_takes_instances_out_when_it_fails() {
    // Instances refresh their membership every 5 s; when the registry fails, each is taken out
    // of rotation at its next refresh, and the whole service is unreachable (the load balancer
    // has no instance) although every instance is fine.
    let s = common::parse(
        r#"(
            version: 1, name: "membership", duration_s: 1, seed: 89,
            sources: [(name: "clients", target: "api", rate: Constant(300))],
            services: [
                (name: "api", instances: 3, workers: 20, service_time: Exponential(mean_ms: 5.0),
                 lifecycle: (periodic: [(every_s: 5.0, call: (to: "registry", timeout_ms: 200.0), disqualify_on_failure: true)])),
                (name: "registry", kind: ControlPlane, workers: 10, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 20.0, duration_s: 30.0, fault: Errors(service: "registry", probability: 1.0))],
        )"#,
    );
    let sim = run(&s, 70.0);
    let healthy = |k| service_row(&sim, 0, k).gauges.healthy_instances;
    assert_eq!(healthy(19), 3);
    assert_eq!(healthy(26), 0, "every instance failed a refresh within 5 s");
    assert_eq!(source(&sim, 0, 26, 50).goodput, 0);
    assert_eq!(
        healthy(56),
        3,
        "back at their next refresh after the registry recovers"
    );
}

/// `instances` instances of `api` (300 requests/s) refresh their membership from `registry`
/// every 5 s, each refresh retried every second up to 100 times; with `gating`, a failed
/// attempt takes its instance out of rotation until a refresh succeeds. The registry fails
/// every call from 20 s for `fail_s`. `extra` is added to the scenario (e.g. `operator`).
fn retried_refresh(instances: u32, gating: bool, fail_s: f64, extra: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "retried refresh", duration_s: 1, seed: 89,
            sources: [(name: "clients", target: "api", rate: Constant(300))],
            services: [
                (name: "api", instances: {instances}, workers: 20, service_time: Exponential(mean_ms: 5.0),
                 lifecycle: (periodic: [(every_s: 5.0, call: (to: "registry", timeout_ms: 200.0,
                     retry: (max_attempts: 100, backoff: Constant(delay_ms: 1000.0))),
                     disqualify_on_failure: {gating})])),
                (name: "registry", kind: ControlPlane, workers: 10, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 20.0, duration_s: {fail_s:?}, fault: Errors(service: "registry", probability: 1.0))],
            {extra}
        )"#
    ))
}

#[test]
fn a_gating_call_with_disqualify_after_waits_for_that_many_failures_in_a_row() {
    // The refresh every 5 s of the test above, not retried, with `disqualify_after: 3` (a
    // health check's "unhealthy after 3"): when the registry fails from 20 s, an instance's
    // first failed refresh comes within 5 s and its third 10 s later, so each leaves between
    // 30 and 35 s (the three are spread over the period); one success brings it back.
    let s = common::parse(
        r#"(
            version: 1, name: "membership after 3", duration_s: 1, seed: 89,
            sources: [(name: "clients", target: "api", rate: Constant(300))],
            services: [
                (name: "api", instances: 3, workers: 20, service_time: Exponential(mean_ms: 5.0),
                 lifecycle: (periodic: [(every_s: 5.0, call: (to: "registry", timeout_ms: 200.0),
                     disqualify_on_failure: true, disqualify_after: 3)])),
                (name: "registry", kind: ControlPlane, workers: 10, service_time: Exponential(mean_ms: 1.0)),
            ],
            faults: [(at_s: 20.0, duration_s: 30.0, fault: Errors(service: "registry", probability: 1.0))],
        )"#,
    );
    let sim = run(&s, 70.0);
    let healthy = |k| service_row(&sim, 0, k).gauges.healthy_instances;
    assert_eq!(healthy(29), 3, "two failures each are not enough");
    assert_eq!(healthy(35), 0, "the third takes each out");
    assert_eq!(healthy(56), 3, "back at their first refresh after 50 s");
}

#[test]
fn a_gating_call_that_retries_takes_its_instance_out_at_the_first_failed_attempt() {
    // The same refresh, retried every second up to 100 times. An instance stops serving as
    // soon as one attempt fails (it will not serve on membership it could not refresh) and
    // keeps retrying; the first attempt that succeeds brings it back, within a second of the
    // registry's recovery at 50 s.
    let s = retried_refresh(3, true, 30.0, "");
    let sim = run(&s, 70.0);
    let healthy = |k| service_row(&sim, 0, k).gauges.healthy_instances;
    assert_eq!(healthy(19), 3);
    assert_eq!(
        healthy(25),
        0,
        "out at the first failed attempt, within 5 s"
    );
    assert_eq!(source(&sim, 0, 26, 50).goodput, 0);
    assert_eq!(healthy(51), 3, "back at the first retry after 50 s");
    // One refresh loop per instance (the 5-s timer does not start a second one while the
    // first retries): an attempt every second plus a round trip of about 3 ms, so 23 or 24
    // from each of the three in these 24 s (without the loop rule, a new loop every 5 s).
    let registry = service(&sim, 1, 26, 50);
    assert!(
        (3 * 23..=3 * 24).contains(&registry.offered()),
        "{} attempts",
        registry.offered()
    );
}

#[test]
fn paused_periodic_calls_stop_at_once_and_resume_spread_over_the_period() {
    // The retried refresh of the test above (every 5 s, retried every second, the registry
    // failing 20-50 s). An operator pauses the refreshes at 30 s and resumes them at 60 s.
    // While paused the registry gets no attempt at all, and the instances, out since their
    // failed refresh, stay out even after the registry recovers at 50 s (nothing refreshes
    // them). On resume each instance refreshes at its own point of the 5 s period: all three
    // back by 65 s, and never more than one attempt per instance in a second.
    let s = retried_refresh(
        3,
        true,
        30.0,
        r#"operator: [(when: At(30.0), action: PausePeriodic(service: "api")),
                      (when: At(60.0), action: ResumePeriodic(service: "api"))]"#,
    );
    let sim = run(&s, 80.0);
    let healthy = |k| service_row(&sim, 0, k).gauges.healthy_instances;
    assert_eq!(healthy(25), 0, "out after a failed refresh");
    assert_eq!(service(&sim, 1, 31, 60).offered(), 0, "paused: no attempt");
    assert_eq!(healthy(58), 0, "still out after the registry recovered");
    for k in 60..65 {
        assert!(
            service(&sim, 1, k, k + 1).offered() <= 3,
            "spread: interval {k}"
        );
    }
    assert_eq!(healthy(65), 3, "back within one period of the resume");
    assert_eq!(
        source(&sim, 0, 66, 80).goodput,
        source(&sim, 0, 66, 80).resolved()
    );
}

#[test]
fn an_instance_that_latches_stays_down_until_reset() {
    // Instances fall over when they hold more than 100 requests (a memory limit). A 10 s spike
    // to 3× capacity latches them; the load returns to normal, but nothing comes back until an
    // operator resets them at 60 s.
    let s = common::parse(
        r#"(
            version: 1, name: "latch", duration_s: 1, seed: 97,
            sources: [(name: "clients", target: "api", rate: Spike(base_per_s: 500, peak_per_s: 3000, start_s: 20.0, duration_s: 10.0),
                       timeout_ms: 1000.0)],
            services: [(name: "api", instances: 2, workers: 10, service_time: Exponential(mean_ms: 10.0),
                        admission: (latch_above: 100))],
            operator: [(when: At(60.0), action: ResetLatched(service: "api"))],
        )"#,
    );
    let sim = run(&s, 80.0);
    let row = |k| service_row(&sim, 0, k);
    assert_eq!(row(19).gauges.latched_instances, 0);
    assert_eq!(
        row(35).gauges.latched_instances,
        2,
        "both latched in the spike"
    );
    assert_eq!(
        source(&sim, 0, 40, 60).goodput,
        0,
        "still down with the load back to normal"
    );
    assert_eq!(row(62).gauges.latched_instances, 0, "reset");
    assert!(source(&sim, 0, 65, 80).goodput as f64 > 0.99 * 500.0 * 15.0);
}

#[test]
fn a_liveness_rule_restarts_a_latched_instance_after_its_failed_probes() {
    // The latch of the test above (a 5 s spike this time) with health checks every second
    // that restart an instance after 3 failed probes in a row (a Kubernetes liveness probe),
    // and 5 s to restart. The probe after a latch fails within one interval, the third within
    // (2, 3] s: each instance restarts once, (2, 3] s after it latched, starts exactly 5 s
    // later (no start-up calls) and serves again after 2 passed probes, 1 to 2 s on. Without
    // the rule they stay latched.
    let scenario = |restart: &str| {
        common::parse(&format!(
            r#"(
            version: 1, name: "liveness", duration_s: 1, seed: 97,
            sources: [(name: "clients", target: "api", rate: Spike(base_per_s: 500, peak_per_s: 3000, start_s: 20.0, duration_s: 5.0),
                       timeout_ms: 1000.0)],
            services: [(name: "api", instances: 2, workers: 10, service_time: Exponential(mean_ms: 10.0),
                        admission: (latch_above: 100),
                        health_check: (interval_s: 1.0, timeout_ms: 500.0, unhealthy_after: 2, healthy_after: 2{restart}),
                        lifecycle: (restart_s: 5.0))],
        )"#
        ))
    };
    let sim = run(&scenario(", restart_after: 3"), 60.0);
    let log = &sim.world().resource::<cascade_sim::EventLog>().events;
    let times = |needle: String| -> Vec<f64> {
        log.iter()
            .filter_map(|e| match &e.kind {
                cascade_sim::events::SimEventKind::Mechanism { what, .. }
                    if what.starts_with(&needle) =>
                {
                    Some(e.time_ns as f64 / 1e9)
                }
                _ => None,
            })
            .collect()
    };
    let mut back_s: f64 = 0.0;
    for k in 0..2 {
        let latched = times(format!("instance {k} latched"));
        let restarted = times(format!(
            "instance {k} restarting (failed 3 health checks in a row)"
        ));
        let started = times(format!("instance {k} started"));
        let healthy = times(format!("instance {k} passes health checks"));
        assert_eq!(latched.len(), 1, "instance {k} latched once: {latched:?}");
        assert_eq!(restarted.len(), 1, "and restarted once: {restarted:?}");
        let wait = restarted[0] - latched[0];
        assert!(
            wait > 2.0 && wait <= 3.0,
            "instance {k}: restarted {wait} s after the latch"
        );
        assert!(
            (started[0] - restarted[0] - 5.0).abs() < 1e-9,
            "instance {k}: started {} s after the restart",
            started[0] - restarted[0]
        );
        let probes = healthy[0] - started[0];
        // The restart came at a probe and took a whole number of intervals, so a probe may
        // fall on the start itself: the second pass 1 to 2 s after it.
        assert!(
            (1.0..=2.0).contains(&probes),
            "instance {k}: healthy {probes} s after starting"
        );
        back_s = back_s.max(healthy[0]);
    }
    let from = back_s.ceil() as u32 + 1;
    let c = source(&sim, 0, from, 60);
    assert!(
        c.goodput as f64 >= 0.999 * c.resolved() as f64,
        "serving again from {from} s: {} of {}",
        c.goodput,
        c.resolved()
    );
    let without = run(&scenario(""), 60.0);
    assert_eq!(service_row(&without, 0, 40).gauges.latched_instances, 2);
    assert_eq!(
        source(&without, 0, 35, 60).goodput,
        0,
        "no rule: still latched"
    );
}

// ------------------------------------------------------------------- work queues

/// Producers enqueue 190/s for 100 s, then 90/s, into a work queue that delivers at most
/// 100/s (`queue_extra` is added to its `work_queue` settings).
fn backlog_queue(queue_extra: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "backlog", duration_s: 1, seed: 101,
            sources: [(name: "producers", target: "jobs", rate: Step(from_per_s: 190, to_per_s: 90, at_s: 100.0))],
            services: [
                (name: "jobs", kind: Queue, workers: 1000, service_time: Deterministic(ms: 1.0),
                 work_queue: (consumer: "worker", concurrency: 1000, rate_per_s: 100.0 {queue_extra})),
                (name: "worker", workers: 1000, service_time: Exponential(mean_ms: 5.0)),
            ],
        )"#
    ))
}

#[test]
fn paused_deliveries_hold_the_backlog_and_resume_at_the_delivery_limit() {
    // Producers enqueue 50/s into a work queue that delivers at most 100/s. An operator pauses
    // the deliveries from 20 s to 50 s: the consumer gets nothing, the backlog grows to about
    // 50/s × 30 s = 1500 (Poisson: ±√1500 ≈ 39), and after the resume it drains at the limit
    // (100/s delivered) in backlog / (100 − 50) ≈ 30 s.
    let s = common::parse(
        r#"(
            version: 1, name: "paused deliveries", duration_s: 1, seed: 103,
            sources: [(name: "producers", target: "jobs", rate: Constant(50))],
            services: [
                (name: "jobs", kind: Queue, workers: 1000, service_time: Deterministic(ms: 1.0),
                 work_queue: (consumer: "worker", concurrency: 1000, rate_per_s: 100.0)),
                (name: "worker", workers: 1000, service_time: Exponential(mean_ms: 5.0)),
            ],
            operator: [(when: At(20.0), action: PauseDeliveries(service: "jobs")),
                       (when: At(50.0), action: ResumeDeliveries(service: "jobs"))],
        )"#,
    );
    let sim = run(&s, 120.0);
    let backlog = |k| service_row(&sim, 0, k).gauges.queue_backlog as f64;
    assert_eq!(
        service(&sim, 1, 21, 50).offered(),
        0,
        "nothing delivered while paused"
    );
    assert!(
        (backlog(49) - 1500.0).abs() < 4.0 * 39.0,
        "backlog at the resume {}",
        backlog(49)
    );
    let drained = (50..120).find(|&k| backlog(k) == 0.0).expect("drains");
    // The backlog's ±39 spreads the drain by ±39/50 s, the arrivals meanwhile by
    // √(50·30)/50 ≈ ±0.8 s: together about ±1.1 s around 50 + backlog/50.
    let expected = 50.0 + backlog(49) / 50.0;
    assert!(
        (f64::from(drained) - expected).abs() < 4.0 * 1.1 + 1.0,
        "drained at {drained} s, expected ~{expected:.0}"
    );
    let rate = service(&sim, 1, 51, 70).offered() as f64 / 19.0;
    assert!(
        (rate - 100.0).abs() < 1.0,
        "at the limit meanwhile: {rate}/s"
    );
}

#[test]
fn a_backlog_drains_in_backlog_over_spare_capacity() {
    // Producers enqueue 190/s for 100 s, then 90/s; deliveries are limited to 100/s. The
    // backlog grows by 90/s to ~9000 and then drains at 100 − 90 = 10/s: 900 s.
    let sim = run(&backlog_queue(""), 1200.0);
    let backlog = |k| service_row(&sim, 0, k).gauges.queue_backlog as f64;
    // Poisson: the backlog at 100 s is 9000 ± √(190·100) = ±138.
    assert!(
        (backlog(99) - 9000.0).abs() < 4.0 * 138.0,
        "peak backlog {}",
        backlog(99)
    );
    let drained = (100..1200).find(|&k| backlog(k) == 0.0).expect("drains");
    // Drain time = backlog / 10/s; its noise: the peak's ±138/10 = ±14 s and the arrivals'
    // ±√(90·900)/10 = ±28 s, together ±31 s.
    let expected = 100.0 + backlog(99) / 10.0;
    assert!(
        (f64::from(drained) - expected).abs() < 4.0 * 31.0,
        "drained at {drained} s, expected ~{expected:.0}"
    );
}

#[test]
fn a_backlog_older_than_its_ttl_is_dropped_while_the_drain_lags() {
    // incidents.md, invariant 14 (GitHub 2018's webhooks): a backlog drains at spare capacity
    // only, and items with a TTL are dropped when the drain is slower than the TTL. The same
    // queue as above (190/s for 100 s, then 90/s; 100 deliveries/s) with `ttl_s: 30`. FIFO
    // with the expired dropped at their turn: the item at the head arrived when r·t = λ·a,
    // so its age t·(1 − r/λ) reaches τ = 30 s at t = 63.3 s; from then the head is always
    // τ old, 100/s are delivered and the rest of what arrived before 100 s is dropped, until
    // the head reaches the items of 100 s at t = 130 s. Drops: N(0..100 s) − 100/s × 130 s
    // = 19,000 − 13,000 = 6,000, ± √19,000 = 138 (Poisson arrivals; deliveries are paced).
    // Then the 2,700 items of 100–130 s drain at 10/s, younger than τ: no more drops, and the
    // backlog is gone by 130 + 270 = 400 s, not 1,000 s.
    let sim = run(&backlog_queue(", ttl_s: 30.0"), 600.0);
    let expired = |k| service_row(&sim, 0, k).gauges.expired_items as f64;
    let backlog = |k| service_row(&sim, 0, k).gauges.queue_backlog as f64;
    // The head's age at t is t − a with N(a) = 100·t: t(1 − r/λ) ± √(100·t)/190, so at 55 s
    // it is 26.1 ± 0.4 s, at 70 s 33.2 ± 0.4 s.
    assert_eq!(expired(54), 0.0, "nothing is 30 s old by 55 s");
    assert!(expired(69) > 0.0, "dropping by 70 s");
    // The dropped share: what arrived before 100 s beyond the 13,000 deliveries until the
    // head reaches the items of 100 s. Given the arrivals counted, that leaves only where
    // the last of them fall around 130 s: within a second of deliveries (100).
    let arrived_before_100 = source(&sim, 0, 0, 100).offered_first as f64;
    let expected = arrived_before_100 - 13_000.0;
    assert!(
        (expired(140) - expected).abs() <= 100.0,
        "{} dropped, expected N(0..100) − 13,000 = {expected}",
        expired(140)
    );
    assert!(
        (expected - 6000.0).abs() <= 4.0 * 138.0,
        "arrivals as a Poisson count: {arrived_before_100}"
    );
    assert_eq!(
        expired(599),
        expired(140),
        "nothing dropped once the backlog is younger than its TTL"
    );
    // Drained at 130 s + (backlog at 130 s)/10 per s, the 2,700 ± 4·√2,700 of 100–130 s.
    let drained = (130..600).find(|&k| backlog(k) == 0.0).expect("drains");
    let at_130 = backlog(130);
    assert!(
        (at_130 - 2700.0).abs() <= 4.0 * 2700f64.sqrt() + 100.0,
        "backlog at 130 s: {at_130}"
    );
    let expected_drain = 130.0 + at_130 / 10.0;
    // The arrivals' noise over the drain: ±√(90·270)/10 = ±16 s.
    assert!(
        (f64::from(drained) - expected_drain).abs() <= 4.0 * 16.0,
        "drained at {drained} s, expected ~{expected_drain:.0}"
    );
}

#[test]
fn failed_deliveries_are_redelivered_then_dead_lettered() {
    // From 10 s the consumer fails everything: every item is delivered three times, then
    // dead-lettered. Each failed delivery belongs to a dead letter or to one of the few items
    // still being tried at the end.
    let s = common::parse(
        r#"(
            version: 1, name: "dead letters", duration_s: 1, seed: 103,
            sources: [(name: "producers", target: "jobs", rate: Constant(50))],
            services: [
                (name: "jobs", kind: Queue, workers: 100, service_time: Deterministic(ms: 1.0),
                 work_queue: (consumer: "worker", concurrency: 100, max_deliveries: 3, timeout_ms: 100.0)),
                (name: "worker", workers: 100, service_time: Exponential(mean_ms: 5.0)),
            ],
            faults: [(at_s: 10.0, fault: Errors(service: "worker", probability: 1.0))],
        )"#,
    );
    let sim = run(&s, 40.0);
    let worker = service(&sim, 1, 0, 40);
    let dead = service_row(&sim, 0, 39).gauges.dead_letters;
    let failed = worker.failed_total();
    assert!(
        failed >= 3 * dead && failed <= 3 * dead + 2 * 5,
        "{failed} failed deliveries for {dead} dead letters"
    );
    // 30 s × 50/s, Poisson.
    assert!(
        (dead as f64 - 1500.0).abs() < 4.0 * 1500f64.sqrt() + 5.0,
        "{dead} dead letters"
    );
    assert_eq!(service(&sim, 1, 0, 10).failed_total(), 0);
}

// ------------------------------------------------------------------- failover

/// An API writing to a primary database with a replica 60 ms away; the link to the primary is
/// partitioned from 30 to 73 s (43 s, as in GitHub's 2018 outage).
fn failover_scenario(hold_down_s: f64) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "failover", duration_s: 1, seed: 107,
            sources: [(name: "clients", target: "api", rate: Constant(200), timeout_ms: 1000.0)],
            services: [
                (name: "api", workers: 100, service_time: Exponential(mean_ms: 1.0), calls: [(to: "db-east", timeout_ms: 500.0)]),
                (name: "db-east", kind: Database, workers: 50, service_time: Exponential(mean_ms: 2.0),
                 failover: (replica: "db-west", detection_s: 10.0, hold_down_s: {hold_down_s}, replica_latency_ms: 60.0)),
                (name: "db-west", kind: Database, workers: 50, service_time: Exponential(mean_ms: 2.0)),
            ],
            faults: [(at_s: 30.0, duration_s: 43.0, fault: Partition(from: "api", to: "db-east"))],
        )"#
    ))
}

#[test]
fn failover_promotes_after_detection_plus_hold_down_but_not_for_a_shorter_partition() {
    // Detection 10 s + hold-down 20 s = 30 s < 43 s: promoted at 60 s; every later request
    // pays the replica's 2 × 60 ms.
    let sim = run(&failover_scenario(20.0), 100.0);
    let failed_over = |sim: &Simulation, k| service_row(sim, 1, k).gauges.failed_over;
    assert!(!failed_over(&sim, 58));
    assert!(failed_over(&sim, 60), "promoted 30 s into the partition");
    assert!(
        source(&sim, 0, 61, 72).goodput as f64 > 0.99 * 200.0 * 11.0,
        "served by the replica during the partition"
    );
    let latency = source(&sim, 0, 80, 100).mean_residence_ms();
    assert!(
        latency > 120.0 && latency < 130.0,
        "replica round trip: {latency} ms"
    );
    // Hold-down 40 s: 50 s > 43 s, no failover; the partition's end heals it.
    let sim = run(&failover_scenario(40.0), 100.0);
    assert!(!failed_over(&sim, 99));
    assert_eq!(source(&sim, 0, 31, 72).goodput, 0);
    assert!(
        source(&sim, 0, 75, 100).mean_residence_ms() < 10.0,
        "back on the primary"
    );
}

// ------------------------------------------------------------------- alerts and operators

/// A retry storm (three tiers, slow database for 3 s at 30 s) that stays down without help;
/// an alert on the users' success ratio, optionally through a monitoring service that itself
/// depends on the database, and an operator who turns retries off when it fires.
fn operated_storm(via: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "operated", duration_s: 1, seed: 109,
            sources: [
                (name: "users", target: "api", rate: Constant(900), timeout_ms: 500.0, retry: (max_attempts: 3)),
                (name: "scraper", target: "monitoring", rate: Constant(10)),
            ],
            services: [
                (name: "api", workers: 1000, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "db", timeout_ms: 400.0, retry: (max_attempts: 3))]),
                (name: "db", kind: Database, workers: 10, queue: (capacity: 500), service_time: Exponential(mean_ms: 10.0)),
                (name: "monitoring", kind: Monitoring, workers: 10, service_time: Exponential(mean_ms: 1.0),
                 calls: [(to: "db", timeout_ms: 200.0)]),
            ],
            faults: [(at_s: 30.0, duration_s: 3.0, fault: Slow(service: "db", factor: 4.0))],
            alerts: [(name: "users failing", node: "users", metric: SuccessRatio, below: 0.5, for_s: 10.0{via})],
            operator: [(when: Alert("users failing"), after_s: 20.0, action: DisableRetries())],
        )"#
    ))
}

#[test]
fn a_change_freeze_cancels_the_faults_not_yet_started_and_leaves_the_active_one() {
    // A bad push to the canary (errors on `canary` from 10 s, until cleared) and the same push
    // planned for `main` at 30 s. An alert on the canary's failures (over 50% for 3 s) makes
    // the operator freeze changes: the push to `main` never starts, while the canary's, already
    // active, goes on (a freeze cancels what is planned; it does not roll back).
    let s = common::parse(
        r#"(
            version: 1, name: "freeze", duration_s: 1, seed: 5,
            sources: [(name: "a", target: "canary", rate: Constant(200)), (name: "b", target: "main", rate: Constant(200))],
            services: [(name: "canary", workers: 10, service_time: Exponential(mean_ms: 5.0)),
                       (name: "main", workers: 10, service_time: Exponential(mean_ms: 5.0))],
            faults: [(at_s: 10.0, fault: Errors(service: "canary", probability: 1.0)),
                     (at_s: 30.0, fault: Errors(service: "main", probability: 1.0))],
            alerts: [(name: "canary failing", node: "canary", metric: ErrorRatio, above: 0.5, for_s: 3.0)],
            operator: [(when: Alert("canary failing"), action: FreezeChanges)],
        )"#,
    );
    let sim = run(&s, 60.0);
    let log = &sim.world().resource::<cascade_sim::EventLog>().events;
    let started: Vec<String> = log
        .iter()
        .filter_map(|e| match &e.kind {
            cascade_sim::events::SimEventKind::FaultStarted { target, .. } => Some(target.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(started, ["canary"], "only the canary's push started");
    assert_eq!(
        source(&sim, 0, 20, 60).goodput,
        0,
        "the canary stays broken"
    );
    let main = source(&sim, 1, 30, 60);
    assert_eq!(main.goodput, main.resolved(), "main never got the push");
}

#[test]
fn an_alert_fires_after_its_delay_and_the_operator_acts_after_theirs() {
    let mut sim = run(&operated_storm(""), 150.0);
    let log = sim
        .world()
        .resource::<cascade_sim::EventLog>()
        .events
        .clone();
    let fired = log
        .iter()
        .find(|e| matches!(e.kind, cascade_sim::SimEventKind::AlertFired { .. }))
        .expect("fires")
        .time_ns;
    let acted = log
        .iter()
        .find(|e| matches!(e.kind, cascade_sim::SimEventKind::OperatorActed { .. }))
        .expect("acts")
        .time_ns;
    // The storm sets in at 30–31 s; ten 1 s intervals below 0.5 later the alert fires.
    let fired_s = fired as f64 / 1e9;
    assert!((40.0..=43.0).contains(&fired_s), "fired at {fired_s} s");
    assert_eq!(acted - fired, 20_000_000_000, "the operator's 20 s");
    assert!(
        success_ratio(&sim, 130, 150) > 0.99,
        "retries off: the storm ends"
    );
    assert_eq!(
        sim.summary().verdict,
        cascade_sim::scenario::VerdictKind::Recovered
    );
}

#[test]
fn a_monitoring_path_that_shares_the_failure_blinds_the_alert() {
    // The monitoring service reads from the same database: it fails with it, the alert is
    // blind, nobody acts, and the storm goes on.
    let mut sim = run(&operated_storm(r#", via: "monitoring""#), 150.0);
    let log = &sim.world().resource::<cascade_sim::EventLog>().events;
    assert!(
        !log.iter()
            .any(|e| matches!(e.kind, cascade_sim::SimEventKind::AlertFired { .. })),
        "blind"
    );
    assert!(success_ratio(&sim, 130, 150) < 0.5);
    assert_eq!(
        sim.summary().verdict,
        cascade_sim::scenario::VerdictKind::Metastable
    );
}

fn success_ratio(sim: &Simulation, from: u32, to: u32) -> f64 {
    let c = source(sim, 0, from, to);
    c.goodput as f64 / c.offered_first as f64
}

#[test]
fn an_operator_raising_workers_raises_capacity_even_with_implicit_cores() {
    // The service has mechanism state (an in-flight limit) but no `cores`: its CPU is as wide
    // as its workers. 2 workers × 10 ms deterministic work serve 200/s; at 5 s the operator
    // sets 10 workers (1,000/s) against 500/s offered, so once the backlog drains every
    // arrival is served: completions ≈ 500/s (they were capped at 200/s while the cores stayed
    // at the old worker count).
    let s = common::parse(
        r#"(
            version: 1, name: "more workers", duration_s: 1, seed: 41,
            sources: [(name: "clients", target: "api", rate: Constant(500))],
            services: [(name: "api", workers: 2, service_time: Deterministic(ms: 10.0),
                        admission: (max_in_flight: 100000))],
            operator: [(when: At(5.0), action: SetWorkers(service: "api", workers: 10))],
        )"#,
    );
    let sim = run(&s, 30.0);
    let c = service(&sim, 0, 20, 30);
    let per_s = c.succeeded as f64 / 10.0;
    // Poisson arrivals: 5,000 expected in 10 s, standard deviation √5000 ≈ 71.
    assert!(
        (per_s - 500.0).abs() < common::Z * 500f64.sqrt() / 10f64.sqrt(),
        "{per_s:.1} completions/s"
    );
}

// ------------------------------------------------------------------- queries of death

/// 1000 requests/s to `search` (20 instances, restart 10 s), with `max_attempts` tries and a
/// `QueryOfDeath` poisoning `share` of the requests from 10 s to 1010 s.
fn query_of_death(max_attempts: u32, share: f64) -> Simulation {
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "qod", duration_s: 1, seed: 31, sample_every: 0,
            sources: [(name: "users", target: "search", rate: Constant(1000), timeout_ms: 1000.0,
                       retry: (max_attempts: {max_attempts}))],
            services: [(name: "search", instances: 20, workers: 100, service_time: Exponential(mean_ms: 5.0),
                        lifecycle: (restart_s: 10.0))],
            faults: [(at_s: 10.0, duration_s: 1000.0, fault: QueryOfDeath(service: "search", share: {share}))],
        )"#
    ));
    run(&s, 1030.0)
}

/// Crashes by a query of death, over the whole run.
fn crashes(sim: &Simulation) -> usize {
    sim.world()
        .resource::<cascade_sim::EventLog>()
        .events
        .iter()
        .filter(|e| {
            matches!(&e.kind, cascade_sim::events::SimEventKind::Mechanism { what, .. }
                if what.ends_with("restarting (query of death)"))
        })
        .count()
}

#[test]
fn a_query_of_death_crashes_one_instance_per_attempt_and_retries_multiply_it() {
    // A poisoned request crashes the instance that starts on it; its caller sees the
    // connection refused and retries on another instance, which crashes too: with a attempts
    // every poisoned request takes a instances down (while a live one is left to take it; a
    // retry after the fault's end crashes nothing, which the tolerance covers).
    // Poisoned requests are Binomial(n, p) among the n requests sent during the fault, so the
    // crashes are a · Binomial(n, p): 4 standard errors of a·√(np(1 − p)).
    let share = 0.0002;
    for attempts in [1u32, 3] {
        let sim = query_of_death(attempts, share);
        let n = source(&sim, 0, 10, 1010).offered_first as f64;
        let a = f64::from(attempts);
        let expected = a * n * share;
        let sd = a * (n * share * (1.0 - share)).sqrt();
        let c = crashes(&sim) as f64;
        assert!(
            (c - expected).abs() <= common::Z * sd,
            "{attempts} attempts: {c} crashes, expected {expected:.0} ± {:.0}",
            common::Z * sd
        );
        // Each crash keeps an instance down 10 s (Little's law): the mean number down over the
        // fault is the crash rate × 10 s, from the instances live at each close (± 5% for
        // sampling the count once a second and the crashes at the fault's edges).
        let down: f64 = (20..1000)
            .map(|k| 20.0 - f64::from(service_row(&sim, 0, k).live_instances))
            .sum::<f64>()
            / 980.0;
        let little = c / 1000.0 * 10.0;
        assert!(
            (down - little).abs() <= 0.05 * little + 0.05,
            "{attempts} attempts: {down:.2} instances down on average, Little: {little:.2}"
        );
    }
    // After the fault every instance is back.
    let sim = query_of_death(3, share);
    assert_eq!(service_row(&sim, 0, 1025).live_instances, 20);
}
