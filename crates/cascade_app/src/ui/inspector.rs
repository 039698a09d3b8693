//! The inspector: every parameter of the selected node or edge, editable while the run goes
//! on (each change is one undoable edit, applied at the next tick), and its current metrics
//! with sparklines.
//!
//! [`inspector_ui`] is pure: it draws a copy of the selected spec and, if the user changed
//! anything, returns the whole edited scenario.

use bevy_egui::egui::{self, RichText};
use cascade_sim::scenario::{
    Backoff, CallSpec, Criticality, Failure, Failures, FanOut, Jitter, LoadBalancer, NodeKind,
    QueueDiscipline, RateProfile, RetryBudgetSpec, RetryPolicy, Scenario, ServiceSpec, ServiceTime,
    SourceSpec, ZoneRouting,
};
use egui_plot::{Line, Plot, PlotPoints};

use super::mechanisms::optional_inline;
use crate::session::{AppAction, Selection};

/// Current figures of the selection, for the metrics section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SelectionMetrics {
    /// `(label, value)` pairs of the last interval.
    pub figures: Vec<(String, String)>,
    /// `(label, recent values)` for sparklines; NaN where an interval has nothing to show.
    pub sparklines: Vec<(String, Vec<f64>)>,
}

/// Draws the inspector for `selection` over `scenario`; returns an edit if anything changed.
pub fn inspector_ui(
    ui: &mut egui::Ui,
    scenario: &Scenario,
    selection: &Selection,
    metrics: &SelectionMetrics,
    building: bool,
) -> Vec<AppAction> {
    let mut out = Vec::new();
    if let Some(name) = &selection.node {
        if let Some(spec) = scenario.service(name) {
            ui.heading(name);
            let mut edited = spec.clone();
            service_ui(ui, &mut edited, scenario);
            if edited != *spec {
                let mut s = scenario.clone();
                if let Some(slot) = s.services.iter_mut().find(|x| x.name == *name) {
                    *slot = edited;
                }
                out.push(AppAction::Edit {
                    scenario: Box::new(s),
                    label: format!("edit {name}"),
                });
            }
        } else if let Some(spec) = scenario.source(name) {
            ui.heading(name);
            let mut edited = spec.clone();
            if source_ui(ui, &mut edited, scenario) {
                out.push(AppAction::ReplayRateDialog(name.clone()));
            }
            if edited != *spec {
                let mut s = scenario.clone();
                if let Some(slot) = s.sources.iter_mut().find(|x| x.name == *name) {
                    *slot = edited;
                }
                out.push(AppAction::Edit {
                    scenario: Box::new(s),
                    label: format!("edit {name}"),
                });
            }
        }
        let mut with_alerts = out
            .iter()
            .rev()
            .find_map(|a| match a {
                AppAction::Edit { scenario, .. } => Some((**scenario).clone()),
                _ => None,
            })
            .unwrap_or_else(|| scenario.clone());
        egui::CollapsingHeader::new("Alerts")
            .id_salt("node-alerts")
            .show(ui, |ui| {
                if super::mechanisms::alerts_ui(ui, &mut with_alerts, Some(name)) {
                    out.push(AppAction::Edit {
                        scenario: Box::new(with_alerts.clone()),
                        label: format!("alerts on {name}"),
                    });
                }
            });
        if building {
            ui.separator();
            ui.horizontal(|ui| {
                if ui
                    .button("Duplicate")
                    .on_hover_text("Add a copy of this node next to it (Ctrl+D)")
                    .clicked()
                    && let Some(s) = crate::ui::build::duplicate_node(scenario, name)
                {
                    out.push(AppAction::Edit {
                        scenario: Box::new(s),
                        label: format!("duplicate {name}"),
                    });
                }
                if ui
                    .button("Delete")
                    .on_hover_text("Remove this node and every call to it (Delete)")
                    .clicked()
                    && let Some(s) = crate::ui::build::delete_node(scenario, name)
                {
                    out.push(AppAction::Edit {
                        scenario: Box::new(s),
                        label: format!("delete {name}"),
                    });
                    out.push(AppAction::Select(Selection::default()));
                }
            });
        }
    } else if let Some((from, to)) = &selection.edge {
        ui.heading(format!("{from} → {to}"));
        let mut s = scenario.clone();
        let mut changed = false;
        if let Some(svc) = s.services.iter_mut().find(|x| x.name == *from) {
            for (i, call) in svc
                .calls
                .iter_mut()
                .enumerate()
                .filter(|(_, c)| c.to == *to)
            {
                let before = call.clone();
                egui::CollapsingHeader::new(format!("call {}", i + 1))
                    .default_open(true)
                    .show(ui, |ui| call_ui(ui, call, i));
                changed |= *call != before;
            }
            if building
                && ui
                    .button("Delete call")
                    .on_hover_text("Remove this call")
                    .clicked()
            {
                svc.calls.retain(|c| c.to != *to);
                changed = true;
                out.push(AppAction::Select(Selection::default()));
            }
        } else if let Some(src) = s.sources.iter_mut().find(|x| x.name == *from) {
            let before = src.clone();
            source_call_ui(ui, src);
            changed |= *src != before;
        }
        if changed {
            out.push(AppAction::Edit {
                scenario: Box::new(s),
                label: format!("edit {from} → {to}"),
            });
        }
    } else {
        ui.heading("Inspector");
        ui.label(RichText::new("Select a node or an edge to see and change its parameters. Changes apply at the next tick while the run goes on.").weak());
        if !scenario.alerts.is_empty() || !scenario.operator.is_empty() {
            ui.separator();
            ui.label(RichText::new("Alerts and operator").strong());
            let mut s = scenario.clone();
            if super::mechanisms::alerts_ui(ui, &mut s, None) {
                out.push(AppAction::Edit {
                    scenario: Box::new(s),
                    label: "edit alerts".to_owned(),
                });
            }
        }
    }
    if !metrics.figures.is_empty() {
        ui.separator();
        metrics_ui(ui, metrics);
    }
    out
}

fn metrics_ui(ui: &mut egui::Ui, m: &SelectionMetrics) {
    ui.label(RichText::new("Last interval").strong());
    egui::Grid::new("figures")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for (k, v) in &m.figures {
                ui.label(k);
                ui.label(RichText::new(v).monospace());
                ui.end_row();
            }
        });
    for (label, values) in &m.sparklines {
        ui.label(RichText::new(label).small().weak());
        // A value that is not finite marks an interval with nothing to show: left out.
        let points: PlotPoints = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| [i as f64, *v])
            .collect();
        Plot::new(format!("spark-{label}"))
            .height(34.0)
            .show_axes(false)
            .show_grid(false)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .show_x(false)
            .include_y(0.0)
            .show(ui, |plot| plot.line(Line::new(label.clone(), points)));
    }
}

fn service_ui(ui: &mut egui::Ui, s: &mut ServiceSpec, scenario: &Scenario) {
    egui::Grid::new("service").num_columns(2).show(ui, |ui| {
        ui.label("kind");
        egui::ComboBox::from_id_salt("kind").selected_text(s.kind.label()).show_ui(ui, |ui| {
            for k in NodeKind::ALL {
                ui.selectable_value(&mut s.kind, k, k.label());
            }
        });
        ui.end_row();
        ui.label("instances");
        ui.add(egui::DragValue::new(&mut s.instances).range(1..=10_000)).on_hover_text("Copies behind the load balancer");
        ui.end_row();
        ui.label("workers");
        ui.add(egui::DragValue::new(&mut s.workers).range(1..=1_000_000)).on_hover_text("Requests one instance works on at once (threads, connections)");
        ui.end_row();
        ui.label("queue");
        ui.horizontal(|ui| {
            let mut bounded = s.queue.capacity.is_some();
            ui.checkbox(&mut bounded, "bounded").on_hover_text("A full queue rejects new requests");
            match (bounded, s.queue.capacity) {
                (true, None) => s.queue.capacity = Some(100),
                (false, Some(_)) => s.queue.capacity = None,
                _ => {}
            }
            if let Some(c) = s.queue.capacity.as_mut() {
                ui.add(egui::DragValue::new(c).range(0..=10_000_000)).on_hover_text("Waiting requests per instance");
            }
        });
        ui.end_row();
        ui.label("order");
        egui::ComboBox::from_id_salt("discipline").selected_text(format!("{:?}", s.queue.discipline)).show_ui(ui, |ui| {
            ui.selectable_value(&mut s.queue.discipline, QueueDiscipline::Fifo, "Fifo").on_hover_text("Oldest first");
            ui.selectable_value(&mut s.queue.discipline, QueueDiscipline::Lifo, "Lifo").on_hover_text("Newest first");
            if s.admission.lifo_above.is_none() {
                ui.selectable_value(&mut s.queue.discipline, QueueDiscipline::Priority, "Priority")
                    .on_hover_text("Most critical first (the sources' criticality); when full, the least critical waiting request makes room for a more critical one");
                ui.selectable_value(&mut s.queue.discipline, QueueDiscipline::Deadline, "Deadline")
                    .on_hover_text("Earliest deadline first: the request whose caller gives up soonest (its call's timeout, or a shorter propagated deadline)");
            }
        });
        ui.end_row();
        ui.label("service time");
        service_time_ui(ui, &mut s.service_time);
        ui.end_row();
        ui.label("load balancer");
        if s.sharding.is_some() {
            // Key-based routing replaces the policy (Resilience → sharded by key).
            ui.weak("by key").on_hover_text("Requests go to the instances that own their key (sharded by key, under Resilience)");
        } else {
            egui::ComboBox::from_id_salt("lb").selected_text(format!("{:?}", s.lb)).show_ui(ui, |ui| {
                for lb in [LoadBalancer::RoundRobin, LoadBalancer::Random, LoadBalancer::LeastOutstanding, LoadBalancer::PowerOfTwoChoices] {
                    ui.selectable_value(&mut s.lb, lb, format!("{lb:?}"));
                }
            });
        }
        ui.end_row();
        ui.label("zones");
        zones_ui(ui, &s.name, &mut s.zones);
        ui.end_row();
        if !s.zones.is_empty() && s.sharding.is_none() {
            ui.label("zone routing");
            zone_routing_ui(ui, &mut s.zone_routing);
            ui.end_row();
        }
        ui.label("deadlines");
        ui.checkbox(&mut s.deadline_propagation, "propagate")
            .on_hover_text("Drop requests whose deadline passed before a worker took them, and pass deadlines downstream");
        ui.end_row();
        ui.label("cancels");
        ui.checkbox(&mut s.cancellation, "honour")
            .on_hover_text("When a caller gives up, its cancel arrives one hop later: a queued request is dropped, one waiting on a call stops and frees its worker (and cancels that call)");
        ui.end_row();
        if !s.calls.is_empty() {
            ui.label("calls made");
            fan_out_ui(ui, &mut s.fan_out);
            ui.end_row();
        }
    });
    for (i, call) in s.calls.iter_mut().enumerate() {
        egui::CollapsingHeader::new(format!("call {} → {}", i + 1, call.to))
            .id_salt(("call", i))
            .show(ui, |ui| call_ui(ui, call, i));
    }
    ui.add_space(4.0);
    ui.label(RichText::new("Resilience").strong());
    super::mechanisms::service_mechanisms_ui(ui, s, scenario);
}

/// The zones a service's instances are spread over, typed as a comma-separated list. The
/// text being typed is kept apart from the list (a trailing comma would otherwise vanish as
/// the list is written back) and taken up from the list again when the field is not in use.
fn zones_ui(ui: &mut egui::Ui, service: &str, zones: &mut Vec<String>) {
    let id = egui::Id::new(("zones", service));
    let joined = zones.join(", ");
    let mut text = ui
        .data_mut(|d| d.get_temp::<String>(id))
        .filter(|t| parse_zones(t) == *zones)
        .unwrap_or(joined);
    let response = ui
        .add(egui::TextEdit::singleline(&mut text).hint_text("none").desired_width(140.0))
        .on_hover_text("Availability zones its instances are spread over, in turn (comma-separated): instance i is in the i-th; zone faults act on them");
    if response.changed() {
        *zones = parse_zones(&text);
    }
    ui.data_mut(|d| d.insert_temp(id, text));
}

/// Whether callers stay in their zone, and below which share of the zone's instances they
/// spill over to every zone.
fn zone_routing_ui(ui: &mut egui::Ui, routing: &mut ZoneRouting) {
    ui.horizontal(|ui| {
        let mut same = matches!(routing, ZoneRouting::SameZone { .. });
        if ui
            .checkbox(&mut same, "same zone")
            .on_hover_text("Send each caller's requests to the instances in the caller's zone (callers in no zone use every zone)")
            .changed()
        {
            *routing = if same { ZoneRouting::SameZone { spill_below: 0.0 } } else { ZoneRouting::AllZones };
        }
        if let ZoneRouting::SameZone { spill_below } = routing {
            ui.add(egui::DragValue::new(spill_below).range(0.0..=1.0).speed(0.01).prefix("spill below "))
                .on_hover_text("Spill over to every zone when fewer than this share of the zone's instances can be routed to (0: only when none can)");
        }
    });
}

/// Zone names from comma-separated `text`, blanks left out.
fn parse_zones(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sequential or parallel calls; a quorum's size beside it.
fn fan_out_ui(ui: &mut egui::Ui, fan_out: &mut FanOut) {
    ui.horizontal(|ui| {
        let name = match fan_out {
            FanOut::Sequential => "one by one",
            FanOut::Parallel => "in parallel",
            FanOut::Quorum(_) => "quorum of",
        };
        egui::ComboBox::from_id_salt("fan_out").selected_text(name).width(90.0).show_ui(ui, |ui| {
            ui.selectable_value(fan_out, FanOut::Sequential, "one by one")
                .on_hover_text("Each call (with its retries) ends before the next starts");
            ui.selectable_value(fan_out, FanOut::Parallel, "in parallel")
                .on_hover_text("All calls at once; the request waits for every one and fails as soon as one fails");
            if !matches!(fan_out, FanOut::Quorum(_)) {
                ui.selectable_value(fan_out, FanOut::Quorum(1), "quorum of")
                    .on_hover_text("All calls at once; the request goes on when this many have succeeded");
            }
        });
        if let FanOut::Quorum(k) = fan_out {
            ui.add(egui::DragValue::new(k).range(1..=10_000)).on_hover_text("Branches that must succeed");
        }
    });
}

fn service_time_ui(ui: &mut egui::Ui, st: &mut ServiceTime) {
    ui.horizontal(|ui| {
        let name = match st {
            ServiceTime::Exponential { .. } => "exponential",
            ServiceTime::Deterministic { .. } => "constant",
            ServiceTime::LogNormal { .. } => "log-normal",
            ServiceTime::Uniform { .. } => "uniform",
            ServiceTime::Normal { .. } => "normal",
        };
        let mean = st.mean_ms();
        egui::ComboBox::from_id_salt("dist")
            .selected_text(name)
            .width(90.0)
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(matches!(st, ServiceTime::Exponential { .. }), "exponential")
                    .clicked()
                {
                    *st = ServiceTime::Exponential { mean_ms: mean };
                }
                if ui
                    .selectable_label(matches!(st, ServiceTime::Deterministic { .. }), "constant")
                    .clicked()
                {
                    *st = ServiceTime::Deterministic { ms: mean };
                }
                if ui
                    .selectable_label(matches!(st, ServiceTime::LogNormal { .. }), "log-normal")
                    .clicked()
                {
                    *st = ServiceTime::LogNormal {
                        mean_ms: mean,
                        sigma: 1.0,
                    };
                }
                if ui
                    .selectable_label(matches!(st, ServiceTime::Uniform { .. }), "uniform")
                    .clicked()
                {
                    *st = ServiceTime::Uniform {
                        min_ms: mean * 0.5,
                        max_ms: mean * 1.5,
                    };
                }
                if ui
                    .selectable_label(matches!(st, ServiceTime::Normal { .. }), "normal")
                    .on_hover_text("|N(mean, sd)|")
                    .clicked()
                {
                    *st = ServiceTime::Normal {
                        mean_ms: mean,
                        sd_ms: mean * 0.2,
                    };
                }
            });
        match st {
            ServiceTime::Exponential { mean_ms } => {
                ui.add(ms(mean_ms)).on_hover_text("Mean");
            }
            ServiceTime::Deterministic { ms: v } => {
                ui.add(ms(v));
            }
            ServiceTime::LogNormal { mean_ms, sigma } => {
                ui.add(ms(mean_ms)).on_hover_text("Mean");
                ui.add(
                    egui::DragValue::new(sigma)
                        .range(0.0..=5.0)
                        .speed(0.01)
                        .prefix("σ "),
                )
                .on_hover_text("Spread (σ of the log)");
            }
            ServiceTime::Uniform { min_ms, max_ms } => {
                ui.add(ms(min_ms)).on_hover_text("Minimum");
                ui.add(ms(max_ms)).on_hover_text("Maximum");
                if *max_ms < *min_ms {
                    *max_ms = *min_ms;
                }
            }
            ServiceTime::Normal { mean_ms, sd_ms } => {
                ui.add(ms(mean_ms)).on_hover_text("Mean");
                ui.add(
                    egui::DragValue::new(sd_ms)
                        .range(0.0..=1e6)
                        .speed(0.1)
                        .prefix("σ ")
                        .suffix(" ms"),
                )
                .on_hover_text("Standard deviation");
            }
        }
    });
}

fn ms(v: &mut f64) -> egui::DragValue<'_> {
    egui::DragValue::new(v)
        .range(0.001..=1e7)
        .speed(0.1)
        .suffix(" ms")
}

fn rps(v: &mut f64) -> egui::DragValue<'_> {
    egui::DragValue::new(v)
        .range(0.001..=1e8)
        .speed(1.0)
        .suffix(" /s")
}

fn secs(v: &mut f64) -> egui::DragValue<'_> {
    egui::DragValue::new(v)
        .range(0.0..=1e7)
        .speed(1.0)
        .suffix(" s")
}

fn call_ui(ui: &mut egui::Ui, c: &mut CallSpec, i: usize) {
    egui::Grid::new(("call-grid", i))
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("probability");
            ui.add(egui::Slider::new(&mut c.probability, 0.0..=1.0))
                .on_hover_text("Share of requests that make this call");
            ui.end_row();
            ui.label("count");
            ui.add(egui::DragValue::new(&mut c.count).range(1..=1000))
                .on_hover_text("Times the call is made, one after another");
            ui.end_row();
            ui.label("latency");
            ui.add(
                egui::DragValue::new(&mut c.latency_ms)
                    .range(0.001..=10_000.0)
                    .speed(0.1)
                    .suffix(" ms"),
            )
            .on_hover_text("One-way network latency (at least one tick)");
            ui.end_row();
            timeout_row(ui, &mut c.timeout_ms);
        });
    retry_ui(ui, &mut c.retry, i);
    super::mechanisms::call_mechanisms_ui(ui, c, &format!("call-{i}"));
}

fn timeout_row(ui: &mut egui::Ui, timeout: &mut Option<f64>) {
    ui.label("timeout");
    optional_inline(
        ui,
        timeout,
        || 1000.0,
        "Without a timeout the caller waits forever",
        |ui, t| {
            ui.add(
                egui::DragValue::new(t)
                    .range(0.001..=3_600_000.0)
                    .speed(1.0)
                    .suffix(" ms"),
            )
            .on_hover_text("Per attempt");
        },
    );
    ui.end_row();
}

fn retry_ui(ui: &mut egui::Ui, r: &mut RetryPolicy, i: usize) {
    egui::Grid::new(("retry", i)).num_columns(2).show(ui, |ui| {
        ui.label("attempts");
        ui.add(egui::DragValue::new(&mut r.max_attempts).range(1..=cascade_sim::scenario::MAX_ATTEMPTS))
            .on_hover_text("Tries in total: 3 = one try and two retries");
        ui.end_row();
        ui.label("backoff");
        ui.horizontal(|ui| {
            let label = match r.backoff {
                Backoff::None => "none",
                Backoff::Constant { .. } => "constant",
                Backoff::Exponential { .. } => "exponential",
                Backoff::Random { .. } => "random",
            };
            egui::ComboBox::from_id_salt(("backoff", i))
                .selected_text(label)
                .width(90.0)
                .show_ui(ui, |ui| {
                    if ui
                        .selectable_label(r.backoff == Backoff::None, "none")
                        .clicked()
                    {
                        r.backoff = Backoff::None;
                        r.jitter = Jitter::None;
                    }
                    if ui
                        .selectable_label(matches!(r.backoff, Backoff::Constant { .. }), "constant")
                        .clicked()
                    {
                        r.backoff = Backoff::Constant { delay_ms: 100.0 };
                        if r.jitter == Jitter::Decorrelated {
                            r.jitter = Jitter::Full;
                        }
                    }
                    if ui
                        .selectable_label(
                            matches!(r.backoff, Backoff::Exponential { .. }),
                            "exponential",
                        )
                        .clicked()
                    {
                        r.backoff = Backoff::Exponential {
                            base_ms: 20.0,
                            cap_ms: 2000.0,
                        };
                    }
                    if ui
                        .selectable_label(matches!(r.backoff, Backoff::Random { .. }), "random")
                        .on_hover_text("Each delay drawn from the exponential distribution with this mean: callers who come back at random")
                        .clicked()
                    {
                        r.backoff = Backoff::Random { mean_ms: 1000.0 };
                        r.jitter = Jitter::None;
                    }
                });
            match &mut r.backoff {
                Backoff::None => {}
                Backoff::Constant { delay_ms } => {
                    ui.add(
                        egui::DragValue::new(delay_ms)
                            .range(0.0..=3_600_000.0)
                            .suffix(" ms"),
                    );
                }
                Backoff::Exponential { base_ms, cap_ms } => {
                    ui.add(
                        egui::DragValue::new(base_ms)
                            .range(0.001..=3_600_000.0)
                            .suffix(" ms"),
                    )
                    .on_hover_text("First delay");
                    ui.add(
                        egui::DragValue::new(cap_ms)
                            .range(0.001..=3_600_000.0)
                            .suffix(" ms"),
                    )
                    .on_hover_text("Largest delay");
                    if *cap_ms < *base_ms {
                        *cap_ms = *base_ms;
                    }
                }
                Backoff::Random { mean_ms } => {
                    ui.add(
                        egui::DragValue::new(mean_ms)
                            .range(0.001..=3_600_000.0)
                            .suffix(" ms"),
                    )
                    .on_hover_text("Mean delay");
                }
            }
        });
        ui.end_row();
        ui.label("jitter");
        let jitter_applies = !matches!(r.backoff, Backoff::None | Backoff::Random { .. });
        ui.add_enabled_ui(jitter_applies, |ui| {
            egui::ComboBox::from_id_salt(("jitter", i))
                .selected_text(format!("{:?}", r.jitter))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut r.jitter, Jitter::None, "None");
                    ui.selectable_value(&mut r.jitter, Jitter::Full, "Full")
                        .on_hover_text("uniform(0, delay)");
                    ui.selectable_value(&mut r.jitter, Jitter::Equal, "Equal")
                        .on_hover_text("delay/2 + uniform(0, delay/2)");
                    if matches!(r.backoff, Backoff::Exponential { .. }) {
                        ui.selectable_value(&mut r.jitter, Jitter::Decorrelated, "Decorrelated")
                            .on_hover_text("min(cap, uniform(base, 3 × previous))");
                    }
                });
        });
        ui.end_row();
        ui.label("budget");
        optional_inline(
            ui,
            &mut r.budget,
            || RetryBudgetSpec {
                ratio: 0.1,
                max_tokens: 10.0,
            },
            "Limit retries to a share of first attempts (token bucket)",
            |ui, b| {
                let mut pct = b.ratio * 100.0;
                if ui
                    .add(
                        egui::DragValue::new(&mut pct)
                            .range(0.0..=1000.0)
                            .suffix(" %"),
                    )
                    .on_hover_text("Retries per 100 first attempts")
                    .changed()
                {
                    b.ratio = pct / 100.0;
                }
            },
        );
        ui.end_row();
        ui.label("retry on");
        retry_on_ui(ui, &mut r.retry_on, i);
        ui.end_row();
        ui.label("persistence");
        let mut pct = r.persistence * 100.0;
        if ui
            .add(egui::DragValue::new(&mut pct).range(0.0..=100.0).suffix(" %"))
            .on_hover_text("Chance of trying again after each failed attempt; the others give up")
            .changed()
        {
            r.persistence = pct / 100.0;
        }
        ui.end_row();
    });
}

/// Which failures a retry policy retries: every one (the default), or those ticked.
fn retry_on_ui(ui: &mut egui::Ui, retry_on: &mut Failures, i: usize) {
    let summary = if retry_on.is_empty() {
        "every failure".to_owned()
    } else {
        retry_on
            .iter()
            .map(|f| format!("{f:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    egui::ComboBox::from_id_salt(("retry_on", i))
        .selected_text(summary)
        .width(140.0)
        .show_ui(ui, |ui| {
            if ui
                .selectable_label(retry_on.is_empty(), "every failure")
                .clicked()
            {
                *retry_on = Failures::default();
            }
            for f in Failure::ALL {
                let mut on = retry_on.contains(f);
                if ui.checkbox(&mut on, format!("{f:?}")).changed() {
                    retry_on.set(f, on);
                }
            }
        })
        .response
        .on_hover_text("Failures worth another try; others end the call at once");
}

/// A source's rate profile; returns true when the user asks to replay a CSV trace.
fn rate_ui(ui: &mut egui::Ui, rate: &mut RateProfile) -> bool {
    let mut replay = false;
    let base = cascade_sim::engine::rate_at(rate, 0).max(1.0);
    ui.horizontal(|ui| {
        let name = match rate {
            RateProfile::Constant(_) => "constant",
            RateProfile::Step { .. } => "step",
            RateProfile::Ramp { .. } => "ramp",
            RateProfile::Spike { .. } => "spike",
            RateProfile::Burst { .. } => "burst",
            RateProfile::Diurnal { .. } => "cycle",
            RateProfile::Points(_) => "recorded",
            RateProfile::Closed { .. } => "users",
        };
        egui::ComboBox::from_id_salt("rate")
            .selected_text(name)
            .width(80.0)
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(matches!(rate, RateProfile::Constant(_)), "constant")
                    .clicked()
                {
                    *rate = RateProfile::Constant(base);
                }
                if ui
                    .selectable_label(matches!(rate, RateProfile::Step { .. }), "step")
                    .clicked()
                {
                    *rate = RateProfile::Step {
                        from_per_s: base,
                        to_per_s: base * 2.0,
                        at_s: 60.0,
                    };
                }
                if ui
                    .selectable_label(matches!(rate, RateProfile::Ramp { .. }), "ramp")
                    .clicked()
                {
                    *rate = RateProfile::Ramp {
                        from_per_s: base,
                        to_per_s: base * 2.0,
                        start_s: 30.0,
                        end_s: 90.0,
                    };
                }
                if ui
                    .selectable_label(matches!(rate, RateProfile::Spike { .. }), "spike")
                    .clicked()
                {
                    *rate = RateProfile::Spike {
                        base_per_s: base,
                        peak_per_s: base * 3.0,
                        start_s: 30.0,
                        duration_s: 10.0,
                    };
                }
                if ui
                    .selectable_label(matches!(rate, RateProfile::Burst { .. }), "burst")
                    .on_hover_text("A batch of requests at one instant")
                    .clicked()
                {
                    *rate = RateProfile::Burst {
                        count: 100,
                        at_s: 1.0,
                    };
                }
                if ui
                    .selectable_label(matches!(rate, RateProfile::Diurnal { .. }), "cycle")
                    .on_hover_text("A daily (or any periodic) swing around a mean")
                    .clicked()
                {
                    *rate = RateProfile::Diurnal {
                        mean_per_s: base,
                        amplitude_per_s: base / 2.0,
                        period_s: 120.0,
                        peak_at_s: 60.0,
                    };
                }
                if ui
                    .selectable_label(matches!(rate, RateProfile::Points(_)), "recorded")
                    .on_hover_text("Piecewise linear through recorded points; replay a CSV trace")
                    .clicked()
                    && !matches!(rate, RateProfile::Points(_))
                {
                    *rate =
                        RateProfile::Points(vec![(0.0, base), (60.0, base * 2.0), (120.0, base)]);
                }
                if ui
                    .selectable_label(matches!(rate, RateProfile::Closed { .. }), "users")
                    .on_hover_text("A fixed population: each user waits for its answer, then thinks before the next request, so the rate is what the system lets through")
                    .clicked()
                    && !matches!(rate, RateProfile::Closed { .. })
                {
                    // As many users as send `base` a second while each thinks a second.
                    *rate = RateProfile::Closed {
                        users: base.round().max(1.0) as u32,
                        think_ms: 1000.0,
                        think_after_failure_ms: None,
                    };
                }
            });
    });
    ui.horizontal_wrapped(|ui| match rate {
        RateProfile::Constant(r) => {
            ui.add(rps(r));
        }
        RateProfile::Step {
            from_per_s,
            to_per_s,
            at_s,
        } => {
            ui.add(rps(from_per_s));
            ui.label("→");
            ui.add(rps(to_per_s));
            ui.label("at");
            ui.add(secs(at_s));
        }
        RateProfile::Ramp {
            from_per_s,
            to_per_s,
            start_s,
            end_s,
        } => {
            ui.add(rps(from_per_s));
            ui.label("→");
            ui.add(rps(to_per_s));
            ui.label("from");
            ui.add(secs(start_s));
            ui.label("to");
            ui.add(secs(end_s));
            if *end_s <= *start_s {
                *end_s = *start_s + 1.0;
            }
        }
        RateProfile::Spike {
            base_per_s,
            peak_per_s,
            start_s,
            duration_s,
        } => {
            ui.add(rps(base_per_s));
            ui.label("peak");
            ui.add(rps(peak_per_s));
            ui.label("at");
            ui.add(secs(start_s));
            ui.label("for");
            ui.add(
                egui::DragValue::new(duration_s)
                    .range(0.001..=1e7)
                    .suffix(" s"),
            );
        }
        RateProfile::Burst { count, at_s } => {
            ui.add(
                egui::DragValue::new(count)
                    .range(1..=10_000_000)
                    .suffix(" requests"),
            );
            ui.label("at");
            ui.add(secs(at_s));
        }
        RateProfile::Diurnal {
            mean_per_s,
            amplitude_per_s,
            period_s,
            peak_at_s,
        } => {
            ui.add(rps(mean_per_s));
            ui.label("±");
            ui.add(
                egui::DragValue::new(amplitude_per_s)
                    .range(0.0..=*mean_per_s)
                    .suffix(" /s"),
            );
            ui.label("every");
            ui.add(
                egui::DragValue::new(period_s)
                    .range(0.001..=1e7)
                    .suffix(" s"),
            );
            ui.label("peak at");
            ui.add(secs(peak_at_s));
            *amplitude_per_s = amplitude_per_s.min(*mean_per_s);
        }
        RateProfile::Closed {
            users,
            think_ms,
            think_after_failure_ms,
        } => {
            ui.add(
                egui::DragValue::new(users)
                    .range(1..=1_000_000)
                    .suffix(" users"),
            );
            ui.label("thinking");
            ui.add(
                egui::DragValue::new(think_ms)
                    .range(0.0..=1e9)
                    .suffix(" ms"),
            )
            .on_hover_text("Mean (exponential) time between a user's answer and its next request");
            let mut apart = think_after_failure_ms.is_some();
            if ui
                .checkbox(&mut apart, "after a failure")
                .on_hover_text("Think for another mean time after a request that failed: users who give up for a while, or press reload at once")
                .changed()
            {
                *think_after_failure_ms = apart.then_some(*think_ms);
            }
            if let Some(after) = think_after_failure_ms {
                ui.add(egui::DragValue::new(after).range(0.0..=1e9).suffix(" ms"));
            }
        }
        RateProfile::Points(points) => {
            ui.label(points_summary(points));
            replay = ui
                .button("Replay CSV…")
                .on_hover_text("Replace the points by a recorded trace: a CSV file with a header, then time_s,rate_per_s rows")
                .clicked();
        }
    });
    replay
}

/// `3 points over 120 s, 50–200 /s`.
fn points_summary(points: &[(f64, f64)]) -> String {
    let span_s = points.last().map_or(0.0, |p| p.0) - points.first().map_or(0.0, |p| p.0);
    let low = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let high = points.iter().map(|p| p.1).fold(0.0, f64::max);
    format!(
        "{} points over {} s, {}–{} /s",
        points.len(),
        fmt_number(span_s),
        fmt_number(low.min(high)),
        fmt_number(high)
    )
}

/// A number as people write it: at most one decimal, none when whole.
fn fmt_number(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A source's settings; returns true when the user asks to replay a CSV trace as its rate.
fn source_ui(ui: &mut egui::Ui, s: &mut SourceSpec, scenario: &Scenario) -> bool {
    let mut replay = false;
    egui::Grid::new("source").num_columns(2).show(ui, |ui| {
        ui.label("sends to");
        egui::ComboBox::from_id_salt("target")
            .selected_text(s.target.clone())
            .show_ui(ui, |ui| {
                for svc in &scenario.services {
                    ui.selectable_value(&mut s.target, svc.name.clone(), &svc.name);
                }
            });
        ui.end_row();
        ui.label("rate");
        ui.vertical(|ui| replay = rate_ui(ui, &mut s.rate));
        ui.end_row();
        ui.label("criticality");
        egui::ComboBox::from_id_salt("criticality")
            .selected_text(format!("{:?}", s.criticality))
            .show_ui(ui, |ui| {
                for c in Criticality::ALL {
                    ui.selectable_value(&mut s.criticality, c, format!("{c:?}"));
                }
            })
            .response
            .on_hover_text("How much its requests matter under overload: priority queues anywhere downstream serve the most critical first and drop the least critical first");
        ui.end_row();
    });
    source_call_ui(ui, s);
    replay
}

fn source_call_ui(ui: &mut egui::Ui, s: &mut SourceSpec) {
    egui::Grid::new("source-call")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("latency");
            ui.add(
                egui::DragValue::new(&mut s.latency_ms)
                    .range(0.001..=10_000.0)
                    .speed(0.1)
                    .suffix(" ms"),
            );
            ui.end_row();
            timeout_row(ui, &mut s.timeout_ms);
        });
    retry_ui(ui, &mut s.retry, 999);
    super::mechanisms::source_mechanisms_ui(ui, s);
}

#[cfg(test)]
mod tests {
    #[test]
    fn zones_are_read_from_a_comma_separated_list() {
        assert_eq!(super::parse_zones("a, b,c"), ["a", "b", "c"]);
        assert_eq!(super::parse_zones("us-east-1a, "), ["us-east-1a"]);
        assert!(super::parse_zones(" , ").is_empty());
    }
}
