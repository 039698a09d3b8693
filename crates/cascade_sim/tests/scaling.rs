//! Load-dependent service time (`scaling`) against the Universal Scalability Law (N. Gunther,
//! *Guerrilla Capacity Planning*, 2007).
//!
//! With `n` requests in their own work at once, each takes `σ(n) = 1 + α(n − 1) + βn(n − 1)`
//! times its sampled time, so a pool kept full with `c` workers completes
//! `X(c) = c / (σ(c)·S)` requests a second. An instance whose queue never empties keeps every
//! worker busy: every request starts as another ends, with `c` in their own work, itself
//! included. That is the closed form the first two tests check. The last two check what it
//! implies for an open system (the bistable band of a thread pool sized past the USL's peak):
//! arrivals λ with `X(c) < λ < max X` are served at low concurrency until a trigger fills the
//! pool, after which it completes `X(c) < λ` a second for good; below `X(c)` the same trigger
//! drains away.

mod common;

use cascade_sim::Simulation;
use cascade_sim::mechanisms::scaling::Scaling;
use cascade_sim::metrics::NodeCounters;

/// One source at `rate` (a profile) to `server`: `workers` workers, `service`, USL
/// coefficients `(α, β)`, unbounded FIFO, no timeouts.
fn scenario(rate: &str, workers: u32, service: &str, (a, b): (f64, f64)) -> Simulation {
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "usl", duration_s: 600, seed: 23, sample_every: 0,
            sources: [(name: "clients", target: "server", rate: {rate})],
            services: [(name: "server", workers: {workers}, service_time: {service},
                        scaling: (contention: {a}, coherency: {b}))],
        )"#
    ));
    Simulation::new(&s)
}

fn server(sim: &Simulation, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().services[0], from, to)
}

#[test]
fn a_full_pool_of_deterministic_work_completes_c_over_sigma_c_times_s_exactly() {
    // Deterministic work of 10 ms, offered twice what the pool completes: the queue never
    // empties after the first second. Each worker then finishes one request every
    // round(σ(c)·10 ms), so a 60-s window holds c·60/that, within one per worker.
    for (workers, a, b) in [(8, 0.1, 0.0), (50, 0.02, 0.0005), (200, 0.02, 0.0005)] {
        let usl = Scaling {
            contention: a,
            coherency: b,
            counts_present: false,
        };
        let x_per_s = usl.throughput_per_s(workers, 0.010);
        let mut sim = scenario(
            &format!("Constant({})", 2.0 * x_per_s),
            workers,
            "Deterministic(ms: 10.0)",
            (a, b),
        );
        sim.run_until_s(80.0);
        let c = server(&sim, 20, 80);
        let per_work_ns = (10_000_000.0 * usl.slowdown(workers) + 0.5) as u64 as f64;
        let expected = f64::from(workers) * 60e9 / per_work_ns;
        assert!(
            (c.succeeded as f64 - expected).abs() <= f64::from(workers),
            "{workers} workers, α {a}, β {b}: {} completions in 60 s, X(c)·60 = {expected:.1}",
            c.succeeded
        );
        // Every start saw the full pool: the mean slowdown is σ(c).
        let mean = c.mean_slowdown().expect("slowdown recorded");
        assert!(
            (mean - usl.slowdown(workers)).abs() < 1e-3 * usl.slowdown(workers),
            "mean slowdown {mean}, σ(c) = {}",
            usl.slowdown(workers)
        );
    }
}

#[test]
fn a_full_pool_of_exponential_work_completes_c_over_sigma_c_times_s() {
    // Exponential work: each busy worker completes as a Poisson process of rate 1/(σ(c)·S),
    // so the count over T seconds is Poisson with mean X(c)·T: tolerance 4·√(X·T).
    let (workers, a, b) = (100, 0.03, 0.0002);
    let usl = Scaling {
        contention: a,
        coherency: b,
        counts_present: false,
    };
    let x_per_s = usl.throughput_per_s(workers, 0.005);
    let mut sim = scenario(
        &format!("Constant({})", 1.5 * x_per_s),
        workers,
        "Exponential(mean_ms: 5.0)",
        (a, b),
    );
    sim.run_until_s(130.0);
    let c = server(&sim, 30, 130);
    let expected = x_per_s * 100.0;
    assert!(
        (c.succeeded as f64 - expected).abs() <= 4.0 * expected.sqrt(),
        "{} completions in 100 s, X(c)·100 = {expected:.0} ± {:.0}",
        c.succeeded,
        4.0 * expected.sqrt()
    );
}

/// Thread pool of 200 past the USL peak (α 0.02, β 0.0005: the peak is √1960 ≈ 44 at once,
/// 1,568/s; 200 at once complete X(200) = 200 / (24.88 · 10 ms) = 803.9/s), Poisson load
/// `base` with a 5-s spike to 2,000/s at 60 s, beyond the peak.
fn spiked(base: f64) -> Simulation {
    let mut sim = scenario(
        &format!("Spike(base_per_s: {base}, peak_per_s: 2000, start_s: 60.0, duration_s: 5.0)"),
        200,
        "Exponential(mean_ms: 10.0)",
        (0.02, 0.0005),
    );
    sim.run_until_s(240.0);
    sim
}

#[test]
fn above_the_full_pools_throughput_a_spike_locks_the_pool_in_thrashing() {
    let usl = Scaling {
        contention: 0.02,
        coherency: 0.0005,
        counts_present: false,
    };
    let x_full = usl.throughput_per_s(200, 0.010);
    assert!((x_full - 803.86).abs() < 0.01);
    // λ = 1,000/s: the low-concurrency fixed point n = λ·S·σ(n) is n ≈ 13.3 (σ ≈ 1.33), the
    // unstable one n ≈ 148; before the spike the pool works at the first.
    let sim = spiked(1000.0);
    let before = server(&sim, 10, 60);
    let slowdown = before.mean_slowdown().unwrap();
    assert!(
        (1.2..1.5).contains(&slowdown),
        "before the spike: slowdown {slowdown}, the low fixed point's σ ≈ 1.33"
    );
    assert!(before.utilization() < 0.1, "about 13 of 200 workers busy");
    // After it, every worker stays busy and the pool completes X(200) a second: fewer than
    // arrive, for good (Poisson count over 100 s: ± 4·√(X·100)).
    let after = server(&sim, 140, 240);
    let expected = x_full * 100.0;
    assert!(
        (after.succeeded as f64 - expected).abs() <= 4.0 * expected.sqrt(),
        "after the spike: {} completions in 100 s, X(200)·100 = {expected:.0}",
        after.succeeded
    );
    assert!(after.utilization() > 0.999);
    // The queue grows by λ − X(200) ≈ 196/s from the spike's end: over [140, 240) its mean is
    // at least 196 · (190 − 65) ≈ 24,500, besides what the spike left.
    let queue = after.mean_queue(100_000_000_000);
    assert!(queue > 24_000.0, "mean queue {queue}");
}

#[test]
fn below_the_full_pools_throughput_the_same_spike_drains_away() {
    // λ = 700/s < X(200): the backlog of the spike drains at X(200) − λ ≈ 104/s or faster
    // (faster as concurrency falls below 200), so the pool is back at low concurrency well
    // within the 175 s after the spike.
    let sim = spiked(700.0);
    let spike = server(&sim, 61, 65);
    assert!(spike.utilization() > 0.99, "the spike fills the pool");
    let after = server(&sim, 200, 240);
    assert!(after.utilization() < 0.1, "back to about 8 of 200 busy");
    let slowdown = after.mean_slowdown().unwrap();
    assert!(
        slowdown < 1.3,
        "slowdown {slowdown}: the low fixed point n ≈ 8, σ ≈ 1.17"
    );
    assert_eq!(after.goodput, after.resolved());
}

/// One worker, deterministic 2-ms work, Poisson 250/s (ρ = 0.5 alone), contention 0.01 over
/// every request present, and a burst of `burst` extra requests at 30 s.
fn backlog(burst: u32) -> Simulation {
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "gc", duration_s: 600, seed: 29, sample_every: 0,
            sources: [(name: "clients", target: "server", rate: Constant(250)),
                      (name: "batch", target: "server", rate: Burst(count: {burst}, at_s: 30.0))],
            services: [(name: "server", workers: 1, service_time: Deterministic(ms: 2.0),
                        scaling: (contention: 0.01, counts: Present))],
        )"#
    ));
    let mut sim = Simulation::new(&s);
    sim.run_until_s(60.0);
    sim
}

#[test]
fn counting_every_request_present_a_backlog_past_the_drift_point_grows_by_itself() {
    // With n requests present a request's work takes S·σ(n) = 2 ms · (1 + 0.01 (n − 1)),
    // during which λ·S·σ(n) arrive on average and one leaves: the backlog drifts up once
    // λ·S·σ(n) > 1, past n = 1 + (1/(λS) − 1)/α = 101 (a garbage collector whose heap grows
    // with the backlog). Half of it drains: the chance that a walk with a drift of −0.26 per
    // service and variance 0.75 climbs 51 is about e^(−2·0.26·51/0.75) ≈ e^(−35). Twice it
    // grows: down 99 against a drift of +0.5 and variance 1.5, about e^(−65).
    let drains = backlog(50);
    let after = server(&drains, 40, 60);
    assert!(
        after.mean_queue(20_000_000_000) < 5.0,
        "a burst of 50 drains: mean queue {}",
        after.mean_queue(20_000_000_000)
    );
    assert_eq!(after.goodput, after.resolved());
    let slowdown = after.mean_slowdown().unwrap();
    assert!(
        slowdown < 1.05,
        "few present once drained: slowdown {slowdown}"
    );

    let grows = backlog(200);
    let late = server(&grows, 50, 60);
    // At least 200 present from 30 s on, so every work takes at least 2 ms · 2.99 and the
    // server completes at most 167/s of the 250/s arriving; the backlog only grows.
    assert!(
        late.succeeded < 1_670,
        "completions over 10 s: {}",
        late.succeeded
    );
    let queue = late.mean_queue(10_000_000_000);
    assert!(queue > 200.0 + 83.0 * 20.0, "mean queue {queue}");
    assert!(late.mean_slowdown().unwrap() > 2.99);
}

#[test]
fn a_config_push_that_adds_contention_slows_the_full_pool_while_it_lasts() {
    // A service without `scaling` (nor any mechanism), kept full by twice what it completes
    // unslowed; from 20 s to 80 s a config push reaching every instance adds contention 0.1:
    // the pool of 8 completes 8 / (σ(8) · 10 ms) = 470.6/s (σ(8) = 1.7) while it lasts, and
    // 800/s before and after, each within one completion per worker over a window.
    let s = common::parse(
        r#"(
            version: 1, name: "push", duration_s: 600, seed: 5, sample_every: 0,
            sources: [(name: "clients", target: "server", rate: Constant(1600))],
            services: [(name: "server", workers: 8, service_time: Deterministic(ms: 10.0))],
            faults: [(at_s: 20.0, duration_s: 60.0,
                      fault: ConfigPush(service: "server", change: Scaling(contention: 0.1)))],
        )"#,
    );
    let mut sim = Simulation::new(&s);
    sim.run_until_s(140.0);
    let usl = Scaling {
        contention: 0.1,
        coherency: 0.0,
        counts_present: false,
    };
    let during = server(&sim, 30, 80).succeeded as f64;
    let per_work_ns = (10_000_000.0 * usl.slowdown(8) + 0.5) as u64 as f64;
    let expected = 8.0 * 50e9 / per_work_ns;
    assert!(
        (during - expected).abs() <= 8.0,
        "{during} completions in 50 s during the push, expected {expected:.1}"
    );
    let before = server(&sim, 5, 15).succeeded as f64;
    let after = server(&sim, 90, 140).succeeded as f64;
    assert!((before - 8000.0).abs() <= 8.0, "{before} in 10 s before");
    assert!((after - 40_000.0).abs() <= 8.0, "{after} in 50 s after");
}
