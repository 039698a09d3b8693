//! What a run may hold in memory, and stopping a run whose model needs more.
//!
//! A model whose load is far beyond its capacity, with unbounded queues, holds more requests
//! every simulated second: that is its truth, but without a limit it takes the machine's
//! memory until the operating system kills the program (and, in the app, the user's unsaved
//! work with it). Two things grow without bound: jobs in flight (requests queued, working or
//! waiting, about 180 bytes each plus their queue places and events) and items waiting in
//! work queues (16 bytes each). Past [`MAX_JOBS_IN_FLIGHT`](super::MAX_JOBS_IN_FLIGHT) or [`MAX_QUEUED_ITEMS`] the engine
//! stops the run ([`Engine::halted`](super::Engine::halted)) and says why and what to change. The limits are far above
//! any model that stays within its capacity, so they never change a run that completes.
//!
//! Owns the limits and the message; the check of jobs in flight costs one load per event
//! (`Jobs::over_limit`, set where the slab grows), the check of items one pass over the
//! services per step. Does not own what happens to a stopped run (`step_engine`, the CLI and
//! the app decide).

use super::step::Ctx;
use crate::text::group_thousands;

/// Most items a run may hold in its work queues at once (16 bytes each: 1.6 GB).
pub const MAX_QUEUED_ITEMS: usize = 100_000_000;

/// Why a run stopped for good, and what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Halt {
    /// What happened, when, and where.
    pub reason: String,
    /// What to change in the scenario.
    pub hint: String,
}

impl Ctx<'_, '_> {
    /// Items waiting in every work queue.
    pub(crate) fn queued_items(&self) -> usize {
        self.services
            .iter()
            .filter_map(|s| s.rt.as_deref().and_then(|rt| rt.queue.as_ref()))
            .map(|q| q.items.len())
            .sum()
    }

    /// Why the run must stop now, if it must: more jobs in flight than the slab's limit, or
    /// more items in work queues than `max_items`.
    pub(crate) fn over_capacity(&self, max_items: usize) -> Option<Halt> {
        let model = &self.e.model;
        if self.e.jobs.over_limit() {
            // Where they are: the service holding the most (ties to the first), for the hint.
            let mut held = vec![0usize; model.services.len()];
            let mut clients = 0usize;
            for job in self.e.jobs.iter_live() {
                if job.is_client() {
                    clients += 1;
                } else if let Some(n) = held.get_mut(job.node as usize) {
                    *n += 1;
                }
            }
            let busiest = held
                .iter()
                .enumerate()
                .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
                .filter(|&(_, &n)| n > 0)
                .map(|(i, &n)| (model.services[i].name.as_str(), n));
            return Some(jobs_halt(self.e.now, self.e.jobs.limit(), busiest, clients));
        }
        let items = self.queued_items();
        (items > max_items).then(|| items_halt(self.e.now, max_items))
    }
}

/// Too many jobs in flight at `now_ns`.
pub(crate) fn jobs_halt(
    now_ns: u64,
    limit: usize,
    busiest: Option<(&str, usize)>,
    clients: usize,
) -> Halt {
    let at = busiest.map_or_else(String::new, |(name, n)| {
        format!(
            " ({} of them at service `{name}`, {} waiting at the sources)",
            group_thousands(n as u64),
            group_thousands(clients as u64)
        )
    });
    Halt {
        reason: format!(
            "the run stopped at {:.3} s: more than {} requests were in flight at once{at}, \
             more than a run may hold in memory; the model's load is far beyond its capacity \
             and its queues are unbounded",
            now_ns as f64 / 1e9,
            group_thousands(limit as u64)
        ),
        hint: "bound the queues (`queue: (capacity: N)`), give callers a timeout, or lower \
               the load, then run it again"
            .to_owned(),
    }
}

/// Too many items in work queues at `now_ns`.
pub(crate) fn items_halt(now_ns: u64, limit: usize) -> Halt {
    Halt {
        reason: format!(
            "the run stopped at {:.3} s: more than {} items were waiting in work queues, more \
             than a run may hold in memory",
            now_ns as f64 / 1e9,
            group_thousands(limit as u64)
        ),
        hint: "give the queue's items a TTL, add consumers, or lower the load, then run it \
               again"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jobs_message_names_the_time_the_limit_and_where_they_are() {
        let h = jobs_halt(6_012_000_000, 8_000_000, Some(("api", 5_000_000)), 42);
        assert!(
            h.reason
                .starts_with("the run stopped at 6.012 s: more than 8,000,000 requests")
        );
        assert!(
            h.reason
                .contains("5,000,000 of them at service `api`, 42 waiting at the sources")
        );
        assert!(h.hint.starts_with("bound the queues"));
    }
}
