//! Particles: real requests of the engine, sampled (every Nth client request, all its legs),
//! moving along the edges. Shape *and* colour tell what they are: a circle is a first attempt
//! or a successful reply, a diamond a retry, a square a failed reply, a triangle a caller
//! giving up (timeout). Lost messages (partitions) fade halfway.
//!
//! A leg is shown for its simulated duration at the current speed, clamped to 0.4–2 s of
//! real time so particles stay readable at any speed; the sampling rate adapts to speed and
//! load to keep about [`JOURNEYS_PER_SECOND`] journeys a second on screen, from 10 to 100,000
//! requests per second, and never more than [`MAX_PARTICLES`] at once.

use bevy::prelude::*;
use cascade_sim::metrics::Outcome;
use cascade_sim::{Engine, LegKind, SampledLeg, SimClock, SimCommand};

use super::CanvasGraph;
use crate::playback::{Pace, Playback, Speed};
use crate::theme;

/// Most particles alive at once.
pub const MAX_PARTICLES: usize = 2000;
/// Sampled journeys per real second the sampling rate aims for (default).
pub const JOURNEYS_PER_SECOND: f64 = 25.0;

/// How dense the particle animation is (set from `--journeys-per-second`).
#[derive(Resource, Debug, Clone, Copy)]
pub struct ParticleDensity {
    /// Journeys per real second.
    pub journeys_per_s: f64,
}

impl Default for ParticleDensity {
    fn default() -> Self {
        ParticleDensity {
            journeys_per_s: JOURNEYS_PER_SECOND,
        }
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ParticleDensity>()
        .add_systems(Startup, particle_assets)
        .add_systems(
            Update,
            (adapt_sampling, spawn_particles, move_particles)
                .chain()
                .in_set(crate::AppSystems::Sync),
        );
}

#[derive(Resource)]
struct ParticleAssets {
    circle: Handle<Mesh>,
    diamond: Handle<Mesh>,
    square: Handle<Mesh>,
    triangle: Handle<Mesh>,
    ok: Handle<ColorMaterial>,
    retry: Handle<ColorMaterial>,
    error: Handle<ColorMaterial>,
    timeout: Handle<ColorMaterial>,
}

/// What a particle shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticleKind {
    /// First attempt.
    Request,
    /// A retry.
    Retry,
    /// A successful reply.
    Reply,
    /// A failed reply.
    Error,
    /// A caller gave up.
    Timeout,
}

/// Classifies a sampled leg.
pub fn kind_of(leg: &SampledLeg) -> ParticleKind {
    match leg.kind {
        LegKind::Request { attempt } if attempt > 1 => ParticleKind::Retry,
        LegKind::Request { .. } => ParticleKind::Request,
        LegKind::Reply {
            outcome: Outcome::Success,
        } => ParticleKind::Reply,
        LegKind::Reply { .. } => ParticleKind::Error,
        LegKind::Timeout => ParticleKind::Timeout,
    }
}

/// Real seconds to show a leg lasting `sim_ns` at `sim_s_per_real_s`.
pub fn visible_duration_s(sim_ns: u64, sim_s_per_real_s: f64) -> f32 {
    let real = sim_ns as f64 / 1e9 / sim_s_per_real_s.max(1e-9);
    real.clamp(0.4, 2.0) as f32
}

/// Sample every Nth client request so about `journeys_per_s` journeys show per second.
pub fn sampling_every(total_rate_per_s: f64, sim_s_per_real_s: f64, journeys_per_s: f64) -> u32 {
    (total_rate_per_s * sim_s_per_real_s / journeys_per_s.max(0.1))
        .ceil()
        .clamp(1.0, 1e9) as u32
}

/// Removes every particle in flight and every sampled leg not yet shown (the screenshot mode,
/// when it leaves its full-speed part: how many frames that part took depends on the machine,
/// and so would which of its journeys were still in the air).
pub fn clear_particles(world: &mut World) {
    world.resource_mut::<Messages<SampledLeg>>().clear();
    let particles: Vec<Entity> = world
        .query_filtered::<Entity, With<Particle>>()
        .iter(world)
        .collect();
    for e in particles {
        world.despawn(e);
    }
}

#[derive(Component, Debug, Clone)]
struct Particle {
    from: Vec2,
    to: Vec2,
    born_s: f32,
    life_s: f32,
    kind: ParticleKind,
    lost: bool,
}

fn particle_assets(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    commands.insert_resource(ParticleAssets {
        circle: meshes.add(Circle::new(4.5)),
        diamond: meshes.add(Rhombus::new(12.0, 12.0)),
        square: meshes.add(Rectangle::new(8.5, 8.5)),
        triangle: meshes.add(Triangle2d::new(
            Vec2::new(0.0, 7.0),
            Vec2::new(-6.5, -5.0),
            Vec2::new(6.5, -5.0),
        )),
        ok: materials.add(theme::PARTICLE_OK),
        retry: materials.add(theme::PARTICLE_RETRY),
        error: materials.add(theme::PARTICLE_ERROR),
        timeout: materials.add(theme::PARTICLE_TIMEOUT),
    });
}

/// Simulated seconds per real second now: the speed asked for, or the speed reached when the
/// run falls behind it, or at max speed.
fn sim_rate(playback: &Playback, achieved: Option<f64>) -> f64 {
    match (playback.playing, playback.speed) {
        (true, Speed::Times(s)) => achieved.map_or(s, |a| a.min(s)).max(1e-3),
        (true, Speed::Max) => achieved.unwrap_or(1.0).max(1.0),
        _ => 1.0,
    }
}

fn adapt_sampling(
    playback: Res<Playback>,
    pace: Res<Pace>,
    clock: Res<SimClock>,
    engine: Res<Engine>,
    mut current: Local<u32>,
    density: Res<ParticleDensity>,
    mut sim: MessageWriter<SimCommand>,
) {
    if !engine.loaded {
        return;
    }
    let now = clock.now_ns();
    let total: f64 = engine
        .model
        .sources
        .iter()
        .filter(|s| !s.removed)
        .map(|s| match s.closed() {
            // A closed population has no rate of its own: at most one request per user and
            // think time (a tenth of a second at least).
            Some((users, think_ms)) => f64::from(users) / (think_ms / 1000.0).max(0.1),
            None => cascade_sim::engine::rate_at(&s.rate, now),
        })
        .sum();
    let every = sampling_every(
        total,
        sim_rate(&playback, pace.achieved_speed),
        density.journeys_per_s,
    );
    // Avoid a command per frame: change only when off by more than 25%.
    let off = *current == 0 || (f64::from(every) / f64::from(*current) - 1.0).abs() > 0.25;
    if off && engine.model.sample_every != every {
        *current = every;
        sim.write(SimCommand::SetSampling { every });
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "spawning reads the feed, the graph and the clock"
)]
fn spawn_particles(
    mut commands: Commands,
    mut legs: MessageReader<SampledLeg>,
    graph: Res<CanvasGraph>,
    playback: Res<Playback>,
    time: Res<Time<Real>>,
    assets: Option<Res<ParticleAssets>>,
    alive: Query<(), With<Particle>>,
    clock: Res<SimClock>,
    mut last_ticks: Local<u64>,
) {
    let Some(assets) = assets else { return };
    // A reset (clock went back) clears the air.
    if clock.ticks_done < *last_ticks {
        legs.clear();
    }
    *last_ticks = clock.ticks_done;
    let mut count = alive.iter().count();
    let rate = match playback.speed {
        Speed::Times(s) => s,
        Speed::Max => 100.0,
    };
    for leg in legs.read() {
        if count >= MAX_PARTICLES {
            break;
        }
        let (Some(from), Some(to)) = (graph.pos_of(leg.from), graph.pos_of(leg.to)) else {
            continue;
        };
        let kind = kind_of(leg);
        let (mesh, material) = match kind {
            ParticleKind::Request | ParticleKind::Reply => (&assets.circle, &assets.ok),
            ParticleKind::Retry => (&assets.diamond, &assets.retry),
            ParticleKind::Error => (&assets.square, &assets.error),
            ParticleKind::Timeout => (&assets.triangle, &assets.timeout),
        };
        let life_s = if kind == ParticleKind::Timeout {
            0.6
        } else {
            visible_duration_s(leg.arrive_ns - leg.depart_ns, rate)
        };
        let (from, to) = if kind == ParticleKind::Timeout {
            (from, from)
        } else {
            (from, to)
        };
        commands.spawn((
            Particle {
                from,
                to,
                born_s: time.elapsed_secs(),
                life_s,
                kind,
                lost: leg.lost,
            },
            Mesh2d(mesh.clone()),
            MeshMaterial2d(material.clone()),
            Transform::from_translation(from.extend(3.0)),
        ));
        count += 1;
    }
}

fn move_particles(
    mut commands: Commands,
    time: Res<Time<Real>>,
    mut particles: Query<(Entity, &Particle, &mut Transform)>,
) {
    let now = time.elapsed_secs();
    for (entity, p, mut t) in &mut particles {
        let f = ((now - p.born_s) / p.life_s).clamp(0.0, 1.0);
        if f >= 1.0 || (p.lost && f >= 0.5) {
            commands.entity(entity).despawn();
            continue;
        }
        let d = p.to - p.from;
        // Requests travel on one side of the edge, replies on the other.
        let side = match p.kind {
            ParticleKind::Reply | ParticleKind::Error => -5.0,
            _ => 5.0,
        };
        let normal = if d.length_squared() > 0.0 {
            Vec2::new(-d.y, d.x).normalize() * side
        } else {
            Vec2::ZERO
        };
        let pos = p.from + d * f + normal;
        t.translation = pos.extend(3.0);
        if p.kind == ParticleKind::Timeout {
            t.scale = Vec3::splat(1.0 + 1.5 * f);
            t.translation.y += 38.0;
        } else if p.lost {
            t.scale = Vec3::splat(1.0 - f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_sim::NodeRef;

    fn leg(kind: LegKind) -> SampledLeg {
        SampledLeg {
            journey: 0,
            from: NodeRef::Source(0),
            to: NodeRef::Service(0),
            depart_ns: 0,
            arrive_ns: 1_000_000,
            kind,
            lost: false,
        }
    }

    #[test]
    fn legs_map_to_distinct_particle_kinds() {
        assert_eq!(
            kind_of(&leg(LegKind::Request { attempt: 1 })),
            ParticleKind::Request
        );
        assert_eq!(
            kind_of(&leg(LegKind::Request { attempt: 2 })),
            ParticleKind::Retry
        );
        assert_eq!(
            kind_of(&leg(LegKind::Reply {
                outcome: Outcome::Success
            })),
            ParticleKind::Reply
        );
        assert_eq!(
            kind_of(&leg(LegKind::Reply {
                outcome: Outcome::Timeout
            })),
            ParticleKind::Error
        );
        assert_eq!(kind_of(&leg(LegKind::Timeout)), ParticleKind::Timeout);
    }

    #[test]
    fn sampling_keeps_particle_density_readable_across_rates_and_speeds() {
        for rate in [10.0, 1_000.0, 100_000.0] {
            for speed in [0.1, 1.0, 100.0] {
                let every = sampling_every(rate, speed, JOURNEYS_PER_SECOND);
                let journeys = rate * speed / f64::from(every);
                assert!(
                    journeys <= JOURNEYS_PER_SECOND + 1e-9,
                    "rate {rate} speed {speed}: {journeys}/s"
                );
                if rate * speed >= JOURNEYS_PER_SECOND {
                    assert!(
                        journeys >= JOURNEYS_PER_SECOND / 2.0,
                        "rate {rate} speed {speed}: only {journeys}/s"
                    );
                }
            }
        }
    }

    #[test]
    fn legs_stay_visible_long_enough_at_any_speed() {
        assert_eq!(visible_duration_s(1_000_000, 1000.0), 0.4);
        assert_eq!(visible_duration_s(1_000_000_000, 0.1), 2.0);
        assert!((visible_duration_s(500_000_000, 1.0) - 0.5).abs() < 1e-6);
    }
}
