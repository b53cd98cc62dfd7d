//! `relay = "splice-inline"`: io_uring tells when a socket is readable or writable, then the
//! worker thread itself moves bytes with non-blocking `splice(2)` through a pooled pipe.
//!
//! One multishot poll per direction watches the source; a one-shot poll waits for room on the
//! destination only when it is full. Bytes never enter user space. Never blocks: every splice is
//! `SPLICE_F_NONBLOCK` on non-blocking sockets, and `EAGAIN` means "wait for the poll". A
//! direction moves at most [`BUDGET`] bytes per wakeup, then yields to the other connections.
//! Endings follow [`crate::conn::ending`].

use std::io;

use io_uring::opcode;

use super::{Dir, Ends, Flow, Io, Pair, PipePool, Relay, Step};
use crate::{
    conn::ending::Side,
    uring::sys::{self, Pipe},
};

pub(super) const POLL_IN: u8 = 0;
const POLL_OUT: u8 = 1;
const RESUME: u8 = 2;

/// Bytes one direction moves per wakeup before it lets the worker's other connections run:
/// four pipes' worth, enough that a bulk transfer costs few wakeups, small enough that one
/// fast pair cannot starve the others (it resumes after the completions already queued).
const BUDGET: usize = 256 * 1024;

/// The strategy, holding the worker's pipe pool.
pub struct SpliceInline {
    pipes: PipePool,
}

impl SpliceInline {
    /// A strategy whose pipes hold `pipe_capacity` bytes.
    pub fn new(pipe_capacity: usize) -> Self {
        Self {
            pipes: PipePool::new(pipe_capacity),
        }
    }
}

/// One direction's progress.
#[derive(Default)]
pub struct Half {
    /// Borrowed from the pool while bytes sit in it.
    pipe: Option<Pipe>,
    /// Bytes in `pipe` not yet written to the destination.
    queued: usize,
    /// The source reached EOF.
    eof: bool,
    /// The multishot readable poll is armed.
    watching: bool,
    /// A one-shot writable poll is armed: the destination is full.
    blocked: bool,
    /// The budget ran out: a no-op is queued to carry on after the other connections.
    resuming: bool,
    /// Bytes the last wakeup moved, and whether it ended with the source empty.
    last_moved: usize,
    dry: bool,
}

impl Half {
    /// Whether the multishot readable poll is armed.
    pub(super) fn watching(&self) -> bool {
        self.watching
    }

    /// The last wakeup found the source empty after moving less than `limit` bytes, and
    /// nothing waits in the pipe or for room: the traffic is small.
    pub(super) fn small_and_dry(&self, limit: usize) -> bool {
        self.dry && self.last_moved < limit && self.queued == 0 && !self.blocked && !self.resuming
    }

    /// Takes note of a completion that arrives after the direction moved to another relay
    /// (the cancelled poll's), without acting on it.
    pub(super) fn forget(&mut self, kind: u8, flags: u32) {
        match kind {
            POLL_IN if !io_uring::cqueue::more(flags) => self.watching = false,
            POLL_OUT => self.blocked = false,
            RESUME => self.resuming = false,
            _ => {}
        }
    }
}

/// Per-connection state.
pub type Conn = Pair<Half>;

impl Relay for SpliceInline {
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

    fn close(&mut self, conn: Conn) {
        for half in conn.half {
            self.close_half(half);
        }
    }
}

/// The strategy one direction at a time, for `relay = "auto"` to combine with another.
impl SpliceInline {
    /// Arms direction `d`: its readable poll.
    pub(super) fn arm_dir(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>) -> Step {
        watch(io, d)
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
        let half = &mut d.half;
        match kind {
            POLL_IN => {
                if !io_uring::cqueue::more(flags) {
                    half.watching = false;
                }
                if half.blocked || half.resuming {
                    return Ok(());
                }
            }
            POLL_OUT => half.blocked = false,
            _ => half.resuming = false,
        }
        if result < 0 && result != -libc::ECANCELED {
            return Err(-result);
        }
        self.pump(io, d)
    }

    /// Gives back what a direction holds, once nothing of it is in flight: a pipe that still
    /// holds bytes is closed rather than reused.
    pub(super) fn close_half(&mut self, half: Half) {
        if let (Some(pipe), 0) = (half.pipe, half.queued) {
            self.pipes.give(pipe);
        }
    }
}

impl SpliceInline {
    /// Moves bytes in direction `d` until the source is empty, the destination full, a
    /// socket failed or the budget is spent; notes what the wakeup moved.
    fn pump(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>) -> Step {
        d.half.dry = false;
        let mut moved = 0;
        let step = self.pump_some(io, d, &mut moved);
        d.half.last_moved = moved;
        step
    }

    fn pump_some(&mut self, io: &mut Io<'_>, d: &mut Dir<'_, Half>, moved: &mut usize) -> Step {
        let (src, dst) = (d.src(), d.dst());
        loop {
            if d.ending.over(d.dir) {
                self.release(d);
                return Ok(());
            }
            let half = &mut d.half;
            if half.queued > 0 {
                let pipe = half.pipe.as_ref().expect("queued bytes live in a pipe");
                match sys::splice(pipe.read_fd(), dst, half.queued) {
                    Ok(n) => {
                        half.queued -= n;
                        *moved += n;
                        io.delivered(d.dir, n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        half.blocked = true;
                        return io.wait_writable(d.ends, d.dir, POLL_OUT);
                    }
                    Err(e) => d.ending.fail(Side::dst(d.dir), os_errno(&e)),
                }
                continue;
            }
            self.release(d);
            let half = &mut d.half;
            if half.eof {
                if !d.ending.src_failed(d.dir) {
                    let _ = sys::shutdown_write(dst);
                }
                d.ending.end(d.dir);
                return Ok(());
            }
            if *moved >= BUDGET {
                // SAFETY: a no-op references nothing.
                unsafe { io.submit(opcode::Nop::new().build(), RESUME, d.dir) }?;
                half.resuming = true;
                return Ok(());
            }
            let pipe = self.pipes.take().map_err(|e| os_errno(&e))?;
            match sys::splice(src, pipe.write_fd(), self.pipes.capacity()) {
                Ok(0) => {
                    half.eof = true;
                    self.pipes.give(pipe);
                }
                Ok(n) => {
                    half.queued = n;
                    half.pipe = Some(pipe);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pipes.give(pipe);
                    half.dry = true;
                    return if half.watching { Ok(()) } else { watch(io, d) };
                }
                Err(e) => {
                    // What the source held before its error was read: the direction ends.
                    self.pipes.give(pipe);
                    d.ending.fail(Side::src(d.dir), os_errno(&e));
                    half.eof = true;
                }
            }
        }
    }

    /// Gives the direction's pipe back when empty; one still holding bytes (its destination
    /// failed) is closed instead.
    fn release(&mut self, d: &mut Dir<'_, Half>) {
        let half = &mut d.half;
        self.pipes.reclaim(&mut half.pipe, &mut half.queued);
    }
}

/// Arms direction `dir`'s multishot readable poll.
fn watch(io: &mut Io<'_>, d: &mut Dir<'_, Half>) -> Step {
    let armed = io.watch_readable(d.ends, d.dir, POLL_IN);
    d.half.watching = armed.is_ok();
    armed
}

/// The errno of a failed system call (`EIO` if it carries none).
fn os_errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}
