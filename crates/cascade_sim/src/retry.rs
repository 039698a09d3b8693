//! Retry policy arithmetic: backoff delays with jitter, and the retry-budget token bucket.
//!
//! Pure functions over [`RetryModel`] (compiled from [`RetryPolicy`]); the engine calls them
//! when an attempt fails. Formulas follow Brooker, "Exponential Backoff And Jitter" (AWS
//! Architecture Blog, 2015): exponential `min(cap, base·2^(n−1))` before retry `n`; full
//! jitter `uniform(0, that)`; equal jitter `that/2 + uniform(0, that/2)`; decorrelated
//! `min(cap, uniform(base, previous·3))`. Deciding *whether* to retry lives in the engine.

use crate::metrics::Outcome;
use crate::rng::{self, SimRng};
use crate::scenario::{Backoff, Jitter, RetryPolicy};
use crate::time::{Nanos, ms_to_ns};

/// A retry policy ready to use, times in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryModel {
    /// Total tries per call.
    pub max_attempts: u32,
    /// Backoff kind and parameters.
    pub backoff: BackoffModel,
    /// Jitter kind.
    pub jitter: Jitter,
    /// `(ratio, max_tokens)` of the retry budget, if any.
    pub budget: Option<(f64, f64)>,
    /// The attempt outcomes worth a retry, one bit per [`Outcome`] discriminant.
    pub retry_mask: u32,
    /// Probability of trying again after a failed attempt that may be retried (1: always).
    pub persistence: f64,
}

/// Backoff in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BackoffModel {
    /// No delay.
    None,
    /// A constant delay.
    Constant(Nanos),
    /// Capped exponential.
    Exponential {
        /// First delay.
        base_ns: Nanos,
        /// Largest delay.
        cap_ns: Nanos,
    },
    /// Exponentially distributed with this mean.
    Random {
        /// Mean delay.
        mean_ns: Nanos,
    },
}

impl RetryModel {
    /// Compiles a scenario policy.
    pub fn compile(p: &RetryPolicy) -> RetryModel {
        RetryModel {
            max_attempts: p.max_attempts.max(1),
            backoff: match p.backoff {
                Backoff::None => BackoffModel::None,
                Backoff::Constant { delay_ms } => BackoffModel::Constant(ms_to_ns(delay_ms)),
                Backoff::Exponential { base_ms, cap_ms } => BackoffModel::Exponential {
                    base_ns: ms_to_ns(base_ms),
                    cap_ns: ms_to_ns(cap_ms),
                },
                Backoff::Random { mean_ms } => BackoffModel::Random {
                    mean_ns: ms_to_ns(mean_ms),
                },
            },
            jitter: p.jitter,
            budget: p.budget.map(|b| (b.ratio, b.max_tokens)),
            retry_mask: if p.retry_on.is_empty() {
                u32::MAX
            } else {
                p.retry_on.outcome_mask()
            },
            persistence: p.persistence.clamp(0.0, 1.0),
        }
    }

    /// True if a failed attempt that ended with `outcome` is worth another try (its
    /// `retry_on`); whether one is left is for the caller to check.
    #[inline]
    pub fn retries(&self, outcome: Outcome) -> bool {
        self.retry_mask & (1 << (outcome as u32)) != 0
    }

    /// No retries at all.
    pub const NONE: RetryModel = RetryModel {
        max_attempts: 1,
        backoff: BackoffModel::None,
        jitter: Jitter::None,
        budget: None,
        retry_mask: u32::MAX,
        persistence: 1.0,
    };

    /// The delay before retry number `retry` (1 for the first retry). `previous_ns` is the
    /// previous delay of this call (decorrelated jitter), 0 before the first retry.
    pub fn delay_ns(&self, retry: u32, previous_ns: Nanos, rng: &mut SimRng) -> Nanos {
        let (base, raw) = match self.backoff {
            BackoffModel::None => return 0,
            // Random already: jitter does not apply (validation rejects it).
            BackoffModel::Random { mean_ns } => {
                return (mean_ns as f64 * rng::exp1(rng))
                    .round()
                    .min(crate::time::HORIZON_NS as f64) as Nanos;
            }
            BackoffModel::Constant(d) => (d, d),
            BackoffModel::Exponential { base_ns, cap_ns } => {
                let shift = retry.saturating_sub(1).min(62);
                (base_ns, base_ns.saturating_mul(1u64 << shift).min(cap_ns))
            }
        };
        let uniform = |rng: &mut SimRng, lo: f64, hi: f64| lo + (hi - lo) * rng::unit(rng);
        match self.jitter {
            Jitter::None => raw,
            Jitter::Full => uniform(rng, 0.0, raw as f64).round() as Nanos,
            Jitter::Equal => {
                (raw as f64 / 2.0 + uniform(rng, 0.0, raw as f64 / 2.0)).round() as Nanos
            }
            Jitter::Decorrelated => {
                let cap = match self.backoff {
                    BackoffModel::Exponential { cap_ns, .. } => cap_ns,
                    _ => raw,
                };
                let prev = if previous_ns == 0 { base } else { previous_ns };
                let hi = (prev as f64 * 3.0).max(base as f64);
                (uniform(rng, base as f64, hi).round() as Nanos).min(cap)
            }
        }
    }
}

/// A retry budget token bucket (one per caller instance and call).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    /// Tokens available; a retry needs one.
    pub tokens: f64,
}

impl RetryBudget {
    /// A full bucket for a policy (no budget: never limits).
    pub fn new(model: &RetryModel) -> RetryBudget {
        RetryBudget {
            tokens: model.budget.map_or(f64::INFINITY, |(_, max)| max),
        }
    }

    /// A first attempt was sent: deposit `ratio` tokens.
    #[inline]
    pub fn on_first_attempt(&mut self, model: &RetryModel) {
        if let Some((ratio, max)) = model.budget {
            self.tokens = (self.tokens + ratio).min(max);
        }
    }

    /// Asks to send a retry; spends a token if it may.
    #[inline]
    pub fn try_spend(&mut self, model: &RetryModel) -> bool {
        if model.budget.is_none() {
            return true;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::scenario::{Failure, Failures, RetryBudgetSpec};

    fn model(backoff: Backoff, jitter: Jitter) -> RetryModel {
        RetryModel::compile(&RetryPolicy {
            max_attempts: 10,
            backoff,
            jitter,
            budget: None,
            ..RetryPolicy::default()
        })
    }

    #[test]
    fn a_random_backoff_is_exponential_with_its_mean() {
        // Mean and P(delay > mean) = e^-1 of 40,000 draws: within 4 SE of each.
        let m = model(Backoff::Random { mean_ms: 50.0 }, Jitter::None);
        let mut rng = stream(3, "random-backoff", 0);
        let n = 40_000;
        let draws: Vec<f64> = (0..n)
            .map(|k| m.delay_ns(1 + k % 5, 0, &mut rng) as f64 / 1e6)
            .collect();
        let mean = draws.iter().sum::<f64>() / f64::from(n);
        let se = 50.0 / f64::from(n).sqrt();
        assert!((mean - 50.0).abs() < 4.0 * se, "mean {mean}");
        let above = draws.iter().filter(|&&d| d > 50.0).count() as f64 / f64::from(n);
        let p = (-1.0f64).exp();
        let se = (p * (1.0 - p) / f64::from(n)).sqrt();
        assert!((above - p).abs() < 4.0 * se, "P(> mean) {above}");
    }

    #[test]
    fn exponential_backoff_doubles_then_caps() {
        let m = model(
            Backoff::Exponential {
                base_ms: 5.0,
                cap_ms: 30.0,
            },
            Jitter::None,
        );
        let mut r = stream(1, "t", 0);
        let delays: Vec<Nanos> = (1..=5).map(|n| m.delay_ns(n, 0, &mut r)).collect();
        assert_eq!(
            delays,
            vec![5_000_000, 10_000_000, 20_000_000, 30_000_000, 30_000_000]
        );
    }

    #[test]
    fn jittered_delays_have_the_brooker_means() {
        // Retry 3 with base 5 ms, cap 2 s: raw = 20 ms. Full: mean 10 ms; equal: mean 15 ms.
        let n = 100_000;
        let mut r = stream(1, "t", 0);
        let full = model(
            Backoff::Exponential {
                base_ms: 5.0,
                cap_ms: 2000.0,
            },
            Jitter::Full,
        );
        let equal = model(
            Backoff::Exponential {
                base_ms: 5.0,
                cap_ms: 2000.0,
            },
            Jitter::Equal,
        );
        let mean = |m: &RetryModel, r: &mut SimRng| {
            (0..n).map(|_| m.delay_ns(3, 0, r) as f64).sum::<f64>() / n as f64
        };
        let f = mean(&full, &mut r);
        let e = mean(&equal, &mut r);
        // SDs: uniform(0,20ms) → 5.77 ms, uniform(10,20) → 2.89 ms; SE = SD/sqrt(n).
        assert!(
            (f - 10e6).abs() < 4.0 * 5.77e6 / (n as f64).sqrt(),
            "full jitter mean {f}"
        );
        assert!(
            (e - 15e6).abs() < 4.0 * 2.89e6 / (n as f64).sqrt(),
            "equal jitter mean {e}"
        );
        for _ in 0..1000 {
            let d = equal.delay_ns(3, 0, &mut r);
            assert!(
                (10_000_000..=20_000_000).contains(&d),
                "equal jitter stays in [raw/2, raw]"
            );
        }
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_three_times_previous_capped() {
        let m = model(
            Backoff::Exponential {
                base_ms: 5.0,
                cap_ms: 100.0,
            },
            Jitter::Decorrelated,
        );
        let mut r = stream(1, "t", 0);
        let mut prev = 0;
        for n in 1..50 {
            let d = m.delay_ns(n, prev, &mut r);
            // Brooker: sleep = min(cap, uniform(base, previous * 3)), previous starting at base.
            let hi = if prev == 0 { 15_000_000 } else { prev * 3 };
            assert!(
                d >= 5_000_000 && d <= hi.min(100_000_000),
                "retry {n}: {d} after {prev}"
            );
            prev = d;
        }
    }

    #[test]
    fn retry_on_names_the_failures_worth_another_try() {
        let every = model(Backoff::None, Jitter::None);
        assert!(Outcome::ALL[1..].iter().all(|&o| every.retries(o)));
        let only = RetryModel::compile(&RetryPolicy {
            max_attempts: 3,
            retry_on: Failures::of(&[Failure::Timeout, Failure::Refused]),
            ..RetryPolicy::default()
        });
        let retried: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .filter(|&o| only.retries(o))
            .collect();
        assert_eq!(retried, [Outcome::Refused, Outcome::Timeout]);
    }

    #[test]
    fn budget_allows_ratio_of_first_attempts_in_the_long_run() {
        let m = RetryModel::compile(&RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::None,
            jitter: Jitter::None,
            budget: Some(RetryBudgetSpec {
                ratio: 0.1,
                max_tokens: 10.0,
            }),
            ..RetryPolicy::default()
        });
        let mut b = RetryBudget::new(&m);
        let mut granted = 0;
        for _ in 0..10_000 {
            b.on_first_attempt(&m);
            // Every request wants two retries (everything fails).
            for _ in 0..2 {
                if b.try_spend(&m) {
                    granted += 1;
                }
            }
        }
        // Exactly the initial 10 tokens plus 0.1 per first attempt (± one token of rounding).
        assert!((granted as i64 - 1010).abs() <= 1, "granted {granted}");
    }
}
