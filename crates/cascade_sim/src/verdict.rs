//! The run verdict: `stable`, `recovered` (with seconds to recover), `metastable` or `down`.
//!
//! The rule (also in docs/model.md), on the per-interval system series (goodput / new client
//! requests over all sources):
//!
//! * an interval is **healthy** when the success ratio over the `smooth_s` (5 s) centred on it
//!   is at least `healthy_ratio` (0.9) — smoothing keeps one unlucky second of a busy but
//!   stable queue from counting as an outage; the first interval is a warm-up (its late
//!   arrivals complete in the next) and counts as healthy;
//! * the **trigger** is every interval in which a fault or a load spike was active; it *ends*
//!   with the last such interval;
//! * the **final window** is the last `judge_window_s` (30 s) of the run.
//!
//! Then: never unhealthy → `stable`. Final window all healthy → `recovered`, recovery time =
//! start of the final healthy streak − end of the trigger (0 if it healed while the trigger
//! was still on). Final window unhealthy and the trigger ended before the window began →
//! `metastable`, naming what sustains it. Otherwise (trigger still on, or no trigger at all:
//! plain overload) → `down`.
//!
//! Pure functions over [`SystemRow`]s and node rows; `SimPlugin` keeps a live [`LiveVerdict`].

use bevy_ecs::prelude::*;
use serde::Serialize;

use crate::metrics::{Gauges, MetricsHistory, NodeCounters, SourcePoint, SystemRow};
use crate::scenario::{VerdictKind, VerdictSettings, VerdictSources};

/// A verdict with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The class.
    pub kind: VerdictKind,
    /// For `recovered`: seconds from the end of the trigger to the final healthy streak.
    pub recovery_seconds: Option<f64>,
    /// For `metastable`: what keeps it in the bad state, most important first.
    pub sustained_by: Vec<String>,
    /// Mean success ratio over the final window.
    pub final_success_ratio: f64,
    /// Time the trigger ended, s (`None`: still active at the end, or there was none).
    pub trigger_end_s: Option<f64>,
}

/// Judges a run from its system rows. `interval_s` is the metrics interval; `window` holds
/// each service's counters over the final window (named), used to explain a metastable state.
pub fn judge(
    series: Series<'_>,
    interval_s: f64,
    settings: &VerdictSettings,
    window: &[ServiceWindow],
) -> Verdict {
    judge_with(
        series,
        interval_s,
        settings,
        window,
        &healthy_intervals(series, interval_s, settings),
    )
}

/// What the verdict reads: the system series and each source's own (the latter only when
/// `verdict.sources` is `Each`).
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// One row per interval.
    pub system: &'a [SystemRow],
    /// Each source's points, one per interval (at most as many as the system rows).
    pub sources: &'a [Vec<SourcePoint>],
}

impl<'a> Series<'a> {
    /// The series of a history.
    pub fn of(history: &'a MetricsHistory) -> Self {
        Series {
            system: &history.system,
            sources: &history.source_series,
        }
    }

    /// The success ratio over intervals `from..to` (1 when nothing was offered): of all
    /// sources pooled, or the lowest of the sources' that offered at least
    /// `min_source_requests` new requests in it (pooled when none did).
    fn ratio(&self, settings: &VerdictSettings, from: usize, to: usize) -> f64 {
        let ratio = |(o, g): (u64, u64)| if o == 0 { 1.0 } else { g as f64 / o as f64 };
        let pooled = || {
            ratio(
                self.system[from..to]
                    .iter()
                    .fold((0, 0), |(o, g), r| (o + r.offered, g + r.goodput)),
            )
        };
        match settings.sources {
            VerdictSources::Pooled => pooled(),
            VerdictSources::Each => self
                .sources
                .iter()
                .filter_map(|points| source_ratio(points, settings, from, to))
                .reduce(f64::min)
                .unwrap_or_else(pooled),
        }
    }
}

/// One source's success ratio over intervals `from..to` of its `points`, when it offered at
/// least `min_source_requests` new requests there (fewer say too little to judge).
pub fn source_ratio(
    points: &[SourcePoint],
    settings: &VerdictSettings,
    from: usize,
    to: usize,
) -> Option<f64> {
    let (from, to) = (from.min(points.len()), to.min(points.len()));
    let (offered, goodput) = points[from..to]
        .iter()
        .fold((0u64, 0u64), |(o, g), p| (o + p.offered, g + p.goodput));
    (offered >= settings.min_source_requests.max(1)).then(|| goodput as f64 / offered as f64)
}

/// Intervals in the final judging window of a run of `n` intervals (at least 1, at most `n`).
pub fn final_window_len(n: usize, interval_s: f64, settings: &VerdictSettings) -> usize {
    ((settings.judge_window_s / interval_s).round() as usize).clamp(1, n.max(1))
}

/// [`judge`] with each interval's health already known (`healthy_at`, as
/// [`healthy_intervals`] gives it, for instance from a [`HealthSeries`]).
pub fn judge_with(
    series: Series<'_>,
    interval_s: f64,
    settings: &VerdictSettings,
    window: &[ServiceWindow],
    healthy_at: &[bool],
) -> Verdict {
    let rows = series.system;
    let n = rows.len();
    debug_assert_eq!(healthy_at.len(), n);
    let window_len = final_window_len(n, interval_s, settings);
    let final_rows = &rows[n.saturating_sub(window_len)..];
    let final_ratio = series.ratio(settings, n - final_rows.len(), n);
    let last_trigger = rows.iter().rposition(|r| r.trigger_active);
    let trigger_end_s = last_trigger
        .filter(|&i| i + 1 < n)
        .map(|i| (i + 1) as f64 * interval_s);
    let base = Verdict {
        kind: VerdictKind::Stable,
        recovery_seconds: None,
        sustained_by: Vec::new(),
        final_success_ratio: final_ratio,
        trigger_end_s,
    };

    if healthy_at.iter().all(|&h| h) {
        return base;
    }
    if healthy_at[n - final_rows.len()..].iter().all(|&h| h) {
        let streak_start = healthy_at.iter().rposition(|&h| !h).map_or(0, |i| i + 1);
        let trigger_end = last_trigger.map_or(0, |i| i + 1);
        let recovery = streak_start.saturating_sub(trigger_end) as f64 * interval_s;
        return Verdict {
            kind: VerdictKind::Recovered,
            recovery_seconds: Some(recovery),
            ..base
        };
    }
    let trigger_over_before_window = match last_trigger {
        Some(i) => i < n - final_rows.len(),
        None => false,
    };
    if trigger_over_before_window {
        Verdict {
            kind: VerdictKind::Metastable,
            sustained_by: sustaining_effects(window),
            ..base
        }
    } else {
        Verdict {
            kind: VerdictKind::Down,
            ..base
        }
    }
}

/// The judging window of a run in progress, in seconds (the live verdict). With no trigger,
/// or a trigger still on, it is the scenario's window. After a trigger it is the evidence
/// since then: the trailing streak of intervals with the latest health, once that streak
/// spans the smoothing window (so a system back to health for `smooth_s` reads `recovered`,
/// one unhealthy since the trigger ended reads `metastable`); while the streak is shorter the
/// window reaches back over the trigger, which reads `down` (the outcome is not settled yet).
pub fn live_window_s(series: Series<'_>, interval_s: f64, settings: &VerdictSettings) -> f64 {
    live_window_s_with(
        series.system,
        interval_s,
        settings,
        &healthy_intervals(series, interval_s, settings),
    )
}

/// [`live_window_s`] with each interval's health already known.
pub fn live_window_s_with(
    rows: &[SystemRow],
    interval_s: f64,
    settings: &VerdictSettings,
    healthy: &[bool],
) -> f64 {
    let n = rows.len();
    let Some(last_trigger) = rows.iter().rposition(|r| r.trigger_active) else {
        return settings.judge_window_s;
    };
    let since = n - (last_trigger + 1);
    if since == 0 {
        return settings.judge_window_s;
    }
    let latest = healthy[n - 1];
    // Only intervals after the trigger count as evidence.
    let streak = healthy
        .iter()
        .rev()
        .take(since)
        .take_while(|&&h| h == latest)
        .count();
    let smooth = ((settings.smooth_s / interval_s).round() as usize).max(1);
    let window = if streak >= smooth { streak } else { since + 1 };
    settings.judge_window_s.min(window as f64 * interval_s)
}

/// Whether each interval is healthy: the success ratio over the smoothing window centred on
/// it reaches `healthy_ratio`, or nothing was offered. The window is cut at the ends of the
/// run and at the end of the last trigger: an interval after it is judged on evidence after
/// it only (the outage's last seconds do not make a system that is already well look ill),
/// an interval before it on evidence before it.
pub fn healthy_intervals(
    series: Series<'_>,
    interval_s: f64,
    settings: &VerdictSettings,
) -> Vec<bool> {
    let n = series.system.len();
    let half = smoothing_half(n, interval_s, settings);
    let after_trigger = after_last_trigger(series.system);
    (0..n)
        .map(|i| healthy_at(series, i, half, after_trigger, settings))
        .collect()
}

/// Intervals each side of the centre in the smoothing window.
fn smoothing_half(n: usize, interval_s: f64, settings: &VerdictSettings) -> usize {
    ((settings.smooth_s / interval_s / 2.0).floor() as usize).min(n)
}

/// The first interval after the last one with a trigger.
fn after_last_trigger(rows: &[SystemRow]) -> Option<usize> {
    rows.iter().rposition(|r| r.trigger_active).map(|i| i + 1)
}

/// Whether interval `i` is healthy (see [`healthy_intervals`]).
fn healthy_at(
    series: Series<'_>,
    i: usize,
    half: usize,
    after_trigger: Option<usize>,
    settings: &VerdictSettings,
) -> bool {
    // The first interval is a warm-up: requests that arrived late in it complete in the next,
    // so its success ratio is biased low by up to (latency / interval).
    if i == 0 {
        return true;
    }
    let (mut from, mut to) = (
        i.saturating_sub(half),
        (i + half + 1).min(series.system.len()),
    );
    match after_trigger {
        Some(t) if i >= t => from = from.max(t),
        Some(t) => to = to.min(t),
        None => {}
    }
    series.ratio(settings, from, to) >= settings.healthy_ratio
}

/// [`healthy_intervals`] kept up to date as intervals close, recomputing only the intervals
/// whose smoothing window changed: the last few (their windows take in the new rows) and
/// those next to the end of the last trigger, old and new. So judging at every close costs
/// O(smoothing) instead of O(run).
#[derive(Clone, Debug, Default)]
pub struct HealthSeries {
    flags: Vec<bool>,
    half: usize,
    settings: VerdictSettings,
    after_trigger: Option<usize>,
}

impl HealthSeries {
    /// The health of every interval of `rows`, which extend the rows of the last call (or
    /// start over: fewer rows or other settings recompute everything).
    pub fn update(
        &mut self,
        series: Series<'_>,
        interval_s: f64,
        settings: &VerdictSettings,
    ) -> &[bool] {
        let n = series.system.len();
        let half = smoothing_half(n, interval_s, settings);
        let after_trigger = after_last_trigger(series.system);
        let old = self.flags.len();
        let same_rule = self.settings.healthy_ratio == settings.healthy_ratio
            && self.settings.sources == settings.sources
            && self.settings.min_source_requests == settings.min_source_requests;
        if n < old || half != self.half || !same_rule {
            *self = HealthSeries {
                flags: healthy_intervals(series, interval_s, settings),
                half,
                settings: *settings,
                after_trigger,
            };
            return &self.flags;
        }
        self.flags.resize(n, true);
        let redo = |from: usize, to: usize, flags: &mut [bool]| {
            for (i, flag) in flags.iter_mut().enumerate().take(to).skip(from) {
                *flag = healthy_at(series, i, half, after_trigger, settings);
            }
        };
        // Windows that reach the rows added since the last call (and the rows themselves).
        redo(old.saturating_sub(half + 1), n, &mut self.flags);
        if after_trigger != self.after_trigger {
            for t in [self.after_trigger, after_trigger].into_iter().flatten() {
                redo(t.saturating_sub(half + 1), t + half + 1, &mut self.flags);
            }
            self.after_trigger = after_trigger;
        }
        &self.flags
    }
}

/// One service over the final window: what [`sustaining_effects`] reads.
#[derive(Clone, Debug, Default)]
pub struct ServiceWindow {
    /// Its name.
    pub name: String,
    /// Its counters summed over the window.
    pub counters: NodeCounters,
    /// Its mechanism state at the window's end.
    pub gauges: Gauges,
    /// Its live instances at the window's end.
    pub live_instances: u32,
    /// It is a look-aside cache.
    pub cache: bool,
    /// Mean over the window's intervals of the share of its live instances outside the load
    /// balancer's healthy set (ejected by health checks or outlier ejection), at each close.
    pub ejected_share: f64,
    /// Mean over the window's intervals of the share of its instances starting or
    /// restarting (of those live or starting), at each close.
    pub starting_share: f64,
    /// Mean over the window's intervals of its callers' open circuit breakers, at each close.
    pub breakers_open_mean: f64,
    /// Its work-queue backlog at the close of the window's first interval.
    pub backlog_start: u64,
}

/// What keeps a system in its bad state, from each service over the final window: retry
/// amplification, orphaned work, rejections, contention (own work slowed by concurrency),
/// ejected capacity and instances starting (restarts, provisioning), each at the service
/// where it is strongest;
/// caches still cold and latched instances at the end, each where it is worst; then
/// failovers in force, breakers held open and work-queue backlogs that do not drain, at every
/// service where they are; strongest first.
pub fn sustaining_effects(window: &[ServiceWindow]) -> Vec<String> {
    let busiest = |f: &dyn Fn(&NodeCounters) -> f64| {
        window
            .iter()
            .filter(|w| w.counters.offered() >= 10)
            .map(|w| (f(&w.counters), w.name.as_str()))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let mut effects: Vec<(f64, String)> = Vec::new();
    if let Some((amp, name)) =
        busiest(&|c: &NodeCounters| c.offered() as f64 / c.offered_first.max(1) as f64)
        && amp >= 1.5
    {
        effects.push((
            amp,
            format!("retry amplification at {name} ({amp:.1}× attempts per first attempt)"),
        ));
    }
    if let Some((orphaned, name)) = busiest(&NodeCounters::orphaned_ratio)
        && orphaned >= 0.3
    {
        effects.push((1.0 + 2.0 * orphaned, format!("orphaned work at {name} ({:.0}% of its completed work was for callers that had given up)", orphaned * 100.0)));
    }
    if let Some((rejected, name)) = busiest(&NodeCounters::rejected_ratio)
        && rejected >= 0.3
    {
        effects.push((
            1.0 + rejected,
            format!(
                "rejections at {name} ({:.0}% of attempts turned away)",
                rejected * 100.0
            ),
        ));
    }
    // Own work slowed by concurrency (thrashing): the pool completes fewer than arrive.
    if let Some((slowdown, name)) = busiest(&|c: &NodeCounters| c.mean_slowdown().unwrap_or(1.0))
        && slowdown >= 1.5
    {
        effects.push((
            slowdown,
            format!(
                "contention at {name} (own work {slowdown:.1}× slower than alone, under its load)"
            ),
        ));
    }
    // The service where a share of its instances is largest over the window, when at least a
    // quarter: less is a passing flap, not what holds the system down.
    let most_out = |share: &dyn Fn(&ServiceWindow) -> f64| {
        window
            .iter()
            .map(|w| (share(w), w.name.as_str()))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .filter(|(s, _)| *s >= 0.25)
    };
    // Health checks or outlier ejection keep capacity out of rotation (a death spiral: the
    // instances left take the load of those ejected and fail in turn).
    if let Some((share, name)) = most_out(&|w| w.ejected_share) {
        effects.push((
            1.0 + share,
            format!(
                "ejected capacity at {name} ({:.0}% of its live instances out of rotation on average)",
                share * 100.0
            ),
        ));
    }
    // Instances that keep restarting (a crash loop), or are still being provisioned, serve
    // nothing while they start.
    if let Some((share, name)) = most_out(&|w| w.starting_share) {
        effects.push((
            1.0 + share,
            format!(
                "instances starting at {name} ({:.0}% of them restarting or being provisioned on average)",
                share * 100.0
            ),
        ));
    }
    // A cache that stays cold sends every request to its backend: the load step of losing it
    // (1/(1 − hit ratio)) persists.
    if let Some(w) = window
        .iter()
        .filter(|w| w.cache && w.counters.offered() >= 10 && w.gauges.cache_warmth < 0.5)
        .min_by(|a, b| a.gauges.cache_warmth.total_cmp(&b.gauges.cache_warmth))
    {
        let warmth = w.gauges.cache_warmth;
        effects.push((
            2.0 - warmth,
            format!(
                "a cold cache at {} ({:.0}% of keys cached)",
                w.name,
                warmth * 100.0
            ),
        ));
    }
    // Latched instances stay down until someone resets them.
    if let Some((share, w)) = window
        .iter()
        .filter(|w| w.gauges.latched_instances > 0)
        .map(|w| {
            let latched = f64::from(w.gauges.latched_instances);
            (latched / (latched + f64::from(w.live_instances)), w)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
    {
        effects.push((
            1.0 + share,
            format!(
                "latched instances at {} ({} down until reset)",
                w.name, w.gauges.latched_instances
            ),
        ));
    }
    // What mechanisms hold in place, named after the effects above (they measure no
    // strength of their own): a failover to a replica (no fail-back: every request pays the
    // replica's distance), callers' breakers open through the window (their probes keep
    // failing), a work-queue backlog that did not shrink over the window.
    for w in window {
        if w.gauges.failed_over {
            effects.push((
                1.0,
                format!(
                    "a failover at {} (its callers reach its replica; there is no fail-back)",
                    w.name
                ),
            ));
        }
        if w.gauges.breakers_open > 0 && w.breakers_open_mean >= 1.0 {
            effects.push((
                1.0,
                format!(
                    "breakers held open on calls to {} ({:.1} open on average)",
                    w.name, w.breakers_open_mean
                ),
            ));
        }
        let backlog = w.gauges.queue_backlog;
        if backlog >= 100 && backlog >= w.backlog_start {
            effects.push((
                1.0,
                format!(
                    "a work-queue backlog at {} ({backlog} items, not draining)",
                    w.name
                ),
            ));
        }
    }
    // Stable: effects of equal strength keep the order above (services in file order).
    effects.sort_by(|a, b| b.0.total_cmp(&a.0));
    effects.into_iter().map(|(_, s)| s).collect()
}

/// Each live service over the last `intervals` closed intervals: its counters summed, its
/// gauges and live instances at the end. `names` gives each service's name, whether a live
/// edit removed it, and whether it is a cache.
pub fn window_counters(
    history: &MetricsHistory,
    names: &[(String, bool, bool)],
    intervals: u32,
) -> Vec<ServiceWindow> {
    let end = history.intervals();
    let start = end.saturating_sub(intervals);
    history
        .services
        .iter()
        .zip(names)
        .filter(|(_, (_, removed, _))| !removed)
        .map(|(ring, (name, _, cache))| {
            let mut w = ServiceWindow {
                name: name.clone(),
                cache: *cache,
                ..ServiceWindow::default()
            };
            let (mut ejected, mut starting, mut breakers, mut rows) = (0.0, 0.0, 0.0, 0u32);
            for k in start..end {
                if let Some(row) = MetricsHistory::row_at(ring, k) {
                    if rows == 0 {
                        w.backlog_start = row.gauges.queue_backlog;
                    }
                    breakers += f64::from(row.gauges.breakers_open);
                    w.counters.add(&row.counters);
                    w.gauges = row.gauges;
                    w.live_instances = row.live_instances;
                    let (live, g) = (row.live_instances, &row.gauges);
                    if live > 0 {
                        ejected +=
                            f64::from(live.saturating_sub(g.healthy_instances)) / f64::from(live);
                    }
                    let present = live + g.starting_instances;
                    if present > 0 {
                        starting += f64::from(g.starting_instances) / f64::from(present);
                    }
                    rows += 1;
                }
            }
            if rows > 0 {
                w.ejected_share = ejected / f64::from(rows);
                w.starting_share = starting / f64::from(rows);
                w.breakers_open_mean = breakers / f64::from(rows);
            }
            w
        })
        .collect()
}

/// The verdict of the run so far, updated at every interval close (with the live window of
/// `summary::current_verdict`).
#[derive(Resource, Debug, Clone, Default)]
pub struct LiveVerdict {
    /// Current verdict (None before the first interval closes).
    pub verdict: Option<Verdict>,
    /// Intervals judged.
    pub intervals: u32,
    /// Health of every closed interval, kept up to date as intervals close.
    pub health: HealthSeries,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(ratios: &[(f64, bool)]) -> Vec<SystemRow> {
        ratios
            .iter()
            .enumerate()
            .map(|(i, &(r, trig))| SystemRow {
                interval: i as u32,
                offered: 100,
                goodput: (r * 100.0) as u64,
                hops: 0,
                trigger_active: trig,
            })
            .collect()
    }

    /// Rows judged with every source pooled (no per-source series).
    fn pooled(rows: &[SystemRow]) -> Series<'_> {
        Series {
            system: rows,
            sources: &[],
        }
    }

    fn settings() -> VerdictSettings {
        VerdictSettings {
            healthy_ratio: 0.9,
            judge_window_s: 3.0,
            smooth_s: 1.0,
            sources: VerdictSources::Pooled,
            min_source_requests: 50,
        }
    }

    #[test]
    fn judged_each_on_its_own_a_small_source_that_stays_down_is_metastable() {
        // A large source (1,000/s) always served; a small one (20/s) served until a 3-s
        // trigger, then never again. Pooled, the worst interval is 1,000 / 1,020 = 0.980 ≥
        // 0.9: stable. Each on its own, the small source is unhealthy from the trigger on, and
        // the trigger is over before the final window: metastable, at the small one's ratio.
        let n = 20;
        let trigger = 5..8;
        let large: Vec<SourcePoint> = (0..n)
            .map(|_| SourcePoint {
                offered: 1000,
                goodput: 1000,
            })
            .collect();
        let small: Vec<SourcePoint> = (0..n)
            .map(|i| SourcePoint {
                offered: 20,
                goodput: if i < trigger.start { 20 } else { 0 },
            })
            .collect();
        let system: Vec<SystemRow> = (0..n)
            .map(|i| SystemRow {
                interval: i as u32,
                offered: 1020,
                goodput: large[i].goodput + small[i].goodput,
                hops: 0,
                trigger_active: trigger.contains(&i),
            })
            .collect();
        let sources = [large, small];
        let both = Series {
            system: &system,
            sources: &sources,
        };
        let mut s = VerdictSettings {
            judge_window_s: 5.0,
            ..VerdictSettings::default()
        };
        let pooled = judge(both, 1.0, &s, &[]);
        assert_eq!(pooled.kind, VerdictKind::Stable);
        assert!((pooled.final_success_ratio - 1000.0 / 1020.0).abs() < 1e-12);
        s.sources = VerdictSources::Each;
        let each = judge(both, 1.0, &s, &[]);
        assert_eq!(each.kind, VerdictKind::Metastable);
        assert_eq!(each.final_success_ratio, 0.0);
        // Healthy until the smoothing window (5 s, centred) reaches the first failed interval.
        let healthy = healthy_intervals(both, 1.0, &s);
        assert_eq!(healthy.iter().position(|&h| !h), Some(3));
        // A source that sends nothing in a window, or too little to judge, does not count.
        let mut quiet = sources.clone();
        for p in &mut quiet[1][trigger.start..] {
            *p = SourcePoint::default();
        }
        let quiet = Series {
            system: &system,
            sources: &quiet,
        };
        assert_eq!(judge(quiet, 1.0, &s, &[]).kind, VerdictKind::Stable);
        // 3 requests a second, all failing: 15 in a 5-s window, fewer than the 50 judged. The
        // windows that still hold busy seconds from before are judged (interval 4: 60 of 66,
        // 0.909), the later ones not: stable.
        let mut sparse = sources.clone();
        for p in &mut sparse[1][trigger.start..] {
            *p = SourcePoint {
                offered: 3,
                goodput: 0,
            };
        }
        let sparse_series = Series {
            system: &system,
            sources: &sparse,
        };
        assert_eq!(judge(sparse_series, 1.0, &s, &[]).kind, VerdictKind::Stable);
        s.min_source_requests = 15;
        assert_eq!(
            judge(sparse_series, 1.0, &s, &[]).kind,
            VerdictKind::Metastable
        );
    }

    #[test]
    fn never_unhealthy_is_stable() {
        let rows = series(&[(1.0, false), (0.95, true), (1.0, false), (1.0, false)]);
        assert_eq!(
            judge(pooled(&rows), 1.0, &settings(), &[]).kind,
            VerdictKind::Stable
        );
    }

    #[test]
    fn healthy_final_window_is_recovered_with_time_from_trigger_end() {
        let rows = series(&[
            (1.0, false),
            (0.2, true),
            (0.2, false),
            (0.5, false),
            (1.0, false),
            (1.0, false),
            (1.0, false),
        ]);
        let v = judge(pooled(&rows), 1.0, &settings(), &[]);
        assert_eq!(v.kind, VerdictKind::Recovered);
        // Trigger ends at t = 2 s; healthy from t = 4 s.
        assert_eq!(v.recovery_seconds, Some(2.0));
    }

    #[test]
    fn a_system_well_the_moment_its_trigger_ends_is_judged_on_what_follows() {
        // Smoothed over 5 s, the 10-s final window begins as the trigger ends. Its first two
        // intervals would average in the outage's last two and read unhealthy (a `metastable`
        // verdict for a system that was well at once); cut at the trigger's end they do not.
        let mut ratios = vec![(1.0, false); 5];
        ratios.extend(vec![(0.1, true); 5]);
        ratios.extend(vec![(1.0, false); 10]);
        let rows = series(&ratios);
        let settings = VerdictSettings {
            healthy_ratio: 0.9,
            judge_window_s: 10.0,
            smooth_s: 5.0,
            sources: VerdictSources::Pooled,
            min_source_requests: 50,
        };
        let v = judge(pooled(&rows), 1.0, &settings, &[]);
        assert_eq!(v.kind, VerdictKind::Recovered);
        assert_eq!(v.recovery_seconds, Some(0.0));
        // The outage's own intervals are still judged with their neighbours before the end:
        // the last healthy one before it averages in two bad seconds.
        let healthy = healthy_intervals(pooled(&rows), 1.0, &settings);
        assert_eq!(&healthy[3..6], &[false, false, false]);
    }

    #[test]
    fn one_unlucky_second_does_not_reset_recovery_when_smoothed() {
        let mut ratios = vec![(1.0, false); 5];
        ratios.extend([
            (0.1, true),
            (0.1, false),
            (1.0, false),
            (1.0, false),
            (1.0, false),
            (0.6, false),
        ]);
        ratios.extend(vec![(1.0, false); 10]);
        let rows = series(&ratios);
        let smooth = VerdictSettings {
            healthy_ratio: 0.9,
            judge_window_s: 5.0,
            smooth_s: 5.0,
            sources: VerdictSources::Pooled,
            min_source_requests: 50,
        };
        let v = judge(pooled(&rows), 1.0, &smooth, &[]);
        assert_eq!(v.kind, VerdictKind::Recovered);
        // Trigger ends at 6 s; the 5-s mean is healthy from the interval starting at 9 s.
        assert_eq!(
            v.recovery_seconds,
            Some(3.0),
            "the dip at 10 s averages out"
        );
    }

    #[test]
    fn unhealthy_after_the_trigger_ended_is_metastable() {
        let rows = series(&[
            (1.0, false),
            (0.2, true),
            (0.1, false),
            (0.1, false),
            (0.1, false),
            (0.1, false),
        ]);
        let window = vec![ServiceWindow {
            name: "db".to_owned(),
            counters: NodeCounters {
                offered_first: 100,
                offered_retry: 200,
                ..Default::default()
            },
            ..ServiceWindow::default()
        }];
        let v = judge(pooled(&rows), 1.0, &settings(), &window);
        assert_eq!(v.kind, VerdictKind::Metastable);
        assert!(
            v.sustained_by[0].starts_with("retry amplification at db (3.0×"),
            "{:?}",
            v.sustained_by
        );
    }

    #[test]
    fn a_cold_cache_and_latched_instances_are_named_where_they_are_worst() {
        let service =
            |name: &str, cache: bool, warmth: f64, latched: u32, live: u32| ServiceWindow {
                name: name.to_owned(),
                counters: NodeCounters {
                    offered_first: 100,
                    ..Default::default()
                },
                gauges: Gauges {
                    cache_warmth: warmth,
                    latched_instances: latched,
                    ..Gauges::default()
                },
                live_instances: live,
                cache,
                ..ServiceWindow::default()
            };
        let effects = sustaining_effects(&[
            service("sessions", true, 0.4, 0, 2),
            service("pages", true, 0.03, 0, 2),
            service("warm", true, 0.9, 0, 2),
            service("api", false, 0.0, 1, 3),
        ]);
        assert_eq!(
            effects,
            [
                "a cold cache at pages (3% of keys cached)",
                "latched instances at api (1 down until reset)",
            ]
        );
        // Not a cache (warmth is 0 for every other service), or warm enough: nothing.
        assert!(sustaining_effects(&[service("db", false, 0.0, 0, 1)]).is_empty());
        assert!(sustaining_effects(&[service("c", true, 0.6, 0, 1)]).is_empty());
    }

    #[test]
    fn failovers_open_breakers_and_growing_backlogs_are_named_after_the_measured_effects() {
        let service =
            |name: &str, gauges: Gauges, breakers_mean: f64, backlog_start: u64| ServiceWindow {
                name: name.to_owned(),
                gauges,
                breakers_open_mean: breakers_mean,
                backlog_start,
                ..ServiceWindow::default()
            };
        let backlog = |n: u64| Gauges {
            queue_backlog: n,
            ..Gauges::default()
        };
        let breakers = |n: u32| Gauges {
            breakers_open: n,
            ..Gauges::default()
        };
        let failed_over = Gauges {
            failed_over: true,
            ..Gauges::default()
        };
        let effects = sustaining_effects(&[
            service("db", failed_over, 0.0, 0),
            service("inventory", breakers(2), 1.6, 0),
            service("hooks", backlog(5_000), 0.0, 4_000),
            service("quiet", Gauges::default(), 0.0, 0),
            ServiceWindow {
                starting_share: 0.5,
                ..service("api", Gauges::default(), 0.0, 0)
            },
        ]);
        assert_eq!(
            effects,
            [
                "instances starting at api (50% of them restarting or being provisioned on average)",
                "a failover at db (its callers reach its replica; there is no fail-back)",
                "breakers held open on calls to inventory (1.6 open on average)",
                "a work-queue backlog at hooks (5000 items, not draining)",
            ]
        );
        // A backlog that drains, a breaker that closed by the end or was open for less than
        // one breaker's worth of the window, a small backlog: nothing.
        let quiet = sustaining_effects(&[
            service("hooks", backlog(5_000), 0.0, 9_000),
            service("a", Gauges::default(), 3.0, 0),
            service("b", breakers(1), 0.5, 0),
            service("c", backlog(99), 0.0, 0),
        ]);
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    #[test]
    fn ejected_capacity_and_restarts_are_named_from_their_window_means() {
        let service = |name: &str, ejected: f64, restarting: f64| ServiceWindow {
            name: name.to_owned(),
            ejected_share: ejected,
            starting_share: restarting,
            ..ServiceWindow::default()
        };
        let effects = sustaining_effects(&[
            service("web", 0.3, 0.0),
            service("api", 0.625, 0.1),
            service("worker", 0.0, 0.4),
        ]);
        assert_eq!(
            effects,
            [
                "ejected capacity at api (62% of its live instances out of rotation on average)",
                "instances starting at worker (40% of them restarting or being provisioned on average)",
            ]
        );
        // Below a quarter: a passing flap, not what holds the system down.
        assert!(sustaining_effects(&[service("api", 0.24, 0.24)]).is_empty());
    }

    #[test]
    fn window_means_are_taken_over_the_rows_of_the_window() {
        // Four instances; over the last 4 intervals 0, 2, 4 and 3 of them out of rotation
        // (with 4, 4, 4 and 3 live) and 1 starting in one: means (0 + 0.5 + 1 + 1)/4 = 0.625
        // and (1/4)/4 = 0.0625.
        let mut history = MetricsHistory::new(1_000_000_000, 1);
        history.services.push(Default::default());
        let rows = [(4, 4, 0), (4, 2, 0), (4, 0, 0), (3, 0, 1)];
        for (k, &(live, healthy, starting)) in [(4, 4, 0)].iter().chain(&rows).enumerate() {
            history.services[0].push_back(crate::metrics::NodeRow {
                interval: k as u32,
                counters: NodeCounters::default(),
                latency_ms: [0.0; 4],
                live_instances: live,
                health: crate::metrics::Health::Healthy,
                gauges: Gauges {
                    healthy_instances: healthy,
                    starting_instances: starting,
                    ..Gauges::default()
                },
            });
        }
        history.system.extend((0..5).map(|i| SystemRow {
            interval: i,
            offered: 0,
            goodput: 0,
            hops: 0,
            trigger_active: false,
        }));
        let w = window_counters(&history, &[("api".to_owned(), false, false)], 4);
        assert!(
            (w[0].ejected_share - 0.625).abs() < 1e-12,
            "{}",
            w[0].ejected_share
        );
        assert!((w[0].starting_share - 0.0625).abs() < 1e-12);
    }

    #[test]
    fn the_incremental_health_series_matches_the_full_pass() {
        // Random ratios and triggers, closed one interval at a time: after every close the
        // kept series equals a full recomputation.
        let mut rng = crate::rng::stream(5, "health-series", 0);
        for smooth_s in [1.0, 5.0, 9.0] {
            let settings = VerdictSettings {
                healthy_ratio: 0.9,
                judge_window_s: 10.0,
                smooth_s,
                sources: VerdictSources::Pooled,
                min_source_requests: 50,
            };
            let mut ratios = Vec::new();
            let mut kept = HealthSeries::default();
            for _ in 0..400 {
                let ratio = if crate::rng::chance(&mut rng, 0.2) {
                    0.5
                } else {
                    1.0
                };
                ratios.push((ratio, crate::rng::chance(&mut rng, 0.05)));
                let rows = series(&ratios);
                assert_eq!(
                    kept.update(pooled(&rows), 1.0, &settings),
                    healthy_intervals(pooled(&rows), 1.0, &settings).as_slice(),
                    "after {} intervals, smoothing {smooth_s} s",
                    rows.len()
                );
            }
        }
    }

    #[test]
    fn unhealthy_while_the_trigger_is_on_is_down() {
        let rows = series(&[
            (1.0, false),
            (0.0, true),
            (0.0, true),
            (0.0, true),
            (0.0, true),
        ]);
        assert_eq!(
            judge(pooled(&rows), 1.0, &settings(), &[]).kind,
            VerdictKind::Down
        );
        let overload = series(&[(0.5, false), (0.5, false), (0.5, false)]);
        assert_eq!(
            judge(pooled(&overload), 1.0, &settings(), &[]).kind,
            VerdictKind::Down,
            "no trigger: overload"
        );
    }

    /// The live verdict after each interval of `ratios` (judged with the live window).
    fn live_verdicts(ratios: &[(f64, bool)], settings: &VerdictSettings) -> Vec<VerdictKind> {
        let rows = series(ratios);
        (1..=rows.len())
            .map(|n| {
                let mut s = *settings;
                s.judge_window_s = live_window_s(pooled(&rows[..n]), 1.0, settings);
                judge(pooled(&rows[..n]), 1.0, &s, &[]).kind
            })
            .collect()
    }

    #[test]
    fn a_live_run_that_heals_after_a_transient_reads_down_then_recovered_never_metastable() {
        // Trigger at 5–7 s, the outage outlasts it by 2 s, then health for good: smoothed over
        // 5 s, intervals 3–11 are unhealthy. The live verdict must not call the transient
        // metastable (it used to keep the transient in its window until a full judging window
        // had passed).
        let mut ratios = vec![(1.0, false); 5];
        ratios.extend([(0.1, true), (0.1, true), (0.1, false), (0.1, false)]);
        ratios.extend(vec![(1.0, false); 20]);
        let smooth = VerdictSettings {
            healthy_ratio: 0.9,
            judge_window_s: 30.0,
            smooth_s: 5.0,
            sources: VerdictSources::Pooled,
            min_source_requests: 50,
        };
        let v = live_verdicts(&ratios, &smooth);
        assert!(!v.contains(&VerdictKind::Metastable), "{v:?}");
        assert_eq!(v[6], VerdictKind::Down, "during the trigger");
        assert_eq!(v[10], VerdictKind::Down, "the transient is not settled yet");
        assert_eq!(*v.last().unwrap(), VerdictKind::Recovered);
        let first_recovered = v.iter().position(|k| *k == VerdictKind::Recovered).unwrap();
        assert_eq!(first_recovered, 15, "after 5 healthy intervals (11–15)");
    }

    #[test]
    fn a_live_run_that_stays_down_after_the_trigger_reads_metastable_once_settled() {
        let mut ratios = vec![(1.0, false); 5];
        ratios.extend([(0.1, true), (0.1, true)]);
        ratios.extend(vec![(0.1, false); 20]);
        let smooth = VerdictSettings {
            healthy_ratio: 0.9,
            judge_window_s: 30.0,
            smooth_s: 5.0,
            sources: VerdictSources::Pooled,
            min_source_requests: 50,
        };
        let v = live_verdicts(&ratios, &smooth);
        assert_eq!(
            v[7],
            VerdictKind::Down,
            "1 s after the trigger: not settled"
        );
        // Unhealthy since the trigger ended (interval 7) for a smoothing window: 7–11.
        assert_eq!(v[11], VerdictKind::Metastable, "{v:?}");
        assert_eq!(*v.last().unwrap(), VerdictKind::Metastable);
    }
}
