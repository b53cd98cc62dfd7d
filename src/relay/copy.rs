//! `relay = "copy"`: a multishot receive per direction fills buffers the kernel picks from the
//! worker's provided-buffer ring; each filled buffer is sent to the other side, in order, and
//! given back to the ring once fully sent.
//!
//! Idle connections hold no buffer. A direction whose destination is slow stops receiving past a
//! high-water mark (its multishot receive is cancelled and re-armed once drained), so one
//! connection cannot take the whole ring. Never blocks, never allocates per byte.

use io_uring::{
    cqueue, opcode,
    types::{CancelBuilder, Fd, Timespec},
};

use super::{errno, flow_of, Ends, Flow, Io, Relay, Step};
use crate::uring::{buf_ring::BufRing, sys};

const RECV: u8 = 0;
const SEND: u8 = 1;
const RETRY: u8 = 2;

/// End-of-list marker for the per-direction buffer queue.
const NIL: u16 = u16::MAX;
/// Buffers a direction may hold before it stops receiving.
const HIGH_WATER: u32 = 16;
/// Buffers below which a stopped direction receives again.
const LOW_WATER: u32 = 4;

/// The strategy, holding the worker's buffer ring.
pub struct Copy {
    ring: BufRing,
    /// Queue links, indexed by buffer id: the next buffer of the same direction.
    next: Vec<u16>,
    /// Filled length, indexed by buffer id.
    len: Vec<u32>,
    /// How long a direction waits when the ring has no free buffer.
    retry_after: Box<Timespec>,
}

impl Copy {
    /// A strategy over a registered buffer ring.
    pub fn new(ring: BufRing, buffers: u16) -> Self {
        Self {
            ring,
            next: vec![NIL; buffers as usize],
            len: vec![0; buffers as usize],
            retry_after: Box::new(Timespec::new().nsec(1_000_000)),
        }
    }
}

/// One direction's progress.
struct Half {
    head: u16,
    tail: u16,
    /// Buffers queued.
    count: u32,
    /// Bytes of the head buffer already sent.
    sent: u32,
    sending: bool,
    /// The multishot receive is armed (or a retry timer is).
    receiving: bool,
    /// Receiving was stopped at the high-water mark.
    paused: bool,
    eof: bool,
    done: bool,
}

impl Default for Half {
    fn default() -> Self {
        Self {
            head: NIL,
            tail: NIL,
            count: 0,
            sent: 0,
            sending: false,
            receiving: false,
            paused: false,
            eof: false,
            done: false,
        }
    }
}

/// Per-connection state.
pub struct Conn {
    ends: Ends,
    half: [Half; 2],
    /// Identifies this connection's receives for cancellation.
    recv_token: [u64; 2],
}

impl Relay for Copy {
    type Conn = Conn;

    fn open(&mut self, ends: Ends) -> Conn {
        Conn {
            ends,
            half: Default::default(),
            recv_token: [0; 2],
        }
    }

    fn arm(&mut self, io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> Step {
        self.receive(io, conn, dir)
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
        let step = match kind {
            RECV => self.on_received(io, conn, dir, result, flags),
            SEND => self.on_sent(io, conn, dir, result),
            _ => {
                conn.half[dir].receiving = false;
                self.receive(io, conn, dir)
            }
        };
        match step {
            Ok(()) => flow_of([conn.half[0].done, conn.half[1].done]),
            Err(errno) => Flow::Failed(errno),
        }
    }

    fn discard(&mut self, _kind: u8, _result: i32, flags: u32) {
        if let Some(bid) = cqueue::buffer_select(flags) {
            self.ring.recycle(bid);
        }
    }

    fn close(&mut self, conn: Conn) {
        for half in &conn.half {
            let mut bid = half.head;
            while bid != NIL {
                let next = self.next[bid as usize];
                self.ring.recycle(bid);
                bid = next;
            }
        }
    }
}

impl Copy {
    fn receive(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize) -> Step {
        let recv = opcode::RecvMulti::new(Fd(c.ends.src(dir)), self.ring.group()).build();
        c.recv_token[dir] = io
            .token
            .with_op(crate::worker::token::Op::relay(RECV, dir))
            .into();
        // SAFETY: the kernel writes only into ring buffers it picked; the socket is open until
        // teardown.
        let armed = unsafe { io.submit(recv, RECV, dir) };
        c.half[dir].receiving = armed.is_ok();
        armed
    }

    fn on_received(
        &mut self,
        io: &mut Io<'_>,
        c: &mut Conn,
        dir: usize,
        res: i32,
        flags: u32,
    ) -> Step {
        if let Some(bid) = cqueue::buffer_select(flags) {
            if res > 0 {
                self.enqueue(c, dir, bid, res as u32);
            } else {
                self.ring.recycle(bid);
            }
        }
        let more = cqueue::more(flags);
        let half = &mut c.half[dir];
        if !more {
            half.receiving = false;
        }
        match res {
            0 => half.eof = true,
            e if e == -libc::ENOBUFS && !half.receiving => {
                // The ring is empty: other connections hold every buffer. Try again shortly.
                half.receiving = true;
                let timeout = opcode::Timeout::new(&*self.retry_after as *const Timespec).build();
                // SAFETY: the timespec is boxed in `self`, alive as long as the worker.
                unsafe { io.submit(timeout, RETRY, dir) }?;
            }
            e if e == -libc::ENOBUFS => {}
            e if e == -libc::ECANCELED => {}
            e if e < 0 => return Err(errno(e)),
            _ if !more && !half.paused && !half.eof => {
                self.receive(io, c, dir)?;
            }
            _ => {}
        }
        let half = &mut c.half[dir];
        if half.count >= HIGH_WATER && half.receiving && !half.paused {
            half.paused = true;
            let cancel =
                opcode::AsyncCancel2::new(CancelBuilder::user_data(c.recv_token[dir])).build();
            // SAFETY: a cancellation references nothing but a user_data value.
            unsafe { io.submit_untracked(cancel) }?;
        }
        self.resume(io, c, dir)?;
        self.send_next(io, c, dir)
    }

    fn enqueue(&mut self, c: &mut Conn, dir: usize, bid: u16, len: u32) {
        self.len[bid as usize] = len;
        self.next[bid as usize] = NIL;
        let half = &mut c.half[dir];
        if half.tail == NIL {
            half.head = bid;
        } else {
            self.next[half.tail as usize] = bid;
        }
        half.tail = bid;
        half.count += 1;
    }

    /// Sends the rest of the head buffer, or relays EOF once the queue is empty.
    fn send_next(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize) -> Step {
        let dst = c.ends.dst(dir);
        let half = &mut c.half[dir];
        if half.sending {
            return Ok(());
        }
        if half.head == NIL {
            if half.eof && !half.done {
                half.done = true;
                let _ = sys::shutdown_write(dst);
            }
            return Ok(());
        }
        let bid = half.head;
        let len = self.len[bid as usize] - half.sent;
        // SAFETY: `sent` < the filled length, so the pointer stays inside buffer `bid`.
        let ptr = unsafe { self.ring.ptr(bid).add(half.sent as usize) };
        let send = opcode::Send::new(Fd(dst), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        half.sending = true;
        // SAFETY: buffer `bid` stays queued (not recycled) until this send completes; the socket
        // is open until teardown.
        unsafe { io.submit(send, SEND, dir) }
    }

    fn on_sent(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize, res: i32) -> Step {
        let half = &mut c.half[dir];
        half.sending = false;
        if res < 0 {
            return Err(errno(res));
        }
        half.sent += res as u32;
        io.delivered(dir, res as usize);
        let bid = half.head;
        if half.sent == self.len[bid as usize] {
            half.head = self.next[bid as usize];
            if half.head == NIL {
                half.tail = NIL;
            }
            half.count -= 1;
            half.sent = 0;
            self.ring.recycle(bid);
        }
        self.resume(io, c, dir)?;
        self.send_next(io, c, dir)
    }

    /// Receives again once a paused direction has drained below the low-water mark.
    fn resume(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize) -> Step {
        let half = &mut c.half[dir];
        if half.paused && half.count <= LOW_WATER && !half.receiving && !half.eof {
            half.paused = false;
            self.receive(io, c, dir)?;
        }
        Ok(())
    }
}
