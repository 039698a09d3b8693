//! The screenshot mode as CI runs it: the retry-storm teaching scenario, one second into its
//! fault, rendered under Xvfb with Mesa's software Vulkan (lavapipe); the PNG is checked, not
//! only written. Skipped (with a message) only where no X virtual framebuffer is installed —
//! `scripts/test` installs it, so CI always runs it.

use std::path::Path;
use std::process::Command;

/// Health fill colours (keep in sync with `cascade_app::theme::health_rgb`).
fn health_colors() -> Vec<(&'static str, [u8; 3])> {
    use cascade_sim::metrics::Health;
    [
        Health::Healthy,
        Health::Degraded,
        Health::Failing,
        Health::Down,
    ]
    .into_iter()
    .map(|h| (h.as_str(), cascade_app::theme::health_rgb(h)))
    .collect()
}

fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, pixels)
}

/// True where screenshots can be taken (`xvfb-run` installed); says why not otherwise.
fn can_shoot() -> bool {
    if Command::new("xvfb-run").arg("--help").output().is_err() {
        eprintln!("SKIPPED: xvfb-run is not installed (scripts/install-system-deps installs it)");
        return false;
    }
    true
}

/// Runs the screenshot mode on the retry-storm teaching scenario at `after_s` simulated
/// seconds and returns the PNG's path (`tag` keeps concurrent tests apart).
fn shoot(after_s: &str, tag: &str) -> std::path::PathBuf {
    let out = std::env::temp_dir().join(format!(
        "cascade-screenshot-{}-{tag}.png",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&out);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1600x960x24"])
        .arg(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "--scenario",
            "scenarios/teaching/retry-storm.ron",
            "--after-seconds",
            after_s,
            "--window",
            "1600x960",
            "--screenshot",
        ])
        .arg(&out)
        .current_dir(&repo)
        .env("WGPU_BACKEND", "vulkan")
        .status()
        .expect("xvfb-run starts");
    assert!(
        status.success(),
        "cascade --screenshot exited with {status}"
    );
    out
}

#[test]
fn the_teaching_scenario_with_a_fault_shows_nodes_in_two_health_colours() {
    if !can_shoot() {
        return;
    }
    let out = shoot("31.3", "colours");
    let (w, h, pixels) = decode(&out);
    assert_eq!((w, h), (1600, 960), "the window's size");
    // Count health-coloured pixels on the canvas (between the side panels, above the charts).
    let (x0, x1, y0, y1) = (w as usize * 3 / 10, w as usize * 7 / 10, 40, h as usize / 2);
    let mut counts = [0usize; 4];
    for y in y0..y1 {
        for x in x0..x1 {
            let p = pixels[y * w as usize + x];
            for (i, (_, c)) in health_colors().iter().enumerate() {
                if (0..3).all(|k| p[k].abs_diff(c[k]) <= 6) {
                    counts[i] += 1;
                }
            }
        }
    }
    let named: Vec<(&str, usize)> = health_colors()
        .iter()
        .map(|(n, _)| *n)
        .zip(counts.iter().copied())
        .collect();
    let shown = named.iter().filter(|(_, n)| *n >= 1000).count();
    assert!(
        shown >= 2,
        "expected node bodies in at least two health colours, got {named:?}"
    );
    let background = pixels
        .iter()
        .filter(|p| (0..3).all(|k| p[k].abs_diff([27, 29, 34][k]) <= 3))
        .count();
    assert!(
        background > pixels.len() / 10,
        "the canvas background is there (not a blank or garbage frame)"
    );
    let _ = std::fs::remove_file(&out);
}

/// A screenshot is an output: the same scenario, seed and time give the same picture. Two
/// runs are compared pixel for pixel. Before every frame of the screenshot mode advanced a
/// fixed real time, particles differed from run to run; and a picture taken in the frame that
/// first showed new text (the clock's last digits, Play for Pause) missed those letters, since
/// egui's new glyphs reach the GPU a frame after they are laid out.
#[test]
fn the_same_scenario_seed_and_time_give_the_same_picture() {
    if !can_shoot() {
        return;
    }
    let (a, b) = (shoot("45", "first"), shoot("45", "second"));
    let (w, h, first) = decode(&a);
    let (_, _, second) = decode(&b);
    let differing: Vec<usize> = (0..first.len())
        .filter(|&i| first[i] != second[i])
        .collect();
    if let (Some(&lo), Some(&hi)) = (differing.first(), differing.last()) {
        panic!(
            "{} of {} pixels differ, rows {} to {} ({w}×{h})",
            differing.len(),
            first.len(),
            lo / w as usize,
            hi / w as usize
        );
    }
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
}
