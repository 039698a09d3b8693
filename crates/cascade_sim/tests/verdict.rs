//! The verdict's scope (`verdict.sources`) on a whole run, against the rule stated in
//! docs/model.md: a small source whose service latches at 10 s (and stays down: nothing resets
//! it) beside a large one that is always served.
//!
//! Pooled, every interval's ratio is at least 1,000 / 1,040 = 0.96 ≥ 0.9: `stable`. Each source
//! on its own, the partners' ratio is 0 from the latch on, the trigger (the latch, an
//! instantaneous fault) is over long before the final window: `metastable`, sustained by the
//! latched instances.

mod common;

use cascade_sim::Simulation;
use cascade_sim::scenario::{Scenario, VerdictKind};
use cascade_sim::summary::summarize;

fn scenario(sources: &str) -> Scenario {
    common::parse(&format!(
        r#"(
            version: 1, name: "a partner API beside a web audience", duration_s: 90, seed: 3,
            sources: [
                (name: "web_users", target: "web", rate: Constant(1000), timeout_ms: 1000.0),
                (name: "partners", target: "partner_api", rate: Constant(40), timeout_ms: 1000.0),
            ],
            services: [
                (name: "web", instances: 2, workers: 20, service_time: Exponential(mean_ms: 5.0)),
                (name: "partner_api", workers: 4, service_time: Exponential(mean_ms: 5.0)),
            ],
            faults: [(at_s: 10.0, fault: LatchedFailure(service: "partner_api"))],
            verdict: (sources: {sources}),
        )"#
    ))
}

fn run(scenario: &Scenario) -> cascade_sim::summary::RunSummary {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(scenario.duration_s);
    summarize(sim.world_mut()).expect("a summary")
}

#[test]
fn pooled_a_small_source_that_stays_down_reads_stable_each_on_its_own_metastable() {
    let pooled = run(&scenario("Pooled"));
    assert_eq!(pooled.verdict, VerdictKind::Stable);
    assert!(
        pooled.final_success_ratio > 0.95,
        "{}",
        pooled.final_success_ratio
    );
    // Each source's own ratio over the final window is reported either way.
    let partners = &pooled.sources["partners"];
    assert_eq!(partners.final_success_ratio, Some(0.0));
    let web = pooled.sources["web_users"]
        .final_success_ratio
        .expect("judged");
    assert!(web > 0.99, "{web}");

    let each = run(&scenario("Each"));
    assert_eq!(each.verdict, VerdictKind::Metastable);
    assert_eq!(each.final_success_ratio, 0.0, "the partners' ratio");
    assert!(
        each.sustained_by.iter().any(|s| s.contains("latched")),
        "{:?}",
        each.sustained_by
    );
    // The scope changes only the judgement, not the run.
    assert_eq!(pooled.sources, each.sources);
}
