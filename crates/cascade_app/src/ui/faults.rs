//! The fault palette and the right-click fault menu: the same fault kinds as scenario files,
//! aimed at the selected node or edge, for a duration or until cleared; and the list of
//! faults in effect, each with a clear button.

use bevy_egui::egui::{self, RichText};
use cascade_sim::scenario::{Direction, FaultKind, InstanceSelector, KillMode, PushedChange};

use crate::session::{AppAction, Selection};

/// What a fault can be aimed at.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultTarget {
    /// A service with this many instances and workers per instance.
    Service {
        /// Name.
        name: String,
        /// Instances.
        instances: u32,
        /// Workers per instance.
        workers: u32,
        /// It is a cache (flush and TTL storm apply).
        cache: bool,
        /// Something calls it (a DNS failure applies).
        called: bool,
        /// The zones its instances are in (zone faults apply).
        zones: Vec<String>,
    },
    /// A traffic source.
    Source {
        /// Name.
        name: String,
    },
    /// A call edge.
    Edge {
        /// Caller.
        from: String,
        /// Callee.
        to: String,
    },
}

/// A fault in effect, for the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveFault {
    /// Engine id.
    pub id: u32,
    /// "slow ×4 on db".
    pub label: String,
    /// Ends at (s), or until cleared.
    pub until_s: Option<f64>,
    /// From the scenario file (else live).
    pub scripted: bool,
}

/// What the palette shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPaletteView {
    /// The selected target, if any.
    pub target: Option<FaultTarget>,
    /// Faults in effect.
    pub active: Vec<ActiveFault>,
    /// The current selection (to keep it while selecting a fault).
    pub selection: Selection,
}

/// Parameters the palette remembers between uses.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultParams {
    /// Slowdown / load factor.
    pub factor: f64,
    /// Added latency, ms.
    pub added_ms: f64,
    /// Error probability.
    pub probability: f64,
    /// Workers left by a capacity cut.
    pub workers_left: u32,
    /// CPU cores left by a capacity cut.
    pub cores_left: u32,
    /// Instances left by a capacity cut.
    pub instances_left: u32,
    /// Kills blackhole instead of refusing.
    pub blackhole: bool,
    /// Only the first instance is hit (else all).
    pub first_only: bool,
    /// Duration, s.
    pub duration_s: f64,
    /// Lasts until cleared.
    pub until_cleared: bool,
    /// Share of instances a config push reaches.
    pub push_share: f64,
    /// Seconds a config push takes to reach them all.
    pub propagation_s: f64,
    /// Throttle rate per instance, requests/s.
    pub throttle_per_s: f64,
    /// Spread of a TTL storm's expiries, s.
    pub within_s: f64,
    /// Share of requests that are queries of death.
    pub poison_share: f64,
    /// How long callers cache a resolved address, s (DNS failures).
    pub dns_ttl_s: f64,
}

impl Default for FaultParams {
    fn default() -> Self {
        FaultParams {
            factor: 4.0,
            added_ms: 200.0,
            probability: 0.5,
            workers_left: 1,
            cores_left: 1,
            instances_left: 1,
            blackhole: false,
            first_only: false,
            duration_s: 10.0,
            until_cleared: false,
            push_share: 0.5,
            propagation_s: 10.0,
            throttle_per_s: 50.0,
            within_s: 5.0,
            poison_share: 0.001,
            dns_ttl_s: 30.0,
        }
    }
}

impl FaultParams {
    fn duration(&self) -> Option<f64> {
        (!self.until_cleared).then_some(self.duration_s.max(0.1))
    }

    fn selector(&self) -> InstanceSelector {
        if self.first_only {
            InstanceSelector::First(1)
        } else {
            InstanceSelector::All
        }
    }
}

/// Every fault kind that applies to `target`, built from the parameters, with a label and a
/// tooltip.
pub fn faults_for(target: &FaultTarget, p: &FaultParams) -> Vec<(String, &'static str, FaultKind)> {
    match target {
        FaultTarget::Service {
            name,
            instances,
            workers,
            cache,
            called,
            zones,
        } => {
            let s = || name.clone();
            let mut v = vec![
                (
                    if p.blackhole {
                        "Kill (blackhole)".to_owned()
                    } else {
                        "Kill".to_owned()
                    },
                    "Crash instances: queued and in-progress work is lost; new requests are refused (or vanish, blackhole)",
                    FaultKind::Kill {
                        service: s(),
                        instances: p.selector(),
                        mode: if p.blackhole {
                            KillMode::Blackhole
                        } else {
                            KillMode::Refuse
                        },
                    },
                ),
                (
                    format!("Slow ×{}", p.factor),
                    "Own work takes this many times longer",
                    FaultKind::Slow {
                        service: s(),
                        instances: p.selector(),
                        factor: p.factor,
                    },
                ),
                (
                    format!("Latency +{} ms", p.added_ms),
                    "A fixed delay added to each request's own work (a slow disk)",
                    FaultKind::Latency {
                        service: s(),
                        instances: p.selector(),
                        added_ms: p.added_ms,
                    },
                ),
                (
                    format!("Errors {:.0}%", p.probability * 100.0),
                    "Requests fail with an error after their own work",
                    FaultKind::Errors {
                        service: s(),
                        instances: p.selector(),
                        probability: p.probability,
                    },
                ),
                (
                    format!(
                        "Cut to {} worker{}",
                        p.workers_left.min(*workers),
                        if p.workers_left == 1 { "" } else { "s" }
                    ),
                    "Fewer workers per instance",
                    FaultKind::CapacityCut {
                        service: s(),
                        workers: Some(p.workers_left.min(*workers)),
                        cores: None,
                        instances: None,
                    },
                ),
                (
                    format!(
                        "Cut to {} core{}",
                        p.cores_left,
                        if p.cores_left == 1 { "" } else { "s" }
                    ),
                    "Fewer CPU cores per instance (a noisy neighbour, a CPU quota): own work waits for a core; workers waiting on calls need none",
                    FaultKind::CapacityCut {
                        service: s(),
                        workers: None,
                        cores: Some(p.cores_left),
                        instances: None,
                    },
                ),
            ];
            if *instances > 1 {
                v.push((
                    format!(
                        "Cut to {} instance{}",
                        p.instances_left.min(*instances),
                        if p.instances_left == 1 { "" } else { "s" }
                    ),
                    "Fewer instances in the load balancer (the others drain)",
                    FaultKind::CapacityCut {
                        service: s(),
                        workers: None,
                        cores: None,
                        instances: Some(p.instances_left.min(*instances)),
                    },
                ));
            }
            v.push(("Restart".to_owned(), "Instances restart: down for the restart time, then startup calls and warm-up (instant)", FaultKind::Restart { service: s(), instances: p.selector(), spread_s: 0.0 }));
            v.push((
                "Isolate".to_owned(),
                "Instances are cut off from the network: requests to them vanish, what they send is lost; they keep running",
                FaultKind::Isolate {
                    service: s(),
                    instances: p.selector(),
                },
            ));
            v.push(partition_off(name));
            v.push((
                "Latch".to_owned(),
                "Instances fail into a state only a reset clears (instant)",
                FaultKind::LatchedFailure {
                    service: s(),
                    instances: p.selector(),
                },
            ));
            v.push((
                format!("Bad config {:.0}%", p.push_share * 100.0),
                "A config push makes requests fail on a share of instances, spreading over the propagation time; rolled back when it ends",
                FaultKind::ConfigPush { service: s(), share: p.push_share, propagation_s: p.propagation_s, change: PushedChange::Errors(p.probability.max(0.01)) },
            ));
            v.push((
                format!("Query of death {}%", p.poison_share * 100.0),
                "This share of all requests crashes the instance that starts on it (it restarts); retries carry each to the next instance",
                FaultKind::QueryOfDeath {
                    service: s(),
                    share: p.poison_share,
                    source: None,
                },
            ));
            v.push((
                format!("Throttle {}/s", p.throttle_per_s),
                "The service answers 429 above this rate per instance",
                FaultKind::Throttle {
                    service: s(),
                    rate_per_s: p.throttle_per_s,
                },
            ));
            for zone in zones {
                v.push((
                    format!("Zone {zone} down"),
                    "Every instance of every service in this zone goes down (power, cooling): they refuse connections, or with blackhole swallow requests",
                    FaultKind::ZoneOutage {
                        zone: zone.clone(),
                        mode: if p.blackhole { KillMode::Blackhole } else { KillMode::Refuse },
                    },
                ));
                if zones.len() > 1 {
                    v.push((
                        format!("Cut off zone {zone}"),
                        "The zone loses its links to the other zones: requests and replies between its instances and other zones' are lost; load balancers and health checks do not notice",
                        FaultKind::ZonePartition {
                            zones: vec![zone.clone()],
                        },
                    ));
                }
            }
            if *called {
                v.push((
                    format!("DNS failure (TTL {} s)", p.dns_ttl_s),
                    "Its name stops resolving: each caller goes on with its cached address until the TTL runs it out (spread over the TTL), then its calls fail without being sent",
                    FaultKind::DnsFailure {
                        service: s(),
                        ttl_s: p.dns_ttl_s,
                    },
                ));
            }
            if *cache {
                v.push((
                    "Flush cache".to_owned(),
                    "Every cached entry is dropped (instant)",
                    FaultKind::CacheFlush {
                        service: s(),
                        share: 1.0,
                    },
                ));
                v.push((
                    format!("TTL storm {} s", p.within_s),
                    "Every entry expires within this window (instant)",
                    FaultKind::TtlStorm {
                        service: s(),
                        within_s: p.within_s,
                    },
                ));
            }
            v
        }
        FaultTarget::Source { name } => vec![
            (
                format!("Load spike ×{}", p.factor),
                "The source sends this many times its rate",
                FaultKind::LoadSpike {
                    source: name.clone(),
                    factor: p.factor,
                },
            ),
            partition_off(name),
        ],
        FaultTarget::Edge { from, to } => vec![
            (
                "Partition".to_owned(),
                "Requests and replies on this link are lost",
                FaultKind::Partition {
                    from: from.clone(),
                    to: to.clone(),
                },
            ),
            (
                format!("Link latency +{} ms", p.added_ms),
                "Extra one-way network latency on this link",
                FaultKind::LinkLatency {
                    from: from.clone(),
                    to: to.clone(),
                    added_ms: p.added_ms,
                },
            ),
            (
                format!("Packet loss {:.0}%", p.probability * 100.0),
                "Each request and reply on this link is lost with this probability",
                FaultKind::PacketLoss {
                    from: from.clone(),
                    to: to.clone(),
                    probability: p.probability,
                },
            ),
            (
                "Cut requests".to_owned(),
                "One-way partition: requests are lost, replies pass",
                FaultKind::OneWayPartition {
                    from: from.clone(),
                    to: to.clone(),
                    direction: Direction::Requests,
                },
            ),
            (
                "Cut replies".to_owned(),
                "One-way partition: the callee works but the caller never hears back",
                FaultKind::OneWayPartition {
                    from: from.clone(),
                    to: to.clone(),
                    direction: Direction::Replies,
                },
            ),
        ],
    }
}

/// A group partition of `name` alone: every call between it and any other node is lost.
fn partition_off(name: &str) -> (String, &'static str, FaultKind) {
    (
        "Partition off".to_owned(),
        "A network split around this node: every request and reply between it and any other node is lost, both ways",
        FaultKind::GroupPartition {
            group: vec![name.to_owned()],
            others: Vec::new(),
        },
    )
}

fn target_label(t: &FaultTarget) -> String {
    match t {
        FaultTarget::Service { name, .. } | FaultTarget::Source { name } => name.clone(),
        FaultTarget::Edge { from, to } => format!("{from} → {to}"),
    }
}

/// The palette; returns the user's actions.
pub fn fault_palette_ui(
    ui: &mut egui::Ui,
    view: &FaultPaletteView,
    params: &mut FaultParams,
) -> Vec<AppAction> {
    let mut out = Vec::new();
    ui.heading("Break something");
    match &view.target {
        None => {
            ui.label(
                RichText::new(
                    "Select a node or an edge on the canvas (or right-click it) to aim a fault.",
                )
                .weak(),
            );
        }
        Some(target) => {
            ui.label(format!("Target: {}", target_label(target)));
            parameters_ui(ui, target, params);
            ui.horizontal(|ui| {
                ui.checkbox(&mut params.until_cleared, "until cleared")
                    .on_hover_text("Lasts until you clear it");
                ui.add_enabled(
                    !params.until_cleared,
                    egui::DragValue::new(&mut params.duration_s)
                        .range(0.1..=86_400.0)
                        .speed(1.0)
                        .suffix(" s"),
                )
                .on_hover_text("How long the fault lasts, in simulated seconds");
            });
            ui.horizontal_wrapped(|ui| {
                for (label, tip, fault) in faults_for(target, params) {
                    if ui.button(label).on_hover_text(tip).clicked() {
                        let duration_s = if fault.is_instantaneous() {
                            None
                        } else {
                            params.duration()
                        };
                        out.push(AppAction::InjectFault { fault, duration_s });
                    }
                }
            });
        }
    }
    ui.separator();
    ui.horizontal(|ui| {
        ui.label(RichText::new("Faults in effect").strong());
        if !view.active.is_empty()
            && ui
                .small_button("clear all")
                .on_hover_text("End every fault now")
                .clicked()
        {
            out.push(AppAction::ClearAllFaults);
        }
    });
    if view.active.is_empty() {
        ui.label(RichText::new("none").weak());
    }
    for f in &view.active {
        ui.horizontal(|ui| {
            let until = f
                .until_s
                .map_or_else(|| "until cleared".to_owned(), |t| format!("until {t:.0} s"));
            let text = format!(
                "{}{} — {until}",
                f.label,
                if f.scripted { " (scripted)" } else { "" }
            );
            let selected = view.selection.fault == Some(f.id);
            if ui
                .selectable_label(selected, text)
                .on_hover_text("Select (Delete clears it)")
                .clicked()
            {
                out.push(AppAction::Select(Selection {
                    fault: if selected { None } else { Some(f.id) },
                    ..view.selection.clone()
                }));
            }
            if ui
                .small_button("clear")
                .on_hover_text("End this fault now")
                .clicked()
            {
                out.push(AppAction::ClearFault(f.id));
            }
        });
    }
    out
}

fn parameters_ui(ui: &mut egui::Ui, target: &FaultTarget, p: &mut FaultParams) {
    egui::Grid::new("fault-params").num_columns(2).show(ui, |ui| {
        match target {
            FaultTarget::Service { instances, workers, .. } => {
                ui.label("factor");
                ui.add(egui::DragValue::new(&mut p.factor).range(1.0..=100.0).speed(0.1).prefix("×")).on_hover_text("Slowdown factor");
                ui.end_row();
                ui.label("added");
                ui.add(egui::DragValue::new(&mut p.added_ms).range(0.0..=60_000.0).speed(5.0).suffix(" ms")).on_hover_text("Added latency");
                ui.end_row();
                ui.label("errors");
                ui.add(egui::Slider::new(&mut p.probability, 0.0..=1.0)).on_hover_text("Probability that a request fails");
                ui.end_row();
                ui.label("workers left");
                ui.add(egui::DragValue::new(&mut p.workers_left).range(0..=*workers)).on_hover_text("Workers per instance after a cut");
                ui.end_row();
                ui.label("cores left");
                ui.add(egui::DragValue::new(&mut p.cores_left).range(0..=(*workers).max(1))).on_hover_text("CPU cores per instance after a cut");
                ui.end_row();
                if *instances > 1 {
                    ui.label("instances left");
                    ui.add(egui::DragValue::new(&mut p.instances_left).range(0..=*instances)).on_hover_text("Instances in the load balancer after a cut");
                    ui.end_row();
                    ui.label("hit");
                    ui.checkbox(&mut p.first_only, "first instance only").on_hover_text("Kill, slow, latency and errors hit one instance instead of all");
                    ui.end_row();
                }
                ui.label("kill");
                ui.checkbox(&mut p.blackhole, "blackhole").on_hover_text("Killed instances swallow requests (callers wait for their timeouts) instead of refusing");
                ui.end_row();
                ui.label("config push");
                ui.horizontal(|ui| {
                    let mut share = p.push_share * 100.0;
                    if ui.add(egui::DragValue::new(&mut share).range(1.0..=100.0).suffix(" %")).on_hover_text("Share of instances reached").changed() {
                        p.push_share = share / 100.0;
                    }
                    ui.add(egui::DragValue::new(&mut p.propagation_s).range(0.0..=3600.0).prefix("over ").suffix(" s")).on_hover_text("Propagation time");
                });
                ui.end_row();
                ui.label("throttle");
                ui.add(egui::DragValue::new(&mut p.throttle_per_s).range(0.1..=1e7).suffix(" /s")).on_hover_text("Rate per instance above which it answers 429");
                ui.end_row();
                ui.label("TTL storm");
                ui.add(egui::DragValue::new(&mut p.within_s).range(0.0..=3600.0).suffix(" s")).on_hover_text("Window in which every entry expires");
                ui.end_row();
                ui.label("DNS TTL");
                ui.add(egui::DragValue::new(&mut p.dns_ttl_s).range(0.0..=86_400.0).suffix(" s")).on_hover_text("How long callers cache the address before a DNS failure reaches them");
                ui.end_row();
                ui.label("query of death");
                let mut percent = p.poison_share * 100.0;
                if ui
                    .add(egui::DragValue::new(&mut percent).range(0.0001..=100.0).speed(0.01).suffix(" %"))
                    .on_hover_text("Share of requests that crash the instance working on them")
                    .changed()
                {
                    p.poison_share = percent / 100.0;
                }
                ui.end_row();
            }
            FaultTarget::Source { .. } => {
                ui.label("factor");
                ui.add(egui::DragValue::new(&mut p.factor).range(1.0..=100.0).speed(0.1).prefix("×")).on_hover_text("Load multiplier");
                ui.end_row();
            }
            FaultTarget::Edge { .. } => {
                ui.label("added");
                ui.add(egui::DragValue::new(&mut p.added_ms).range(0.0..=60_000.0).speed(5.0).suffix(" ms")).on_hover_text("Added one-way latency");
                ui.end_row();
                ui.label("loss");
                ui.add(egui::Slider::new(&mut p.probability, 0.0..=1.0)).on_hover_text("Packet loss probability");
                ui.end_row();
            }
        }
    });
}

/// The right-click menu: quick faults with preset durations.
pub fn fault_menu_ui(
    ui: &mut egui::Ui,
    target: &FaultTarget,
    params: &FaultParams,
) -> Vec<AppAction> {
    let mut out = Vec::new();
    ui.label(RichText::new(target_label(target)).strong());
    ui.separator();
    for (label, tip, fault) in faults_for(target, params) {
        if fault.is_instantaneous() {
            if ui.button(label).on_hover_text(tip).clicked() {
                out.push(AppAction::InjectFault {
                    fault,
                    duration_s: None,
                });
                ui.close();
            }
            continue;
        }
        ui.menu_button(label, |ui| {
            for (text, duration) in [
                ("for 10 s", Some(10.0)),
                ("for 30 s", Some(30.0)),
                ("for 60 s", Some(60.0)),
                ("until cleared", None),
            ] {
                if ui.button(text).clicked() {
                    out.push(AppAction::InjectFault {
                        fault: fault.clone(),
                        duration_s: duration,
                    });
                    ui.close();
                }
            }
        })
        .response
        .on_hover_text(tip);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_sim::scenario::{FaultSpec, Scenario, validate};

    /// Every fault the palette offers, on every node and edge of a shipped scenario, is one
    /// the engine accepts (the same check a live injection passes).
    #[test]
    fn the_palette_offers_only_faults_the_engine_accepts() {
        let offered = palette_faults_accepted("region-split.ron");
        assert!(offered > 40, "{offered} faults offered");
        // With zones: each service's zones go down or are cut off.
        let zoned = palette_faults_accepted("zone-outage.ron");
        assert!(zoned > 30, "{zoned} faults offered");
    }

    /// Checks every fault the palette offers on `scenarios/mechanisms/NAME`; how many.
    fn palette_faults_accepted(name: &str) -> usize {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios/mechanisms")
            .join(name);
        let s = cascade_sim::scenario::load(&path).unwrap();
        let mut targets: Vec<FaultTarget> = s
            .services
            .iter()
            .map(|svc| FaultTarget::Service {
                name: svc.name.clone(),
                instances: svc.instances,
                workers: svc.workers,
                cache: svc.cache.is_some(),
                called: s.is_called(&svc.name),
                zones: svc.zones.clone(),
            })
            .collect();
        for src in &s.sources {
            targets.push(FaultTarget::Source {
                name: src.name.clone(),
            });
            targets.push(FaultTarget::Edge {
                from: src.name.clone(),
                to: src.target.clone(),
            });
        }
        let mut offered = 0;
        for t in &targets {
            for (label, _, fault) in faults_for(t, &FaultParams::default()) {
                // As the palette sends it: instantaneous faults without a duration.
                let duration_s = (!fault.is_instantaneous()).then_some(1.0);
                let probe = Scenario {
                    faults: vec![FaultSpec {
                        at_s: 1.0,
                        duration_s,
                        fault,
                    }],
                    ..s.clone()
                };
                let problems: Vec<_> = validate(&probe)
                    .into_iter()
                    .filter(|d| d.path.starts_with("faults"))
                    .collect();
                assert!(problems.is_empty(), "{label} on {t:?}: {problems:?}");
                offered += 1;
            }
        }
        offered
    }
}
