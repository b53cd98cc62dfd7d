//! The first worker thread that ended on its own: which one, and why.
//!
//! Owns the record only: written once by the server's supervision when a worker panics or
//! fails, read by `/healthz` (503 with this text) and `/status`. Never decides what to do
//! about a failure, and never changes after the first one (later failures are only logged).

use std::fmt;

/// A worker thread that panicked or returned an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerFailure {
    /// The worker's index (`ringlb-w<worker>`).
    pub worker: usize,
    /// The panic message or the error, as text.
    pub cause: String,
}

impl fmt::Display for WorkerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} failed: {}", self.worker, self.cause)
    }
}
