//! `relay = "copy"`: each direction receives into a buffer the kernel picks from the worker's
//! provided-buffer ring, sends it on, and receives again once it is all sent.
//!
//! Fairness is the point of the design: no connection, and no group of connections, can take
//! the buffers the others need.
//! - A direction holds at most one ring buffer, and only between a receive and the send that
//!   follows it: sends are non-blocking (`MSG_DONTWAIT`), so one that cannot finish returns at
//!   once. Its unsent rest is then copied into a buffer of the direction's own (from a
//!   per-worker pool of spares) and the ring buffer goes back: a destination that does not read
//!   holds one own buffer, never a ring buffer.
//! - A direction whose destination is full does not receive (TCP backpressure does the rest),
//!   and waits for a writable poll, not a timer: nothing spins.
//! - When the ring is empty (`ENOBUFS`: many directions mid-send at once), the direction
//!   receives into an own buffer instead: slower, never stalled.
//!
//! So each direction holds at most [`BUFFER_SIZE`](crate::worker) bytes of its own while blocked,
//! and an idle connection holds no buffer at all. Never blocks, never allocates per byte (spares
//! are pooled), never loses or reorders a byte; endings follow [`crate::conn::ending`], and the
//! last bytes before a FIN the source already sent carry the FIN ([`crate::conn::fin`]).

use io_uring::{cqueue, opcode, squeue, types::Fd};

use super::{errno, Dir, Ends, Flow, Io, Pair, Relay, Step};
use crate::{
    conn::{ending::Side, fin},
    uring::{buf_ring::BufRing, sys},
};

pub(super) const RECV: u8 = 0;
const SEND: u8 = 1;
const POLL_OUT: u8 = 2;

/// Spare buffers kept for reuse once returned; beyond this they are freed.
const MAX_SPARES: usize = 1024;

/// The strategy, holding the worker's buffer ring and its spare buffers.
pub struct CopyRelay {
    ring: BufRing,
    /// Size of every buffer, ring or spare.
    size: usize,
    /// Own buffers ready to lend to a blocked direction.
    spares: Vec<Box<[u8]>>,
}

impl CopyRelay {
    /// A strategy over a registered buffer ring of `size`-byte buffers.
    pub fn new(ring: BufRing, size: usize) -> Self {
        Self {
            ring,
            size,
            spares: Vec::new(),
        }
    }

    /// Size of every buffer, ring or spare: a receive that fills it had more waiting.
    pub(super) fn buffer_size(&self) -> usize {
        self.size
    }

    fn spare(&mut self) -> Box<[u8]> {
        self.spares
            .pop()
            .unwrap_or_else(|| vec![0; self.size].into_boxed_slice())
    }

    fn give_back(&mut self, buf: Box<[u8]>) {
        if self.spares.len() < MAX_SPARES {
            self.spares.push(buf);
        }
    }
}

/// Where a direction's bytes sit.
#[derive(Default)]
enum Held {
    /// Nothing: the next receive picks a ring buffer.
    #[default]
    Nothing,
    /// Ring buffer `bid`, `len` bytes filled.
    Ring { bid: u16, len: u32 },
    /// An own buffer, `len` bytes filled.
    Own { buf: Box<[u8]>, len: u32 },
}

/// The one operation a direction may have in flight.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Busy {
    #[default]
    No,
    Receiving,
    Sending,
    /// Waiting for room at the destination.
    Polling,
}

/// One direction's progress.
#[derive(Default)]
pub struct Half {
    held: Held,
    /// Bytes of `held` already sent.
    sent: u32,
    busy: Busy,
    /// The source's FIN is queued right behind what is held ([`crate::conn::fin`]): the send
    /// uses `MSG_MORE`, so the FIN passed on after it rides in the same segment.
    fin_follows: bool,
    /// Receive no more once what is held is sent (`relay = "auto"` is handing the direction
    /// to another relay).
    pub(super) pause: bool,
}

impl Half {
    /// Nothing held and nothing in flight: the direction may change hands.
    pub(super) fn idle(&self) -> bool {
        self.busy == Busy::No && matches!(self.held, Held::Nothing)
    }
}

/// Per-connection state.
pub type Conn = Pair<Half>;

impl Relay for CopyRelay {
    type Conn = Conn;

    fn open(&mut self, ends: Ends) -> Conn {
        Pair::new(ends)
    }

    fn arm(&mut self, io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> Step {
        self.arm_dir(io, &mut conn.dir(dir))
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
        match self.complete_dir(io, &mut conn.dir(dir), kind, result, flags) {
            Ok(()) => super::flow(&conn.ending),
            Err(errno) => Flow::Failed(errno),
        }
    }

    fn discard(&mut self, _kind: u8, _result: i32, flags: u32) {
        if let Some(bid) = cqueue::buffer_select(flags) {
            self.ring.recycle(bid);
        }
    }

    fn close(&mut self, conn: Conn) {
        for half in conn.half {
            self.close_half(half);
        }
    }
}

/// The strategy one direction at a time, for `relay = "auto"` to combine with another.
impl CopyRelay {
    /// Arms direction `d`: its first receive.
    pub(super) fn arm_dir(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>) -> Step {
        self.receive(io, d)
    }

    /// Handles the completion of operation `kind` of direction `d`.
    pub(super) fn complete_dir(
        &mut self,
        io: &mut Io<'_>,
        d: &mut Dir<'_, Half>,
        kind: u8,
        result: i32,
        flags: u32,
    ) -> Step {
        d.half.busy = Busy::No;
        match kind {
            RECV => self.on_received(io, d, result, flags),
            SEND => self.on_sent(io, d, result),
            _ => self.send(io, d),
        }
    }

    /// Gives back what a direction holds, once nothing of it is in flight.
    pub(super) fn close_half(&mut self, half: Half) {
        self.release(half.held);
    }
}

impl CopyRelay {
    /// Receives into a ring buffer the kernel picks when bytes arrive (an idle direction holds
    /// none), unless the direction is over. A source that failed on the other direction's send
    /// is still read: the kernel hands out what it queued before the error, then EOF or the
    /// error itself.
    fn receive(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>) -> Step {
        if d.ending.over(d.dir) {
            return Ok(());
        }
        let recv = opcode::Recv::new(Fd(d.src()), std::ptr::null_mut(), self.size as u32)
            .buf_group(self.ring.group())
            .build()
            .flags(squeue::Flags::BUFFER_SELECT);
        // SAFETY: the kernel writes only into a ring buffer it picked and hands it back in the
        // completion; the socket is open until teardown.
        unsafe { io.submit(recv, RECV, d.dir) }?;
        d.half.busy = Busy::Receiving;
        Ok(())
    }

    /// The ring was empty: receives into an own buffer instead.
    fn receive_own(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>) -> Step {
        let mut buf = self.spare();
        let recv = opcode::Recv::new(Fd(d.src()), buf.as_mut_ptr(), buf.len() as u32).build();
        d.half.held = Held::Own { buf, len: 0 };
        // SAFETY: the buffer sits in the direction's `held`, which is neither freed nor replaced
        // while this receive is in flight (teardown waits for it); the socket is open until then.
        unsafe { io.submit(recv, RECV, d.dir) }?;
        d.half.busy = Busy::Receiving;
        Ok(())
    }

    fn on_received(
        &mut self,
        io: &mut Io<'_>,
        d: &mut Dir<'_, Half>,
        res: i32,
        flags: u32,
    ) -> Step {
        let picked = cqueue::buffer_select(flags);
        if d.ending.over(d.dir) {
            // The destination failed meanwhile: these bytes have nowhere to go.
            if let Some(bid) = picked {
                self.ring.recycle(bid);
            }
            return Ok(());
        }
        match (res, picked) {
            (n, Some(bid)) if n > 0 => {
                d.half.held = Held::Ring { bid, len: n as u32 };
            }
            (n, None) if n > 0 => {
                if let Held::Own { len, .. } = &mut d.half.held {
                    *len = n as u32;
                }
            }
            (e, None) if e == -libc::ENOBUFS => return self.receive_own(io, d),
            (r, picked) => {
                if let Some(bid) = picked {
                    self.ring.recycle(bid);
                }
                self.release_held(d);
                if r < 0 && r != -libc::ECANCELED {
                    d.ending.fail(Side::src(d.dir), errno(r));
                }
                // EOF, or the source failed: nothing is held, so the direction ends here.
                return self.finish(d);
            }
        }
        // A short receive that left the socket "not empty" has the FIN behind it.
        d.half.fin_follows = fin::follows(res as usize, self.size, cqueue::sock_nonempty(flags));
        d.half.sent = 0;
        self.send(io, d)
    }

    /// Sends the unsent rest of what the direction holds, without waiting for room.
    fn send(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>) -> Step {
        if d.ending.over(d.dir) {
            self.release_held(d);
            return Ok(());
        }
        let dst = d.dst();
        let half = &mut d.half;
        let (ptr, len) = match &half.held {
            Held::Nothing => return Ok(()),
            Held::Ring { bid, len } => (self.ring.ptr(*bid), *len),
            Held::Own { buf, len } => (buf.as_ptr(), *len),
        };
        // SAFETY: `sent` < `len` ≤ the buffer's size, so the pointer stays inside it.
        let ptr = unsafe { ptr.add(half.sent as usize) };
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | fin::send_flags(half.fin_follows);
        let send = opcode::Send::new(Fd(dst), ptr, len - half.sent)
            .flags(flags)
            .build();
        // SAFETY: the buffer stays in `held` (neither recycled nor given back) until this send
        // completes; the socket is open until teardown.
        unsafe { io.submit(send, SEND, d.dir) }?;
        half.busy = Busy::Sending;
        Ok(())
    }

    fn on_sent(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>, res: i32) -> Step {
        if res < 0 && res != -libc::EAGAIN {
            if res != -libc::ECANCELED {
                d.ending.fail(Side::dst(d.dir), errno(res));
            }
            self.release_held(d);
            return Ok(());
        }
        let sent = res.max(0) as u32;
        io.delivered(d.dir, sent as usize);
        let half = &mut d.half;
        half.sent += sent;
        let len = match &half.held {
            Held::Ring { len, .. } | Held::Own { len, .. } => *len,
            Held::Nothing => 0,
        };
        if half.sent < len {
            // The destination is full: keep the rest in an own buffer, free the ring's, and
            // wait for room.
            self.own_the_rest(d);
            io.wait_writable(d.ends, d.dir, POLL_OUT)?;
            d.half.busy = Busy::Polling;
            return Ok(());
        }
        self.release_held(d);
        if d.half.pause {
            return Ok(());
        }
        self.receive(io, d)
    }

    /// Moves the unsent bytes of a ring buffer to the start of an own buffer.
    fn own_the_rest(&mut self, d: &mut Dir<'_, Half>) {
        let half = &mut d.half;
        let Held::Ring { bid, len } = half.held else {
            return;
        };
        let mut buf = self.spare();
        let rest = (len - half.sent) as usize;
        // SAFETY: buffer `bid` is filled up to `len` and no operation uses it now.
        let src =
            unsafe { std::slice::from_raw_parts(self.ring.ptr(bid).add(half.sent as usize), rest) };
        buf[..rest].copy_from_slice(src);
        self.ring.recycle(bid);
        half.held = Held::Own {
            buf,
            len: rest as u32,
        };
        half.sent = 0;
    }

    /// The direction's source sent EOF (passed on as a FIN once nothing is held) or failed
    /// (no FIN: the destination is reset when the connection ends).
    fn finish(&mut self, d: &mut Dir<'_, Half>) -> Step {
        if !d.ending.src_failed(d.dir) && !d.ending.stopped(d.dir) {
            let _ = sys::shutdown_write(d.dst());
        }
        d.ending.end(d.dir);
        Ok(())
    }

    fn release_held(&mut self, d: &mut Dir<'_, Half>) {
        let held = std::mem::take(&mut d.half.held);
        self.release(held);
        d.half.sent = 0;
    }

    fn release(&mut self, held: Held) {
        match held {
            Held::Nothing => {}
            Held::Ring { bid, .. } => self.ring.recycle(bid),
            Held::Own { buf, .. } => self.give_back(buf),
        }
    }
}
