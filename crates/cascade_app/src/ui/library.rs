//! The scenario library: every `.ron` file under `scenarios/`, with its title and one-line
//! description, grouped by folder; invalid files are listed with their error.

use std::path::{Path, PathBuf};

use bevy_egui::egui::{self, RichText};

use crate::session::AppAction;

/// One library entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryEntry {
    /// The file.
    pub path: PathBuf,
    /// Folder under `scenarios/` (e.g. "teaching").
    pub group: String,
    /// Scenario name, or the file name if it does not load.
    pub title: String,
    /// Description, or the load error.
    pub description: String,
    /// Loads and validates.
    pub valid: bool,
}

/// Scans a library folder (recursively), sorted by group then title.
pub fn scan(root: &Path) -> Vec<LibraryEntry> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "ron") {
                let group = path
                    .parent()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let entry = match cascade_sim::scenario::load(&path) {
                    Ok(s) => LibraryEntry {
                        path,
                        group,
                        title: s.name,
                        description: s.description,
                        valid: true,
                    },
                    Err(e) => {
                        let title = path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        LibraryEntry {
                            path,
                            group,
                            title,
                            description: e.to_string(),
                            valid: false,
                        }
                    }
                };
                out.push(entry);
            }
        }
    }
    out.sort_by(|a, b| {
        (group_rank(&a.group), &a.group, &a.title).cmp(&(group_rank(&b.group), &b.group, &b.title))
    });
    out
}

fn group_rank(group: &str) -> u8 {
    match group {
        "teaching" => 0,
        "incidents" => 1,
        "validation" => 3,
        "bench" => 4,
        _ => 2,
    }
}

/// The library list; `current` is the open file.
pub fn library_ui(
    ui: &mut egui::Ui,
    entries: &[LibraryEntry],
    current: Option<&Path>,
) -> Vec<AppAction> {
    let mut out = Vec::new();
    ui.heading("Scenarios");
    if entries.is_empty() {
        ui.label(
            RichText::new(
                "No scenarios/ folder found next to the program or in the working directory.",
            )
            .weak(),
        );
    }
    let mut last_group = None;
    for e in entries {
        if last_group != Some(&e.group) {
            ui.label(RichText::new(e.group.to_uppercase()).small().weak());
            last_group = Some(&e.group);
        }
        let is_current = current.is_some_and(|c| same_file(c, &e.path));
        let title = if e.valid {
            RichText::new(&e.title)
        } else {
            RichText::new(format!("⚠ {}", e.title)).color(egui::Color32::from_rgb(240, 170, 60))
        };
        let response = ui
            .selectable_label(is_current, title)
            .on_hover_text(if e.valid {
                format!("{}\n\n{}", e.description, e.path.display())
            } else {
                e.description.clone()
            });
        if response.clicked() {
            out.push(AppAction::OpenPath(e.path.clone()));
        }
        if e.valid && !e.description.is_empty() {
            ui.label(RichText::new(&e.description).small().weak());
        }
    }
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Where the library lives: `scenarios/` in the working directory, else beside the program
/// or any of its parent folders (a `cargo run` build lives in `target/…`).
pub fn library_root() -> Option<PathBuf> {
    let rel = PathBuf::from("scenarios");
    if rel.is_dir() {
        return Some(rel);
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|a| a.join("scenarios"))
        .find(|p| p.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_library_lists_teaching_scenarios_first_and_all_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let entries = scan(&root);
        assert!(entries.len() >= 6);
        assert_eq!(entries[0].group, "teaching");
        assert!(
            entries.iter().all(|e| e.valid),
            "{:?}",
            entries.iter().filter(|e| !e.valid).collect::<Vec<_>>()
        );
    }

    #[test]
    fn each_incident_comes_before_its_variants() {
        // Incidents follow the lessons, and a reconstruction is listed before the variants
        // named after it ("X: what, with the fix").
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let entries = scan(&root);
        let groups: Vec<&str> = entries.iter().map(|e| e.group.as_str()).collect();
        let first_incident = groups.iter().position(|&g| g == "incidents").unwrap();
        assert!(groups[..first_incident].iter().all(|&g| g == "teaching"));
        let incidents: Vec<&str> = entries
            .iter()
            .filter(|e| e.group == "incidents")
            .map(|e| e.title.as_str())
            .collect();
        // A variant's title is its incident's followed by ", …".
        let mut variants = 0;
        for (i, title) in incidents.iter().enumerate() {
            for (k, main) in incidents.iter().enumerate() {
                if title.starts_with(&format!("{main}, ")) {
                    assert!(k < i, "{title:?} is listed before {main:?}");
                    variants += 1;
                }
            }
        }
        assert_eq!(variants, 12, "8 incidents and 12 variants: {incidents:?}");
    }
}
