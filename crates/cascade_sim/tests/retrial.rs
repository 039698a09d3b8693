//! Users who come back later: a retrial queue (Falin & Templeton, "Retrial Queues", 1997).
//!
//! One server (one worker, no waiting room, exponential work of mean 1/μ) and Poisson users
//! at λ. A user who finds the server busy is turned away and comes back after an exponential
//! time of mean 1/ν (`backoff: Random(mean_ms)`), as often as it takes; with `persistence`
//! p < 1 each turned-away user tries again only with probability p and gives up otherwise.
//! The users waiting to come back are the retrial queue's *orbit*.
//!
//! Closed form for p = 1 (Falin & Templeton §1.2): the server is busy a share ρ = λ/μ of the
//! time and the orbit holds on average E[N] = ρ² (μ + ν) / (ν (1 − ρ)) users, so there are
//! ν·E[N] retries a second and (Little) a user's mean time to be served is E[N]/λ + 1/μ. For
//! p < 1 there is none: the test solves the Markov chain of (server busy, orbit size)
//! numerically (truncated at 400 users in orbit, where the stationary probability is below
//! 1e-30) and compares the share of users who give up and the retry rate with it. The chain's
//! solution reproduces the closed form for p = 1 to 1e-9 (checked first).
//!
//! Ticks and network latency are 1 µs, so the 2 µs a user's attempt spends on the wire is
//! 0.05% of a retry's mean delay (left out of the expected values).

mod common;

use cascade_sim::scenario::Scenario;

const LAMBDA: f64 = 500.0;
const MU: f64 = 1000.0;
const NU: f64 = 500.0;

/// The retrial queue with persistence `p`.
fn retrial(p: f64) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "retrial queue", duration_s: 1, seed: 17, tick_ms: 0.001,
            sources: [(name: "users", target: "server", rate: Constant({LAMBDA}), latency_ms: 0.001,
                       retry: (max_attempts: 255, backoff: Random(mean_ms: {mean_ms}), persistence: {p}))],
            services: [(name: "server", workers: 1, queue: (capacity: 0),
                        service_time: Exponential(mean_ms: {work_ms}))],
        )"#,
        mean_ms = 1000.0 / NU,
        work_ms = 1000.0 / MU,
    ))
}

/// Stationary distribution of the retrial queue's Markov chain, truncated at `max_orbit`:
/// `(P(server idle, n in orbit), P(busy, n))` for n = 0..=max_orbit, by Gauss–Seidel on the
/// balance equations.
fn chain(lambda: f64, mu: f64, nu: f64, p: f64, max_orbit: usize) -> (Vec<f64>, Vec<f64>) {
    let n = max_orbit + 1;
    let (mut idle, mut busy) = (vec![1.0 / (2 * n) as f64; n], vec![1.0 / (2 * n) as f64; n]);
    for _ in 0..20_000 {
        for k in 0..n {
            let kf = k as f64;
            // Into (idle, k): a service ending in (busy, k).
            let out_idle = lambda + kf * nu;
            idle[k] = busy[k] * mu / out_idle;
            // Into (busy, k): an arrival to (idle, k), a retry from (idle, k + 1), a
            // turned-away arrival joining the orbit from (busy, k − 1), a turned-away retry
            // giving up from (busy, k + 1).
            let mut inflow = idle[k] * lambda;
            if k + 1 < n {
                inflow += idle[k + 1] * (kf + 1.0) * nu + busy[k + 1] * (kf + 1.0) * nu * (1.0 - p);
            }
            if k > 0 {
                inflow += busy[k - 1] * lambda * p;
            }
            let joins = if k + 1 < n { lambda * p } else { 0.0 };
            let out_busy = mu + joins + kf * nu * (1.0 - p);
            busy[k] = inflow / out_busy;
        }
        let total: f64 = idle.iter().chain(&busy).sum();
        idle.iter_mut()
            .chain(busy.iter_mut())
            .for_each(|x| *x /= total);
    }
    (idle, busy)
}

/// From the chain: (mean orbit size, share of users who give up).
fn chain_figures(p: f64) -> (f64, f64) {
    let (idle, busy) = chain(LAMBDA, MU, NU, p, 400);
    let orbit: f64 = (0..idle.len())
        .map(|k| k as f64 * (idle[k] + busy[k]))
        .sum();
    // Users give up when turned away and not persistent: arrivals and retries meeting a busy
    // server, each with probability 1 − p.
    let gave_up: f64 = (0..busy.len())
        .map(|k| busy[k] * (LAMBDA + k as f64 * NU) * (1.0 - p))
        .sum();
    (orbit, gave_up / LAMBDA)
}

#[test]
fn the_chain_solution_reproduces_the_closed_form() {
    let rho = LAMBDA / MU;
    let closed = rho * rho * (MU + NU) / (NU * (1.0 - rho));
    let (orbit, gave_up) = chain_figures(1.0);
    assert!((orbit - closed).abs() < 1e-9, "{orbit} vs {closed}");
    assert!(gave_up.abs() < 1e-12);
}

#[test]
fn users_who_come_back_at_random_form_the_orbit_of_a_retrial_queue() {
    // E[N] = 0.25 × 1,500 / (500 × 0.5) = 1.5: 750 retries a second (1.5 per new request),
    // and a mean of 1.5 / 500 s + 1 ms = 4 ms until served. 100 batches of 10 s after 10 s.
    let rho = LAMBDA / MU;
    let orbit = rho * rho * (MU + NU) / (NU * (1.0 - rho));
    let sim = common::run_for_batches(&retrial(1.0), 10.0, 10.0, 100);
    let users = common::Batches::of(&sim.history().sources[0], sim.history(), 10.0, 10.0, 100);
    common::assert_close(
        "retries per new request",
        users.estimate(|c, _| c.offered_retry as f64 / c.offered_first as f64),
        NU * orbit / LAMBDA,
        0.01,
    );
    common::assert_close(
        "mean time to be served, ms",
        users.estimate(|c, _| c.residence_ns as f64 / c.succeeded as f64 / 1e6),
        (orbit / LAMBDA + 1.0 / MU) * 1000.0,
        0.01,
    );
    let server = common::Batches::of(&sim.history().services[0], sim.history(), 10.0, 10.0, 100);
    common::assert_close(
        "server busy share",
        server.estimate(|c, _| c.utilization()),
        rho,
        0.01,
    );
    assert_eq!(users.total().failed_total(), 0, "nobody gives up");
}

#[test]
fn users_who_may_give_up_match_the_retrial_chain() {
    // Persistence 0.5: half the users turned away come back, half leave for good.
    let (orbit, gave_up) = chain_figures(0.5);
    let sim = common::run_for_batches(&retrial(0.5), 10.0, 10.0, 100);
    let users = common::Batches::of(&sim.history().sources[0], sim.history(), 10.0, 10.0, 100);
    common::assert_close(
        "share of users who give up",
        users.estimate(|c, _| c.failed_total() as f64 / (c.succeeded + c.failed_total()) as f64),
        gave_up,
        0.02,
    );
    common::assert_close(
        "retries per new request",
        users.estimate(|c, _| c.offered_retry as f64 / c.offered_first as f64),
        NU * orbit / LAMBDA,
        0.02,
    );
}
