//! Semantic validation of a parsed [`Scenario`]: everything serde cannot check.
//!
//! Returns every problem at once as [`Diagnostic`]s with field paths (located to
//! `line:col` by `diagnostics.rs`). Checks names (unique, known, with "did you mean"),
//! numeric ranges (positive rates, latency of at least one tick, probabilities, timeouts,
//! backoff), self-calls and synchronous call cycles, and fault targets. Does not load files or
//! touch the engine.

#![expect(
    clippy::neg_cmp_op_on_partial_ord,
    reason = "`!(x > 0.0)` rejects NaN as well as non-positive values, which validation needs"
)]

use std::collections::BTreeSet;

use super::diagnostics::closest;
use super::validate_mechanisms;
use super::{
    Backoff, CallSpec, Diagnostic, FORMAT_VERSION, FanOut, FaultKind, InstanceSelector, Jitter,
    RateProfile, RetryPolicy, Scenario, ServiceSpec, ServiceTime, ZoneRouting,
};
use crate::graph::DependencyGraph;
use crate::time::HORIZON_S;

/// Most tries per call a policy may ask for (attempt numbers are stored in a byte).
pub const MAX_ATTEMPTS: u32 = 255;
/// The most services a scenario may have (the generated 10,000-service model takes 0.4 GB).
pub const MAX_SERVICES: usize = 100_000;
/// The highest rate a source may send at, requests per second (a simulated second of it
/// takes about a minute of wall time).
pub const MAX_RATE_PER_S: f64 = 1e8;
/// The most instances one service may have (each is an entity with its own state).
pub const MAX_INSTANCES: u32 = 100_000;
/// The most keys a cache or an optimistic-concurrency table may have (per-key state).
pub const MAX_KEYS: u32 = 10_000_000;
/// The most requests one burst may send at once (each is a live request until answered).
pub const MAX_BURST: u32 = 1_000_000;
/// Most branches one request of a parallel fan-out may send (each is a job while it runs).
pub const MAX_BRANCHES: u32 = 10_000;
/// Most points of a `Points` rate profile (a day at one point a second is 86,400).
pub const MAX_RATE_POINTS: usize = 1_000_000;

/// Every semantic problem in `scenario`, in document order; empty when it is valid.
pub fn validate(scenario: &Scenario) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let v = &mut out;

    if scenario.version != FORMAT_VERSION {
        v.push(
            Diagnostic::new(
                "version",
                format!("unsupported scenario version {}", scenario.version),
            )
            .with_hint(format!("this build reads version {FORMAT_VERSION}")),
        );
    }
    if scenario.name.trim().is_empty() {
        v.push(
            Diagnostic::new("name", "the scenario needs a name").with_hint("name: \"My scenario\""),
        );
    }
    positive(v, "duration_s", scenario.duration_s, "the run length");
    positive(v, "tick_ms", scenario.tick_ms, "the tick");
    positive(
        v,
        "metrics_interval_s",
        scenario.metrics_interval_s,
        "the metrics interval",
    );
    if scenario.tick_ms > 0.0 && scenario.metrics_interval_s > 0.0 {
        let ticks = scenario.metrics_interval_s * 1000.0 / scenario.tick_ms;
        if (ticks - ticks.round()).abs() > 1e-6 || ticks.round() < 1.0 {
            v.push(
                Diagnostic::new(
                    "metrics_interval_s",
                    "the metrics interval is not a whole number of ticks",
                )
                .with_hint(format!(
                    "with tick_ms: {}, use a multiple of {} s",
                    scenario.tick_ms,
                    scenario.tick_ms / 1000.0
                )),
            );
        }
    }
    if scenario.sources.is_empty() {
        v.push(
            Diagnostic::new("sources", "the scenario has no traffic source")
                .with_hint("add a source that sends requests to a service"),
        );
    }
    if scenario.services.is_empty() {
        v.push(Diagnostic::new("services", "the scenario has no service"));
    }

    // Names: non-empty and unique across sources and services.
    let mut seen = BTreeSet::new();
    let named = scenario
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("sources[{i}].name"), &s.name))
        .chain(
            scenario
                .services
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("services[{i}].name"), &s.name)),
        );
    for (path, name) in named {
        if name.trim().is_empty() {
            v.push(Diagnostic::new(path, "empty node name"));
        } else if !seen.insert(name.as_str()) {
            v.push(
                Diagnostic::new(path, format!("the name \"{name}\" is used twice"))
                    .with_hint("every source and service needs its own name"),
            );
        }
    }

    let service_names: Vec<&str> = scenario.services.iter().map(|s| s.name.as_str()).collect();
    let source_names: Vec<&str> = scenario.sources.iter().map(|s| s.name.as_str()).collect();
    let tick = scenario.tick_ms;

    for (i, src) in scenario.sources.iter().enumerate() {
        let p = format!("sources[{i}]");
        known_service(
            v,
            &format!("{p}.target"),
            &src.target,
            &service_names,
            &source_names,
        );
        rate_profile(v, &format!("{p}.rate"), &src.rate);
        if src.zone.as_deref().is_some_and(|z| z.trim().is_empty()) {
            v.push(
                Diagnostic::new(format!("{p}.zone"), "a zone needs a name")
                    .with_hint("e.g. zone: Some(\"a\"), or leave it out for clients in no zone"),
            );
        }
        latency(v, &format!("{p}.latency_ms"), src.latency_ms, tick);
        if let Some(t) = src.timeout_ms {
            positive(v, &format!("{p}.timeout_ms"), t, "a timeout");
        }
        retry_policy(v, &format!("{p}.retry"), &src.retry);
        validate_mechanisms::latency_sd(v, &format!("{p}.latency_sd_ms"), src.latency_sd_ms);
        if let Some(t) = &src.adaptive_throttle {
            validate_mechanisms::adaptive_throttle(v, &format!("{p}.adaptive_throttle"), t);
        }
        if let Some(h) = src.hedge_after_ms {
            positive(v, &format!("{p}.hedge_after_ms"), h, "a hedging delay");
        }
    }

    count_at_most(
        v,
        "services",
        scenario.services.len() as u64,
        MAX_SERVICES as u64,
        "services",
        "every service is simulated; group services that behave alike",
    );
    for (i, svc) in scenario.services.iter().enumerate() {
        let p = format!("services[{i}]");
        if svc.instances == 0 {
            v.push(Diagnostic::new(
                format!("{p}.instances"),
                "a service needs at least one instance",
            ));
        }
        at_most_instances(v, &format!("{p}.instances"), svc.instances);
        if svc.workers == 0 {
            v.push(Diagnostic::new(
                format!("{p}.workers"),
                "an instance needs at least one worker",
            ));
        }
        service_time(v, &format!("{p}.service_time"), &svc.service_time);
        for (j, c) in svc.calls.iter().enumerate() {
            call(
                v,
                &format!("{p}.calls[{j}]"),
                c,
                &svc.name,
                &service_names,
                &source_names,
                tick,
            );
        }
        fan_out(v, &p, svc);
        zones(v, &p, svc);
        zone_routing(v, &p, svc);
        validate_mechanisms::service(v, &p, svc, scenario, &service_names, &source_names, tick);
    }
    let zone_count = scenario.zone_names().len();
    if zone_count > 64 {
        v.push(
            Diagnostic::new(
                "services",
                format!("the services name {zone_count} zones, more than 64"),
            )
            .with_hint("zones stand for availability zones or data centres: group them"),
        );
    }

    // Synchronous call cycles (self-calls are reported above).
    if let Some(cycle) = DependencyGraph::from_scenario(scenario).find_cycle()
        && cycle.len() > 2
    {
        let first = &cycle[0];
        let index = scenario
            .services
            .iter()
            .position(|s| &s.name == first)
            .unwrap_or(0);
        let call = scenario.services[index]
            .calls
            .iter()
            .position(|c| c.to == cycle[1])
            .unwrap_or(0);
        v.push(
            Diagnostic::new(format!("services[{index}].calls[{call}].to"), format!("synchronous call cycle: {}", cycle.join(" → ")))
                .with_hint("a request would wait on itself; break the cycle (an asynchronous queue is the usual way)"),
        );
    }

    for (k, step) in scenario.story.iter().enumerate() {
        let p = format!("story[{k}]");
        if !(step.at_s >= 0.0) || !step.at_s.is_finite() {
            v.push(Diagnostic::new(
                format!("{p}.at_s"),
                format!(
                    "a story step's time must be zero or positive, got {}",
                    step.at_s
                ),
            ));
        } else if step.at_s > scenario.duration_s {
            v.push(
                Diagnostic::new(
                    format!("{p}.at_s"),
                    format!(
                        "this step comes at {} s, after the run ends ({} s): it would never show",
                        step.at_s, scenario.duration_s
                    ),
                )
                .with_hint("move it within duration_s, or lengthen the run"),
            );
        }
        if step.text.trim().is_empty() {
            v.push(
                Diagnostic::new(format!("{p}.text"), "a story step says nothing")
                    .with_hint("write what the reader should notice at this moment"),
            );
        }
    }

    for (k, fault) in scenario.faults.iter().enumerate() {
        let p = format!("faults[{k}]");
        if !(fault.at_s >= 0.0) {
            v.push(Diagnostic::new(
                format!("{p}.at_s"),
                "a fault cannot start before the run",
            ));
        } else {
            within_horizon(v, &format!("{p}.at_s"), fault.at_s);
        }
        if let Some(d) = fault.duration_s {
            positive(v, &format!("{p}.duration_s"), d, "a fault duration");
        }
        fault_kind(
            v,
            &format!("{p}.fault"),
            &fault.fault,
            scenario,
            &service_names,
            &source_names,
        );
        if fault.fault.is_instantaneous() && fault.duration_s.is_some() {
            v.push(
                Diagnostic::new(
                    format!("{p}.duration_s"),
                    format!("a {} acts once and has no duration", fault.fault.label()),
                )
                .with_hint("remove duration_s; its effects run their course on their own"),
            );
        }
    }

    validate_mechanisms::alerts_and_operator(v, scenario, &service_names, &source_names);
    validate_mechanisms::checks(v, scenario, &service_names, &source_names);

    if !(scenario.verdict.healthy_ratio > 0.0 && scenario.verdict.healthy_ratio <= 1.0) {
        v.push(Diagnostic::new(
            "verdict.healthy_ratio",
            "healthy_ratio must be in (0, 1]",
        ));
    }
    positive(
        v,
        "verdict.judge_window_s",
        scenario.verdict.judge_window_s,
        "the judging window",
    );
    if !(scenario.verdict.smooth_s >= 0.0) || !scenario.verdict.smooth_s.is_finite() {
        v.push(Diagnostic::new(
            "verdict.smooth_s",
            "the smoothing window must be zero or positive",
        ));
    }

    out
}

/// Checks one call: its target, probability, count, timeout, latency, retry policy and the
/// mechanisms on it (breaker, throttling, hedging, bulkhead).
pub(super) fn call(
    v: &mut Vec<Diagnostic>,
    c: &str,
    call: &CallSpec,
    caller: &str,
    service_names: &[&str],
    source_names: &[&str],
    tick: f64,
) {
    if call.to == caller {
        v.push(
            Diagnostic::new(format!("{c}.to"), format!("\"{caller}\" calls itself")).with_hint(
                "a synchronous call to itself would wait on its own worker forever; remove it",
            ),
        );
    } else {
        known_service(v, &format!("{c}.to"), &call.to, service_names, source_names);
    }
    if !(0.0..=1.0).contains(&call.probability) || call.probability.is_nan() {
        v.push(Diagnostic::new(
            format!("{c}.probability"),
            format!("probability {} is outside [0, 1]", call.probability),
        ));
    }
    if call.count == 0 {
        v.push(
            Diagnostic::new(format!("{c}.count"), "count must be at least 1")
                .with_hint("use probability: 0.0 to disable a call"),
        );
    }
    if let Some(t) = call.timeout_ms {
        positive(v, &format!("{c}.timeout_ms"), t, "a timeout");
    }
    latency(v, &format!("{c}.latency_ms"), call.latency_ms, tick);
    retry_policy(v, &format!("{c}.retry"), &call.retry);
    validate_mechanisms::call_mechanisms(v, c, call);
}

pub(super) fn positive(v: &mut Vec<Diagnostic>, path: &str, value: f64, what: &str) {
    if !(value > 0.0) || !value.is_finite() {
        v.push(Diagnostic::new(
            path,
            format!("{what} must be a positive number, got {value}"),
        ));
    } else {
        within_horizon(v, path, value);
    }
}

/// A time (a field whose name ends in `_s` or `_ms`, but not a rate `…_per_s` or the
/// exponent `zipf_s`) must be at most [`HORIZON_S`]; other numbers pass.
pub(super) fn within_horizon(v: &mut Vec<Diagnostic>, path: &str, value: f64) {
    let (seconds, unit) = if path.ends_with("_per_s") || path.ends_with("zipf_s") {
        return;
    } else if path.ends_with("_ms") {
        (value / 1000.0, "ms")
    } else if path.ends_with("_s") {
        (value, "s")
    } else {
        return;
    };
    if seconds > HORIZON_S {
        v.push(
            Diagnostic::new(
                path,
                format!("{value} {unit} is longer than Cascade simulates (at most 10^8 s, about three years)"),
            )
            .with_hint("times are in the unit the field's name ends with: _s seconds, _ms milliseconds"),
        );
    }
}

pub(super) fn latency(v: &mut Vec<Diagnostic>, path: &str, latency_ms: f64, tick_ms: f64) {
    within_horizon(v, path, latency_ms);
    if !latency_ms.is_finite() || latency_ms + 1e-9 < tick_ms {
        v.push(
            Diagnostic::new(
                path,
                format!("network latency {latency_ms} ms is below one tick ({tick_ms} ms)"),
            )
            .with_hint("every hop takes at least one tick; raise the latency or lower tick_ms"),
        );
    }
}

pub(super) fn known_service(
    v: &mut Vec<Diagnostic>,
    path: &str,
    name: &str,
    services: &[&str],
    sources: &[&str],
) {
    if services.contains(&name) {
        return;
    }
    let message = if sources.contains(&name) {
        format!("\"{name}\" is a source; only services can be called")
    } else {
        format!("unknown service \"{name}\"")
    };
    let hint = match closest(name, services.iter().copied()) {
        Some(best) => format!("did you mean \"{best}\"?"),
        None if services.is_empty() => "define the service under `services`".to_owned(),
        None => format!("services are: {}", services.join(", ")),
    };
    v.push(Diagnostic::new(path, message).with_hint(hint));
}

pub(super) fn known_source(v: &mut Vec<Diagnostic>, path: &str, name: &str, sources: &[&str]) {
    if sources.contains(&name) {
        return;
    }
    let hint = match closest(name, sources.iter().copied()) {
        Some(best) => format!("did you mean \"{best}\"?"),
        None => format!("sources are: {}", sources.join(", ")),
    };
    v.push(Diagnostic::new(path, format!("unknown source \"{name}\"")).with_hint(hint));
}

fn rate(v: &mut Vec<Diagnostic>, path: &str, value: f64) {
    if !(value > 0.0) || !value.is_finite() {
        v.push(
            Diagnostic::new(
                path,
                format!("rate must be positive, got {value} requests/s"),
            )
            .with_hint("rates are requests per second, greater than zero"),
        );
    } else if value > MAX_RATE_PER_S {
        v.push(
            Diagnostic::new(
                path,
                format!("rate {value} requests/s is more than Cascade simulates (at most 10^8 per second)"),
            )
            .with_hint("every request is simulated, a few million per second of wall time: model a sample of the traffic"),
        );
    }
}

/// The points of a `Points` profile: some, in time order, each time within the horizon and
/// each rate a rate or zero (a recorded trace may have quiet spells).
fn rate_points(v: &mut Vec<Diagnostic>, path: &str, points: &[(f64, f64)]) {
    if points.is_empty() {
        v.push(
            Diagnostic::new(
                format!("{path}.0"),
                "a rate profile needs at least one point",
            )
            .with_hint("points are (time_s, rate_per_s) pairs: Points([(0, 100), (60, 200)])"),
        );
        return;
    }
    if points.len() > MAX_RATE_POINTS {
        v.push(
            Diagnostic::new(
                format!("{path}.0"),
                format!(
                    "{} points are more than {MAX_RATE_POINTS} in one profile",
                    points.len()
                ),
            )
            .with_hint("resample the trace: one point a second covers 11 days"),
        );
        return;
    }
    let mut previous = 0.0;
    for (i, &(at_s, per_s)) in points.iter().enumerate() {
        let p = format!("{path}.0[{i}]");
        if !(at_s >= 0.0) || at_s > HORIZON_S {
            v.push(
                Diagnostic::new(
                    format!("{p}.0"),
                    format!("a point's time of {at_s} s is outside [0, 10^8] s"),
                )
                .with_hint("the first number of a point is its time in seconds from the start"),
            );
        } else if at_s < previous {
            v.push(
                Diagnostic::new(
                    format!("{p}.0"),
                    format!("the point at {at_s} s comes after one at {previous} s"),
                )
                .with_hint("list the points in time order"),
            );
        } else {
            previous = at_s;
        }
        if !(per_s >= 0.0) || !per_s.is_finite() {
            v.push(
                Diagnostic::new(
                    format!("{p}.1"),
                    format!("a point's rate must be a number ≥ 0, got {per_s}"),
                )
                .with_hint("the second number of a point is requests per second"),
            );
        } else if per_s > MAX_RATE_PER_S {
            rate(v, &format!("{p}.1"), per_s);
        }
    }
}

fn rate_profile(v: &mut Vec<Diagnostic>, path: &str, profile: &RateProfile) {
    match *profile {
        RateProfile::Constant(r) => rate(v, &format!("{path}.0"), r),
        RateProfile::Step {
            from_per_s,
            to_per_s,
            at_s,
        } => {
            rate(v, &format!("{path}.from_per_s"), from_per_s);
            rate(v, &format!("{path}.to_per_s"), to_per_s);
            non_negative(v, &format!("{path}.at_s"), at_s);
        }
        RateProfile::Ramp {
            from_per_s,
            to_per_s,
            start_s,
            end_s,
        } => {
            rate(v, &format!("{path}.from_per_s"), from_per_s);
            rate(v, &format!("{path}.to_per_s"), to_per_s);
            non_negative(v, &format!("{path}.start_s"), start_s);
            if !(end_s > start_s) {
                v.push(Diagnostic::new(
                    format!("{path}.end_s"),
                    "a ramp must end after it starts",
                ));
            } else {
                within_horizon(v, &format!("{path}.end_s"), end_s);
            }
        }
        RateProfile::Spike {
            base_per_s,
            peak_per_s,
            start_s,
            duration_s,
        } => {
            rate(v, &format!("{path}.base_per_s"), base_per_s);
            rate(v, &format!("{path}.peak_per_s"), peak_per_s);
            non_negative(v, &format!("{path}.start_s"), start_s);
            positive(
                v,
                &format!("{path}.duration_s"),
                duration_s,
                "a spike duration",
            );
        }
        RateProfile::Burst { count, at_s } => {
            if count == 0 {
                v.push(Diagnostic::new(
                    format!("{path}.count"),
                    "a burst needs at least one request",
                ));
            } else if count > MAX_BURST {
                v.push(
                    Diagnostic::new(
                        format!("{path}.count"),
                        format!("a burst of {count} is more than {MAX_BURST} requests at once"),
                    )
                    .with_hint(
                        "every request is simulated; spread a larger load over time with Spike",
                    ),
                );
            }
            non_negative(v, &format!("{path}.at_s"), at_s);
        }
        RateProfile::Diurnal {
            mean_per_s,
            amplitude_per_s,
            period_s,
            peak_at_s,
        } => {
            rate(v, &format!("{path}.mean_per_s"), mean_per_s);
            if !(amplitude_per_s >= 0.0 && amplitude_per_s <= mean_per_s) {
                v.push(
                    Diagnostic::new(
                        format!("{path}.amplitude_per_s"),
                        format!(
                            "an amplitude of {amplitude_per_s} requests/s around a mean of {mean_per_s} would send a negative rate"
                        ),
                    )
                    .with_hint("the rate swings from mean − amplitude to mean + amplitude: keep the amplitude between 0 and the mean"),
                );
            }
            positive(v, &format!("{path}.period_s"), period_s, "a period");
            within_horizon(v, &format!("{path}.period_s"), period_s);
            if !peak_at_s.is_finite() {
                v.push(Diagnostic::new(
                    format!("{path}.peak_at_s"),
                    "the time of the peak must be a number of seconds",
                ));
            }
        }
        RateProfile::Points(ref points) => rate_points(v, path, points),
        RateProfile::Closed {
            users,
            think_ms,
            think_after_failure_ms,
        } => {
            if users == 0 {
                v.push(
                    Diagnostic::new(
                        format!("{path}.users"),
                        "a closed population needs at least one user",
                    )
                    .with_hint("remove the source to send nothing"),
                );
            } else if users > MAX_BURST {
                v.push(
                    Diagnostic::new(
                        format!("{path}.users"),
                        format!("{users} users is more than {MAX_BURST}"),
                    )
                    .with_hint("every user's requests are simulated; use a rate (Constant) for a larger crowd"),
                );
            }
            think_time(
                v,
                &format!("{path}.think_ms"),
                think_ms,
                "0 sends the next request as soon as the last one ends",
            );
            if let Some(after) = think_after_failure_ms {
                think_time(
                    v,
                    &format!("{path}.think_after_failure_ms"),
                    after,
                    "0: users press reload at once; 60000: they come back a minute later",
                );
            }
        }
    }
}

/// A closed population's think time, ms: zero or positive, within the horizon.
fn think_time(v: &mut Vec<Diagnostic>, path: &str, ms: f64, hint: &str) {
    if !(ms >= 0.0) || !ms.is_finite() {
        v.push(
            Diagnostic::new(
                path,
                format!("a think time must be zero or positive, got {ms}"),
            )
            .with_hint(hint),
        );
    } else {
        within_horizon(v, path, ms / 1000.0);
    }
}

pub(super) fn non_negative(v: &mut Vec<Diagnostic>, path: &str, value: f64) {
    if !(value >= 0.0) || !value.is_finite() {
        v.push(Diagnostic::new(
            path,
            format!("time must be zero or positive, got {value}"),
        ));
    } else {
        within_horizon(v, path, value);
    }
}

fn service_time(v: &mut Vec<Diagnostic>, path: &str, st: &ServiceTime) {
    match *st {
        ServiceTime::Exponential { mean_ms } => positive(
            v,
            &format!("{path}.mean_ms"),
            mean_ms,
            "a mean service time",
        ),
        ServiceTime::Deterministic { ms } => {
            positive(v, &format!("{path}.ms"), ms, "a service time");
        }
        ServiceTime::LogNormal { mean_ms, sigma } => {
            positive(
                v,
                &format!("{path}.mean_ms"),
                mean_ms,
                "a mean service time",
            );
            if !(sigma >= 0.0) || !sigma.is_finite() {
                v.push(Diagnostic::new(
                    format!("{path}.sigma"),
                    format!("sigma must be zero or positive, got {sigma}"),
                ));
            }
        }
        ServiceTime::Uniform { min_ms, max_ms } => {
            non_negative(v, &format!("{path}.min_ms"), min_ms);
            within_horizon(v, &format!("{path}.max_ms"), max_ms);
            if !(max_ms >= min_ms) || !(max_ms > 0.0) {
                v.push(Diagnostic::new(
                    format!("{path}.max_ms"),
                    "max_ms must be positive and at least min_ms",
                ));
            }
        }
        ServiceTime::Normal { mean_ms, sd_ms } => {
            positive(
                v,
                &format!("{path}.mean_ms"),
                mean_ms,
                "a mean service time",
            );
            non_negative(v, &format!("{path}.sd_ms"), sd_ms);
        }
    }
}

pub(super) fn retry_policy(v: &mut Vec<Diagnostic>, path: &str, retry: &RetryPolicy) {
    if retry.max_attempts == 0 {
        v.push(
            Diagnostic::new(
                format!("{path}.max_attempts"),
                "max_attempts counts every try and must be at least 1",
            )
            .with_hint("max_attempts: 1 means no retries; 3 means one try and two retries"),
        );
    } else if retry.max_attempts > MAX_ATTEMPTS {
        v.push(
            Diagnostic::new(format!("{path}.max_attempts"), format!("max_attempts {} is more than {MAX_ATTEMPTS}", retry.max_attempts))
                .with_hint("a caller that effectively never gives up is better modelled with a long backoff cap"),
        );
    }
    match retry.backoff {
        Backoff::None => {}
        Backoff::Constant { delay_ms } => {
            non_negative(v, &format!("{path}.backoff.delay_ms"), delay_ms);
        }
        Backoff::Exponential { base_ms, cap_ms } => {
            positive(
                v,
                &format!("{path}.backoff.base_ms"),
                base_ms,
                "the backoff base",
            );
            if !(cap_ms >= base_ms) {
                v.push(Diagnostic::new(
                    format!("{path}.backoff.cap_ms"),
                    "the backoff cap must be at least the base",
                ));
            } else {
                within_horizon(v, &format!("{path}.backoff.cap_ms"), cap_ms);
            }
        }
        Backoff::Random { mean_ms } => {
            positive(
                v,
                &format!("{path}.backoff.mean_ms"),
                mean_ms,
                "the mean backoff",
            );
            within_horizon(v, &format!("{path}.backoff.mean_ms"), mean_ms);
            if retry.jitter != Jitter::None {
                v.push(
                    Diagnostic::new(
                        format!("{path}.jitter"),
                        "a random backoff is random already",
                    )
                    .with_hint(
                        "remove the jitter: each delay is drawn from the exponential distribution",
                    ),
                );
            }
        }
    }
    if !(0.0..=1.0).contains(&retry.persistence) {
        v.push(
            Diagnostic::new(
                format!("{path}.persistence"),
                "persistence is a probability and must be in [0, 1]",
            )
            .with_hint("0.7: after each failed attempt 70% try again and 30% give up"),
        );
    }
    if retry.jitter == Jitter::Decorrelated && !matches!(retry.backoff, Backoff::Exponential { .. })
    {
        v.push(
            Diagnostic::new(format!("{path}.jitter"), "decorrelated jitter needs exponential backoff")
                .with_hint("it draws from [base, 3 × previous delay] capped at cap: set backoff: Exponential(base_ms: …, cap_ms: …)"),
        );
    }
    if retry.jitter != Jitter::None && retry.backoff == Backoff::None {
        v.push(
            Diagnostic::new(
                format!("{path}.jitter"),
                "jitter without backoff has nothing to randomise",
            )
            .with_hint("add a backoff, or remove the jitter"),
        );
    }
    if let Some(budget) = retry.budget {
        if !(budget.ratio >= 0.0) || !budget.ratio.is_finite() {
            v.push(
                Diagnostic::new(
                    format!("{path}.budget.ratio"),
                    "the budget ratio must be zero or positive",
                )
                .with_hint("0.1 allows retries for 10% of first attempts"),
            );
        }
        if !(budget.max_tokens >= 1.0) || !budget.max_tokens.is_finite() {
            v.push(Diagnostic::new(
                format!("{path}.budget.max_tokens"),
                "max_tokens must be at least 1",
            ));
        }
    }
}

/// A parallel fan-out: a quorum of at least one and at most the branches the calls send, at
/// most [`MAX_BRANCHES`] branches, and no cache (a cache's miss makes its backing call alone).
fn fan_out(v: &mut Vec<Diagnostic>, p: &str, svc: &ServiceSpec) {
    if svc.fan_out == FanOut::Sequential {
        return;
    }
    let branches = svc.calls_sent(None);
    if let FanOut::Quorum(k) = svc.fan_out {
        if k == 0 {
            v.push(
                Diagnostic::new(format!("{p}.fan_out"), "a quorum must be at least 1")
                    .with_hint("`Parallel` waits for every branch"),
            );
        } else if u64::from(k) > branches {
            v.push(
                Diagnostic::new(
                    format!("{p}.fan_out"),
                    format!(
                        "a quorum of {k} is more than the {branches} branches this service sends"
                    ),
                )
                .with_hint("every call sends `count` branches; lower the quorum or add calls"),
            );
        }
    }
    count_at_most(
        v,
        &format!("{p}.calls"),
        branches,
        MAX_BRANCHES.into(),
        "parallel branches per request",
        "each branch is simulated while it runs; model a wide fan-out with fewer, larger calls",
    );
    if svc.cache.is_some() {
        v.push(
            Diagnostic::new(
                format!("{p}.fan_out"),
                "a cache makes its backing call alone and cannot fan out",
            )
            .with_hint("put the fan-out in a service behind the cache"),
        );
    }
}

/// A count of simulated things (`noun`) must be at most `max`: each has state of its own.
fn count_at_most(v: &mut Vec<Diagnostic>, path: &str, n: u64, max: u64, noun: &str, hint: &str) {
    if n > max {
        v.push(Diagnostic::new(path, format!("{n} {noun} is more than {max}")).with_hint(hint));
    }
}

/// A number of instances of one service must be at most [`MAX_INSTANCES`].
pub(super) fn at_most_instances(v: &mut Vec<Diagnostic>, path: &str, n: u32) {
    count_at_most(
        v,
        path,
        n.into(),
        MAX_INSTANCES.into(),
        "instances",
        "every instance is simulated; model a larger fleet as fewer instances with more workers",
    );
}

/// A number of keys must be at most [`MAX_KEYS`].
pub(super) fn at_most_keys(v: &mut Vec<Diagnostic>, path: &str, n: u32) {
    count_at_most(
        v,
        path,
        n.into(),
        MAX_KEYS.into(),
        "keys",
        "every key has its own state; the hit ratio and skew matter more than the count",
    );
}

pub(super) fn instances(
    v: &mut Vec<Diagnostic>,
    path: &str,
    selector: InstanceSelector,
    service: Option<u32>,
) {
    if let (InstanceSelector::First(n), Some(total)) = (selector, service)
        && (n == 0 || n > total)
    {
        v.push(Diagnostic::new(
            path,
            format!("cannot select {n} of {total} instances"),
        ));
    }
}

fn fault_kind(
    v: &mut Vec<Diagnostic>,
    path: &str,
    fault: &FaultKind,
    scenario: &Scenario,
    services: &[&str],
    sources: &[&str],
) {
    let service_instances = |name: &str| scenario.service(name).map(|s| s.instances);
    match fault {
        FaultKind::Kill {
            service,
            instances: sel,
            ..
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            instances(
                v,
                &format!("{path}.instances"),
                *sel,
                service_instances(service),
            );
        }
        FaultKind::Slow {
            service,
            instances: sel,
            factor,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            instances(
                v,
                &format!("{path}.instances"),
                *sel,
                service_instances(service),
            );
            positive(v, &format!("{path}.factor"), *factor, "a slowdown factor");
        }
        FaultKind::Latency {
            service,
            instances: sel,
            added_ms,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            instances(
                v,
                &format!("{path}.instances"),
                *sel,
                service_instances(service),
            );
            non_negative(v, &format!("{path}.added_ms"), *added_ms);
        }
        FaultKind::Errors {
            service,
            instances: sel,
            probability,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            instances(
                v,
                &format!("{path}.instances"),
                *sel,
                service_instances(service),
            );
            if !(0.0..=1.0).contains(probability) {
                v.push(Diagnostic::new(
                    format!("{path}.probability"),
                    format!("probability {probability} is outside [0, 1]"),
                ));
            }
        }
        FaultKind::CapacityCut {
            service,
            workers,
            cores,
            instances: left,
        } => {
            known_service(v, &format!("{path}.service"), service, services, sources);
            if workers.is_none() && cores.is_none() && left.is_none() {
                v.push(
                    Diagnostic::new(
                        path,
                        "a capacity cut needs `workers`, `cores` and/or `instances`",
                    )
                    .with_hint("e.g. CapacityCut(service: \"db\", workers: 2)"),
                );
            }
            if let (Some(n), Some(total)) = (left, service_instances(service))
                && *n > total
            {
                v.push(Diagnostic::new(
                    format!("{path}.instances"),
                    format!("cannot leave {n} of {total} instances"),
                ));
            }
        }
        FaultKind::LinkLatency { from, to, added_ms } => {
            link(v, path, from, to, scenario, services, sources);
            non_negative(v, &format!("{path}.added_ms"), *added_ms);
        }
        FaultKind::Partition { from, to } => link(v, path, from, to, scenario, services, sources),
        FaultKind::LoadSpike { source, factor } => {
            known_source(v, &format!("{path}.source"), source, sources);
            positive(v, &format!("{path}.factor"), *factor, "a load factor");
            let peak = scenario
                .sources
                .iter()
                .find(|s| &s.name == source)
                .map_or(0.0, |s| s.rate.peak_per_s());
            if peak * factor > MAX_RATE_PER_S {
                v.push(
                    Diagnostic::new(
                        format!("{path}.factor"),
                        format!(
                            "×{factor} takes the rate of {source} from {peak} to {} requests/s, more than Cascade simulates (at most 10^8 per second)",
                            peak * factor
                        ),
                    )
                    .with_hint("every request is simulated: a smaller factor shows the same overload"),
                );
            }
        }
        FaultKind::PacketLoss {
            from,
            to,
            probability,
        } => {
            link(v, path, from, to, scenario, services, sources);
            if !(0.0..=1.0).contains(probability) {
                v.push(Diagnostic::new(
                    format!("{path}.probability"),
                    format!("probability {probability} is outside [0, 1]"),
                ));
            }
        }
        FaultKind::OneWayPartition { from, to, .. } => {
            link(v, path, from, to, scenario, services, sources);
        }
        FaultKind::GroupPartition { group, others } => {
            group_partition(v, path, group, others, scenario, services, sources);
        }
        other => validate_mechanisms::fault(v, path, other, scenario, services, sources),
    }
}

/// A service's zones: named, each once.
fn zones(v: &mut Vec<Diagnostic>, path: &str, svc: &ServiceSpec) {
    for (i, zone) in svc.zones.iter().enumerate() {
        let at = format!("{path}.zones[{i}]");
        if zone.trim().is_empty() {
            v.push(
                Diagnostic::new(at, "a zone needs a name")
                    .with_hint("e.g. zones: [\"a\", \"b\", \"c\"]"),
            );
        } else if svc.zones[..i].contains(zone) {
            v.push(
                Diagnostic::new(at, format!("zone \"{zone}\" is named twice"))
                    .with_hint("instances are spread over the zones in turn: name each once"),
            );
        }
    }
}

/// A service's zone routing: it needs zones, cannot be key-routed, and spills at a share.
fn zone_routing(v: &mut Vec<Diagnostic>, path: &str, svc: &ServiceSpec) {
    let ZoneRouting::SameZone { spill_below } = svc.zone_routing else {
        return;
    };
    let at = format!("{path}.zone_routing");
    if svc.zones.is_empty() {
        v.push(
            Diagnostic::new(&at, "zone routing without zones")
                .with_hint("spread the instances over zones: zones: [\"a\", \"b\", …]"),
        );
    }
    if svc.sharding.is_some() {
        v.push(
            Diagnostic::new(
                &at,
                "a key-routed service sends each key to its owners, not by zone",
            )
            .with_hint("remove `zone_routing` or `sharding`"),
        );
    }
    if !(0.0..=1.0).contains(&spill_below) {
        v.push(
            Diagnostic::new(
                format!("{at}.spill_below"),
                "the spill-over share must be in [0, 1]",
            )
            .with_hint("0.5: requests leave the zone when under half its instances are routable"),
        );
    }
}

/// A zone a fault names: one that some service's instances are in.
pub(super) fn known_zone(v: &mut Vec<Diagnostic>, path: &str, zone: &str, scenario: &Scenario) {
    let all = scenario.zone_names();
    if all.contains(&zone) {
        return;
    }
    let hint = if all.is_empty() {
        "no service is in a zone: give services `zones: [\"a\", \"b\", …]`".to_owned()
    } else {
        match closest(zone, all.iter().copied()) {
            Some(best) => format!("did you mean \"{best}\"?"),
            None => format!("the zones are {}", all.join(", ")),
        }
    };
    v.push(Diagnostic::new(path, format!("unknown zone \"{zone}\"")).with_hint(hint));
}

/// The hint for an unknown node `name`: the closest of `all` (sources and services), or the
/// first of them when none is close.
fn node_hint(name: &str, all: &[&str]) -> String {
    match closest(name, all.iter().copied()) {
        Some(best) => format!("did you mean \"{best}\"?"),
        None if all.len() > 8 => format!("the nodes are {}, …", all[..8].join(", ")),
        None => format!("the nodes are {}", all.join(", ")),
    }
}

/// A group partition's sides: known nodes, each named once, something on both sides, and at
/// least one call crossing between them.
fn group_partition(
    v: &mut Vec<Diagnostic>,
    path: &str,
    group: &[String],
    others: &[String],
    scenario: &Scenario,
    services: &[&str],
    sources: &[&str],
) {
    let all: Vec<&str> = sources.iter().chain(services.iter()).copied().collect();
    if group.is_empty() {
        v.push(
            Diagnostic::new(format!("{path}.group"), "the group names no node")
                .with_hint("list the services and sources on one side, e.g. group: [\"db\"]"),
        );
        return;
    }
    let mut ok = true;
    for (field, names) in [("group", group), ("others", others)] {
        for (i, name) in names.iter().enumerate() {
            let at = format!("{path}.{field}[{i}]");
            if !all.contains(&name.as_str()) {
                v.push(
                    Diagnostic::new(at, format!("unknown node \"{name}\""))
                        .with_hint(node_hint(name, &all)),
                );
                ok = false;
            } else if names[..i].contains(name) {
                v.push(Diagnostic::new(at, format!("\"{name}\" is named twice")));
                ok = false;
            } else if field == "others" && group.contains(name) {
                v.push(
                    Diagnostic::new(at, format!("\"{name}\" is on both sides"))
                        .with_hint("a node is in the group or in the others, not both"),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return;
    }
    if !scenario.partition_crosses(group, others) {
        let hint = if others.is_empty() && all.iter().all(|&n| group.iter().any(|g| g == n)) {
            "the group holds every node: leave some out"
        } else {
            "a group partition cuts the calls between the two sides; these sides do not call each other"
        };
        v.push(
            Diagnostic::new(format!("{path}.group"), "no call crosses the partition")
                .with_hint(hint),
        );
    }
}

pub(super) fn link(
    v: &mut Vec<Diagnostic>,
    path: &str,
    from: &str,
    to: &str,
    scenario: &Scenario,
    services: &[&str],
    sources: &[&str],
) {
    let all: Vec<&str> = sources.iter().chain(services.iter()).copied().collect();
    if !all.contains(&from) {
        v.push(
            Diagnostic::new(format!("{path}.from"), format!("unknown node \"{from}\""))
                .with_hint(node_hint(from, &all)),
        );
        return;
    }
    let targets = scenario.link_targets(from);
    if !targets.contains(&to) {
        let hint = match closest(to, targets.iter().copied()) {
            Some(best) => format!("did you mean \"{best}\"?"),
            None if targets.is_empty() => format!("\"{from}\" calls nothing"),
            None => format!("\"{from}\" calls: {}", targets.join(", ")),
        };
        v.push(
            Diagnostic::new(
                format!("{path}.to"),
                format!("\"{from}\" does not call \"{to}\""),
            )
            .with_hint(hint),
        );
    }
}
