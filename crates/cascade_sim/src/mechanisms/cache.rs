//! Look-aside cache entries, key by key.
//!
//! A cache holds a working set of `keys` keys. Each key is cached until its expiry (filled at
//! `t` with a TTL: until `t + ttl`; without a TTL: until flushed). A request for a key hits if
//! the key is cached; a miss asks the backing store and, when the fill succeeds, caches the key.
//! With single-flight coalescing, one fill per key is in flight at a time and later misses of
//! that key wait for it. Warmth (the share of keys cached) is what the hit ratio follows:
//! `hit ratio = max_hit_ratio × warmth` for uniformly chosen keys.
//!
//! Plain data: the engine owns which job waits on which fill; this table only tracks keys.

use crate::rng::{self, SimRng};
use crate::time::{NEVER, Nanos};

/// The entries of one cache.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyTable {
    /// Expiry per key: cached while `now < expiry` (0: not cached; `NEVER`: no TTL).
    expiry: Vec<Nanos>,
    /// A fill of the key is in flight (coalescing).
    filling: Vec<bool>,
}

impl KeyTable {
    /// `keys` keys of which the first `round(warmth × keys)` are cached (with expiries spread
    /// uniformly over one TTL, as in a cache that has been filling steadily).
    pub fn new(keys: u32, warmth: f64, ttl_ns: Option<Nanos>, rng: &mut SimRng) -> KeyTable {
        let n = keys.max(1) as usize;
        let warm = ((warmth.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
        let expiry = (0..n)
            .map(|k| {
                if k >= warm {
                    0
                } else {
                    match ttl_ns {
                        None => NEVER,
                        Some(ttl) => 1 + (rng::unit(rng) * ttl as f64) as Nanos,
                    }
                }
            })
            .collect();
        KeyTable {
            expiry,
            filling: vec![false; n],
        }
    }

    /// Keys in the working set.
    pub fn len(&self) -> u32 {
        self.expiry.len() as u32
    }

    /// True for an empty working set (never: at least one key).
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// Key `k` is cached at `now`.
    #[inline]
    pub fn is_cached(&self, k: u32, now: Nanos) -> bool {
        self.expiry.get(k as usize).is_some_and(|&e| now < e)
    }

    /// A fill of key `k` completed at `now`.
    #[inline]
    pub fn fill(&mut self, k: u32, now: Nanos, ttl_ns: Option<Nanos>) {
        if let Some(e) = self.expiry.get_mut(k as usize) {
            *e = ttl_ns.map_or(NEVER, |ttl| now.saturating_add(ttl.max(1)));
        }
    }

    /// Claims the fill of key `k` for the caller; false if one is already in flight.
    #[inline]
    pub fn begin_fill(&mut self, k: u32) -> bool {
        match self.filling.get_mut(k as usize) {
            Some(f) if !*f => {
                *f = true;
                true
            }
            _ => false,
        }
    }

    /// The in-flight fill of key `k` is over (succeeded or not).
    #[inline]
    pub fn end_fill(&mut self, k: u32) {
        if let Some(f) = self.filling.get_mut(k as usize) {
            *f = false;
        }
    }

    /// Drops each cached key with probability `share` (a flush; `share = 1`: everything).
    pub fn flush(&mut self, share: f64, rng: &mut SimRng) {
        for e in &mut self.expiry {
            if *e != 0 && (share >= 1.0 || rng::chance(rng, share)) {
                *e = 0;
            }
        }
    }

    /// Drops the keys `k` with `k % of == part` (the shard of one instance of `of`).
    pub fn flush_shard(&mut self, part: u32, of: u32) {
        let of = of.max(1) as usize;
        for (k, e) in self.expiry.iter_mut().enumerate() {
            if k % of == part as usize {
                *e = 0;
            }
        }
    }

    /// A TTL storm: every key cached at `now` expires at a uniform time in `[now, now + within)`.
    pub fn expire_within(&mut self, now: Nanos, within_ns: Nanos, rng: &mut SimRng) {
        for e in &mut self.expiry {
            if *e > now {
                *e = now + 1 + (rng::unit(rng) * within_ns as f64) as Nanos;
            }
        }
    }

    /// Share of keys cached at `now` (O(keys): for interval closes and views).
    pub fn warmth(&self, now: Nanos) -> f64 {
        let cached = self.expiry.iter().filter(|&&e| now < e).count();
        cached as f64 / self.expiry.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn fills_expire_after_their_ttl() {
        let mut r = stream(1, "cache", 0);
        let mut t = KeyTable::new(10, 0.0, Some(60 * S), &mut r);
        assert!(!t.is_cached(3, 0));
        t.fill(3, 5 * S, Some(60 * S));
        assert!(t.is_cached(3, 64 * S));
        assert!(
            !t.is_cached(3, 65 * S),
            "expired exactly one TTL after the fill"
        );
        assert_eq!(t.warmth(10 * S), 0.1);
    }

    #[test]
    fn initial_warmth_is_the_share_of_keys_cached() {
        let mut r = stream(1, "cache", 0);
        let t = KeyTable::new(1000, 0.25, None, &mut r);
        assert_eq!(t.warmth(0), 0.25);
    }

    #[test]
    fn a_key_has_one_fill_in_flight_at_a_time() {
        let mut r = stream(1, "cache", 0);
        let mut t = KeyTable::new(4, 0.0, None, &mut r);
        assert!(t.begin_fill(2));
        assert!(!t.begin_fill(2), "a second miss waits for the first fill");
        assert!(t.begin_fill(1), "other keys are independent");
        t.end_fill(2);
        assert!(t.begin_fill(2));
    }

    #[test]
    fn flushes_and_storms() {
        let mut r = stream(1, "cache", 0);
        let mut t = KeyTable::new(1000, 1.0, None, &mut r);
        t.flush_shard(1, 4);
        assert_eq!(t.warmth(0), 0.75, "one of four shards dropped");
        t.expire_within(10 * S, 5 * S, &mut r);
        assert_eq!(t.warmth(10 * S), 0.75, "nothing expires at once");
        assert_eq!(
            t.warmth(15 * S + 1),
            0.0,
            "everything expired within the window"
        );
        let mut t = KeyTable::new(100_000, 1.0, None, &mut r);
        t.flush(0.5, &mut r);
        // Binomial(100000, 0.5): sd 0.0016 of the share; 4 sd.
        assert!((t.warmth(0) - 0.5).abs() < 0.0064);
    }
}
