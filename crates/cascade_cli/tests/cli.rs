//! `cascade-cli` as users run it: exit codes, messages, outputs, determinism.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade-cli"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("cascade-cli runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cascade-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked")
            && !err.contains("RUST_BACKTRACE")
            && !err.contains("stack backtrace"),
        "{err}"
    );
}

#[test]
fn run_prints_the_summary_with_every_documented_field() {
    let o = cli(&["run", "scenarios/validation/mm1.ron", "--duration", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    for key in [
        "scenario",
        "seed",
        "sim_seconds",
        "wall_seconds",
        "hops",
        "verdict",
        "recovery_seconds",
        "services",
        "sources",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let server = &v["services"]["server"];
    for key in [
        "offered_rps",
        "retry_rps",
        "goodput_rps",
        "error_ratio",
        "mean_ms",
        "p50_ms",
        "p99_ms",
        "mean_queue",
        "utilization",
        "orphaned_ratio",
        "rejected_ratio",
    ] {
        assert!(
            server.get(key).is_some_and(serde_json::Value::is_number),
            "services.server.{key}"
        );
    }
    let clients = &v["sources"]["clients"];
    for key in [
        "offered_rps",
        "goodput_rps",
        "success_ratio",
        "mean_ms",
        "p99_ms",
    ] {
        assert!(
            clients.get(key).is_some_and(serde_json::Value::is_number),
            "sources.clients.{key}"
        );
    }
    assert_eq!(v["sim_seconds"], 20.0);
    assert_eq!(v["verdict"], "stable");
}

#[test]
fn same_seed_gives_byte_identical_metrics_and_another_seed_differs() {
    let run = |seed: &str, dir: &Path| {
        let o = cli(&[
            "run",
            "scenarios/teaching/retry-storm.ron",
            "--duration",
            "45",
            "--seed",
            seed,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(dir.join("metrics.csv")).unwrap()
    };
    let (a, b, c) = (tmp("det-a"), tmp("det-b"), tmp("det-c"));
    let first = run("42", &a);
    assert_eq!(
        first,
        run("42", &b),
        "same scenario + seed ⇒ identical metrics.csv"
    );
    assert_ne!(first, run("43", &c), "another seed ⇒ another sample path");
    // One row per interval × node (1 source + 4 services, 45 intervals) plus the header.
    let rows = String::from_utf8(first).unwrap().lines().count();
    assert_eq!(rows, 1 + 45 * 5);
    for f in ["events.jsonl", "summary.json"] {
        assert!(a.join(f).exists(), "{f} written");
    }
    // causes.csv counts every failed client request once, by its origin: its users' rows add
    // up to the failures the summary counts by reason.
    let causes = std::fs::read_to_string(a.join("causes.csv")).unwrap();
    let mut lines = causes.lines();
    assert_eq!(lines.next(), Some("interval,t_s,site,origin,failures"));
    let by_origin: u64 = lines
        .filter(|l| l.split(',').nth(2) == Some("users"))
        .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    let by_reason: u64 = summary["sources"]["users"]["failures"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(by_reason > 0, "the storm fails requests");
    assert_eq!(by_origin, by_reason);
    let events = std::fs::read_to_string(a.join("events.jsonl")).unwrap();
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"fault_started\"") && l.contains("\"time_s\":30.0")),
        "{events}"
    );
    for line in events.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("each line is JSON");
    }
}

#[test]
fn a_finished_run_is_written_up_as_a_postmortem_with_its_stated_outcome_checked() {
    // The retry-storm lesson states in advance that it ends metastable; its 3-second slowdown
    // of db starts at 30 s.
    let dir = tmp("report");
    let o = cli(&[
        "run",
        "scenarios/teaching/retry-storm.ron",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for expected in [
        "# Postmortem: Retry storm (simulated)",
        "*A Cascade run of `retry-storm.ron`: seed 7, 120 simulated seconds,",
        "**metastable**: the clients were still served badly at the end",
        "The scenario states in advance that the run ends **metastable**",
        "— it did.",
        "| 30.0 | **fault: slow on db until 33.0 s** |",
        "| 33.0 | slow on db ended |",
        "a fault or spike active in 30–33 s",
        "```mermaid\nxychart-beta",
        "| db | ",
        "| users | ",
        // Where it started: db's slowdown, stated in the file as its root.
        "## Where it started",
        "100.0 % started at **db**; the failures travelled db → orders → gateway → users.",
        "| most users' failures start at db (value: the share that did; the run's root: db) | 1 | yes |",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let success = summary["final_success_ratio"].as_f64().unwrap();
    assert!(
        report.contains(&format!(
            "Client success over the final window: {:.1} %.",
            success * 100.0
        )),
        "the report's figures are the summary's"
    );
}

#[test]
fn validate_reports_every_error_with_location_and_exit_2() {
    let dir = tmp("validate");
    let bad = dir.join("bad.ron");
    std::fs::write(
        &bad,
        r#"(
    version: 1, name: "x", duration_s: 1,
    sources: [(name: "u", target: "apx", rate: Constant(10))],
    services: [(name: "api", workers: 1, service_time: Exponential(mean_ms: 1.0))],
)"#,
    )
    .unwrap();
    let o = cli(&[
        "validate",
        "scenarios/validation/mm1.ron",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_no_panic(&o);
    let err = stderr(&o);
    assert!(
        err.contains("bad.ron:3:35: unknown service \"apx\""),
        "{err}"
    );
    assert!(err.contains("did you mean \"api\"?"), "{err}");
    let ok = cli(&[
        "validate",
        "scenarios/validation/mm1.ron",
        "scenarios/bench/three-tier.ron",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn bad_flags_and_files_exit_2_without_a_backtrace() {
    for args in [
        vec!["run"],
        vec!["run", "does-not-exist.ron"],
        vec!["run", "scenarios/validation/mm1.ron", "--duration", "abc"],
        vec!["run", "scenarios/validation/mm1.ron", "--duration", "0"],
        vec!["run", "scenarios/validation/mm1.ron", "--duration", "1e300"],
        vec!["run", "scenarios/validation/mm1.ron", "--seed", "-1"],
        vec!["frobnicate"],
        vec!["bench", "--layered", "0"],
        vec!["validate"],
    ] {
        let o = cli(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_no_panic(&o);
        assert!(!stderr(&o).trim().is_empty(), "{args:?} says what is wrong");
    }
}

#[test]
fn check_fails_when_the_stated_outcome_is_not_met() {
    let o = cli(&["run", "scenarios/teaching/retry-storm.ron", "--check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "retry-storm.ron ends as it states: {}",
        stderr(&o)
    );
    // Cut the run before the storm: it cannot be metastable yet.
    let o = cli(&[
        "run",
        "scenarios/teaching/retry-storm.ron",
        "--check",
        "--duration",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("expected verdict metastable"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bench_reports_speed() {
    let o = cli(&["bench", "--duration", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["hops_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["sim_seconds_per_wall_second"].as_f64().unwrap() > 0.0);
    assert_eq!(v["scenario"], "Three-tier benchmark");
    let o = cli(&["bench", "--duration", "5", "--layered", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_recorded_trace_becomes_a_rate_profile_that_runs() {
    let dir = tmp("trace");
    let trace = dir.join("day.csv");
    std::fs::write(
        &trace,
        "time_s,rate_per_s\n1700000000,100\n1700000010,300\n1700000020,50\n",
    )
    .unwrap();
    let o = cli(&["rate-from-csv", trace.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let profile = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert_eq!(profile, "Points([(0, 100), (10, 300), (20, 50)])");
    // Pasted into a source, it runs: ∫ rate over [0, 30) s = 2,000 + 1,750 + 500 = 4,250
    // arrivals (Poisson: ± 4 · √4250 ≈ 261).
    let scenario = dir.join("replay.ron");
    std::fs::write(
        &scenario,
        format!(
            "(version: 1, name: \"replay\", duration_s: 30, sources: [(name: \"users\", target: \"api\", rate: {profile})], services: [(name: \"api\", workers: 1000, service_time: Exponential(mean_ms: 1.0))])"
        ),
    )
    .unwrap();
    let o = cli(&["run", scenario.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sent = summary["sources"]["users"]["offered_rps"].as_f64().unwrap() * 30.0;
    assert!((sent - 4250.0).abs() <= 261.0, "{sent} arrivals");
    // A bad row: exit 2 with the line and a hint.
    std::fs::write(&trace, "time_s,rate_per_s\n0,100\n5,many\n").unwrap();
    let o = cli(&["rate-from-csv", trace.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_no_panic(&o);
    assert!(
        stderr(&o).contains("line 3: the rate \"many\" is not a number")
            && stderr(&o).contains("hint:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn generate_writes_a_valid_scenario() {
    let dir = tmp("generate");
    let out = dir.join("g.ron");
    let o = cli(&[
        "generate",
        "--services",
        "30",
        "--depth",
        "3",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(&["validate", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_panic_column_agrees_with_the_panic_events() {
    // The load balancer's panic mode is logged as it starts and ends, and metrics.csv shows it
    // at each interval's end: the rows marked `true` are those ending inside the logged span.
    let dir = tmp("panic");
    let o = cli(&[
        "run",
        "scenarios/mechanisms/health-check-panic.ron",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let time_of = |what: &str| {
        events
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["what"].as_str().is_some_and(|w| w.starts_with(what)))
            .and_then(|e| e["time_s"].as_f64())
            .unwrap_or_else(|| panic!("no event {what:?} in\n{events}"))
    };
    let (on, off) = (
        time_of("load balancer in panic"),
        time_of("load balancer out of panic"),
    );
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (t, node, panic) = (column("t_start_s"), column("node"), column("panic"));
    let mut marked = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells[node] != "api" {
            assert_eq!(cells[panic], "false", "{line}");
            continue;
        }
        let end_s: f64 = cells[t].parse::<f64>().unwrap() + 1.0;
        let expected = end_s > on && end_s <= off;
        assert_eq!(
            cells[panic],
            expected.to_string(),
            "interval ending at {end_s} s"
        );
        marked += usize::from(expected);
    }
    assert!(marked > 10, "{marked} intervals in panic");
}

#[test]
fn a_run_that_outgrows_memory_stops_with_exit_2_a_reason_and_its_outputs_so_far() {
    // Two million requests a second into a server of a hundred, no timeout, unbounded queue:
    // past 8,000,000 requests in flight (about 2 simulated seconds) the run stops.
    let dir = tmp("halt");
    let file = dir.join("flood.ron");
    std::fs::write(
        &file,
        r#"(
            version: 1, name: "flood", seed: 1, duration_s: 60,
            sources: [(name: "users", target: "server", rate: Constant(2000000))],
            services: [(name: "server", workers: 1, service_time: Deterministic(ms: 10.0))],
        )"#,
    )
    .unwrap();
    let out = dir.join("out");
    let o = cli(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("flood.ron: the run stopped at ")
            && err.contains("more than 8,000,000 requests were in flight")
            && err.contains("at service `server`")
            && err.contains("\n  hint: bound the queues"),
        "{err}"
    );
    assert!(
        o.stdout.is_empty(),
        "no summary for a run that did not finish"
    );
    assert!(!out.join("summary.json").exists());
    assert!(
        !out.join("report.md").exists(),
        "no postmortem of a run that did not finish"
    );
    assert!(out.join("metrics.csv").exists());
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let last = events.lines().last().unwrap();
    assert!(last.contains(r#""type":"halted""#), "{last}");
}
