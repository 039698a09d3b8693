//! Mechanisms that keep data: look-aside caches (hits, misses, fills, single-flight waiters),
//! and asynchronous work queues (enqueue on success, deliveries to the consumer at a bounded
//! concurrency and rate, redelivery, dead letters, item TTL).
//!
//! A cache's backing fill is its call 0: a hit skips it, a miss makes it and a successful miss
//! fills the key. With coalescing, later misses of a key whose fill is in flight wait for it
//! (holding their worker) and end with its result. A work queue acknowledges a request when its
//! own work is done and keeps an item; deliveries are internal jobs of the queue service
//! (`Purpose::Delivery`) calling the consumer.

use super::jobs::{CRITICAL, FILLING, INTERNAL, MISSED, NONE, Phase, Purpose};
use super::mech::QueueItem;
use super::scheduler::EventKind;
use super::step::Ctx;
use crate::metrics::Outcome;
use crate::time::Nanos;

/// What a cache does with a request at the end of its own work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheStep {
    /// Served from the cache: no backing call.
    Hit,
    /// A miss: make the backing call (and fill the key if it succeeds).
    Fill,
    /// A miss whose key is being filled by another request: wait for that fill.
    Wait,
}

impl Ctx<'_, '_> {
    /// The cache decision for job `k` (at a cache service, after its own work).
    pub(crate) fn cache_lookup(&mut self, k: u32) -> CacheStep {
        let now = self.e.now;
        let job = self.e.jobs.get(k);
        let (s, key, generation) = (job.node as usize, job.key, job.generation);
        let coalescing = self.e.model.services[s]
            .mech
            .as_ref()
            .and_then(|m| m.cache)
            .is_some_and(|c| c.coalescing);
        let Some(rt) = self.services[s].rt.as_mut() else {
            return CacheStep::Fill;
        };
        let Some(table) = rt.cache.as_mut() else {
            return CacheStep::Fill;
        };
        if key == NONE {
            return CacheStep::Fill;
        }
        if table.is_cached(key, now) {
            return CacheStep::Hit;
        }
        if coalescing && !table.begin_fill(key) {
            if let Some(w) = rt.waiters.get_mut(key as usize) {
                w.push((k, generation));
            }
            self.e.jobs.get_mut(k).phase = Phase::Calling;
            return CacheStep::Wait;
        }
        self.e.jobs.get_mut(k).flags |= if coalescing { FILLING | MISSED } else { MISSED };
        CacheStep::Fill
    }

    /// The fill that job `k` was making ends (`success`: the key is cached now); requests
    /// waiting on it end with the same result.
    pub(crate) fn end_cache_fill(&mut self, k: u32, success: bool) {
        let now = self.e.now;
        let job = self.e.jobs.get(k);
        let (s, key, flags, origin) = (job.node as usize, job.key, job.flags, job.origin);
        self.e.jobs.get_mut(k).flags &= !(FILLING | MISSED);
        let ttl = self.e.model.services[s]
            .mech
            .as_ref()
            .and_then(|m| m.cache)
            .and_then(|c| c.ttl_ns);
        let Some(rt) = self.services[s].rt.as_mut() else {
            return;
        };
        let Some(table) = rt.cache.as_mut() else {
            return;
        };
        if success && key != NONE {
            table.fill(key, now, ttl);
        }
        if flags & FILLING == 0 || key == NONE {
            return;
        }
        table.end_fill(key);
        let waiters = rt
            .waiters
            .get_mut(key as usize)
            .map(std::mem::take)
            .unwrap_or_default();
        // A failed fill whose backing call degrades: the waiters carry on without it too.
        let degrade = self.e.model.services[s]
            .calls
            .first()
            .and_then(|c| c.guard)
            .is_some_and(|g| g.degrade);
        for &(w, g) in &waiters {
            if self
                .e
                .jobs
                .live(w, g)
                .is_some_and(|j| j.phase == Phase::Calling && j.child == NONE)
            {
                if !success && degrade {
                    self.fall_back(w);
                    continue;
                }
                // A failed fill fails its waiters where it failed.
                self.e.jobs.get_mut(w).origin = origin;
                self.finish(
                    w,
                    if success {
                        Outcome::Success
                    } else {
                        Outcome::DependencyFailed
                    },
                );
            }
        }
        // Give the (now empty) list its storage back, so waiting never allocates again.
        if let Some(slot) = self.services[s]
            .rt
            .as_mut()
            .and_then(|rt| rt.waiters.get_mut(key as usize))
        {
            let mut v = waiters;
            v.clear();
            *slot = v;
        }
    }

    /// Mechanism bookkeeping when job `k` finishes at its (guarded) service with `outcome`:
    /// cache fills, work-queue items, outlier windows, bulkheads.
    pub(crate) fn on_guarded_finish(&mut self, k: u32, outcome: Outcome) {
        let job = self.e.jobs.get(k);
        let (s, inst, flags) = (job.node, job.instance, job.flags);
        if flags & (FILLING | MISSED) != 0 {
            self.end_cache_fill(k, outcome == Outcome::Success);
        }
        self.leave_bulkhead(k);
        if outcome == Outcome::Success
            && self.e.model.services[s as usize]
                .mech
                .as_ref()
                .is_some_and(|m| m.work_queue.is_some())
        {
            self.enqueue_item(s);
        }
        if inst != NONE {
            self.outlier_record(inst, outcome == Outcome::Success);
        }
    }

    /// A cache instance `inst` restarted: the keys it held (its shard) are gone.
    pub(crate) fn flush_cache_shard(&mut self, inst: u32) {
        let s = self.instances[inst as usize].service as usize;
        let n = self.services[s].instances.len() as u32;
        let ordinal = self.services[s]
            .instances
            .iter()
            .position(|&g| g == inst)
            .unwrap_or(0) as u32;
        if let Some(table) = self.services[s]
            .rt
            .as_deref_mut()
            .and_then(|rt| rt.cache.as_mut())
        {
            table.flush_shard(ordinal, n);
        }
    }

    // ---------------------------------------------------------------- work queues

    /// A request at queue service `s` succeeded: keep an item and deliver what can be.
    fn enqueue_item(&mut self, s: u32) {
        let now = self.e.now;
        if let Some(q) = self.services[s as usize]
            .rt
            .as_mut()
            .and_then(|rt| rt.queue.as_mut())
        {
            q.items.push_back(QueueItem {
                enqueued_ns: now,
                deliveries: 0,
            });
        }
        self.try_deliver(s);
    }

    /// Starts deliveries of queue `s` while its concurrency and rate allow.
    pub(crate) fn try_deliver(&mut self, s: u32) {
        let now = self.e.now;
        let Some(model) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.work_queue)
        else {
            return;
        };
        loop {
            let Some(q) = self.services[s as usize]
                .rt
                .as_mut()
                .and_then(|rt| rt.queue.as_mut())
            else {
                return;
            };
            if q.paused || q.in_flight >= model.concurrency || q.items.is_empty() {
                return;
            }
            let Some(&item) = q.items.front() else { return };
            if now.saturating_sub(item.enqueued_ns) >= model.ttl_ns {
                q.items.pop_front();
                q.expired += 1;
                continue;
            }
            if let Some(l) = q.limiter.as_mut()
                && !l.try_take(now)
            {
                if !q.wake_pending {
                    q.wake_pending = true;
                    let gap: Nanos = l.wait_ns(now).max(1);
                    self.e
                        .sched
                        .schedule(now + gap, EventKind::QueueWake, s, 0, 0, 0);
                }
                return;
            }
            q.items.pop_front();
            q.in_flight += 1;
            let j = self.e.jobs.alloc_root(
                Phase::Calling,
                INTERNAL,
                (s, NONE),
                item.enqueued_ns,
                NONE,
                CRITICAL,
            );
            let job = self.e.jobs.get_mut(j);
            job.purpose = Purpose::Delivery;
            job.read_version = item.deliveries + 1;
            self.start_call(j);
        }
    }

    /// The rate limit of queue `s` may allow a delivery now.
    pub(crate) fn on_queue_wake(&mut self, s: u32) {
        if let Some(q) = self.services[s as usize]
            .rt
            .as_mut()
            .and_then(|rt| rt.queue.as_mut())
        {
            q.wake_pending = false;
        }
        self.try_deliver(s);
    }

    /// Delivery job `j` of queue `s` ended with `outcome`: the item is done, redelivered or
    /// dead-lettered.
    pub(crate) fn end_delivery(&mut self, j: u32, outcome: Outcome) {
        let job = self.e.jobs.get(j);
        let (s, enqueued_ns, deliveries) = (job.node, job.arrive_ns, job.read_version);
        let Some(model) = self.e.model.services[s as usize]
            .mech
            .as_ref()
            .and_then(|m| m.work_queue)
        else {
            return;
        };
        if let Some(q) = self.services[s as usize]
            .rt
            .as_mut()
            .and_then(|rt| rt.queue.as_mut())
        {
            q.in_flight = q.in_flight.saturating_sub(1);
            if outcome == Outcome::Success {
                q.delivered += 1;
            } else if deliveries < model.max_deliveries {
                q.items.push_back(QueueItem {
                    enqueued_ns,
                    deliveries,
                });
            } else if model.dead_letter {
                q.dead_letters += 1;
            }
        }
        self.e.jobs.free(j);
        self.try_deliver(s);
    }
}
