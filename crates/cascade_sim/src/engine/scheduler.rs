//! The event scheduler: a timing wheel of ticks plus a small heap for the current tick.
//!
//! Events carry exact nanosecond times. An event for a future tick is appended to that tick's
//! wheel slot (O(1)); events too far ahead wait in an overflow heap until they come within
//! reach of the wheel. When a tick starts, its slot moves into a binary heap ordered by
//! `(time, seq)`, where `seq` is the global scheduling order: so events are processed in
//! exact time order, ties in the order they were scheduled, independent of storage layout.
//! Cost per event is O(1) plus O(log k) for the k events of the current tick. Pure data
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
}

/// One scheduled event (32 bytes).
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// Exact time.
    pub time: Nanos,
    /// Scheduling order (tie-break).
    pub seq: u64,
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
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time && self.seq == other.seq
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// Slots in the wheel (ticks of lookahead before the overflow heap).
const WHEEL_SLOTS: usize = 4096;

/// Timing wheel + current-tick heap. See the module docs.
#[derive(Debug)]
pub struct Scheduler {
    tick_ns: Nanos,
    /// The tick being processed (or about to be).
    cur_tick: u64,
    wheel: Vec<Vec<Event>>,
    overflow: BinaryHeap<Reverse<Event>>,
    now_heap: BinaryHeap<Reverse<Event>>,
    next_seq: u64,
    pending: usize,
}

impl Scheduler {
    /// An empty scheduler for ticks of `tick_ns`.
    pub fn new(tick_ns: Nanos) -> Scheduler {
        Scheduler {
            tick_ns: tick_ns.max(1),
            cur_tick: 0,
            wheel: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            overflow: BinaryHeap::new(),
            now_heap: BinaryHeap::new(),
            next_seq: 0,
            pending: 0,
        }
    }

    /// Events scheduled and not yet popped.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The tick currently open.
    pub fn current_tick(&self) -> u64 {
        self.cur_tick
    }

    /// Schedules an event. Times before the current tick are clamped to its start (the
    /// engine never does that; it keeps release builds safe).
    #[inline]
    pub fn schedule(&mut self, time: Nanos, kind: EventKind, a: u32, b: u32, c: u32, outcome: u8) {
        let ev = Event { time, seq: self.next_seq, a, b, c, kind, outcome };
        self.next_seq += 1;
        self.pending += 1;
        let tick = time / self.tick_ns;
        if tick <= self.cur_tick {
            debug_assert!(tick == self.cur_tick, "event scheduled in the past: tick {tick} < {}", self.cur_tick);
            self.now_heap.push(Reverse(ev));
        } else if tick - self.cur_tick < WHEEL_SLOTS as u64 {
            self.wheel[(tick as usize) & (WHEEL_SLOTS - 1)].push(ev);
        } else {
            self.overflow.push(Reverse(ev));
        }
    }

    /// Opens tick `tick` (must be the next one): its events become poppable in order.
    pub fn begin_tick(&mut self, tick: u64) {
        debug_assert!(tick >= self.cur_tick);
        debug_assert!(tick == self.cur_tick || self.now_heap.is_empty(), "previous tick not drained");
        self.cur_tick = tick;
        // Pull overflow events that are now within the wheel's reach.
        let horizon = tick + WHEEL_SLOTS as u64;
        while let Some(Reverse(top)) = self.overflow.peek() {
            let t = top.time / self.tick_ns;
            if t >= horizon {
                break;
            }
            let Some(Reverse(ev)) = self.overflow.pop() else { break };
            if t <= tick {
                self.now_heap.push(Reverse(ev));
            } else {
                self.wheel[(t as usize) & (WHEEL_SLOTS - 1)].push(ev);
            }
        }
        let slot = &mut self.wheel[(tick as usize) & (WHEEL_SLOTS - 1)];
        for ev in slot.drain(..) {
            self.now_heap.push(Reverse(ev));
        }
    }

    /// Next event of the open tick, in `(time, seq)` order.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        let ev = self.now_heap.pop().map(|Reverse(e)| e)?;
        self.pending -= 1;
        Some(ev)
    }

    /// True when no event is scheduled before tick `tick` ends and the wheel slots between
    /// now and then are empty (lets the engine skip idle ticks quickly).
    pub fn slot_is_empty(&self, tick: u64) -> bool {
        self.wheel[(tick as usize) & (WHEEL_SLOTS - 1)].is_empty()
            && self.overflow.peek().is_none_or(|Reverse(e)| e.time / self.tick_ns > tick)
    }

    /// Drops every event (used when a scenario is reloaded).
    pub fn clear(&mut self) {
        for slot in &mut self.wheel {
            slot.clear();
        }
        self.overflow.clear();
        self.now_heap.clear();
        self.pending = 0;
        self.cur_tick = 0;
        self.next_seq = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Scheduler, ticks: u64) -> Vec<(Nanos, u32)> {
        let mut out = Vec::new();
        for t in s.current_tick()..ticks {
            s.begin_tick(t);
            while let Some(e) = s.pop() {
                out.push((e.time, e.a));
            }
        }
        out
    }

    #[test]
    fn events_come_out_in_time_then_scheduling_order() {
        let mut s = Scheduler::new(1_000);
        s.schedule(2_500, EventKind::WorkDone, 1, 0, 0, 0);
        s.schedule(500, EventKind::WorkDone, 2, 0, 0, 0);
        s.schedule(2_500, EventKind::WorkDone, 3, 0, 0, 0);
        s.schedule(2_400, EventKind::WorkDone, 4, 0, 0, 0);
        assert_eq!(drain(&mut s, 5), vec![(500, 2), (2_400, 4), (2_500, 1), (2_500, 3)]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn far_events_pass_through_the_overflow_heap() {
        let mut s = Scheduler::new(10);
        let far = 10 * (WHEEL_SLOTS as u64) * 3 + 7;
        s.schedule(far, EventKind::FaultStart, 9, 0, 0, 0);
        s.schedule(15, EventKind::FaultStart, 1, 0, 0, 0);
        let out = drain(&mut s, far / 10 + 1);
        assert_eq!(out, vec![(15, 1), (far, 9)]);
    }

    #[test]
    fn events_scheduled_inside_the_open_tick_are_processed_in_it() {
        let mut s = Scheduler::new(1_000);
        s.begin_tick(0);
        s.schedule(300, EventKind::WorkDone, 1, 0, 0, 0);
        s.schedule(200, EventKind::WorkDone, 2, 0, 0, 0);
        assert_eq!(s.pop().map(|e| e.a), Some(2));
        s.schedule(250, EventKind::WorkDone, 3, 0, 0, 0);
        assert_eq!(s.pop().map(|e| e.a), Some(3));
        assert_eq!(s.pop().map(|e| e.a), Some(1));
        assert!(s.pop().is_none());
    }
}
