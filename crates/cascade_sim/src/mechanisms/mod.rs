//! Resilience mechanisms as pure state machines: the arithmetic behind circuit breakers,
//! rate limiters, client-side adaptive throttling, health checks, autoscaling, caches,
//! optimistic concurrency and load-dependent service time.
//!
//! Each type here is plain data with methods that take the current time and return a
//! decision; the engine (`crate::engine`) owns when they are consulted and what their
//! decisions do to requests. Every formula is unit-tested against its definition here and
//! against a known result in the integration tests (`tests/mechanisms.rs`).
//!
//! | module | mechanism |
//! |---|---|
//! | [`rolling`] | time-bucketed rolling counters (the windows the others use) |
//! | [`breaker`] | circuit breaker: closed → open → half-open → closed |
//! | [`throttle`] | token-bucket rate limiter; SRE adaptive throttling |
//! | [`health`] | health-check hysteresis (unhealthy after n failures, healthy after m successes) |
//! | [`autoscale`] | target-tracking autoscaler decisions |
//! | [`cache`] | look-aside cache entries: hits, fills, TTL expiry, flushes, single-flight |
//! | [`occ`] | optimistic-concurrency versions; Zipf key choice (hot keys) |
//! | [`scaling`] | load-dependent service time (Universal Scalability Law) |

pub mod autoscale;
pub mod breaker;
pub mod cache;
pub mod health;
pub mod occ;
pub mod rolling;
pub mod scaling;
pub mod throttle;
