//! The process-wide cap on open connections (`max_connections`), shared by every worker.
//!
//! One cache-padded atomic: a worker adds on accept and subtracts on close, never locks. The cap
//! is enforced by pausing accepts, so excess clients wait in the kernel's listen backlog instead
//! of being refused.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

/// Open connections over all workers, and their cap.
#[derive(Debug)]
pub struct ConnectionLimit {
    open: CachePadded<AtomicUsize>,
    /// The cap; a reload may change it (workers read it on every accept and close).
    max: AtomicUsize,
}

impl ConnectionLimit {
    /// A limit of `max` open connections.
    pub fn new(max: usize) -> Self {
        Self {
            open: CachePadded::new(AtomicUsize::new(0)),
            max: AtomicUsize::new(max),
        }
    }

    /// Counts a new connection; `true` when the cap is now reached (stop accepting).
    pub fn acquire(&self) -> bool {
        self.open.fetch_add(1, Relaxed) + 1 >= self.max.load(Relaxed)
    }

    /// Counts a closed connection.
    pub fn release(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    /// Whether another connection may be accepted.
    pub fn has_room(&self) -> bool {
        self.open.load(Relaxed) < self.max.load(Relaxed)
    }

    /// A reload's new cap: open connections over it run to their end, new ones wait.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_cap() {
        let limit = ConnectionLimit::new(2);
        assert!(!limit.acquire());
        assert!(limit.has_room());
        assert!(limit.acquire());
        assert!(!limit.has_room());
        limit.release();
        assert!(limit.has_room());
        assert_eq!(limit.open(), 1);
    }
}
