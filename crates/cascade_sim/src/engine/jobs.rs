//! The job slab: one small record per request attempt in the system, reused without heap
//! allocation once the slab has grown to the peak number of jobs in flight.
//!
//! A *job* is one attempt at one service (or, for a source, one client request). Handles are
//! `(index, generation)`: freeing a slot bumps its generation, so events that refer to a job
//! that has since finished are recognised as stale and ignored. The slab owns storage only;
//! what jobs do is in `step.rs`.

use super::scheduler::EventHandle;
use crate::time::NEVER;

/// "No job" / "no instance" marker.
pub const NONE: u32 = u32::MAX;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Phase {
    /// Slot unused.
    #[default]
    Free,
    /// On the wire to its service.
    InFlight,
    /// Waiting in an instance queue.
    Queued,
    /// Doing its own work on a worker.
    Working,
    /// Waiting for a downstream attempt (worker held).
    Calling,
    /// Waiting out a retry backoff (worker held).
    Backoff,
    /// At a planned instance: start and completion fixed, not yet counted (`planned.rs`).
    Planned,
    /// At a planned instance: completed and counted; its reply is on the wire.
    Settled,
    /// Waiting for the branches of its parallel calls (worker held; `fan_out.rs`).
    Gathering,
    /// A branch whose call has ended, kept until its parent stops gathering.
    Joined,
}

/// In an outcome carried as `u8` (a reply event, [`Job::last_outcome`]): the answer said
/// "overloaded; don't retry".
pub const PUSHBACK: u8 = 0x80;

/// Job flag: its caller gave up on it (its completion is wasted work).
pub const ORPHANED: u16 = 1;
/// Job flag: a client request held by a source (no worker, no instance).
pub const CLIENT: u16 = 2;
/// Job flag: a planned job's start is counted in the metrics.
pub const STARTED: u16 = 4;
/// Job flag: its own work ends at `done_ns` and its first call is deferred to the request's
/// arrival (one event instead of two; see `Ctx::on_send_arrive`).
pub const DEFERRED: u16 = 8;

/// Job flag: an instance's or a queue's own call (lifecycle call, queue delivery): no worker,
/// no caller; its end goes to [`Job::purpose`]'s handler.
pub const INTERNAL: u16 = 16;
/// Job flag: a health-check probe waiting in an instance's queue.
pub const PROBE: u16 = 32;
/// Job flag: its current call is hedged (a second attempt is out; `alt_*` hold the first).
pub const HEDGED: u16 = 64;
/// Job flag: it holds a place in its current call's bulkhead.
pub const BULKHEAD: u16 = 128;
/// Job flag: it is making the fill of its cache key (others may wait on it).
pub const FILLING: u16 = 256;
/// Job flag: it missed the cache and made the backing call (its success fills the key).
pub const MISSED: u16 = 512;
/// Job flag: the first attempt of its hedged call still answers it ([`JobSide::alt_token`]).
pub const ALT: u16 = 1024;
/// Job flag: an attempt of its current call was dropped by a blackholed instance
/// ([`JobSide::blackhole_inst`], [`JobSide::blackhole_token`]): if that attempt times out, the
/// timeout counts against the instance for outlier ejection.
pub const BLACKHOLED: u16 = 2048;
/// Job flag: one branch of a parallel fan-out: it makes one call (its retries included) for
/// its parent, which holds the worker, and reports the result to it (`fan_out.rs`).
pub const BRANCH: u16 = 4096;
/// Job flag, with [`ORPHANED`]: its caller took another copy's answer (a hedge that lost the
/// race, a quorum met without it). Wasted work, but not a sign that this service failed: the
/// health rule leaves it out.
pub const SUPERSEDED: u16 = 8192;
/// Job flag: a query of death (a `QueryOfDeath` fault): the instance of the fault's service
/// that starts working on it crashes. Every attempt and branch made for it carries it.
pub const POISON: u16 = 16384;
/// Job flag: a hedge (the second copy of an attempt): at a key-routed service it goes to the
/// key's next owner rather than the one its attempt went to.
pub const HEDGE_COPY: u16 = 32768;
/// The flags an attempt or a branch takes from the job it is made for: abandoned work stays
/// abandoned, a query of death stays deadly.
pub const INHERITED: u16 = ORPHANED | POISON;

/// The criticality rank of a job no client request made (an internal call, a probe):
/// `Critical`, the default.
pub const CRITICAL: u8 = crate::scenario::Criticality::Critical.rank();

/// What an [`INTERNAL`] job is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Purpose {
    /// A request (not internal).
    #[default]
    Request,
    /// Startup call number `call_idx` of its instance.
    Startup,
    /// Periodic call number `call_idx` of its instance.
    Periodic,
    /// A work-queue delivery to the consumer.
    Delivery,
}

/// One request attempt (or client request).
#[derive(Clone, Copy, Debug, Default)]
pub struct Job {
    /// Generation of this slot.
    pub generation: u32,
    /// Life phase.
    pub phase: Phase,
    /// [`ORPHANED`], [`CLIENT`], [`STARTED`], [`DEFERRED`].
    pub flags: u16,
    /// This attempt's number at its caller (1 = first try).
    pub attempt: u8,
    /// Attempts made so far for the current downstream call.
    pub call_attempt: u8,
    /// Service index (or source index for client jobs).
    pub node: u32,
    /// Global instance index, or [`NONE`].
    pub instance: u32,
    /// Caller job, or [`NONE`].
    pub parent: u32,
    /// Caller job's generation when this attempt was sent.
    pub parent_gen: u32,
    /// Caller's attempt token for this attempt.
    pub parent_token: u32,
    /// Token of this job's current downstream attempt.
    pub token: u32,
    /// Current downstream attempt, or [`NONE`].
    pub child: u32,
    /// Generation of `child`.
    pub child_gen: u32,
    /// Link this attempt travelled on (replies go back on it).
    pub link: u32,
    /// Index of the current downstream call in the service's call list.
    pub call_idx: u16,
    /// Further repetitions of the current call after the one in progress.
    pub reps_left: u16,
    /// Outcome of the last failed downstream attempt, with [`PUSHBACK`] if its answer said
    /// not to retry.
    pub last_outcome: u8,
    /// Arrival at the instance (creation, for client jobs), ns.
    pub arrive_ns: u64,
    /// Deadline carried with the request, ns (`NEVER` if none).
    pub deadline_ns: u64,
    /// Previous backoff delay of the current call (decorrelated jitter), ns.
    pub prev_backoff_ns: u64,
    /// Sampled journey id, or [`NONE`].
    pub journey: u32,
    /// Creation order of the job (a count of allocations), independent of slot reuse.
    pub serial: u64,
    /// The pending timeout of the current downstream attempt, to cancel when its reply comes.
    pub timeout: EventHandle,
    /// Planned jobs: when own work starts, ns.
    pub start_ns: u64,
    /// Planned jobs and deferred sends: when own work is done, ns.
    pub done_ns: u64,
    /// Internal jobs: what for.
    pub purpose: Purpose,
    /// Cache or optimistic-concurrency key ([`NONE`]: none).
    pub key: u32,
    /// Optimistic concurrency: the version read when its work started.
    pub read_version: u32,
    /// Criticality rank of the client request it serves (3 most critical … 0; internal jobs
    /// and probes 2, `Critical`): priority queues order by it.
    pub criticality: u8,
    /// Where the failure this job reports started ([`crate::causality::Origin::code`]): its
    /// current call's callee when an attempt is sent (the link when the attempt was lost),
    /// then the origin each failed attempt carries. Unknown (0) in a new job.
    pub origin: u16,
}

/// [`JobSide::caller_zone`] of a caller in no zone.
pub const NO_ZONE: u16 = u16::MAX;

/// The rarely used part of a job, kept beside [`Job`] so that a job stays within two cache
/// lines. Not reset when a slot is reused: each field is written before it is read (under the
/// [`HEDGED`] or [`ALT`] flag, or at an internal job's creation).
#[derive(Clone, Copy, Debug, Default)]
pub struct JobSide {
    /// Hedged call: the first attempt's token (valid under [`ALT`]).
    pub alt_token: u32,
    /// Hedged call: the first attempt's child and its generation (valid under [`HEDGED`]).
    pub alt_child: u32,
    /// See `alt_child`.
    pub alt_child_gen: u32,
    /// The key its current call carries to a key-routed service (written when the call's first
    /// attempt is sent, [`NONE`], and when that attempt arrives and draws it).
    pub shard_key: u32,
    /// An attempt to a zone-routed service: its caller's zone ([`NO_ZONE`]: none), written
    /// when it is sent (only then).
    pub caller_zone: u16,
    /// Internal jobs of instances: the instance's incarnation when made (stale after a restart).
    pub incarnation: u32,
    /// The instance that blackholed an attempt of the current call (valid under [`BLACKHOLED`]).
    pub blackhole_inst: u32,
    /// That attempt's token.
    pub blackhole_token: u32,
    /// A branch: the next branch of the same parent and its generation ([`NONE`]: the last).
    pub next_branch: u32,
    /// See `next_branch`.
    pub next_branch_gen: u32,
    /// A gathering parent: branches whose call has not ended yet.
    pub branches_pending: u32,
    /// A gathering parent: successes still needed to go on.
    pub branches_needed: u32,
    /// Queued at an instance with controlled delay: the longest it may wait there, ns.
    pub codel_timeout_ns: u64,
    /// One more than the job's generation when a cancel reached it while it was on the wire
    /// or at work (see [`Jobs::cancelled`]); any other value: not cancelled. A generation
    /// stamp, so that a reused slot needs no reset.
    pub cancelled_gen: u32,
}

impl Job {
    /// True if the caller gave up on it.
    #[inline]
    pub fn orphaned(&self) -> bool {
        self.flags & ORPHANED != 0
    }

    /// True when its caller took another copy's answer ([`SUPERSEDED`]).
    #[inline]
    pub fn superseded(&self) -> bool {
        self.flags & SUPERSEDED != 0
    }

    /// True for client requests held by sources.
    #[inline]
    pub fn is_client(&self) -> bool {
        self.flags & CLIENT != 0
    }

    /// True for an instance's or a queue's own calls.
    #[inline]
    pub fn is_internal(&self) -> bool {
        self.flags & INTERNAL != 0
    }

    /// True for jobs that hold no worker and have no caller: client requests and internal calls.
    #[inline]
    pub fn is_caller_only(&self) -> bool {
        self.flags & (CLIENT | INTERNAL) != 0
    }

    /// True for a branch of a parallel fan-out ([`BRANCH`]).
    #[inline]
    pub fn is_branch(&self) -> bool {
        self.flags & BRANCH != 0
    }
}

/// What a new attempt of a call starts with ([`Jobs::alloc_attempt`]).
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    /// The called service.
    pub to: u32,
    /// The link it travels on (its reply comes back on it).
    pub link: u32,
    /// The calling job and its generation.
    pub parent: u32,
    /// See `parent`.
    pub parent_gen: u32,
    /// The caller's token for this attempt.
    pub token: u32,
    /// Its number at the caller (1 = first try).
    pub attempt: u8,
    /// Deadline it carries, ns (`NEVER`: none).
    pub deadline_ns: u64,
    /// Sampled journey id, or [`NONE`].
    pub journey: u32,
    /// The calling job's flags; it keeps those in [`INHERITED`] (its caller was abandoned, it is
    /// for a query of death).
    pub caller_flags: u16,
    /// Its key at a key-routed service ([`NONE`]: drawn when it arrives).
    pub key: u32,
    /// The calling job's criticality rank, which it carries.
    pub criticality: u8,
}

/// Slab of jobs with generation-checked handles.
#[derive(Debug)]
pub struct Jobs {
    slots: Vec<Job>,
    side: Vec<JobSide>,
    free: Vec<u32>,
    live: usize,
    next_serial: u64,
    /// Most slots the slab grows to before [`Jobs::over_limit`] says so.
    limit: usize,
    /// The slab grew past `limit` (set where it grows, so checking it costs one load).
    over_limit: bool,
}

/// Most requests a run may hold in flight at once (jobs: attempts, client requests, internal
/// calls), about 180 bytes each plus their queue places and events: some 2–3 GB in all. A
/// model that needs more has a load far beyond its capacity with unbounded queues; the engine
/// stops it there rather than let it take the machine's memory (`Engine::halted`).
pub const MAX_JOBS_IN_FLIGHT: usize = 8_000_000;

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            slots: Vec::new(),
            side: Vec::new(),
            free: Vec::new(),
            live: 0,
            next_serial: 0,
            limit: MAX_JOBS_IN_FLIGHT,
            over_limit: false,
        }
    }
}

impl Jobs {
    /// Takes a free slot and returns its index; the job is reset apart from its generation.
    #[inline]
    pub fn alloc(&mut self) -> u32 {
        self.live += 1;
        let serial = self.next_serial;
        self.next_serial += 1;
        if let Some(i) = self.free.pop() {
            let generation = self.slots[i as usize].generation;
            self.slots[i as usize] = Job {
                generation,
                serial,
                ..Job::default()
            };
            i
        } else {
            self.grow(serial)
        }
    }

    /// A new slot at the end of the slab (only until it reaches the peak in flight).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, serial: u64) -> u32 {
        self.slots.push(Job {
            serial,
            ..Job::default()
        });
        self.side.push(JobSide::default());
        self.over_limit |= self.slots.len() > self.limit;
        (self.slots.len() - 1) as u32
    }

    /// A new attempt of a call, on the wire to service `a.to`; returns its index and
    /// generation. See [`Attempt`].
    #[inline(always)]
    pub fn alloc_attempt(&mut self, a: Attempt) -> (u32, u32) {
        let k = self.alloc();
        let job = &mut self.slots[k as usize];
        job.flags = a.caller_flags & INHERITED;
        job.phase = Phase::InFlight;
        job.node = a.to;
        job.instance = NONE;
        job.parent = a.parent;
        job.parent_gen = a.parent_gen;
        job.parent_token = a.token;
        job.attempt = a.attempt;
        job.deadline_ns = a.deadline_ns;
        job.link = a.link;
        job.journey = a.journey;
        job.child = NONE;
        job.key = a.key;
        job.criticality = a.criticality;
        (k, job.generation)
    }

    /// A job that no caller waits for: a client request, an instance's or a queue's own call,
    /// a health probe, a parallel branch. It starts in `phase` with `flags` at `(node,
    /// instance)` (or [`NONE`]), created at `arrive_ns`, without a deadline, its journey
    /// `journey`, of criticality rank `criticality` ([`CRITICAL`] for the engine's own calls).
    #[inline]
    pub fn alloc_root(
        &mut self,
        phase: Phase,
        flags: u16,
        (node, instance): (u32, u32),
        arrive_ns: u64,
        journey: u32,
        criticality: u8,
    ) -> u32 {
        let j = self.alloc();
        let job = &mut self.slots[j as usize];
        job.phase = phase;
        job.flags = flags;
        job.node = node;
        job.instance = instance;
        job.parent = NONE;
        job.child = NONE;
        job.arrive_ns = arrive_ns;
        job.deadline_ns = NEVER;
        job.journey = journey;
        job.criticality = criticality;
        j
    }

    /// Frees a slot (bumps its generation).
    #[inline]
    pub fn free(&mut self, i: u32) {
        let job = &mut self.slots[i as usize];
        debug_assert!(job.phase != Phase::Free, "job {i} freed twice");
        job.generation = job.generation.wrapping_add(1);
        job.phase = Phase::Free;
        self.free.push(i);
        self.live -= 1;
    }

    /// The rarely used part of job `i`.
    #[inline]
    pub fn side(&self, i: u32) -> &JobSide {
        &self.side[i as usize]
    }

    /// The rarely used part of job `i`.
    #[inline]
    pub fn side_mut(&mut self, i: u32) -> &mut JobSide {
        &mut self.side[i as usize]
    }

    /// Records that a cancel reached job `i` (on the wire or at work): it is dropped when it
    /// arrives, or stops when its own work ends.
    #[inline]
    pub fn mark_cancelled(&mut self, i: u32) {
        let generation = self.slots[i as usize].generation;
        self.side[i as usize].cancelled_gen = generation.wrapping_add(1);
    }

    /// True if a cancel reached job `i` in its current generation ([`Jobs::mark_cancelled`]).
    #[inline]
    pub fn cancelled(&self, i: u32) -> bool {
        self.side[i as usize].cancelled_gen == self.slots[i as usize].generation.wrapping_add(1)
    }

    /// True if a reply carrying `token` still answers job `i`'s current call: the current
    /// attempt's, or while hedged, the first attempt's too.
    #[inline]
    pub fn awaits(&self, i: u32, token: u32) -> bool {
        let job = &self.slots[i as usize];
        job.token == token || (job.flags & ALT != 0 && self.side[i as usize].alt_token == token)
    }

    /// The job at `i` (any generation).
    #[inline]
    pub fn get(&self, i: u32) -> &Job {
        &self.slots[i as usize]
    }

    /// The job at `i`, mutable.
    #[inline]
    pub fn get_mut(&mut self, i: u32) -> &mut Job {
        &mut self.slots[i as usize]
    }

    /// The job at `i` if its generation is still `generation` and it is not free.
    #[inline]
    pub fn live(&self, i: u32, generation: u32) -> Option<&Job> {
        let j = self.slots.get(i as usize)?;
        (j.generation == generation && j.phase != Phase::Free).then_some(j)
    }

    /// Jobs in use.
    pub fn live_count(&self) -> usize {
        self.live
    }

    /// Slots ever allocated (peak concurrency).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// True once more than the limit's jobs have been in flight at once (see
    /// [`MAX_JOBS_IN_FLIGHT`]); the engine stops the run then.
    #[inline(always)]
    pub fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// The most jobs in flight before [`Jobs::over_limit`] (default [`MAX_JOBS_IN_FLIGHT`]).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Sets the most jobs in flight (tests use a small one).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.over_limit |= self.slots.len() > limit;
    }

    /// Live jobs, in slot order (for counts, where order does not matter).
    pub fn iter_live(&self) -> impl Iterator<Item = &Job> {
        self.slots.iter().filter(|j| j.phase != Phase::Free)
    }

    /// Indices of live jobs matching a predicate, in creation order (so the result does not
    /// depend on which slots were reused). Slow: for rare events such as kills.
    pub fn find(&self, mut pred: impl FnMut(&Job) -> bool) -> Vec<u32> {
        let mut found: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, j)| j.phase != Phase::Free && pred(j))
            .map(|(i, _)| i as u32)
            .collect();
        found.sort_unstable_by_key(|&i| self.slots[i as usize].serial);
        found
    }

    /// Frees everything.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.live = 0;
        self.next_serial = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_handles_go_stale_and_slots_are_reused() {
        let mut jobs = Jobs::default();
        let a = jobs.alloc();
        jobs.get_mut(a).phase = Phase::Queued;
        let g = jobs.get(a).generation;
        assert!(jobs.live(a, g).is_some());
        jobs.free(a);
        assert!(
            jobs.live(a, g).is_none(),
            "a freed job's old handle is stale"
        );
        let b = jobs.alloc();
        assert_eq!(a, b, "the slot is reused");
        jobs.get_mut(b).phase = Phase::Queued;
        assert!(
            jobs.live(b, g).is_none(),
            "the new occupant has a new generation"
        );
        assert_eq!(jobs.live_count(), 1);
        assert_eq!(jobs.capacity(), 1);
    }

    #[test]
    fn a_job_fits_two_cache_lines() {
        // The hot loop touches a job per event; rarely used fields belong in `JobSide`.
        assert!(size_of::<Job>() <= 128, "{} bytes", size_of::<Job>());
    }
}
