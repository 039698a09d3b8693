//! Cancellation (`cancellation: true` on a service): a caller that gives up sends a cancel that
//! reaches the attempt one link latency later. Each test states its answer in advance: a
//! closed form of the queue (Barrer's M/M/1 with deterministic patience), the exact timing of
//! a deterministic chain, or an M/G/∞ occupancy.

mod common;

use cascade_sim::Simulation;
use common::{Z, assert_close, parse, run_batches, window};

/// M/M/1 whose client gives up after 3 ms (1 ms of latency each way): the cancel reaches the
/// server 3 ms after the request did, so a request still queued then leaves without adding
/// work. The server is M/M/1 with deterministic patience τ = 3 ms (Barrer 1957): with
/// θ = μ − λ, E = e^{−θτ} and p0 = (1−ρ)/(1−ρ²E), arrivals see the work ahead V with an atom
/// p0 at 0 and density λ·p0·e^{−θv} below τ, so P(dropped in the queue) = P(V > τ) = ρ·p0·E.
/// A request that started (V < τ) but whose work S ends after τ is cancelled at its worker and
/// stops when the work ends (no reply): P(V < τ, V + S > τ) = p0·e^{−μτ}(1 + λ∫₀^τ e^{λv} dv)
/// = p0·E. Both hold for ρ ≥ 1.
fn check_mm1_cancellation(lambda: f64) {
    let (mu, tau_s) = (1000.0f64, 0.003f64);
    let s = common::impatient_server(lambda, 1, "cancellation: true", 23);
    let rho = lambda / mu;
    let e = (-(mu - lambda) * tau_s).exp();
    let p0 = (1.0 - rho) / (1.0 - rho * rho * e);
    assert!((rho * p0 * e - common::barrer_drop(lambda, mu, tau_s)).abs() < 1e-12);
    let b = run_batches(&s, 0, 10.0, 10.0, 40);
    assert_close(
        &format!("M/M/1 with cancellation, λ={lambda}: dropped in the queue"),
        b.estimate(|c, _| (c.offered() - c.started) as f64 / c.offered() as f64),
        rho * p0 * e,
        0.01,
    );
    assert_close(
        &format!("M/M/1 with cancellation, λ={lambda}: stopped at the worker"),
        b.estimate(|c, _| (c.started - c.completed()) as f64 / c.offered() as f64),
        p0 * e,
        0.01,
    );
    assert_close(
        &format!("M/M/1 with cancellation, λ={lambda}: cancelled in all"),
        b.estimate(|c, _| c.cancelled as f64 / c.offered() as f64),
        (1.0 + rho) * p0 * e,
        0.01,
    );
    assert_close(
        &format!("M/M/1 with cancellation, λ={lambda}: utilisation"),
        b.estimate(|c, _| c.utilization()),
        rho * (1.0 - rho * p0 * e),
        0.01,
    );
}

#[test]
fn cancelled_requests_leave_the_queue_as_m_m_1_with_deterministic_patience() {
    check_mm1_cancellation(900.0); // ρ = 0.9: dropped 0.1667, stopped 0.1853
    check_mm1_cancellation(1500.0); // ρ = 1.5, stable only through the cancels: 0.3700, 0.2467
}

#[test]
fn cancelled_requests_leave_ten_workers_as_m_m_c_with_deterministic_patience() {
    // The multi-server form: 10 workers of 1 ms, the cancel 3 ms after the request. A queued
    // request leaves without work when its wait would pass τ, so the queue is M/M/10+D
    // (`common::mmc_plus_d`): ρ = 0.9 drops 0.00343 of the requests in the queue (rare: 40
    // batches of 10 s, 5% standard error), ρ = 1.2, stable only through the cancels, 0.1669;
    // and P(wait), 0.6585 and 0.9990.
    for (lambda, drop_rel_se) in [(9000.0, 0.05), (12000.0, 0.01)] {
        let s = common::impatient_server(lambda, 10, "cancellation: true", 59);
        let (p_drop, p_wait) = common::mmc_plus_d(10, lambda, 1000.0, 0.003);
        let b = run_batches(&s, 0, 10.0, 10.0, 40);
        assert_close(
            &format!("M/M/10 with cancellation, λ={lambda}: dropped in the queue"),
            b.estimate(|c, _| (c.offered() - c.started) as f64 / c.offered() as f64),
            p_drop,
            drop_rel_se,
        );
        assert_close(
            &format!("M/M/10 with cancellation, λ={lambda}: waited"),
            b.estimate(|c, _| c.queued as f64 / c.offered() as f64),
            p_wait,
            0.01,
        );
    }
}

/// `clients` (50 ms timeout) → `api` → `mid` → `db`, 1 ms per hop, deterministic work of 1, 1
/// and 200 ms, workers enough that nothing queues, call timeouts of 1 s. A request reaches
/// `api` at t+1, `mid` at t+3 and `db` at t+5; `db`'s work ends at t+205, so `mid` answers at
/// t+206 and `api` at t+207. The client gives up at t+50: its cancel reaches `api` at t+51,
/// `api`'s reaches `mid` at t+52 and `mid`'s reaches `db` at t+53, mid-work, which finishes
/// at t+205 and stops there. Each service's mean number of busy workers is λ times how long
/// it holds one per request (Little), given by which services honour cancellation.
fn mean_busy(honour: [bool; 3]) -> [(f64, f64); 3] {
    let [api, mid, db] = honour;
    let s = parse(&format!(
        r#"(
            version: 1, name: "chain", duration_s: 1, seed: 5,
            sources: [(name: "clients", target: "api", rate: Constant(1000), timeout_ms: 50.0)],
            services: [
                (name: "api", workers: 10000, cancellation: {api}, service_time: Deterministic(ms: 1.0),
                 calls: [(to: "mid", timeout_ms: 1000.0)]),
                (name: "mid", workers: 10000, cancellation: {mid}, service_time: Deterministic(ms: 1.0),
                 calls: [(to: "db", timeout_ms: 1000.0)]),
                (name: "db", workers: 10000, cancellation: {db}, service_time: Deterministic(ms: 200.0)),
            ],
        )"#
    ));
    let sim = common::run_for_batches(&s, 2.0, 5.0, 20);
    let history = sim.history();
    let busy = |i: usize| {
        common::Batches::of(&history.services[i], history, 2.0, 5.0, 20)
            .estimate(|c, span_ns| c.area_busy as f64 / span_ns as f64)
    };
    [busy(0), busy(1), busy(2)]
}

#[test]
fn a_cancel_travels_down_the_chain_one_latency_per_hop_and_frees_each_worker() {
    let lambda = 1000.0;
    for (honour, held_ms) in [
        // Nobody honours it: every worker is held until the answer comes back.
        ([false, false, false], [206.0, 203.0, 200.0]),
        // All do: api stops at t+51, mid at t+52; db's work runs to its end.
        ([true, true, true], [50.0, 49.0, 200.0]),
        // Only api: its cancel reaches mid, which goes on, so db is never told either.
        ([true, false, true], [50.0, 203.0, 200.0]),
    ] {
        let busy = mean_busy(honour);
        for (i, name) in ["api", "mid", "db"].into_iter().enumerate() {
            assert_close(
                &format!("{name}'s busy workers, cancellation honoured by {honour:?}"),
                busy[i],
                lambda * held_ms[i] / 1000.0,
                0.01,
            );
        }
    }
}

/// An `api` instance dies (`Kill`) at 5 s while `db` (honouring cancellation, 200 ms of
/// deterministic work, workers enough) works for it. Killed in `Refuse` mode its connections
/// are reset: every `db` attempt it had out is cancelled, one latency later. The number out is
/// M/G/∞'s occupancy, Poisson with mean λ × (200 ms of work + 1 ms on the wire) = 201, less
/// those finishing in the cancel's 1 ms flight (λ × 1 ms): mean 200. In `Blackhole` mode the
/// instance just stops answering and `db` hears nothing.
#[test]
fn a_crash_that_resets_connections_cancels_the_callees_work_and_a_blackhole_does_not() {
    for (mode, expected) in [("Refuse", 200.0f64), ("Blackhole", 0.0)] {
        let s = parse(&format!(
            r#"(
                version: 1, name: "crash", duration_s: 8, seed: 29,
                sources: [(name: "clients", target: "api", rate: Constant(1000), timeout_ms: 5000.0)],
                services: [
                    (name: "api", workers: 10000, service_time: Deterministic(ms: 1.0),
                     calls: [(to: "db", timeout_ms: 5000.0)]),
                    (name: "db", workers: 10000, cancellation: true, service_time: Deterministic(ms: 200.0)),
                ],
                faults: [(at_s: 5.0, duration_s: 1.0, fault: Kill(service: "api", mode: {mode}))],
            )"#
        ));
        let mut sim = Simulation::new(&s);
        sim.run_until_s(8.0);
        let db = window(&sim.history().services[1], 0, 8);
        let cancelled = db.cancelled as f64;
        if expected == 0.0 {
            assert_eq!(db.cancelled, 0, "a blackholed caller sends no cancel");
        } else {
            assert!(
                (cancelled - expected).abs() <= Z * expected.sqrt(),
                "{mode}: {cancelled} of db's attempts cancelled, Poisson({expected}) expected"
            );
        }
    }
}
