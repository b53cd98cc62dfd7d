//! The hand-over from the workers to the writer: one bounded lock-free queue per worker, and
//! the [`Sink`] a worker pushes its records into.
//!
//! Owns the promise the hot path depends on: a push never blocks, never allocates and makes
//! no system call (it never wakes the writer, which looks at the queues on its own schedule);
//! a full queue drops the record and counts it. Never formats and never writes: the writer
//! thread (`writer.rs`) does.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    Arc,
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
    pub(super) records: ArrayQueue<Record>,
    /// Records dropped because the queue was full (written by its worker only).
    dropped: CachePadded<AtomicU64>,
}

/// What the workers and the writer share.
#[derive(Debug)]
pub(super) struct Queues {
    /// Whether workers record at all; read once per connection end (`Relaxed`).
    pub(super) enabled: CachePadded<AtomicBool>,
    pub(super) queues: Box<[Queue]>,
    /// Lines the writer wrote out.
    pub(super) written: CachePadded<AtomicU64>,
    /// Lines the writer could not write (a write error), counted with the drops.
    pub(super) lost: CachePadded<AtomicU64>,
}

impl Queues {
    /// `workers` empty queues of `capacity` records each; recording off.
    pub(super) fn new(workers: usize, capacity: usize) -> Queues {
        let queue = |_| Queue {
            records: ArrayQueue::new(capacity.max(1)),
            dropped: CachePadded::new(AtomicU64::new(0)),
        };
        Queues {
            enabled: CachePadded::new(AtomicBool::new(false)),
            queues: (0..workers.max(1)).map(queue).collect(),
            written: CachePadded::new(AtomicU64::new(0)),
            lost: CachePadded::new(AtomicU64::new(0)),
        }
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
        if queue.records.push(record).is_err() {
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
        let sink = Sink::new(Arc::clone(&shared), 1);
        for _ in 0..5 {
            sink.push(record());
        }
        assert_eq!(
            shared.queues[1].records.len(),
            3,
            "the first three are kept"
        );
        assert_eq!(shared.queues[0].records.len(), 0, "each worker has its own");
        assert_eq!(shared.dropped(), 2);
        shared.lost.fetch_add(4, Relaxed);
        assert_eq!(shared.dropped(), 6, "lines lost to write errors count too");
    }

    #[test]
    fn a_sink_is_off_until_the_log_is_enabled() {
        let shared = Arc::new(Queues::new(1, 1));
        let sink = Sink::new(Arc::clone(&shared), 7);
        assert!(!sink.on());
        shared.enabled.store(true, Relaxed);
        assert!(sink.on());
    }
}
