//! Layered service architectures of any size, for benchmarks and scale tests.
//!
//! [`layered`] builds a valid [`Scenario`]: `depth` layers of services (gateways on top,
//! databases at the bottom), each service calling `fanout` services of the next layer, each
//! call made with probability `1 / fanout` — so a request makes one downstream call per layer
//! on average and traffic per service stays near `rate_per_service_s` at every size. Every
//! service has at least one caller. Worker pools are sized from the expected load so the
//! system runs at about 50% utilisation. Deterministic in `seed`. Owns no simulation state.

use crate::rng::{self, SimRng};
use crate::scenario::{
    CallSpec, NodeKind, RateProfile, RetryPolicy, Scenario, ServiceSpec, ServiceTime, SourceSpec,
};

/// Parameters of a layered architecture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayeredParams {
    /// Number of services.
    pub services: u32,
    /// Number of layers (at least 1, at most `services`).
    pub depth: u32,
    /// Callees per service in the next layer.
    pub fanout: u32,
    /// Requests per second reaching each service, on average.
    pub rate_per_service_s: f64,
    /// Mean own work per request, ms.
    pub service_ms: f64,
    /// Seed of the wiring and of the run.
    pub seed: u64,
    /// Simulated run length, s.
    pub duration_s: f64,
}

impl Default for LayeredParams {
    fn default() -> Self {
        LayeredParams {
            services: 100,
            depth: 4,
            fanout: 3,
            rate_per_service_s: 100.0,
            service_ms: 2.0,
            seed: 1,
            duration_s: 60.0,
        }
    }
}

/// Builds the architecture. See the module docs.
pub fn layered(p: &LayeredParams) -> Scenario {
    let n = p.services.max(1);
    let depth = p.depth.clamp(1, n);
    let fanout = p.fanout.max(1);
    let mut rng: SimRng = rng::stream(p.seed, "generate:layered", 0);
    // Layer sizes: as even as possible.
    let sizes: Vec<u32> = (0..depth)
        .map(|k| n / depth + u32::from(k < n % depth))
        .collect();
    let mut names: Vec<Vec<String>> = Vec::new();
    let mut next_id = 0;
    for (k, &size) in sizes.iter().enumerate() {
        names.push((0..size).map(|i| format!("l{k}-s{i}")).collect());
        next_id += size;
    }
    let _ = next_id;
    // Expected time a request holds a worker at layer k: own work plus, below, one call per
    // layer of (latency both ways + the callee's hold time).
    let latency_ms = 1.0;
    let mut hold_ms = vec![0.0; depth as usize];
    for k in (0..depth as usize).rev() {
        hold_ms[k] = p.service_ms
            + if k + 1 < depth as usize {
                2.0 * latency_ms + hold_ms[k + 1]
            } else {
                0.0
            };
    }
    // Wiring first: callees of every service.
    let mut wiring: Vec<Vec<Vec<u32>>> = Vec::new();
    for k in 0..depth as usize {
        let mut layer = Vec::new();
        for i in 0..names[k].len() {
            let mut chosen = Vec::new();
            if let Some(next) = names.get(k + 1) {
                let m = next.len() as u32;
                let f = fanout.min(m);
                // The first callee is assigned round-robin (every service gets a caller); the
                // rest are random distinct services of the next layer.
                chosen.push((i as u32) % m);
                while (chosen.len() as u32) < f {
                    let c = rng::below(&mut rng, m);
                    if !chosen.contains(&c) {
                        chosen.push(c);
                    }
                }
            }
            layer.push(chosen);
        }
        wiring.push(layer);
    }
    // Expected arrival rate of every service, propagated down the layers; sources split the
    // total so the average service sees `rate_per_service_s`.
    let top = &names[0];
    let per_source = p.rate_per_service_s * f64::from(n) / f64::from(depth) / top.len() as f64;
    let mut rate: Vec<Vec<f64>> = names.iter().map(|l| vec![0.0; l.len()]).collect();
    rate[0].iter_mut().for_each(|r| *r = per_source);
    for k in 0..depth as usize - 1 {
        for i in 0..names[k].len() {
            let callees = &wiring[k][i];
            for &c in callees {
                rate[k + 1][c as usize] += rate[k][i] / callees.len() as f64;
            }
        }
    }
    let mut services = Vec::with_capacity(n as usize);
    for k in 0..depth as usize {
        for (i, name) in names[k].iter().enumerate() {
            let callees = &wiring[k][i];
            let calls = callees
                .iter()
                .map(|&c| CallSpec {
                    to: names[k + 1][c as usize].clone(),
                    probability: 1.0 / callees.len() as f64,
                    count: 1,
                    timeout_ms: Some((hold_ms[k + 1] * 20.0).max(100.0)),
                    retry: RetryPolicy {
                        max_attempts: 2,
                        ..Default::default()
                    },
                    latency_ms,
                    ..Default::default()
                })
                .collect();
            // Workers for ~50% utilisation at this service's expected rate (Little's law).
            let busy = rate[k][i] * hold_ms[k] / 1000.0;
            let workers = ((busy * 2.0).ceil() as u32 + 2).max(2);
            let kind = match k {
                0 => NodeKind::Gateway,
                _ if k + 1 == depth as usize && depth > 1 => NodeKind::Database,
                _ => NodeKind::Service,
            };
            services.push(ServiceSpec {
                name: name.clone(),
                kind,
                workers,
                service_time: ServiceTime::Exponential {
                    mean_ms: p.service_ms,
                },
                calls,
                ..Default::default()
            });
        }
    }
    // Each top-layer service gets its own source.
    let sources = top
        .iter()
        .enumerate()
        .map(|(i, target)| SourceSpec {
            name: format!("users-{i}"),
            target: target.clone(),
            rate: RateProfile::Constant(per_source),
            timeout_ms: Some(hold_ms[0] * 50.0 + 1000.0),
            latency_ms,
            ..Default::default()
        })
        .collect();
    Scenario {
        name: format!("Layered architecture: {n} services, depth {depth}, fan-out {fanout}"),
        description: format!(
            "Generated (seed {}): {} rps per service, {} ms own work.",
            p.seed, p.rate_per_service_s, p.service_ms
        ),
        seed: p.seed,
        duration_s: p.duration_s,
        sample_every: 0,
        sources,
        services,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::validate;

    #[test]
    fn generated_architectures_are_valid_at_every_size() {
        for services in [1, 10, 100, 1000] {
            let s = layered(&LayeredParams {
                services,
                ..Default::default()
            });
            assert_eq!(s.services.len() as u32, services);
            assert_eq!(validate(&s), vec![], "{services} services");
        }
    }

    #[test]
    fn every_service_below_the_top_has_a_caller() {
        let s = layered(&LayeredParams {
            services: 200,
            depth: 5,
            fanout: 2,
            ..Default::default()
        });
        for svc in s.services.iter().filter(|s| !s.name.starts_with("l0-")) {
            assert!(
                s.services
                    .iter()
                    .any(|c| c.calls.iter().any(|call| call.to == svc.name)),
                "{} has no caller",
                svc.name
            );
        }
    }

    #[test]
    fn same_seed_same_architecture() {
        let p = LayeredParams {
            services: 300,
            seed: 7,
            ..Default::default()
        };
        assert_eq!(layered(&p), layered(&p));
        assert_ne!(layered(&p), layered(&LayeredParams { seed: 8, ..p }));
    }
}
