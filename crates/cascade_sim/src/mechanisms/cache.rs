//! Look-aside cache warmth.
//!
//! A cache over a working set of `keys` keys holds a share `warmth` ∈ [0, 1] of them. A
//! request hits with probability `max_hit_ratio × warmth`; a miss asks the backing store and,
//! if the reply comes back in time, fills one key: warmth grows by `(1 − warmth) / keys` (the
//! key was uncached with probability `1 − warmth`). Entries live `ttl` after their fill, which
//! in aggregate makes warmth decay as `e^(−t/ttl)` between fills. A flush sets it to zero.
//! Steady state: fills/s × ttl = cached keys, i.e. `miss_rate × (1 − w)/keys × ttl = w`.

use crate::time::Nanos;

/// Cache warmth state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warmth {
    /// Share of the working set cached.
    pub warmth: f64,
    /// When `warmth` was last brought up to date.
    pub at_ns: Nanos,
}

impl Warmth {
    /// Warmth `w` at time `now`.
    pub fn new(w: f64, now: Nanos) -> Warmth {
        Warmth { warmth: w.clamp(0.0, 1.0), at_ns: now }
    }

    /// Applies TTL decay up to `now` (`ttl_ns == 0`: entries never expire).
    #[inline]
    pub fn decay(&mut self, now: Nanos, ttl_ns: Nanos) {
        if ttl_ns > 0 && now > self.at_ns {
            self.warmth *= (-((now - self.at_ns) as f64) / ttl_ns as f64).exp();
        }
        self.at_ns = self.at_ns.max(now);
    }

    /// A fill completed.
    #[inline]
    pub fn fill(&mut self, keys: u32) {
        self.warmth += (1.0 - self.warmth) / f64::from(keys.max(1));
    }

    /// Hit probability.
    #[inline]
    pub fn hit_probability(&self, max_hit_ratio: f64) -> f64 {
        (max_hit_ratio * self.warmth).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn ttl_decay_is_exponential() {
        let mut w = Warmth::new(0.8, 0);
        w.decay(60 * S, 60 * S);
        assert!((w.warmth - 0.8 * (-1.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn fills_approach_full_warmth_like_the_coupon_collector() {
        let mut w = Warmth::new(0.0, 0);
        for _ in 0..1000 {
            w.fill(1000);
        }
        // After k fills of n keys: 1 − (1 − 1/n)^k.
        let expected = 1.0 - (1.0 - 1.0 / 1000.0f64).powi(1000);
        assert!((w.warmth - expected).abs() < 1e-9);
    }
}
