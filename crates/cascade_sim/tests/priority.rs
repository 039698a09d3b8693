//! Criticality and priority queues (`criticality` on a source, `queue: (discipline:
//! Priority)` on a service), against Cobham's formula for the non-preemptive priority M/M/1
//! queue and against the exact stationary distribution of the push-out M/M/1/K chain.

mod common;

use cascade_sim::metrics::NodeCounters;
use common::{assert_close, parse, run_for_batches};

/// Two classes at one exponential server of rate μ, non-preemptive priority (Cobham 1954):
/// with W0 = Σ λᵢ·E[Sᵢ²]/2 (E[S²] = 2/μ²) and σₖ the load of the classes up to k, class k waits
/// W0 / ((1 − σₖ₋₁)(1 − σₖ)) on average.
fn cobham_waits_s(lambda_hi: f64, lambda_lo: f64, mu: f64) -> (f64, f64) {
    let w0 = (lambda_hi + lambda_lo) * (2.0 / (mu * mu)) / 2.0;
    let (s1, s2) = (lambda_hi / mu, (lambda_hi + lambda_lo) / mu);
    (w0 / (1.0 - s1), w0 / ((1.0 - s1) * (1.0 - s2)))
}

/// Mean end-to-end latency of each source's successes over 40 batches of 10 s after 10 s.
fn source_latencies_ms(text: &str) -> [(f64, f64); 2] {
    let s = parse(text);
    let sim = run_for_batches(&s, 10.0, 10.0, 40);
    let history = sim.history();
    let mean = |i: usize| {
        common::Batches::of(&history.sources[i], history, 10.0, 10.0, 40)
            .estimate(|c: &NodeCounters, _| c.mean_residence_ms())
    };
    [mean(0), mean(1)]
}

#[test]
fn a_priority_queue_serves_each_class_as_cobham_says() {
    // 300/s CriticalPlus and 500/s Sheddable at one 1-ms exponential server (ρ = 0.8):
    // W = 1.143 ms and 5.714 ms (their λ-weighted mean is FIFO's 4 ms: Kleinrock's
    // conservation law). A client sees 1 ms each way and 1 ms of work on top.
    let (w_hi, w_lo) = cobham_waits_s(300.0, 500.0, 1000.0);
    assert!(((300.0 * w_hi + 500.0 * w_lo) / 800.0 - 0.004).abs() < 1e-12);
    let [hi, lo] = source_latencies_ms(
        r#"(
            version: 1, name: "cobham", duration_s: 1, seed: 41,
            sources: [
                (name: "gold", target: "server", rate: Constant(300), criticality: CriticalPlus),
                (name: "bronze", target: "server", rate: Constant(500), criticality: Sheddable),
            ],
            services: [(name: "server", workers: 1, queue: (discipline: Priority),
                        service_time: Exponential(mean_ms: 1.0))],
        )"#,
    );
    assert_close("CriticalPlus latency", hi, 3.0 + w_hi * 1e3, 0.01);
    assert_close("Sheddable latency", lo, 3.0 + w_lo * 1e3, 0.02);
}

#[test]
fn criticality_travels_with_the_calls_it_causes() {
    // The same two classes reach the priority queue through `api` (no queue, 0.5 ms of fixed
    // work: a Poisson stream shifted by a constant stays Poisson), so db is the Cobham queue
    // above; a client sees 5.5 ms of hops and work around db's wait. The classes' order is
    // the other way round here: Critical is served before SheddablePlus.
    let (w_hi, w_lo) = cobham_waits_s(300.0, 500.0, 1000.0);
    let [hi, lo] = source_latencies_ms(
        r#"(
            version: 1, name: "cobham via api", duration_s: 1, seed: 43,
            sources: [
                (name: "batch", target: "api", rate: Constant(500), criticality: SheddablePlus),
                (name: "web", target: "api", rate: Constant(300)),
            ],
            services: [
                (name: "api", workers: 10000, service_time: Deterministic(ms: 0.5), calls: [(to: "db")]),
                (name: "db", workers: 1, queue: (discipline: Priority), service_time: Exponential(mean_ms: 1.0)),
            ],
        )"#,
    );
    assert_close("Critical (web) latency", lo, 5.5 + w_hi * 1e3, 0.01);
    assert_close("SheddablePlus (batch) latency", hi, 5.5 + w_lo * 1e3, 0.02);
}

#[test]
fn an_earliest_deadline_queue_serves_short_deadlines_first_as_cobham_says() {
    // No criticality: 300/s of interactive requests whose callers wait 100 ms and 500/s of
    // batch ones that wait 10 s, at one 1-ms exponential server with an earliest-deadline-first
    // queue. An interactive request's deadline (sent + 100 ms) comes before that of every batch
    // request that has waited less than 9.9 s, which at ρ = 0.8 does not happen, and each class
    // is served oldest first: it is Cobham's two-class queue above (W = 1.143 and 5.714 ms).
    let (w_hi, w_lo) = cobham_waits_s(300.0, 500.0, 1000.0);
    let [hi, lo] = source_latencies_ms(
        r#"(
            version: 1, name: "edf", duration_s: 1, seed: 47,
            sources: [
                (name: "interactive", target: "server", rate: Constant(300), timeout_ms: 100.0),
                (name: "batch", target: "server", rate: Constant(500), timeout_ms: 10000.0),
            ],
            services: [(name: "server", workers: 1, queue: (discipline: Deadline),
                        service_time: Exponential(mean_ms: 1.0))],
        )"#,
    );
    assert_close("interactive latency", hi, 3.0 + w_hi * 1e3, 0.01);
    assert_close("batch latency", lo, 3.0 + w_lo * 1e3, 0.02);
}

#[test]
fn an_earliest_deadline_queue_with_one_deadline_for_all_is_fifo() {
    // Every request has the same timeout, so deadlines come in arrival order: the same run as
    // a FIFO queue, to the byte (two sources, three workers, a bounded queue that rejects).
    let run = |discipline: &str| {
        let s = parse(&format!(
            r#"(
                version: 1, name: "edf fifo", duration_s: 1, seed: 53,
                sources: [
                    (name: "a", target: "server", rate: Constant(1500), timeout_ms: 50.0),
                    (name: "b", target: "server", rate: Constant(1500), timeout_ms: 50.0),
                ],
                services: [(name: "server", workers: 3, queue: (capacity: 20, discipline: {discipline}),
                            service_time: Exponential(mean_ms: 1.0))],
            )"#
        ));
        let sim = run_for_batches(&s, 0.0, 10.0, 3);
        let h = sim.history();
        let rejected: u64 = h.services[0].iter().map(|r| r.counters.rejected).sum();
        (format!("{:?} {:?}", h.services, h.sources), rejected)
    };
    let ((fifo, rejected), (edf, _)) = (run("Fifo"), run("Deadline"));
    assert!(rejected > 100, "the queue fills ({rejected} rejected)");
    assert!(
        fifo == edf,
        "a deadline queue with one deadline for all runs as FIFO"
    );
}

/// The push-out M/M/1/K chain with two classes, solved exactly: `(P(full), P(full with no
/// low-class request waiting))`. State: what the server holds (nothing, high, low) and how many
/// of each class wait (h + l ≤ K − 1). A high arrival to a full system pushes out a waiting
/// low one if there is one; a completion takes the next high, else the next low.
fn push_out_chain(lambda_hi: f64, lambda_lo: f64, mu: f64, k: usize) -> (f64, f64) {
    let q = k - 1;
    let index = |server: usize, h: usize, l: usize| (server * (q + 1) + h) * (q + 1) + l;
    let n = 3 * (q + 1) * (q + 1);
    let valid = |server: usize, h: usize, l: usize| h + l <= q && (server != 0 || h + l == 0);
    // Uniformised chain, iterated to its fixed point.
    let rate = lambda_hi + lambda_lo + mu;
    let mut p = vec![0.0f64; n];
    p[index(0, 0, 0)] = 1.0;
    for _ in 0..200_000 {
        let mut next = vec![0.0f64; n];
        for server in 0..3 {
            for h in 0..=q {
                for l in 0..=q {
                    if !valid(server, h, l) {
                        continue;
                    }
                    let mass = p[index(server, h, l)];
                    if mass == 0.0 {
                        continue;
                    }
                    let full = server != 0 && h + l == q;
                    let mut stay = rate;
                    // High arrival.
                    let to = if server == 0 {
                        Some(index(1, 0, 0))
                    } else if !full {
                        Some(index(server, h + 1, l))
                    } else if l > 0 {
                        Some(index(server, h + 1, l - 1))
                    } else {
                        None
                    };
                    if let Some(to) = to {
                        next[to] += mass * lambda_hi / rate;
                        stay -= lambda_hi;
                    }
                    // Low arrival.
                    let to = if server == 0 {
                        Some(index(2, 0, 0))
                    } else if !full {
                        Some(index(server, h, l + 1))
                    } else {
                        None
                    };
                    if let Some(to) = to {
                        next[to] += mass * lambda_lo / rate;
                        stay -= lambda_lo;
                    }
                    // Completion.
                    if server != 0 {
                        let to = if h > 0 {
                            index(1, h - 1, l)
                        } else if l > 0 {
                            index(2, 0, l - 1)
                        } else {
                            index(0, 0, 0)
                        };
                        next[to] += mass * mu / rate;
                        stay -= mu;
                    }
                    next[index(server, h, l)] += mass * stay / rate;
                }
            }
        }
        let change: f64 = next.iter().zip(&p).map(|(a, b)| (a - b).abs()).sum();
        p = next;
        if change < 1e-14 {
            break;
        }
    }
    let (mut full, mut full_no_low) = (0.0, 0.0);
    for server in 1..3 {
        for h in 0..=q {
            let l = q - h;
            full += p[index(server, h, l)];
            if l == 0 {
                full_no_low += p[index(server, h, l)];
            }
        }
    }
    (full, full_no_low)
}

#[test]
fn a_full_priority_queue_pushes_out_the_least_critical() {
    // 300/s Critical and 600/s Sheddable, one 1-ms exponential server, a queue of 4 (K = 5).
    // The number in the system is M/M/1/K's whatever the classes (an arrival to a full system
    // is lost or pushes another out), so P(full) = (1−ρ)ρ^K/(1−ρ^{K+1}) = 0.1260 at ρ = 0.9;
    // the high class loses only what arrives to a system full of high requests, the low class
    // everything else: λ_hi·P(full, none low waiting) against λ_lo·P(full) + λ_hi·P(full,
    // some low waiting), from the chain.
    let (lambda_hi, lambda_lo, mu) = (300.0, 600.0, 1000.0);
    let (full, full_no_low) = push_out_chain(lambda_hi, lambda_lo, mu, 5);
    let rho: f64 = 0.9;
    let p_k = (1.0 - rho) * rho.powi(5) / (1.0 - rho.powi(6));
    assert!(
        (full - p_k).abs() < 1e-9,
        "the chain's P(full) {full} vs {p_k}"
    );
    let s = parse(
        r#"(
            version: 1, name: "push-out", duration_s: 1, seed: 47,
            sources: [
                (name: "important", target: "server", rate: Constant(300)),
                (name: "bulk", target: "server", rate: Constant(600), criticality: Sheddable),
            ],
            services: [(name: "server", workers: 1, queue: (capacity: 4, discipline: Priority),
                        service_time: Exponential(mean_ms: 1.0))],
        )"#,
    );
    // 80 batches: the Critical class loses about 1 request in 220.
    let sim = run_for_batches(&s, 10.0, 10.0, 80);
    let history = sim.history();
    let lost_share = |ring| {
        common::Batches::of(ring, history, 10.0, 10.0, 80).estimate(|c: &NodeCounters, _| {
            c.failed[cascade_sim::metrics::Outcome::Rejected as usize] as f64
                / c.offered_first as f64
        })
    };
    assert_close(
        "all requests lost (M/M/1/K)",
        common::Batches::of(&history.services[0], history, 10.0, 10.0, 80)
            .estimate(|c: &NodeCounters, _| c.rejected as f64 / c.offered() as f64),
        p_k,
        0.01,
    );
    assert_close(
        "Critical requests lost",
        lost_share(&history.sources[0]),
        full_no_low,
        0.05,
    );
    assert_close(
        "Sheddable requests lost",
        lost_share(&history.sources[1]),
        (lambda_lo * full + lambda_hi * (full - full_no_low)) / lambda_lo,
        0.01,
    );
}
