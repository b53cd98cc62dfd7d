//! Passive health: workers report a backend whose connect failed, and the checker takes it out
//! of rotation at once instead of waiting for the next probe round.
//!
//! The report is lock-free for the worker (an unbounded tokio channel send, once per backend
//! until it is brought back, thanks to [`Backend::mark_ejected`]); the checker's thread does the
//! republishing, so only one thread ever writes the balancer.

use std::io;

use tokio::sync::mpsc;

use super::{pool::Key, probe::ProbeFailure};
use crate::backend::Backend;

/// The checker's end: reports waiting to be applied.
pub(super) type Ejections = mpsc::UnboundedReceiver<(Key, ProbeFailure)>;

/// A worker's handle for reporting failed connects. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Ejector {
    tx: mpsc::UnboundedSender<(Key, ProbeFailure)>,
}

pub(super) fn channel() -> (Ejector, Ejections) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Ejector { tx }, rx)
}

impl Ejector {
    /// Reports that connecting to `backend` failed with `errno`. Only the first report since
    /// the backend was last healthy is sent; the others cost one atomic swap.
    pub fn eject(&self, backend: &Backend, errno: i32) {
        if backend.mark_ejected() {
            let reason = ProbeFailure::Passive(io::Error::from_raw_os_error(errno).to_string());
            // The checker has stopped only during shutdown, when nothing needs it any more.
            let _ = self.tx.send(((backend.target, backend.addr), reason));
        }
    }
}
