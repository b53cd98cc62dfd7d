//! `user_data` encoding: which connection slot, which generation of it, and which operation a
//! completion belongs to, packed into the 64 bits io_uring hands back.
//!
//! Layout: slot (32 bits) | generation (24 bits) | operation (8 bits). The generation makes a
//! late completion of a closed connection harmless when its slot has been reused.

/// What a completion is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Nothing to do (cancellations, linked timeouts).
    Ignore,
    /// The listener's multishot accept.
    Accept,
    /// The accept pause (after `EMFILE`) has elapsed.
    AcceptResume,
    /// The idle-sweep timer fired.
    Tick,
    /// The shutdown eventfd became readable.
    Wake,
    /// The drain deadline after shutdown has passed.
    DrainDeadline,
    /// A backend connect finished.
    Connect,
    /// The no-backend answer was written (slot field holds the client fd).
    RejectWrite,
    /// The rejected client's remaining input was drained (slot field holds the client fd).
    RejectDrain,
    /// Replay phase: client bytes received into the replay buffer.
    ReplayRecv,
    /// Replay phase: buffered client bytes sent to the backend.
    ReplaySend,
    /// Replay phase: the backend's first byte (or its early close) seen with `MSG_PEEK`.
    ReplayPeek,
    /// A receive of the client's PROXY header finished (`accept_proxy`).
    ProxyRead,
    /// The send of what goes to the backend before relaying finished (PROXY header, client
    /// bytes that followed the client's header).
    ProxySend,
    /// A look at the send queue of a socket waiting to be reset after a fault (see
    /// [`crate::conn::ending::Linger`]).
    Linger,
    /// A relay strategy's operation: its own `kind` and the direction.
    Relay {
        /// Strategy-defined operation kind, 0..=63.
        kind: u8,
        /// Direction, 0 or 1.
        dir: u8,
    },
}

const RELAY_BASE: u8 = 64;

impl Op {
    /// A relay operation of `kind` for direction `dir`.
    pub fn relay(kind: u8, dir: usize) -> Op {
        debug_assert!(kind < 64 && dir < 2);
        Op::Relay {
            kind,
            dir: dir as u8,
        }
    }

    fn code(self) -> u8 {
        match self {
            Op::Ignore => 0,
            Op::Accept => 1,
            Op::AcceptResume => 2,
            Op::Wake => 3,
            Op::DrainDeadline => 4,
            Op::Connect => 5,
            Op::RejectWrite => 6,
            Op::RejectDrain => 7,
            Op::Tick => 8,
            Op::ReplayRecv => 9,
            Op::ReplaySend => 10,
            Op::ReplayPeek => 11,
            Op::ProxyRead => 12,
            Op::ProxySend => 13,
            Op::Linger => 14,
            Op::Relay { kind, dir } => RELAY_BASE + kind * 2 + dir,
        }
    }

    fn from_code(code: u8) -> Op {
        match code {
            1 => Op::Accept,
            2 => Op::AcceptResume,
            3 => Op::Wake,
            4 => Op::DrainDeadline,
            5 => Op::Connect,
            6 => Op::RejectWrite,
            7 => Op::RejectDrain,
            8 => Op::Tick,
            9 => Op::ReplayRecv,
            10 => Op::ReplaySend,
            11 => Op::ReplayPeek,
            12 => Op::ProxyRead,
            13 => Op::ProxySend,
            14 => Op::Linger,
            c if c >= RELAY_BASE => Op::Relay {
                kind: (c - RELAY_BASE) / 2,
                dir: (c - RELAY_BASE) % 2,
            },
            _ => Op::Ignore,
        }
    }
}

/// A decoded `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Connection slot (or, for reject operations, the client descriptor).
    pub slot: u32,
    /// Generation of the slot when the operation was submitted (24 bits).
    pub generation: u32,
    /// The operation.
    pub op: Op,
}

/// Mask of the generation bits.
pub const GENERATION_MASK: u32 = 0xff_ffff;
const WORKER_SLOT: u32 = u32::MAX;

impl Token {
    /// A completion nobody needs to see.
    pub const IGNORE: Token = Token {
        slot: WORKER_SLOT,
        generation: 0,
        op: Op::Ignore,
    };

    /// The multishot accept of listener `listener` (the slot field holds its index).
    pub fn accept(listener: u32) -> Token {
        Token {
            slot: listener,
            generation: 0,
            op: Op::Accept,
        }
    }

    /// A worker-level operation (accept, wake, timers).
    pub fn worker(op: Op) -> Token {
        Token {
            slot: WORKER_SLOT,
            generation: 0,
            op,
        }
    }

    /// An operation of connection `slot` at `generation`.
    pub fn conn(slot: u32, generation: u32, op: Op) -> Token {
        Token {
            slot,
            generation: generation & GENERATION_MASK,
            op,
        }
    }

    /// The same connection, another operation.
    pub fn with_op(self, op: Op) -> Token {
        Token { op, ..self }
    }
}

impl From<Token> for u64 {
    fn from(t: Token) -> u64 {
        (t.slot as u64) << 32 | ((t.generation & GENERATION_MASK) as u64) << 8 | t.op.code() as u64
    }
}

impl From<u64> for Token {
    fn from(v: u64) -> Token {
        Token {
            slot: (v >> 32) as u32,
            generation: ((v >> 8) as u32) & GENERATION_MASK,
            op: Op::from_code(v as u8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_op() {
        let ops = [
            Op::Ignore,
            Op::Accept,
            Op::AcceptResume,
            Op::Wake,
            Op::DrainDeadline,
            Op::Connect,
            Op::RejectWrite,
            Op::RejectDrain,
            Op::Tick,
            Op::ReplayRecv,
            Op::ReplaySend,
            Op::ReplayPeek,
            Op::ProxyRead,
            Op::ProxySend,
            Op::Linger,
            Op::relay(0, 0),
            Op::relay(3, 1),
            Op::relay(63, 1),
        ];
        for op in ops {
            for (slot, generation) in [(0, 0), (7, 1), (u32::MAX - 1, GENERATION_MASK)] {
                let t = Token::conn(slot, generation, op);
                assert_eq!(Token::from(u64::from(t)), t);
            }
        }
    }

    #[test]
    fn generation_wraps_within_its_bits() {
        let t = Token::conn(1, GENERATION_MASK + 2, Op::Connect);
        assert_eq!(Token::from(u64::from(t)).generation, 1);
    }
}
