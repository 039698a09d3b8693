//! Target-tracking autoscaling decisions (as in AWS target tracking and the Kubernetes HPA):
//! `desired = ceil(current × metric / target)`, clamped to `[min, max]`, acted on only after
//! the cooldown since the last change. Provisioning delay, concurrency, quota, health checks
//! and warm-up are the engine's (they are about time, not arithmetic).

/// What the autoscaler decides at an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep the current count.
    Hold,
    /// Start this many new instances.
    ScaleOut(u32),
    /// Retire this many instances.
    ScaleIn(u32),
}

/// The desired instance count for `current` instances at `metric` against `target`.
pub fn desired(current: u32, metric: f64, target: f64, min: u32, max: u32) -> u32 {
    if target.is_nan() || target <= 0.0 || !metric.is_finite() {
        return current.clamp(min, max);
    }
    // A tolerance of 1e-9 keeps an exact match from rounding up.
    let raw = (f64::from(current.max(1)) * metric / target - 1e-9)
        .ceil()
        .max(0.0);
    (raw as u32).clamp(min, max.max(min))
}

/// The decision given the current count, instances still being provisioned, the desired
/// count and whether the cooldown has passed.
pub fn decide(
    current: u32,
    provisioning: u32,
    desired: u32,
    cooldown_over: bool,
    scale_in_allowed: bool,
) -> Decision {
    let planned = current + provisioning;
    if desired > planned && cooldown_over {
        Decision::ScaleOut(desired - planned)
    } else if desired < current && provisioning == 0 && cooldown_over && scale_in_allowed {
        Decision::ScaleIn(current - desired)
    } else {
        Decision::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_count_tracks_the_target() {
        assert_eq!(
            desired(4, 0.9, 0.6, 1, 100),
            6,
            "90% on 4 at a 60% target: 6 instances"
        );
        assert_eq!(desired(4, 0.6, 0.6, 1, 100), 4, "on target: keep");
        assert_eq!(
            desired(10, 0.1, 0.6, 2, 100),
            2,
            "low utilisation scales in to the floor"
        );
        assert_eq!(desired(10, 5.0, 0.5, 1, 20), 20, "capped at max");
    }

    #[test]
    fn decisions_respect_cooldown_and_pending_instances() {
        assert_eq!(decide(4, 0, 6, true, true), Decision::ScaleOut(2));
        assert_eq!(
            decide(4, 2, 6, true, true),
            Decision::Hold,
            "already provisioning"
        );
        assert_eq!(decide(4, 0, 6, false, true), Decision::Hold, "cooling down");
        assert_eq!(decide(6, 0, 4, true, true), Decision::ScaleIn(2));
        assert_eq!(
            decide(6, 0, 4, true, false),
            Decision::Hold,
            "scale-in disabled"
        );
    }
}
