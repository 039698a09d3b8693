//! Layered architectures for benchmarks (filled in with the bench issue work).
