//! Passive health: which failures seen in traffic are evidence against a backend, and when
//! that evidence takes it out of rotation.
//!
//! The rules (README, "Hardening"):
//! - A connect that is refused, reset or times out is evidence: the backend is reported to the
//!   health checker at once (the checker brings it back after `rise` passed probes).
//! - A connect that fails for a local reason (no descriptor, no memory, no local port: see
//!   [`crate::local_error`]) says nothing about the backend: it stays as it is. Running out of
//!   local ports (`EADDRNOTAVAIL`) is counted and logged at most once a second, so an operator
//!   sees it (`source` addresses are the remedy).
//! - With `retry_on_early_close`, a backend that closes or resets a client *before the client
//!   sent anything* is not evidence (backends close idle clients on their own header timeouts):
//!   the close is passed through to the client like any other.
//! - A backend that closes or resets *after* the client's bytes were sent, before answering,
//!   gets the client's bytes replayed elsewhere and one strike; `passive_fall` strikes in a row
//!   report it (as Envoy's outlier detection counts consecutive errors). A backend that answers
//!   clears its strikes.
//!
//! Pure bookkeeping on the backend's atomics and the worker's counters plus the report to the
//! checker; never touches a socket.

use std::{cell::Cell, io, sync::Arc};

use super::events::{self, Throttle};
use crate::{
    backend::Backend,
    health::Ejector,
    local_error,
    stats::{WorkerCounter, WorkerStats},
};

/// What a driver does after a backend closed a client in the replay phase, before answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EarlyClose {
    /// The client had sent nothing: hand the connection to the relay, which passes the close on.
    PassThrough,
    /// The client's bytes were sent: replay them to another backend.
    Replay,
}

/// How a backend ended a connection before answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendEnd {
    /// An orderly close (FIN): what a server's own timeout for a silent client sends.
    Closed,
    /// A reset, or a send that failed: the backend went away (a crash, a closing listener's
    /// backlog), whatever the client did.
    Reset,
}

/// The passive-health rules of one worker.
#[derive(Clone, Debug)]
pub(crate) struct Passive {
    ejector: Ejector,
    /// Consecutive early closes after which a backend is reported (at least 1); a reload may
    /// change it while connections are in their replay phase.
    fall: Cell<u32>,
    worker: usize,
    /// Where connects without a local port are counted.
    stats: Arc<WorkerStats>,
    /// The once-a-second limit of the line about them.
    no_local_port: Throttle,
}

impl Passive {
    /// Rules of worker `worker` (counting into `stats`) reporting to `ejector`, ejecting after
    /// `fall` consecutive early closes.
    pub(crate) fn new(ejector: Ejector, fall: u32, worker: usize, stats: Arc<WorkerStats>) -> Self {
        Self {
            ejector,
            fall: Cell::new(fall.max(1)),
            worker,
            stats,
            no_local_port: Throttle::default(),
        }
    }

    /// A reload changed `passive_fall`: strikes from now on count against the new threshold.
    pub(crate) fn set_fall(&self, fall: u32) {
        self.fall.set(fall.max(1));
    }

    /// The worker these rules run on (for logs and counters).
    pub(crate) fn worker(&self) -> usize {
        self.worker
    }

    /// A connect to `backend` failed with `errno` (attempt `attempt` for this client); the
    /// driver moves on to another backend either way.
    pub(crate) fn connect_failed(&self, backend: &Backend, errno: i32, attempt: u8) {
        let error = io::Error::from_raw_os_error(errno);
        if local_error::is_local(errno) {
            if errno == libc::EADDRNOTAVAIL {
                self.stats.add(WorkerCounter::NoLocalPort);
                events::no_local_port(
                    &self.no_local_port,
                    self.worker,
                    &backend.name,
                    backend.addr,
                );
            }
            tracing::debug!(worker = self.worker, backend = %backend.name, addr = %backend.addr,
                %error, attempt, "connect failed for a local reason; backend not blamed");
            return;
        }
        backend.connect_failed();
        self.ejector.eject(backend, errno);
        tracing::debug!(worker = self.worker, backend = %backend.name, addr = %backend.addr,
            %error, attempt, "connect failed");
    }

    /// `backend` closed or reset a client before answering; `client_sent` says whether any of
    /// the client's bytes had been sent to it.
    ///
    /// A client that had sent nothing is no evidence against the backend either way. Its
    /// backend closing it is passed on (a server timing out a silent client: moving it to
    /// another would only repeat that); its backend *resetting* it is not (the backend died
    /// before the client's first bytes arrived): it tries another backend, without a strike.
    pub(crate) fn early_close(
        &self,
        backend: &Backend,
        client_sent: bool,
        end: BackendEnd,
    ) -> EarlyClose {
        match (client_sent, end) {
            (true, _) => {}
            (false, BackendEnd::Closed) => {
                tracing::debug!(worker = self.worker, backend = %backend.name,
                    "backend closed a client that sent nothing: passing the close on");
                return EarlyClose::PassThrough;
            }
            (false, BackendEnd::Reset) => {
                tracing::debug!(worker = self.worker, backend = %backend.name,
                    "backend reset a client that had sent nothing yet: trying another");
                return EarlyClose::Replay;
            }
        }
        self.strike(backend);
        EarlyClose::Replay
    }

    /// `backend` went away while what precedes the relay (a PROXY header, client bytes that
    /// followed the client's own header) was sent, with `retry_on_early_close` on; the driver
    /// tries another backend. A strike only if client bytes were among them.
    pub(crate) fn prelude_failed(&self, backend: &Backend, client_sent: bool) {
        if client_sent {
            self.strike(backend);
        } else {
            tracing::debug!(worker = self.worker, backend = %backend.name,
                "backend closed before its PROXY header was sent: trying another");
        }
    }

    fn strike(&self, backend: &Backend) {
        let strikes = backend.early_closed();
        tracing::debug!(worker = self.worker, backend = %backend.name, strikes,
            "backend closed before answering: replaying elsewhere");
        if strikes >= self.fall.get() {
            self.ejector.eject(backend, libc::ECONNRESET);
        }
    }

    /// `backend` answered a client: its strikes are cleared.
    pub(crate) fn answered(&self, backend: &Backend) {
        backend.answered();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        Backend::new(0, "a:1", "127.0.0.1:1".parse().unwrap())
    }

    fn stats() -> Arc<WorkerStats> {
        Arc::new(WorkerStats::new(0, 1))
    }

    #[test]
    fn a_close_before_the_client_spoke_is_no_evidence() {
        let (ejector, _rx) = crate::health::test_ejector();
        let passive = Passive::new(ejector, 1, 0, stats());
        let b = backend();
        for _ in 0..10 {
            let closed = passive.early_close(&b, false, BackendEnd::Closed);
            assert_eq!(closed, EarlyClose::PassThrough);
            let reset = passive.early_close(&b, false, BackendEnd::Reset);
            assert_eq!(reset, EarlyClose::Replay, "a reset: the backend went away");
        }
        assert!(!b.is_ejected(), "never reported");
        passive.prelude_failed(&b, false);
        assert!(!b.is_ejected(), "a PROXY header alone is no client byte");
    }

    #[test]
    fn early_closes_eject_after_fall_in_a_row_and_an_answer_clears_them() {
        let (ejector, _rx) = crate::health::test_ejector();
        let passive = Passive::new(ejector, 3, 0, stats());
        let b = backend();
        assert_eq!(
            passive.early_close(&b, true, BackendEnd::Closed),
            EarlyClose::Replay
        );
        assert_eq!(
            passive.early_close(&b, true, BackendEnd::Closed),
            EarlyClose::Replay
        );
        passive.answered(&b);
        passive.early_close(&b, true, BackendEnd::Closed);
        passive.early_close(&b, true, BackendEnd::Closed);
        assert!(!b.is_ejected(), "two strikes after an answer: still in");
        passive.early_close(&b, true, BackendEnd::Closed);
        assert!(b.is_ejected(), "the third in a row reports it");
    }

    #[test]
    fn local_connect_failures_blame_nobody() {
        let (ejector, _rx) = crate::health::test_ejector();
        let counted = stats();
        let passive = Passive::new(ejector, 3, 0, Arc::clone(&counted));
        let b = backend();
        passive.connect_failed(&b, libc::EMFILE, 1);
        passive.connect_failed(&b, libc::EADDRNOTAVAIL, 1);
        passive.connect_failed(&b, libc::EADDRNOTAVAIL, 2);
        assert!(!b.is_ejected());
        assert_eq!(
            counted.get(WorkerCounter::NoLocalPort),
            2,
            "ports running out is counted, descriptors running out is not"
        );
        assert_eq!(
            b.stats
                .connect_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        passive.connect_failed(&b, libc::ECONNREFUSED, 1);
        assert!(b.is_ejected());
    }
}
