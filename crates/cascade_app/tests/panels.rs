//! Panel logic without a GPU: the pure `*_ui` functions driven with egui_kittest, asserting
//! the actions they return.

use cascade_app::playback::Speed;
use cascade_app::session::{AppAction, Selection};
use cascade_app::ui::faults::{FaultPaletteView, FaultParams, FaultTarget, fault_palette_ui};
use cascade_app::ui::inspector::{SelectionMetrics, inspector_ui};
use cascade_app::ui::top_bar::{TopBarView, top_bar_ui};
use cascade_sim::scenario::{FaultKind, InstanceSelector, KillMode, Scenario};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

fn top_view(playing: bool) -> TopBarView {
    TopBarView {
        title: "retry-storm.ron".into(),
        dirty: false,
        playing,
        speed: Speed::Times(1.0),
        achieved_speed: Some(1.0),
        sim_time_s: 12.5,
        seed: 7,
        verdict: None,
        sustained_by: vec![],
        undo: Some("edit db".into()),
        redo: None,
        building: false,
        recent: vec![],
        panels: Default::default(),
        compare: None,
    }
}

/// The top bar drawn from `view` (seed field "7"), collecting the actions it returns.
fn top_bar_harness(view: TopBarView) -> Harness<'static, Vec<AppAction>> {
    Harness::new_ui_state(
        move |ui, out: &mut Vec<AppAction>| {
            let mut seed = "7".to_owned();
            out.extend(top_bar_ui(ui, &view, &mut seed));
        },
        Vec::new(),
    )
}

fn scenario() -> Scenario {
    Scenario::from_ron_str(cascade_app::DEFAULT_SCENARIO, "built-in").unwrap()
}

#[test]
fn the_pause_button_toggles_playback() {
    let view = top_view(true);
    let mut harness = top_bar_harness(view);
    harness.get_by_label("⏸ Pause").click();
    harness.run();
    assert_eq!(harness.state(), &vec![AppAction::TogglePlay]);
}

#[test]
fn the_file_menu_offers_both_exports() {
    for (item, action) in [
        ("Export run data…", AppAction::ExportDataDialog),
        ("Export picture…", AppAction::ExportPictureDialog),
    ] {
        let view = top_view(true);
        let mut harness = top_bar_harness(view);
        harness.get_by_label("File").click();
        harness.run();
        harness.get_by_label(item).click();
        harness.run();
        assert_eq!(harness.state(), &vec![action]);
    }
}

#[test]
fn the_clock_offers_going_back_to_an_earlier_moment() {
    let view = top_view(false);
    let mut harness = top_bar_harness(view);
    harness.get_by_label("t = 12.5 s").click();
    harness.run();
    // The slider starts at the present moment.
    harness.get_by_label("⏪ Go back to 12.5 s").click();
    harness.run();
    assert_eq!(harness.state(), &vec![AppAction::RewindTo(12.5)]);
    harness.get_by_label("t = 12.5 s").click();
    harness.run();
    harness.get_by_label("⏪ 10 s back").click();
    harness.run();
    assert_eq!(harness.state()[1], AppAction::RewindTo(2.5));
}

#[test]
fn clicking_an_event_goes_back_to_just_before_it() {
    let events = vec![cascade_sim::SimEvent {
        time_ns: 30_000_000_000,
        kind: cascade_sim::SimEventKind::FaultStarted {
            id: 0,
            kind: "slow".into(),
            target: "db".into(),
            until_s: Some(33.0),
        },
    }];
    let mut harness = Harness::new_ui_state(
        move |ui, out: &mut Vec<AppAction>| {
            let mut health = false;
            out.extend(cascade_app::ui::events::event_log_ui(
                ui,
                &events,
                &mut health,
                0.001,
            ));
        },
        Vec::new(),
    );
    harness
        .get_by_label("   30.000 s  ⚡ slow on db until 33.0 s")
        .click();
    harness.run();
    assert_eq!(harness.state().len(), 1);
    let AppAction::RewindTo(t) = harness.state()[0] else {
        panic!("{:?}", harness.state());
    };
    assert!((t - 29.999).abs() < 1e-9, "{t}");
}

#[test]
fn the_bar_shows_the_speed_reached_when_the_run_falls_behind() {
    let mut view = top_view(true);
    view.speed = Speed::Times(1000.0);
    view.achieved_speed = Some(31.0);
    let harness = Harness::new_ui(move |ui| {
        let mut seed = "7".to_owned();
        top_bar_ui(ui, &view, &mut seed);
    });
    harness.get_by_label("running ×31");
    // Keeping up: nothing beside the speed.
    let mut view = top_view(true);
    view.achieved_speed = Some(0.97);
    let harness = Harness::new_ui(move |ui| {
        let mut seed = "7".to_owned();
        top_bar_ui(ui, &view, &mut seed);
    });
    assert!(harness.query_by_label_contains("running").is_none());
}

#[test]
fn undo_is_offered_only_when_there_is_something_to_undo() {
    let view = top_view(false);
    let mut harness = top_bar_harness(view);
    harness.get_by_label("Undo").click();
    harness.get_by_label("Redo").click();
    harness.run();
    assert_eq!(
        harness.state(),
        &vec![AppAction::Undo],
        "redo is disabled: nothing was undone"
    );
}

#[test]
fn clicking_a_fault_button_on_a_selected_node_produces_the_fault_command() {
    let view = FaultPaletteView {
        target: Some(FaultTarget::Service {
            name: "db".into(),
            instances: 1,
            workers: 10,
            cache: false,
            called: true,
            zones: Vec::new(),
        }),
        active: vec![],
        selection: Selection {
            node: Some("db".into()),
            ..Default::default()
        },
    };
    let mut harness = Harness::new_ui_state(
        move |ui, (out, params): &mut (Vec<AppAction>, FaultParams)| {
            out.extend(fault_palette_ui(ui, &view, params));
        },
        (Vec::new(), FaultParams::default()),
    );
    harness.get_by_label("Kill").click();
    harness.run();
    let expected = AppAction::InjectFault {
        fault: FaultKind::Kill {
            service: "db".into(),
            instances: InstanceSelector::All,
            mode: KillMode::Refuse,
        },
        duration_s: Some(10.0),
    };
    assert_eq!(harness.state().0, vec![expected]);

    harness.get_by_label("Slow ×4").click();
    harness.run();
    assert!(
        matches!(&harness.state().0[1], AppAction::InjectFault { fault: FaultKind::Slow { service, factor, .. }, .. } if service == "db" && *factor == 4.0),
        "{:?}",
        harness.state().0
    );
}

#[test]
fn an_edge_offers_partition_and_link_latency() {
    let view = FaultPaletteView {
        target: Some(FaultTarget::Edge {
            from: "api".into(),
            to: "db".into(),
        }),
        active: vec![],
        selection: Selection {
            edge: Some(("api".into(), "db".into())),
            ..Default::default()
        },
    };
    let mut harness = Harness::new_ui_state(
        move |ui, (out, params): &mut (Vec<AppAction>, FaultParams)| {
            params.until_cleared = true;
            out.extend(fault_palette_ui(ui, &view, params));
        },
        (Vec::new(), FaultParams::default()),
    );
    harness.get_by_label("Partition").click();
    harness.run();
    assert_eq!(
        harness.state().0,
        vec![AppAction::InjectFault {
            fault: FaultKind::Partition {
                from: "api".into(),
                to: "db".into()
            },
            duration_s: None
        }]
    );
}

/// The inspector drawn for node `node` of `scenario`, collecting the actions it returns.
fn inspector_harness(scenario: Scenario, node: &str) -> Harness<'static, Vec<AppAction>> {
    let selection = Selection {
        node: Some(node.to_owned()),
        ..Default::default()
    };
    Harness::new_ui_state(
        move |ui, out: &mut Vec<AppAction>| {
            out.extend(inspector_ui(
                ui,
                &scenario,
                &selection,
                &SelectionMetrics::default(),
                false,
            ));
        },
        Vec::new(),
    )
}

#[test]
fn editing_a_parameter_in_the_inspector_returns_the_edited_scenario() {
    let original = scenario();
    let mut harness = inspector_harness(original.clone(), "db");
    harness.get_by_label("propagate").click();
    harness.run();
    let edits: Vec<&AppAction> = harness
        .state()
        .iter()
        .filter(|a| matches!(a, AppAction::Edit { .. }))
        .collect();
    assert_eq!(edits.len(), 1, "{:?}", harness.state());
    let AppAction::Edit { scenario, label } = edits[0] else {
        unreachable!()
    };
    assert_eq!(label, "edit db");
    assert!(scenario.service("db").unwrap().deadline_propagation);
    let mut expected = original;
    expected
        .services
        .iter_mut()
        .find(|s| s.name == "db")
        .unwrap()
        .deadline_propagation = true;
    assert_eq!(**scenario, expected, "only that one field changed");
}

#[test]
fn showing_a_shipped_scenario_in_the_inspector_never_edits_it() {
    // A number field clamps a value outside its range as soon as it is drawn (egui): a field
    // narrower than what the scenario format allows would change a file merely by showing it
    // (the attempts fields once stopped at 100 and turned a shipped 255 into 100). Every node
    // of every shipped scenario, inspector drawn twice, no edit.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .expect("scenarios/")
        .flatten()
        .flat_map(|dir| {
            std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(files.len() > 90, "{} files", files.len());
    for file in files {
        let scenario = cascade_sim::scenario::load(&file).expect("a shipped scenario loads");
        let nodes: Vec<String> = scenario
            .services
            .iter()
            .map(|s| s.name.clone())
            .chain(scenario.sources.iter().map(|s| s.name.clone()))
            .collect();
        for node in nodes {
            let mut harness = inspector_harness(scenario.clone(), &node);
            harness.run();
            let edits: Vec<String> = harness
                .state()
                .iter()
                .filter_map(|a| match a {
                    AppAction::Edit { label, .. } => Some(label.clone()),
                    _ => None,
                })
                .collect();
            assert!(
                edits.is_empty(),
                "{}: showing {node} edited it: {edits:?}",
                file.display()
            );
        }
    }
}
