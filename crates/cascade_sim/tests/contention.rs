//! Optimistic concurrency against Brooker's backoff study ("Exponential Backoff And Jitter",
//! AWS Architecture Blog, 2015; simulator aws-samples/aws-arch-backoff-simulator).
//!
//! Brooker's model: N clients each write one row once with optimistic concurrency. A client
//! reads the version (one network hop there), the reply comes back, it writes with that
//! version (a hop there and back); a write fails if another committed since the read, and the
//! client retries after its backoff. Network delay per hop `|N(10 ms, 2 ms)|`; base 5 ms, cap
//! 2 s; `expo(n) = min(cap, base·2^n)` for retry `n ≥ 1`. He reports, at 100 clients and
//! relative to full jitter, the work (writes) and the time until the last client is done:
//! no backoff 3.0× / 0.41×, exponential 2.3× / 12.7×, equal jitter 1.02× / 1.33×,
//! decorrelated 1.26× / 0.93× (ground-truths.md). Each figure is a mean over 100 runs.
//!
//! The same model in Cascade: a `Burst` of 100 client requests at t = 0 to a service with
//! `occ: (keys: 1)` and unlimited workers. A request reads the version when its own work
//! starts and writes when it ends; its own work, `|N(20, 2√2)|`, stands for the read's reply
//! hop plus the write's request hop (two independent `N(10, 2)`); the source's link
//! `|N(10, 2)|` is the first hop and the write's reply. Cascade's exponential backoff waits
//! `base·2^(n−1)` before retry `n`, so Brooker's `5·2^n` is `base_ms: 10`; decorrelated
//! jitter starts from `base` itself (5 ms), as in his code.

mod common;

use cascade_sim::Simulation;
use cascade_sim::engine::{ServiceState, SourceState};

/// `(writes, completion_ms)` of one run of 100 clients with retry policy `retry`.
fn run_once(retry: &str, seed: u64) -> (f64, f64) {
    let scenario = common::parse(&format!(
        r#"(
            version: 1, name: "occ", duration_s: 600, seed: {seed}, sample_every: 0,
            sources: [(name: "clients", target: "row", rate: Burst(count: 100, at_s: 0.0),
                       latency_ms: 10.0, latency_sd_ms: 2.0, retry: {retry})],
            services: [(name: "row", workers: 100000, service_time: Normal(mean_ms: 20.0, sd_ms: 2.8284271),
                        occ: (keys: 1))],
        )"#
    ));
    let mut sim = Simulation::new(&scenario);
    // Run until every client is done (at most the scenario's length).
    let mut t = 0.0;
    loop {
        t += 5.0;
        sim.run_until_s(t);
        let (done, failed, last) = {
            let world = sim.world_mut();
            let mut q = world.query::<&SourceState>();
            let src = q.iter(world).next().expect("one source");
            let (c, open) = (src.metrics.totals, src.metrics.interval);
            (
                c.succeeded + open.succeeded,
                c.failed_total() + open.failed_total(),
                src.last_success_ns,
            )
        };
        assert_eq!(failed, 0, "{retry}: a client gave up");
        if done == 100 {
            let open_writes = {
                let world = sim.world_mut();
                let mut q = world.query::<&ServiceState>();
                q.iter(world)
                    .next()
                    .expect("one service")
                    .metrics
                    .interval
                    .offered()
            };
            let writes = sim.history().services[0]
                .iter()
                .map(|r| r.counters.offered())
                .sum::<u64>()
                + open_writes;
            return (writes as f64, last.expect("successes") as f64 / 1e6);
        }
        assert!(t < 600.0, "{retry}: clients still working after 600 s");
    }
}

fn mean_over_runs(retry: &str, runs: u64) -> (f64, f64) {
    let (mut w, mut c) = (0.0, 0.0);
    for seed in 1..=runs {
        let (writes, completion) = run_once(retry, seed);
        w += writes;
        c += completion;
    }
    (w / runs as f64, c / runs as f64)
}

#[test]
fn backoff_and_jitter_reproduce_brookers_ordering_and_ratios() {
    const RUNS: u64 = 100;
    let attempts = "max_attempts: 255";
    let policies = [
        ("none", format!("({attempts})")),
        (
            "exponential",
            format!("({attempts}, backoff: Exponential(base_ms: 10.0, cap_ms: 2000.0))"),
        ),
        (
            "equal",
            format!(
                "({attempts}, backoff: Exponential(base_ms: 10.0, cap_ms: 2000.0), jitter: Equal)"
            ),
        ),
        (
            "full",
            format!(
                "({attempts}, backoff: Exponential(base_ms: 10.0, cap_ms: 2000.0), jitter: Full)"
            ),
        ),
        (
            "decorrelated",
            format!(
                "({attempts}, backoff: Exponential(base_ms: 5.0, cap_ms: 2000.0), jitter: Decorrelated)"
            ),
        ),
    ];
    let results: Vec<(&str, (f64, f64))> = policies
        .iter()
        .map(|(name, p)| (*name, mean_over_runs(p, RUNS)))
        .collect();
    let full = results
        .iter()
        .find(|(n, _)| *n == "full")
        .expect("full jitter")
        .1;
    for (name, (w, c)) in &results {
        println!(
            "{name:>13}: {w:8.1} writes ({:.2}×)  {c:9.1} ms ({:.2}×)",
            w / full.0,
            c / full.1
        );
    }
    let expected = [
        ("none", 3.0, 0.41),
        ("exponential", 2.3, 12.7),
        ("equal", 1.02, 1.33),
        ("decorrelated", 1.26, 0.93),
    ];
    for (name, work, time) in expected {
        let (w, c) = results.iter().find(|(n, _)| *n == name).expect("policy").1;
        let (rw, rc) = (w / full.0, c / full.1);
        assert!(
            (rw / work - 1.0).abs() <= 0.15,
            "{name}: work {rw:.2}× vs Brooker's {work}×"
        );
        assert!(
            (rc / time - 1.0).abs() <= 0.15,
            "{name}: completion {rc:.2}× vs Brooker's {time}×"
        );
    }
}

/// Conflicts per write of `keys` keys under a Zipf law of exponent `zipf_s`, at `rate_per_s`
/// writes with a read-to-write window of `window_ms`, without retries.
fn conflict_ratio(
    keys: u32,
    zipf_s: f64,
    rate_per_s: f64,
    window_ms: f64,
    seed: u64,
) -> (f64, f64) {
    let scenario = common::parse(&format!(
        r#"(
            version: 1, name: "hot keys", duration_s: 1, seed: {seed}, sample_every: 0,
            sources: [(name: "writers", target: "store", rate: Constant({rate_per_s}))],
            services: [(name: "store", workers: 100000, service_time: Deterministic(ms: {window_ms}),
                        occ: (keys: {keys}, zipf_s: {zipf_s}))],
        )"#
    ));
    let mut sim = Simulation::new(&scenario);
    let secs = 10_000.0;
    sim.run_until_s(secs + 1.0);
    let mut c = cascade_sim::metrics::NodeCounters::default();
    for r in sim.history().services[0].iter().skip(1).take(secs as usize) {
        c.add(&r.counters);
    }
    let conflicts = c.failed[cascade_sim::metrics::Outcome::Conflict as usize] as f64;
    (conflicts / c.completed() as f64, c.completed() as f64)
}

/// The conflict probability of a write to a key written at `lambda_k` a second, with a window
/// of `w` seconds: commits on the key arrive as a Poisson stream thinned by the conflicts
/// themselves, so `q = 1 − exp(−λ_k·w·(1 − q))` (solved by iteration).
fn poisson_conflicts(lambda_k: f64, w: f64) -> f64 {
    let mut q = 0.0;
    for _ in 0..100 {
        q = 1.0 - (-lambda_k * w * (1.0 - q)).exp();
    }
    q
}

#[test]
fn hot_keys_multiply_conflicts_as_the_zipf_law_says() {
    // 100 writes/s over 100 keys, 2 ms from read to write. Uniform: each key is written
    // 1/s, and a write conflicts with probability ≈ 1 − e^(−1 × 0.002). Zipf s = 1: key k
    // takes p_k = 1/(k H₁₀₀) of the writes, and conflicts are Σ p_k q(λ p_k) — about
    // K·Σp² = 6× more.
    let (rate, w_ms, keys) = (100.0, 2.0, 100u32);
    let h: f64 = (1..=keys).map(|k| 1.0 / f64::from(k)).sum();
    let expected = |s: f64| -> f64 {
        (1..=keys)
            .map(|k| {
                let p = if s == 0.0 {
                    1.0 / f64::from(keys)
                } else {
                    1.0 / f64::from(k) / h
                };
                p * poisson_conflicts(rate * p, w_ms / 1000.0)
            })
            .sum()
    };
    for s in [0.0, 1.0] {
        let (measured, n) = conflict_ratio(keys, s, rate, w_ms, 5);
        let e = expected(s);
        let se = (e * (1.0 - e) / n).sqrt();
        assert!(
            (measured - e).abs() < common::Z * se,
            "zipf {s}: conflicts {measured:.5} vs {e:.5} (±{se:.5})"
        );
    }
}
