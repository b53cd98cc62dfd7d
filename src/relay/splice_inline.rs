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

use super::{Ends, Flow, Io, Pair, PipePool, Relay, Step};
use crate::{
    conn::ending::Side,
    uring::sys::{self, Pipe},
};

const POLL_IN: u8 = 0;
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
}

/// Per-connection state.
pub type Conn = Pair<Half>;

impl Relay for SpliceInline {
    type Conn = Conn;

    fn open(&mut self, ends: Ends) -> Conn {
        Pair::new(ends)
    }

    fn arm(&mut self, io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> Step {
        watch(io, conn, dir)
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
        let half = &mut conn.half[dir];
        match kind {
            POLL_IN => {
                if !io_uring::cqueue::more(flags) {
                    half.watching = false;
                }
                if half.blocked || half.resuming {
                    return super::flow(&conn.ending);
                }
            }
            POLL_OUT => half.blocked = false,
            _ => half.resuming = false,
        }
        if result < 0 && result != -libc::ECANCELED {
            return Flow::Failed(-result);
        }
        match self.pump(io, conn, dir) {
            Ok(()) => super::flow(&conn.ending),
            Err(errno) => Flow::Failed(errno),
        }
    }

    fn close(&mut self, conn: Conn) {
        for half in conn.half {
            // A pipe that still holds bytes is closed rather than reused.
            if let (Some(pipe), 0) = (half.pipe, half.queued) {
                self.pipes.give(pipe);
            }
        }
    }
}

impl SpliceInline {
    /// Moves bytes in direction `dir` until the source is empty, the destination full, a
    /// socket failed or the budget is spent.
    fn pump(&mut self, io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> Step {
        let (src, dst) = (conn.ends.src(dir), conn.ends.dst(dir));
        let mut moved = 0;
        loop {
            if conn.ending.over(dir) {
                self.release(conn, dir);
                return Ok(());
            }
            let half = &mut conn.half[dir];
            if half.queued > 0 {
                let pipe = half.pipe.as_ref().expect("queued bytes live in a pipe");
                match sys::splice(pipe.read_fd(), dst, half.queued) {
                    Ok(n) => {
                        half.queued -= n;
                        moved += n;
                        io.delivered(dir, n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        half.blocked = true;
                        return io.wait_writable(&conn.ends, dir, POLL_OUT);
                    }
                    Err(e) => conn.ending.fail(Side::dst(dir), os_errno(&e)),
                }
                continue;
            }
            self.release(conn, dir);
            let half = &mut conn.half[dir];
            if half.eof {
                if !conn.ending.src_failed(dir) {
                    let _ = sys::shutdown_write(dst);
                }
                conn.ending.end(dir);
                return Ok(());
            }
            if moved >= BUDGET {
                // SAFETY: a no-op references nothing.
                unsafe { io.submit(opcode::Nop::new().build(), RESUME, dir) }?;
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
                    return if half.watching {
                        Ok(())
                    } else {
                        watch(io, conn, dir)
                    };
                }
                Err(e) => {
                    // What the source held before its error was read: the direction ends.
                    self.pipes.give(pipe);
                    conn.ending.fail(Side::src(dir), os_errno(&e));
                    half.eof = true;
                }
            }
        }
    }

    /// Gives the direction's pipe back when empty; one still holding bytes (its destination
    /// failed) is closed instead.
    fn release(&mut self, conn: &mut Conn, dir: usize) {
        let half = &mut conn.half[dir];
        self.pipes.reclaim(&mut half.pipe, &mut half.queued);
    }
}

/// Arms direction `dir`'s multishot readable poll.
fn watch(io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> Step {
    let armed = io.watch_readable(&conn.ends, dir, POLL_IN);
    conn.half[dir].watching = armed.is_ok();
    armed
}

/// The errno of a failed system call (`EIO` if it carries none).
fn os_errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}
