//! Health-check hysteresis: an instance turns unhealthy after `unhealthy_after` failed probes
//! in a row and healthy again after `healthy_after` successes in a row (as in Envoy and AWS
//! load balancers). Also the load balancer's panic rule.

/// One instance's health-check state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthState {
    /// In the load balancer's healthy set.
    pub healthy: bool,
    streak: u32,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            healthy: true,
            streak: 0,
        }
    }
}

impl HealthState {
    /// A probe result; returns true when the healthy flag changed.
    pub fn probe(&mut self, passed: bool, unhealthy_after: u32, healthy_after: u32) -> bool {
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
        }
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
    fn panic_below_the_threshold() {
        assert!(in_panic(4, 10, 0.5));
        assert!(!in_panic(5, 10, 0.5));
        assert!(!in_panic(0, 0, 0.5));
    }
}
