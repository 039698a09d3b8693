//! Settings remembered between runs: recent files and the panel layout.
//!
//! Stored as RON in the user's config directory (`~/.config/cascade/settings.ron` on Linux),
//! written atomically whenever they change. A missing or unreadable file means defaults; it is
//! never an error the user has to deal with.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use serde::{Deserialize, Serialize};

/// Most recent files kept.
const MAX_RECENT: usize = 10;

/// Settings plugin: loads at startup, saves on change.
pub(crate) fn plugin(app: &mut App) {
    app.insert_resource(Settings::load())
        .add_systems(Last, save_settings_on_change);
}

/// Which panels are shown.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(default)]
pub struct PanelLayout {
    /// Scenario library and fault palette.
    pub left: bool,
    /// Inspector.
    pub right: bool,
    /// Charts and event log.
    pub bottom: bool,
    /// Bottom panel height, logical pixels.
    pub bottom_height: f32,
    /// The story banner over the canvas (a scenario's `story`; its pauses hold either way).
    pub story: bool,
}

impl Default for PanelLayout {
    fn default() -> Self {
        PanelLayout {
            left: true,
            right: true,
            bottom: true,
            bottom_height: 330.0,
            story: true,
        }
    }
}

/// Everything remembered.
#[derive(Resource, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Most recent first.
    pub recent: Vec<PathBuf>,
    /// Panels.
    pub panels: PanelLayout,
    /// Where to save (None: not persisted, e.g. in tests and screenshot mode).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

impl Settings {
    /// Loads from the user's config dir (defaults if absent or unreadable).
    pub fn load() -> Settings {
        let file = dirs::config_dir().map(|d| d.join("cascade").join("settings.ron"));
        let mut settings: Settings = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|text| ron::from_str(&text).ok())
            .unwrap_or_default();
        settings.file = file;
        settings
    }

    /// Puts a file at the top of the recent list.
    pub fn remember(&mut self, path: &Path) {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.recent.retain(|p| p != &path);
        self.recent.insert(0, path);
        self.recent.truncate(MAX_RECENT);
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default())
            .map_err(std::io::Error::other)?;
        cascade_sim::scenario::write_atomically(file, text.as_bytes())
    }
}

fn save_settings_on_change(settings: Res<Settings>) {
    if settings.is_changed()
        && !settings.is_added()
        && let Err(e) = settings.save()
    {
        warn!("could not save settings: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_are_most_recent_first_without_duplicates() {
        let mut s = Settings::default();
        for p in ["/a.ron", "/b.ron", "/a.ron"] {
            s.remember(Path::new(p));
        }
        assert_eq!(
            s.recent,
            vec![PathBuf::from("/a.ron"), PathBuf::from("/b.ron")]
        );
        for i in 0..20 {
            s.remember(Path::new(&format!("/f{i}.ron")));
        }
        assert_eq!(s.recent.len(), MAX_RECENT);
    }

    #[test]
    fn settings_round_trip_through_ron() {
        let s = Settings {
            recent: vec!["/x.ron".into()],
            panels: PanelLayout {
                left: false,
                ..Default::default()
            },
            file: None,
        };
        let text = ron::to_string(&s).unwrap();
        let back: Settings = ron::from_str(&text).unwrap();
        assert_eq!(back, s);
        // A layout saved before the story banner existed shows it.
        let old: PanelLayout =
            ron::from_str("(left: true, right: false, bottom: true, bottom_height: 220.0)")
                .unwrap();
        assert!(old.story && !old.right);
    }
}
