//! Circuit breaker (per caller instance and call): closed → open → half-open → closed.
//!
//! Closed: every attempt's outcome is recorded in a rolling window; the breaker opens when
//! the window holds at least `min_requests` attempts and the failure share reaches
//! `error_ratio`, or after `consecutive_failures` failures in a row. Open: attempts fail fast
//! (or take the fallback) without being sent, for `open_ns`. Half-open: up to `probes` trial
//! attempts are let through; if that many succeed it closes (fresh window), if one fails it
//! opens again. Attempts beyond the probes fail fast.

use super::rolling::Rolling;
use crate::time::Nanos;

/// Breaker configuration (times in ns).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Rolling window for the failure share.
    pub window_ns: Nanos,
    /// Failure share that opens it.
    pub error_ratio: f64,
    /// Fewest attempts in the window before the share counts.
    pub min_requests: u64,
    /// Failures in a row that open it (0: not used).
    pub consecutive_failures: u32,
    /// How long it stays open.
    pub open_ns: Nanos,
    /// Trial attempts in half-open.
    pub probes: u32,
}

/// Breaker state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Passing attempts, counting failures.
    Closed,
    /// Failing fast until the time given.
    Open {
        /// When it turns half-open.
        until_ns: Nanos,
    },
    /// Letting trial attempts through.
    HalfOpen {
        /// Trials sent and not answered.
        in_flight: u32,
        /// Trials that succeeded.
        succeeded: u32,
    },
}

/// A breaker. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Breaker {
    /// Configuration.
    pub config: BreakerConfig,
    /// State.
    pub state: BreakerState,
    window: Rolling,
    streak: u32,
    /// Times it opened.
    pub opened: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: BreakerState::Closed,
            window: Rolling::new(config.window_ns),
            streak: 0,
            opened: 0,
        }
    }

    /// May an attempt be sent at `now`? (Counts a half-open trial when it says yes.)
    pub fn allow(&mut self, now: Nanos) -> bool {
        if let BreakerState::Open { until_ns } = self.state
            && now >= until_ns
        {
            self.state = BreakerState::HalfOpen {
                in_flight: 0,
                succeeded: 0,
            };
        }
        match &mut self.state {
            BreakerState::Closed => true,
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen {
                in_flight,
                succeeded,
            } => {
                if *in_flight + *succeeded < self.config.probes {
                    *in_flight += 1;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The outcome of an attempt that was allowed.
    pub fn record(&mut self, now: Nanos, success: bool) {
        match &mut self.state {
            BreakerState::Closed => {
                self.window.add(now, 1, u64::from(!success));
                self.streak = if success { 0 } else { self.streak + 1 };
                let (n, failed) = self.window.totals(now);
                let by_ratio = n >= self.config.min_requests.max(1)
                    && failed as f64 >= self.config.error_ratio * n as f64;
                let by_streak = self.config.consecutive_failures > 0
                    && self.streak >= self.config.consecutive_failures;
                if by_ratio || by_streak {
                    self.trip(now);
                }
            }
            BreakerState::HalfOpen {
                in_flight,
                succeeded,
            } => {
                *in_flight = in_flight.saturating_sub(1);
                if success {
                    *succeeded += 1;
                    if *succeeded >= self.config.probes {
                        self.state = BreakerState::Closed;
                        self.window.clear();
                        self.streak = 0;
                    }
                } else {
                    self.trip(now);
                }
            }
            // A late outcome of an attempt sent before it opened: ignored.
            BreakerState::Open { .. } => {}
        }
    }

    fn trip(&mut self, now: Nanos) {
        self.state = BreakerState::Open {
            until_ns: now + self.config.open_ns,
        };
        self.opened += 1;
        self.streak = 0;
    }

    /// True while open (failing fast).
    pub fn is_open(&self, now: Nanos) -> bool {
        matches!(self.state, BreakerState::Open { until_ns } if now < until_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn config() -> BreakerConfig {
        BreakerConfig {
            window_ns: 1000 * MS,
            error_ratio: 0.5,
            min_requests: 10,
            consecutive_failures: 0,
            open_ns: 500 * MS,
            probes: 2,
        }
    }

    #[test]
    fn opens_on_the_failure_share_once_enough_attempts_were_seen() {
        let mut b = Breaker::new(config());
        for i in 0..9 {
            assert!(b.allow(i * MS));
            b.record(i * MS, false);
        }
        assert_eq!(
            b.state,
            BreakerState::Closed,
            "9 attempts: below min_requests"
        );
        b.record(9 * MS, false);
        assert_eq!(b.state, BreakerState::Open { until_ns: 509 * MS });
        assert!(!b.allow(100 * MS), "fails fast while open");
    }

    #[test]
    fn half_opens_after_the_open_time_and_closes_after_successful_probes() {
        let mut b = Breaker::new(BreakerConfig {
            consecutive_failures: 3,
            ..config()
        });
        for i in 0..3 {
            b.record(i, false);
        }
        assert!(b.is_open(3));
        assert!(b.allow(500 * MS + 2), "half-open: probe 1");
        assert!(b.allow(500 * MS + 3), "probe 2");
        assert!(!b.allow(500 * MS + 4), "no more than 2 probes");
        b.record(501 * MS, true);
        b.record(502 * MS, true);
        assert_eq!(b.state, BreakerState::Closed);
        assert!(b.allow(503 * MS));
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let mut b = Breaker::new(BreakerConfig {
            consecutive_failures: 1,
            ..config()
        });
        b.record(0, false);
        assert!(b.allow(600 * MS));
        b.record(601 * MS, false);
        assert_eq!(
            b.state,
            BreakerState::Open {
                until_ns: 1101 * MS
            }
        );
        assert_eq!(b.opened, 2);
    }
}
