//! Service-time distributions, compiled from [`ServiceTime`] for fast sampling in nanoseconds.
//!
//! Pure functions; unit-tested against their closed-form moments. Owns no state.

use crate::rng::{self, SimRng};
use crate::scenario::ServiceTime;
use crate::time::{HORIZON_NS, NS_PER_MS, Nanos};

/// A service-time distribution ready to sample, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Exponential with this mean.
    Exponential {
        /// Mean in ns.
        mean_ns: f64,
    },
    /// Constant.
    Deterministic {
        /// The value in ns.
        ns: Nanos,
    },
    /// `exp(mu + sigma * Z)` in ns.
    LogNormal {
        /// Mean of the log (of ns).
        mu: f64,
        /// Standard deviation of the log.
        sigma: f64,
    },
    /// Uniform on `[min, min + width)` ns.
    Uniform {
        /// Lower bound in ns.
        min_ns: f64,
        /// Width in ns.
        width_ns: f64,
    },
    /// `|N(mean, sd)|` in ns.
    FoldedNormal {
        /// Mean of the underlying normal, ns.
        mu_ns: f64,
        /// Its standard deviation, ns.
        sd_ns: f64,
    },
}

/// Standard normal distribution function Φ(x) (Abramowitz & Stegun 7.1.26 for erfc,
/// absolute error below 1.5e-7).
pub fn std_normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// Mean of `|X|` for `X ~ N(mu, sd)`: `sd·√(2/π)·e^(−mu²/2sd²) + mu·(1 − 2Φ(−mu/sd))`.
pub fn folded_normal_mean(mu: f64, sd: f64) -> f64 {
    if sd <= 0.0 {
        return mu.abs();
    }
    sd * (2.0 / std::f64::consts::PI).sqrt() * (-mu * mu / (2.0 * sd * sd)).exp()
        + mu * (1.0 - 2.0 * std_normal_cdf(-mu / sd))
}

impl Dist {
    /// Compiles a scenario distribution.
    pub fn compile(st: &ServiceTime) -> Dist {
        let ms = NS_PER_MS as f64;
        match *st {
            ServiceTime::Exponential { mean_ms } => Dist::Exponential {
                mean_ns: mean_ms * ms,
            },
            ServiceTime::Deterministic { ms: d } => Dist::Deterministic {
                ns: (d * ms).round() as Nanos,
            },
            ServiceTime::LogNormal { mean_ms, sigma } => {
                // E[X] = exp(mu + sigma²/2)  ⇒  mu = ln(mean) − sigma²/2.
                Dist::LogNormal {
                    mu: (mean_ms * ms).ln() - 0.5 * sigma * sigma,
                    sigma,
                }
            }
            ServiceTime::Uniform { min_ms, max_ms } => Dist::Uniform {
                min_ns: min_ms * ms,
                width_ns: (max_ms - min_ms) * ms,
            },
            ServiceTime::Normal { mean_ms, sd_ms } => Dist::FoldedNormal {
                mu_ns: mean_ms * ms,
                sd_ns: sd_ms * ms,
            },
        }
    }

    /// One sample, in ns, at least 1.
    #[inline]
    pub fn sample_ns(&self, rng: &mut SimRng) -> Nanos {
        let x = match *self {
            Dist::Exponential { mean_ns } => mean_ns * rng::exp1(rng),
            Dist::Deterministic { ns } => return ns.max(1),
            Dist::LogNormal { mu, sigma } => (mu + sigma * rng::std_normal(rng)).exp(),
            Dist::Uniform { min_ns, width_ns } => min_ns + width_ns * rng::unit(rng),
            Dist::FoldedNormal { mu_ns, sd_ns } => (mu_ns + sd_ns * rng::std_normal(rng)).abs(),
        };
        ((x + 0.5) as Nanos).clamp(1, HORIZON_NS)
    }

    /// Mean in ns.
    pub fn mean_ns(&self) -> f64 {
        match *self {
            Dist::Exponential { mean_ns } => mean_ns,
            Dist::Deterministic { ns } => ns as f64,
            Dist::LogNormal { mu, sigma } => (mu + 0.5 * sigma * sigma).exp(),
            Dist::Uniform { min_ns, width_ns } => min_ns + 0.5 * width_ns,
            Dist::FoldedNormal { mu_ns, sd_ns } => folded_normal_mean(mu_ns, sd_ns),
        }
    }

    /// Squared coefficient of variation (variance / mean²).
    pub fn scv(&self) -> f64 {
        match *self {
            Dist::Exponential { .. } => 1.0,
            Dist::Deterministic { .. } => 0.0,
            Dist::LogNormal { sigma, .. } => (sigma * sigma).exp() - 1.0,
            Dist::Uniform { min_ns, width_ns } => {
                let m = min_ns + 0.5 * width_ns;
                if m > 0.0 {
                    width_ns * width_ns / 12.0 / (m * m)
                } else {
                    0.0
                }
            }
            Dist::FoldedNormal { mu_ns, sd_ns } => {
                // E[|X|²] = E[X²] = mu² + sd².
                let m = folded_normal_mean(mu_ns, sd_ns);
                if m > 0.0 {
                    (mu_ns * mu_ns + sd_ns * sd_ns - m * m) / (m * m)
                } else {
                    0.0
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn moments(d: &Dist, n: usize) -> (f64, f64) {
        let mut r = stream(3, "dist", 0);
        let xs: Vec<f64> = (0..n).map(|_| d.sample_ns(&mut r) as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var / (mean * mean))
    }

    #[test]
    fn sample_means_and_variability_match_the_closed_forms() {
        let n = 400_000;
        for st in [
            ServiceTime::Exponential { mean_ms: 5.0 },
            ServiceTime::Deterministic { ms: 2.0 },
            ServiceTime::LogNormal {
                mean_ms: 10.0,
                sigma: 0.5,
            },
            ServiceTime::Uniform {
                min_ms: 1.0,
                max_ms: 3.0,
            },
            ServiceTime::Normal {
                mean_ms: 10.0,
                sd_ms: 2.0,
            },
            // Folded hard: a third of the mass would be negative.
            ServiceTime::Normal {
                mean_ms: 1.0,
                sd_ms: 2.3,
            },
        ] {
            let d = Dist::compile(&st);
            let (mean, scv) = moments(&d, n);
            let expect_mean = st.mean_ms() * 1e6;
            // SE of the sample mean = mean * sqrt(scv / n); 4 SE (plus 1 ns of rounding).
            let se = expect_mean * (d.scv() / n as f64).sqrt();
            assert!(
                (mean - expect_mean).abs() <= 4.0 * se + 1.0,
                "{st:?}: mean {mean} vs {expect_mean}"
            );
            assert!(
                (d.mean_ns() - expect_mean).abs() < 1e-6 * expect_mean,
                "{st:?}: mean_ns"
            );
            // The SCV estimate is looser (fourth moments); 3% relative is > 4 SE for these n.
            assert!(
                (scv - d.scv()).abs() <= 0.03 * d.scv().max(0.01),
                "{st:?}: scv {scv} vs {}",
                d.scv()
            );
        }
    }

    #[test]
    fn normal_cdf_matches_tabulated_values() {
        // Standard tables: Φ(0) = 0.5, Φ(1) = 0.841345, Φ(1.96) = 0.975002, Φ(-2.5) = 0.006210.
        for (x, p) in [
            (0.0, 0.5),
            (1.0, 0.841_345),
            (1.96, 0.975_002),
            (-2.5, 0.006_210),
        ] {
            assert!(
                (std_normal_cdf(x) - p).abs() < 2e-6,
                "Φ({x}) = {} vs {p}",
                std_normal_cdf(x)
            );
        }
        // Folded standard normal: mean √(2/π).
        assert!((folded_normal_mean(0.0, 1.0) - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-9);
    }
}
