//! The event log: what happened to the run, in simulated time — faults starting and ending,
//! commands applied or rejected, services changing health, the verdict changing.
//!
//! The engine and the command system append [`SimEvent`]s; `SimPlugin` publishes each as a
//! message and keeps them all in [`EventLog`] (for `events.jsonl` and the app's log). This
//! module owns the types only.

use bevy_ecs::prelude::*;
use serde::Serialize;

use crate::metrics::Health;
use crate::scenario::VerdictKind;
use crate::time::Nanos;

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SimEventKind {
    /// A scenario was loaded (or reset).
    ScenarioLoaded {
        /// Its name.
        name: String,
        /// Its seed.
        seed: u64,
    },
    /// A fault started.
    FaultStarted {
        /// Fault id (stable for the run).
        id: u32,
        /// Kind label.
        kind: String,
        /// Human-readable target.
        target: String,
        /// Planned end, s (None: until cleared).
        until_s: Option<f64>,
    },
    /// A fault ended (its duration passed or it was cleared).
    FaultEnded {
        /// Fault id.
        id: u32,
        /// Kind label.
        kind: String,
        /// Human-readable target.
        target: String,
    },
    /// A live command was applied.
    CommandApplied {
        /// What it did.
        description: String,
    },
    /// The run stopped for good: it needed more memory than a run may hold
    /// (`engine/limits.rs`). Nothing more happens until a scenario is loaded again.
    Halted {
        /// What happened, when, and where.
        reason: String,
        /// What to change in the scenario.
        hint: String,
    },
    /// A live command was refused; the run is unchanged.
    CommandRejected {
        /// Why.
        reason: String,
    },
    /// A service's health changed at an interval close.
    HealthChanged {
        /// Node name.
        node: String,
        /// Previous health.
        from: Health,
        /// New health.
        to: Health,
    },
    /// A resilience mechanism acted: an instance ejected or back, latched, restarting or
    /// ready; an autoscaler decision; a failover; a cache flushed.
    Mechanism {
        /// The service it concerns.
        node: String,
        /// What happened, in words.
        what: String,
    },
    /// An alert fired.
    AlertFired {
        /// Alert name.
        name: String,
        /// The node it watches.
        node: String,
    },
    /// A scripted operator step acted.
    OperatorActed {
        /// What it did.
        description: String,
    },
    /// The run's verdict (so far) changed.
    VerdictChanged {
        /// New verdict.
        #[serde(serialize_with = "verdict_str")]
        verdict: VerdictKind,
    },
}

fn verdict_str<S: serde::Serializer>(v: &VerdictKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_str())
}

/// One entry of the event log.
#[derive(Message, Clone, Debug, PartialEq, Serialize)]
pub struct SimEvent {
    /// When, in simulated ns.
    pub time_ns: Nanos,
    /// What.
    #[serde(flatten)]
    pub kind: SimEventKind,
}

/// Every event of the run so far.
#[derive(Resource, Debug, Clone, Default)]
pub struct EventLog {
    /// In time order.
    pub events: Vec<SimEvent>,
}
