//! Key-based routing (`sharding`) against the shares its key distribution gives each shard.
//!
//! Key k of K belongs to the instance of ordinal k mod n. With key popularity pₖ (uniform, or
//! Zipf with exponent s: pₖ ∝ (k + 1)^(−s)), instance i owns the share Σ_{k ≡ i (mod n)} pₖ of
//! the requests, computed here independently of the engine. A killed owner fails exactly its
//! keys' requests when there is no other replica; with two replicas and a retry, none.

mod common;

use cascade_sim::Simulation;
use cascade_sim::metrics::NodeCounters;

/// The share of requests whose key instance `i` of `n` owns, for `keys` keys of Zipf
/// exponent `s`.
fn owned_share(i: u32, n: u32, keys: u32, s: f64) -> f64 {
    let weight = |k: u32| f64::from(k + 1).powf(-s);
    let total: f64 = (0..keys).map(weight).sum();
    (0..keys).filter(|k| k % n == i).map(weight).sum::<f64>() / total
}

/// 2000 requests/s to `store` (4 instances, `replicas`, 100 keys of exponent `zipf_s`), clients
/// with `attempts` tries; the instance of ordinal 0 (the hottest keys' owner) refuses from
/// 5 s on.
fn killed_owner(zipf_s: f64, replicas: u32, attempts: u32) -> Simulation {
    let s = common::parse(&format!(
        r#"(
            version: 1, name: "shards", duration_s: 1, seed: 37, sample_every: 0,
            sources: [(name: "users", target: "store", rate: Constant(2000), timeout_ms: 1000.0,
                       retry: (max_attempts: {attempts}))],
            services: [(name: "store", instances: 4, workers: 100, service_time: Exponential(mean_ms: 1.0),
                        sharding: (keys: 100, zipf_s: {zipf_s}, replicas: {replicas}))],
            faults: [(at_s: 5.0, fault: Kill(service: "store", instances: First(1)))],
        )"#
    ));
    let mut sim = Simulation::new(&s);
    sim.run_until_s(70.0);
    sim
}

fn users(sim: &Simulation, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().sources[0], from, to)
}

#[test]
fn a_dead_owner_fails_exactly_the_share_of_requests_its_keys_get() {
    // Without replicas or retries, the requests for the dead instance's keys are refused and
    // all others served: the failed share is its owned share (binomial: 4 standard errors).
    for zipf_s in [0.0, 0.5, 1.0] {
        let sim = killed_owner(zipf_s, 1, 1);
        let c = users(&sim, 10, 70);
        let n = c.offered_first as f64;
        let failed = 1.0 - c.goodput as f64 / n;
        let expected = owned_share(0, 4, 100, zipf_s);
        let se = (expected * (1.0 - expected) / n).sqrt();
        assert!(
            (failed - expected).abs() <= common::Z * se,
            "zipf {zipf_s}: {failed:.4} failed, the dead owner's keys get {expected:.4}"
        );
    }
    // The hot keys' owner costs more than its quarter: 34% of the requests at Zipf 1.
    assert!(owned_share(0, 4, 100, 1.0) > 0.34);
}

#[test]
fn a_second_replica_and_a_retry_serve_every_key() {
    // Two replicas: attempt 1 goes to the key's first owner, attempt 2 to the next. With the
    // first owner of a quarter of the keys dead, every request still succeeds, those keys on
    // their second try (so the retried share is the dead instance's owned share).
    let sim = killed_owner(1.0, 2, 2);
    let c = users(&sim, 10, 70);
    assert_eq!(c.failed_total(), 0, "every request served");
    assert!(c.goodput > 0);
    let n = c.offered_first as f64;
    let retried = c.offered_retry as f64 / n;
    let expected = owned_share(0, 4, 100, 1.0);
    let se = (expected * (1.0 - expected) / n).sqrt();
    assert!(
        (retried - expected).abs() <= common::Z * se,
        "{retried:.4} retried, the dead owner's keys get {expected:.4}"
    );
}

#[test]
fn a_hedge_to_a_sharded_store_goes_to_the_next_owner() {
    // 4 instances, 2 replicas, uniform keys; the first instance 20× slow (5 → 100 ms); clients
    // hedge after d = 20 ms; links L = 1 ms; no queueing (200 workers each). A request whose
    // key's first owner takes X₁ and whose hedge's owner takes X₂ (exponential, independent) is
    // answered after E[min(2L + X₁, d + 2L + X₂)] = 2L + m₁(1 − e^(−d/m₁)) +
    // e^(−d/m₁)/(1/m₁ + 1/m₂). Keys of the slow instance hedge to a fast one: 24.03 ms; keys
    // of the instance before it hedge to the slow one: 6.995 ms; the other half: 6.954 ms. The
    // mean, 11.23 ms, within 4 standard errors (had the hedge gone to the same owner, the slow
    // keys would take 61.1 ms and the mean 20.5 ms).
    let s = common::parse(
        r#"(
            version: 1, name: "hedged shards", duration_s: 1, seed: 41, sample_every: 0,
            sources: [(name: "users", target: "store", rate: Constant(1000), hedge_after_ms: 20.0)],
            services: [(name: "store", instances: 4, workers: 200, service_time: Exponential(mean_ms: 5.0),
                        sharding: (keys: 1000, replicas: 2))],
            faults: [(at_s: 0.0, fault: Slow(service: "store", instances: First(1), factor: 20.0))],
        )"#,
    );
    let mut sim = Simulation::new(&s);
    sim.run_until_s(61.0);
    let c = users(&sim, 1, 61);
    let n = c.succeeded as f64;
    let mean_ms = c.residence_ns as f64 / n / 1e6;
    let (l, d) = (1.0f64, 20.0f64);
    let answer = |m1: f64, m2: f64| {
        2.0 * l + m1 * (1.0 - (-d / m1).exp()) + (-d / m1).exp() / (1.0 / m1 + 1.0 / m2)
    };
    let expected = (answer(100.0, 5.0) + answer(5.0, 100.0) + 2.0 * answer(5.0, 5.0)) / 4.0;
    assert!((expected - 11.233).abs() < 0.01, "{expected}");
    // The latency's standard deviation is below 30 ms (the slow keys' answer is at most
    // d + 2L + X₂ after a 20-ms wait), so its standard error is below 30/√n.
    assert!(
        (mean_ms - expected).abs() <= common::Z * 30.0 / n.sqrt(),
        "mean {mean_ms:.3} ms against {expected:.3} ms"
    );
}
