//! The state of one connection's replay phase (`retry_on_early_close`) on the io_uring driver:
//! the client's bytes kept so far, how far the current backend has been sent them, which of the
//! phase's operations are in flight, and where the phase stands.
//!
//! Pure data with its transitions; the engine's `replay` module submits the operations. The
//! buffer is borrowed from the worker's pool and boxed, so it does not move while the kernel
//! writes into it.

use crate::{conn::passive::BackendEnd, uring::token::Op};

/// Where a replay phase stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Keeping and forwarding the client's bytes, waiting for the backend's first byte.
    Listening,
    /// The backend spoke, or the buffer is full: the relay takes over once nothing of the
    /// phase is in flight.
    Committing,
    /// The backend closed (or reset: `end`) before answering: move on once its operations
    /// have ended.
    Retrying(BackendEnd),
    /// Another backend is being connected (and sent its prelude): the client's bytes are
    /// still kept as they arrive, but nothing goes to the new socket before its connect and
    /// PROXY header have, or the bytes would overtake the header.
    Connecting,
}

/// The phase's operations in flight, one bit per kind (`ReplayRecv`, `ReplaySend`,
/// `ReplayPeek`): at most one of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlight(u8);

impl InFlight {
    fn bit(op: Op) -> u8 {
        match op {
            Op::ReplayRecv => 1,
            Op::ReplaySend => 2,
            Op::ReplayPeek => 4,
            _ => 0,
        }
    }

    /// Whether an operation `op` is in flight.
    pub fn has(self, op: Op) -> bool {
        self.0 & Self::bit(op) != 0
    }

    /// Records `op` submitted.
    pub fn start(&mut self, op: Op) {
        self.0 |= Self::bit(op);
    }

    /// Records `op` completed.
    pub fn end(&mut self, op: Op) {
        self.0 &= !Self::bit(op);
    }

    /// Whether anything is in flight.
    pub fn any(self) -> bool {
        self.0 != 0
    }
}

/// The replay phase of one connection.
pub struct Replay {
    /// Buffer of `replay_buffer` bytes, borrowed from the worker's pool.
    pub buf: Box<[u8]>,
    /// Bytes received from the client.
    pub len: usize,
    /// Bytes sent to the current backend.
    pub sent: usize,
    /// Where `MSG_PEEK` puts the backend's first byte (never read: the relay reads it again).
    pub peek: Box<[u8; 1]>,
    /// Operations in flight.
    pub inflight: InFlight,
    /// The client sent EOF (it reaches the backend through the relay, after the commit).
    pub client_eof: bool,
    /// Where the phase stands.
    pub phase: Phase,
}

impl Replay {
    /// A fresh phase over `buf`.
    pub fn new(buf: Box<[u8]>) -> Replay {
        Replay {
            buf,
            len: 0,
            sent: 0,
            peek: Box::new([0]),
            inflight: InFlight::default(),
            client_eof: false,
            phase: Phase::Listening,
        }
    }

    /// Starts over with a new backend: everything kept is sent again.
    pub fn restart(&mut self) {
        self.sent = 0;
        self.phase = Phase::Listening;
    }

    /// Whether the buffer is full: past it, the connection commits without a replay.
    pub fn full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Whether the client's next bytes should be received into the buffer now.
    pub fn wants_recv(&self) -> bool {
        self.phase == Phase::Listening
            && !self.inflight.has(Op::ReplayRecv)
            && !self.client_eof
            && !self.full()
    }

    /// Whether bytes kept are waiting to be sent to the backend.
    pub fn wants_send(&self) -> bool {
        !self.inflight.has(Op::ReplaySend) && self.sent < self.len
    }

    /// Whether the backend should be watched for its first byte (or its close).
    pub fn wants_peek(&self) -> bool {
        self.phase == Phase::Listening && !self.inflight.has(Op::ReplayPeek)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_in_flight_are_tracked_per_kind() {
        let mut f = InFlight::default();
        assert!(!f.any());
        f.start(Op::ReplayRecv);
        f.start(Op::ReplayPeek);
        assert!(f.has(Op::ReplayRecv) && f.has(Op::ReplayPeek) && !f.has(Op::ReplaySend));
        f.end(Op::ReplayRecv);
        assert!(f.any() && !f.has(Op::ReplayRecv));
        f.end(Op::ReplayPeek);
        assert!(!f.any());
    }

    #[test]
    fn nothing_is_received_or_watched_while_another_backend_connects() {
        let mut r = Replay::new(vec![0; 4].into_boxed_slice());
        r.phase = Phase::Connecting;
        assert!(!r.wants_recv() && !r.wants_peek());
        r.restart();
        assert!(r.wants_recv() && r.wants_peek());
    }

    #[test]
    fn a_full_buffer_or_a_phase_past_listening_receives_no_more() {
        let mut r = Replay::new(vec![0; 4].into_boxed_slice());
        assert!(r.wants_recv() && r.wants_peek() && !r.wants_send());
        r.len = 4;
        assert!(!r.wants_recv() && r.wants_send());
        r.len = 2;
        r.phase = Phase::Committing;
        assert!(!r.wants_recv() && !r.wants_peek() && r.wants_send());
        r.sent = 2;
        r.restart();
        assert_eq!((r.sent, r.phase), (0, Phase::Listening));
    }
}
