//! Throttling: a token-bucket rate limiter (server side, answers 429 above a rate) and
//! client-side adaptive throttling (Google SRE book, ch. 21, "Client-side throttling").

use super::rolling::Rolling;
use crate::rng::{self, SimRng};
use crate::time::Nanos;

/// A token bucket: `rate_per_s` tokens a second, at most `burst`; each admitted request
/// spends one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    /// Refill rate.
    pub rate_per_s: f64,
    /// Capacity.
    pub burst: f64,
    tokens: f64,
    last_ns: Nanos,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_s: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate_per_s,
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            last_ns: 0,
        }
    }

    /// Admit one request at `now`?
    #[inline]
    pub fn try_take(&mut self, now: Nanos) -> bool {
        let dt = now.saturating_sub(self.last_ns) as f64 / 1e9;
        self.tokens = (self.tokens + dt * self.rate_per_s).min(self.burst);
        self.last_ns = now.max(self.last_ns);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl TokenBucket {
    /// Time from `now` until a token is available (0 if one is).
    pub fn wait_ns(&self, now: Nanos) -> Nanos {
        let dt = now.saturating_sub(self.last_ns) as f64 / 1e9;
        let tokens = (self.tokens + dt * self.rate_per_s).min(self.burst);
        if tokens >= 1.0 || self.rate_per_s <= 0.0 {
            return 0;
        }
        ((1.0 - tokens) / self.rate_per_s * 1e9).ceil() as Nanos
    }
}

/// Client-side adaptive throttling: reject locally with probability
/// `max(0, (requests − K·accepts) / (requests + 1))` over a rolling window, where `requests`
/// counts every request the client wanted to send (including those it rejected) and
/// `accepts` those the backend accepted. With a backend that accepts `C` a second and demand
/// `R > C`, the client settles at sending `K·C` and rejecting `1 − K·C/R` locally.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveThrottle {
    /// K (2 in the SRE book).
    pub k: f64,
    window: Rolling,
}

impl AdaptiveThrottle {
    /// A throttle with multiplier `k` over `window_ns` (the SRE book uses 2 minutes).
    pub fn new(k: f64, window_ns: Nanos) -> AdaptiveThrottle {
        AdaptiveThrottle {
            k,
            window: Rolling::new(window_ns),
        }
    }

    /// The rejection probability now.
    pub fn reject_probability(&mut self, now: Nanos) -> f64 {
        let (requests, accepts) = self.window.totals(now);
        ((requests as f64 - self.k * accepts as f64) / (requests as f64 + 1.0)).max(0.0)
    }

    /// A request wants to go out: counts it, and says whether to send it.
    pub fn admit(&mut self, now: Nanos, rng: &mut SimRng) -> bool {
        let p = self.reject_probability(now);
        self.window.add(now, 1, 0);
        !rng::chance(rng, p)
    }

    /// The backend accepted a request.
    pub fn accepted(&mut self, now: Nanos) {
        self.window.add(now, 0, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn a_token_is_available_exactly_when_the_wait_says() {
        let mut b = TokenBucket::new(100.0, 1.0);
        assert!(b.try_take(0));
        let wait = b.wait_ns(0);
        assert_eq!(wait, 10_000_000, "one token every 10 ms");
        assert!(!b.try_take(wait - 1));
        assert!(b.try_take(wait));
    }

    #[test]
    fn token_bucket_admits_the_rate_after_the_burst() {
        let mut b = TokenBucket::new(100.0, 10.0);
        let admitted = (0..2000).filter(|i| b.try_take(i * S / 1000)).count();
        // 10 burst tokens + 100/s over (almost) 2 s.
        assert!((209..=210).contains(&admitted), "{admitted}");
    }

    #[test]
    fn adaptive_throttle_follows_the_sre_formula() {
        let mut t = AdaptiveThrottle::new(2.0, 120 * S);
        for _ in 0..100 {
            t.window.add(0, 1, 0);
        }
        for _ in 0..30 {
            t.accepted(0);
        }
        // (100 − 2·30) / 101
        assert!((t.reject_probability(0) - 40.0 / 101.0).abs() < 1e-12);
        for _ in 0..30 {
            t.accepted(0);
        }
        assert_eq!(t.reject_probability(0), 0.0, "clamped at zero");
    }

    #[test]
    fn against_a_limited_backend_the_client_sends_about_k_times_capacity() {
        // Demand 1000/s, backend accepts at most 200/s of what it receives (token bucket with
        // enough burst that it accepts min(offered, 200/s) under random arrivals).
        let mut t = AdaptiveThrottle::new(2.0, 10 * S);
        let mut backend = TokenBucket::new(200.0, 50.0);
        let mut rng = rng::stream(1, "throttle-test", 0);
        let (mut sent, mut wanted) = (0u64, 0u64);
        for i in 0..60_000u64 {
            let now = i * S / 1000;
            if t.admit(now, &mut rng) {
                if i >= 30_000 {
                    sent += 1;
                }
                if backend.try_take(now) {
                    t.accepted(now);
                }
            }
            if i >= 30_000 {
                wanted += 1;
            }
        }
        let send_rate = sent as f64 / 30.0;
        // K·C = 400/s: local rejection share 1 − 400/1000 = 0.6.
        assert!((send_rate - 400.0).abs() < 20.0, "sends {send_rate}/s");
        assert!(((wanted - sent) as f64 / wanted as f64 - 0.6).abs() < 0.02);
    }
}
