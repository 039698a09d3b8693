//! Exports from the running app: *File → Export run data* writes the run so far as
//! `metrics.csv`, `events.jsonl`, `summary.json` and the postmortem `report.md` into a folder —
//! the very files, in the very formats, that `cascade-cli run --out DIR` writes
//! (`cascade_report`) — and *File → Export picture* saves the window as a PNG. Every file is
//! written atomically (temporary file + rename) by `cascade_report::write_file`, its folder
//! created if missing; a failure opens the error window and leaves the run and the document as
//! they were.
//!
//! Owns the two export actions ([`AppAction::ExportDataTo`], [`AppAction::ExportPictureTo`]);
//! not the dialogs that ask for their paths (`ui::dialogs`) nor the output formats
//! (`cascade_report`). The unattended `--screenshot` mode is `screenshot`'s.

use std::path::Path;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use cascade_report::{MetricsCsv, ReportError};
use cascade_sim::metrics::MetricsHistory;
use cascade_sim::{ActiveScenario, Engine, EventLog};

use crate::session::{AppAction, Document, ErrorWindow, Notice};

/// The export plugin.
pub fn plugin(app: &mut App) {
    app.add_systems(Update, start_exports.in_set(crate::AppSystems::Apply));
}

/// Turns export actions into work: data files at once (they read the whole world), a picture
/// when the renderer has captured the next frame.
fn start_exports(mut actions: MessageReader<AppAction>, mut commands: Commands) {
    for action in actions.read() {
        match action {
            AppAction::ExportDataTo(dir) => {
                let dir = dir.clone();
                commands.queue(move |world: &mut World| export_data(world, &dir));
            }
            AppAction::ExportPictureTo(path) => {
                let path = path.clone();
                commands.spawn(Screenshot::primary_window()).observe(
                    move |captured: On<ScreenshotCaptured>,
                          mut errors: ResMut<ErrorWindow>,
                          mut notice: ResMut<Notice>| {
                        match save_picture(&captured.image, &path) {
                            Ok(()) => notice.text = format!("picture saved to {}", path.display()),
                            Err(message) => errors.show(
                                format!("Could not export the picture to {}", path.display()),
                                message,
                            ),
                        }
                    },
                );
            }
            _ => {}
        }
    }
}

/// The run's output files as of now: `(file name, contents)` in the order they are written.
/// No summary or report when there is nothing to summarise (no scenario loaded, or a run the
/// engine stopped).
pub fn run_files(world: &mut World) -> Result<Vec<(&'static str, Vec<u8>)>, ReportError> {
    // A run the engine stopped gets no summary or report, as from `cascade-cli run --out`:
    // their verdict would judge a run that did not finish.
    let summary = if world.resource::<Engine>().halted.is_some() {
        None
    } else {
        cascade_sim::summary::summarize(world)
    };
    let mut csv = MetricsCsv::new();
    csv.append(
        world.resource::<MetricsHistory>(),
        world.resource::<Engine>(),
    )?;
    let mut files = vec![
        ("metrics.csv", csv.into_bytes()?),
        (
            "events.jsonl",
            cascade_report::events_jsonl(world.resource::<EventLog>())?,
        ),
        (
            "causes.csv",
            cascade_report::causes_csv(
                world.resource::<MetricsHistory>(),
                world.resource::<Engine>(),
            )?,
        ),
    ];
    if let Some(summary) = summary {
        // No wall time: a run played, paused and edited in the app has none worth stating.
        let json = cascade_report::summary_json(&summary, None)?;
        files.push(("summary.json", format!("{json}\n").into_bytes()));
        if let Some(scenario) = world.get_resource::<ActiveScenario>() {
            let file = world
                .get_resource::<Document>()
                .and_then(|d| d.path.as_ref())
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().into_owned());
            let report = cascade_report::postmortem_md(&cascade_report::RunRecord {
                scenario: &scenario.0,
                file: file.as_deref(),
                summary: &summary,
                events: world.resource::<EventLog>(),
                history: world.resource::<MetricsHistory>(),
            });
            files.push(("report.md", report.into_bytes()));
        }
    }
    Ok(files)
}

fn export_data(world: &mut World, dir: &Path) {
    let written = run_files(world).and_then(|files| {
        for (name, bytes) in &files {
            cascade_report::write(dir, name, bytes)?;
        }
        Ok(files.len())
    });
    match written {
        Ok(n) => {
            let intervals = world.resource::<MetricsHistory>().intervals();
            world.resource_mut::<Notice>().text = format!(
                "exported {n} files ({intervals} intervals) to {}",
                dir.display()
            );
        }
        Err(e) => world.resource_mut::<ErrorWindow>().show(
            format!("Could not export the run data to {}", dir.display()),
            e.to_string(),
        ),
    }
}

/// Encodes a captured frame as an RGB PNG and writes it atomically, creating its folder (the
/// `--screenshot` mode saves its picture with this too).
pub fn save_picture(image: &Image, path: &Path) -> Result<(), String> {
    let rgb = image
        .clone()
        .try_into_dynamic()
        .map_err(|e| format!("the captured frame cannot be read: {e}"))?
        .to_rgb8();
    let (width, height) = rgb.dimensions();
    let bytes = encode_png(width, height, rgb.as_raw())?;
    cascade_report::write_file(path, &bytes).map_err(|e| e.to_string())
}

/// An 8-bit RGB PNG of `width` × `height` pixels (`rgb`: rows top to bottom, 3 bytes a pixel).
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_decodes_to_the_pixels_it_was_given() {
        let (w, h) = (3u32, 2u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 13 % 256) as u8).collect();
        let bytes = encode_png(w, h, &rgb).expect("encodes");
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..info.buffer_size()], &rgb[..]);
    }

    #[test]
    fn too_few_pixels_is_an_error_not_a_panic() {
        assert!(encode_png(4, 4, &[0; 5]).is_err());
    }
}
