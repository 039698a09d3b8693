//! Rolling counters over a time window, in fixed buckets (like Hystrix and Envoy): O(1) to
//! record, O(buckets) to read, no allocation after creation.

use crate::time::Nanos;

/// Buckets per window.
pub const BUCKETS: usize = 10;

/// Pairs of counts (e.g. requests and failures) over the last `window_ns`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rolling {
    bucket_ns: Nanos,
    /// Bucket number (time / bucket_ns) of `slots[head]`.
    head_bucket: u64,
    head: usize,
    slots: [(u64, u64); BUCKETS],
}

impl Rolling {
    /// An empty window of `window_ns` (at least `BUCKETS` ns).
    pub fn new(window_ns: Nanos) -> Rolling {
        Rolling {
            bucket_ns: (window_ns / BUCKETS as u64).max(1),
            head_bucket: 0,
            head: 0,
            slots: [(0, 0); BUCKETS],
        }
    }

    fn advance(&mut self, now: Nanos) {
        let bucket = now / self.bucket_ns;
        if bucket <= self.head_bucket {
            return;
        }
        let steps = (bucket - self.head_bucket).min(BUCKETS as u64) as usize;
        for _ in 0..steps {
            self.head = (self.head + 1) % BUCKETS;
            self.slots[self.head] = (0, 0);
        }
        self.head_bucket = bucket;
    }

    /// Adds `(a, b)` at time `now` (times must not go backwards).
    #[inline]
    pub fn add(&mut self, now: Nanos, a: u64, b: u64) {
        self.advance(now);
        let s = &mut self.slots[self.head];
        s.0 += a;
        s.1 += b;
    }

    /// Totals over the window ending at `now`.
    pub fn totals(&mut self, now: Nanos) -> (u64, u64) {
        self.advance(now);
        self.slots
            .iter()
            .fold((0, 0), |(a, b), s| (a + s.0, b + s.1))
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.slots = [(0, 0); BUCKETS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expire_after_the_window() {
        let s = 1_000_000_000;
        let mut r = Rolling::new(10 * s);
        r.add(0, 5, 1);
        r.add(3 * s, 5, 2);
        assert_eq!(r.totals(9 * s), (10, 3));
        assert_eq!(
            r.totals(10 * s),
            (5, 2),
            "the bucket of t = 0 has left the 10-s window"
        );
        assert_eq!(r.totals(100 * s), (0, 0));
        r.add(100 * s, 1, 0);
        assert_eq!(r.totals(100 * s), (1, 0));
    }
}
