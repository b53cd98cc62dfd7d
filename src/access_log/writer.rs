//! The writer thread: drains every worker's queue on a short interval, formats the records
//! and writes them out in large batches, and swaps its destination when the control plane hands
//! it a new one (a reload, SIGUSR1).
//!
//! Owns the destination while it is in use and the once-a-second report of write errors. The
//! control plane opens every file (so an unusable path is reported to whoever asked) and hands
//! it over; this thread never opens one, never panics on a write error and never makes a worker
//! wait: it is never woken by a worker, and when it falls behind the workers' queues fill and
//! drop.

use std::{
    fs::File,
    io::{self, Write},
    path::PathBuf,
    sync::{
        atomic::Ordering::Relaxed,
        mpsc::{Receiver, RecvTimeoutError, Sender},
        Arc,
    },
    time::{Duration, Instant},
};

use super::{
    format::{write_line, Clock, LogNames},
    queue::Queues,
};
use crate::config::LogFormat;

/// How often the writer looks at the queues: the longest a line waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Formatted bytes gathered before one write (always whole lines).
const BATCH_BYTES: usize = 64 * 1024;

/// Where lines go.
#[derive(Debug)]
pub(super) enum Destination {
    /// Nowhere: the log is off (records still queued are discarded).
    Off,
    /// The process's standard error.
    Stderr,
    /// A file opened for appending by the control plane.
    File {
        /// Its path, for messages.
        path: PathBuf,
        /// The open file.
        file: File,
    },
}

impl Destination {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Destination::Off => Ok(()),
            Destination::Stderr => io::stderr().lock().write_all(bytes),
            Destination::File { file, .. } => file.write_all(bytes),
        }
    }

    fn name(&self) -> String {
        match self {
            Destination::Off => "off".into(),
            Destination::Stderr => "stderr".into(),
            Destination::File { path, .. } => path.display().to_string(),
        }
    }
}

/// What the control plane tells the writer.
#[derive(Debug)]
pub(super) enum Control {
    /// Write what is queued to the current destination, then use this one from now on, and
    /// say so.
    Switch(Destination, LogFormat, Sender<()>),
    /// Write what is queued, then say so and end.
    Stop(Sender<()>),
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) queues: Arc<Queues>,
    pub(super) destination: Destination,
    pub(super) format: LogFormat,
    /// The services' and pools' names the records' indices stand for.
    pub(super) names: LogNames,
    pub(super) control: Receiver<Control>,
    /// Formatted lines not yet written.
    batch: Vec<u8>,
    lines: u64,
    /// Write errors: when the last was reported, and how many since.
    reported: Option<Instant>,
    unreported: u64,
}

impl Writer {
    pub(super) fn new(
        queues: Arc<Queues>,
        destination: Destination,
        format: LogFormat,
        names: LogNames,
        control: Receiver<Control>,
    ) -> Writer {
        Writer {
            queues,
            destination,
            format,
            names,
            control,
            batch: Vec::with_capacity(2 * BATCH_BYTES),
            lines: 0,
            reported: None,
            unreported: 0,
        }
    }

    /// Runs until told to stop, or until the control plane is gone.
    pub(super) fn run(mut self) {
        loop {
            match self.control.recv_timeout(FLUSH_INTERVAL) {
                Err(RecvTimeoutError::Timeout) => self.drain(),
                Ok(Control::Switch(destination, format, done)) => {
                    self.drain();
                    self.destination = destination;
                    self.format = format;
                    let _ = done.send(());
                }
                Ok(Control::Stop(done)) => {
                    self.drain();
                    let _ = done.send(());
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => return self.drain(),
            }
        }
    }

    /// Writes out everything queued now (at most one queue's capacity per worker, so a flood
    /// cannot keep the writer from its control messages).
    pub(super) fn drain(&mut self) {
        let clock = Clock::now();
        let queues = Arc::clone(&self.queues);
        for records in queues.queues.iter().filter_map(|queue| queue.records.get()) {
            for _ in 0..records.capacity() {
                let Some(record) = records.pop() else {
                    break;
                };
                if matches!(self.destination, Destination::Off) {
                    continue;
                }
                write_line(&mut self.batch, &record, &self.names, self.format, &clock);
                self.lines += 1;
                if self.batch.len() >= BATCH_BYTES {
                    self.write_batch();
                }
            }
        }
        self.write_batch();
    }

    fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        match self.destination.write_all(&self.batch) {
            Ok(()) => {
                self.queues.written.fetch_add(lines, Relaxed);
            }
            Err(e) => {
                self.queues.lost.fetch_add(lines, Relaxed);
                self.write_failed(&e);
            }
        }
        self.batch.clear();
    }

    /// Reports a write error at most once a second, with the count held back meanwhile.
    fn write_failed(&mut self, error: &io::Error) {
        let now = Instant::now();
        if self
            .reported
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.unreported += 1;
            return;
        }
        self.reported = Some(now);
        let also = std::mem::take(&mut self.unreported);
        let destination = self.destination.name();
        tracing::error!(%error, destination, also,
            "access log: write failed; its lines are dropped (ringlb_access_log_dropped_total)");
    }
}
