//! The hand-over from the workers to the writer: one bounded lock-free queue per worker, and
//! the [`Sink`] a worker pushes its records into.
//!
//! Owns the promise the hot path depends on: a push never blocks, never allocates and makes
//! no system call (it never wakes the writer, which looks at the queues on its own schedule);
//! a full queue drops the record and counts it. Never formats and never writes: the writer
//! thread (`writer.rs`) does.
//!
//! A queue's slots (about 3 MiB per worker: records hold the SNI name inline, so that a push
//! never allocates) are allocated the first time the log is switched on, not before: a
//! ringlb without an access log never holds them.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    Arc, OnceLock,
};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use super::record::Record;

/// Records a worker's queue holds before it drops: at one flush per
/// [`super::writer::FLUSH_INTERVAL`], room for 80,000 connections a second per worker.
pub const QUEUE_CAPACITY: usize = 8192;

/// One worker's queue and its drop count.
#[derive(Debug)]
pub(super) struct Queue {
    /// Empty until the log is first switched on ([`Queues::set_enabled`]).
    pub(super) records: OnceLock<ArrayQueue<Record>>,
    /// Records dropped because the queue was full (written by its worker only).
    dropped: CachePadded<AtomicU64>,
}

/// What the workers and the writer share.
#[derive(Debug)]
pub(super) struct Queues {
    /// Whether workers record at all; read once per connection end (`Relaxed`).
    enabled: CachePadded<AtomicBool>,
    pub(super) queues: Box<[Queue]>,
    /// Records each queue holds, once allocated.
    capacity: usize,
    /// Lines the writer wrote out.
    pub(super) written: CachePadded<AtomicU64>,
    /// Lines the writer could not write (a write error), counted with the drops.
    pub(super) lost: CachePadded<AtomicU64>,
}

impl Queues {
    /// `workers` queues of `capacity` records each, not allocated yet; recording off.
    pub(super) fn new(workers: usize, capacity: usize) -> Queues {
        let queue = |_| Queue {
            records: OnceLock::new(),
            dropped: CachePadded::new(AtomicU64::new(0)),
        };
        Queues {
            enabled: CachePadded::new(AtomicBool::new(false)),
            queues: (0..workers.max(1)).map(queue).collect(),
            capacity: capacity.max(1),
            written: CachePadded::new(AtomicU64::new(0)),
            lost: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Switches recording on or off (control plane only). Switching on allocates every queue
    /// first, the first time; a worker that sees the switch before its queue (the flag is
    /// `Relaxed`) drops and counts the record, it never waits.
    pub(super) fn set_enabled(&self, on: bool) {
        if on {
            for queue in self.queues.iter() {
                queue.records.get_or_init(|| ArrayQueue::new(self.capacity));
            }
        }
        self.enabled.store(on, Relaxed);
    }

    /// Lines lost so far: dropped on a full queue, or not written.
    pub(super) fn dropped(&self) -> u64 {
        let full = self.queues.iter().map(|q| q.dropped.load(Relaxed));
        full.fold(self.lost.load(Relaxed), u64::wrapping_add)
    }
}

/// A worker's end of the access log.
#[derive(Debug, Clone)]
pub struct Sink {
    shared: Arc<Queues>,
    worker: usize,
}

impl Sink {
    pub(super) fn new(shared: Arc<Queues>, worker: usize) -> Sink {
        let worker = worker % shared.queues.len();
        Sink { shared, worker }
    }

    /// A sink that records nothing, for drivers under unit tests.
    #[cfg(test)]
    pub(crate) fn off() -> Sink {
        Sink::new(Arc::new(Queues::new(1, 1)), 0)
    }

    /// Whether connections are logged now: the one branch the hot path pays when the log is
    /// off.
    #[inline]
    pub fn on(&self) -> bool {
        self.shared.enabled.load(Relaxed)
    }

    /// Queues `record` for the writer; when the queue is full the record is dropped and
    /// counted. Never blocks, allocates or enters the kernel.
    #[inline]
    pub fn push(&self, record: Record) {
        let queue = &self.shared.queues[self.worker];
        let kept = queue
            .records
            .get()
            .is_some_and(|records| records.push(record).is_ok());
        if !kept {
            queue.dropped.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::access_log::Termination;

    fn record() -> Record {
        Record {
            ended: Instant::now(),
            client: "127.0.0.1:1".parse().unwrap(),
            service: 0,
            pool: None,
            sni: None,
            target: None,
            bytes_up: 0,
            bytes_down: 0,
            connect: None,
            duration: Duration::ZERO,
            retries: 0,
            termination: Termination::NoBackend,
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let shared = Arc::new(Queues::new(2, 3));
        shared.set_enabled(true);
        let sink = Sink::new(Arc::clone(&shared), 1);
        for _ in 0..5 {
            sink.push(record());
        }
        let held = |worker: usize| shared.queues[worker].records.get().unwrap().len();
        assert_eq!(held(1), 3, "the first three are kept");
        assert_eq!(held(0), 0, "each worker has its own");
        assert_eq!(shared.dropped(), 2);
        shared.lost.fetch_add(4, Relaxed);
        assert_eq!(shared.dropped(), 6, "lines lost to write errors count too");
    }

    #[test]
    fn a_sink_is_off_until_the_log_is_enabled() {
        let shared = Arc::new(Queues::new(1, 1));
        let sink = Sink::new(Arc::clone(&shared), 7);
        assert!(!sink.on());
        shared.set_enabled(true);
        assert!(sink.on());
    }

    #[test]
    fn queues_are_allocated_only_once_the_log_is_first_switched_on() {
        let shared = Arc::new(Queues::new(4, QUEUE_CAPACITY));
        assert!(shared.queues.iter().all(|q| q.records.get().is_none()));
        // A record pushed before then (a worker racing the switch) is dropped and counted.
        Sink::new(Arc::clone(&shared), 2).push(record());
        assert_eq!(shared.dropped(), 1);
        shared.set_enabled(true);
        assert!(shared.queues.iter().all(|q| q.records.get().is_some()));
        // Switched off and on again: the same queues, nothing reallocated or lost.
        Sink::new(Arc::clone(&shared), 2).push(record());
        shared.set_enabled(false);
        shared.set_enabled(true);
        assert_eq!(shared.queues[2].records.get().unwrap().len(), 1);
    }
}
