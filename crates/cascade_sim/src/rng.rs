//! Random streams: one independent, seeded stream per instance, source and load balancer.
//!
//! A stream is derived from the scenario seed and a *stable label* (the node's name and the
//! instance number), never from entity ids or spawn order, so adding a service does not
//! change the samples any other service draws. The generator is Xoshiro256++ from `rand`
//! (exact algorithm, fixed by `Cargo.lock`). Sampling helpers for the distributions the model
//! needs live here too.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng as _, SeedableRng as _};
use rand_distr::{Distribution as _, Exp1, StandardNormal};

/// The generator every model stream uses.
pub type SimRng = Xoshiro256PlusPlus;

/// FNV-1a of a label, for stable stream derivation.
fn fnv1a(label: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finaliser: decorrelates nearby seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream for `(seed, label, index)`, e.g. `(1, "instance:db", 3)`.
pub fn stream(seed: u64, label: &str, index: u64) -> SimRng {
    let key = mix(mix(seed) ^ fnv1a(label)) ^ mix(index.wrapping_add(0x5851_f42d_4c95_7f2d));
    SimRng::seed_from_u64(mix(key))
}

/// Uniform in `[0, 1)` with 53 bits of precision.
#[inline]
pub fn unit(rng: &mut SimRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p`.
#[inline]
pub fn chance(rng: &mut SimRng, p: f64) -> bool {
    p >= 1.0 || (p > 0.0 && unit(rng) < p)
}

/// Exponential with mean 1 (ziggurat).
#[inline]
pub fn exp1(rng: &mut SimRng) -> f64 {
    Exp1.sample(rng)
}

/// Standard normal (ziggurat).
#[inline]
pub fn std_normal(rng: &mut SimRng) -> f64 {
    StandardNormal.sample(rng)
}

/// Uniform integer in `[0, n)`; `n` must be positive.
#[inline]
pub fn below(rng: &mut SimRng, n: u32) -> u32 {
    // Lemire's multiply-shift; bias below 2^-32 is irrelevant for load balancing.
    ((u64::from(rng.next_u32()) * u64::from(n)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a1: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "instance:db", 0), |r, _| Some(r.next_u64()))
            .collect();
        let a2: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "instance:db", 0), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "instance:db", 1), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(8, "instance:db", 0), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a1, a2, "same seed and label give the same stream");
        assert_ne!(a1, b, "another instance gets another stream");
        assert_ne!(a1, c, "another seed gets another stream");
    }

    #[test]
    fn unit_and_exp1_have_the_right_means() {
        // 200k samples: SE of the mean is 1/sqrt(12 n) = 0.00065 (uniform) and 1/sqrt(n) = 0.0022 (exp).
        let mut r = stream(1, "test", 0);
        let n = 200_000;
        let u: f64 = (0..n).map(|_| unit(&mut r)).sum::<f64>() / n as f64;
        let e: f64 = (0..n).map(|_| exp1(&mut r)).sum::<f64>() / n as f64;
        assert!((u - 0.5).abs() < 4.0 * 0.00065, "uniform mean {u}");
        assert!((e - 1.0).abs() < 4.0 * 0.0022, "exponential mean {e}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = stream(1, "t", 0);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[below(&mut r, 3) as usize] += 1;
        }
        // Each count ~ Binomial(30000, 1/3): SD = 81.6.
        for c in counts {
            assert!(
                (f64::from(c) - 10_000.0).abs() < 4.0 * 81.6,
                "counts {counts:?}"
            );
        }
    }
}
