//! How a relayed connection ends, for every relay strategy and both I/O drivers.
//!
//! The rules (README, "Hardening"):
//! - Without a fault, each direction ends when its source's EOF has been passed on (a `SHUT_WR`
//!   on the destination after every byte before it): half-close, both ways.
//! - When a socket fails (reset, `EPIPE`, any error on a receive or a send), the direction that
//!   writes to it stops at once: its bytes have nowhere to go. The direction that reads from it
//!   goes on: bytes already received and bytes still queued in the failed socket are delivered
//!   (a receive returns what the kernel holds before it reports the error), and it ends without
//!   a FIN.
//! - Once both directions are over, a side that did not fail is **reset**, but only once what
//!   was delivered to it has left its send queue ([`Linger`]), so the peer reads every byte and
//!   then an error: a truncated stream is never presented as a complete one.
//!
//! Pure state: records what the strategy saw and says what follows; never does I/O.

use std::time::{Duration, Instant};

#[cfg(test)]
use crate::stats::DOWNSTREAM;
pub use crate::stats::UPSTREAM;

/// One of the two sockets of a proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The accepted client socket.
    Client,
    /// The socket to the backend.
    Backend,
}

impl Side {
    /// The side direction `dir` reads from.
    pub fn src(dir: usize) -> Side {
        if dir == UPSTREAM {
            Side::Client
        } else {
            Side::Backend
        }
    }

    /// The side direction `dir` writes to.
    pub fn dst(dir: usize) -> Side {
        Side::src(1 - dir)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Backend,
            Side::Backend => Side::Client,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Backend => "backend",
        })
    }
}

/// A socket error seen by the relay: which side, and its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketError {
    /// The side whose socket failed.
    pub side: Side,
    /// The error (a positive `E…` value).
    pub errno: i32,
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let error = std::io::Error::from_raw_os_error(self.errno);
        write!(f, "{} socket: {error}", self.side)
    }
}

/// What a connection's two directions have come to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ending {
    /// The first error of each side's socket, by [`Side`] index.
    failed: [Option<i32>; 2],
    /// Each direction has ended (its EOF passed on, or its source's failure reached).
    ended: [bool; 2],
    /// The side whose direction ended first: without a fault, the one that closed first.
    first: Option<Side>,
}

/// How to close once both directions are over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// No fault: both EOFs were passed on; close both sockets. The side that closed first.
    Clean(Side),
    /// `fault` happened; reset `reset` once its send queue has drained, close the other now.
    Reset {
        /// The side to reset after the drain.
        reset: Side,
        /// The first failure.
        fault: SocketError,
    },
    /// Both sockets failed: close both now.
    BothFailed(SocketError),
}

impl Ending {
    /// Records that `side`'s socket failed with `errno` (the first error of a side is kept).
    pub fn fail(&mut self, side: Side, errno: i32) {
        self.failed[side.index()].get_or_insert(errno);
    }

    /// Records that direction `dir` has ended: its EOF was passed on, or, after its source
    /// failed, everything received before the failure was delivered.
    pub fn end(&mut self, dir: usize) {
        self.ended[dir] = true;
        self.first.get_or_insert(Side::src(dir));
    }

    /// Whether direction `dir` must move nothing more: its destination failed.
    pub fn stopped(&self, dir: usize) -> bool {
        self.failed[Side::dst(dir).index()].is_some()
    }

    /// Whether direction `dir`'s source failed: once its bytes are delivered it ends without
    /// passing an EOF on.
    pub fn src_failed(&self, dir: usize) -> bool {
        self.failed[Side::src(dir).index()].is_some()
    }

    /// Whether direction `dir` is over (ended, or stopped).
    pub fn over(&self, dir: usize) -> bool {
        self.ended[dir] || self.stopped(dir)
    }

    /// The first socket failure, the client's if both failed.
    pub fn fault(&self) -> Option<SocketError> {
        [Side::Client, Side::Backend]
            .into_iter()
            .find_map(|side| self.failed[side.index()].map(|errno| SocketError { side, errno }))
    }

    /// How to close, once both directions are over; `None` while one still runs.
    pub fn close(&self) -> Option<Close> {
        if !(self.over(0) && self.over(1)) {
            return None;
        }
        let Some(fault) = self.fault() else {
            return Some(Close::Clean(self.first.unwrap_or(Side::Client)));
        };
        Some(match self.failed[fault.side.other().index()] {
            Some(_) => Close::BothFailed(fault),
            None => Close::Reset {
                reset: fault.side.other(),
                fault,
            },
        })
    }
}

/// How often a driver looks at the send queue of a socket waiting to be reset.
pub const LINGER_POLL: Duration = Duration::from_millis(20);
/// How long a socket waiting to be reset may go without its send queue shrinking: a peer that
/// stopped reading gets its reset after this, whatever is still queued.
pub const LINGER_STALL: Duration = Duration::from_secs(1);

/// Waiting for a socket's send queue to drain before resetting it ([`Close::Reset`]).
#[derive(Clone, Copy, Debug)]
pub struct Linger {
    queued: usize,
    progress: Instant,
}

/// What to do with a lingering socket after a look at its send queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LingerStep {
    /// Look again after [`LINGER_POLL`].
    Wait,
    /// Reset it now: its queue is empty, or it stopped draining.
    Reset,
}

impl Linger {
    /// Starts waiting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            queued: usize::MAX,
            progress: now,
        }
    }

    /// `queued` bytes sit in the socket's send queue at `now` (`None`: the kernel would not
    /// say, so reset at once).
    pub fn step(&mut self, queued: Option<usize>, now: Instant) -> LingerStep {
        let Some(queued) = queued.filter(|&q| q > 0) else {
            return LingerStep::Reset;
        };
        if queued < self.queued {
            self.queued = queued;
            self.progress = now;
        }
        if now.duration_since(self.progress) >= LINGER_STALL {
            LingerStep::Reset
        } else {
            LingerStep::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_fault_both_eofs_end_cleanly() {
        let mut e = Ending::default();
        e.end(UPSTREAM);
        assert_eq!(
            e.close(),
            None,
            "half-closed: the other direction still runs"
        );
        e.end(DOWNSTREAM);
        assert_eq!(e.close(), Some(Close::Clean(Side::Client)));
    }

    #[test]
    fn a_backend_reset_stops_the_upload_and_lets_the_download_finish() {
        let mut e = Ending::default();
        e.fail(Side::Backend, libc::ECONNRESET);
        assert!(e.stopped(UPSTREAM), "nothing more goes to a failed backend");
        assert!(
            !e.over(DOWNSTREAM),
            "what the backend sent still reaches the client"
        );
        assert!(e.src_failed(DOWNSTREAM));
        assert_eq!(e.close(), None);
        e.end(DOWNSTREAM);
        let fault = SocketError {
            side: Side::Backend,
            errno: libc::ECONNRESET,
        };
        assert_eq!(
            e.close(),
            Some(Close::Reset {
                reset: Side::Client,
                fault
            })
        );
    }

    #[test]
    fn both_failing_closes_both_and_keeps_the_first_error() {
        let mut e = Ending::default();
        e.fail(Side::Client, libc::EPIPE);
        e.fail(Side::Client, libc::ECONNRESET);
        e.fail(Side::Backend, libc::ECONNRESET);
        let fault = SocketError {
            side: Side::Client,
            errno: libc::EPIPE,
        };
        assert_eq!(e.close(), Some(Close::BothFailed(fault)));
    }

    #[test]
    fn a_lingering_socket_is_reset_when_drained_or_stalled() {
        let t0 = Instant::now();
        let mut l = Linger::new(t0);
        assert_eq!(l.step(Some(1000), t0), LingerStep::Wait);
        let t1 = t0 + LINGER_STALL / 2;
        assert_eq!(l.step(Some(500), t1), LingerStep::Wait, "draining");
        assert_eq!(l.step(Some(500), t1 + LINGER_STALL / 2), LingerStep::Wait);
        assert_eq!(
            l.step(Some(500), t1 + LINGER_STALL),
            LingerStep::Reset,
            "stalled"
        );
        let mut l = Linger::new(t0);
        assert_eq!(l.step(Some(0), t0), LingerStep::Reset, "drained");
        assert_eq!(Linger::new(t0).step(None, t0), LingerStep::Reset);
    }
}
