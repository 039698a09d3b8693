//! Inspector sections for the resilience mechanisms: per call (breaker, fallback, adaptive
//! throttling, hedging, bulkhead, latency spread), per service (CPU cores, load-dependent
//! service time, admission and limits, health checks, outlier ejection, autoscaler, cache,
//! lifecycle, work queue, optimistic concurrency, failover) and the scenario's alerts and
//! operator steps.
//!
//! Each section is a collapsible header with a switch: off means the mechanism is not
//! configured (the spec field is `None` or default) and costs the engine nothing. The
//! functions edit a copy of the spec; `inspector.rs` turns a changed copy into an undoable
//! edit. Defaults offered when a mechanism is switched on are the documented defaults.

use bevy_egui::egui::{self, RichText};
use cascade_sim::mechanisms::scaling::Scaling;
use cascade_sim::scenario::{
    AdaptiveThrottleSpec, AdmissionSpec, AlertMetric, AlertSpec, AutoscaleSpec, BreakerSpec,
    CacheSpec, CallSpec, CodelSpec, FailoverSpec, Fallback, HealthCheckSpec, LifecycleSpec,
    OccSpec, OperatorAction, OperatorStep, OperatorTrigger, OutlierSpec, PeriodicCallSpec,
    RateLimitSpec, ScaleMetric, ScalingCounts, ScalingSpec, Scenario, ServiceSpec, ShardingSpec,
    SourceSpec, WorkQueueSpec,
};

/// A value parsed from the format's own defaults (so the app offers exactly what an omitted
/// field means).
fn parsed_default<T: serde::de::DeserializeOwned>(ron_text: &str) -> T {
    ron::from_str(ron_text)
        .unwrap_or_else(|err| unreachable!("built-in default {ron_text} parses: {err}"))
}

fn default_breaker() -> BreakerSpec {
    parsed_default("()")
}
fn default_throttle() -> AdaptiveThrottleSpec {
    parsed_default("()")
}
fn default_health() -> HealthCheckSpec {
    parsed_default("()")
}
fn default_outlier() -> OutlierSpec {
    parsed_default("()")
}

/// A collapsible section with an on/off switch for an optional spec.
fn optional_section<T>(
    ui: &mut egui::Ui,
    id: impl std::hash::Hash + std::fmt::Debug,
    title: &str,
    hover: &str,
    value: &mut Option<T>,
    make: impl FnOnce() -> T,
    body: impl FnOnce(&mut egui::Ui, &mut T),
) {
    let mut on = value.is_some();
    let header = egui::collapsing_header::CollapsingState::load_with_default_open(
        ui.ctx(),
        ui.make_persistent_id(id),
        false,
    );
    header
        .show_header(ui, |ui| {
            ui.checkbox(&mut on, RichText::new(title).strong())
                .on_hover_text(hover);
        })
        .body(|ui| {
            if let Some(v) = value.as_mut() {
                body(ui, v);
            } else {
                ui.label(RichText::new("off").weak());
            }
        });
    match (on, value.is_some()) {
        (true, false) => *value = Some(make()),
        (false, true) => *value = None,
        _ => {}
    }
}

fn ms(v: &mut f64) -> egui::DragValue<'_> {
    egui::DragValue::new(v)
        .range(0.001..=3_600_000.0)
        .speed(0.5)
        .suffix(" ms")
}

fn secs(v: &mut f64) -> egui::DragValue<'_> {
    egui::DragValue::new(v)
        .range(0.0..=1e6)
        .speed(0.5)
        .suffix(" s")
}

fn pct(ui: &mut egui::Ui, v: &mut f64, hover: &str) {
    let mut p = *v * 100.0;
    if ui
        .add(
            egui::DragValue::new(&mut p)
                .range(0.0..=100.0)
                .speed(0.5)
                .suffix(" %"),
        )
        .on_hover_text(hover)
        .changed()
    {
        *v = p / 100.0;
    }
}

fn row(ui: &mut egui::Ui, label: &str, add: impl FnOnce(&mut egui::Ui)) {
    ui.label(label);
    add(ui);
    ui.end_row();
}

/// An optional setting on one line: a checkbox that turns it on (as `make` gives it) or off,
/// and `edit` for its value while it is on.
pub(super) fn optional_inline<T>(
    ui: &mut egui::Ui,
    value: &mut Option<T>,
    make: impl FnOnce() -> T,
    hover: &str,
    edit: impl FnOnce(&mut egui::Ui, &mut T),
) {
    ui.horizontal(|ui| {
        let mut on = value.is_some();
        ui.checkbox(&mut on, "").on_hover_text(hover);
        match (on, value.is_some()) {
            (true, false) => *value = Some(make()),
            (false, true) => *value = None,
            _ => {}
        }
        if let Some(v) = value.as_mut() {
            edit(ui, v);
        }
    });
}

fn optional_u32(ui: &mut egui::Ui, v: &mut Option<u32>, default: u32, hover: &str) {
    optional_inline(
        ui,
        v,
        || default,
        hover,
        |ui, n| {
            ui.add(egui::DragValue::new(n).range(1..=10_000_000))
                .on_hover_text(hover);
        },
    );
}

fn optional_f64(
    ui: &mut egui::Ui,
    v: &mut Option<f64>,
    default: f64,
    drag: fn(&mut f64) -> egui::DragValue<'_>,
    hover: &str,
) {
    optional_inline(
        ui,
        v,
        || default,
        hover,
        |ui, x| {
            ui.add(drag(x)).on_hover_text(hover);
        },
    );
}

/// Load-dependent service time: the USL's contention and coherency, and where throughput
/// peaks.
fn scaling_ui(ui: &mut egui::Ui, v: &mut Option<ScalingSpec>) {
    optional_inline(
        ui,
        v,
        || ScalingSpec {
            contention: 0.02,
            coherency: 0.0005,
            counts: ScalingCounts::Working,
        },
        "Own work slows when many requests work at once (Universal Scalability Law): \
         σ(n) = 1 + contention·(n − 1) + coherency·n·(n − 1)",
        |ui, sc| {
            ui.add(
                egui::DragValue::new(&mut sc.contention)
                    .range(0.0..=1.0)
                    .speed(0.001)
                    .prefix("α "),
            )
            .on_hover_text("Contention: the serialised share of the work (locks)");
            ui.add(
                egui::DragValue::new(&mut sc.coherency)
                    .range(0.0..=1.0)
                    .speed(0.0001)
                    .max_decimals(5)
                    .prefix("β "),
            )
            .on_hover_text(
                "Coherency: the cost between each pair of requests at once (cache misses, GC)",
            );
        },
    );
}

/// Which requests slow the work, and (counting those working) where throughput peaks.
fn scaling_counts_ui(ui: &mut egui::Ui, sc: &mut ScalingSpec) {
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("scaling-counts")
            .selected_text(match sc.counts {
                ScalingCounts::Working => "n: working",
                ScalingCounts::Present => "n: present",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut sc.counts, ScalingCounts::Working, "working")
                    .on_hover_text("n counts the requests in their own work (CPU, locks, caches)");
                ui.selectable_value(&mut sc.counts, ScalingCounts::Present, "present")
                    .on_hover_text("n counts every request at the instance, waiting ones too (memory and GC, a lock's waiters)");
            });
        let usl = Scaling::from(*sc);
        if !usl.counts_present
            && let Some(peak) = usl.peak_concurrency()
        {
            ui.weak(format!("peak at {peak:.0} at once")).on_hover_text(
                "Above this many requests at once, throughput falls: size workers or cores here",
            );
        }
    });
}

fn service_names(scenario: &Scenario, except: &str) -> Vec<String> {
    scenario
        .services
        .iter()
        .filter(|s| s.name != except)
        .map(|s| s.name.clone())
        .collect()
}

fn service_combo(
    ui: &mut egui::Ui,
    id: impl std::hash::Hash + std::fmt::Debug,
    value: &mut String,
    names: &[String],
) {
    egui::ComboBox::from_id_salt(id)
        .selected_text(value.clone())
        .show_ui(ui, |ui| {
            for n in names {
                ui.selectable_value(value, n.clone(), n);
            }
        });
}

/// The mechanisms of one call (a service's call, a cache fill or a lifecycle call).
pub fn call_mechanisms_ui(ui: &mut egui::Ui, c: &mut CallSpec, id: &str) {
    egui::Grid::new((id, "call-mech")).num_columns(2).show(ui, |ui| {
        row(ui, "latency spread", |ui| {
            ui.add(egui::DragValue::new(&mut c.latency_sd_ms).range(0.0..=10_000.0).speed(0.1).prefix("σ ").suffix(" ms"))
                .on_hover_text("Standard deviation of the one-way latency: |N(latency, σ)|");
        });
        row(ui, "on failure", |ui| {
            egui::ComboBox::from_id_salt((id, "fallback")).selected_text(format!("{:?}", c.fallback)).show_ui(ui, |ui| {
                ui.selectable_value(&mut c.fallback, Fallback::Fail, "Fail").on_hover_text("The request fails");
                ui.selectable_value(&mut c.fallback, Fallback::Degrade, "Degrade")
                    .on_hover_text("The request carries on without this call (served degraded)");
            });
        });
        row(ui, "hedge after", |ui| {
            optional_f64(ui, &mut c.hedge_after_ms, 50.0, ms, "Send a second attempt if the first has not answered by then; first reply wins");
        });
        row(ui, "bulkhead", |ui| {
            optional_u32(ui, &mut c.max_concurrent, 10, "Most workers of one instance in this call at once; beyond it the call fails fast (or waits, below)");
        });
        if c.max_concurrent.is_some() {
            row(ui, "wait for a place", |ui| {
                optional_f64(ui, &mut c.bulkhead_wait_ms, 1000.0, ms, "A pool's acquire timeout: wait this long for a place, holding the worker, before failing");
            });
        } else {
            c.bulkhead_wait_ms = None;
        }
    });
    optional_section(
        ui,
        (id, "breaker"),
        "circuit breaker",
        "Stop calling a failing dependency for a while",
        &mut c.breaker,
        default_breaker,
        |ui, b| {
            egui::Grid::new((id, "breaker-grid"))
                .num_columns(2)
                .show(ui, |ui| {
                    row(ui, "window", |ui| {
                        ui.add(secs(&mut b.window_s))
                            .on_hover_text("Rolling window of the failure share");
                    });
                    row(ui, "opens at", |ui| {
                        pct(ui, &mut b.error_ratio, "Failure share that opens it");
                    });
                    row(ui, "min requests", |ui| {
                        ui.add(egui::DragValue::new(&mut b.min_requests).range(1..=100_000));
                    });
                    row(ui, "or in a row", |ui| {
                        optional_u32(
                            ui,
                            &mut b.consecutive_failures,
                            5,
                            "Consecutive failures that open it",
                        );
                    });
                    row(ui, "open for", |ui| {
                        ui.add(secs(&mut b.open_s));
                    });
                    row(ui, "probes", |ui| {
                        ui.add(egui::DragValue::new(&mut b.probes).range(1..=1000))
                            .on_hover_text(
                                "Trial calls in half-open; that many successes close it",
                            );
                    });
                });
        },
    );
    optional_section(
        ui,
        (id, "throttle"),
        "adaptive throttling",
        "Reject locally with P = max(0, (requests − K·accepts)/(requests + 1)) (SRE book)",
        &mut c.adaptive_throttle,
        default_throttle,
        |ui, t| throttle_grid(ui, id, t),
    );
}

fn throttle_grid(ui: &mut egui::Ui, id: &str, t: &mut AdaptiveThrottleSpec) {
    egui::Grid::new((id, "throttle-grid"))
        .num_columns(2)
        .show(ui, |ui| {
            row(ui, "K", |ui| {
                ui.add(
                    egui::DragValue::new(&mut t.k)
                        .range(1.0..=100.0)
                        .speed(0.05),
                )
                .on_hover_text("Requests allowed per accepted request");
            });
            row(ui, "window", |ui| {
                ui.add(secs(&mut t.window_s));
            });
        });
}

/// The mechanisms of a source.
pub fn source_mechanisms_ui(ui: &mut egui::Ui, s: &mut SourceSpec) {
    egui::Grid::new("source-mech")
        .num_columns(2)
        .show(ui, |ui| {
            row(ui, "latency spread", |ui| {
                ui.add(
                    egui::DragValue::new(&mut s.latency_sd_ms)
                        .range(0.0..=10_000.0)
                        .speed(0.1)
                        .prefix("σ ")
                        .suffix(" ms"),
                );
            });
            row(ui, "hedge after", |ui| {
                optional_f64(
                    ui,
                    &mut s.hedge_after_ms,
                    50.0,
                    ms,
                    "Send a second attempt if the first has not answered by then",
                );
            });
        });
    optional_section(
        ui,
        "source-throttle",
        "adaptive throttling",
        "Client-side throttling (SRE book)",
        &mut s.adaptive_throttle,
        default_throttle,
        |ui, t| throttle_grid(ui, "source", t),
    );
}

/// The mechanisms of a service.
pub fn service_mechanisms_ui(ui: &mut egui::Ui, s: &mut ServiceSpec, scenario: &Scenario) {
    let others = service_names(scenario, &s.name);
    egui::Grid::new("svc-mech").num_columns(2).show(ui, |ui| {
        row(ui, "CPU cores", |ui| {
            optional_u32(ui, &mut s.cores, s.workers.max(1), "Own work needs a core; waiting on a call holds only a worker. Off: as many cores as workers");
        });
        row(ui, "slows with load", |ui| {
            scaling_ui(ui, &mut s.scaling);
        });
        if let Some(sc) = s.scaling.as_mut() {
            row(ui, "", |ui| scaling_counts_ui(ui, sc));
        }
        row(ui, "sharded by key", |ui| {
            let instances = s.instances.max(1);
            optional_inline(
                ui,
                &mut s.sharding,
                || ShardingSpec {
                    keys: 1000,
                    zipf_s: 1.0,
                    replicas: 1,
                },
                "Requests carry a key and go to the instances that own it (key mod instances); the load balancer is not used",
                |ui, sh| {
                    ui.add(egui::DragValue::new(&mut sh.keys).range(1..=10_000_000).suffix(" keys"));
                    ui.add(egui::DragValue::new(&mut sh.zipf_s).range(0.0..=5.0).speed(0.01).prefix("zipf "))
                        .on_hover_text("Skew of key popularity: 0 all alike, 1 the classic hot keys");
                    ui.add(egui::DragValue::new(&mut sh.replicas).range(1..=instances).suffix("×"))
                        .on_hover_text("Instances holding each key; a retry goes to the next");
                    sh.replicas = sh.replicas.clamp(1, instances);
                },
            );
        });
    });
    let mut admission = (s.admission != AdmissionSpec::default()).then_some(s.admission);
    // An ordered queue (by criticality or deadline) cannot also be adaptive LIFO.
    let ordered_queue = matches!(
        s.queue.discipline,
        cascade_sim::scenario::QueueDiscipline::Priority
            | cascade_sim::scenario::QueueDiscipline::Deadline
    );
    optional_section(
        ui,
        "admission",
        "admission & limits",
        "Shedding, adaptive LIFO, rate limits and hard limits",
        &mut admission,
        AdmissionSpec::default,
        |ui, a| {
            egui::Grid::new("admission-grid")
                .num_columns(2)
                .show(ui, |ui| {
                    row(ui, "shed after wait", |ui| {
                        optional_f64(
                            ui,
                            &mut a.max_queue_wait_ms,
                            500.0,
                            ms,
                            "Drop requests that waited longer than this",
                        );
                    });
                    row(ui, "controlled delay", |ui| {
                        optional_inline(
                            ui,
                            &mut a.codel,
                            || CodelSpec {
                                target_ms: 5.0,
                                interval_ms: 100.0,
                            },
                            "Facebook's CoDel: in a queue that has not emptied for the interval, shed after the target",
                            |ui, c| {
                                ui.add(
                                    egui::DragValue::new(&mut c.target_ms)
                                        .range(0.001..=c.interval_ms)
                                        .suffix(" ms"),
                                )
                                .on_hover_text("Longest wait in a standing queue");
                                ui.add(
                                    egui::DragValue::new(&mut c.interval_ms)
                                        .range(0.001..=3_600_000.0)
                                        .prefix("within ")
                                        .suffix(" ms"),
                                )
                                .on_hover_text("A queue not empty for this long is standing; also the longest wait otherwise");
                                c.target_ms = c.target_ms.min(c.interval_ms);
                            },
                        );
                    });
                    if !ordered_queue {
                        row(ui, "LIFO above", |ui| {
                            optional_u32(
                                ui,
                                &mut a.lifo_above,
                                10,
                                "Serve newest first while more than this many wait",
                            );
                        });
                    }
                    row(ui, "rate limit", |ui| {
                        optional_inline(
                            ui,
                            &mut a.rate_limit,
                            || RateLimitSpec {
                                rate_per_s: 100.0,
                                burst: 10.0,
                            },
                            "Answer 429 above this rate per instance (token bucket)",
                            |ui, r| {
                                ui.add(
                                    egui::DragValue::new(&mut r.rate_per_s)
                                        .range(0.001..=1e8)
                                        .suffix(" /s"),
                                );
                                ui.add(
                                    egui::DragValue::new(&mut r.burst)
                                        .range(1.0..=1e6)
                                        .prefix("burst "),
                                );
                            },
                        );
                    });
                    row(ui, "Retry-After", |ui| {
                        optional_f64(
                            ui,
                            &mut a.retry_after_ms,
                            1000.0,
                            ms,
                            "Its 429 and overloaded answers tell callers to wait this long before a retry",
                        );
                    });
                    row(ui, "don't retry", |ui| {
                        ui.checkbox(&mut a.dont_retry, "say so")
                            .on_hover_text("Its answers for overload (queue full, shed, 429, overloaded) tell callers not to retry; their failures say the same upward");
                    });
                    row(ui, "max in flight", |ui| {
                        optional_u32(
                            ui,
                            &mut a.max_in_flight,
                            1000,
                            "Connections / file descriptors: beyond it requests fail fast",
                        );
                    });
                    row(ui, "latch above", |ui| {
                        optional_u32(
                            ui,
                            &mut a.latch_above,
                            5000,
                            "An instance holding more crashes and stays down until reset",
                        );
                    });
                });
        },
    );
    s.admission = admission.unwrap_or_default();
    optional_section(
        ui,
        "health",
        "health checks",
        "The load balancer probes instances and ejects failing ones",
        &mut s.health_check,
        default_health,
        |ui, h| {
            egui::Grid::new("health-grid")
                .num_columns(2)
                .show(ui, |ui| {
                    row(ui, "every", |ui| {
                        ui.add(secs(&mut h.interval_s));
                    });
                    row(ui, "timeout", |ui| {
                        ui.add(ms(&mut h.timeout_ms));
                    });
                    row(ui, "eject after", |ui| {
                        ui.add(
                            egui::DragValue::new(&mut h.unhealthy_after)
                                .range(1..=100)
                                .suffix(" fails"),
                        );
                    });
                    row(ui, "back after", |ui| {
                        ui.add(
                            egui::DragValue::new(&mut h.healthy_after)
                                .range(1..=100)
                                .suffix(" passes"),
                        );
                    });
                    row(ui, "restart after", |ui| {
                        optional_inline(
                            ui,
                            &mut h.restart_after,
                            || 3,
                            "Restart a running instance that fails this many probes in a row (a liveness probe)",
                            |ui, n| {
                                ui.add(egui::DragValue::new(n).range(1..=100).suffix(" fails"));
                            },
                        );
                    });
                    row(ui, "probe", |ui| {
                        ui.checkbox(&mut h.through_queue, "waits in the queue")
                            .on_hover_text("Probes see queueing delay like requests do");
                    });
                    row(ui, "probe work", |ui| {
                        ui.add(ms(&mut h.probe_ms));
                    });
                });
        },
    );
    egui::Grid::new("panic-grid").num_columns(2).show(ui, |ui| {
        row(ui, "panic threshold", |ui| {
            optional_inline(
                ui,
                &mut s.panic_threshold,
                || 0.5,
                "Route to every instance when fewer than this share pass health checks",
                |ui, t| {
                    pct(
                        ui,
                        t,
                        "Healthy share below which the balancer ignores health",
                    );
                },
            );
        });
    });
    optional_section(
        ui,
        "outlier",
        "outlier ejection",
        "Eject instances whose error share is high",
        &mut s.outlier_ejection,
        default_outlier,
        |ui, o| {
            egui::Grid::new("outlier-grid")
                .num_columns(2)
                .show(ui, |ui| {
                    row(ui, "errors in a row", |ui| {
                        optional_u32(
                            ui,
                            &mut o.consecutive_errors,
                            5,
                            "Consecutive errors that eject (Envoy's consecutive 5xx)",
                        );
                    });
                    row(ui, "ejects at", |ui| {
                        pct(ui, &mut o.error_ratio, "Error share");
                    });
                    row(ui, "window", |ui| {
                        ui.add(secs(&mut o.window_s));
                    });
                    row(ui, "min requests", |ui| {
                        ui.add(egui::DragValue::new(&mut o.min_requests).range(1..=100_000));
                    });
                    row(ui, "ejected for", |ui| {
                        ui.add(secs(&mut o.eject_s));
                    });
                    row(ui, "at most", |ui| {
                        pct(ui, &mut o.max_ejected, "Share of instances ejected at once");
                    });
                });
        },
    );
    let instances = s.instances;
    optional_section(
        ui,
        "autoscale",
        "autoscaler",
        "Target tracking of the instance count",
        &mut s.autoscale,
        || {
            let mut a: AutoscaleSpec = parsed_default("(metric: Cpu, target: 0.6)");
            a.min = a.min.min(instances);
            a.max = a.max.max(instances);
            a
        },
        |ui, a| {
            egui::Grid::new("autoscale-grid")
                .num_columns(2)
                .show(ui, |ui| {
                    row(ui, "metric", |ui| {
                        egui::ComboBox::from_id_salt("scale-metric")
                            .selected_text(format!("{:?}", a.metric))
                            .show_ui(ui, |ui| {
                                for m in [
                                    ScaleMetric::Cpu,
                                    ScaleMetric::Workers,
                                    ScaleMetric::QueueLength,
                                    ScaleMetric::RequestsPerInstance,
                                ] {
                                    ui.selectable_value(&mut a.metric, m, format!("{m:?}"));
                                }
                            });
                    });
                    row(ui, "target", |ui| {
                        ui.add(
                            egui::DragValue::new(&mut a.target)
                                .range(0.001..=1e6)
                                .speed(0.01),
                        );
                    });
                    row(ui, "period", |ui| {
                        ui.add(secs(&mut a.period_s));
                    });
                    row(ui, "cooldown", |ui| {
                        ui.add(secs(&mut a.cooldown_s));
                    });
                    row(ui, "provisioning", |ui| {
                        ui.add(secs(&mut a.provision_delay_s))
                            .on_hover_text("Time to bring up an instance");
                        ui.add(
                            egui::DragValue::new(&mut a.max_provisioning)
                                .range(1..=10_000)
                                .prefix("≤ ")
                                .suffix(" at once"),
                        );
                    });
                    row(ui, "instances", |ui| {
                        ui.add(
                            egui::DragValue::new(&mut a.min)
                                .range(1..=10_000)
                                .prefix("min "),
                        );
                        ui.add(
                            egui::DragValue::new(&mut a.max)
                                .range(1..=10_000)
                                .prefix("max "),
                        );
                        a.max = a.max.max(a.min);
                    });
                    row(ui, "warm-up", |ui| {
                        ui.add(secs(&mut a.warmup_s));
                        ui.add(
                            egui::DragValue::new(&mut a.warmup_factor)
                                .range(1.0..=100.0)
                                .speed(0.05)
                                .prefix("×"),
                        );
                    });
                    row(ui, "scale in", |ui| {
                        ui.checkbox(&mut a.scale_in, "may remove instances");
                    });
                });
        },
    );
    let default_backing = others.first().cloned().unwrap_or_default();
    optional_section(
        ui,
        "cache",
        "cache",
        "A look-aside cache: hits served here, misses fill from the backing store",
        &mut s.cache,
        || CacheSpec {
            backing: CallSpec {
                to: default_backing,
                timeout_ms: Some(1000.0),
                ..Default::default()
            },
            ..parsed_default("(backing: (to: \"x\"))")
        },
        |ui, c| {
            egui::Grid::new("cache-grid").num_columns(2).show(ui, |ui| {
                row(ui, "backing store", |ui| {
                    service_combo(ui, "cache-backing", &mut c.backing.to, &others);
                });
                row(ui, "hit ratio (warm)", |ui| {
                    pct(
                        ui,
                        &mut c.max_hit_ratio,
                        "Share of requests for cacheable keys",
                    );
                });
                row(ui, "keys", |ui| {
                    ui.add(egui::DragValue::new(&mut c.keys).range(1..=10_000_000));
                });
                row(ui, "TTL", |ui| {
                    optional_f64(
                        ui,
                        &mut c.ttl_s,
                        300.0,
                        secs,
                        "Entries expire this long after their fill",
                    );
                });
                row(ui, "coalescing", |ui| {
                    ui.checkbox(&mut c.coalescing, "single-flight")
                        .on_hover_text("Concurrent misses of one key share one fill");
                });
                row(ui, "warmth at start", |ui| {
                    pct(
                        ui,
                        &mut c.initial_warmth,
                        "Share of keys cached when the run starts",
                    );
                });
                row(ui, "fill fan-out", |ui| {
                    ui.add(egui::DragValue::new(&mut c.backing.count).range(1..=1000))
                        .on_hover_text("Backing calls per miss");
                });
                row(ui, "fill latency", |ui| {
                    ui.add(ms(&mut c.backing.latency_ms));
                });
                row(ui, "fill timeout", |ui| {
                    optional_f64(
                        ui,
                        &mut c.backing.timeout_ms,
                        1000.0,
                        ms,
                        "A fill needs a reply within this",
                    );
                });
            });
        },
    );
    let mut lifecycle = (!s.lifecycle.is_empty()).then(|| s.lifecycle.clone());
    let first_other = others.first().cloned().unwrap_or_default();
    optional_section(
        ui,
        "lifecycle",
        "lifecycle",
        "Startup calls that gate readiness, periodic calls, restarts and warm-up",
        &mut lifecycle,
        || LifecycleSpec {
            restart_s: 10.0,
            ..Default::default()
        },
        |ui, l| lifecycle_ui(ui, l, &others, &first_other),
    );
    s.lifecycle = lifecycle.unwrap_or_default();
    let default_consumer = others.first().cloned().unwrap_or_default();
    optional_section(
        ui,
        "work-queue",
        "work queue",
        "Calls to this node are acknowledged at once; a consumer is fed from the queue",
        &mut s.work_queue,
        || WorkQueueSpec {
            consumer: default_consumer,
            ..parsed_default("(consumer: \"x\")")
        },
        |ui, q| {
            egui::Grid::new("queue-grid").num_columns(2).show(ui, |ui| {
                row(ui, "consumer", |ui| {
                    service_combo(ui, "queue-consumer", &mut q.consumer, &others);
                });
                row(ui, "concurrency", |ui| {
                    ui.add(egui::DragValue::new(&mut q.concurrency).range(1..=1_000_000))
                        .on_hover_text("Deliveries in flight at once");
                });
                row(ui, "rate", |ui| {
                    optional_f64(
                        ui,
                        &mut q.rate_per_s,
                        100.0,
                        |v| egui::DragValue::new(v).range(0.001..=1e8).suffix(" /s"),
                        "Most deliveries started per second",
                    );
                });
                row(ui, "item TTL", |ui| {
                    optional_f64(ui, &mut q.ttl_s, 60.0, secs, "Older items are dropped");
                });
                row(ui, "deliveries", |ui| {
                    ui.add(egui::DragValue::new(&mut q.max_deliveries).range(1..=1000))
                        .on_hover_text("Tries before an item is dead-lettered");
                    ui.checkbox(&mut q.dead_letter, "dead-letter");
                });
                row(ui, "timeout", |ui| {
                    optional_f64(
                        ui,
                        &mut q.timeout_ms,
                        1000.0,
                        ms,
                        "A delivery not acknowledged in time is re-queued",
                    );
                });
                row(ui, "latency", |ui| {
                    ui.add(ms(&mut q.latency_ms));
                });
            });
        },
    );
    optional_section(
        ui,
        "occ",
        "optimistic concurrency",
        "Writes fail with a conflict if another write committed since their read",
        &mut s.occ,
        || OccSpec {
            keys: 1,
            zipf_s: 0.0,
        },
        |ui, o| {
            egui::Grid::new("occ-grid").num_columns(2).show(ui, |ui| {
                row(ui, "keys", |ui| {
                    ui.add(egui::DragValue::new(&mut o.keys).range(1..=10_000_000));
                });
                row(ui, "hot keys", |ui| {
                    ui.add(
                        egui::DragValue::new(&mut o.zipf_s)
                            .range(0.0..=3.0)
                            .speed(0.01)
                            .prefix("Zipf s "),
                    )
                    .on_hover_text("0: uniform; about 1: a few keys take most writes");
                });
            });
        },
    );
    let default_replica = others.first().cloned().unwrap_or_default();
    optional_section(
        ui,
        "failover",
        "failover",
        "Promote a replica when this service is down",
        &mut s.failover,
        || FailoverSpec {
            replica: default_replica,
            ..parsed_default("(replica: \"x\")")
        },
        |ui, f| {
            egui::Grid::new("failover-grid")
                .num_columns(2)
                .show(ui, |ui| {
                    row(ui, "replica", |ui| {
                        service_combo(ui, "failover-replica", &mut f.replica, &others);
                    });
                    row(ui, "detection", |ui| {
                        ui.add(secs(&mut f.detection_s))
                            .on_hover_text("How long the primary must look down");
                    });
                    row(ui, "hold-down", |ui| {
                        ui.add(secs(&mut f.hold_down_s)).on_hover_text(
                            "Further wait before promoting (rides out short partitions)",
                        );
                    });
                    row(ui, "replica latency", |ui| {
                        ui.add(ms(&mut f.replica_latency_ms))
                            .on_hover_text("Callers' one-way latency to the replica");
                    });
                });
        },
    );
}

fn lifecycle_ui(ui: &mut egui::Ui, l: &mut LifecycleSpec, others: &[String], first_other: &str) {
    egui::Grid::new("lifecycle-grid")
        .num_columns(2)
        .show(ui, |ui| {
            row(ui, "restart takes", |ui| {
                ui.add(secs(&mut l.restart_s));
            });
            row(ui, "warm-up", |ui| {
                ui.add(secs(&mut l.warmup_s));
                ui.add(
                    egui::DragValue::new(&mut l.warmup_factor)
                        .range(1.0..=100.0)
                        .speed(0.05)
                        .prefix("×"),
                )
                .on_hover_text("Service-time multiplier while warming up");
            });
        });
    ui.label(RichText::new("startup calls (in order; all must succeed)").small());
    let mut remove = None;
    for (j, c) in l.startup_calls.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            service_combo(ui, ("startup", j), &mut c.to, others);
            lifecycle_call_row(ui, c);
            if ui.small_button("✕").on_hover_text("Remove").clicked() {
                remove = Some(j);
            }
        });
    }
    if let Some(j) = remove {
        l.startup_calls.remove(j);
    }
    if !first_other.is_empty() && ui.small_button("+ startup call").clicked() {
        l.startup_calls.push(CallSpec {
            to: first_other.to_owned(),
            timeout_ms: Some(1000.0),
            ..Default::default()
        });
    }
    ui.label(RichText::new("periodic calls").small());
    let mut remove = None;
    for (j, p) in l.periodic.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            service_combo(ui, ("periodic", j), &mut p.call.to, others);
            ui.add(
                egui::DragValue::new(&mut p.every_s)
                    .range(0.001..=1e6)
                    .prefix("every ")
                    .suffix(" s"),
            );
            lifecycle_call_row(ui, &mut p.call);
            ui.checkbox(&mut p.disqualify_on_failure, "gates")
                .on_hover_text(
                    "A failed call takes the instance out of rotation until one succeeds",
                );
            if p.disqualify_on_failure {
                ui.add(
                    egui::DragValue::new(&mut p.disqualify_after)
                        .range(1..=100)
                        .prefix("after ")
                        .suffix(" fails"),
                )
                .on_hover_text("Failed attempts in a row that take the instance out");
            } else {
                p.disqualify_after = 1;
            }
            if ui.small_button("✕").on_hover_text("Remove").clicked() {
                remove = Some(j);
            }
        });
    }
    if let Some(j) = remove {
        l.periodic.remove(j);
    }
    if !first_other.is_empty() && ui.small_button("+ periodic call").clicked() {
        l.periodic.push(PeriodicCallSpec {
            every_s: 30.0,
            call: CallSpec {
                to: first_other.to_owned(),
                timeout_ms: Some(1000.0),
                ..Default::default()
            },
            disqualify_on_failure: false,
            disqualify_after: 1,
        });
    }
}

fn lifecycle_call_row(ui: &mut egui::Ui, c: &mut CallSpec) {
    let mut timeout = c.timeout_ms.unwrap_or(0.0);
    if ui
        .add(
            egui::DragValue::new(&mut timeout)
                .range(0.0..=3_600_000.0)
                .prefix("timeout ")
                .suffix(" ms"),
        )
        .on_hover_text("0: none")
        .changed()
    {
        c.timeout_ms = (timeout > 0.0).then_some(timeout);
    }
    ui.add(
        egui::DragValue::new(&mut c.retry.max_attempts)
            .range(1..=cascade_sim::scenario::MAX_ATTEMPTS)
            .prefix("tries "),
    );
}

/// Alerts watching `node` (all alerts when `None`) and the operator steps that react to them
/// or run at a time. Returns true when something changed.
pub fn alerts_ui(ui: &mut egui::Ui, scenario: &mut Scenario, node: Option<&str>) -> bool {
    let before = (scenario.alerts.clone(), scenario.operator.clone());
    let services: Vec<String> = scenario.services.iter().map(|s| s.name.clone()).collect();
    let mut remove = None;
    for (i, alert) in scenario.alerts.iter_mut().enumerate() {
        if node.is_some_and(|n| n != alert.node) {
            continue;
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(&alert.name).strong());
            egui::ComboBox::from_id_salt(("alert-metric", i))
                .selected_text(format!("{:?}", alert.metric))
                .show_ui(ui, |ui| {
                    for m in [
                        AlertMetric::ErrorRatio,
                        AlertMetric::SuccessRatio,
                        AlertMetric::P99Ms,
                        AlertMetric::QueueLength,
                        AlertMetric::Utilization,
                    ] {
                        ui.selectable_value(&mut alert.metric, m, format!("{m:?}"));
                    }
                });
            match (alert.above.as_mut(), alert.below.as_mut()) {
                (Some(x), _) => {
                    ui.label(">");
                    ui.add(egui::DragValue::new(x).speed(0.01));
                }
                (None, Some(x)) => {
                    ui.label("<");
                    ui.add(egui::DragValue::new(x).speed(0.01));
                }
                (None, None) => {}
            }
            ui.add(
                egui::DragValue::new(&mut alert.for_s)
                    .range(0.0..=1e5)
                    .prefix("for ")
                    .suffix(" s"),
            )
            .on_hover_text("Detection delay");
            let mut via = alert.via.clone().unwrap_or_default();
            egui::ComboBox::from_id_salt(("alert-via", i))
                .selected_text(if via.is_empty() {
                    "direct".to_owned()
                } else {
                    format!("via {via}")
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut via, String::new(), "direct");
                    for n in &services {
                        ui.selectable_value(&mut via, n.clone(), n);
                    }
                });
            alert.via = (!via.is_empty()).then_some(via);
            if ui
                .small_button("✕")
                .on_hover_text("Remove this alert and the steps it triggers")
                .clicked()
            {
                remove = Some(i);
            }
        });
    }
    if let Some(i) = remove {
        let name = scenario.alerts.remove(i).name;
        scenario
            .operator
            .retain(|s| s.when != OperatorTrigger::Alert(name.clone()));
    }
    if let Some(n) = node
        && ui
            .small_button("+ alert on this node")
            .on_hover_text("Fires when the error ratio stays above 5% for 60 s")
            .clicked()
    {
        let mut k = scenario.alerts.len() + 1;
        while scenario
            .alerts
            .iter()
            .any(|a| a.name == format!("alert-{k}"))
        {
            k += 1;
        }
        scenario.alerts.push(AlertSpec {
            name: format!("alert-{k}"),
            node: n.to_owned(),
            metric: AlertMetric::ErrorRatio,
            above: Some(0.05),
            below: None,
            for_s: 60.0,
            via: None,
        });
    }
    let relevant: Vec<usize> = scenario
        .operator
        .iter()
        .enumerate()
        .filter(|(_, s)| node.is_none_or(|n| step_concerns(s, n, &scenario.alerts)))
        .map(|(i, _)| i)
        .collect();
    if !relevant.is_empty() {
        ui.label(RichText::new("operator").small());
    }
    for i in relevant {
        let step = &mut scenario.operator[i];
        ui.horizontal_wrapped(|ui| {
            match &step.when {
                OperatorTrigger::At(t) => ui.label(format!("at {t} s")),
                OperatorTrigger::Alert(a) => ui.label(format!("on {a}")),
            };
            ui.add(
                egui::DragValue::new(&mut step.after_s)
                    .range(0.0..=1e5)
                    .prefix("+")
                    .suffix(" s"),
            )
            .on_hover_text("Reaction delay");
            ui.label(step.action.describe());
        });
    }
    (scenario.alerts.clone(), scenario.operator.clone()) != before
}

fn step_concerns(step: &OperatorStep, node: &str, alerts: &[AlertSpec]) -> bool {
    let by_alert = matches!(&step.when, OperatorTrigger::Alert(a) if alerts.iter().any(|x| &x.name == a && x.node == node));
    let target = match &step.action {
        OperatorAction::ShedLoad { source, .. }
        | OperatorAction::LimitSource { source, .. }
        | OperatorAction::RemoveSourceLimit { source } => Some(source.as_str()),
        OperatorAction::DisableRetries { service } => service.as_deref(),
        OperatorAction::RestartInstances { service, .. }
        | OperatorAction::RateLimit { service, .. }
        | OperatorAction::RemoveRateLimit { service }
        | OperatorAction::SetInstances { service, .. }
        | OperatorAction::SetWorkers { service, .. }
        | OperatorAction::ResetLatched { service }
        | OperatorAction::PausePeriodic { service }
        | OperatorAction::ResumePeriodic { service }
        | OperatorAction::PauseDeliveries { service }
        | OperatorAction::ResumeDeliveries { service } => Some(service.as_str()),
        OperatorAction::ClearFaults | OperatorAction::FreezeChanges => None,
    };
    by_alert || target == Some(node)
}
