//! `relay = "auto"`: each direction starts as `copy`, which wins on small request/response
//! exchanges, moves to `splice-inline` (zero-copy through a pooled pipe) while it carries bulk,
//! and back when traffic turns small again.
//!
//! - **Copy → splice** after [`TO_SPLICE`] receives in a row that filled their whole buffer:
//!   the sender has more than a buffer's worth ready. The switch waits for the direction to be
//!   idle — its last buffer fully sent, no receive armed — so no byte is in two places.
//! - **Splice → copy** after [`TO_COPY`] wakeups in a row that found the source dry having
//!   moved less than one copy buffer, with the pipe empty and the destination not full: the
//!   readable poll is cancelled and a copy receive takes over. A poll completion still in the
//!   queue meanwhile only updates bookkeeping.
//!
//! Both halves of a direction exist from the start, but neither holds memory while idle: copy
//! picks a ring buffer only when bytes arrive, splice borrows a pipe only while bytes sit in it.
//! The two sides of a connection switch independently (a download in splice, its requests in
//! copy). Endings follow [`crate::conn::ending`], shared by both modes.

use io_uring::{opcode, types::CancelBuilder};

use std::sync::Arc;

use super::{copy, splice_inline, Dir, Ends, Flow, Io, Pair, Relay, Step};
use crate::{
    stats::{WorkerCounter, WorkerStats},
    uring::token::Op,
};

/// Consecutive full copy receives that move a direction to splice.
const TO_SPLICE: u8 = 4;
/// Consecutive small, dry splice wakeups that move a direction back to copy.
const TO_COPY: u8 = 2;
/// Kinds of the splice half's operations start here (the copy half's start at 0).
const SPLICE_KINDS: u8 = 8;

/// The strategy: the worker's copy relay (buffer ring, spares) and splice-inline relay (pipes).
pub struct AutoRelay {
    copy: copy::CopyRelay,
    splice: splice_inline::SpliceInline,
    /// Where switches are counted (`ringlb_relay_switches_total`).
    stats: Arc<WorkerStats>,
}

impl AutoRelay {
    /// A strategy over both relays, counting its switches in `stats`.
    pub fn new(
        copy: copy::CopyRelay,
        splice: splice_inline::SpliceInline,
        stats: Arc<WorkerStats>,
    ) -> Self {
        Self {
            copy,
            splice,
            stats,
        }
    }
}

/// Which relay moves a direction's bytes now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Copy,
    /// Copy is finishing its last buffer; splice takes over once it is idle.
    ToSplice,
    Splice,
}

/// One direction: its mode, each relay's state for it, and the streak that decides a switch.
#[derive(Default)]
pub struct Half {
    mode: Mode,
    copy: copy::Half,
    splice: splice_inline::Half,
    streak: u8,
}

/// Per-connection state.
pub type Conn = Pair<Half>;

impl Relay for AutoRelay {
    type Conn = Conn;

    fn open(&mut self, ends: Ends) -> Conn {
        Pair::new(ends)
    }

    fn arm(&mut self, io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> Step {
        let mut d = conn.dir(dir);
        self.copy.arm_dir(io, &mut d.part(|h| &mut h.copy))
    }

    fn complete(
        &mut self,
        io: &mut Io<'_>,
        conn: &mut Conn,
        kind: u8,
        dir: usize,
        result: i32,
        flags: u32,
    ) -> Flow {
        let step = {
            let mut d = conn.dir(dir);
            if kind >= SPLICE_KINDS {
                self.on_splice(io, &mut d, kind - SPLICE_KINDS, result, flags)
            } else {
                self.on_copy(io, &mut d, kind, result, flags)
            }
        };
        match step {
            Ok(()) => super::flow(&conn.ending),
            Err(errno) => Flow::Failed(errno),
        }
    }

    fn discard(&mut self, kind: u8, result: i32, flags: u32) {
        if kind < SPLICE_KINDS {
            self.copy.discard(kind, result, flags);
        }
    }

    fn close(&mut self, conn: Conn) {
        for half in conn.half {
            self.copy.close_half(half.copy);
            self.splice.close_half(half.splice);
        }
    }
}

impl AutoRelay {
    fn on_copy(
        &mut self,
        io: &mut Io<'_>,
        d: &mut Dir<'_, Half>,
        kind: u8,
        result: i32,
        flags: u32,
    ) -> Step {
        if kind == copy::RECV && d.half.mode == Mode::Copy {
            let full = result > 0 && result as usize == self.copy.buffer_size();
            d.half.streak = if full { d.half.streak + 1 } else { 0 };
            if d.half.streak >= TO_SPLICE {
                // Finish the buffer in hand, then stop receiving: splice takes over.
                d.half.mode = Mode::ToSplice;
                d.half.copy.pause = true;
            }
        }
        self.copy
            .complete_dir(io, &mut d.part(|h| &mut h.copy), kind, result, flags)?;
        if d.half.mode == Mode::ToSplice && d.half.copy.idle() && !d.ending.over(d.dir) {
            d.half.mode = Mode::Splice;
            d.half.copy.pause = false;
            d.half.streak = 0;
            self.stats.add(WorkerCounter::ToSplice);
            let mut s = d.part(|h| &mut h.splice);
            return io.kinds_from(SPLICE_KINDS, |io| self.splice.arm_dir(io, &mut s));
        }
        Ok(())
    }

    fn on_splice(
        &mut self,
        io: &mut Io<'_>,
        d: &mut Dir<'_, Half>,
        kind: u8,
        result: i32,
        flags: u32,
    ) -> Step {
        if d.half.mode != Mode::Splice {
            // The cancelled poll's last completions after a switch back to copy.
            d.half.splice.forget(kind, flags);
            return Ok(());
        }
        let mut s = d.part(|h| &mut h.splice);
        io.kinds_from(SPLICE_KINDS, |io| {
            self.splice.complete_dir(io, &mut s, kind, result, flags)
        })?;
        let small = d.half.splice.small_and_dry(self.copy.buffer_size());
        d.half.streak = if small { d.half.streak + 1 } else { 0 };
        if d.half.streak < TO_COPY || d.ending.over(d.dir) {
            return Ok(());
        }
        d.half.mode = Mode::Copy;
        d.half.streak = 0;
        self.stats.add(WorkerCounter::ToCopy);
        if d.half.splice.watching() {
            let poll = io
                .token
                .with_op(Op::relay(SPLICE_KINDS + splice_inline::POLL_IN, d.dir));
            let cancel = opcode::AsyncCancel2::new(CancelBuilder::user_data(poll.into())).build();
            // SAFETY: a cancellation references nothing but a user_data value.
            unsafe { io.submit_untracked(cancel) }?;
        }
        self.copy.arm_dir(io, &mut d.part(|h| &mut h.copy))
    }
}
