//! Build mode: add a node of any kind, duplicate, delete. Pure functions from a scenario to
//! an edited scenario (validated again when applied); connecting by drag is in
//! `canvas::interact`.

use bevy::math::Vec2;
use bevy_egui::egui::{self, RichText};
use cascade_sim::scenario::{
    FaultKind, NodeKind, Position, RateProfile, Scenario, ServiceSpec, ServiceTime, SourceSpec,
};

use crate::session::{AppAction, Selection};

/// A name not used by any node: `base`, `base-2`, `base-3`, …
pub fn fresh_name(scenario: &Scenario, base: &str) -> String {
    let taken = |n: &str| scenario.node_names().any(|m| m == n);
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_owned())
}

/// The scenario with a new service of `kind` at `at`.
pub fn add_service(scenario: &Scenario, kind: NodeKind, at: Vec2) -> (Scenario, String) {
    let mut s = scenario.clone();
    let base = match kind {
        NodeKind::ControlPlane => "control".to_owned(),
        k => k.label().to_owned(),
    };
    let name = fresh_name(&s, &base);
    s.services.push(ServiceSpec {
        name: name.clone(),
        kind,
        workers: 8,
        service_time: ServiceTime::Exponential { mean_ms: 5.0 },
        position: Some(Position {
            x: at.x.round(),
            y: at.y.round(),
        }),
        ..Default::default()
    });
    (s, name)
}

/// The scenario with a new client sending to `target` (the first service when none given).
pub fn add_source(scenario: &Scenario, at: Vec2) -> Option<(Scenario, String)> {
    let target = scenario.services.first()?.name.clone();
    let mut s = scenario.clone();
    let name = fresh_name(&s, "clients");
    s.sources.push(SourceSpec {
        name: name.clone(),
        target,
        rate: RateProfile::Constant(100.0),
        timeout_ms: Some(2000.0),
        position: Some(Position {
            x: at.x.round(),
            y: at.y.round(),
        }),
        ..Default::default()
    });
    Some((s, name))
}

/// The scenario with a copy of node `name` beside it (calls kept; nothing calls the copy).
pub fn duplicate_node(scenario: &Scenario, name: &str) -> Option<Scenario> {
    let mut s = scenario.clone();
    let new_name = fresh_name(&s, name);
    if let Some(svc) = scenario.service(name) {
        let mut copy = svc.clone();
        copy.name = new_name;
        copy.position = svc.position.map(|p| Position {
            x: p.x + 60.0,
            y: p.y - 40.0,
        });
        s.services.push(copy);
    } else {
        let src = scenario.source(name)?;
        let mut copy = src.clone();
        copy.name = new_name;
        copy.position = src.position.map(|p| Position {
            x: p.x + 60.0,
            y: p.y - 40.0,
        });
        s.sources.push(copy);
    }
    Some(s)
}

/// The scenario without node `name`: calls to it are removed, sources sending to it are
/// removed, faults on it are dropped, and it leaves the sides of group partitions (which are
/// dropped when that leaves them nothing to cut); zone faults on zones no service is in any
/// more go too. `None` if it would leave no source or no
/// service.
pub fn delete_node(scenario: &Scenario, name: &str) -> Option<Scenario> {
    let mut s = scenario.clone();
    s.sources.retain(|x| x.name != name && x.target != name);
    s.services.retain(|x| x.name != name);
    for svc in &mut s.services {
        svc.calls.retain(|c| c.to != name);
    }
    let mut faults = std::mem::take(&mut s.faults);
    let zones: Vec<String> = s.zone_names().into_iter().map(str::to_owned).collect();
    for f in &mut faults {
        match &mut f.fault {
            FaultKind::GroupPartition { group, others } => {
                group.retain(|n| n != name);
                others.retain(|n| n != name);
            }
            // Zones only the deleted service was in are gone.
            FaultKind::ZonePartition { zones: cut } => cut.retain(|z| zones.contains(z)),
            _ => {}
        }
    }
    let cuts = |f: &FaultKind| match f {
        FaultKind::GroupPartition { group, others } => {
            !group.is_empty() && s.partition_crosses(group, others)
        }
        FaultKind::ZoneOutage { zone, .. } => zones.contains(zone),
        FaultKind::ZonePartition { zones: cut } => {
            !cut.is_empty() && zones.iter().any(|z| !cut.contains(z))
        }
        _ => !f.names_node(name),
    };
    faults.retain(|f| cuts(&f.fault));
    s.faults = faults;
    // What the scenario states in advance about it goes with it.
    if let Some(expect) = &mut s.expect {
        expect.checks.retain(|c| c.node != name);
        if expect.root_names(name) {
            expect.root = None;
        }
    }
    (!s.sources.is_empty() && !s.services.is_empty()).then_some(s)
}

/// The build palette (shown in build mode); `view_center` is where new nodes appear.
pub fn build_palette_ui(
    ui: &mut egui::Ui,
    scenario: &Scenario,
    view_center: Vec2,
) -> Vec<AppAction> {
    let mut out = Vec::new();
    ui.heading("Build");
    ui.label(
        RichText::new("Add a node, then drag from one node to another to connect them.").weak(),
    );
    ui.horizontal_wrapped(|ui| {
        for kind in NodeKind::ALL {
            if ui
                .button(format!("+ {}", kind.label()))
                .on_hover_text(format!("Add a {} node", kind.label()))
                .clicked()
            {
                let (s, name) = add_service(scenario, kind, view_center);
                out.push(AppAction::Edit {
                    scenario: Box::new(s),
                    label: format!("add {name}"),
                });
                out.push(AppAction::Select(Selection {
                    node: Some(name),
                    ..Default::default()
                }));
            }
        }
        if ui
            .button("+ client")
            .on_hover_text("Add a traffic source")
            .clicked()
            && let Some((s, name)) = add_source(scenario, view_center + Vec2::new(0.0, 150.0))
        {
            out.push(AppAction::Edit {
                scenario: Box::new(s),
                label: format!("add {name}"),
            });
            out.push(AppAction::Select(Selection {
                node: Some(name),
                ..Default::default()
            }));
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_sim::scenario::validate;

    fn scenario() -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios/teaching/retry-storm.ron");
        cascade_sim::scenario::load(&path).unwrap()
    }

    #[test]
    fn added_duplicated_and_deleted_nodes_keep_the_scenario_valid() {
        let s = scenario();
        let (s, name) = add_service(&s, NodeKind::Cache, Vec2::ZERO);
        assert_eq!(name, "cache");
        assert_eq!(validate(&s), vec![]);
        let (s2, second) = add_service(&s, NodeKind::Cache, Vec2::ZERO);
        assert_eq!(second, "cache-2");
        let s3 = duplicate_node(&s2, "db").unwrap();
        assert!(s3.service("db-2").is_some());
        assert_eq!(validate(&s3), vec![]);
        let s4 = delete_node(&s3, "db").unwrap();
        assert!(s4.service("db").is_none());
        assert!(
            s4.services
                .iter()
                .all(|x| x.calls.iter().all(|c| c.to != "db")),
            "calls to a deleted node go too"
        );
        assert_eq!(validate(&s4), vec![]);
        assert_eq!(
            s4.expect.as_ref().and_then(|e| e.root.as_deref()),
            None,
            "the stated root was db: it goes with it"
        );
    }

    #[test]
    fn zone_faults_go_with_the_last_service_in_their_zones() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios/mechanisms/zone-partition.ron");
        let mut s = cascade_sim::scenario::load(&path).unwrap();
        // Only db is in zone "d"; web is in a, b and c.
        s.services[1].zones.push("d".into());
        s.faults.push(cascade_sim::scenario::FaultSpec {
            at_s: 5.0,
            duration_s: Some(1.0),
            fault: FaultKind::ZoneOutage {
                zone: "d".into(),
                mode: Default::default(),
            },
        });
        s.faults.push(cascade_sim::scenario::FaultSpec {
            at_s: 6.0,
            duration_s: Some(1.0),
            fault: FaultKind::ZonePartition {
                zones: vec!["d".into(), "a".into()],
            },
        });
        assert_eq!(validate(&s), vec![]);
        let without_db = delete_node(&s, "db").unwrap();
        assert_eq!(validate(&without_db), vec![]);
        let kinds: Vec<&FaultKind> = without_db.faults.iter().map(|f| &f.fault).collect();
        assert_eq!(
            kinds,
            [
                &FaultKind::ZonePartition {
                    zones: vec!["a".into()]
                },
                &FaultKind::ZonePartition {
                    zones: vec!["a".into()]
                }
            ],
            "zone a is still web's: its cuts stay, zone d's outage goes"
        );
    }

    #[test]
    fn a_deleted_node_leaves_the_sides_of_group_partitions() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios/mechanisms/region-split.ron");
        let s = cascade_sim::scenario::load(&path).unwrap();
        let group = |s: &Scenario| match s.faults.first().map(|f| &f.fault) {
            Some(FaultKind::GroupPartition { group, .. }) => Some(group.clone()),
            _ => None,
        };
        let without_db = delete_node(&s, "west-db").unwrap();
        assert_eq!(
            group(&without_db),
            Some(vec!["west-users".to_owned(), "west-api".to_owned()]),
            "west's API still reads east across the split"
        );
        assert_eq!(validate(&without_db), vec![]);
        let without_east_db = delete_node(&s, "east-db").unwrap();
        assert_eq!(group(&without_east_db), None, "nothing crosses: dropped");
        assert_eq!(validate(&without_east_db), vec![]);
    }

    #[test]
    fn a_delete_that_would_leave_no_source_or_service_is_refused() {
        let s = scenario();
        assert!(
            delete_node(&s, "gateway").is_none(),
            "users send to the gateway: deleting it leaves no source"
        );
        let s = delete_node(&s, "db").unwrap();
        assert_eq!(s.services.len(), 3);
        assert!(delete_node(&s, "users").is_none(), "the only source");
    }
}
