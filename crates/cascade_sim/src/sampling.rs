//! The sampling feed: the journeys of every Nth client request, leg by leg, for views.
//!
//! When a source starts its Nth request (N = `sample_every`), the request and every attempt it
//! causes downstream carry a journey id. Each message they send — a request leg to a service
//! or a reply leg back — is published as a [`SampledLeg`] with its exact departure and arrival
//! times, so the app can animate real requests. Unsampled requests cost one integer compare.
//! This module owns the types; the engine fills them, `SimPlugin` publishes them as messages.

use bevy_ecs::prelude::*;
use serde::Serialize;

use crate::engine::NodeRef;
use crate::metrics::Outcome;
use crate::time::Nanos;

/// Which way a leg goes and what it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LegKind {
    /// A request attempt (1 = first try, 2+ = retries).
    Request {
        /// Attempt number at the caller.
        attempt: u8,
    },
    /// A reply with the outcome of the attempt.
    Reply {
        /// How the attempt ended.
        outcome: Outcome,
    },
    /// The caller gave up waiting at `arrive_ns` (its timeout); nothing travels.
    Timeout,
}

/// One message of a sampled request, published when it is sent.
#[derive(Message, Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SampledLeg {
    /// Journey (sampled client request) id.
    pub journey: u32,
    /// Sender.
    pub from: NodeRef,
    /// Receiver.
    pub to: NodeRef,
    /// Send time.
    pub depart_ns: Nanos,
    /// Arrival time (for a lost message, when it would have arrived).
    pub arrive_ns: Nanos,
    /// Request, reply or timeout.
    pub kind: LegKind,
    /// Lost on a partitioned link.
    pub lost: bool,
}
