//! The verdict's scope (`verdict.sources`) on a whole run, against the rule stated in
//! docs/model.md, on `mechanisms/minority-source.ron`: a small client (40/s) whose service
//! latches at 10 s and stays down, beside a large one (1,000/s) always served.
//!
//! Pooled, every interval's ratio is at least 1,000 / 1,040 = 0.96 ≥ 0.9: `stable`. Each
//! client on its own (the file's setting), the partners' ratio is 0 from the latch, and the
//! trigger (the latch, an instantaneous fault) is over long before the final window:
//! `metastable`, sustained by the latched instance.

mod common;

use cascade_sim::Simulation;
use cascade_sim::scenario::{Scenario, VerdictKind, VerdictSources};
use cascade_sim::summary::RunSummary;

fn run(scenario: &Scenario) -> RunSummary {
    let mut sim = Simulation::new(scenario);
    sim.run_until_s(scenario.duration_s);
    sim.summary()
}

#[test]
fn pooled_a_small_source_that_stays_down_reads_stable_each_on_its_own_metastable() {
    let each_scenario = common::shipped("mechanisms/minority-source.ron");
    assert_eq!(each_scenario.verdict.sources, VerdictSources::Each);
    let mut pooled_scenario = each_scenario.clone();
    pooled_scenario.verdict.sources = VerdictSources::Pooled;

    let pooled = run(&pooled_scenario);
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

    let each = run(&each_scenario);
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
