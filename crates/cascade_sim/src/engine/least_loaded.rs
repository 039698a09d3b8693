//! The least-outstanding load balancer's index: the instance with the fewest requests, found
//! in O(log n) instead of a scan of every instance at every request.
//!
//! A min segment tree over the load (requests queued or at a worker) of each routable
//! instance, by its position in the service's routable list. The engine marks an instance
//! whose load changed (`Ctx::load_changed`), and the load balancer brings the changed leaves
//! up to date before it picks, so the tree costs O(log n) per change and per pick. The choice
//! is exactly the scan's: from a rotating start, the first instance (in cyclic order) with the
//! smallest load.
//!
//! Pure data; which instances are routable, and when loads change, is the engine's business.

/// Loads by position, with the minimum of every subtree.
#[derive(Clone, Debug, Default)]
pub struct LeastLoaded {
    /// Positions in use (the rest of the leaves are padding, at `u32::MAX`).
    n: usize,
    /// Leaves (a power of two ≥ `n`); node `i` has children `2i` and `2i + 1`, leaf `p` is
    /// node `size + p`.
    size: usize,
    tree: Vec<u32>,
}

impl LeastLoaded {
    /// An index over `loads`, one per position.
    pub fn new(loads: impl ExactSizeIterator<Item = u32>) -> LeastLoaded {
        let n = loads.len();
        let size = n.next_power_of_two().max(1);
        let mut tree = vec![u32::MAX; 2 * size];
        for (p, load) in loads.enumerate() {
            tree[size + p] = load;
        }
        for i in (1..size).rev() {
            tree[i] = tree[2 * i].min(tree[2 * i + 1]);
        }
        LeastLoaded { n, size, tree }
    }

    /// Sets the load of position `p`.
    pub fn set(&mut self, p: usize, load: u32) {
        let mut i = self.size + p;
        self.tree[i] = load;
        while i > 1 {
            i /= 2;
            let m = self.tree[2 * i].min(self.tree[2 * i + 1]);
            if self.tree[i] == m {
                break;
            }
            self.tree[i] = m;
        }
    }

    /// The first position, in cyclic order from `start`, whose load is the smallest.
    pub fn first_min_from(&self, start: usize) -> usize {
        debug_assert!(self.n > 0 && start < self.n);
        let min = self.tree[1];
        self.first_at_most(1, 0, self.size, start, min)
            .or_else(|| self.first_at_most(1, 0, self.size, 0, min))
            .unwrap_or(start)
    }

    /// The first position ≥ `from` in node `i` (covering `[lo, hi)`) with load ≤ `x`.
    fn first_at_most(&self, i: usize, lo: usize, hi: usize, from: usize, x: u32) -> Option<usize> {
        if hi <= from || self.tree[i] > x {
            return None;
        }
        if hi - lo == 1 {
            return Some(lo);
        }
        let mid = (lo + hi) / 2;
        self.first_at_most(2 * i, lo, mid, from, x)
            .or_else(|| self.first_at_most(2 * i + 1, mid, hi, from, x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    /// The scan the index replaces: from `start`, the first strictly smaller load wins.
    fn scan(loads: &[u32], start: usize) -> usize {
        let n = loads.len();
        let mut best = start;
        for off in 1..n {
            let p = (start + off) % n;
            if loads[p] < loads[best] {
                best = p;
            }
        }
        best
    }

    #[test]
    fn picks_what_the_scan_picks_under_random_changes() {
        let mut rng = rng::stream(1, "least loaded", 0);
        for n in [1u32, 2, 3, 7, 8, 64, 1000] {
            let mut loads: Vec<u32> = (0..n).map(|_| rng::below(&mut rng, 5)).collect();
            let mut index = LeastLoaded::new(loads.iter().copied());
            for step in 0..20_000 {
                let p = rng::below(&mut rng, n) as usize;
                loads[p] = rng::below(&mut rng, 6);
                index.set(p, loads[p]);
                let start = rng::below(&mut rng, n) as usize;
                assert_eq!(
                    index.first_min_from(start),
                    scan(&loads, start),
                    "n = {n}, step {step}"
                );
            }
        }
    }
}
