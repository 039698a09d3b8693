//! The event scheduler: FIFO *delay lines* for constant delays, a calendar queue for the rest.
//!
//! Every event has an exact time and a *stamp*; events are popped in `(time, stamp)` order,
//! independent of how they are stored. That order is all determinism needs.
//!
//! **Stamps: ties broken as the event-by-event path breaks them.** An event scheduled now
//! gets a stamp above every stamp given before: events at the same nanosecond come out in
//! the order they were scheduled. The engine's fast paths (planned leaves, deferred sends)
//! schedule some events at another moment than the event-by-event (reference) path would: a
//! planned leaf's reply when the request arrives, not when its work ends. Ordered by
//! scheduling order alone, such an event would win or lose a tie against the wrong events,
//! and the two paths would part at exact-nanosecond ties (which are not rare: at 30,000
//! events a second, two fall on the same nanosecond about every two seconds). So a stamp
//! says where the reference path's scheduling order puts the event, in 64 bits:
//! `stamp = vsched << 18 | rank << 6 | order`.
//! - `vsched`: the moment the reference path schedules it (its parent event is taken then).
//! - `rank`: where that parent stands among the events taken at that moment. They are taken
//!   in their own stamps' order, so by their own `vsched`: the longer before the moment a
//!   parent was scheduled, the earlier it is taken. The rank is that lead, log-linear with 64
//!   steps per power of two ([`parent_rank`]); commands, which act before any event of their
//!   moment, rank 0.
//! - `order`: scheduling order among events with the same moment and rank. Events scheduled
//!   now count up from [`AS_OF_ORDERS`] (and spill over into the next rank, in order); a fast
//!   path's events, scheduled as of another moment ([`AsOf`]: the moment and the parent's
//!   moment, which the fast path knows), count up from 0 per moment and rank, in the order the
//!   fast path schedules them, which is their parents' order.
//!
//! On the reference path every stamp is the least above the last one and at least its
//! moment's and parent's floor, so its order is exactly scheduling order, as before. What is
//! left unmatched: parents whose leads fall in the same step (1.6%) or that were scheduled at
//! the same moment, more than 32 events of a fast path with the same moment and rank, and
//! parents the fast path can only estimate (a planned request's completion when it waited in
//! the queue: taken as scheduled at its start). Past about 9.8 simulated hours, stamps are
//! plain counts (in the upper half of the stamps, so the count never runs out).
//!
//! Most events in a service graph are "now + a constant": a message crossing a link with its
//! latency, a call's timeout. Events scheduled at `now + d` for the same `d` come out of a
//! FIFO in time order (time never runs backwards), so each distinct delay gets a *line* — a
//! ring-buffer push and pop, no sifting. Events at arbitrary times (service completions,
//! Poisson arrivals, jittered backoffs, faults) go to a calendar queue (below) with O(1)
//! push and pop. Popping takes the earliest of the line heads and the calendar's minimum.
//!
//! Measured alternatives (docs/performance.md): a timing wheel of per-tick slots (cache
//! misses on slot vectors), a binary heap (a mispredicted branch per level: ~45 ns per
//! pop+push of a 25-event heap on the reference machine) and a radix heap (far-future
//! timeouts are redistributed many times) were all slower on service graphs. Pure data
//! structure; knows nothing about what events mean.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::time::Nanos;

/// What an event does; the engine interprets `a`, `b`, `c` per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A source's next request is due. `a` source, `b` arrival token.
    SourceArrival,
    /// An attempt reaches the called service. `a` job, `b` generation.
    RequestArrive,
    /// A job's own work is done. `a` job, `b` generation.
    WorkDone,
    /// A reply reaches the caller. `a` caller job, `b` generation, `c` attempt token; `outcome`.
    ReplyArrive,
    /// A caller's timeout for one attempt. `a` job, `b` generation, `c` attempt token.
    CallTimeout,
    /// A caller's backoff is over: send the retry. `a` job, `b` generation, `c` token.
    RetryFire,
    /// A scripted or live fault starts. `a` fault id.
    FaultStart,
    /// A fault ends. `a` fault id.
    FaultEnd,
    /// A deferred send: a job's own work ended and its first call's request arrives now.
    /// `a` job, `b` generation.
    SendArrive,
    /// A planned job's reply reaches its caller. `a` job, `b` generation.
    PlannedReply,
    /// A planned job with a sampled journey completes. `a` job, `b` generation.
    PlannedDone,
    /// A hedged call's delay passed: send the second attempt. `a` job, `b` generation, `c` token.
    HedgeFire,
    /// A health-check probe of an instance is due. `a` instance, `b` incarnation.
    ProbeFire,
    /// A probe waiting in an instance's queue timed out. `a` instance, `b` probe job, `c` its generation.
    ProbeTimeout,
    /// An instance's restart or provisioning delay is over. `a` instance, `b` incarnation.
    LifeStep,
    /// An instance's periodic call is due. `a` instance, `b` incarnation, `c` call index.
    PeriodicFire,
    /// Rebuild a service's routable instances (an ejection ended). `a` service.
    Reroute,
    /// A work queue may deliver again (rate limit). `a` service.
    QueueWake,
    /// Check whether a primary has been down long enough to fail over. `a` service.
    FailoverCheck,
    /// An operator step acts. `a` step index.
    OperatorFire,
    /// An operator restarts an instance. `a` instance.
    RestartAt,
    /// A fault's next step (config push reaching the next instance, staggered restarts).
    /// `a` fault id, `b` step.
    FaultStep,
    /// A caller's cancel reaches the attempt it gave up on (a service that honours
    /// cancellation). `a` job, `b` generation.
    CancelArrive,
    /// A request waiting for a bulkhead place waited as long as it may. `a` job, `b`
    /// generation, `c` its token when it began to wait.
    BulkheadTimeout,
    /// A cancelled line event (never popped: skipped when it reaches the head of its line).
    Cancelled,
}

/// One scheduled event (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Exact time.
    pub time: Nanos,
    /// Scheduling stamp (the tie-break; see the module docs).
    pub stamp: u64,
    /// First argument.
    pub a: u32,
    /// Second argument.
    pub b: u32,
    /// Third argument.
    pub c: u32,
    /// What it is.
    pub kind: EventKind,
    /// Outcome code for replies.
    pub outcome: u8,
    /// Replies: where a failure started ([`crate::causality::Origin::code`]).
    pub origin: u16,
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        key(self).cmp(&key(other))
    }
}

/// Most distinct constant delays that get their own line; others use the calendar.
const MAX_LINES: usize = 16;

const EMPTY_EVENT: Event = Event {
    time: 0,
    stamp: 0,
    a: 0,
    b: 0,
    c: 0,
    kind: EventKind::FaultEnd,
    outcome: 0,
    origin: 0,
};

/// Key of "no event".
const NO_KEY: u128 = u128::MAX;

/// Bits of a stamp's order among the events with the same moment and parent rank.
const STAMP_ORDER_BITS: u32 = 6;
/// Bits of a stamp's parent rank ([`parent_rank`]).
const STAMP_RANK_BITS: u32 = 12;
/// Bits of a stamp below its moment: `stamp = vsched << STAMP_LOW_BITS | rank << 6 | order`.
const STAMP_LOW_BITS: u32 = STAMP_RANK_BITS + STAMP_ORDER_BITS;
/// Moments from which stamps no longer carry them (about 9.8 hours): plain counting, in the
/// upper half of the stamps, which no run can count through.
const STAMP_TIME_LIMIT: Nanos = 1 << (63 - STAMP_LOW_BITS);
/// Largest parent rank.
const RANK_MAX: u64 = (1 << STAMP_RANK_BITS) - 1;
/// Orders below this are for events scheduled as of another moment, the rest for events
/// scheduled now (which come after them among the children of equally ranked parents).
const AS_OF_ORDERS: u64 = 1 << (STAMP_ORDER_BITS - 1);
/// Slots of the table that counts events scheduled as of the same moment and parent rank.
const AS_OF_SLOTS: usize = 64;

/// The rank, among the events taken at one moment, of one scheduled `lead_ns` before it:
/// the longer before, the earlier it is taken (its stamp's moment is earlier), so the lower
/// its rank. Log-linear, 64 steps per power of two (1.6%); 0 is kept for commands.
#[inline(always)]
fn parent_rank(lead_ns: Nanos) -> u64 {
    if lead_ns == 0 {
        return RANK_MAX;
    }
    // The power of two, then the 6 bits below the leading one.
    let zeros = lead_ns.leading_zeros();
    let octave = u64::from(63 - zeros);
    let fraction = ((lead_ns << zeros) >> 57) & 63;
    RANK_MAX - ((octave + 1) * 64 + fraction).min(RANK_MAX - 1)
}

/// Where a fast path's event belongs in the order of ties: the moment the event-by-event
/// path schedules it, and the moment *that* path schedules the event that schedules it (its
/// parent, which the fast path has merged away).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsOf {
    /// When the event-by-event path schedules the event.
    pub vsched_ns: Nanos,
    /// When it schedules the event's parent (at most `vsched_ns`).
    pub parent_vsched_ns: Nanos,
}

impl AsOf {
    /// Scheduled at `vsched_ns` by a parent the fast path cannot know (the end of the work
    /// before it, say), taken as scheduled at that same moment.
    pub fn estimated(vsched_ns: Nanos) -> AsOf {
        AsOf {
            vsched_ns,
            parent_vsched_ns: vsched_ns,
        }
    }
}

/// A FIFO of events in a power-of-two ring buffer. Positions are absolute (the number of
/// events pushed before, wrapping), so a pending event can be found again to cancel it.
#[derive(Debug)]
struct Ring {
    buf: Vec<Event>,
    head: usize,
    len: usize,
    /// Absolute position of the head (events popped so far, wrapping).
    popped: u32,
}

impl Ring {
    fn with_capacity(cap: usize) -> Ring {
        Ring {
            buf: vec![EMPTY_EVENT; cap.next_power_of_two().max(16)],
            head: 0,
            len: 0,
            popped: 0,
        }
    }

    #[inline(always)]
    fn front_key(&self) -> u128 {
        if self.len > 0 {
            key(&self.buf[self.head])
        } else {
            NO_KEY
        }
    }

    #[inline(always)]
    fn back(&self) -> Option<&Event> {
        (self.len > 0).then(|| &self.buf[(self.head + self.len - 1) & (self.buf.len() - 1)])
    }

    /// Appends an event; returns its absolute position.
    #[inline(always)]
    fn push_back(&mut self, ev: Event) -> u32 {
        if self.len == self.buf.len() {
            self.grow();
        }
        let mask = self.buf.len() - 1;
        self.buf[(self.head + self.len) & mask] = ev;
        self.len += 1;
        self.popped.wrapping_add(self.len as u32 - 1)
    }

    #[inline(always)]
    fn pop_front(&mut self) -> Event {
        let ev = self.buf[self.head];
        self.head = (self.head + 1) & (self.buf.len() - 1);
        self.len -= 1;
        self.popped = self.popped.wrapping_add(1);
        ev
    }

    /// Index in `buf` of the pending event at absolute position `pos`, if still queued.
    #[inline(always)]
    fn index_of(&self, pos: u32) -> Option<usize> {
        let offset = pos.wrapping_sub(self.popped) as usize;
        (offset < self.len).then(|| (self.head + offset) & (self.buf.len() - 1))
    }

    /// Drops cancelled events from the head, so the head is always a live event.
    #[inline(always)]
    fn skip_cancelled(&mut self) {
        while self.len > 0 && self.buf[self.head].kind == EventKind::Cancelled {
            self.pop_front();
        }
    }

    #[cold]
    fn grow(&mut self) {
        let cap = self.buf.len();
        let mut buf = vec![EMPTY_EVENT; cap * 2];
        for (i, slot) in buf.iter_mut().take(self.len).enumerate() {
            *slot = self.buf[(self.head + i) & (cap - 1)];
        }
        self.buf = buf;
        self.head = 0;
    }
}

/// A pending event that can be cancelled: its line and absolute position in it. Only events
/// scheduled with [`Scheduler::schedule_after`] on a line have one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHandle {
    line: u32,
    pos: u32,
}

impl Default for EventHandle {
    fn default() -> Self {
        EventHandle::NONE
    }
}

impl EventHandle {
    /// "No handle" (the event went to the calendar, or there is none).
    pub const NONE: EventHandle = EventHandle {
        line: u32::MAX,
        pos: 0,
    };

    /// True unless this is [`EventHandle::NONE`].
    #[inline]
    pub fn is_some(self) -> bool {
        self.line != u32::MAX
    }
}

#[inline(always)]
fn key(e: &Event) -> u128 {
    (u128::from(e.time) << 64) | u128::from(e.stamp)
}

/// Fewest buckets of the calendar.
const MIN_BUCKETS: usize = 256;
/// Most buckets of the calendar.
const MAX_BUCKETS: usize = 1 << 20;

/// A calendar queue (Brown, CACM 1988) for events at arbitrary times.
///
/// Time is cut into buckets of `2^shift` ns; a ring of `n` buckets covers the window
/// `[cursor, cursor + n)` (in bucket numbers) and each bucket holds its events unsorted.
/// Events beyond the window wait in an overflow heap until the window reaches them. A bitmap
/// of non-empty buckets finds the earliest one in a few word operations, and that bucket is
/// scanned for its earliest `(time, stamp)` — unless it holds [`HEAP_AT`] events or more, when
/// it is kept as a binary heap whose root is the earliest. Narrowing the buckets (below)
/// cannot split events at the *same* time: a burst of a thousand requests moving in lockstep
/// through deterministic delays put them all in one bucket, and scanning it at every pop made
/// the run quadratic in the burst (a 10,000-request burst ran at a tenth of the usual speed).
/// When the queue holds more than two events per
/// bucket it is rebuilt with more buckets, their width fitted to the spread of pending times.
/// That spread can hide a dense head: thousands of sources whose next arrivals are spread
/// over a second, beside the requests due in the next few milliseconds, gave buckets of a
/// millisecond holding sixty events each, every one scanned at every pop. So the queue also
/// watches how long the buckets it pops from are, and when they average more than
/// [`LONG_SCAN`] events it is rebuilt with buckets narrowed to match (events beyond the
/// shorter window wait in the overflow heap). Push is O(1); pop is O(1) on average.
///
/// The earliest event's key and place are always known (`min_key`, `min_slot`, `min_idx`),
/// so the scheduler compares heads without asking.
#[derive(Debug)]
struct Calendar {
    buckets: Vec<Vec<Event>>,
    occupied: Vec<u64>,
    shift: u32,
    /// Bucket number (time >> shift) the window starts at; never after the last popped event.
    cursor: u64,
    len_ring: usize,
    overflow: BinaryHeap<Reverse<Event>>,
    /// Key of the earliest event ([`NO_KEY`] when empty).
    min_key: u128,
    /// Its bucket (`usize::MAX`: the overflow heap's top) and index in the bucket.
    min_slot: usize,
    min_idx: usize,
    /// Events in the buckets popped from, and pops, since the last check of bucket length.
    scanned: u64,
    scans: u32,
}

/// Events in a bucket from which it is kept in heap order (below that, scanned).
const HEAP_AT: usize = 32;

/// Restores heap order (earliest at the root) after `v[i]` got an earlier key.
#[inline]
fn sift_up(v: &mut [Event], mut i: usize) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if key(&v[i]) >= key(&v[parent]) {
            break;
        }
        v.swap(i, parent);
        i = parent;
    }
}

/// Restores heap order below `i` after `v[i]` got a later key.
#[inline]
fn sift_down(v: &mut [Event], mut i: usize) {
    loop {
        let left = 2 * i + 1;
        if left >= v.len() {
            return;
        }
        let right = left + 1;
        let child = if right < v.len() && key(&v[right]) < key(&v[left]) {
            right
        } else {
            left
        };
        if key(&v[child]) >= key(&v[i]) {
            return;
        }
        v.swap(i, child);
        i = child;
    }
}

/// Pops between checks of how long the popped buckets are.
const SCAN_SAMPLE: u32 = 1024;
/// Average events per popped bucket above which the buckets are narrowed.
const LONG_SCAN: u64 = 8;

impl Default for Calendar {
    fn default() -> Self {
        Calendar::with(MIN_BUCKETS, 20, 0)
    }
}

impl Calendar {
    fn with(buckets: usize, shift: u32, cursor: u64) -> Calendar {
        Calendar {
            buckets: (0..buckets).map(|_| Vec::new()).collect(),
            occupied: vec![0; buckets / 64],
            shift,
            cursor,
            len_ring: 0,
            overflow: BinaryHeap::new(),
            min_key: NO_KEY,
            min_slot: usize::MAX,
            min_idx: 0,
            scanned: 0,
            scans: 0,
        }
    }

    #[inline(always)]
    fn mask(&self) -> u64 {
        self.buckets.len() as u64 - 1
    }

    /// Adds an event; returns true if it is the new earliest.
    #[inline(always)]
    fn push(&mut self, ev: Event) -> bool {
        let k = key(&ev);
        let bucket = ev.time >> self.shift;
        if bucket >= self.cursor + self.buckets.len() as u64 {
            self.overflow.push(Reverse(ev));
            if k < self.min_key {
                // Only when nothing is in the window can a far event be the earliest.
                self.min_key = k;
                self.min_slot = usize::MAX;
                return true;
            }
            return false;
        }
        debug_assert!(bucket >= self.cursor, "calendar push before its window");
        let slot = (bucket & self.mask()) as usize;
        let b = &mut self.buckets[slot];
        let mut idx = b.len();
        b.push(ev);
        if b.len() >= HEAP_AT {
            Self::reheap(b);
            idx = 0;
            if self.min_slot == slot {
                // The bucket's earliest event is its root now.
                self.min_idx = 0;
            }
        }
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.len_ring += 1;
        if self.len_ring > 2 * self.buckets.len() && self.buckets.len() < MAX_BUCKETS {
            self.rebuild();
            return self.min_key == k;
        }
        if k < self.min_key {
            self.min_key = k;
            self.min_slot = slot;
            self.min_idx = idx;
            return true;
        }
        false
    }

    /// Keeps a bucket that just grew to [`HEAP_AT`] events or more in heap order (a heap
    /// before this push, or a scanned bucket that reached the size). Its new event's place is
    /// not kept: an earliest event is at the root.
    #[inline]
    fn reheap(b: &mut [Event]) {
        if b.len() == HEAP_AT {
            for i in (0..HEAP_AT / 2).rev() {
                sift_down(b, i);
            }
        } else {
            sift_up(b, b.len() - 1);
        }
    }

    /// Finds the earliest event and records it in `min_*`.
    #[inline(never)]
    fn find_min(&mut self) {
        if self.len_ring == 0 {
            // Everything pending is beyond the window: the overflow heap's top is next. The
            // window moves only when it is popped (peeking must not move it past `now`).
            self.min_slot = usize::MAX;
            self.min_key = self.overflow.peek().map_or(NO_KEY, |Reverse(e)| key(e));
            return;
        }
        // The first occupied bucket from the cursor on (wrapping): the window is in time
        // order, so the earliest event is in it. The number of words is a power of two.
        let wrap = self.occupied.len() - 1;
        let start = (self.cursor & self.mask()) as usize;
        let mut w = start / 64;
        let mut bits = self.occupied[w] & (u64::MAX << (start % 64));
        while bits == 0 {
            w = (w + 1) & wrap;
            bits = self.occupied[w];
        }
        let slot = w * 64 + bits.trailing_zeros() as usize;
        let bucket = &self.buckets[slot];
        let mut best = (key(&bucket[0]), 0);
        // A heap's root is its earliest; a short bucket is scanned.
        let scan = if bucket.len() >= HEAP_AT {
            0
        } else {
            bucket.len()
        };
        for (i, e) in bucket[..scan].iter().enumerate().skip(1) {
            let k = key(e);
            if k < best.0 {
                best = (k, i);
            }
        }
        (self.min_key, self.min_slot, self.min_idx) = (best.0, slot, best.1);
        self.scanned += bucket.len() as u64;
        self.scans += 1;
        if self.scans == SCAN_SAMPLE {
            let average = self.scanned / u64::from(SCAN_SAMPLE);
            (self.scanned, self.scans) = (0, 0);
            if average > LONG_SCAN && self.shift > 0 {
                // Narrower buckets by the factor they are too full (a power of two).
                let narrower = self.shift.saturating_sub(average.ilog2());
                self.rebuild_with(Some(narrower));
            }
        }
    }

    /// Pops the earliest event (the calendar must not be empty).
    #[inline(always)]
    fn pop(&mut self) -> Event {
        let (slot, idx) = (self.min_slot, self.min_idx);
        let ev = if slot == usize::MAX {
            let Some(Reverse(ev)) = self.overflow.pop() else {
                unreachable!("the earliest event is the overflow's top")
            };
            ev
        } else {
            let bucket = &mut self.buckets[slot];
            let ev = bucket.swap_remove(idx);
            if bucket.len() >= HEAP_AT {
                // A heap's root was removed and its last event took the place.
                debug_assert_eq!(idx, 0);
                sift_down(bucket, 0);
            }
            if bucket.is_empty() {
                self.occupied[slot / 64] &= !(1 << (slot % 64));
            }
            self.len_ring -= 1;
            ev
        };
        let now_bucket = ev.time >> self.shift;
        if now_bucket > self.cursor {
            self.cursor = now_bucket;
            if !self.overflow.is_empty() {
                self.pull_overflow();
            }
        }
        self.find_min();
        ev
    }

    #[cold]
    fn pull_overflow(&mut self) {
        let end = self.cursor + self.buckets.len() as u64;
        while let Some(Reverse(top)) = self.overflow.peek() {
            if top.time >> self.shift >= end {
                break;
            }
            let Some(Reverse(ev)) = self.overflow.pop() else {
                break;
            };
            let slot = ((ev.time >> self.shift) & self.mask()) as usize;
            let b = &mut self.buckets[slot];
            b.push(ev);
            if b.len() >= HEAP_AT {
                Self::reheap(b);
            }
            self.occupied[slot / 64] |= 1 << (slot % 64);
            self.len_ring += 1;
        }
    }

    /// More events than buckets can hold briefly: twice the buckets, width fitted to the
    /// spread of pending times.
    #[cold]
    fn rebuild(&mut self) {
        self.rebuild_with(None);
    }

    /// Rebuilds with twice as many buckets as events (at least [`MIN_BUCKETS`]), each
    /// `2^shift` ns wide (`None`: fitted to the spread of pending times). Leaves the earliest
    /// event known.
    #[cold]
    fn rebuild_with(&mut self, shift: Option<u32>) {
        let mut all: Vec<Event> = Vec::with_capacity(self.len_ring + self.overflow.len());
        for b in &mut self.buckets {
            all.append(b);
        }
        all.extend(self.overflow.drain().map(|Reverse(e)| e));
        let n = (all.len().next_power_of_two() * 2).clamp(MIN_BUCKETS, MAX_BUCKETS);
        let lo = all.iter().map(|e| e.time).min().unwrap_or(0);
        let hi = all.iter().map(|e| e.time).max().unwrap_or(0);
        // Aim for about one event per bucket over the pending spread (at least 1 ns wide).
        let width = ((hi - lo) / all.len().max(1) as u64).max(1);
        let shift = shift.unwrap_or(63 - width.leading_zeros());
        let cursor = (self.cursor << self.shift) >> shift;
        *self = Calendar::with(n, shift, cursor.min(lo >> shift));
        for ev in all {
            self.push(ev);
        }
    }
}

/// Delay lines + calendar queue. See the module docs.
#[derive(Debug)]
pub struct Scheduler {
    /// Key of the earliest event of each source of events: `[0]` the calendar, `[1 + i]`
    /// line `i` ([`NO_KEY`] when empty). Kept current, so popping is one small scan.
    heads: [u128; MAX_LINES + 1],
    /// Delay of each line (searched on every `schedule_after`).
    delays: Vec<Nanos>,
    lines: Vec<Ring>,
    cal: Calendar,
    /// Stamp of the last event scheduled as of the current time.
    last_stamp: u64,
    /// The moment the event being taken was scheduled at (`Nanos::MAX`: none, commands act).
    parent_vsched: Nanos,
    /// The least stamp of an event scheduled now (computed when first needed after a pop).
    floor: u64,
    floor_stale: bool,
    /// Per stamp base (moment and rank), the order last given to an event scheduled as of it.
    as_of_orders: [(u64, u64); AS_OF_SLOTS],
    pending: usize,
    /// Time of the last popped event (nothing may be scheduled before it).
    last_popped: Nanos,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            heads: [NO_KEY; MAX_LINES + 1],
            delays: Vec::new(),
            lines: Vec::new(),
            cal: Calendar::default(),
            last_stamp: 0,
            parent_vsched: Nanos::MAX,
            floor: 0,
            floor_stale: true,
            as_of_orders: [(u64::MAX, 0); AS_OF_SLOTS],
            pending: 0,
            last_popped: 0,
        }
    }
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Events scheduled and not yet popped or cancelled.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The stamp of an event scheduled now: after every stamp given before (see the module
    /// docs for the layout).
    #[inline(always)]
    fn stamp_now(&mut self) -> u64 {
        if self.floor_stale {
            self.floor_stale = false;
            let now = self.last_popped;
            self.floor = if now < STAMP_TIME_LIMIT {
                let rank = if self.parent_vsched > now {
                    0
                } else {
                    parent_rank(now - self.parent_vsched)
                };
                (now << STAMP_LOW_BITS) | (rank << STAMP_ORDER_BITS) | AS_OF_ORDERS
            } else {
                0
            };
        }
        self.last_stamp = (self.last_stamp + 1).max(self.floor);
        self.last_stamp
    }

    /// The stamp of an event scheduled now `as_of` another moment and parent: the place the
    /// event-by-event path gives it, up to the order among events of equally ranked parents
    /// (first there).
    #[inline(always)]
    fn stamp_as_of(&mut self, as_of: AsOf) -> u64 {
        let AsOf {
            vsched_ns,
            parent_vsched_ns,
        } = as_of;
        if vsched_ns >= STAMP_TIME_LIMIT {
            return self.stamp_now();
        }
        let rank = parent_rank(vsched_ns - parent_vsched_ns.min(vsched_ns));
        let base = (vsched_ns << STAMP_LOW_BITS) | (rank << STAMP_ORDER_BITS);
        // Events scheduled as of the same moment and parent rank keep the order in which they
        // are scheduled (their parents' order, as the event-by-event path has them), counted
        // per base in a small table; past its capacity or after an eviction they tie.
        let hash = (base >> STAMP_ORDER_BITS).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
        let slot = &mut self.as_of_orders[hash as usize % AS_OF_SLOTS];
        let order = if slot.0 == base {
            (slot.1 + 1).min(AS_OF_ORDERS - 1)
        } else {
            0
        };
        *slot = (base, order);
        base | order
    }

    #[inline(always)]
    fn make(
        &mut self,
        stamp: u64,
        time: Nanos,
        kind: EventKind,
        a: u32,
        b: u32,
        c: u32,
        payload: u32,
    ) -> Event {
        debug_assert!(
            time >= self.last_popped,
            "event scheduled in the past: {time} < {}",
            self.last_popped
        );
        self.pending += 1;
        Event {
            time: time.max(self.last_popped),
            stamp,
            a,
            b,
            c,
            kind,
            outcome: payload as u8,
            origin: (payload >> 8) as u16,
        }
    }

    /// Moves the current time to `now_ns` (a tick boundary, where commands act): events
    /// scheduled from here on are scheduled as of `now_ns`.
    pub fn advance_to(&mut self, now_ns: Nanos) {
        self.last_popped = self.last_popped.max(now_ns);
        self.parent_vsched = Nanos::MAX;
        self.floor_stale = true;
    }

    /// Schedules an event at an arbitrary time (at or after the current time). `payload`: a
    /// reply's outcome in its low byte and the origin code of its failure above; 0 for other
    /// events (the same in every `schedule*`).
    #[inline(always)]
    pub fn schedule(&mut self, time: Nanos, kind: EventKind, a: u32, b: u32, c: u32, payload: u32) {
        let stamp = self.stamp_now();
        let ev = self.make(stamp, time, kind, a, b, c, payload);
        self.push_calendar(ev);
    }

    /// [`Scheduler::schedule`] for a fast path that schedules, now, an event the
    /// event-by-event path schedules at `vsched_ns` (earlier or later than now): ties with
    /// other events at the same time are then broken as that path breaks them.
    #[inline(always)]
    #[expect(clippy::too_many_arguments, reason = "an event's fields, written once")]
    pub fn schedule_as_of(
        &mut self,
        as_of: AsOf,
        time: Nanos,
        kind: EventKind,
        a: u32,
        b: u32,
        c: u32,
        payload: u32,
    ) {
        debug_assert!(
            as_of.vsched_ns <= time,
            "scheduled as of {as_of:?}, after its time {time}"
        );
        let stamp = self.stamp_as_of(as_of);
        let ev = self.make(stamp, time, kind, a, b, c, payload);
        self.push_calendar(ev);
    }

    #[inline(always)]
    fn push_calendar(&mut self, ev: Event) {
        if self.cal.push(ev) {
            self.heads[0] = self.cal.min_key;
        }
    }

    /// Schedules an event `delay` after `now`, where `now` is the time of the event being
    /// processed (so successive calls with the same delay are in time order). Returns a handle
    /// to cancel it with, or [`EventHandle::NONE`] if it went to the calendar.
    #[inline(always)]
    pub fn schedule_after(
        &mut self,
        now: Nanos,
        delay: Nanos,
        kind: EventKind,
        a: u32,
        b: u32,
        c: u32,
        payload: u32,
    ) -> EventHandle {
        debug_assert_eq!(
            now, self.last_popped,
            "a delay counts from the current time"
        );
        let stamp = self.stamp_now();
        let ev = self.make(stamp, now + delay, kind, a, b, c, payload);
        self.push_line::<false>(delay, ev)
    }

    /// [`Scheduler::schedule_after`] for an event the event-by-event path schedules at
    /// `vsched_ns` (see [`Scheduler::schedule_as_of`]). Only one scheduled as of an earlier
    /// moment can go on a line (and have a handle); others go to the calendar.
    #[inline(always)]
    #[expect(clippy::too_many_arguments, reason = "an event's fields, written once")]
    pub fn schedule_after_as_of(
        &mut self,
        as_of: AsOf,
        now: Nanos,
        delay: Nanos,
        kind: EventKind,
        a: u32,
        b: u32,
        c: u32,
        payload: u32,
    ) -> EventHandle {
        debug_assert_eq!(
            now, self.last_popped,
            "a delay counts from the current time"
        );
        debug_assert!(as_of.vsched_ns <= now + delay);
        let stamp = self.stamp_as_of(as_of);
        let ev = self.make(stamp, now + delay, kind, a, b, c, payload);
        if as_of.vsched_ns >= now {
            // Not scheduled as of an earlier moment: events scheduled now for the same time
            // may come before it but would be pushed behind it on the line.
            self.push_calendar(ev);
            return EventHandle::NONE;
        }
        self.push_line::<true>(delay, ev)
    }

    /// Appends `ev`, due `delay` from now, to that delay's line (the calendar if there are
    /// too many lines, or if `ev` would come before the line's last event: only possible
    /// when it is scheduled `AS_OF` another moment).
    #[inline(always)]
    fn push_line<const AS_OF: bool>(&mut self, delay: Nanos, ev: Event) -> EventHandle {
        let i = match self.delays.iter().position(|&d| d == delay) {
            Some(i) => i,
            None if self.lines.len() < MAX_LINES => {
                self.delays.push(delay);
                self.lines.push(Ring::with_capacity(64));
                self.lines.len() - 1
            }
            None => {
                self.push_calendar(ev);
                return EventHandle::NONE;
            }
        };
        let line = &mut self.lines[i];
        if AS_OF && line.back().is_some_and(|b| key(b) > key(&ev)) {
            // Scheduled as of an earlier moment, at the same time as the line's last event.
            self.push_calendar(ev);
            return EventHandle::NONE;
        }
        // Ties on a line only between events scheduled as of another moment (equal stamps).
        debug_assert!(
            line.back()
                .is_none_or(|b| key(b) < key(&ev) || (AS_OF && key(b) == key(&ev))),
            "line of {delay} ns out of order: {:?} then {ev:?} (now {})",
            line.back(),
            self.last_popped
        );
        if line.len == 0 {
            self.heads[1 + i] = key(&ev);
        }
        let pos = line.push_back(ev);
        EventHandle {
            line: i as u32,
            pos,
        }
    }

    /// Cancels a pending event by its handle: it will never be popped. The handle must be of
    /// an event that has not been popped or cancelled yet.
    #[inline(always)]
    pub fn cancel(&mut self, handle: EventHandle) {
        let i = handle.line as usize;
        let Some(line) = self.lines.get_mut(i) else {
            return;
        };
        let Some(at) = line.index_of(handle.pos) else {
            debug_assert!(false, "cancel of an event no longer pending");
            return;
        };
        debug_assert!(
            line.buf[at].kind != EventKind::Cancelled,
            "event cancelled twice"
        );
        line.buf[at].kind = EventKind::Cancelled;
        self.pending -= 1;
        if at == line.head {
            line.skip_cancelled();
            self.heads[1 + i] = line.front_key();
        }
    }

    /// Time of a pending event by its handle.
    #[inline(always)]
    pub fn time_of(&self, handle: EventHandle) -> Option<Nanos> {
        let line = self.lines.get(handle.line as usize)?;
        let ev = &line.buf[line.index_of(handle.pos)?];
        (ev.kind != EventKind::Cancelled).then_some(ev.time)
    }

    /// Pops the earliest event if it is before `limit`.
    #[inline(always)]
    pub fn pop_before(&mut self, limit: Nanos) -> Option<Event> {
        // The earliest of the heads, compared as packed (time, stamp) keys so the choice
        // compiles to conditional moves rather than unpredictable branches.
        let n = 1 + self.lines.len();
        let mut best = self.heads[0];
        let mut source = 0;
        for (i, &k) in self.heads[..n].iter().enumerate().skip(1) {
            let better = k < best;
            best = if better { k } else { best };
            source = if better { i } else { source };
        }
        let time = (best >> 64) as Nanos;
        if time >= limit || best == NO_KEY {
            return None;
        }
        let ev = if source == 0 {
            let ev = self.cal.pop();
            self.heads[0] = self.cal.min_key;
            ev
        } else {
            let line = &mut self.lines[source - 1];
            let ev = line.pop_front();
            line.skip_cancelled();
            self.heads[source] = line.front_key();
            ev
        };
        self.pending -= 1;
        self.last_popped = time;
        self.parent_vsched = ev.stamp >> STAMP_LOW_BITS;
        self.floor_stale = true;
        Some(ev)
    }

    /// Time of the earliest pending event.
    pub fn next_time(&mut self) -> Option<Nanos> {
        let best = self.heads[..1 + self.lines.len()]
            .iter()
            .copied()
            .fold(NO_KEY, u128::min);
        (best != NO_KEY).then_some((best >> 64) as Nanos)
    }

    /// Drops every event (used when a scenario is reloaded).
    pub fn clear(&mut self) {
        *self = Scheduler::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic random stream for the randomised tests: the project's own generator.
    fn random_stream(seed: u64) -> impl FnMut() -> u64 {
        use rand::Rng as _;
        let mut rng = crate::rng::stream(seed, "scheduler-test", 0);
        move || rng.next_u64()
    }

    fn drain(s: &mut Scheduler) -> Vec<(Nanos, u32)> {
        let mut out = Vec::new();
        while let Some(e) = s.pop_before(Nanos::MAX) {
            out.push((e.time, e.a));
        }
        out
    }

    #[test]
    fn events_come_out_in_time_then_scheduling_order() {
        let mut s = Scheduler::new();
        s.schedule(2_500, EventKind::WorkDone, 1, 0, 0, 0);
        s.schedule_after(0, 500, EventKind::RequestArrive, 2, 0, 0, 0);
        s.schedule_after(0, 2_500, EventKind::CallTimeout, 3, 0, 0, 0);
        s.schedule(2_400, EventKind::WorkDone, 4, 0, 0, 0);
        s.advance_to(100);
        s.schedule_after(100, 400, EventKind::RequestArrive, 5, 0, 0, 0);
        assert_eq!(
            drain(&mut s),
            vec![(500, 2), (500, 5), (2_400, 4), (2_500, 1), (2_500, 3)]
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn events_scheduled_as_of_another_moment_take_that_moments_place_in_ties() {
        // The reference path takes two events at 100: X (scheduled at 40) and then W
        // (scheduled at 60). Each schedules one event due at 1,000: X's child B, then W's
        // child A. A fast path merged W away and schedules A at 0, as of 100 with its parent
        // as of 60: it must still come after B. C, a child of W too, is scheduled late (at
        // 200) onto a line; D is scheduled at 200 by an event of then.
        let as_of = |vsched_ns, parent_vsched_ns| AsOf {
            vsched_ns,
            parent_vsched_ns,
        };
        let mut s = Scheduler::new();
        s.schedule_as_of(as_of(100, 60), 1_000, EventKind::PlannedReply, 2, 0, 0, 0);
        s.schedule(40, EventKind::WorkDone, 90, 0, 0, 0);
        s.advance_to(40);
        s.schedule(100, EventKind::WorkDone, 91, 0, 0, 0);
        assert_eq!(s.pop_before(Nanos::MAX).map(|e| e.a), Some(90));
        assert_eq!(s.pop_before(Nanos::MAX).map(|e| e.a), Some(91));
        // X, scheduled at 40, is taken at 100 and schedules B.
        s.schedule(1_000, EventKind::ReplyArrive, 1, 0, 0, 0);
        s.advance_to(200);
        s.schedule(1_000, EventKind::ReplyArrive, 4, 0, 0, 0);
        s.schedule_after_as_of(as_of(100, 60), 200, 800, EventKind::CallTimeout, 3, 0, 0, 0);
        s.schedule_after(200, 800, EventKind::CallTimeout, 5, 0, 0, 0);
        // B (1) before W's children A (2) and C (3), then what was scheduled at 200.
        assert_eq!(
            drain(&mut s),
            vec![(1_000, 1), (1_000, 2), (1_000, 3), (1_000, 4), (1_000, 5)]
        );
    }

    #[test]
    fn events_scheduled_as_of_other_moments_match_a_sorted_reference() {
        // Random workload with many ties (times on a 1-µs grid, few distinct delays), a fifth
        // of the events scheduled as of other moments and parents (as the engine does: never
        // due at the current time), against a BTreeMap keyed by
        // what the module docs promise: time, the moment the event is scheduled as of, its
        // parent's rank, events scheduled as of another moment before those scheduled now,
        // then scheduling order (for the latter; the former tie among themselves).
        let mut s = Scheduler::new();
        let mut reference = std::collections::BTreeMap::new();
        let mut key_of = std::collections::HashMap::new();
        let mut rand = random_stream(0x9e37_79b9_7f4a_7c15);
        let (mut seq, mut now, mut as_of) = (0u64, 0, 0);
        // The moment the event being taken was scheduled as of (none: ranked first).
        let mut parent: Option<Nanos> = None;
        for step in 0..20_000u32 {
            if !rand().is_multiple_of(3) || reference.is_empty() {
                let delay = 1_000 * (rand() % 8);
                let time = now + delay;
                // Never at the current time: it would come before events already taken.
                let key = if delay > 0 && rand().is_multiple_of(4) {
                    as_of += 1;
                    // As of a moment on the grid up to 5 µs either side, not after `time`,
                    // with a parent up to 3 µs before it.
                    let v = (now + 5_000)
                        .saturating_sub(1_000 * (rand() % 11))
                        .min(time);
                    let p = v.saturating_sub(1_000 * (rand() % 4));
                    let a = AsOf {
                        vsched_ns: v,
                        parent_vsched_ns: p,
                    };
                    if rand().is_multiple_of(2) {
                        s.schedule_as_of(a, time, EventKind::WorkDone, step, 0, 0, 0);
                    } else {
                        s.schedule_after_as_of(a, now, delay, EventKind::WorkDone, step, 0, 0, 0);
                    }
                    (time, v, parent_rank(v - p), 0, 0)
                } else {
                    if rand().is_multiple_of(2) {
                        s.schedule(time, EventKind::WorkDone, step, 0, 0, 0);
                    } else {
                        s.schedule_after(now, delay, EventKind::WorkDone, step, 0, 0, 0);
                    }
                    let rank = parent.map_or(0, |p| parent_rank(now - p));
                    (time, now, rank, 1, seq)
                };
                seq += 1;
                reference.insert((key, step), ());
                key_of.insert(step, key);
            } else {
                let e = s.pop_before(Nanos::MAX).unwrap();
                let key = key_of[&e.a];
                let (&(first, _), ()) = reference.first_key_value().unwrap();
                assert_eq!(key, first, "pop order at step {step}");
                reference.remove(&(key, e.a));
                (now, parent) = (e.time, Some(key.1));
            }
        }
        assert!(
            as_of > 2_000,
            "only {as_of} events scheduled as of another moment"
        );
        assert_eq!(drain(&mut s).len(), reference.len());
    }

    #[test]
    fn an_event_scheduled_behind_keeps_its_line_in_order_through_the_calendar() {
        // Due at the same time as the line's last event but scheduled as of earlier, it must
        // come out first: it cannot go behind it on the line, so it takes the calendar.
        let mut s = Scheduler::new();
        s.advance_to(500);
        let late = s.schedule_after(500, 1_000, EventKind::CallTimeout, 1, 0, 0, 0);
        let as_of = AsOf {
            vsched_ns: 400,
            parent_vsched_ns: 300,
        };
        let early = s.schedule_after_as_of(as_of, 500, 1_000, EventKind::CallTimeout, 2, 0, 0, 0);
        assert!(late.is_some() && !early.is_some());
        assert_eq!(drain(&mut s), vec![(1_500, 2), (1_500, 1)]);
    }

    #[test]
    fn past_the_time_limit_stamps_count_on_in_scheduling_order() {
        // Just before the limit the stamps are at the top of the timed range; past it they
        // count on from there: 300,000 events at one time still come out in scheduling order
        // (the count must not run out of room).
        let mut s = Scheduler::new();
        s.advance_to(STAMP_TIME_LIMIT - 1);
        let at = STAMP_TIME_LIMIT + 10;
        s.schedule(at, EventKind::WorkDone, 0, 0, 0, 0);
        s.advance_to(STAMP_TIME_LIMIT + 5);
        for i in 1..300_000 {
            s.schedule(at, EventKind::WorkDone, i, 0, 0, 0);
        }
        let order: Vec<u32> = drain(&mut s).into_iter().map(|(_, a)| a).collect();
        assert_eq!(order, (0..300_000).collect::<Vec<u32>>());
    }

    #[test]
    fn parent_ranks_fall_as_the_lead_grows() {
        let leads = [
            0,
            1,
            2,
            3,
            63,
            64,
            65,
            1_000,
            1_016,
            1_000_000,
            1 << 40,
            (1 << 46) - 1,
        ];
        for pair in leads.windows(2) {
            assert!(
                parent_rank(pair[0]) > parent_rank(pair[1]),
                "{} vs {}",
                pair[0],
                pair[1]
            );
        }
        // Commands rank 0, below every event.
        assert!(parent_rank((1 << 46) - 1) > 0);
    }

    #[test]
    fn pop_before_respects_the_limit_and_new_events_interleave() {
        let mut s = Scheduler::new();
        s.schedule_after(0, 1_000, EventKind::RequestArrive, 1, 0, 0, 0);
        s.schedule(300, EventKind::WorkDone, 2, 0, 0, 0);
        assert!(s.pop_before(300).is_none(), "limit is exclusive");
        let e = s.pop_before(1_000).unwrap();
        assert_eq!(e.a, 2);
        s.schedule_after(e.time, 200, EventKind::RequestArrive, 3, 0, 0, 0);
        s.schedule_after(e.time, 0, EventKind::RequestArrive, 4, 0, 0, 0);
        assert_eq!(
            s.pop_before(1_000).map(|e| e.a),
            Some(4),
            "same-time event scheduled later still comes out"
        );
        assert_eq!(s.pop_before(1_000).map(|e| e.a), Some(3));
        assert!(s.pop_before(1_000).is_none());
        assert_eq!(s.next_time(), Some(1_000));
        s.schedule(999, EventKind::WorkDone, 6, 0, 0, 0);
        assert_eq!(drain(&mut s), vec![(999, 6), (1_000, 1)]);
    }

    #[test]
    fn more_delays_than_lines_fall_back_to_the_heap_in_order() {
        let mut s = Scheduler::new();
        for d in (1..=40u64).rev() {
            s.schedule_after(0, d * 10, EventKind::RequestArrive, d as u32, 0, 0, 0);
        }
        let out: Vec<u32> = drain(&mut s).into_iter().map(|(_, a)| a).collect();
        assert_eq!(out, (1..=40).collect::<Vec<u32>>());
    }

    #[test]
    fn cancelled_events_never_come_out_and_handles_survive_growth() {
        // Random schedule / cancel / pop against a BTreeMap reference keyed by (time, seq):
        // three delays share lines (timeouts, hops), a fourth stream goes to the calendar.
        let mut s = Scheduler::new();
        let mut reference = std::collections::BTreeMap::new();
        let mut handles: Vec<(EventHandle, (Nanos, u64))> = Vec::new();
        let mut rand = random_stream(0x9e37_79b9_7f4a_7c15u64);
        let (mut seq, mut now) = (0u64, 0);
        for step in 0..300_000u32 {
            match rand() % 8 {
                0..=3 => {
                    let delay = [1_000_000, 100_000_000, 7_000][(rand() % 3) as usize];
                    let h = s.schedule_after(now, delay, EventKind::CallTimeout, step, 0, 0, 0);
                    assert!(h.is_some(), "line events have handles");
                    assert_eq!(s.time_of(h), Some(now + delay));
                    reference.insert((now + delay, seq), step);
                    handles.push((h, (now + delay, seq)));
                    seq += 1;
                }
                4 => {
                    let t = now + rand() % 50_000_000;
                    s.schedule(t, EventKind::WorkDone, step, 0, 0, 0);
                    reference.insert((t, seq), step);
                    seq += 1;
                }
                5 if !handles.is_empty() => {
                    // Cancel a random pending line event (most timeouts are cancelled).
                    let i = (rand() % handles.len() as u64) as usize;
                    let (h, k) = handles.swap_remove(i);
                    if reference.remove(&k).is_some() {
                        s.cancel(h);
                        assert_eq!(s.time_of(h), None, "a cancelled event has no time");
                    }
                }
                _ => {
                    let Some(((t, _), a)) = reference.pop_first() else {
                        continue;
                    };
                    let e = s.pop_before(Nanos::MAX).unwrap();
                    assert_eq!((e.time, e.a), (t, a), "pop order at step {step}");
                    assert_ne!(e.kind, EventKind::Cancelled);
                    now = t;
                }
            }
            assert_eq!(s.pending(), reference.len(), "pending count at step {step}");
        }
        while let Some(((t, _), a)) = reference.pop_first() {
            let e = s.pop_before(Nanos::MAX).unwrap();
            assert_eq!((e.time, e.a), (t, a));
        }
        assert!(s.pop_before(Nanos::MAX).is_none());
    }

    #[test]
    fn buckets_narrow_when_a_dense_head_fills_them() {
        // Thousands of sparse events spread over a second (sources' next arrivals) beside a
        // dense stream due within a millisecond or two (requests in flight): the first
        // rebuild fits the buckets to the whole spread, so the dense head crowds into a few
        // of them. Pops must stay in `(time, seq)` order, and the buckets must narrow.
        let mut s = Scheduler::new();
        let mut reference = std::collections::BTreeMap::new();
        let mut rand = random_stream(0x1234_5678_9abc_def1u64);
        let mut seq = 0u64;
        for i in 0..3_000u32 {
            let t = rand() % 1_000_000_000;
            s.schedule(t, EventKind::SourceArrival, i, 0, 0, 0);
            reference.insert((t, seq), i);
            seq += 1;
        }
        let first_shift = s.cal.shift;
        let mut now = 0;
        let mut narrowest = first_shift;
        for step in 0..200_000u32 {
            if reference.len() < 6_000 {
                // About 400 events per millisecond, each due within 2 ms.
                let t = now + 1 + rand() % 2_000_000;
                s.schedule(t, EventKind::WorkDone, step, 0, 0, 0);
                reference.insert((t, seq), step);
                seq += 1;
            }
            let ((t, _), a) = reference.pop_first().unwrap();
            let e = s.pop_before(Nanos::MAX).unwrap();
            assert_eq!((e.time, e.a), (t, a), "pop order at step {step}");
            now = t;
            narrowest = narrowest.min(s.cal.shift);
        }
        assert!(
            narrowest + 3 <= first_shift,
            "buckets of 2^{first_shift} ns narrowed only to 2^{narrowest} ns"
        );
    }

    #[test]
    fn events_at_the_same_time_come_out_in_order_from_crowded_buckets() {
        // A burst in lockstep: thousands of events at a handful of identical times, each pop
        // scheduling a successor at one of a few later times (deterministic delays). No
        // bucket width can separate them, so the crowded buckets are heaps: order against a
        // BTreeMap reference, with buckets of hundreds of events.
        let mut s = Scheduler::new();
        let mut crowded = 0;
        let mut reference = std::collections::BTreeMap::new();
        let mut rand = random_stream(0x1234_5678_9abc_def1u64);
        let mut seq = 0u64;
        for i in 0..5_000u32 {
            let t = 1_000_000 + (rand() % 4) * 100;
            s.schedule(t, EventKind::WorkDone, i, 0, 0, 0);
            reference.insert((t, seq), i);
            seq += 1;
        }
        for step in 0..60_000u32 {
            let Some(((t, _), a)) = reference.pop_first() else {
                break;
            };
            let e = s.pop_before(Nanos::MAX).unwrap();
            assert_eq!((e.time, e.a), (t, a), "pop order at step {step}");
            if step < 40_000 {
                let next = t + [100, 100_000, 250][(rand() % 3) as usize];
                s.schedule(next, EventKind::WorkDone, 5_000 + step, 0, 0, 0);
                reference.insert((next, seq), 5_000 + step);
                seq += 1;
            }
            if s.cal.min_slot != usize::MAX {
                let crowd = s.cal.buckets[s.cal.min_slot].len();
                crowded = crowded.max(crowd);
                assert!(
                    crowd < HEAP_AT || s.cal.min_idx == 0,
                    "a crowded bucket is a heap"
                );
            }
        }
        assert!(s.pop_before(Nanos::MAX).is_none());
        assert!(crowded > 10 * HEAP_AT, "the test crowds buckets: {crowded}");
    }

    #[test]
    fn matches_a_sorted_reference_on_random_workloads() {
        // Random DES-like workload against a BTreeMap reference keyed by (time, seq).
        let mut s = Scheduler::new();
        let mut reference = std::collections::BTreeMap::new();
        let mut rand = random_stream(0x2545_f491_4f6c_dd1du64);
        let mut seq = 0u64;
        let mut now = 0;
        for step in 0..200_000u32 {
            if !rand().is_multiple_of(3) || reference.is_empty() {
                let delay = match rand() % 4 {
                    0 => 0,
                    1 => rand() % 1_000,
                    2 => rand() % 10_000_000,
                    _ => rand() % 100_000_000_000,
                };
                if step % 2 == 0 {
                    s.schedule(now + delay, EventKind::WorkDone, step, 0, 0, 0);
                } else {
                    s.schedule_after(now, delay, EventKind::WorkDone, step, 0, 0, 0);
                }
                reference.insert((now + delay, seq), step);
                seq += 1;
            } else {
                let ((t, _), a) = reference.pop_first().unwrap();
                let e = s.pop_before(Nanos::MAX).unwrap();
                assert_eq!((e.time, e.a), (t, a), "pop order at step {step}");
                now = t;
            }
        }
        assert_eq!(s.pending(), reference.len());
    }
}
