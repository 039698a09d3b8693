//! The event log: what happened to the run, in simulated time — faults starting and ending,
//! commands applied or rejected, services changing health, the verdict changing.
//!
//! The engine and the command system append [`SimEvent`]s; `SimPlugin` publishes each as a
//! message and keeps them all in [`EventLog`] (for `events.jsonl` and the app's log). This
//! module owns the types and their wording ([`SimEventKind::text`]).

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

impl SimEventKind {
    /// The event in words, as the app's log and the postmortem report show it
    /// ("slow on db until 33.0 s", "db: healthy → failing", "verdict: metastable").
    pub fn text(&self) -> String {
        match self {
            SimEventKind::ScenarioLoaded { name, seed } => {
                format!("loaded \"{name}\" (seed {seed})")
            }
            SimEventKind::FaultStarted {
                kind,
                target,
                until_s,
                ..
            } => format!(
                "{kind} on {target} {}",
                until_s.map_or_else(|| "until cleared".to_owned(), |u| format!("until {u:.1} s"))
            ),
            SimEventKind::FaultEnded { kind, target, .. } => format!("{kind} on {target} ended"),
            SimEventKind::CommandApplied { description } => description.clone(),
            SimEventKind::Halted { reason, hint } => format!("{reason}; {hint}"),
            SimEventKind::CommandRejected { reason } => format!("rejected: {reason}"),
            SimEventKind::HealthChanged { node, from, to } => {
                format!("{node}: {} → {}", from.as_str(), to.as_str())
            }
            SimEventKind::Mechanism { node, what } => format!("{node}: {what}"),
            SimEventKind::AlertFired { name, node } => {
                format!("alert \"{name}\" fired (watching {node})")
            }
            SimEventKind::OperatorActed { description } => format!("operator: {description}"),
            SimEventKind::VerdictChanged { verdict } => format!("verdict: {}", verdict.as_str()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_the_log_shows_them() {
        let started = SimEventKind::FaultStarted {
            id: 0,
            kind: "slow".into(),
            target: "db".into(),
            until_s: Some(33.0),
        };
        assert_eq!(started.text(), "slow on db until 33.0 s");
        let health = SimEventKind::HealthChanged {
            node: "db".into(),
            from: Health::Healthy,
            to: Health::Failing,
        };
        assert_eq!(health.text(), "db: healthy → failing");
        let verdict = SimEventKind::VerdictChanged {
            verdict: VerdictKind::Metastable,
        };
        assert_eq!(verdict.text(), "verdict: metastable");
    }
}
