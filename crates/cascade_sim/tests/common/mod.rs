//! Shared helpers for the model's validation tests: building small scenarios, running them
//! headless, and batch-means statistics.
//!
//! Tolerances: every stochastic check compares an estimate with its closed form within
//! `Z` standard errors, where the standard error comes from the run itself (batch means over
//! batches much longer than the queue's relaxation time) or, for M/M/1, from Whitt's
//! asymptotic variance. With `Z = 4` a correct model fails a check with probability about
//! 6e-5 (normal approximation); a model that is off by more than a few standard errors fails.
#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use cascade_sim::Simulation;
use std::collections::VecDeque;

use cascade_sim::metrics::{MetricsHistory, NodeCounters, NodeRow};
use cascade_sim::scenario::{self, Scenario};

/// M/M/1 with deterministic patience τ (Barrer 1957): the share of arrivals whose wait would
/// reach τ, dropped without adding work, at arrival rate λ and service rate μ (per second).
/// With θ = μ − λ and E = e^{−θτ}: ρ(1−ρ)E/(1−ρ²E), for ρ ≥ 1 too.
pub fn barrer_drop(lambda: f64, mu: f64, tau_s: f64) -> f64 {
    let rho = lambda / mu;
    let e = (-(mu - lambda) * tau_s).exp();
    rho * (1.0 - rho) * e / (1.0 - rho * rho * e)
}

/// M/M/c with deterministic patience τ (dropped at dequeue once expired): `(P(drop), P(wait))`.
/// While every worker is busy, the wait V an arrival would see falls at rate 1 and grows by an
/// Exp(cμ) gap for each arrival that will be served (one that finds V < τ); level crossing
/// gives its density f(v) = λ·p_{c−1}·e^{−(cμ−λ)v} below τ and f(τ)·e^{−cμ(v−τ)} above, with
/// p_k = p_0·a^k/k! while a worker is free. So P(drop) = P(V > τ) = f(τ)/(cμ) (arrivals see
/// time averages), and p_0 comes from the total being 1. With c = 1 this is Barrer's M/M/1+D.
pub fn mmc_plus_d(c: u32, lambda: f64, mu: f64, tau_s: f64) -> (f64, f64) {
    let a = lambda / mu;
    let e = (-(f64::from(c) * mu - lambda) * tau_s).exp();
    let mut term = 1.0f64;
    let mut free = 1.0f64; // Σ_{k<c} a^k/k!
    for k in 1..c {
        term *= a / f64::from(k);
        free += term;
    }
    let f0 = lambda * term; // λ·a^{c−1}/(c−1)!, times p_0
    let cmu = f64::from(c) * mu;
    let p0 = 1.0 / (free + f0 * ((1.0 - e) / (cmu - lambda) + e / cmu));
    (f0 * p0 * e / cmu, 1.0 - free * p0)
}

/// Clients sending Poisson `lambda`/s with a 3-ms timeout (1 ms each way) to `server`:
/// `workers` workers of exponential 1-ms work that give up on a request its client no longer
/// waits for as `patience` says (`deadline_propagation: true` or `cancellation: true`).
pub fn impatient_server(lambda: f64, workers: u32, patience: &str, seed: u64) -> Scenario {
    parse(&format!(
        r#"(
            version: 1, name: "impatient", duration_s: 1, seed: {seed},
            sources: [(name: "clients", target: "server", rate: Constant({lambda}), timeout_ms: 3.0)],
            services: [(name: "server", workers: {workers}, {patience},
                        service_time: Exponential(mean_ms: 1.0))],
        )"#
    ))
}

/// Standard errors allowed between an estimate and its closed form.
pub const Z: f64 = 4.0;

/// Parses a scenario written inline.
pub fn parse(text: &str) -> Scenario {
    Scenario::from_ron_str(text, "<test>")
        .unwrap_or_else(|e| panic!("test scenario is invalid:\n{e}"))
}

/// The first problem loading scenario `text` reports (it must report one): its field path,
/// message and hint.
pub fn first_problem(text: &str) -> (String, String, Option<String>) {
    let e = Scenario::from_ron_str(text, "bad.ron").expect_err("the scenario was accepted");
    let p = e.problems[0].clone();
    (p.path.unwrap_or_default(), p.message, p.hint)
}

/// Loads a scenario shipped under `scenarios/`.
pub fn shipped(rel: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(rel);
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Every scenario file shipped under `scenarios/`, sorted.
pub fn shipped_paths() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("scenarios directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "ron") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// One FIFO service `server` fed by a Poisson source `clients`.
pub fn single_queue(
    rate_per_s: f64,
    workers: u32,
    service_time: &str,
    queue_capacity: Option<u32>,
) -> Scenario {
    let queue = match queue_capacity {
        Some(c) => format!("queue: (capacity: {c}),"),
        None => String::new(),
    };
    parse(&format!(
        r#"(
            version: 1, name: "queue", duration_s: 1, seed: 11,
            sources: [(name: "clients", target: "server", rate: Constant({rate_per_s}))],
            services: [(name: "server", workers: {workers}, {queue} service_time: {service_time})],
        )"#
    ))
}

/// Per-batch counters of one service, after a warm-up.
pub struct Batches {
    /// Counters of each batch.
    pub batches: Vec<NodeCounters>,
    /// Length of a batch, ns.
    pub batch_ns: u64,
}

/// A node's counters summed over intervals `[from, to)` of its history ring.
pub fn window(rows: &VecDeque<NodeRow>, from: u32, to: u32) -> NodeCounters {
    let mut c = NodeCounters::default();
    for k in from..to {
        c.add(
            &MetricsHistory::row_at(rows, k)
                .expect("history keeps every interval of a short run")
                .counters,
        );
    }
    c
}

/// Runs `warmup_s`, then `batches` batches of `batch_s`, and returns each batch's counters
/// for service `service` (index in file order).
pub fn run_batches(
    scenario: &Scenario,
    service: usize,
    warmup_s: f64,
    batch_s: f64,
    batches: usize,
) -> Batches {
    let sim = run_for_batches(scenario, warmup_s, batch_s, batches);
    let history = sim.history();
    Batches::of(
        &history.services[service],
        history,
        warmup_s,
        batch_s,
        batches,
    )
}

/// Runs `warmup_s` and then `batches` batches of `batch_s`; [`Batches::of`] cuts any node's
/// history of the run into the batches.
pub fn run_for_batches(
    scenario: &Scenario,
    warmup_s: f64,
    batch_s: f64,
    batches: usize,
) -> Simulation {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(warmup_s + batch_s * batches as f64);
    sim
}

/// Mean and standard error of the mean of per-batch values.
pub fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

impl Batches {
    /// The counters of each of `batches` batches of `batch_s` after `warmup_s` in `ring`, a
    /// node's rows of `history`.
    pub fn of(
        ring: &VecDeque<NodeRow>,
        history: &MetricsHistory,
        warmup_s: f64,
        batch_s: f64,
        batches: usize,
    ) -> Batches {
        let interval_s = history.interval_ns as f64 / 1e9;
        let per_batch = (batch_s / interval_s).round() as u32;
        let warm = (warmup_s / interval_s).round() as u32;
        Batches {
            batches: (0..batches as u32)
                .map(|b| window(ring, warm + b * per_batch, warm + (b + 1) * per_batch))
                .collect(),
            batch_ns: (batch_s * 1e9) as u64,
        }
    }

    /// Batch-means estimate of a per-batch statistic.
    pub fn estimate(&self, f: impl Fn(&NodeCounters, u64) -> f64) -> (f64, f64) {
        let values: Vec<f64> = self.batches.iter().map(|c| f(c, self.batch_ns)).collect();
        mean_se(&values)
    }

    /// Sum of all batches.
    pub fn total(&self) -> NodeCounters {
        let mut t = NodeCounters::default();
        for c in &self.batches {
            t.add(c);
        }
        t
    }
}

/// Asserts `|estimate − expected| ≤ Z·se` and that the run was long enough to make that a
/// real test (`se ≤ max_rel_se · expected`).
#[track_caller]
pub fn assert_close(what: &str, (estimate, se): (f64, f64), expected: f64, max_rel_se: f64) {
    assert!(
        se <= max_rel_se * expected.abs(),
        "{what}: standard error {se:.5} is more than {max_rel_se} of {expected}; the run is too short to test"
    );
    let z = (estimate - expected) / se.max(1e-12);
    assert!(
        (estimate - expected).abs() <= Z * se,
        "{what}: {estimate:.5} vs closed form {expected:.5} (se {se:.5}, z = {z:.2}; allowed {Z} se)"
    );
}
