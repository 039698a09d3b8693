//! DNS failures (DESIGN §3.3) against answers stated in advance.
//!
//! The rule (docs/model.md, "DNS failures"): callers cached the callee's address at moments
//! spread evenly before the failure, so their cached answers run out spread evenly over the
//! TTL after it. A source's users: a share `elapsed / ttl` of its requests find no address;
//! instance `i` of `n` of a calling service: from `(i + ½)/n` of the TTL on; a process that
//! starts during the failure: at once. An unresolved attempt is never sent and fails as
//! `unresolved`, at the callee whose name failed.

mod common;

use cascade_sim::Simulation;
use cascade_sim::causality::{CauseSite, Origin};
use cascade_sim::metrics::{NodeCounters, Outcome};
use cascade_sim::scenario::Scenario;

/// Runs `scenario` to `until_s`.
fn run(scenario: &Scenario, until_s: f64) -> Simulation {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(until_s);
    sim
}

/// The first source's counters over intervals `[from, to)`.
fn users(sim: &Simulation, from: u32, to: u32) -> NodeCounters {
    common::window(&sim.history().sources[0], from, to)
}

/// Requests the counters saw finish (succeeded or failed).
fn finished(c: &NodeCounters) -> u64 {
    c.succeeded + c.failed_total()
}

fn unresolved(c: &NodeCounters) -> u64 {
    c.failed[Outcome::Unresolved as usize]
}

#[test]
fn a_sources_users_lose_their_cached_address_evenly_over_the_ttl() {
    // 4,000 users' requests a second straight to `api`; its name stops resolving at 5 s for
    // 20 s with a TTL of 10 s. In the k-th second of the failure a share (k + ½)/10 of the
    // requests find no address (the mean of elapsed/ttl over that second); from 10 s on
    // every one; none before the failure or after it. Each second's share is tested against
    // its binomial standard error (`common::Z` of them), and the ten seconds' total against
    // the sum of the shares.
    let s = common::parse(
        r#"(
            version: 1, name: "users lose the address", duration_s: 1, seed: 11,
            sources: [(name: "users", target: "api", rate: Constant(4000), timeout_ms: 1000.0,
                       retry: (max_attempts: 1))],
            services: [(name: "api", workers: 200, service_time: Exponential(mean_ms: 1.0))],
            faults: [(at_s: 5.0, duration_s: 20.0, fault: DnsFailure(service: "api", ttl_s: 10.0))],
        )"#,
    );
    let sim = run(&s, 30.0);
    assert_eq!(users(&sim, 0, 5).failed_total(), 0, "no failure before it");
    assert_eq!(users(&sim, 26, 30).failed_total(), 0, "none after it");
    let (mut failed, mut expected, mut var) = (0u64, 0.0, 0.0);
    for k in 0..10u32 {
        let c = users(&sim, 5 + k, 6 + k);
        assert_eq!(
            unresolved(&c),
            c.failed_total(),
            "second {k}: every failure is an unresolved name"
        );
        let n = finished(&c) as f64;
        let p = (f64::from(k) + 0.5) / 10.0;
        let share = unresolved(&c) as f64 / n;
        let se = (p * (1.0 - p) / n).sqrt();
        assert!(
            (share - p).abs() <= common::Z * se,
            "second {k} of the failure: {share:.4} of {n} requests unresolved, expected {p:.4} (se {se:.4})"
        );
        failed += unresolved(&c);
        expected += p * n;
        var += p * (1.0 - p) * n;
    }
    assert!(
        (failed as f64 - expected).abs() <= common::Z * var.sqrt(),
        "ten seconds: {failed} unresolved against {expected:.0} (sd {:.1})",
        var.sqrt()
    );
    for k in 15..25 {
        let c = users(&sim, k, k + 1);
        assert!(
            c.succeeded == 0 && unresolved(&c) > 3_000,
            "second {k}: {c:?}"
        );
    }
    // None of them reached api, and every one started at api's name.
    let api = common::window(&sim.history().services[0], 15, 25);
    assert_eq!(api.offered_first, 0, "unresolved requests are never sent");
    let origins: Vec<(Origin, u64)> = sim
        .history()
        .causes
        .totals
        .iter()
        .filter(|((site, _), _)| matches!(site, CauseSite::Source(_)))
        .map(|(&(_, o), &n)| (o, n))
        .collect();
    let all = users(&sim, 0, 30).failed_total();
    assert_eq!(origins, vec![(Origin::Service(0), all)]);
    let mut sim = sim;
    assert_eq!(sim.summary().causality.expect("users failed").root, "api");
}

#[test]
fn a_calling_services_instances_run_out_one_after_another() {
    // `front` has 4 instances in round robin and calls `back`, whose name fails at 10 s with a
    // TTL of 8 s: instance i's cached answer runs out at 10 + 8·(i + ½)/4 s — 11, 13, 15 and
    // 17 s — so the users' failures are 0, ¼, ½, ¾ and then all of their requests, stepping
    // on those seconds. Round robin splits each second's requests among the instances to
    // within one request each, so the count is exact to the number of instances run out.
    // A user's request fails as `dependency_failed` (its call to `back` failed at `front`),
    // and each of those calls is a local failure of `front`.
    let s = common::parse(
        r#"(
            version: 1, name: "instances run out", duration_s: 1, seed: 3,
            sources: [(name: "users", target: "front", rate: Constant(1000), timeout_ms: 1000.0,
                       retry: (max_attempts: 1))],
            services: [
                (name: "front", instances: 4, workers: 100, service_time: Deterministic(ms: 0.1),
                 calls: [(to: "back", timeout_ms: 500.0)]),
                (name: "back", workers: 100, service_time: Deterministic(ms: 0.1)),
            ],
            faults: [(at_s: 10.0, duration_s: 15.0, fault: DnsFailure(service: "back", ttl_s: 8.0))],
        )"#,
    );
    let sim = run(&s, 30.0);
    let expected_quarters = |second: u32| match second {
        0..=10 => 0,
        11 | 12 => 1,
        13 | 14 => 2,
        15 | 16 => 3,
        17..=24 => 4,
        _ => 0,
    };
    for k in 0..30u32 {
        let c = users(&sim, k, k + 1);
        let q = expected_quarters(k);
        let n = finished(&c);
        let want = n * q / 4;
        let failed = c.failed[Outcome::DependencyFailed as usize];
        assert_eq!(failed, c.failed_total(), "second {k}");
        // Round robin's split is exact to one request per instance; the requests on their
        // way at a second's edges (4.2 ms of travel and work at 1,000 a second, about 5)
        // may finish in the next one.
        assert!(
            failed.abs_diff(want) <= q + 5,
            "second {k}: {failed} of {n} requests failed, expected {q}/4 of them"
        );
    }
    let front = common::window(&sim.history().services[0], 0, 30);
    assert_eq!(front.local_rejected, users(&sim, 0, 30).failed_total());
}

#[test]
fn a_process_that_starts_during_the_failure_has_nothing_cached() {
    // `back`'s name fails from 5 s to 30 s with a TTL of an hour: the two running instances
    // of `front` keep their cached address throughout. Instance 0 is killed from 10 s to
    // 12 s; the process that comes back never resolved `back`, so from 12 s every request
    // round robin gives it fails unresolved (half of them, to within one a second), while
    // instance 1 serves all of its own; after 30 s nothing fails.
    let s = common::parse(
        r#"(
            version: 1, name: "fresh process", duration_s: 1, seed: 8,
            sources: [(name: "users", target: "front", rate: Constant(1000), timeout_ms: 1000.0,
                       retry: (max_attempts: 1))],
            services: [
                (name: "front", instances: 2, workers: 100, service_time: Deterministic(ms: 0.1),
                 calls: [(to: "back", timeout_ms: 500.0)]),
                (name: "back", workers: 100, service_time: Deterministic(ms: 0.1)),
            ],
            faults: [
                (at_s: 5.0, duration_s: 25.0, fault: DnsFailure(service: "back", ttl_s: 3600.0)),
                (at_s: 10.0, duration_s: 2.0, fault: Kill(service: "front", instances: First(1))),
            ],
        )"#,
    );
    let sim = run(&s, 35.0);
    let front = |from, to| common::window(&sim.history().services[0], from, to);
    assert_eq!(front(0, 12).local_rejected, 0, "cached until the kill");
    for k in 12..30u32 {
        let c = users(&sim, k, k + 1);
        let n = finished(&c);
        let failed = c.failed[Outcome::DependencyFailed as usize];
        assert_eq!(failed, c.failed_total(), "second {k}");
        // Round robin alternates; requests on their way at a second's edges (about 5) may
        // finish in the next one.
        assert!(
            failed.abs_diff(n / 2) <= 1 + 5,
            "second {k}: {failed} of {n} failed, expected half"
        );
    }
    assert_eq!(
        front(12, 30).local_rejected,
        users(&sim, 12, 31).failed_total(),
        "every failure is one of front's unresolved calls"
    );
    assert_eq!(users(&sim, 31, 35).failed_total(), 0, "resolves again");
}

#[test]
fn without_a_cache_every_attempt_fails_at_once_and_retries_do_not_help() {
    // TTL 0: every call fails from the first instant. Each user's request makes its three
    // attempts at once (no backoff), all unresolved: three local failures per request, none
    // sent; the moment the failure ends, everything is served again.
    let s = common::parse(
        r#"(
            version: 1, name: "no cache", duration_s: 1, seed: 2,
            sources: [(name: "users", target: "api", rate: Constant(500), timeout_ms: 1000.0,
                       retry: (max_attempts: 3))],
            services: [(name: "api", workers: 50, service_time: Exponential(mean_ms: 1.0))],
            faults: [(at_s: 2.0, duration_s: 3.0, fault: DnsFailure(service: "api"))],
        )"#,
    );
    let sim = run(&s, 8.0);
    let during = users(&sim, 2, 5);
    assert_eq!(users(&sim, 3, 5).succeeded, 0);
    assert_eq!(unresolved(&during), during.offered_first);
    assert_eq!(during.local_rejected, 3 * during.offered_first);
    assert_eq!(during.offered_retry, 0, "an unresolved retry is never sent");
    // (What reaches api in the failure's first second was sent before it.)
    let api = common::window(&sim.history().services[0], 3, 5);
    assert_eq!(api.offered_first + api.offered_retry, 0);
    let after = users(&sim, 5, 8);
    assert_eq!(after.failed_total(), 0);
    assert!(after.succeeded > 1_000);
}

#[test]
fn bad_dns_failures_are_explained() {
    let text = |fault: &str| {
        format!(
            r#"(
                version: 1, name: "bad", duration_s: 10,
                sources: [(name: "users", target: "api", rate: Constant(10))],
                services: [
                    (name: "api", workers: 1, service_time: Exponential(mean_ms: 1.0)),
                    (name: "lonely", workers: 1, service_time: Exponential(mean_ms: 1.0)),
                ],
                faults: [(at_s: 1.0, fault: {fault})],
            )"#
        )
    };
    // Each is reported at its place in the text (line 8, where the fault is), with a hint.
    let first = |fault: &str| {
        let e = Scenario::from_ron_str(&text(fault), "bad.ron").expect_err(fault);
        assert_eq!(e.problems[0].line, 8, "{e:?}");
        common::first_problem(&text(fault))
    };
    let (path, message, hint) = first(r#"DnsFailure(service: "apy")"#);
    assert_eq!(path, "faults[0].fault.service");
    assert!(message.contains("apy"), "{message}");
    assert!(hint.is_some_and(|h| h.contains("\"api\"")));
    let (path, message, _) = first(r#"DnsFailure(service: "api", ttl_s: -1.0)"#);
    assert_eq!(path, "faults[0].fault.ttl_s");
    assert!(message.contains("-1"), "{message}");
    let (path, message, hint) = first(r#"DnsFailure(service: "lonely")"#);
    assert_eq!(path, "faults[0].fault.service");
    assert_eq!(message, "nothing calls \"lonely\"");
    assert!(hint.is_some());
}
