//! Load-dependent service time: Gunther's Universal Scalability Law (USL).
//!
//! A service's own work slows when many requests work on one instance at once: they queue for
//! locks and shared resources (*contention*, α) and pay to keep shared state coherent — cache
//! lines, garbage collection, coordination (*coherency*, β). The USL (N. Gunther, *Guerrilla
//! Capacity Planning*, 2007) writes the slowdown at concurrency `n` as
//!
//! ```text
//! σ(n) = 1 + α·(n − 1) + β·n·(n − 1)
//! ```
//!
//! so that `n` requests at once complete at `X(n) = n / (σ(n)·S)` for a mean own-work time `S`.
//! With β > 0 the throughput peaks at `n* = √((1 − α)/β)` and *falls* beyond it (retrograde
//! scaling: thrashing). A server whose thread pool lets concurrency pass `n*` can therefore
//! have two states at one load: a good one at low concurrency and a bad one where every
//! worker is busy and the pool completes `X(workers)` requests a second, less than arrive.
//!
//! Where the cost comes from memory rather than CPU (a heap that grows with the backlog, and
//! the garbage collection it costs), `n` counts every request at the instance, waiting ones
//! too. A single worker with arrivals λ then drifts up once `λ·S·σ(n) > 1`: a backlog past
//! that point grows by itself.
//!
//! This module is the arithmetic; the engine (`engine/admission.rs`) applies
//! [`Scaling::slowdown`] to each request's own work when it starts, with `n` the requests then
//! in their own work on the instance (or at it), itself included.

/// USL coefficients of one service.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaling {
    /// α: share of the work serialised (locks, a shared resource), in `[0, 1]`.
    pub contention: f64,
    /// β: cost of coherency between each pair of concurrent requests, `≥ 0`.
    pub coherency: f64,
    /// `n` counts every request at the instance (waiting ones too), not only those working.
    pub counts_present: bool,
}

impl From<crate::scenario::ScalingSpec> for Scaling {
    fn from(spec: crate::scenario::ScalingSpec) -> Scaling {
        Scaling {
            contention: spec.contention,
            coherency: spec.coherency,
            counts_present: spec.counts == crate::scenario::ScalingCounts::Present,
        }
    }
}

impl Scaling {
    /// σ(n): how many times longer own work takes with `n` requests working at once (`n ≥ 1`;
    /// 0 is read as 1).
    #[inline]
    pub fn slowdown(&self, n: u32) -> f64 {
        let n = f64::from(n.max(1));
        1.0 + self.contention * (n - 1.0) + self.coherency * n * (n - 1.0)
    }

    /// Requests completed per second with `n` always working, for a mean own-work time of
    /// `mean_s` seconds: `n / (σ(n)·mean_s)`.
    pub fn throughput_per_s(&self, n: u32, mean_s: f64) -> f64 {
        f64::from(n.max(1)) / (self.slowdown(n) * mean_s)
    }

    /// The concurrency of peak throughput, `√((1 − α)/β)` (`None` without coherency cost:
    /// throughput then only grows with `n`).
    pub fn peak_concurrency(&self) -> Option<f64> {
        (self.coherency > 0.0).then(|| ((1.0 - self.contention) / self.coherency).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowdown_is_the_usl_polynomial() {
        let s = Scaling {
            contention: 0.02,
            coherency: 0.0005,
            counts_present: false,
        };
        assert_eq!(s.slowdown(1), 1.0);
        assert_eq!(s.slowdown(0), 1.0);
        // 1 + 0.02·9 + 0.0005·10·9 = 1.225
        assert!((s.slowdown(10) - 1.225).abs() < 1e-12);
        // 1 + 0.02·199 + 0.0005·200·199 = 24.88
        assert!((s.slowdown(200) - 24.88).abs() < 1e-9);
        let amdahl = Scaling {
            contention: 0.1,
            coherency: 0.0,
            counts_present: false,
        };
        // Amdahl's law: speed-up n/σ(n) tends to 1/α.
        assert!((amdahl.throughput_per_s(1_000_000, 1.0) - 10.0).abs() < 1e-3);
        assert_eq!(amdahl.peak_concurrency(), None);
    }

    #[test]
    fn throughput_peaks_at_the_usl_knee() {
        let s = Scaling {
            contention: 0.02,
            coherency: 0.0005,
            counts_present: false,
        };
        let peak = s.peak_concurrency().unwrap();
        assert!((peak - 1960f64.sqrt()).abs() < 1e-9);
        let x = |n| s.throughput_per_s(n, 0.010);
        let best = (1..400).max_by(|&a, &b| x(a).total_cmp(&x(b))).unwrap();
        assert!(best == peak.floor() as u32 || best == peak.ceil() as u32);
        // Retrograde: 200 at once complete fewer than 44 at once.
        assert!(x(200) < x(44));
        assert!((x(200) - 200.0 / (24.88 * 0.010)).abs() < 1e-6);
    }
}
