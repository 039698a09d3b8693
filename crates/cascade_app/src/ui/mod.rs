//! The panels (egui): top bar, scenario library and fault palette (left), inspector (right),
//! charts and event log (bottom), the right-click fault menu and dialogs.
//!
//! Each panel is a pure `*_ui(ui, &view, …) -> Vec<AppAction>` function over a plain view
//! struct (tested without a GPU in `tests/panels.rs`); [`draw_ui`] gathers the views from the
//! world, calls them, and sends their actions. Panels never touch the simulation directly.

pub mod build;
pub mod charts;
pub mod dialogs;
pub mod events;
pub mod faults;
pub mod inspector;
pub mod library;
pub mod mechanisms;
pub mod story;
pub mod top_bar;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_egui::input::egui_wants_any_keyboard_input;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use cascade_sim::engine::{InstanceState, ServiceState};
use cascade_sim::metrics::MetricsHistory;
use cascade_sim::{Engine, EventLog, LiveVerdict, SimClock};

use crate::canvas::{
    BuildTool, CanvasCamera, CanvasGraph, CanvasRect, ContextMenu, ContextTarget, InstanceSummary,
};
use crate::playback::Playback;
use crate::session::{AppAction, Document, ErrorWindow, Notice, Selection, UndoHistory};
use crate::settings::Settings;

/// UI plugin.
pub(crate) fn plugin(app: &mut App) {
    let entries = library::library_root()
        .map(|root| library::scan(&root))
        .unwrap_or_default();
    app.insert_resource(Library { entries })
        .init_resource::<UiState>()
        .init_resource::<dialogs::Dialogs>()
        .add_systems(EguiPrimaryContextPass, (install_fonts, draw_ui).chain())
        .add_systems(
            Update,
            (
                keyboard_shortcuts
                    .run_if(not(egui_wants_any_keyboard_input))
                    .in_set(crate::AppSystems::Input),
                (dialogs::start_dialogs, dialogs::poll_dialogs).in_set(crate::AppSystems::Input),
            ),
        );
}

/// The scanned scenario library.
#[derive(Resource, Debug, Default)]
pub struct Library {
    /// Entries in display order.
    pub entries: Vec<library::LibraryEntry>,
}

/// Which tab the bottom panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BottomTab {
    /// Charts.
    #[default]
    Charts,
    /// Event log.
    Events,
}

/// UI state kept between frames.
#[derive(Resource, Default)]
pub struct UiState {
    /// The seed field's text.
    pub seed_text: Option<String>,
    /// Fault palette parameters.
    pub fault_params: faults::FaultParams,
    /// Chart series (built incrementally).
    pub series: charts::Series,
    /// The same series of the comparison run (B), when there is one.
    pub series_b: charts::Series,
    /// Bottom tab.
    pub tab: BottomTab,
    /// Event log shows health changes.
    pub health_changes: bool,
}

/// Everything the panels read.
#[derive(SystemParam)]
pub struct UiWorld<'w, 's> {
    doc: Res<'w, Document>,
    playback: Res<'w, Playback>,
    clock: Res<'w, SimClock>,
    sim_time: Res<'w, crate::playback::SimTime>,
    pace: Res<'w, crate::playback::Pace>,
    verdict: Res<'w, LiveVerdict>,
    history: Res<'w, UndoHistory>,
    settings: Res<'w, Settings>,
    selection: Res<'w, Selection>,
    engine: Res<'w, Engine>,
    metrics: Res<'w, MetricsHistory>,
    log: Res<'w, EventLog>,
    build: Res<'w, BuildTool>,
    errors: Res<'w, ErrorWindow>,
    notice: Res<'w, Notice>,
    library: Res<'w, Library>,
    graph: Res<'w, CanvasGraph>,
    services: Query<'w, 's, &'static ServiceState>,
    instances: Query<'w, 's, &'static InstanceState>,
    camera: Query<'w, 's, &'static Transform, With<CanvasCamera>>,
}

/// Adds DejaVu Sans as a fallback font to egui (arrows, ×, ⚡ and other symbols the default
/// fonts lack), once.
fn install_fonts(mut contexts: EguiContexts, mut done: Local<bool>) -> Result {
    if *done {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert(
        "dejavu".to_owned(),
        std::sync::Arc::new(egui::FontData::from_static(include_bytes!(
            "../../../../assets/fonts/DejaVuSans.ttf"
        ))),
    );
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        fonts
            .families
            .entry(family)
            .or_default()
            .push("dejavu".to_owned());
    }
    ctx.set_fonts(fonts);
    *done = true;
    Ok(())
}

/// Draws every panel and sends the actions they return.
pub fn draw_ui(
    mut contexts: EguiContexts,
    w: UiWorld,
    mut state: ResMut<UiState>,
    mut menu: ResMut<ContextMenu>,
    mut canvas_rect: ResMut<CanvasRect>,
    mut dialogs: ResMut<dialogs::Dialogs>,
    mut actions: MessageWriter<AppAction>,
    comparison: Option<NonSend<crate::compare::Comparison>>,
) -> Result {
    let ctx = contexts.ctx_mut()?.clone();
    // The first frames can come before the window has its real size; panels laid out then
    // would remember a degenerate size.
    if ctx.viewport_rect().height() < 300.0 || ctx.viewport_rect().width() < 500.0 {
        return Ok(());
    }
    let mut out: Vec<AppAction> = Vec::new();
    let seed = w.doc.scenario.seed;
    let mut seed_text = state.seed_text.take().unwrap_or_else(|| seed.to_string());
    if !ctx.memory(|m| m.focused().is_some()) && seed_text != seed.to_string() {
        seed_text = seed.to_string();
    }
    let mut root = egui::Ui::new(
        ctx.clone(),
        "root".into(),
        egui::UiBuilder::new()
            .layer_id(egui::LayerId::background())
            .max_rect(ctx.viewport_rect()),
    );

    // Top bar.
    let top_view = top_bar::TopBarView {
        title: w.doc.title(),
        dirty: w.doc.dirty,
        playing: w.playback.playing,
        speed: w.playback.speed,
        achieved_speed: w.pace.achieved_speed,
        sim_time_s: (w.sim_time.now_ns / 1e9).max(w.clock.now_s()),
        seed,
        verdict: w
            .verdict
            .verdict
            .as_ref()
            .map(|v| (v.kind, v.recovery_seconds)),
        sustained_by: w
            .verdict
            .verdict
            .as_ref()
            .map(|v| v.sustained_by.clone())
            .unwrap_or_default(),
        undo: w.history.undo.last().map(|e| e.label()),
        redo: w.history.redo.last().map(|e| e.label()),
        building: w.build.building,
        recent: w.settings.recent.clone(),
        panels: w.settings.panels,
        compare: comparison.as_ref().map(|c| {
            let b = c.sim.world().resource::<LiveVerdict>();
            (
                c.label(),
                b.verdict.as_ref().map(|v| (v.kind, v.recovery_seconds)),
            )
        }),
    };
    egui::Panel::top("top").show(&mut root, |ui| {
        out.extend(top_bar::top_bar_ui(ui, &top_view, &mut seed_text));
    });
    state.seed_text = Some(seed_text);

    // Left: library, build palette, faults.
    if w.settings.panels.left {
        let palette_view = fault_palette_view(&w);
        let center = w
            .camera
            .iter()
            .next()
            .map_or(Vec2::ZERO, |t| t.translation.truncate());
        egui::Panel::left("left")
            .resizable(true)
            .default_size(270.0)
            .show(&mut root, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    if w.build.building {
                        out.extend(build::build_palette_ui(ui, &w.doc.scenario, center));
                        ui.separator();
                    }
                    out.extend(faults::fault_palette_ui(
                        ui,
                        &palette_view,
                        &mut state.fault_params,
                    ));
                    ui.separator();
                    out.extend(library::library_ui(
                        ui,
                        &w.library.entries,
                        w.doc.path.as_deref(),
                    ));
                });
            });
    }

    // Right: inspector.
    if w.settings.panels.right {
        let mut metrics = selection_metrics(&w);
        if let (Some(c), Some(name)) = (comparison.as_ref(), w.selection.node.as_ref()) {
            metrics.figures.extend(comparison_figures(c, name));
        }
        egui::Panel::right("right")
            .resizable(true)
            .default_size(310.0)
            .show(&mut root, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    out.extend(inspector::inspector_ui(
                        ui,
                        &w.doc.scenario,
                        &w.selection,
                        &metrics,
                        w.build.building,
                    ));
                });
            });
    }

    // Bottom: charts and events.
    if w.settings.panels.bottom {
        let subject = chart_subject(&w);
        state.series.update(&w.metrics, &subject, || {
            outgoing_links(&w.engine.model, &subject)
        });
        // B's series of the same subject (by name: B may number its nodes otherwise).
        let b_label = comparison.as_ref().and_then(|c| {
            let model_b = &c.sim.world().resource::<Engine>().model;
            let subject_b = same_subject_in(model_b, &subject)?;
            state.series_b.update(c.sim.history(), &subject_b, || {
                outgoing_links(model_b, &subject_b)
            });
            Some(c.label())
        });
        let windows = fault_windows(&w);
        let height = w.settings.panels.bottom_height;
        let max_height = (ctx.viewport_rect().height() * 0.55).max(160.0);
        // A fixed height (chosen in the View menu): a resizable panel sized by its own
        // content would shrink a little every frame.
        let panel_height = height.clamp(160.0, max_height);
        egui::Panel::bottom("bottom")
            .resizable(false)
            .exact_size(panel_height)
            .show(&mut root, |ui| {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut state.tab, BottomTab::Charts, "Charts")
                        .on_hover_text(
                            "Offered vs goodput, errors, latency, queue, retries, utilisation",
                        );
                    ui.selectable_value(&mut state.tab, BottomTab::Events, "Events")
                        .on_hover_text("Faults, commands, health and verdict changes");
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        ui.label(egui::RichText::new(&w.notice.text).weak());
                    });
                });
                let h = panel_height - 44.0;
                match state.tab {
                    BottomTab::Charts => {
                        let series = state.series.clone();
                        let b = b_label.as_ref().map(|l| (&state.series_b, l.as_str()));
                        charts::charts_ui(ui, &series, b, &windows, h);
                    }
                    BottomTab::Events => {
                        let mut hc = state.health_changes;
                        out.extend(events::event_log_ui(
                            ui,
                            &w.log.events,
                            &mut hc,
                            w.clock.tick_ns as f64 / 1e9,
                        ));
                        state.health_changes = hc;
                    }
                }
            });
    }

    // What is left is the canvas.
    let free = root.available_rect_before_wrap();
    *canvas_rect = CanvasRect {
        min: Vec2::new(free.min.x, free.min.y),
        max: Vec2::new(free.max.x, free.max.y),
        overlay: Vec2::ZERO,
    };

    // The story's current step, over the canvas.
    let story = &w.doc.scenario.story;
    let current = crate::story::current_step(story, w.clock.now_s());
    let held_here = current.is_some_and(|i| {
        story[i].pause
            && crate::story::step_tick(story[i].at_s, w.clock.tick_ns) == w.clock.ticks_done
    });
    // Hidden from the View menu, the banner still shows Continue when the run paused for it.
    if w.settings.panels.story || (held_here && !w.playback.playing) {
        let (actions, banner) = story::story_banner_ui(
            &ctx,
            *canvas_rect,
            &story::StoryView {
                story,
                current,
                playing: w.playback.playing,
                held_here,
            },
        );
        out.extend(actions);
        canvas_rect.overlay = banner.unwrap_or(Vec2::ZERO);
    }

    // Right-click menu.
    if let Some((target, at)) = menu.open.clone() {
        let fault_target = match &target {
            ContextTarget::Node(name) => node_target(&w, name),
            ContextTarget::Edge(from, to) => Some(faults::FaultTarget::Edge {
                from: from.clone(),
                to: to.clone(),
            }),
        };
        if let Some(t) = fault_target {
            let area = egui::Area::new(egui::Id::new("context-menu"))
                .order(egui::Order::Foreground)
                .fixed_pos(egui::pos2(at.x, at.y))
                .show(&ctx, |ui| {
                    egui::Frame::popup(ui.style())
                        .show(ui, |ui| faults::fault_menu_ui(ui, &t, &state.fault_params))
                        .inner
                });
            let chosen = area.inner;
            if !chosen.is_empty()
                || area.response.clicked_elsewhere()
                || ctx.input(|i| i.key_pressed(egui::Key::Escape))
            {
                menu.open = None;
            }
            out.extend(chosen);
        } else {
            menu.open = None;
        }
    }

    out.extend(dialogs::path_prompt_ui(&ctx, &mut dialogs.prompt));
    out.extend(dialogs::error_window_ui(&ctx, &w.errors));
    actions.write_batch(out);
    Ok(())
}

fn node_target(w: &UiWorld, name: &str) -> Option<faults::FaultTarget> {
    if let Some(s) = w.doc.scenario.service(name) {
        return Some(faults::FaultTarget::Service {
            name: name.to_owned(),
            instances: s.instances,
            workers: s.workers,
            cache: s.cache.is_some(),
            called: w.doc.scenario.is_called(name),
            zones: s.zones.clone(),
        });
    }
    w.doc
        .scenario
        .source(name)
        .map(|_| faults::FaultTarget::Source {
            name: name.to_owned(),
        })
}

fn fault_palette_view(w: &UiWorld) -> faults::FaultPaletteView {
    let target = match (&w.selection.node, &w.selection.edge) {
        (Some(n), _) => node_target(w, n),
        (None, Some((from, to))) => Some(faults::FaultTarget::Edge {
            from: from.clone(),
            to: to.clone(),
        }),
        _ => None,
    };
    let active = w
        .engine
        .faults
        .iter()
        .filter(|f| f.active)
        .map(|f| faults::ActiveFault {
            id: f.id,
            label: fault_description(f),
            until_s: (f.end_ns != cascade_sim::time::NEVER).then(|| f.end_ns as f64 / 1e9),
            scripted: f.scripted,
        })
        .collect();
    faults::FaultPaletteView {
        target,
        active,
        selection: w.selection.clone(),
    }
}

/// "slow ×4 on db", "kill on api (first 2 instances)": what a fault does and where.
fn fault_description(f: &cascade_sim::faults::FaultRecord) -> String {
    let what = fault_label(&f.kind);
    let which = instances_note(f.kind.instances());
    format!("{what} on {}{which}", f.target_label())
}

/// " (first instance)", " (first 3 instances)", or nothing for a fault on every instance.
fn instances_note(selector: Option<cascade_sim::scenario::InstanceSelector>) -> String {
    use cascade_sim::scenario::InstanceSelector as I;
    match selector {
        Some(I::First(1)) => " (first instance)".to_owned(),
        Some(I::First(n)) => format!(" (first {n} instances)"),
        Some(I::All) | None => String::new(),
    }
}

/// "slow ×4", "errors 50%"…
pub fn fault_label(kind: &cascade_sim::scenario::FaultKind) -> String {
    use cascade_sim::scenario::FaultKind as F;
    match kind {
        F::Slow { factor, .. } => format!("slow ×{factor}"),
        F::Latency { added_ms, .. } | F::LinkLatency { added_ms, .. } => {
            format!("latency +{added_ms} ms")
        }
        F::Errors { probability, .. } => format!("errors {:.0}%", probability * 100.0),
        F::LoadSpike { factor, .. } => format!("load ×{factor}"),
        F::CapacityCut {
            workers,
            cores,
            instances,
            ..
        } => {
            let parts: Vec<String> = [
                (workers, "workers"),
                (cores, "cores"),
                (instances, "instances"),
            ]
            .into_iter()
            .filter_map(|(n, what)| n.map(|n| format!("{n} {what}")))
            .collect();
            if parts.is_empty() {
                "capacity cut".to_owned()
            } else {
                format!("cut to {}", parts.join(", "))
            }
        }
        other => other.label().to_owned(),
    }
}

fn chart_subject(w: &UiWorld) -> charts::ChartSubject {
    let Some(name) = &w.selection.node else {
        return charts::ChartSubject::System;
    };
    match w.graph.node(name).map(|n| n.node) {
        Some(cascade_sim::NodeRef::Service(i)) => charts::ChartSubject::Service(i, name.clone()),
        Some(cascade_sim::NodeRef::Source(i)) => charts::ChartSubject::Source(i, name.clone()),
        None => charts::ChartSubject::System,
    }
}

/// The chart subject in another model (a comparison's B), found by name.
fn same_subject_in(
    model: &cascade_sim::engine::Model,
    subject: &charts::ChartSubject,
) -> Option<charts::ChartSubject> {
    use charts::ChartSubject as S;
    match subject {
        S::System => Some(S::System),
        S::Service(_, name) => model
            .service_index(name)
            .map(|i| S::Service(i, name.clone())),
        S::Source(_, name) => model.source_index(name).map(|i| S::Source(i, name.clone())),
    }
}

/// The links (edge indices) on which the chart subject calls others: all of them for the
/// whole system.
fn outgoing_links(
    model: &cascade_sim::engine::Model,
    subject: &charts::ChartSubject,
) -> Vec<usize> {
    let from = match subject {
        charts::ChartSubject::System => None,
        charts::ChartSubject::Service(i, _) => Some(cascade_sim::NodeRef::Service(*i)),
        charts::ChartSubject::Source(i, _) => Some(cascade_sim::NodeRef::Source(*i)),
    };
    model
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| from.is_none_or(|f| l.from == f))
        .map(|(e, _)| e)
        .collect()
}

fn fault_windows(w: &UiWorld) -> Vec<charts::FaultWindow> {
    let now = w.clock.now_s();
    w.engine
        .faults
        .iter()
        .filter(|f| f.active || f.end_ns <= w.clock.now_ns())
        .filter(|f| f.start_ns < w.clock.now_ns())
        .filter(|f| {
            w.selection
                .node
                .as_ref()
                .is_none_or(|n| f.kind.names_node(n))
        })
        .map(|f| {
            let end = if f.end_ns == cascade_sim::time::NEVER {
                now
            } else {
                (f.end_ns as f64 / 1e9).min(now)
            };
            (f.start_ns as f64 / 1e9, end, fault_description(f))
        })
        .collect()
}

/// Which of a service's mechanism gauges its inspector shows (besides any that is not zero):
/// those of the mechanisms it has.
#[derive(Debug, Clone, Copy, Default)]
struct GaugesShown {
    work_queue: bool,
    cache: bool,
    health_gated: bool,
    failover: bool,
    panic: bool,
    /// Its instance count changes by itself (an autoscaler).
    instances: bool,
}

/// A service's state at the end of the last interval, as its inspector shows it.
#[derive(Debug, Clone, Copy, Default)]
struct MechView {
    gauges: cascade_sim::metrics::Gauges,
    /// Busy cores over cores (`None`: cores not modelled).
    cpu: Option<f64>,
    /// Optimistic-concurrency conflicts over completions (`None`: nothing completed).
    conflict_ratio: Option<f64>,
    /// Mean slowdown of own work from concurrency (`None`: no load-dependent service time;
    /// NaN: no own work started in the interval).
    slowdown: Option<f64>,
    live_instances: u32,
    configured_instances: u32,
}

/// The inspector's rows for a service's mechanism state at the end of the last interval: live
/// instances (with an autoscaler, or when not all are live), CPU (where cores are modelled),
/// the slowdown of own work from concurrency (`scaling`), optimistic-concurrency conflicts, a work queue's backlog (the only sign of one: its
/// producers are answered at once), cache warmth, instances in the healthy set, starting or
/// latched, callers' open breakers, failover and panic routing. A gauge shows where its
/// mechanism is configured or it is not zero.
fn gauge_figures(view: &MechView, shown: GaugesShown) -> Vec<(String, String)> {
    let (g, live_instances) = (&view.gauges, view.live_instances);
    let mut rows = Vec::new();
    if shown.instances {
        // An autoscaler moves the count away from the configured one: the count alone.
        rows.push(("live instances".into(), live_instances.to_string()));
    } else if live_instances != view.configured_instances {
        rows.push((
            "live instances".into(),
            format!("{live_instances} of {}", view.configured_instances),
        ));
    }
    if let Some(cpu) = view.cpu {
        rows.push(("CPU busy".into(), format!("{:.0} %", cpu * 100.0)));
    }
    if let Some(slowdown) = view.slowdown {
        // NaN: no own work started in the interval (each may take longer than it).
        let text = if slowdown.is_nan() {
            "none started".to_owned()
        } else {
            format!("×{slowdown:.1}")
        };
        rows.push(("work slowed".into(), text));
    }
    if let Some(ratio) = view.conflict_ratio.filter(|r| *r > 0.0) {
        rows.push(("conflicts".into(), format!("{:.1} %", ratio * 100.0)));
    }
    if shown.work_queue || g.queue_backlog > 0 {
        rows.push(("backlog".into(), format!("{} items", g.queue_backlog)));
    }
    if g.dead_letters > 0 {
        rows.push(("dead letters".into(), g.dead_letters.to_string()));
    }
    if g.expired_items > 0 {
        rows.push(("expired items".into(), g.expired_items.to_string()));
    }
    if shown.cache {
        rows.push((
            "cache warmth".into(),
            format!("{:.0} % of keys", g.cache_warmth * 100.0),
        ));
    }
    if shown.health_gated {
        rows.push((
            "healthy".into(),
            format!("{} of {live_instances}", g.healthy_instances),
        ));
    }
    if g.starting_instances > 0 {
        rows.push(("starting".into(), g.starting_instances.to_string()));
    }
    if g.latched_instances > 0 {
        rows.push(("latched".into(), g.latched_instances.to_string()));
    }
    if g.breakers_open > 0 {
        rows.push(("breakers open".into(), g.breakers_open.to_string()));
    }
    if shown.failover || g.failed_over {
        rows.push((
            "failed over".into(),
            if g.failed_over { "yes" } else { "no" }.into(),
        ));
    }
    if shown.panic || g.panic {
        rows.push((
            "panic routing".into(),
            if g.panic { "on" } else { "off" }.into(),
        ));
    }
    rows
}

/// "3 of 4": the instances the load balancer routes to that are live, of those provisioned;
/// `None` for a single instance that serves (nothing to say).
fn serving_text(sum: &InstanceSummary) -> Option<String> {
    (sum.provisioned > 1 || sum.serving < sum.provisioned)
        .then(|| format!("{} of {}", sum.serving, sum.provisioned))
}

/// The p50 and p99 of an interval's latencies, or a dash when nothing was recorded in it (its
/// percentiles then read 0, which is not a latency).
fn p50_p99_text(latency_ms: [f64; 4]) -> String {
    cascade_sim::metrics::recorded_latency(latency_ms).map_or_else(
        || "—".to_owned(),
        |l| format!("{:.1} / {:.1} ms", l[0], l[2]),
    )
}

/// The selected node's last interval in the comparison run (B, named in the top bar), by
/// name: goodput, the share failed or orphaned, p50 and p99. Nothing when B has no node of that name or no interval yet.
fn comparison_figures(c: &crate::compare::Comparison, name: &str) -> Vec<(String, String)> {
    let model = &c.sim.world().resource::<Engine>().model;
    let history = c.sim.history();
    let ring = if let Some(i) = model.service_index(name) {
        history.services.get(i as usize)
    } else if let Some(i) = model.source_index(name) {
        history.sources.get(i as usize)
    } else {
        None
    };
    let Some(row) = ring.and_then(|r| r.back()) else {
        return Vec::new();
    };
    let dt = history.interval_ns as f64 / 1e9;
    let c_row = &row.counters;
    vec![
        (
            "B goodput".to_owned(),
            format!("{:.0} /s", c_row.goodput as f64 / dt),
        ),
        (
            "B failed or orphaned".to_owned(),
            format!("{:.1} %", c_row.error_ratio() * 100.0),
        ),
        ("B p50 / p99".to_owned(), p50_p99_text(row.latency_ms)),
    ]
}

fn selection_metrics(w: &UiWorld) -> inspector::SelectionMetrics {
    let Some(name) = &w.selection.node else {
        return Default::default();
    };
    let Some(node) = w.graph.node(name) else {
        return Default::default();
    };
    let dt = w.metrics.interval_ns as f64 / 1e9;
    let mut m = inspector::SelectionMetrics::default();
    let Some(ring) = w.metrics.node_rows(node.node) else {
        return m;
    };
    if let Some(row) = ring.back() {
        let c = &row.counters;
        match node.node {
            cascade_sim::NodeRef::Service(i) => {
                let sum = w
                    .services
                    .iter()
                    .find(|s| s.index == i)
                    .map(|st| {
                        InstanceSummary::of(
                            w.instances
                                .iter()
                                .filter(|is| st.instances.contains(&is.global)),
                            &st.routable,
                        )
                    })
                    .unwrap_or_default();
                let (busy, workers, queue) = (sum.busy, sum.workers, sum.queued);
                let serving_now = serving_text(&sum);
                m.figures = vec![
                    (
                        "offered".into(),
                        format!(
                            "{:.0} /s ({:.0} retries)",
                            c.offered() as f64 / dt,
                            c.offered_retry as f64 / dt
                        ),
                    ),
                    ("goodput".into(), format!("{:.0} /s", c.goodput as f64 / dt)),
                    // Not goodput: failures, and completions nobody waited for any more.
                    (
                        "failed or orphaned".into(),
                        format!("{:.1} %", c.error_ratio() * 100.0),
                    ),
                    ("p50 / p99".into(), p50_p99_text(row.latency_ms)),
                    ("queue now".into(), format!("{queue}")),
                    ("workers busy".into(), format!("{busy} of {workers}")),
                ];
                // What the canvas's label says (`api ×4 (1 serving)`), as of now.
                m.figures
                    .extend(serving_now.map(|t| ("serving now".to_owned(), t)));
                m.figures.extend([
                    (
                        "utilisation".into(),
                        format!("{:.0} %", c.utilization() * 100.0),
                    ),
                    (
                        "orphaned".into(),
                        format!("{:.0} %", c.orphaned_ratio() * 100.0),
                    ),
                    ("health".into(), row.health.as_str().into()),
                ]);
                let model = w.engine.model.services.get(i as usize);
                if model.is_some_and(|s| s.cancellation) || c.cancelled > 0 {
                    // Requests whose callers gave up and told it: stopped, no work wasted after.
                    m.figures.push((
                        "cancelled".into(),
                        format!("{:.0} /s", c.cancelled as f64 / dt),
                    ));
                }
                let mech = model.and_then(|s| s.mech.as_deref());
                let shown = GaugesShown {
                    work_queue: mech.is_some_and(|m| m.work_queue.is_some()),
                    cache: mech.is_some_and(|m| m.cache.is_some()),
                    health_gated: mech.is_some_and(|m| m.health.is_some() || m.outlier.is_some()),
                    failover: mech.is_some_and(|m| m.failover.is_some()),
                    panic: mech.is_some_and(|m| m.panic_threshold.is_some()),
                    instances: mech.is_some_and(|m| m.autoscale.is_some()),
                };
                let completed = c.completed();
                let view = MechView {
                    gauges: row.gauges,
                    cpu: c.cpu_utilization(),
                    conflict_ratio: (completed > 0).then(|| {
                        c.failed[cascade_sim::metrics::Outcome::Conflict as usize] as f64
                            / completed as f64
                    }),
                    // Configured, or pushed by a fault (a config push's `Scaling`).
                    slowdown: (mech.is_some_and(|m| m.scaling.is_some())
                        || c.slowdown_excess_milli > 0)
                        .then(|| {
                            if c.started == 0 {
                                f64::NAN
                            } else {
                                c.mean_slowdown().unwrap_or(1.0)
                            }
                        }),
                    live_instances: row.live_instances,
                    configured_instances: model.map_or(0, |s| s.instances),
                };
                m.figures.extend(gauge_figures(&view, shown));
            }
            cascade_sim::NodeRef::Source(_) => {
                let done = c.succeeded + c.failed_total();
                m.figures = vec![
                    (
                        "requests".into(),
                        format!("{:.0} /s", c.offered_first as f64 / dt),
                    ),
                    (
                        "retries".into(),
                        format!("{:.0} /s", c.offered_retry as f64 / dt),
                    ),
                    (
                        "succeeded".into(),
                        format!(
                            "{:.1} %",
                            if done == 0 {
                                100.0
                            } else {
                                c.succeeded as f64 * 100.0 / done as f64
                            }
                        ),
                    ),
                    ("p50 / p99".into(), p50_p99_text(row.latency_ms)),
                    ("health".into(), row.health.as_str().into()),
                ];
                if let cascade_sim::NodeRef::Source(i) = node.node
                    && let Some(text) = failure_origins_text(w, i, row.interval)
                {
                    m.figures.push(("failures started at".into(), text));
                }
            }
        }
    }
    let recent: Vec<_> = ring.iter().rev().take(60).collect();
    let is_service = matches!(node.node, cascade_sim::NodeRef::Service(_));
    let series = |f: &dyn Fn(&cascade_sim::NodeRow) -> f64| {
        recent.iter().rev().map(|r| f(r)).collect::<Vec<f64>>()
    };
    m.sparklines = vec![
        (
            "goodput /s".into(),
            series(&|r| r.counters.goodput as f64 / dt),
        ),
        (
            match node.node {
                cascade_sim::NodeRef::Service(_) => "failed or orphaned".into(),
                cascade_sim::NodeRef::Source(_) => "errors".into(),
            },
            series(&|r| charts::failure_share(&r.counters, is_service).unwrap_or(f64::NAN)),
        ),
        (
            "p99 ms".into(),
            series(&|r| {
                cascade_sim::metrics::recorded_latency(r.latency_ms).map_or(f64::NAN, |l| l[2])
            }),
        ),
    ];
    m
}

/// Where source `s`'s failed requests of interval `k` started, most first, with their shares
/// (`db 92 %, api → db 8 %`; the first three); `None` when none failed.
fn failure_origins_text(w: &UiWorld, s: u32, k: u32) -> Option<String> {
    let ranked = cascade_sim::causality::ranked_at(
        &w.metrics.causes,
        k,
        cascade_sim::causality::CauseSite::Source(s),
    );
    let total: u64 = ranked.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let graph = cascade_sim::causality::CauseGraph::of(&w.engine.model);
    Some(
        ranked
            .iter()
            .take(3)
            .map(|&(o, n)| {
                format!(
                    "{} {:.0} %",
                    graph.origin_name(o),
                    n as f64 * 100.0 / total as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Keyboard shortcuts (when egui does not want the keyboard).
pub fn keyboard_shortcuts(
    keys: Res<ButtonInput<KeyCode>>,
    selection: Res<Selection>,
    build: Res<BuildTool>,
    doc: Res<Document>,
    engine: Res<Engine>,
    clock: Res<SimClock>,
    mut actions: MessageWriter<AppAction>,
) {
    let ctrl = keys.any_pressed([
        KeyCode::ControlLeft,
        KeyCode::ControlRight,
        KeyCode::SuperLeft,
        KeyCode::SuperRight,
    ]);
    let shift = keys.any_pressed([KeyCode::ShiftLeft, KeyCode::ShiftRight]);
    for key in keys.get_just_pressed() {
        let action = match (*key, ctrl, shift) {
            (KeyCode::Space, false, _) => Some(AppAction::TogglePlay),
            (KeyCode::Period, false, _) => Some(AppAction::Step),
            (KeyCode::Equal | KeyCode::NumpadAdd, false, _) => Some(AppAction::Faster),
            (KeyCode::Minus | KeyCode::NumpadSubtract, false, _) => Some(AppAction::Slower),
            (KeyCode::KeyF, false, _) => Some(AppAction::FitView),
            (KeyCode::ArrowLeft, false, _) => Some(AppAction::RewindTo(
                (clock.now_s() - top_bar::BACK_STEP_S).max(0.0),
            )),
            (KeyCode::KeyB, false, _) => Some(AppAction::SetBuilding(!build.building)),
            (KeyCode::KeyZ, true, false) => Some(AppAction::Undo),
            (KeyCode::KeyZ, true, true) | (KeyCode::KeyY, true, _) => Some(AppAction::Redo),
            (KeyCode::KeyS, true, false) => Some(AppAction::Save),
            (KeyCode::KeyS, true, true) => Some(AppAction::SaveAsDialog),
            (KeyCode::KeyO, true, _) => Some(AppAction::OpenDialog),
            (KeyCode::KeyD, true, _) if build.building => selection.node.as_ref().and_then(|n| {
                build::duplicate_node(&doc.scenario, n).map(|s| AppAction::Edit {
                    scenario: Box::new(s),
                    label: format!("duplicate {n}"),
                })
            }),
            (KeyCode::Delete | KeyCode::Backspace, false, _) => {
                delete_action(&selection, &build, &doc, &engine)
            }
            _ => None,
        };
        if let Some(a) = action {
            actions.write(a);
        }
    }
}

/// Delete: the selected fault; in build mode the selected node; else every live fault on the
/// selected node.
pub fn delete_action(
    selection: &Selection,
    build: &BuildTool,
    doc: &Document,
    engine: &Engine,
) -> Option<AppAction> {
    if let Some(id) = selection.fault {
        return Some(AppAction::ClearFault(id));
    }
    let name = selection.node.as_ref()?;
    if build.building {
        return build::delete_node(&doc.scenario, name).map(|s| AppAction::Edit {
            scenario: Box::new(s),
            label: format!("delete {name}"),
        });
    }
    engine
        .faults
        .iter()
        .rev()
        .find(|f| f.active && !f.scripted && f.kind.names_node(name))
        .map(|f| AppAction::ClearFault(f.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_now_is_shown_for_several_instances_or_one_that_does_not_serve() {
        let sum = |serving, provisioned| InstanceSummary {
            serving,
            provisioned,
            ..Default::default()
        };
        assert_eq!(serving_text(&sum(1, 1)), None);
        assert_eq!(serving_text(&sum(0, 1)).as_deref(), Some("0 of 1"));
        assert_eq!(serving_text(&sum(4, 4)).as_deref(), Some("4 of 4"));
        assert_eq!(serving_text(&sum(0, 4)).as_deref(), Some("0 of 4"));
    }

    #[test]
    fn a_fault_on_some_instances_says_which_and_one_on_all_says_nothing_more() {
        use cascade_sim::scenario::{FaultKind, InstanceSelector};
        let slow = |instances| FaultKind::Slow {
            service: "store".into(),
            instances,
            factor: 20.0,
        };
        let note = |k: &FaultKind| instances_note(k.instances());
        assert_eq!(note(&slow(InstanceSelector::First(1))), " (first instance)");
        assert_eq!(
            note(&slow(InstanceSelector::First(3))),
            " (first 3 instances)"
        );
        assert_eq!(note(&slow(InstanceSelector::All)), "");
        let spike = FaultKind::LoadSpike {
            source: "users".into(),
            factor: 3.0,
        };
        assert_eq!(note(&spike), "", "a fault on a source has no instances");
    }

    #[test]
    fn a_work_queue_shows_its_backlog_and_unconfigured_gauges_stay_out() {
        let one = |gauges| MechView {
            gauges,
            live_instances: 1,
            configured_instances: 1,
            ..Default::default()
        };
        let backlog = cascade_sim::metrics::Gauges {
            queue_backlog: 5_400,
            ..Default::default()
        };
        let shown = GaugesShown {
            work_queue: true,
            ..Default::default()
        };
        assert_eq!(
            gauge_figures(&one(backlog), shown),
            vec![("backlog".to_owned(), "5400 items".to_owned())]
        );
        // A plain service at rest shows none.
        assert!(gauge_figures(&one(Default::default()), GaugesShown::default()).is_empty());
        // One that is not configured but not zero shows (an open breaker of a caller).
        let open = cascade_sim::metrics::Gauges {
            breakers_open: 2,
            ..Default::default()
        };
        assert_eq!(
            gauge_figures(&one(open), GaugesShown::default()),
            vec![("breakers open".to_owned(), "2".to_owned())]
        );
        // Instances lost, cores and conflicts.
        let view = MechView {
            cpu: Some(0.125),
            slowdown: Some(24.88),
            conflict_ratio: Some(0.25),
            live_instances: 3,
            configured_instances: 8,
            ..Default::default()
        };
        assert_eq!(
            gauge_figures(&view, GaugesShown::default()),
            vec![
                ("live instances".to_owned(), "3 of 8".to_owned()),
                ("CPU busy".to_owned(), "12 %".to_owned()),
                ("work slowed".to_owned(), "×24.9".to_owned()),
                ("conflicts".to_owned(), "25.0 %".to_owned()),
            ]
        );
        // Load-dependent work, none started in the interval: not "×1.0".
        let idle = MechView {
            slowdown: Some(f64::NAN),
            ..Default::default()
        };
        assert_eq!(
            gauge_figures(&idle, GaugesShown::default()),
            vec![("work slowed".to_owned(), "none started".to_owned())]
        );
    }

    #[test]
    fn an_interval_with_nothing_recorded_shows_no_latency() {
        assert_eq!(p50_p99_text([0.0; 4]), "—");
        assert_eq!(
            p50_p99_text([302.1, 305.0, 308.2, 309.0]),
            "302.1 / 308.2 ms"
        );
    }
}
