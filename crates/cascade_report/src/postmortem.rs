//! `report.md`: a run written up as a postmortem — what was simulated, how it ended, the
//! timeline of faults, state changes and actions, charts of the client-facing series, and a
//! table per service and source.
//!
//! Charts are Mermaid `xychart-beta` blocks: text in the Markdown file, drawn by the viewers
//! that render Mermaid (GitHub, GitLab, many editors), readable as numbers elsewhere. Series
//! longer than [`CHART_POINTS`] are merged into that many buckets (sums of counts, so rates and
//! ratios stay exact per bucket; the largest p99 of a bucket).
//!
//! Owns the wording and layout of the report; every figure comes from the run's own
//! [`RunSummary`], [`EventLog`] and [`MetricsHistory`].

use std::fmt::Write as _;

use cascade_sim::events::SimEventKind;
use cascade_sim::metrics::{Health, MetricsHistory, SystemRow};
use cascade_sim::scenario::{Scenario, VerdictKind, VerdictSources};
use cascade_sim::{EventLog, RunSummary};

/// Most points a chart draws.
pub const CHART_POINTS: usize = 120;
/// Most timeline rows; the rest are counted and left to `events.jsonl`.
pub const TIMELINE_ROWS: usize = 80;

/// What the report is made from.
pub struct RunRecord<'a> {
    /// The scenario as it ran (the app's live edits included).
    pub scenario: &'a Scenario,
    /// Its file name, if it has one.
    pub file: Option<&'a str>,
    /// The run's summary.
    pub summary: &'a RunSummary,
    /// Every event of the run.
    pub events: &'a EventLog,
    /// The interval rows.
    pub history: &'a MetricsHistory,
}

/// What a verdict means, in a sentence (docs/model.md, "The verdict").
pub fn verdict_meaning(verdict: VerdictKind) -> &'static str {
    match verdict {
        VerdictKind::Stable => "the clients were served well throughout",
        VerdictKind::Recovered => {
            "the clients were served badly for a while and well again before the end"
        }
        VerdictKind::Metastable => {
            "the clients were still served badly at the end although the trigger had ended \
             before the final judging window: the failure sustains itself"
        }
        VerdictKind::Down => {
            "the clients were served badly at the end, with the trigger still on (or just ended), \
             or under a plain overload"
        }
    }
}

/// "Where it started": the users' failures by origin, the failure path and the wavefront
/// (docs/model.md, "Causality").
fn where_it_started(md: &mut String, c: &cascade_sim::causality::CausalityReport) {
    md.push_str("## Where it started\n\n");
    let _ = writeln!(
        md,
        "Of {} failed client requests, {:.1} % started at **{}**; the failures travelled {}.\n",
        fmt_fig(c.user_failures as f64),
        c.origins
            .iter()
            .find(|o| o.origin == c.root)
            .map_or(0.0, |o| o.share * 100.0),
        cell(&c.root),
        c.failure_path
            .iter()
            .rev()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" → ")
    );
    md.push_str("| origin | failed requests | share |\n|---|--:|--:|\n");
    for o in c.origins.iter().take(8) {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} % |",
            cell(&o.origin),
            fmt_fig(o.failures as f64),
            o.share * 100.0
        );
    }
    md.push_str("\n| reached | degraded from s | failing from s |\n|---|--:|--:|\n");
    for r in &c.blast_radius {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            cell(&r.node),
            fmt_fig(r.first_degraded_s),
            fmt_fig(r.first_failing_s)
        );
    }
    md.push('\n');
}

/// The report as Markdown.
pub fn postmortem_md(run: &RunRecord<'_>) -> String {
    let (scenario, summary) = (run.scenario, run.summary);
    let mut md = String::new();
    let _ = writeln!(md, "# Postmortem: {} (simulated)\n", scenario.name);
    let file = run.file.map_or_else(String::new, |f| format!(" of `{f}`"));
    let _ = writeln!(
        md,
        "*A Cascade run{file}: seed {}, {} simulated seconds, {} attempts delivered to services.*\n",
        summary.seed,
        fmt_num(summary.sim_seconds),
        fmt_count(summary.hops)
    );
    if !scenario.description.is_empty() {
        let _ = writeln!(md, "> {}\n", scenario.description.replace('\n', "\n> "));
    }

    md.push_str("## Outcome\n\n");
    // A run exported before its end (the app, paused) is judged so far; its stated outcome
    // is about the whole run, so it is not checked yet.
    let finished = summary.sim_seconds + 1e-9 >= scenario.duration_s;
    let so_far = if finished {
        String::new()
    } else {
        format!(
            " so far ({} of the scenario's {} simulated seconds)",
            fmt_num(summary.sim_seconds),
            fmt_num(scenario.duration_s)
        )
    };
    let _ = write!(
        md,
        "**{}**{so_far}: {}.",
        summary.verdict.as_str(),
        verdict_meaning(summary.verdict)
    );
    if let Some(r) = summary.recovery_seconds {
        let _ = write!(md, " Recovered {} s after the trigger ended.", fmt_fig(r));
    }
    if !summary.sustained_by.is_empty() {
        let _ = write!(md, " Sustained by: {}.", summary.sustained_by.join("; "));
    }
    let _ = write!(
        md,
        " Client success over the final window: {:.1} %.",
        summary.final_success_ratio * 100.0
    );
    md.push_str(&pooled_blind_spot(scenario, summary));
    md.push_str("\n\n");
    if let Some(expect) = scenario.expect.as_ref().filter(|_| !finished) {
        let _ = writeln!(
            md,
            "The scenario states in advance that the run ends **{}**; that is judged at its end.\n",
            expect.verdict.as_str()
        );
    }
    if let Some(expect) = scenario.expect.as_ref().filter(|_| finished) {
        let met = summary.expectation_met().unwrap_or(true);
        let _ = writeln!(
            md,
            "The scenario states in advance that the run ends **{}**{} — {}.\n",
            expect.verdict.as_str(),
            if expect.why.is_empty() {
                String::new()
            } else {
                format!(" (\"{}\")", expect.why)
            },
            if met { "it did" } else { "**it did not**" }
        );
        if !summary.checks.is_empty() {
            md.push_str("| stated check | measured | holds |\n|---|---|---|\n");
            for c in &summary.checks {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    cell(&c.description),
                    c.value.map_or_else(|| "—".to_owned(), fmt_fig),
                    if c.passed { "yes" } else { "**no**" }
                );
            }
            md.push('\n');
        }
    }

    md.push_str("## Timeline\n\n");
    timeline(&mut md, run.events);

    md.push_str("## What the clients saw\n\n");
    charts(&mut md, run.history, &trigger_spans(&run.history.system));

    if let Some(c) = &summary.causality {
        where_it_started(&mut md, c);
    }

    md.push_str("## Services\n\n");
    md.push_str(
        "| service | offered /s | of which retries /s | goodput /s | errors | p50 ms | p99 ms | mean queue | utilisation | orphaned |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for spec in &scenario.services {
        let Some(s) = summary.services.get(&spec.name) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} % | {} | {} | {} | {:.0} % | {:.1} % |",
            cell(&spec.name),
            fmt_fig(s.offered_rps),
            fmt_fig(s.retry_rps),
            fmt_fig(s.goodput_rps),
            s.error_ratio * 100.0,
            fmt_fig(s.p50_ms),
            fmt_fig(s.p99_ms),
            fmt_fig(s.mean_queue),
            s.utilization * 100.0,
            s.orphaned_ratio * 100.0
        );
    }
    md.push_str("\n## Clients\n\n");
    md.push_str(
        "| source | requests /s | retries /s | goodput /s | success | mean ms | p99 ms |\n\
         |---|--:|--:|--:|--:|--:|--:|\n",
    );
    for spec in &scenario.sources {
        let Some(s) = summary.sources.get(&spec.name) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} % | {} | {} |",
            cell(&spec.name),
            fmt_fig(s.offered_rps),
            fmt_fig(s.retry_rps),
            fmt_fig(s.goodput_rps),
            s.success_ratio * 100.0,
            fmt_fig(s.mean_ms),
            fmt_fig(s.p99_ms)
        );
    }
    md.push_str(
        "\nWhole-run figures over the closed intervals (docs/model.md defines each; \
         `metrics.csv` has them per interval). A service's latency is its residence time \
         (queue, own work and downstream waits) over all completions; a client's is of its \
         successes, retries included.\n",
    );
    md
}

/// A sentence when the verdict pools the sources, the pooled ratio ended healthy and one
/// source ended below the healthy ratio on its own (the pooled ratio hides it), else nothing.
fn pooled_blind_spot(scenario: &Scenario, summary: &RunSummary) -> String {
    let healthy = scenario.verdict.healthy_ratio;
    if scenario.verdict.sources != VerdictSources::Pooled
        || summary.sources.len() < 2
        || summary.final_success_ratio < healthy
    {
        return String::new();
    }
    // The weakest source judged on its own (ties to the first name).
    let weakest = summary
        .sources
        .iter()
        .filter_map(|(name, s)| s.final_success_ratio.map(|r| (name, r)))
        .fold(None::<(&String, f64)>, |worst, (name, r)| match worst {
            Some((_, w)) if w <= r => worst,
            _ => Some((name, r)),
        });
    match weakest {
        Some((name, r)) if r < healthy => format!(
            " The verdict pools every source's requests; `{name}` on its own ended at {:.1} % \
             (`verdict: (sources: Each)` judges each source apart).",
            r * 100.0
        ),
        _ => String::new(),
    }
}

/// Health changes that matter to a postmortem: into or out of failing or down. A busy service
/// flapping between healthy and degraded would bury the rest.
fn notable_health(from: Health, to: Health) -> bool {
    [from, to]
        .iter()
        .any(|h| matches!(h, Health::Failing | Health::Down))
}

/// The timeline table: faults, commands, alerts, operator steps, mechanisms, verdict changes
/// and notable health changes, in time order.
fn timeline(md: &mut String, events: &EventLog) {
    let mut minor_health = 0;
    let shown: Vec<_> = events
        .events
        .iter()
        .filter(|e| match e.kind {
            SimEventKind::ScenarioLoaded { .. } => false,
            SimEventKind::HealthChanged { from, to, .. } if !notable_health(from, to) => {
                minor_health += 1;
                false
            }
            _ => true,
        })
        .collect();
    if shown.is_empty() {
        md.push_str("Nothing happened: no fault, command or change of state.\n\n");
        return;
    }
    md.push_str("| t (s) | what |\n|--:|---|\n");
    for e in shown.iter().take(TIMELINE_ROWS) {
        let text = e.kind.text();
        let text = match e.kind {
            SimEventKind::FaultStarted { .. } => format!("**fault: {text}**"),
            SimEventKind::VerdictChanged { .. } => format!("*{text}*"),
            _ => text,
        };
        let _ = writeln!(md, "| {:.1} | {} |", e.time_ns as f64 / 1e9, cell(&text));
    }
    if shown.len() > TIMELINE_ROWS {
        let _ = writeln!(
            md,
            "\n{} more events are in `events.jsonl`.",
            shown.len() - TIMELINE_ROWS
        );
    }
    if minor_health > 0 {
        let _ = writeln!(
            md,
            "\nLeft out: {minor_health} changes of health among idle, healthy and degraded \
             (`events.jsonl` has them)."
        );
    }
    md.push('\n');
}

/// `[start, end)` seconds of each run of intervals with a trigger active.
fn trigger_spans(system: &[SystemRow]) -> Vec<(u32, u32)> {
    let mut spans: Vec<(u32, u32)> = Vec::new();
    for row in system.iter().filter(|r| r.trigger_active) {
        match spans.last_mut() {
            Some((_, end)) if *end == row.interval => *end = row.interval + 1,
            _ => spans.push((row.interval, row.interval + 1)),
        }
    }
    spans
}

/// One chart bucket: summed counts over its intervals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    first_interval: u32,
    intervals: u32,
    offered: u64,
    goodput: u64,
}

/// The system series merged into at most `points` buckets of equal length.
fn buckets(system: &[SystemRow], points: usize) -> Vec<Bucket> {
    let per = system.len().div_ceil(points.max(1)).max(1);
    system
        .chunks(per)
        .map(|rows| Bucket {
            first_interval: rows[0].interval,
            intervals: rows.len() as u32,
            offered: rows.iter().map(|r| r.offered).sum(),
            goodput: rows.iter().map(|r| r.goodput).sum(),
        })
        .collect()
}

fn charts(md: &mut String, history: &MetricsHistory, triggers: &[(u32, u32)]) {
    let interval_s = history.interval_ns as f64 / 1e9;
    let b = buckets(&history.system, CHART_POINTS);
    if b.is_empty() {
        md.push_str("No interval closed: nothing to chart.\n\n");
        return;
    }
    let span_s = |k: &Bucket| f64::from(k.intervals) * interval_s;
    let offered: Vec<f64> = b.iter().map(|k| k.offered as f64 / span_s(k)).collect();
    let goodput: Vec<f64> = b.iter().map(|k| k.goodput as f64 / span_s(k)).collect();
    let success: Vec<f64> = b
        .iter()
        .map(|k| {
            if k.offered == 0 {
                1.0
            } else {
                (k.goodput as f64 / k.offered as f64).min(1.0)
            }
        })
        .collect();
    let end_s = b.last().map_or(0.0, |k| {
        f64::from(k.first_interval + k.intervals) * interval_s
    });
    let x_axis = format!("x-axis \"simulated s\" 0 --> {}", fmt_num(end_s));
    let faults = if triggers.is_empty() {
        "no fault or load spike".to_owned()
    } else {
        let spans: Vec<String> = triggers
            .iter()
            .map(|&(a, z)| {
                format!(
                    "{}–{} s",
                    fmt_num(f64::from(a) * interval_s),
                    fmt_num(f64::from(z) * interval_s)
                )
            })
            .collect();
        format!("a fault or spike active in {}", spans.join(", "))
    };
    let top = offered.iter().copied().fold(1.0_f64, f64::max) * 1.1;
    let _ = writeln!(
        md,
        "Client requests offered (upper line) and answered successfully (lower line) per \
         second; {faults}.\n\n```mermaid\nxychart-beta\n    title \"Offered and goodput, requests/s\"\n    {x_axis}\n    y-axis \"requests/s\" 0 --> {}\n    line {}\n    line {}\n```\n",
        fmt_num(top.ceil()),
        series(&offered),
        series(&goodput)
    );
    let _ = writeln!(
        md,
        "```mermaid\nxychart-beta\n    title \"Share of client requests that succeeded\"\n    {x_axis}\n    y-axis \"success\" 0 --> 1\n    line {}\n```\n",
        series(&success)
    );
    if b.len() < history.system.len() {
        let _ = writeln!(
            md,
            "Each point merges {} intervals of {} s.\n",
            b[0].intervals,
            fmt_num(interval_s)
        );
    }
}

fn series(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| fmt_fig(*v)).collect();
    format!("[{}]", items.join(", "))
}

/// A measured figure to three significant digits or whole units, whichever is finer
/// (`897`, `60.3`, `3.46`, `0.123`), trailing zeros dropped.
fn fmt_fig(x: f64) -> String {
    let decimals = match x.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    fmt_num((x * 10f64.powi(decimals)).round() / 10f64.powi(decimals))
}

/// A count with thousands separators (`394,276`).
fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number as people write it: up to 3 decimals, trailing zeros dropped.
fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(interval: u32, offered: u64, goodput: u64, trigger: bool) -> SystemRow {
        SystemRow {
            interval,
            offered,
            goodput,
            hops: 0,
            trigger_active: trigger,
        }
    }

    /// `mechanisms/minority-source.ron` (a large client always served beside a small one whose
    /// service latches at 10 s), with or without its latch, judged as `sources` says.
    fn two_sources(partners_fail: bool, sources: VerdictSources) -> (Scenario, RunSummary) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scenarios/mechanisms/minority-source.ron"
        );
        let mut scenario = cascade_sim::scenario::load(std::path::Path::new(path)).expect("valid");
        if !partners_fail {
            scenario.faults.clear();
        }
        scenario.verdict.sources = sources;
        let mut sim = cascade_sim::Simulation::new(&scenario);
        sim.run_until_s(scenario.duration_s);
        (scenario, sim.summary())
    }

    #[test]
    fn the_report_names_a_source_the_pooled_verdict_hides() {
        let (scenario, summary) = two_sources(true, VerdictSources::Pooled);
        assert_eq!(summary.verdict, VerdictKind::Stable);
        assert_eq!(
            pooled_blind_spot(&scenario, &summary),
            " The verdict pools every source's requests; `partners` on its own ended at 0.0 % \
             (`verdict: (sources: Each)` judges each source apart)."
        );
        // Nothing to say when every source is served, or when each is judged on its own.
        let (scenario, summary) = two_sources(false, VerdictSources::Pooled);
        assert_eq!(pooled_blind_spot(&scenario, &summary), "");
        let (scenario, summary) = two_sources(true, VerdictSources::Each);
        assert_eq!(summary.verdict, VerdictKind::Metastable);
        assert_eq!(pooled_blind_spot(&scenario, &summary), "");
    }

    #[test]
    fn figures_keep_three_significant_digits_or_whole_units() {
        assert_eq!(fmt_fig(897.167), "897");
        assert_eq!(fmt_fig(60.288), "60.3");
        assert_eq!(fmt_fig(3.463), "3.46");
        assert_eq!(fmt_fig(0.1234), "0.123");
        assert_eq!(fmt_fig(17498.111), "17498");
        assert_eq!(fmt_count(394_276), "394,276");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1_000_000), "1,000,000");
    }

    #[test]
    fn numbers_drop_trailing_zeros() {
        assert_eq!(fmt_num(900.0), "900");
        assert_eq!(fmt_num(12.5), "12.5");
        assert_eq!(fmt_num(0.1234), "0.123");
        assert_eq!(fmt_num(-0.0001), "0");
        assert_eq!(fmt_num(f64::NAN), "—");
    }

    #[test]
    fn buckets_sum_counts_so_each_bucket_keeps_its_exact_rate() {
        let system: Vec<SystemRow> = (0..250)
            .map(|k| row(k, 10 + u64::from(k % 2), 10, false))
            .collect();
        let b = buckets(&system, 120);
        // 250 intervals in buckets of ⌈250/120⌉ = 3: 83 full buckets and one of 1.
        assert_eq!(b.len(), 84);
        assert_eq!(
            b[0],
            Bucket {
                first_interval: 0,
                intervals: 3,
                offered: 31,
                goodput: 30
            }
        );
        assert_eq!(
            b[83],
            Bucket {
                first_interval: 249,
                intervals: 1,
                offered: 11,
                goodput: 10
            }
        );
        assert_eq!(
            buckets(&system[..50], 120).len(),
            50,
            "short runs are not merged"
        );
    }

    #[test]
    fn only_health_changes_into_or_out_of_failing_or_down_are_notable() {
        assert!(notable_health(Health::Healthy, Health::Failing));
        assert!(notable_health(Health::Down, Health::Degraded));
        assert!(!notable_health(Health::Healthy, Health::Degraded));
        assert!(!notable_health(Health::Idle, Health::Healthy));
    }

    #[test]
    fn trigger_intervals_merge_into_spans() {
        let system: Vec<SystemRow> = (0..10)
            .map(|k| row(k, 1, 1, matches!(k, 2 | 3 | 4 | 7)))
            .collect();
        assert_eq!(trigger_spans(&system), vec![(2, 5), (7, 8)]);
    }

    #[test]
    fn table_cells_escape_pipes_and_newlines() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
