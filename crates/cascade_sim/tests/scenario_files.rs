//! The scenario format: every error reported as `file:line:col: message` with a hint, never
//! a panic; every shipped scenario valid; save → load round-trips exactly.

mod common;

use cascade_sim::generate::{LayeredParams, layered};
use cascade_sim::scenario::{self, Scenario, ScenarioError};

const GOOD: &str = r#"(
    version: 1,
    name: "two tiers",
    duration_s: 10,
    sources: [
        (name: "users", target: "api", rate: Constant(100)),
    ],
    services: [
        (name: "api", workers: 4, service_time: Exponential(mean_ms: 5.0),
         calls: [(to: "db", timeout_ms: 50.0)]),
        (name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0)),
    ],
)"#;

/// Replaces the first occurrence of `from` in GOOD with `to` and parses it.
fn broken(from: &str, to: &str) -> (String, ScenarioError) {
    assert!(GOOD.contains(from), "fixture does not contain {from:?}");
    let text = GOOD.replacen(from, to, 1);
    let err = Scenario::from_ron_str(&text, "bad.ron").expect_err("should be rejected");
    (text, err)
}

/// The 1-based line and column where `needle` starts in `text` (the `nth` occurrence).
fn position_of(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
        .0;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

#[track_caller]
fn expect_problem(
    err: &ScenarioError,
    at: (usize, usize),
    message_part: &str,
    hint_part: Option<&str>,
) {
    let p = err
        .problems
        .iter()
        .find(|p| p.message.contains(message_part))
        .unwrap_or_else(|| panic!("no problem mentioning {message_part:?} in:\n{err}"));
    assert_eq!(
        (p.line, p.col),
        at,
        "location of {message_part:?} in:\n{err}"
    );
    if let Some(h) = hint_part {
        assert!(
            p.hint.as_deref().unwrap_or("").contains(h),
            "hint of {message_part:?} should mention {h:?}:\n{err}"
        );
    }
    let rendered = err.to_string();
    assert!(
        rendered.contains(&format!("bad.ron:{}:{}: ", at.0, at.1)),
        "rendered as file:line:col:\n{rendered}"
    );
}

#[test]
fn the_fixture_is_valid() {
    Scenario::from_ron_str(GOOD, "good.ron").unwrap();
    // Also with Windows habits: a byte-order mark and CRLF line ends.
    let windows = format!("\u{feff}{}", GOOD.replace('\n', "\r\n"));
    assert_eq!(
        Scenario::from_ron_str(&windows, "good.ron").unwrap(),
        Scenario::from_ron_str(GOOD, "good.ron").unwrap()
    );
}

#[test]
fn unknown_service_suggests_the_closest_name() {
    let (text, err) = broken(r#"(to: "db""#, r#"(to: "dbb""#);
    expect_problem(
        &err,
        position_of(&text, "\"dbb\"", 0),
        "unknown service \"dbb\"",
        Some("did you mean \"db\""),
    );
}

#[test]
fn latency_below_one_tick_is_rejected() {
    let (text, err) = broken(
        r#"timeout_ms: 50.0"#,
        r#"timeout_ms: 50.0, latency_ms: 0.2"#,
    );
    expect_problem(
        &err,
        position_of(&text, "0.2", 0),
        "below one tick",
        Some("at least one tick"),
    );
}

#[test]
fn negative_and_zero_rates_are_rejected() {
    let (text, err) = broken("Constant(100)", "Constant(-5)");
    expect_problem(
        &err,
        position_of(&text, "-5", 0),
        "rate must be positive",
        Some("requests per second"),
    );
    let (text, err) = broken("Constant(100)", "Constant(0)");
    expect_problem(
        &err,
        position_of(&text, "0)", 0),
        "rate must be positive",
        None,
    );
}

#[test]
fn times_beyond_the_horizon_are_rejected_in_their_unit() {
    // Every time is a u64 of nanoseconds; stated times stop at 10^8 s so that sums of a few
    // never overflow (a health-check interval of 10^12 s used to hang the run).
    let (text, err) = broken("timeout_ms: 50.0", "timeout_ms: 1e12");
    expect_problem(
        &err,
        position_of(&text, "1e12", 0),
        "1e12 ms is longer than Cascade simulates",
        Some("_ms milliseconds"),
    );
    let (text, err) = broken("duration_s: 10", "duration_s: 2e8");
    expect_problem(
        &err,
        position_of(&text, "2e8", 0),
        "200000000 s is longer than Cascade simulates",
        Some("_s seconds"),
    );
    // Repeated work needs a period of at least one tick (10^-300 s used to hang a run).
    let (text, err) = broken(
        r#"(name: "db", workers: 2"#,
        r#"(name: "db", health_check: (interval_s: 1e-6), workers: 2"#,
    );
    expect_problem(
        &err,
        position_of(&text, "1e-6", 0),
        "the probe interval of 0.000001 s is shorter than one tick (1 ms)",
        Some("at most once a tick"),
    );
    // Up to the horizon is valid, and rates (`…_per_s`) are not times.
    let text = GOOD.replacen("timeout_ms: 50.0", "timeout_ms: 1e11", 1);
    Scenario::from_ron_str(&text, "ok.ron").unwrap();
    let text = GOOD.replacen(
        "Constant(100)",
        "Step(from_per_s: 100, to_per_s: 1e8, at_s: 5.0)",
        1,
    );
    Scenario::from_ron_str(&text, "ok.ron").unwrap();
}

#[test]
fn counts_that_would_exhaust_memory_are_rejected_with_a_hint() {
    // Instances, keys and burst requests each have state of their own; 2^32 − 1 of them
    // used to end the run in an allocation failure. A rate of 10^12 per second is not an
    // allocation failure but a run that never ends.
    let (text, err) = broken(
        r#"(name: "db", workers: 2"#,
        r#"(name: "db", instances: 200000, workers: 2"#,
    );
    expect_problem(
        &err,
        position_of(&text, "200000", 0),
        "200000 instances is more than 100000",
        Some("fewer instances with more workers"),
    );
    let (text, err) = broken(
        r#"(name: "db", workers: 2"#,
        r#"(name: "db", occ: (keys: 20000000), workers: 2"#,
    );
    expect_problem(
        &err,
        position_of(&text, "20000000", 0),
        "20000000 keys is more than 10000000",
        Some("hit ratio and skew"),
    );
    let (text, err) = broken("Constant(100)", "Constant(1e12)");
    expect_problem(
        &err,
        position_of(&text, "1e12", 0),
        "rate 1e12 requests/s is more than Cascade simulates",
        Some("a sample of the traffic"),
    );
    let (text, err) = broken(
        "    ],\n)",
        "    ],\n    faults: [(at_s: 1.0, duration_s: 1.0, fault: LoadSpike(source: \"users\", factor: 1e7))],\n)",
    );
    expect_problem(
        &err,
        position_of(&text, "1e7", 0),
        "×10000000 takes the rate of users from 100 to 1000000000 requests/s",
        Some("a smaller factor"),
    );
    let (text, err) = broken("Constant(100)", "Burst(count: 2000000, at_s: 1.0)");
    expect_problem(
        &err,
        position_of(&text, "2000000", 0),
        "a burst of 2000000 is more than 1000000",
        Some("Spike"),
    );
}

#[test]
fn story_steps_must_come_within_the_run_and_say_something() {
    let story = r#"services: [
        (name: "api", workers: 4, service_time: Exponential(mean_ms: 5.0),"#;
    let (text, err) = broken(
        story,
        &format!(
            "story: [(at_s: 12.0, text: \"late\"), (at_s: 3.0, text: \" \", pause: true)],\n    {story}"
        ),
    );
    expect_problem(
        &err,
        position_of(&text, "12.0", 0),
        "after the run ends (10 s): it would never show",
        Some("within duration_s"),
    );
    expect_problem(
        &err,
        position_of(&text, "\" \"", 0),
        "a story step says nothing",
        Some("what the reader should notice"),
    );
    // A valid story round-trips; `pause` is written only when set.
    let good = GOOD.replacen(
        story,
        &format!("story: [(at_s: 2.0, text: \"Look at db.\", pause: true), (at_s: 5.0, text: \"Now.\")],\n    {story}"),
        1,
    );
    let s = Scenario::from_ron_str(&good, "good.ron").unwrap();
    assert_eq!(s.story.len(), 2);
    assert!(s.story[0].pause && !s.story[1].pause);
    let saved = s.to_ron_string();
    assert_eq!(saved.matches("pause").count(), 1, "{saved}");
    assert_eq!(Scenario::from_ron_str(&saved, "saved.ron").unwrap(), s);
}

#[test]
fn pausing_what_a_service_does_not_have_is_rejected_with_a_hint() {
    // `api` makes no periodic calls and `db` is no work queue: pausing them would do nothing.
    let (text, err) = broken(
        "    ],\n)",
        "    ],\n    operator: [(when: At(5.0), action: PausePeriodic(service: \"api\")),\n               (when: At(6.0), action: ResumeDeliveries(service: \"db\"))],\n)",
    );
    expect_problem(
        &err,
        position_of(&text, "\"api\"))", 0),
        "\"api\" makes no periodic calls",
        Some("lifecycle: (periodic:"),
    );
    expect_problem(
        &err,
        position_of(&text, "\"db\"))", 0),
        "\"db\" is not a work queue",
        Some("work_queue"),
    );
}

#[test]
fn group_partitions_name_known_nodes_on_two_sides_that_call_each_other() {
    let fault = |f: &str| {
        broken(
            "    ],\n)",
            &format!("    ],\n    faults: [(at_s: 1.0, duration_s: 2.0, fault: {f})],\n)"),
        )
    };
    // (fault, where the problem is: text and which occurrence, message, hint)
    let cases: [(&str, &str, usize, &str, Option<&str>); 6] = [
        (
            r#"GroupPartition(group: ["api", "dbb"])"#,
            "\"dbb\"",
            0,
            "unknown node \"dbb\"",
            Some("did you mean \"db\""),
        ),
        (
            r#"GroupPartition(group: ["api", "zzzzzz"])"#,
            "\"zzzzzz\"",
            0,
            "unknown node \"zzzzzz\"",
            Some("the nodes are users, api, db"),
        ),
        (
            r#"GroupPartition(group: ["db"], others: ["api", "db"])"#,
            "\"db\"",
            3,
            "\"db\" is on both sides",
            Some("not both"),
        ),
        (
            r#"GroupPartition(group: ["users"], others: ["db"])"#,
            "[\"users\"]",
            0,
            "no call crosses the partition",
            Some("do not call each other"),
        ),
        (
            r#"GroupPartition(group: ["users", "api", "db"])"#,
            "[\"users\"",
            0,
            "no call crosses the partition",
            Some("every node"),
        ),
        (
            r#"GroupPartition(group: [])"#,
            "[]",
            0,
            "the group names no node",
            None,
        ),
    ];
    for (f, needle, nth, message, hint) in cases {
        let (text, err) = fault(f);
        expect_problem(&err, position_of(&text, needle, nth), message, hint);
    }
    // A valid one round-trips, its default side left out.
    let text = GOOD.replacen(
        "    ],\n)",
        "    ],\n    faults: [(at_s: 1.0, duration_s: 2.0, fault: GroupPartition(group: [\"db\"]))],\n)",
        1,
    );
    let s = Scenario::from_ron_str(&text, "good.ron").unwrap();
    let saved = s.to_ron_string();
    assert!(!saved.contains("others"), "{saved}");
    assert_eq!(Scenario::from_ron_str(&saved, "saved.ron").unwrap(), s);
}

#[test]
fn disqualify_after_without_disqualify_on_failure_is_rejected() {
    let (text, err) = broken(
        r#"(name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0)),"#,
        r#"(name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0),
         lifecycle: (periodic: [(every_s: 5.0, call: (to: "api"), disqualify_after: 2)])),"#,
    );
    expect_problem(
        &err,
        position_of(&text, "2)])", 0),
        "disqualify_after needs disqualify_on_failure",
        Some("disqualify_on_failure: true"),
    );
}

#[test]
fn diurnal_and_recorded_rate_profiles_are_checked_and_round_trip() {
    let (text, err) = broken(
        "rate: Constant(100)",
        "rate: Diurnal(mean_per_s: 100, amplitude_per_s: 150, period_s: 86400)",
    );
    expect_problem(
        &err,
        position_of(&text, "150", 0),
        "an amplitude of 150 requests/s around a mean of 100 would send a negative rate",
        Some("between 0 and the mean"),
    );
    let (text, err) = broken(
        "rate: Constant(100)",
        "rate: Points([(0, 100), (60, 300), (30, 200), (90, -5)])",
    );
    expect_problem(
        &err,
        position_of(&text, "30, 200", 0),
        "the point at 30 s comes after one at 60 s",
        Some("time order"),
    );
    expect_problem(
        &err,
        position_of(&text, "-5", 0),
        "a point's rate must be a number ≥ 0, got -5",
        None,
    );
    let (text, err) = broken("rate: Constant(100)", "rate: Points([])");
    expect_problem(
        &err,
        position_of(&text, "[]", 0),
        "a rate profile needs at least one point",
        Some("(time_s, rate_per_s)"),
    );
    for profile in [
        "Diurnal(mean_per_s: 100, amplitude_per_s: 60, period_s: 86400, peak_at_s: 50400)",
        "Points([(0, 100), (60, 0), (60, 250.5), (3600, 40)])",
    ] {
        let good = GOOD.replacen("Constant(100)", profile, 1);
        let scenario = Scenario::from_ron_str(&good, "ok.ron").expect("valid");
        assert_eq!(
            Scenario::from_ron_str(&scenario.to_ron_string(), "again.ron").unwrap(),
            scenario
        );
    }
}

#[test]
fn sharding_needs_keys_and_as_many_instances_as_replicas() {
    let (text, err) = broken(
        r#"(name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0)),"#,
        r#"(name: "db", instances: 2, workers: 2, service_time: Exponential(mean_ms: 5.0),
         sharding: (keys: 0, replicas: 3)),"#,
    );
    expect_problem(
        &err,
        position_of(&text, "0, replicas", 0),
        "keys must be at least 1",
        None,
    );
    expect_problem(
        &err,
        position_of(&text, "3))", 0),
        "3 replicas of each key need at least as many instances, not 2",
        Some("raise instances to 3"),
    );
}

#[test]
fn scaling_coefficients_out_of_range_are_rejected_with_hints() {
    let (text, err) = broken(
        r#"(name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0)),"#,
        r#"(name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0),
         scaling: (contention: 1.5, coherency: -0.001)),"#,
    );
    expect_problem(
        &err,
        position_of(&text, "1.5", 0),
        "the contention share 1.5 is outside [0, 1]",
        Some("serialised share"),
    );
    expect_problem(
        &err,
        position_of(&text, "-0.001", 0),
        "the coherency cost -0.001 must be a number ≥ 0",
        Some("0.0005 puts the peak near 45"),
    );
    let ok = GOOD.replacen(
        r#"(name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0)),"#,
        r#"(name: "db", workers: 2, service_time: Exponential(mean_ms: 5.0), scaling: (coherency: 0.01)),"#,
        1,
    );
    let scenario = Scenario::from_ron_str(&ok, "ok.ron").expect("contention defaults to 0");
    assert_eq!(
        Scenario::from_ron_str(&scenario.to_ron_string(), "again.ron").unwrap(),
        scenario
    );
}

#[test]
fn calls_to_itself_are_rejected() {
    let (text, err) = broken(r#"(to: "db""#, r#"(to: "api""#);
    expect_problem(
        &err,
        position_of(&text, "\"api\"", 2),
        "calls itself",
        Some("remove it"),
    );
}

#[test]
fn synchronous_call_cycles_are_rejected_with_the_cycle() {
    let (text, err) = broken(
        r#"(name: "db", workers: 2,"#,
        r#"(name: "db", workers: 2, calls: [(to: "api")],"#,
    );
    let p = err
        .problems
        .iter()
        .find(|p| p.message.contains("cycle"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(p.message.contains("api → db → api"), "{}", p.message);
    assert_eq!(
        (p.line, p.col),
        position_of(&text, "\"db\"", 0),
        "points at the first call of the cycle"
    );
}

#[test]
fn fan_outs_and_retry_lists_are_checked_and_round_trip() {
    let parallel = r#"(to: "db", count: 3, timeout_ms: 50.0,
         retry: (max_attempts: 2, retry_on: [Timeout, Refused]))], fan_out: Quorum(2)"#;
    let text = GOOD.replacen(r#"(to: "db", timeout_ms: 50.0)]"#, parallel, 1);
    let s = Scenario::from_ron_str(&text, "good.ron").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.services[0].fan_out, scenario::FanOut::Quorum(2));
    let retry_on: Vec<_> = s.services[0].calls[0].retry.retry_on.iter().collect();
    assert_eq!(
        retry_on,
        [scenario::Failure::Timeout, scenario::Failure::Refused]
    );
    let saved = s.to_ron_string();
    assert!(saved.contains("fan_out: Quorum(2)"), "{saved}");
    assert!(saved.contains("retry_on: ["), "{saved}");
    assert_eq!(Scenario::from_ron_str(&saved, "saved.ron").unwrap(), s);

    let (text, err) = broken(
        r#"(to: "db", timeout_ms: 50.0)]"#,
        &parallel.replace("Quorum(2)", "Quorum(4)"),
    );
    expect_problem(
        &err,
        position_of(&text, "Quorum(4)", 0),
        "a quorum of 4 is more than the 3 branches this service sends",
        Some("lower the quorum"),
    );
    let (text, err) = broken(
        r#"(to: "db", timeout_ms: 50.0)]"#,
        &parallel.replace("Quorum(2)", "Quorum(0)"),
    );
    expect_problem(
        &err,
        position_of(&text, "Quorum(0)", 0),
        "a quorum must be at least 1",
        Some("`Parallel` waits for every branch"),
    );
    let (_, err) = broken(
        r#"(to: "db", timeout_ms: 50.0)]"#,
        &parallel.replace("Refused", "Refsued"),
    );
    assert!(err.to_string().contains("did you mean `Refused`"), "{err}");
}

#[test]
fn syntax_errors_have_positions_and_hints() {
    let (text, err) = broken("workers: 4,", "workers: 4");
    assert_eq!(err.problems.len(), 1);
    let p = &err.problems[0];
    assert!(p.line >= position_of(&text, "workers: 4", 0).0, "{err}");
    let (_, err) = broken("workers: 4,", "wrokers: 4,");
    assert!(err.to_string().contains("unknown field `wrokers`"), "{err}");
    assert!(err.to_string().contains("did you mean `workers`"), "{err}");
    let (_, err) = broken("Exponential(mean_ms: 5.0)", "Exponental(mean_ms: 5.0)");
    assert!(
        err.to_string().contains("did you mean `Exponential`"),
        "{err}"
    );
    let (_, err) = broken("version: 1,", "version: 7,");
    assert!(
        err.to_string().contains("unsupported scenario version 7"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = GOOD
        .replacen("Constant(100)", "Constant(-1)", 1)
        .replacen(r#"(to: "db""#, r#"(to: "dbx""#, 1)
        .replacen("workers: 2", "workers: 0", 1);
    let err = Scenario::from_ron_str(&text, "bad.ron").unwrap_err();
    assert_eq!(err.problems.len(), 3, "{err}");
    let lines: Vec<usize> = err.problems.iter().map(|p| p.line).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "problems are in document order: {lines:?}"
    );
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "(",
        "((((((",
        "not ron at all",
        "(version: 1)",
        "[1, 2, 3]",
        "(version: \"one\")",
        "\u{0}\u{1}",
    ] {
        assert!(Scenario::from_ron_str(text, "g.ron").is_err(), "{text:?}");
    }
    let missing = scenario::load(std::path::Path::new("/nonexistent/x.ron")).unwrap_err();
    assert!(
        missing.to_string().contains("cannot read file"),
        "{missing}"
    );
}

#[test]
fn every_shipped_scenario_is_valid_and_round_trips() {
    let files = common::shipped_paths();
    assert!(files.len() >= 6, "scenarios/ holds the shipped library");
    for path in files {
        let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = s.to_ron_string();
        let again = Scenario::from_ron_str(&text, "saved")
            .unwrap_or_else(|e| panic!("{}: saved text does not load:\n{e}", path.display()));
        assert_eq!(
            again,
            s,
            "{}: save → load changes the scenario",
            path.display()
        );
        assert_eq!(
            again.to_ron_string(),
            text,
            "{}: saving is stable",
            path.display()
        );
    }
}

#[test]
fn generated_architectures_round_trip_through_files_atomically() {
    let dir = std::env::temp_dir().join(format!("cascade-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = layered(&LayeredParams {
        services: 50,
        ..Default::default()
    });
    let path = dir.join("layered.ron");
    scenario::save_to_path(&s, &path).unwrap();
    assert_eq!(scenario::load(&path).unwrap(), s);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary files are left behind: {leftovers:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_that_are_not_utf8_text_or_not_files_say_what_to_do() {
    let dir = std::env::temp_dir().join(format!("cascade-unreadable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let latin1 = dir.join("latin1.ron");
    std::fs::write(&latin1, b"(version: 1, name: \"caf\xe9\")").unwrap();
    for (path, hint) in [
        (&latin1, "save it again as UTF-8"),
        (&dir, "a .ron file in it"),
    ] {
        let err = scenario::load(path).expect_err("unreadable");
        let p = &err.problems[0];
        assert!(p.message.starts_with("cannot read file"), "{err}");
        assert!(p.hint.as_deref().unwrap_or("").contains(hint), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stated_root_names_a_node_or_a_link_and_round_trips() {
    let end = "    ],\n)";
    for root in ["db", "users", "api → db"] {
        let text = GOOD.replacen(
            end,
            &format!("    ],\n    expect: (verdict: Stable, root: \"{root}\"),\n)"),
            1,
        );
        let s = Scenario::from_ron_str(&text, "good.ron").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.expect.as_ref().unwrap().root.as_deref(), Some(root));
        let saved = s.to_ron_string();
        assert_eq!(Scenario::from_ron_str(&saved, "saved.ron").unwrap(), s);
    }
    for (root, message, hint) in [
        ("apii", "unknown service \"apii\"", "did you mean \"api\"?"),
        (
            "api → dbb",
            "unknown service \"dbb\"",
            "did you mean \"db\"?",
        ),
        (
            "db → users",
            "\"users\" is a source",
            "services are: api, db",
        ),
    ] {
        let (text, err) = broken(
            end,
            &format!("    ],\n    expect: (verdict: Stable, root: \"{root}\"),\n)"),
        );
        expect_problem(
            &err,
            position_of(&text, &format!("\"{root}\""), 0),
            message,
            Some(hint),
        );
    }
}
