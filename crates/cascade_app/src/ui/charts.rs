//! Charts of the selection (or of the whole system) over the run, with fault windows shaded:
//! offered load vs goodput, error ratio, p50/p99 latency, queue length, retries per second,
//! worker utilisation. Series are built incrementally from the metrics history (only new
//! intervals are added each frame), so charts stay cheap on long runs and large graphs.

use bevy_egui::egui::{self, Color32};
use cascade_sim::metrics::{MetricsHistory, NodeCounters};
use egui_plot::{
    AxisHints, Corner, GridInput, Legend, Line, Plot, PlotPoints, Polygon, uniform_grid_spacer,
};

/// Which rows a chart shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ChartSubject {
    /// All sources and services together.
    #[default]
    System,
    /// One service, by model index.
    Service(u32, String),
    /// One source, by model index.
    Source(u32, String),
}

/// Series per interval, x in seconds (interval end).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Chart subject.
    pub subject: ChartSubject,
    /// Intervals included.
    pub intervals: u32,
    /// Offered attempts per s.
    pub offered: Vec<[f64; 2]>,
    /// Goodput per s.
    pub goodput: Vec<[f64; 2]>,
    /// Error ratio.
    pub errors: Vec<[f64; 2]>,
    /// p50 ms.
    pub p50: Vec<[f64; 2]>,
    /// p99 ms.
    pub p99: Vec<[f64; 2]>,
    /// Mean queue length.
    pub queue: Vec<[f64; 2]>,
    /// Items waiting in work queues at the interval's end (a work queue's backlog is not in
    /// its instances' queues: enqueueing succeeds, the items wait in the queue itself).
    pub backlog: Vec<[f64; 2]>,
    /// Retries received per s.
    pub retries: Vec<[f64; 2]>,
    /// Retries sent per s (over the subject's outgoing calls).
    pub retries_sent: Vec<[f64; 2]>,
    /// Utilisation.
    pub utilization: Vec<[f64; 2]>,
}

impl Series {
    /// Appends intervals closed since the last call (restarts when the subject changes or the
    /// run was reset). `outgoing` gives the indices of the subject's outgoing links (calls),
    /// whose retries are the subject's retries sent; it is asked only when an interval closed.
    pub fn update(
        &mut self,
        history: &MetricsHistory,
        subject: &ChartSubject,
        outgoing: impl FnOnce() -> Vec<usize>,
    ) {
        if *subject != self.subject || history.intervals() < self.intervals {
            *self = Series {
                subject: subject.clone(),
                ..Default::default()
            };
        }
        if self.intervals >= history.intervals() {
            return;
        }
        let outgoing = outgoing();
        let dt = history.interval_ns as f64 / 1e9;
        for k in self.intervals..history.intervals() {
            let x = f64::from(k + 1) * dt;
            let (c, lat, backlog) = match subject {
                ChartSubject::System => {
                    let mut c = NodeCounters::default();
                    let mut p = [0.0f64; 4];
                    let mut backlog = 0;
                    for ring in &history.services {
                        if let Some(r) = MetricsHistory::row_at(ring, k) {
                            backlog += r.gauges.queue_backlog;
                            c.area_queue += r.counters.area_queue;
                            c.area_busy += r.counters.area_busy;
                            c.area_capacity += r.counters.area_capacity;
                            c.offered_retry += r.counters.offered_retry;
                        }
                    }
                    for ring in &history.sources {
                        if let Some(r) = MetricsHistory::row_at(ring, k) {
                            c.offered_first += r.counters.offered_first;
                            c.goodput += r.counters.goodput;
                            c.succeeded += r.counters.succeeded;
                            for (a, b) in c.failed.iter_mut().zip(r.counters.failed) {
                                *a += b;
                            }
                            for (a, b) in p.iter_mut().zip(r.latency_ms) {
                                *a = a.max(b);
                            }
                        }
                    }
                    (c, p, backlog)
                }
                ChartSubject::Service(i, _) => match history
                    .services
                    .get(*i as usize)
                    .and_then(|r| MetricsHistory::row_at(r, k))
                {
                    Some(r) => (r.counters, r.latency_ms, r.gauges.queue_backlog),
                    None => continue,
                },
                ChartSubject::Source(i, _) => match history
                    .sources
                    .get(*i as usize)
                    .and_then(|r| MetricsHistory::row_at(r, k))
                {
                    Some(r) => (r.counters, r.latency_ms, 0),
                    None => continue,
                },
            };
            let is_service = matches!(subject, ChartSubject::Service(..));
            let offered = if is_service {
                c.offered()
            } else {
                c.offered_first
            };
            self.offered.push([x, offered as f64 / dt]);
            self.goodput.push([x, c.goodput as f64 / dt]);
            // An interval in which nothing resolved has no failure share: left out like an
            // empty latency, not drawn as a fall to 0% (a saturated service completing in
            // bursts would read 100%, 0%, 100%, …).
            if let Some(err) = failure_share(&c, is_service) {
                self.errors.push([x, err]);
            }
            // An interval in which nothing completed has no latency (its percentiles read 0):
            // leave it out rather than draw a fall to zero in the middle of an outage.
            if let Some(lat) = cascade_sim::metrics::recorded_latency(lat) {
                self.p50.push([x, lat[0]]);
                self.p99.push([x, lat[2]]);
            }
            self.queue.push([x, c.mean_queue(history.interval_ns)]);
            self.backlog.push([x, backlog as f64]);
            self.retries.push([x, c.offered_retry as f64 / dt]);
            let sent: u64 = outgoing
                .iter()
                .filter_map(|&e| {
                    history
                        .edges
                        .get(e)
                        .and_then(|r| MetricsHistory::row_at(r, k))
                })
                .map(|r| r.counters.retries)
                .sum();
            self.retries_sent.push([x, sent as f64 / dt]);
            self.utilization.push([x, c.utilization()]);
        }
        self.intervals = history.intervals();
    }
}

/// The share of an interval's resolved attempts that were not goodput (a service), or of
/// its finished requests that failed (a source); `None` when nothing resolved or finished.
pub fn failure_share(c: &NodeCounters, is_service: bool) -> Option<f64> {
    if is_service {
        (c.resolved() > 0).then(|| c.error_ratio())
    } else {
        let done = c.succeeded + c.failed_total();
        (done > 0).then(|| c.failed_total() as f64 / done as f64)
    }
}

/// The latency chart's title: what its percentiles are of. A source (and the whole system,
/// its sources' worst) records the end-to-end latency of successes only, so in an outage its
/// p99 can fall while most requests time out; a service records the residence of every
/// completion, failures included (docs/model.md, "Percentiles").
pub fn latency_title(subject: &ChartSubject) -> &'static str {
    match subject {
        ChartSubject::System | ChartSubject::Source(..) => "latency of successes (ms)",
        ChartSubject::Service(..) => "residence, all completions (ms)",
    }
}

/// The error chart's title: what its share counts. For a source (and the whole system) the
/// share of finished client requests that failed; for a service everything that was not
/// goodput, so completions for a caller that had already given up (orphaned, like the losing
/// copy of a hedged request) count with the failures (docs/model.md, the error ratio).
pub fn errors_title(subject: &ChartSubject) -> &'static str {
    match subject {
        ChartSubject::System | ChartSubject::Source(..) => "failed requests (share)",
        ChartSubject::Service(..) => "failed or orphaned (share)",
    }
}

/// The queue chart's lines: the instances' mean queue, and a work queue's backlog where the
/// subject has one (the only sign of a backlog: its producers are answered at once).
fn queue_lines(series: &Series) -> Vec<(&'static str, &Vec<[f64; 2]>, Color32)> {
    let mut lines = vec![("queue", &series.queue, Color32::from_rgb(222, 170, 40))];
    if series.backlog.iter().any(|p| p[1] > 0.0) {
        lines.push((
            "work-queue backlog",
            &series.backlog,
            Color32::from_rgb(240, 120, 60),
        ));
    }
    lines
}

/// A fault window: start, end (s) and label.
pub type FaultWindow = (f64, f64, String);

/// Colour of a comparison's (B's) lines.
const B_COLOR: Color32 = Color32::from_rgb(190, 140, 255);

/// The charts grid; `b` adds a comparison run's goodput, errors and p99 (and its name).
pub fn charts_ui(
    ui: &mut egui::Ui,
    series: &Series,
    b: Option<(&Series, &str)>,
    faults: &[FaultWindow],
    height: f32,
) {
    let title = match &series.subject {
        ChartSubject::System => "whole system".to_owned(),
        ChartSubject::Service(_, n) | ChartSubject::Source(_, n) => n.clone(),
    };
    let title = match b {
        Some((_, name)) => format!("{title} — B: {name}, same seed and faults"),
        None => title,
    };
    ui.label(egui::RichText::new(format!("Charts: {title}")).strong())
        .on_hover_text("Select a node to chart it; click empty canvas for the whole system. Shaded: faults in effect.");
    let h = ((height - 60.0) / 2.0).max(60.0);
    let x_max = series.offered.last().map_or(1.0, |p| p[0]);
    let w = (ui.available_width() / 3.0 - 8.0).max(120.0);
    let mut charts: [(&str, Vec<(&str, &Vec<[f64; 2]>, Color32)>); 6] = [
        (
            "offered vs goodput (/s)",
            vec![
                ("offered", &series.offered, Color32::from_rgb(150, 160, 175)),
                ("goodput", &series.goodput, Color32::from_rgb(46, 160, 112)),
            ],
        ),
        (
            errors_title(&series.subject),
            vec![("errors", &series.errors, Color32::from_rgb(215, 48, 58))],
        ),
        (
            latency_title(&series.subject),
            vec![
                ("p50", &series.p50, Color32::from_rgb(120, 180, 240)),
                ("p99", &series.p99, Color32::from_rgb(232, 112, 40)),
            ],
        ),
        ("queue length", queue_lines(series)),
        (
            "retries (/s)",
            vec![
                ("received", &series.retries, Color32::from_rgb(255, 200, 64)),
                (
                    "sent",
                    &series.retries_sent,
                    Color32::from_rgb(200, 120, 255),
                ),
            ],
        ),
        (
            "utilisation",
            vec![(
                "workers busy",
                &series.utilization,
                Color32::from_rgb(190, 190, 255),
            )],
        ),
    ];
    if let Some((b, _)) = b {
        charts[0].1.push(("goodput B", &b.goodput, B_COLOR));
        charts[1].1.push(("errors B", &b.errors, B_COLOR));
        charts[2].1.push(("p99 B", &b.p99, B_COLOR));
    }
    egui::Grid::new("charts")
        .num_columns(3)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            for (i, (name, lines)) in charts.into_iter().enumerate() {
                let y_max = lines
                    .iter()
                    .flat_map(|(_, v, _)| v.iter().map(|p| p[1]))
                    .fold(0.0f64, f64::max);
                // An all-zero series gets a 0–1 axis (not one scaled to rounding noise).
                let y_max = if y_max > 0.0 { y_max } else { 1.0 };
                ui.vertical(|ui| {
                    ui.label(egui::RichText::new(name).small());
                    Plot::new(("chart", i))
                        .width(w)
                        .height(h)
                        .legend(
                            Legend::default()
                                .position(Corner::LeftTop)
                                .text_style(egui::TextStyle::Small)
                                .background_alpha(0.6),
                        )
                        .allow_scroll(false)
                        .include_y(0.0)
                        .include_y(y_max)
                        // Every chart spans the same time, whatever its series holds.
                        .include_x(0.0)
                        .include_x(x_max)
                        // Seconds are short labels: show them from 25 px apart (egui_plot
                        // waits for 60, which hides every label of a 60-s chart this wide).
                        .custom_x_axes(vec![
                            AxisHints::new_x().label("s").label_spacing(25.0..=40.0),
                        ])
                        // Likewise up the side: with egui_plot's powers of ten 60 px apart
                        // a chart this short labelled only its 0 (a queue of 500 had marks
                        // at 100s, too close, or 1000s, off the chart). Steps of 1, 2 or 5
                        // that put about three labels up the side.
                        .y_grid_spacer(uniform_grid_spacer(|input: GridInput| {
                            y_steps(input.bounds)
                        }))
                        .custom_y_axes(vec![
                            AxisHints::new_y()
                                .label_spacing(12.0..=20.0)
                                .formatter(|mark, _| y_label(mark.value, mark.step_size)),
                        ])
                        .show(ui, |plot| {
                            for (start, end, _label) in faults {
                                // Unnamed: shading stays out of the legend.
                                let poly = Polygon::new(
                                    "",
                                    PlotPoints::new(vec![
                                        [*start, 0.0],
                                        [*end, 0.0],
                                        [*end, y_max * 1.05],
                                        [*start, y_max * 1.05],
                                    ]),
                                )
                                .fill_color(Color32::from_rgba_unmultiplied(215, 48, 58, 55))
                                .stroke(egui::Stroke::NONE);
                                plot.polygon(poly);
                            }
                            for (label, points, color) in lines {
                                plot.line(
                                    Line::new(label, PlotPoints::new(points.clone())).color(color),
                                );
                            }
                        });
                });
                if i % 3 == 2 {
                    ui.end_row();
                }
            }
        });
}

/// Grid steps up a chart's side for the visible range `bounds`: the labelled step is the
/// smallest 1, 2 or 5 × 10^k that is at least a third of the range, with faint lines at a
/// fifth of it and a coarse step five times it.
pub fn y_steps(bounds: (f64, f64)) -> [f64; 3] {
    let range = bounds.1 - bounds.0;
    let third = if range.is_finite() && range > 0.0 {
        range / 3.0
    } else {
        1.0
    };
    let unit = 10f64.powf(third.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * unit)
        .find(|&s| s >= third * (1.0 - 1e-9))
        .unwrap_or(10.0 * unit);
    [step / 5.0, step, step * 5.0]
}

/// A label up the side: as many decimals as the step needs (egui_plot rounds the decimals
/// of a 0.5 step to none, so 0.5 read "0").
pub fn y_label(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).max(0.0) as usize
    } else {
        0
    };
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_interval_with_nothing_resolved_has_no_failure_share() {
        let idle = NodeCounters {
            offered_first: 40,
            ..Default::default()
        };
        assert_eq!(failure_share(&idle, true), None);
        assert_eq!(failure_share(&idle, false), None);
        let half = NodeCounters {
            succeeded: 5,
            goodput: 5,
            cancelled: 5,
            ..Default::default()
        };
        assert_eq!(failure_share(&half, true), Some(0.5));
    }

    use super::*;

    #[test]
    fn the_latency_chart_says_what_its_percentiles_are_of() {
        assert_eq!(
            latency_title(&ChartSubject::System),
            "latency of successes (ms)"
        );
        assert_eq!(
            latency_title(&ChartSubject::Source(0, "users".into())),
            "latency of successes (ms)"
        );
        assert_eq!(
            latency_title(&ChartSubject::Service(0, "db".into())),
            "residence, all completions (ms)"
        );
    }

    #[test]
    fn the_error_chart_says_what_its_share_counts() {
        assert_eq!(
            errors_title(&ChartSubject::System),
            "failed requests (share)"
        );
        assert_eq!(
            errors_title(&ChartSubject::Service(0, "store".into())),
            "failed or orphaned (share)"
        );
    }

    #[test]
    fn side_labels_keep_the_decimals_their_step_needs() {
        assert_eq!(y_label(0.5, 0.5), "0.5");
        assert_eq!(y_label(1.0, 0.5), "1.0");
        assert_eq!(y_label(0.2, 0.1), "0.2");
        assert_eq!(y_label(400.0, 200.0), "400");
        assert_eq!(y_label(5000.0, 5000.0), "5000");
        assert_eq!(y_label(0.0, 0.0), "0");
    }

    #[test]
    fn about_three_labels_go_up_the_side_of_a_chart() {
        // A queue of about 500 (the visible range has a margin): labels every 200.
        assert_eq!(y_steps((-25.0, 525.0))[1], 200.0);
        // 7,000 retries a second: every 5,000 (two labels; 2,000 would give four).
        assert_eq!(y_steps((0.0, 7350.0))[1], 5000.0);
        assert_eq!(y_steps((0.0, 1.05))[1], 0.5);
        assert_eq!(y_steps((0.0, 300.0))[1], 100.0);
        assert_eq!(
            y_steps((0.0, 0.0))[1],
            1.0,
            "an empty range still has a step"
        );
        assert_eq!(y_steps((0.0, f64::NAN))[1], 1.0);
    }
    use cascade_sim::metrics::{EdgeCounters, EdgeRow, Health, NodeRow, SystemRow};

    #[test]
    fn retries_received_and_sent_come_from_the_node_and_its_outgoing_links() {
        // One service receiving 3 retries a second and calling over link 1 (7 retries a
        // second); link 0 (5 a second) belongs to someone else.
        let mut h = MetricsHistory::default();
        let node = |k| NodeRow {
            interval: k,
            counters: NodeCounters {
                offered_retry: 3,
                ..Default::default()
            },
            latency_ms: [0.0; 4],
            live_instances: 1,
            health: Health::Healthy,
            gauges: Default::default(),
        };
        let edge = |k, retries| EdgeRow {
            interval: k,
            counters: EdgeCounters {
                retries,
                ..Default::default()
            },
        };
        h.services.push((0..2).map(node).collect());
        h.edges.push((0..2).map(|k| edge(k, 5)).collect());
        h.edges.push((0..2).map(|k| edge(k, 7)).collect());
        h.system = vec![SystemRow::default(); 2];
        let mut s = Series::default();
        s.update(&h, &ChartSubject::Service(0, "api".into()), || vec![1]);
        assert_eq!(s.retries, vec![[1.0, 3.0], [2.0, 3.0]]);
        assert_eq!(s.retries_sent, vec![[1.0, 7.0], [2.0, 7.0]]);
        assert!(s.p99.is_empty(), "nothing completed: no latency points");
    }

    #[test]
    fn intervals_without_completions_have_no_latency_point() {
        let mut h = MetricsHistory::default();
        let row = |k: u32, p99: f64| NodeRow {
            interval: k,
            counters: NodeCounters::default(),
            latency_ms: [p99 / 2.0, p99 / 1.5, p99, p99],
            live_instances: 1,
            health: Health::Healthy,
            gauges: Default::default(),
        };
        h.services
            .push([row(0, 10.0), row(1, 0.0), row(2, 30.0)].into());
        h.system = vec![SystemRow::default(); 3];
        let mut s = Series::default();
        s.update(&h, &ChartSubject::Service(0, "db".into()), Vec::new);
        assert_eq!(s.p99, vec![[1.0, 10.0], [3.0, 30.0]]);
    }
}
