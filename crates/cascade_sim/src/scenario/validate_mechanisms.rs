//! Semantic validation of the resilience mechanisms (breakers, throttling, hedging,
//! bulkheads, load-dependent service time, admission, health checks, autoscaling, caches,
//! lifecycle calls, work queues, optimistic concurrency, failover), their faults, alerts and
//! operator steps.
//!
//! Called from `validate.rs`, whose helpers (ranges, names, links) it reuses. Does not check
//! the base model (rates, service times, retries, the original faults).

#![expect(
    clippy::neg_cmp_op_on_partial_ord,
    reason = "`!(x > 0.0)` rejects NaN as well as non-positive values, which validation needs"
)]

use std::collections::BTreeSet;

use super::diagnostics::closest;
use super::validate::{
    at_most_instances, at_most_keys, call, instances, known_service, known_source, latency,
    non_negative, positive, within_horizon,
};
use super::{
    AdaptiveThrottleSpec, AlertMetric, CallSpec, Diagnostic, FaultKind, OperatorAction,
    OperatorTrigger, PushedChange, Scenario, ServiceSpec,
};

/// A probability or share in `[0, 1]`.
fn share(v: &mut Vec<Diagnostic>, path: &str, value: f64, what: &str) {
    if !(0.0..=1.0).contains(&value) {
        v.push(Diagnostic::new(
            path,
            format!("{what} {value} is outside [0, 1]"),
        ));
    }
}

/// A share in `(0, 1]`.
fn positive_share(v: &mut Vec<Diagnostic>, path: &str, value: f64, what: &str) {
    if !(value > 0.0 && value <= 1.0) {
        v.push(Diagnostic::new(
            path,
            format!("{what} {value} is outside (0, 1]"),
        ));
    }
}

/// The period of something repeated (a probe, an evaluation, a periodic call): positive and at
/// least one tick, or a run would spend itself repeating it (10^-300 s used to hang a run).
fn period(v: &mut Vec<Diagnostic>, path: &str, period_s: f64, tick_ms: f64, what: &str) {
    positive(v, path, period_s, what);
    if period_s > 0.0 && period_s * 1000.0 + 1e-9 < tick_ms {
        v.push(
            Diagnostic::new(
                path,
                format!("{what} of {period_s} s is shorter than one tick ({tick_ms} ms)"),
            )
            .with_hint("repeated work runs at most once a tick; raise it or lower tick_ms"),
        );
    }
}

/// A token bucket's size: at least one request.
fn bucket_size(v: &mut Vec<Diagnostic>, path: &str, value: f64) {
    if !(value >= 1.0) || !value.is_finite() {
        v.push(Diagnostic::new(
            path.to_owned(),
            "the burst must be at least 1 request",
        ));
    }
}

fn at_least_one(v: &mut Vec<Diagnostic>, path: &str, value: u32, what: &str) {
    if value == 0 {
        v.push(Diagnostic::new(path, format!("{what} must be at least 1")));
    }
}

/// The standard deviation of a link's latency.
pub(super) fn latency_sd(v: &mut Vec<Diagnostic>, path: &str, sd_ms: f64) {
    if !(sd_ms >= 0.0) || !sd_ms.is_finite() {
        v.push(Diagnostic::new(
            path,
            format!("a latency deviation must be zero or positive, got {sd_ms}"),
        ));
    } else {
        within_horizon(v, path, sd_ms);
    }
}

pub(super) fn adaptive_throttle(v: &mut Vec<Diagnostic>, path: &str, t: &AdaptiveThrottleSpec) {
    if !(t.k >= 1.0) || !t.k.is_finite() {
        v.push(
            Diagnostic::new(
                format!("{path}.k"),
                format!("k must be at least 1, got {}", t.k),
            )
            .with_hint("k is requests allowed per accepted request; the SRE book uses 2"),
        );
    }
    positive(
        v,
        &format!("{path}.window_s"),
        t.window_s,
        "the throttle window",
    );
}

/// Mechanisms on one call.
pub(super) fn call_mechanisms(v: &mut Vec<Diagnostic>, c: &str, spec: &CallSpec) {
    latency_sd(v, &format!("{c}.latency_sd_ms"), spec.latency_sd_ms);
    if let Some(b) = &spec.breaker {
        let p = format!("{c}.breaker");
        positive(
            v,
            &format!("{p}.window_s"),
            b.window_s,
            "the breaker window",
        );
        positive_share(v, &format!("{p}.error_ratio"), b.error_ratio, "error_ratio");
        at_least_one(
            v,
            &format!("{p}.min_requests"),
            b.min_requests,
            "min_requests",
        );
        if let Some(n) = b.consecutive_failures {
            at_least_one(
                v,
                &format!("{p}.consecutive_failures"),
                n,
                "consecutive_failures",
            );
        }
        positive(v, &format!("{p}.open_s"), b.open_s, "the open time");
        at_least_one(v, &format!("{p}.probes"), b.probes, "probes");
    }
    if let Some(t) = &spec.adaptive_throttle {
        adaptive_throttle(v, &format!("{c}.adaptive_throttle"), t);
    }
    if let Some(h) = spec.hedge_after_ms {
        positive(v, &format!("{c}.hedge_after_ms"), h, "a hedging delay");
    }
    if let Some(n) = spec.max_concurrent {
        at_least_one(v, &format!("{c}.max_concurrent"), n, "a bulkhead");
    }
    if let Some(ms) = spec.bulkhead_wait_ms {
        positive(v, &format!("{c}.bulkhead_wait_ms"), ms, "a bulkhead wait");
        if spec.max_concurrent.is_none() {
            v.push(
                Diagnostic::new(
                    format!("{c}.bulkhead_wait_ms"),
                    "a bulkhead wait needs a bulkhead",
                )
                .with_hint("add max_concurrent: the number of places to wait for"),
            );
        }
    }
}

/// Mechanisms of one service.
pub(super) fn service(
    v: &mut Vec<Diagnostic>,
    p: &str,
    svc: &ServiceSpec,
    scenario: &Scenario,
    service_names: &[&str],
    source_names: &[&str],
    tick: f64,
) {
    if let Some(cores) = svc.cores {
        at_least_one(v, &format!("{p}.cores"), cores, "an instance's cores");
    }
    if let Some(sc) = &svc.scaling {
        if !(0.0..=1.0).contains(&sc.contention) {
            v.push(
                Diagnostic::new(
                    format!("{p}.scaling.contention"),
                    format!("the contention share {} is outside [0, 1]", sc.contention),
                )
                .with_hint("it is the serialised share of the work: 0.05 for 5% under a lock"),
            );
        }
        if !(sc.coherency >= 0.0 && sc.coherency.is_finite()) {
            v.push(
                Diagnostic::new(
                    format!("{p}.scaling.coherency"),
                    format!("the coherency cost {} must be a number ≥ 0", sc.coherency),
                )
                .with_hint(
                    "throughput peaks at √((1 − contention)/coherency) requests at once: \
                     0.0005 puts the peak near 45",
                ),
            );
        }
    }
    let a = &svc.admission;
    if let Some(ms) = a.max_queue_wait_ms {
        positive(
            v,
            &format!("{p}.admission.max_queue_wait_ms"),
            ms,
            "the queue-time limit",
        );
    }
    if let Some(c) = &a.codel {
        let cp = format!("{p}.admission.codel");
        positive(
            v,
            &format!("{cp}.target_ms"),
            c.target_ms,
            "the target delay",
        );
        positive(
            v,
            &format!("{cp}.interval_ms"),
            c.interval_ms,
            "the interval",
        );
        if c.target_ms > c.interval_ms {
            v.push(
                Diagnostic::new(
                    format!("{cp}.target_ms"),
                    format!(
                        "a target of {} ms is longer than the interval of {} ms",
                        c.target_ms, c.interval_ms
                    ),
                )
                .with_hint("a standing queue gets the shorter limit: 5 ms within 100 ms is usual"),
            );
        }
    }
    if let Some(r) = &a.rate_limit {
        positive(
            v,
            &format!("{p}.admission.rate_limit.rate_per_s"),
            r.rate_per_s,
            "a rate limit",
        );
        bucket_size(v, &format!("{p}.admission.rate_limit.burst"), r.burst);
    }
    if a.lifo_above.is_some()
        && matches!(
            svc.queue.discipline,
            crate::scenario::QueueDiscipline::Priority | crate::scenario::QueueDiscipline::Deadline
        )
    {
        let (kind, by) = if svc.queue.discipline == crate::scenario::QueueDiscipline::Priority {
            ("priority", "criticality")
        } else {
            ("deadline", "deadline")
        };
        v.push(
            Diagnostic::new(
                format!("{p}.admission.lifo_above"),
                format!("adaptive LIFO would reorder a {kind} queue"),
            )
            .with_hint(format!(
                "a {kind} queue serves by {by}: remove lifo_above, or use a Fifo queue"
            )),
        );
    }
    if let Some(ms) = a.retry_after_ms {
        positive(
            v,
            &format!("{p}.admission.retry_after_ms"),
            ms,
            "a Retry-After",
        );
    }
    if let Some(n) = a.max_in_flight {
        at_least_one(
            v,
            &format!("{p}.admission.max_in_flight"),
            n,
            "max_in_flight",
        );
    }
    if let Some(n) = a.latch_above {
        at_least_one(v, &format!("{p}.admission.latch_above"), n, "latch_above");
    }
    if let Some(h) = &svc.health_check {
        let hp = format!("{p}.health_check");
        period(
            v,
            &format!("{hp}.interval_s"),
            h.interval_s,
            tick,
            "the probe interval",
        );
        positive(
            v,
            &format!("{hp}.timeout_ms"),
            h.timeout_ms,
            "the probe timeout",
        );
        at_least_one(
            v,
            &format!("{hp}.unhealthy_after"),
            h.unhealthy_after,
            "unhealthy_after",
        );
        at_least_one(
            v,
            &format!("{hp}.healthy_after"),
            h.healthy_after,
            "healthy_after",
        );
        non_negative(v, &format!("{hp}.probe_ms"), h.probe_ms);
        if let Some(n) = h.restart_after {
            at_least_one(v, &format!("{hp}.restart_after"), n, "restart_after");
        }
    }
    if let Some(t) = svc.panic_threshold {
        share(v, &format!("{p}.panic_threshold"), t, "the panic threshold");
        if svc.health_check.is_none() && svc.outlier_ejection.is_none() {
            v.push(
                Diagnostic::new(
                    format!("{p}.panic_threshold"),
                    "a panic threshold needs health checks or outlier ejection",
                )
                .with_hint("it decides when to ignore them; add health_check: (…)"),
            );
        }
    }
    if let Some(o) = &svc.outlier_ejection {
        let op = format!("{p}.outlier_ejection");
        if let Some(n) = o.consecutive_errors {
            at_least_one(
                v,
                &format!("{op}.consecutive_errors"),
                n,
                "consecutive_errors",
            );
        }
        positive_share(
            v,
            &format!("{op}.error_ratio"),
            o.error_ratio,
            "error_ratio",
        );
        positive(v, &format!("{op}.window_s"), o.window_s, "the window");
        at_least_one(
            v,
            &format!("{op}.min_requests"),
            o.min_requests,
            "min_requests",
        );
        positive(v, &format!("{op}.eject_s"), o.eject_s, "the ejection time");
        share(
            v,
            &format!("{op}.max_ejected"),
            o.max_ejected,
            "max_ejected",
        );
    }
    if let Some(s) = &svc.autoscale {
        let ap = format!("{p}.autoscale");
        positive(v, &format!("{ap}.target"), s.target, "the target");
        if matches!(
            s.metric,
            super::ScaleMetric::Cpu | super::ScaleMetric::Workers
        ) && s.target > 1.0
        {
            v.push(
                Diagnostic::new(
                    format!("{ap}.target"),
                    format!("a utilisation target of {} is above 1", s.target),
                )
                .with_hint("utilisation is a share: 0.6 means 60%"),
            );
        }
        period(
            v,
            &format!("{ap}.period_s"),
            s.period_s,
            tick,
            "the evaluation period",
        );
        non_negative(v, &format!("{ap}.cooldown_s"), s.cooldown_s);
        non_negative(v, &format!("{ap}.provision_delay_s"), s.provision_delay_s);
        at_least_one(
            v,
            &format!("{ap}.max_provisioning"),
            s.max_provisioning,
            "max_provisioning",
        );
        at_least_one(v, &format!("{ap}.min"), s.min, "min");
        at_most_instances(v, &format!("{ap}.max"), s.max);
        if s.max < s.min {
            v.push(Diagnostic::new(
                format!("{ap}.max"),
                format!("max {} is below min {}", s.max, s.min),
            ));
        } else if svc.instances < s.min || svc.instances > s.max {
            v.push(
                Diagnostic::new(
                    format!("{p}.instances"),
                    format!(
                        "{} instances is outside the autoscaler's [{}, {}]",
                        svc.instances, s.min, s.max
                    ),
                )
                .with_hint("start inside the range the autoscaler keeps"),
            );
        }
        non_negative(v, &format!("{ap}.warmup_s"), s.warmup_s);
        positive(
            v,
            &format!("{ap}.warmup_factor"),
            s.warmup_factor,
            "the warm-up factor",
        );
    }
    if let Some(c) = &svc.cache {
        let cp = format!("{p}.cache");
        call(
            v,
            &format!("{cp}.backing"),
            &c.backing,
            &svc.name,
            service_names,
            source_names,
            tick,
        );
        share(
            v,
            &format!("{cp}.max_hit_ratio"),
            c.max_hit_ratio,
            "max_hit_ratio",
        );
        at_least_one(v, &format!("{cp}.keys"), c.keys, "keys");
        at_most_keys(v, &format!("{cp}.keys"), c.keys);
        if let Some(t) = c.ttl_s {
            positive(v, &format!("{cp}.ttl_s"), t, "a TTL");
        }
        share(
            v,
            &format!("{cp}.initial_warmth"),
            c.initial_warmth,
            "initial_warmth",
        );
        if !svc.calls.is_empty() {
            v.push(
                Diagnostic::new(format!("{p}.calls"), "a cache makes no calls besides its backing fills")
                    .with_hint("put the cache between its callers and the backing store, and the other calls on the caller"),
            );
        }
    }
    let l = &svc.lifecycle;
    for (j, c) in l.startup_calls.iter().enumerate() {
        call(
            v,
            &format!("{p}.lifecycle.startup_calls[{j}]"),
            c,
            &svc.name,
            service_names,
            source_names,
            tick,
        );
    }
    for (j, pc) in l.periodic.iter().enumerate() {
        let pp = format!("{p}.lifecycle.periodic[{j}]");
        period(v, &format!("{pp}.every_s"), pc.every_s, tick, "a period");
        at_least_one(
            v,
            &format!("{pp}.disqualify_after"),
            pc.disqualify_after,
            "disqualify_after",
        );
        if pc.disqualify_after > 1 && !pc.disqualify_on_failure {
            v.push(
                Diagnostic::new(
                    format!("{pp}.disqualify_after"),
                    "disqualify_after needs disqualify_on_failure",
                )
                .with_hint("add disqualify_on_failure: true, or leave disqualify_after out"),
            );
        }
        call(
            v,
            &format!("{pp}.call"),
            &pc.call,
            &svc.name,
            service_names,
            source_names,
            tick,
        );
    }
    non_negative(v, &format!("{p}.lifecycle.restart_s"), l.restart_s);
    non_negative(v, &format!("{p}.lifecycle.warmup_s"), l.warmup_s);
    positive(
        v,
        &format!("{p}.lifecycle.warmup_factor"),
        l.warmup_factor,
        "the warm-up factor",
    );
    if let Some(q) = &svc.work_queue {
        let qp = format!("{p}.work_queue");
        if q.consumer == svc.name {
            v.push(Diagnostic::new(
                format!("{qp}.consumer"),
                "a queue cannot consume its own items",
            ));
        } else {
            known_service(
                v,
                &format!("{qp}.consumer"),
                &q.consumer,
                service_names,
                source_names,
            );
        }
        at_least_one(
            v,
            &format!("{qp}.concurrency"),
            q.concurrency,
            "concurrency",
        );
        if let Some(r) = q.rate_per_s {
            positive(v, &format!("{qp}.rate_per_s"), r, "a delivery rate");
        }
        if let Some(t) = q.ttl_s {
            positive(v, &format!("{qp}.ttl_s"), t, "a TTL");
        }
        at_least_one(
            v,
            &format!("{qp}.max_deliveries"),
            q.max_deliveries,
            "max_deliveries",
        );
        if let Some(t) = q.timeout_ms {
            positive(v, &format!("{qp}.timeout_ms"), t, "a timeout");
        }
        latency(v, &format!("{qp}.latency_ms"), q.latency_ms, tick);
        if !svc.calls.is_empty() || svc.cache.is_some() {
            v.push(
                Diagnostic::new(
                    format!("{p}.calls"),
                    "a work queue acknowledges at once and makes no synchronous calls",
                )
                .with_hint("its consumer makes the calls; move them there"),
            );
        }
    }
    if let Some(o) = &svc.occ {
        at_least_one(v, &format!("{p}.occ.keys"), o.keys, "keys");
        at_most_keys(v, &format!("{p}.occ.keys"), o.keys);
        non_negative(v, &format!("{p}.occ.zipf_s"), o.zipf_s);
    }
    if let Some(sh) = &svc.sharding {
        at_least_one(v, &format!("{p}.sharding.keys"), sh.keys, "keys");
        at_most_keys(v, &format!("{p}.sharding.keys"), sh.keys);
        non_negative(v, &format!("{p}.sharding.zipf_s"), sh.zipf_s);
        at_least_one(
            v,
            &format!("{p}.sharding.replicas"),
            sh.replicas,
            "replicas",
        );
        if sh.replicas > svc.instances {
            v.push(
                Diagnostic::new(
                    format!("{p}.sharding.replicas"),
                    format!(
                        "{} replicas of each key need at least as many instances, not {}",
                        sh.replicas, svc.instances
                    ),
                )
                .with_hint(format!(
                    "raise instances to {} or lower replicas",
                    sh.replicas
                )),
            );
        }
    }
    if let Some(f) = &svc.failover {
        let fp = format!("{p}.failover");
        if f.replica == svc.name {
            v.push(Diagnostic::new(
                format!("{fp}.replica"),
                "a service cannot be its own replica",
            ));
        } else {
            known_service(
                v,
                &format!("{fp}.replica"),
                &f.replica,
                service_names,
                source_names,
            );
            if scenario
                .service(&f.replica)
                .is_some_and(|r| r.failover.is_some())
            {
                v.push(
                    Diagnostic::new(
                        format!("{fp}.replica"),
                        format!("the replica \"{}\" has a failover of its own", f.replica),
                    )
                    .with_hint("chains of failovers are not modelled"),
                );
            }
        }
        non_negative(v, &format!("{fp}.detection_s"), f.detection_s);
        non_negative(v, &format!("{fp}.hold_down_s"), f.hold_down_s);
        latency(
            v,
            &format!("{fp}.replica_latency_ms"),
            f.replica_latency_ms,
            tick,
        );
    }
}

/// The faults that need the mechanisms (caches, lifecycle, latches, throttles).
pub(super) fn fault(
    v: &mut Vec<Diagnostic>,
    path: &str,
    fault: &FaultKind,
    scenario: &Scenario,
    services: &[&str],
    sources: &[&str],
) {
    let service_instances = |name: &str| scenario.service(name).map(|s| s.instances);
    let cache = |v: &mut Vec<Diagnostic>, service: &str| {
        known_service(v, &format!("{path}.service"), service, services, sources);
        if scenario.service(service).is_some_and(|s| s.cache.is_none()) {
            v.push(
                Diagnostic::new(
                    format!("{path}.service"),
                    format!("\"{service}\" is not a cache"),
                )
                .with_hint("give it cache: (backing: (to: …))"),
            );
        }
    };
    match fault {
        FaultKind::CacheFlush { service, share: s } => {
            cache(v, service);
            positive_share(v, &format!("{path}.share"), *s, "share");
        }
        FaultKind::TtlStorm { service, within_s } => {
            cache(v, service);
            non_negative(v, &format!("{path}.within_s"), *within_s);
        }
        FaultKind::Restart {
            service,
            instances: sel,
            spread_s,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            instances(
                v,
                &format!("{path}.instances"),
                *sel,
                service_instances(service),
            );
            non_negative(v, &format!("{path}.spread_s"), *spread_s);
        }
        FaultKind::ConfigPush {
            service,
            share: s,
            propagation_s,
            change,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            positive_share(v, &format!("{path}.share"), *s, "share");
            non_negative(v, &format!("{path}.propagation_s"), *propagation_s);
            match *change {
                PushedChange::Errors(p) => share(v, &format!("{path}.change.0"), p, "probability"),
                PushedChange::Slow(f) => {
                    positive(v, &format!("{path}.change.0"), f, "a slowdown factor");
                }
                PushedChange::Latch => {}
                PushedChange::Scaling {
                    contention,
                    coherency,
                    ..
                } => {
                    share(
                        v,
                        &format!("{path}.change.contention"),
                        contention,
                        "contention",
                    );
                    non_negative(v, &format!("{path}.change.coherency"), coherency);
                }
            }
        }
        FaultKind::LatchedFailure {
            service,
            instances: sel,
        }
        | FaultKind::Isolate {
            service,
            instances: sel,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            instances(
                v,
                &format!("{path}.instances"),
                *sel,
                service_instances(service),
            );
        }
        FaultKind::Throttle {
            service,
            rate_per_s,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            positive(
                v,
                &format!("{path}.rate_per_s"),
                *rate_per_s,
                "a throttle rate",
            );
        }
        FaultKind::QueryOfDeath {
            service,
            share: s,
            source,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            positive_share(v, &format!("{path}.share"), *s, "share");
            if let Some(name) = source {
                known_source(v, &format!("{path}.source"), name, sources);
            }
        }
        // The base faults are checked in validate.rs.
        FaultKind::Kill { .. }
        | FaultKind::Slow { .. }
        | FaultKind::Latency { .. }
        | FaultKind::LinkLatency { .. }
        | FaultKind::Errors { .. }
        | FaultKind::CapacityCut { .. }
        | FaultKind::Partition { .. }
        | FaultKind::LoadSpike { .. }
        | FaultKind::PacketLoss { .. }
        | FaultKind::OneWayPartition { .. }
        | FaultKind::GroupPartition { .. } => {}
        FaultKind::ZoneOutage { zone, .. } => {
            super::validate::known_zone(v, &format!("{path}.zone"), zone, scenario);
        }
        FaultKind::ZonePartition { zones } => {
            if zones.is_empty() {
                v.push(
                    Diagnostic::new(format!("{path}.zones"), "the partition names no zone")
                        .with_hint("name the zones on one side, e.g. zones: [\"a\"]"),
                );
            }
            for (i, zone) in zones.iter().enumerate() {
                let at = format!("{path}.zones[{i}]");
                if zones[..i].contains(zone) {
                    v.push(Diagnostic::new(
                        at,
                        format!("zone \"{zone}\" is named twice"),
                    ));
                } else {
                    super::validate::known_zone(v, &at, zone, scenario);
                }
            }
            let all = scenario.zone_names();
            if !zones.is_empty() && all.iter().all(|z| zones.iter().any(|n| n == z)) {
                v.push(
                    Diagnostic::new(format!("{path}.zones"), "the partition holds every zone")
                        .with_hint("a zone partition cuts the named zones off from the others: leave some out"),
                );
            }
        }
        FaultKind::DnsFailure { service, ttl_s } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            non_negative(v, &format!("{path}.ttl_s"), *ttl_s);
            if scenario.service(service).is_some() && !scenario.is_called(service) {
                v.push(
                    Diagnostic::new(
                        format!("{path}.service"),
                        format!("nothing calls \"{service}\""),
                    )
                    .with_hint(
                        "a DNS failure hurts the callers of a service: name one that is called",
                    ),
                );
            }
        }
    }
}

/// The measurements an expectation states.
pub(super) fn checks(
    v: &mut Vec<Diagnostic>,
    scenario: &Scenario,
    services: &[&str],
    sources: &[&str],
) {
    let Some(expect) = &scenario.expect else {
        return;
    };
    if let Some(root) = &expect.root {
        let p = "expect.root";
        match crate::causality::split_link(root) {
            Some((from, to)) => {
                if !sources.contains(&from) {
                    known_service(v, p, from, services, &[]);
                }
                known_service(v, p, to, services, sources);
            }
            None if sources.contains(&root.as_str()) => {}
            None => known_service(v, p, root, services, &[]),
        }
    }
    for (i, c) in expect.checks.iter().enumerate() {
        let p = format!("expect.checks[{i}]");
        if !sources.contains(&c.node.as_str()) {
            known_service(v, &format!("{p}.node"), &c.node, services, &[]);
        }
        non_negative(v, &format!("{p}.from_s"), c.from_s);
        if !(c.to_s > c.from_s) || c.to_s > scenario.duration_s + 1e-9 {
            v.push(
                Diagnostic::new(
                    format!("{p}.to_s"),
                    format!(
                        "the window [{}, {}) s is empty or past the run's end",
                        c.from_s, c.to_s
                    ),
                )
                .with_hint(format!(
                    "end it after from_s and by duration_s ({} s)",
                    scenario.duration_s
                )),
            );
        }
        if c.at_least.is_none() && c.at_most.is_none() {
            v.push(
                Diagnostic::new(p, "a check needs `at_least` or `at_most`")
                    .with_hint("e.g. at_least: 0.99"),
            );
        }
    }
}

/// Alerts and operator steps.
pub(super) fn alerts_and_operator(
    v: &mut Vec<Diagnostic>,
    scenario: &Scenario,
    services: &[&str],
    sources: &[&str],
) {
    let mut names = BTreeSet::new();
    for (i, alert) in scenario.alerts.iter().enumerate() {
        let p = format!("alerts[{i}]");
        if alert.name.trim().is_empty() {
            v.push(Diagnostic::new(
                format!("{p}.name"),
                "an alert needs a name",
            ));
        } else if !names.insert(alert.name.as_str()) {
            v.push(Diagnostic::new(
                format!("{p}.name"),
                format!("the alert name \"{}\" is used twice", alert.name),
            ));
        }
        let is_source = sources.contains(&alert.node.as_str());
        if !is_source {
            known_service(v, &format!("{p}.node"), &alert.node, services, &[]);
        }
        if is_source
            && matches!(
                alert.metric,
                AlertMetric::QueueLength | AlertMetric::Utilization
            )
        {
            v.push(
                Diagnostic::new(
                    format!("{p}.metric"),
                    format!("a source has no {:?}", alert.metric),
                )
                .with_hint("watch a service, or use ErrorRatio, SuccessRatio or P99Ms"),
            );
        }
        if let Some(via) = &alert.via {
            known_service(v, &format!("{p}.via"), via, services, sources);
        }
        match (alert.above, alert.below) {
            (None, None) => v.push(
                Diagnostic::new(p.clone(), "an alert needs `above` or `below`")
                    .with_hint("e.g. above: 0.05"),
            ),
            (Some(_), Some(_)) => v.push(
                Diagnostic::new(
                    p.clone(),
                    "an alert has either `above` or `below`, not both",
                )
                .with_hint("make two alerts"),
            ),
            (Some(x), None) | (None, Some(x)) if !x.is_finite() => {
                v.push(Diagnostic::new(p.clone(), "the threshold must be a number"));
            }
            _ => {}
        }
        non_negative(v, &format!("{p}.for_s"), alert.for_s);
    }
    let alert_names: Vec<&str> = scenario.alerts.iter().map(|a| a.name.as_str()).collect();
    for (i, step) in scenario.operator.iter().enumerate() {
        let p = format!("operator[{i}]");
        match &step.when {
            OperatorTrigger::At(t) => non_negative(v, &format!("{p}.when.0"), *t),
            OperatorTrigger::Alert(name) if !alert_names.contains(&name.as_str()) => {
                let hint = match closest(name, alert_names.iter().copied()) {
                    Some(best) => format!("did you mean \"{best}\"?"),
                    None if alert_names.is_empty() => "define it under `alerts`".to_owned(),
                    None => format!("alerts are: {}", alert_names.join(", ")),
                };
                v.push(
                    Diagnostic::new(format!("{p}.when.0"), format!("unknown alert \"{name}\""))
                        .with_hint(hint),
                );
            }
            OperatorTrigger::Alert(_) => {}
        }
        non_negative(v, &format!("{p}.after_s"), step.after_s);
        let ap = format!("{p}.action");
        match &step.action {
            OperatorAction::ShedLoad { source, keep } => {
                known_source(v, &format!("{ap}.source"), source, sources);
                share(v, &format!("{ap}.keep"), *keep, "keep");
            }
            OperatorAction::LimitSource {
                source,
                rate_per_s,
                burst,
            } => {
                known_source(v, &format!("{ap}.source"), source, sources);
                positive(v, &format!("{ap}.rate_per_s"), *rate_per_s, "a rate limit");
                bucket_size(v, &format!("{ap}.burst"), *burst);
            }
            OperatorAction::RemoveSourceLimit { source } => {
                known_source(v, &format!("{ap}.source"), source, sources);
            }
            OperatorAction::RateLimit {
                service,
                rate_per_s,
                burst,
            } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
                positive(v, &format!("{ap}.rate_per_s"), *rate_per_s, "a rate limit");
                bucket_size(v, &format!("{ap}.burst"), *burst);
            }
            OperatorAction::RemoveRateLimit { service } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
            }
            OperatorAction::DisableRetries { service } => {
                if let Some(s) = service {
                    known_service(v, &format!("{ap}.service"), s, services, sources);
                }
            }
            OperatorAction::RestartInstances {
                service,
                per_minute,
            } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
                positive(
                    v,
                    &format!("{ap}.per_minute"),
                    *per_minute,
                    "a restart rate",
                );
            }
            OperatorAction::SetInstances {
                service,
                instances: n,
            } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
                at_least_one(v, &format!("{ap}.instances"), *n, "instances");
                at_most_instances(v, &format!("{ap}.instances"), *n);
            }
            OperatorAction::SetWorkers { service, workers } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
                at_least_one(v, &format!("{ap}.workers"), *workers, "workers");
            }
            OperatorAction::ResetLatched { service } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
            }
            OperatorAction::PausePeriodic { service }
            | OperatorAction::ResumePeriodic { service } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
                let spec = scenario.services.iter().find(|x| &x.name == service);
                if spec.is_some_and(|x| x.lifecycle.periodic.is_empty()) {
                    v.push(
                        Diagnostic::new(
                            format!("{ap}.service"),
                            format!("\"{service}\" makes no periodic calls"),
                        )
                        .with_hint("give it lifecycle: (periodic: [(every_s: …, call: (to: …))]), or pause another service"),
                    );
                }
            }
            OperatorAction::PauseDeliveries { service }
            | OperatorAction::ResumeDeliveries { service } => {
                known_service(v, &format!("{ap}.service"), service, services, sources);
                let spec = scenario.services.iter().find(|x| &x.name == service);
                if spec.is_some_and(|x| x.work_queue.is_none()) {
                    v.push(
                        Diagnostic::new(
                            format!("{ap}.service"),
                            format!("\"{service}\" is not a work queue"),
                        )
                        .with_hint("deliveries are a work queue's (work_queue: (…)); a service's own calls stop with PausePeriodic"),
                    );
                }
            }
            OperatorAction::ClearFaults | OperatorAction::FreezeChanges => {}
        }
    }
}
