//! A hand-specialised simulation of the three-tier benchmark, as a yardstick for the engine.
//!
//! Issue 2 states the engine's speed target against "a hand-specialised single-purpose Rust
//! simulation" of `scenarios/bench/three-tier.ron`, measured on another day and host. This is
//! such a program, so the ratio can be measured on the same machine in the same minute
//! (docs/performance.md). It owns nothing the product uses.
//!
//! The model, fixed in code: Poisson arrivals at 800/s → `api` (32 workers, FIFO, exponential
//! 5 ms) → one synchronous call to `db` (16 workers, FIFO, exponential 10 ms) with a 100-ms
//! timeout and up to 3 attempts, no backoff; 1 ms of latency per hop; the callee keeps working
//! on attempts whose caller gave up. Metrics like the engine's: per 1-s interval, each node's
//! offered, succeeded and failed counts and a log-bucket latency histogram whose p50/p99 are
//! read at every interval's end. What it leaves out is what makes it single-purpose: no other
//! distributions, balancers, mechanisms, faults, edits, sampled journeys or live views. The
//! third argument picks how far it is specialised:
//! - `lines` (the default): events at "now + 1 ms" and "now + 100 ms" go to FIFO delay lines
//!   (they come out in time order), the rest to a binary heap;
//! - `heap`: every event in one binary heap;
//! - `planned`: `lines`, plus the engine's fast paths written for this model: `db` plans each
//!   attempt at arrival (FIFO with 16 workers: its start is the earlier of its arrival and the
//!   first worker's release, so no completion event), `api`'s work end and its call's arrival
//!   at `db` are one event, and the client's reply is counted when it leaves `api`.
//!
//! `cargo run --release -p cascade_sim --example hand_three_tier [-- SIM_SECONDS [SEED [MODE]]]`
//! prints one JSON object, with `hops` counted as the engine counts them (attempts delivered to
//! a service) and the statistics the engine's run of the same scenario can be compared with.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use cascade_sim::rng::{self, SimRng};

const MS: u64 = 1_000_000;
const RATE_PER_S: f64 = 800.0;
const API_WORKERS: u32 = 32;
const API_MEAN_NS: f64 = 5.0 * MS as f64;
const DB_WORKERS: u32 = 16;
const DB_MEAN_NS: f64 = 10.0 * MS as f64;
const LATENCY_NS: u64 = MS;
const TIMEOUT_NS: u64 = 100 * MS;
const MAX_ATTEMPTS: u8 = 3;
const INTERVAL_NS: u64 = 1_000 * MS;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A client request is created (and the next one is due).
    Source,
    /// A request reaches `api`.
    ApiArrive,
    /// `api`'s own work on a request ends: it calls `db`.
    ApiWorkDone,
    /// An attempt reaches `db`.
    DbArrive,
    /// `db`'s work on an attempt ends: it replies.
    DbDone,
    /// `db`'s reply reaches `api`.
    DbReply,
    /// `api`'s timeout for an attempt.
    Timeout,
    /// `api`'s reply reaches the client.
    ClientReply,
}

/// `(time, seq)` first, so the heap pops in time order and ties in scheduling order; then
/// the request slot, its generation (slots are reused) and the attempt.
type Event = Reverse<(u64, u64, Kind, u32, u32, u8)>;

/// A request at `api` (slot reused when it ends).
#[derive(Clone, Copy, Default)]
struct Request {
    generation: u32,
    created_ns: u64,
    api_arrive_ns: u64,
    attempt: u8,
    waiting: bool,
}

/// An attempt at `db`.
#[derive(Clone, Copy)]
struct Attempt {
    request: u32,
    attempt: u8,
}

/// A FIFO station with `workers` servers.
struct Station<T> {
    workers: u32,
    busy: u32,
    queue: VecDeque<T>,
}

/// Per-node counters and a log-bucket latency histogram (8 sub-buckets per power of two of µs).
#[derive(Default)]
struct NodeMetrics {
    offered: u64,
    succeeded: u64,
    failed: u64,
    hist: Vec<u64>,
}

impl NodeMetrics {
    fn record(&mut self, latency_ns: u64) {
        let us = (latency_ns / 1_000).max(1);
        let shift = 63 - us.leading_zeros();
        let sub = if shift >= 3 {
            (us >> (shift - 3)) & 7
        } else {
            0
        };
        let bucket = (shift as usize) * 8 + sub as usize;
        if self.hist.len() <= bucket {
            self.hist.resize(bucket + 1, 0);
        }
        self.hist[bucket] += 1;
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.hist.iter().sum();
        let target = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (b, &n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                let (shift, sub) = (b / 8, b % 8);
                let lower_us = if shift >= 3 {
                    (8 + sub as u64) << (shift - 3)
                } else {
                    1 << shift
                };
                return lower_us as f64 / 1_000.0;
            }
        }
        0.0
    }

    /// Ends an interval: reads the quantiles, as the engine's interval close does.
    fn close(&mut self) -> (f64, f64) {
        let quantiles = (self.quantile_ms(0.5), self.quantile_ms(0.99));
        self.hist.iter_mut().for_each(|n| *n = 0);
        quantiles
    }
}

struct Sim {
    now: u64,
    use_lines: bool,
    planned: bool,
    heap: BinaryHeap<Event>,
    line_latency: VecDeque<Event>,
    line_timeout: VecDeque<Event>,
    /// Timeouts set when a merged call arrives at `db`, one latency after it was sent.
    line_late_timeout: VecDeque<Event>,
    /// `planned`: when each of `db`'s workers is next free.
    db_free_ns: BinaryHeap<Reverse<u64>>,
    seq: u64,
    rng_source: SimRng,
    rng_api: SimRng,
    rng_db: SimRng,
    requests: Vec<Request>,
    free: Vec<u32>,
    api: Station<u32>,
    db: Station<Attempt>,
    hops: u64,
    client: NodeMetrics,
    api_m: NodeMetrics,
    db_m: NodeMetrics,
    client_latency_sum_ns: u128,
    db_busy_ns: u128,
    quantile_checksum: f64,
}

fn exp_ns(rng: &mut SimRng, mean_ns: f64) -> u64 {
    (-(1.0 - rng::unit(rng)).ln() * mean_ns) as u64
}

impl Sim {
    fn at(&mut self, time_ns: u64, kind: Kind, id: u32, attempt: u8) {
        let generation = self.requests.get(id as usize).map_or(0, |r| r.generation);
        let ev = Reverse((time_ns, self.seq, kind, id, generation, attempt));
        self.seq += 1;
        if self.use_lines && time_ns == self.now + LATENCY_NS {
            self.line_latency.push_back(ev);
        } else if self.use_lines && time_ns == self.now + TIMEOUT_NS {
            self.line_timeout.push_back(ev);
        } else if self.use_lines && time_ns == self.now + TIMEOUT_NS - LATENCY_NS {
            self.line_late_timeout.push_back(ev);
        } else {
            self.heap.push(ev);
        }
    }

    /// The earliest of the heap's top and the two lines' heads.
    fn pop(&mut self) -> Option<Event> {
        let heads = [
            self.heap.peek().map(|e| (e.0.0, e.0.1)),
            self.line_latency.front().map(|e| (e.0.0, e.0.1)),
            self.line_timeout.front().map(|e| (e.0.0, e.0.1)),
            self.line_late_timeout.front().map(|e| (e.0.0, e.0.1)),
        ];
        let (mut best, mut source) = (None, 0);
        for (i, h) in heads.into_iter().enumerate() {
            if let Some(k) = h
                && best.is_none_or(|b| k < b)
            {
                (best, source) = (Some(k), i);
            }
        }
        best?;
        match source {
            0 => self.heap.pop(),
            1 => self.line_latency.pop_front(),
            2 => self.line_timeout.pop_front(),
            _ => self.line_late_timeout.pop_front(),
        }
    }

    fn api_start(&mut self, now: u64, r: u32) {
        self.api.busy += 1;
        let work = exp_ns(&mut self.rng_api, API_MEAN_NS);
        if self.planned {
            // The work's end and the call's arrival at `db` in one event (attempt 0: the
            // first attempt, sent one latency before).
            self.at(now + work + LATENCY_NS, Kind::DbArrive, r, 0);
        } else {
            self.at(now + work, Kind::ApiWorkDone, r, 0);
        }
    }

    /// `planned`: attempt `attempt` of request `r` reaches `db` now; its start, end and reply
    /// are fixed now.
    fn db_plan(&mut self, now: u64, r: u32, attempt: u8) {
        let Some(Reverse(free_at)) = self.db_free_ns.pop() else {
            unreachable!("one entry per worker")
        };
        let work = exp_ns(&mut self.rng_db, DB_MEAN_NS);
        self.db_busy_ns += u128::from(work);
        let done = now.max(free_at) + work;
        self.db_free_ns.push(Reverse(done));
        self.db_m.record(done - now);
        self.db_m.succeeded += 1;
        self.at(done + LATENCY_NS, Kind::DbReply, r, attempt);
    }

    fn db_start(&mut self, now: u64, a: Attempt) {
        self.db.busy += 1;
        let work = exp_ns(&mut self.rng_db, DB_MEAN_NS);
        self.db_busy_ns += u128::from(work);
        // The attempt travels in the event as request slot and attempt number (its arrival
        // time, for the latency, is in a side table keyed the same way).
        self.at(now + work, Kind::DbDone, a.request, a.attempt);
    }

    fn send_attempt(&mut self, now: u64, r: u32) {
        let req = &mut self.requests[r as usize];
        req.attempt += 1;
        req.waiting = true;
        let attempt = req.attempt;
        self.at(now + LATENCY_NS, Kind::DbArrive, r, attempt);
        self.at(now + TIMEOUT_NS, Kind::Timeout, r, attempt);
    }

    /// `api` is done with request `r` (`ok`: its db call succeeded).
    fn api_finish(&mut self, now: u64, r: u32, ok: bool) {
        let req = self.requests[r as usize];
        self.api_m.record(now - req.api_arrive_ns);
        if ok {
            self.api_m.succeeded += 1;
        } else {
            self.api_m.failed += 1;
        }
        if self.planned {
            self.client_reply(now + LATENCY_NS, r, ok);
        } else {
            self.at(now + LATENCY_NS, Kind::ClientReply, r, u8::from(ok));
        }
        self.api.busy -= 1;
        if let Some(next) = self.api.queue.pop_front() {
            self.api_start(now, next);
        }
    }

    /// The client gets its reply at `at_ns`.
    fn client_reply(&mut self, at_ns: u64, r: u32, ok: bool) {
        let latency = at_ns - self.requests[r as usize].created_ns;
        if ok {
            self.client.succeeded += 1;
            self.client.record(latency);
            self.client_latency_sum_ns += u128::from(latency);
        } else {
            self.client.failed += 1;
        }
        self.free.push(r);
    }

    fn run(&mut self, until_ns: u64) {
        let first = exp_ns(&mut self.rng_source, 1e9 / RATE_PER_S);
        self.at(first, Kind::Source, 0, 0);
        let mut next_close = INTERVAL_NS;
        let mut db_arrive_ns: Vec<[u64; MAX_ATTEMPTS as usize]> = Vec::new();
        while let Some(Reverse((now, _, kind, id, generation, attempt))) = self.pop() {
            if now >= until_ns {
                break;
            }
            self.now = now;
            // A timeout or reply for an earlier request in a reused slot.
            let stale = kind != Kind::Source
                && self.requests.get(id as usize).map(|r| r.generation) != Some(generation);
            while now >= next_close {
                for m in [&mut self.client, &mut self.api_m, &mut self.db_m] {
                    let (p50, p99) = m.close();
                    self.quantile_checksum += p50 + p99;
                }
                next_close += INTERVAL_NS;
            }
            match kind {
                Kind::Source => {
                    let r = self.free.pop().unwrap_or_else(|| {
                        self.requests.push(Request::default());
                        db_arrive_ns.push([0; MAX_ATTEMPTS as usize]);
                        (self.requests.len() - 1) as u32
                    });
                    let generation = self.requests[r as usize].generation + 1;
                    self.requests[r as usize] = Request {
                        generation,
                        created_ns: now,
                        ..Request::default()
                    };
                    self.client.offered += 1;
                    self.at(now + LATENCY_NS, Kind::ApiArrive, r, 0);
                    let gap = exp_ns(&mut self.rng_source, 1e9 / RATE_PER_S);
                    self.at(now + gap, Kind::Source, 0, 0);
                }
                Kind::ApiArrive => {
                    self.hops += 1;
                    self.api_m.offered += 1;
                    self.requests[id as usize].api_arrive_ns = now;
                    if self.api.busy < self.api.workers {
                        self.api_start(now, id);
                    } else {
                        self.api.queue.push_back(id);
                    }
                }
                Kind::ApiWorkDone => self.send_attempt(now, id),
                Kind::DbArrive if self.planned => {
                    let attempt = if attempt == 0 {
                        // The merged first call: sent one latency ago.
                        let req = &mut self.requests[id as usize];
                        req.attempt = 1;
                        req.waiting = true;
                        self.at(now + TIMEOUT_NS - LATENCY_NS, Kind::Timeout, id, 1);
                        1
                    } else {
                        attempt
                    };
                    self.hops += 1;
                    self.db_m.offered += 1;
                    self.db_plan(now, id, attempt);
                }
                Kind::DbArrive => {
                    self.hops += 1;
                    self.db_m.offered += 1;
                    db_arrive_ns[id as usize][attempt as usize - 1] = now;
                    let a = Attempt {
                        request: id,
                        attempt,
                    };
                    if self.db.busy < self.db.workers {
                        self.db_start(now, a);
                    } else {
                        self.db.queue.push_back(a);
                    }
                }
                Kind::DbDone => {
                    if !stale {
                        // (An orphan whose slot was reused has lost its arrival time.)
                        let arrived = db_arrive_ns[id as usize][attempt as usize - 1];
                        self.db_m.record(now - arrived);
                    }
                    self.db_m.succeeded += 1;
                    self.at(now + LATENCY_NS, Kind::DbReply, id, attempt);
                    self.db.busy -= 1;
                    if let Some(next) = self.db.queue.pop_front() {
                        self.db_start(now, next);
                    }
                }
                Kind::DbReply => {
                    let req = self.requests[id as usize];
                    if !stale && req.waiting && req.attempt == attempt {
                        self.requests[id as usize].waiting = false;
                        self.api_finish(now, id, true);
                    }
                    // Otherwise an orphan's reply: its caller gave up on it.
                }
                Kind::Timeout => {
                    let req = self.requests[id as usize];
                    if !stale && req.waiting && req.attempt == attempt {
                        if attempt < MAX_ATTEMPTS {
                            self.send_attempt(now, id);
                        } else {
                            self.requests[id as usize].waiting = false;
                            self.api_finish(now, id, false);
                        }
                    }
                }
                Kind::ClientReply => self.client_reply(now, id, attempt == 1),
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sim_seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3_600.0);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mode = args.next().unwrap_or_else(|| "lines".to_string());
    let (use_lines, planned) = match mode.as_str() {
        "lines" => (true, false),
        "heap" => (false, false),
        "planned" => (true, true),
        other => {
            eprintln!("error: unknown mode {other:?}\n  hint: lines, heap or planned");
            std::process::exit(2);
        }
    };
    let mut sim = Sim {
        now: 0,
        use_lines,
        planned,
        line_late_timeout: VecDeque::with_capacity(1_024),
        db_free_ns: (0..DB_WORKERS).map(|_| Reverse(0)).collect(),
        heap: BinaryHeap::with_capacity(1_024),
        line_latency: VecDeque::with_capacity(1_024),
        line_timeout: VecDeque::with_capacity(1_024),
        seq: 0,
        rng_source: rng::stream(seed, "hand:source", 0),
        rng_api: rng::stream(seed, "hand:api", 0),
        rng_db: rng::stream(seed, "hand:db", 0),
        requests: Vec::new(),
        free: Vec::new(),
        api: Station {
            workers: API_WORKERS,
            busy: 0,
            queue: VecDeque::new(),
        },
        db: Station {
            workers: DB_WORKERS,
            busy: 0,
            queue: VecDeque::new(),
        },
        hops: 0,
        client: NodeMetrics::default(),
        api_m: NodeMetrics::default(),
        db_m: NodeMetrics::default(),
        client_latency_sum_ns: 0,
        db_busy_ns: 0,
        quantile_checksum: 0.0,
    };
    let until_ns = (sim_seconds * 1e9) as u64;
    let started = Instant::now();
    sim.run(until_ns);
    let wall_s = started.elapsed().as_secs_f64();
    let succeeded = sim.client.succeeded.max(1);
    println!(
        "{{\"mode\": \"{}\", \"sim_seconds\": {sim_seconds}, \"wall_seconds\": {wall_s:.4}, \"hops\": {}, \
         \"hops_per_second\": {:.0}, \"client_requests\": {}, \"client_succeeded\": {}, \
         \"client_mean_ms\": {:.4}, \"db_utilization\": {:.4}, \"quantile_checksum\": {:.1}}}",
        mode,
        sim.hops,
        sim.hops as f64 / wall_s,
        sim.client.offered,
        sim.client.succeeded,
        sim.client_latency_sum_ns as f64 / succeeded as f64 / 1e6,
        sim.db_busy_ns as f64 / (f64::from(DB_WORKERS) * sim_seconds * 1e9),
        sim.quantile_checksum,
    );
}
