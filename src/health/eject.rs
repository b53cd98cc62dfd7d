//! Passive health: workers report a backend whose connect failed, and the checker takes it out
//! of rotation at once instead of waiting for the next probe round.
//!
//! The report is lock-free for the worker (an unbounded tokio channel send, once per backend
//! until it is brought back, thanks to [`Backend::mark_ejected`]); the checker's thread does the
//! republishing, so only one thread ever writes the balancer. A connect that failed for a reason
//! of this host (out of descriptors, memory or local ports: [`crate::local_error`]) is no
//! evidence against the backend and never ejects it.

use std::io;

use tokio::sync::mpsc;

use super::{pool::Key, probe::ProbeFailure};
use crate::{backend::Backend, local_error};

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
    /// the backend was last healthy is sent; the others cost one atomic swap. A local `errno`
    /// ([`local_error::is_local`]) is ignored, before the backend is marked, so that a real
    /// failure right after it is still reported.
    pub fn eject(&self, backend: &Backend, errno: i32) {
        if local_error::is_local(errno) {
            return;
        }
        if backend.mark_ejected() {
            let reason = ProbeFailure::Passive(io::Error::from_raw_os_error(errno).to_string());
            // The checker has stopped only during shutdown, when nothing needs it any more.
            let _ = self.tx.send(((backend.target, backend.addr), reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_errors_never_eject_and_do_not_use_up_the_report() {
        let (ejector, mut ejections) = channel();
        let backend = Backend::new(0, "a:80", "10.0.0.1:80".parse().unwrap());
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::EADDRNOTAVAIL,
            libc::ENOMEM,
        ] {
            ejector.eject(&backend, errno);
        }
        assert!(ejections.try_recv().is_err(), "nothing reported");
        ejector.eject(&backend, libc::ECONNREFUSED);
        let (key, failure) = ejections.try_recv().expect("a refused connect ejects");
        assert_eq!(key, (0, backend.addr));
        assert!(matches!(failure, ProbeFailure::Passive(_)), "{failure:?}");
    }
}
