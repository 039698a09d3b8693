//! Health-check hysteresis: an instance turns unhealthy after `unhealthy_after` failed probes
//! in a row and healthy again after `healthy_after` successes in a row (as in Envoy and AWS
//! load balancers); the failed probes in a row that a liveness rule restarts an instance after
//! (Kubernetes' liveness probe). Also the load balancer's panic rule.

/// One instance's health-check state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthState {
    /// In the load balancer's healthy set.
    pub healthy: bool,
    streak: u32,
    /// Failed probes in a row, whatever the healthy flag.
    failed_in_a_row: u32,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            healthy: true,
            streak: 0,
            failed_in_a_row: 0,
        }
    }
}

impl HealthState {
    /// A probe result; returns true when the healthy flag changed.
    pub fn probe(&mut self, passed: bool, unhealthy_after: u32, healthy_after: u32) -> bool {
        self.failed_in_a_row = if passed {
            0
        } else {
            self.failed_in_a_row.saturating_add(1)
        };
        if passed == self.healthy {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if self.healthy {
            unhealthy_after
        } else {
            healthy_after
        };
        if self.streak >= needed.max(1) {
            self.healthy = !self.healthy;
            self.streak = 0;
            true
        } else {
            false
        }
    }

    /// A fresh instance: unhealthy until it passes `healthy_after` probes (new instances take
    /// traffic only after passing health checks).
    pub fn starting() -> HealthState {
        HealthState {
            healthy: false,
            streak: 0,
            failed_in_a_row: 0,
        }
    }

    /// Failed probes in a row (reset by a passed one), for a liveness rule.
    pub fn failed_in_a_row(&self) -> u32 {
        self.failed_in_a_row
    }
}

/// Panic mode (Envoy): when fewer than `threshold` of the instances are healthy, route to all
/// of them, healthy or not.
pub fn in_panic(healthy: usize, total: usize, threshold: f64) -> bool {
    total > 0 && (healthy as f64) < threshold * total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_only_after_enough_probes_in_a_row() {
        let mut h = HealthState::default();
        assert!(!h.probe(false, 3, 2));
        assert!(!h.probe(false, 3, 2));
        assert!(!h.probe(true, 3, 2), "a pass resets the failure streak");
        assert!(!h.probe(false, 3, 2));
        assert!(!h.probe(false, 3, 2));
        assert!(h.probe(false, 3, 2) && !h.healthy);
        assert!(!h.probe(true, 3, 2));
        assert!(h.probe(true, 3, 2) && h.healthy);
    }

    #[test]
    fn failures_in_a_row_count_on_past_the_ejection_and_a_pass_resets_them() {
        let mut h = HealthState::default();
        for n in 1..=5 {
            h.probe(false, 2, 2);
            assert_eq!(h.failed_in_a_row(), n);
        }
        assert!(!h.healthy, "ejected at the second");
        h.probe(true, 2, 2);
        assert_eq!(h.failed_in_a_row(), 0);
    }

    #[test]
    fn panic_below_the_threshold() {
        assert!(in_panic(4, 10, 0.5));
        assert!(!in_panic(5, 10, 0.5));
        assert!(!in_panic(0, 0, 0.5));
    }
}
