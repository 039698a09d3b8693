//! The Cascade model.
