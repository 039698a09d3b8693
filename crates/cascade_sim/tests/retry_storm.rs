//! The retry-storm model of ground-truths.md ("Metastability"), fully specified: one FIFO
//! server with exponential service rate μ, Poisson arrivals λ, client timeout T, up to R
//! immediate retries, timed-out attempts not cancelled. In the bad state every attempt times
//! out, so the server receives (R+1)·λ attempts per second; the bad state sustains itself iff
//! (R+1)·λ > μ. Without retries there is no bad state; server-side deadline checks or a 10%
//! retry budget make it vanish.

mod common;

use cascade_sim::scenario::{Scenario, VerdictKind};
use cascade_sim::{RunSummary, Simulation};

const MU: f64 = 1000.0; // one worker, exponential 1 ms
const TIMEOUT_MS: f64 = 50.0;
const TRIGGER_AT: f64 = 10.0;

/// λ per second, `attempts` = R + 1, a slowdown ×`factor` of the server for `trigger_s`.
fn storm(
    lambda: f64,
    attempts: u32,
    factor: f64,
    trigger_s: f64,
    extra: &str,
    retry_extra: &str,
) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "storm", duration_s: 1, seed: 3,
            sources: [(name: "clients", target: "server", rate: Constant({lambda}), timeout_ms: {TIMEOUT_MS},
                       retry: (max_attempts: {attempts} {retry_extra}))],
            services: [(name: "server", workers: 1, service_time: Exponential(mean_ms: 1.0) {extra})],
            faults: [(at_s: {TRIGGER_AT}, duration_s: {trigger_s}, fault: Slow(service: "server", factor: {factor}))],
            verdict: (judge_window_s: 20),
        )"#
    ))
}

fn run(s: &Scenario, until_s: f64) -> (Simulation, RunSummary) {
    let mut sim = Simulation::new(s);
    sim.run_to(until_s, |_| {});
    let summary = sim.summary();
    (sim, summary)
}

/// Attempts per second reaching the server over `[from_s, to_s)`.
fn attempt_rate(sim: &Simulation, from_s: u32, to_s: u32) -> f64 {
    let ring = &sim.history().services[0];
    let attempts: u64 = (from_s..to_s)
        .map(|k| {
            cascade_sim::MetricsHistory::row_at(ring, k)
                .unwrap()
                .counters
                .offered()
        })
        .sum();
    attempts as f64 / f64::from(to_s - from_s)
}

#[test]
fn bad_state_attempt_rate_is_r_plus_one_times_lambda() {
    for (lambda, attempts) in [(600.0, 3), (400.0, 3), (300.0, 4), (700.0, 2)] {
        assert!(
            f64::from(attempts) * lambda > MU && lambda < MU,
            "case is inside the bistable band"
        );
        let (sim, summary) = run(&storm(lambda, attempts, 4.0, 2.0, "", ""), 90.0);
        assert_eq!(
            summary.verdict,
            VerdictKind::Metastable,
            "λ={lambda} R+1={attempts}"
        );
        // In the bad state every request makes exactly R+1 attempts, so attempts in a window
        // of W seconds are (R+1)·Poisson(λW): se = (R+1)·sqrt(λW)/W.
        let (from, to) = (50, 90);
        let w = f64::from(to - from);
        let expected = f64::from(attempts) * lambda;
        let se = f64::from(attempts) * (lambda * w).sqrt() / w;
        let rate = attempt_rate(&sim, from, to);
        assert!(
            (rate - expected).abs() <= common::Z * se,
            "λ={lambda}: {rate}/s attempts vs (R+1)λ = {expected} ± {se}"
        );
        assert!(
            summary.final_success_ratio < 0.05,
            "goodput collapses in the bad state"
        );
    }
}

#[test]
fn below_the_bistable_band_retries_cannot_sustain_a_bad_state() {
    // (R+1)·λ = 3 × 300 = 900 < μ: the same trigger heals even with retries.
    let (_, summary) = run(&storm(300.0, 3, 4.0, 2.0, "", ""), 90.0);
    assert!(
        matches!(
            summary.verdict,
            VerdictKind::Recovered | VerdictKind::Stable
        ),
        "{:?}",
        summary.verdict
    );
}

#[test]
fn without_retries_there_is_no_bad_state() {
    // Loads across the whole stable range and triggers of several sizes: always heals, within
    // the backlog drain time = backlog / (μ − λ) (ground-truths.md).
    for lambda in [200.0, 500.0, 800.0, 900.0] {
        for (factor, trigger_s) in [(4.0, 2.0), (10.0, 5.0), (2.0, 10.0)] {
            let backlog = (lambda - MU / factor).max(0.0) * trigger_s;
            let drain_s = backlog / (MU - lambda);
            let until = TRIGGER_AT + trigger_s + 2.0 * drain_s + 40.0;
            let (_, summary) = run(&storm(lambda, 1, factor, trigger_s, "", ""), until);
            assert!(
                matches!(
                    summary.verdict,
                    VerdictKind::Recovered | VerdictKind::Stable
                ),
                "λ={lambda} ×{factor} for {trigger_s}s: {:?}",
                summary.verdict
            );
            if let Some(r) = summary.recovery_seconds {
                // The backlog drains as a random walk with drift −(μ−λ) and variance (λ+μ) per
                // second: drain time ± Z·sqrt((λ+μ)·drain)/(μ−λ), plus half the 5-s smoothing
                // window and one interval.
                let spread = common::Z * ((lambda + MU) * drain_s).sqrt() / (MU - lambda);
                let bound = drain_s + spread + 3.5;
                assert!(
                    r <= bound,
                    "λ={lambda} ×{factor} {trigger_s}s: recovered after {r}s, bound {bound:.1}s"
                );
            }
        }
    }
}

#[test]
fn deadline_drop_makes_the_bad_state_vanish() {
    let (_, summary) = run(
        &storm(600.0, 3, 4.0, 2.0, ", deadline_propagation: true", ""),
        90.0,
    );
    assert_eq!(summary.verdict, VerdictKind::Recovered, "{summary:?}");
}

#[test]
fn a_ten_percent_retry_budget_makes_the_bad_state_vanish() {
    let (sim, summary) = run(
        &storm(600.0, 3, 4.0, 2.0, "", ", budget: (ratio: 0.1)"),
        90.0,
    );
    assert_eq!(summary.verdict, VerdictKind::Recovered, "{summary:?}");
    // And the amplification is bounded near 1.1× while it lasts (tokens: 10 initial + 10%).
    let rate = attempt_rate(&sim, 10, 20);
    assert!(
        rate <= 1.1 * 600.0 * 1.05 + 10.0,
        "attempts {rate}/s with a 10% budget"
    );
}

#[test]
fn teaching_scenarios_end_as_stated() {
    for file in [
        "teaching/retry-storm.ron",
        "teaching/retry-storm-mitigated.ron",
    ] {
        let s = common::shipped(file);
        let expected = s
            .expect
            .as_ref()
            .expect("teaching scenarios state their outcome")
            .verdict;
        let (_, summary) = run(&s, s.duration_s);
        assert_eq!(summary.verdict, expected, "{file}");
    }
}
