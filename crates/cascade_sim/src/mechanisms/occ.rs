//! Optimistic concurrency on shared keys: a version per key, and key choice with hot keys.
//!
//! A writer reads a key's version, works, then writes: the write commits (and bumps the
//! version) only if the version is still the one it read; otherwise it is a conflict and the
//! caller's retry policy decides what happens (Brooker, "Exponential Backoff And Jitter",
//! 2015). Keys are chosen by a Zipf law of exponent `s` (0: uniform) by inverting its
//! cumulative distribution (a table built once; a binary search per request).

use crate::rng::{self, SimRng};

/// Versions of a set of keys.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Versions {
    versions: Vec<u32>,
}

impl Versions {
    /// `keys` keys at version 0.
    pub fn new(keys: u32) -> Versions {
        Versions {
            versions: vec![0; keys.max(1) as usize],
        }
    }

    /// Number of keys.
    pub fn len(&self) -> u32 {
        self.versions.len() as u32
    }

    /// True for no keys (never: at least one).
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The version of key `k` now.
    #[inline]
    pub fn read(&self, k: u32) -> u32 {
        self.versions.get(k as usize).copied().unwrap_or(0)
    }

    /// Writes key `k` with the version read earlier: commits (true) if no other write
    /// committed since, else a conflict (false).
    #[inline]
    pub fn write(&mut self, k: u32, read_version: u32) -> bool {
        match self.versions.get_mut(k as usize) {
            Some(v) if *v == read_version => {
                *v = v.wrapping_add(1);
                true
            }
            _ => false,
        }
    }
}

/// Zipf-distributed key choice over `0..n`: `P(k) ∝ 1 / (k + 1)^s`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct KeyChooser {
    /// Cumulative probabilities (empty: uniform).
    cdf: Vec<f64>,
    n: u32,
}

impl KeyChooser {
    /// A chooser over `n` keys with exponent `s` (uniform when `s == 0`).
    pub fn new(n: u32, s: f64) -> KeyChooser {
        let n = n.max(1);
        if s <= 0.0 || n == 1 {
            return KeyChooser { cdf: Vec::new(), n };
        }
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (0..n)
            .map(|k| {
                acc += f64::from(k + 1).powf(-s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        KeyChooser { cdf, n }
    }

    /// Number of keys.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// True for no keys (never: at least one).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// One key.
    #[inline]
    pub fn choose(&self, rng: &mut SimRng) -> u32 {
        if self.cdf.is_empty() {
            return rng::below(rng, self.n);
        }
        let u = rng::unit(rng);
        (self.cdf.partition_point(|&c| c <= u) as u32).min(self.n - 1)
    }

    /// Probability of key `k`.
    pub fn probability(&self, k: u32) -> f64 {
        if self.cdf.is_empty() {
            return 1.0 / f64::from(self.n);
        }
        let k = k as usize;
        self.cdf[k] - if k == 0 { 0.0 } else { self.cdf[k - 1] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn a_write_conflicts_after_another_commit() {
        let mut v = Versions::new(1);
        let (a, b) = (v.read(0), v.read(0));
        assert!(v.write(0, a), "first writer commits");
        assert!(!v.write(0, b), "second writer read a stale version");
        let c = v.read(0);
        assert!(v.write(0, c));
    }

    #[test]
    fn zipf_frequencies_follow_the_law() {
        let z = KeyChooser::new(100, 1.0);
        // H(100) = 5.187378; P(0) = 1/H, P(9) = 1/(10 H).
        let h = (1..=100).map(|k| 1.0 / f64::from(k)).sum::<f64>();
        assert!((z.probability(0) - 1.0 / h).abs() < 1e-12);
        let mut r = stream(2, "zipf", 0);
        let n = 200_000;
        let mut counts = [0u32; 100];
        for _ in 0..n {
            counts[z.choose(&mut r) as usize] += 1;
        }
        for k in [0usize, 1, 9, 99] {
            let p = z.probability(k as u32);
            let sd = (p * (1.0 - p) / f64::from(n)).sqrt();
            let f = f64::from(counts[k]) / f64::from(n);
            assert!((f - p).abs() < 4.0 * sd, "key {k}: {f} vs {p}");
        }
        let u = KeyChooser::new(7, 0.0);
        assert!((u.probability(3) - 1.0 / 7.0).abs() < 1e-12);
    }
}
