//! DNS failures: whether a caller can still resolve its callee's name, and what happens to a
//! call that cannot.
//!
//! Owns the decision at the moment a call's attempt would be sent over a link whose callee's
//! name fails (a `DnsFailure` fault, [`DnsOutage`] in the link's state). It does not own the
//! fault's registration or the link's state (`effects.rs` sets it from the active faults,
//! `crate::faults` combines them) nor the retry that may follow (`on_attempt_failed`).
//!
//! The rule (docs/model.md, "DNS failures"): every caller cached the callee's address at some
//! moment before the failure, so the cached answers run out spread evenly over the TTL after
//! it starts. Instance `i` of `n` of a calling service runs out at `(i + ½)/n` of the TTL; a
//! source stands for many users, so a share `elapsed / ttl` of its requests find theirs run
//! out (drawn per attempt from the source's stream; a request whose last attempt did not
//! resolve stays unresolved). An instance whose process started during the failure has
//! nothing cached. An unresolved attempt is never sent: it fails at once as `unresolved`, the
//! failure starts at the callee whose name failed, and the call's retry policy decides what
//! comes next.

use super::jobs::{NONE, PUSHBACK};
use super::step::Ctx;
use crate::faults::{DnsOutage, dns_fraction};
use crate::metrics::Outcome;
use crate::rng;
use crate::time::Nanos;

impl Ctx<'_, '_> {
    /// Whether job `j`, calling at `at_ns` while its callee's name fails as `outage` says,
    /// has no address for it any more.
    pub(crate) fn unresolved(&mut self, j: u32, outage: DnsOutage, at_ns: Nanos) -> bool {
        if at_ns < outage.since_ns {
            return false;
        }
        let job = self.e.jobs.get(j);
        if job.is_client() {
            // One of the source's users: did their cached answer run out? A user whose last
            // attempt found none still has none.
            if job.last_outcome & !PUSHBACK == Outcome::Unresolved as u8 {
                return true;
            }
            let share = outage.expired_share(at_ns);
            return rng::chance(self.caller_rng(j), share);
        }
        let inst = job.instance;
        if inst == NONE {
            // A service-level caller (no instance): one process, half a TTL in.
            return at_ns >= outage.expiry_ns(0.5);
        }
        let is = &self.instances[inst as usize];
        if is.up_since_ns >= outage.since_ns && is.up_since_ns > 0 {
            // Started during the failure: it never resolved the name.
            return true;
        }
        let slots = self.services[is.service as usize].instances.len() as u32;
        let ordinal = self.ordinal(inst);
        at_ns >= outage.expiry_ns(dns_fraction(ordinal, slots))
    }

    /// Job `j`'s attempt number `attempt` (token `token`) of its call over `link` to service
    /// `to` could not resolve the callee: it is not sent. Counted as a local failure of the
    /// caller (`local_rejected`) and of the link (`fast_failed`), then handled as a failed
    /// attempt: the call's retry policy may try again.
    pub(crate) fn fail_unresolved(&mut self, j: u32, link: u32, to: u32, attempt: u8, token: u32) {
        self.e.links[link as usize].interval.fast_failed += 1;
        let job = self.e.jobs.get_mut(j);
        job.call_attempt = attempt;
        job.token = token;
        job.child = NONE;
        let (client, node) = (job.is_client(), job.node);
        if client {
            self.sources[node as usize].metrics.interval.local_rejected += 1;
        } else {
            self.services[node as usize].metrics.interval.local_rejected += 1;
        }
        self.on_attempt_failed(
            j,
            Outcome::Unresolved,
            false,
            crate::causality::service_code(to),
        );
    }
}
