//! `relay = "splice"`: readiness from a multishot poll, then `IORING_OP_SPLICE` socket → pipe →
//! socket, all submitted through the ring.
//!
//! The kernel runs every io_uring splice in an io-wq worker thread (`REQ_F_FORCE_ASYNC`), so a
//! splice that *waited* for data would park a kernel thread per connection. This strategy only
//! splices after a poll said the socket is ready, on non-blocking sockets with
//! `SPLICE_F_NONBLOCK`, so a splice never waits: `EAGAIN` sends it back to the poll. The ring caps
//! io-wq workers (see [`crate::uring::ring::Ring::new`]).

use io_uring::{opcode, types::Fd};

use super::{errno, Ends, Flow, Io, Pair, PipePool, Relay, Step};
use crate::{
    conn::ending::Side,
    uring::sys::{self, Pipe},
};

const POLL_IN: u8 = 0;
const POLL_OUT: u8 = 1;
const SPLICE_IN: u8 = 2;
const SPLICE_OUT: u8 = 3;

const SPLICE_FLAGS: u32 = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;

/// The strategy, holding the worker's pipe pool.
pub struct Splice {
    pipes: PipePool,
}

impl Splice {
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
    pipe: Option<Pipe>,
    /// Bytes in `pipe` not yet written out.
    queued: usize,
    eof: bool,
    /// The multishot readable poll is armed.
    watching: bool,
    /// A splice or a writable poll of this direction is in flight.
    busy: bool,
    /// Readable events seen so far; compared with `read_epoch` to know whether the source may
    /// have become readable again while a splice was in flight.
    epoch: u32,
    read_epoch: u32,
}

/// Per-connection state.
pub type Conn = Pair<Half>;

impl Relay for Splice {
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
        let step = match kind {
            POLL_IN => self.on_readable(io, conn, dir, result, flags),
            POLL_OUT => {
                conn.half[dir].busy = false;
                if result < 0 {
                    Err(errno(result))
                } else {
                    self.write(io, conn, dir)
                }
            }
            SPLICE_IN => self.on_read(io, conn, dir, result),
            _ => self.on_written(io, conn, dir, result),
        };
        match step {
            Ok(()) => super::flow(&conn.ending),
            Err(errno) => Flow::Failed(errno),
        }
    }

    fn close(&mut self, conn: Conn) {
        for half in conn.half {
            // A splice whose completion arrived during teardown was never accounted (`busy` is
            // still set): its pipe may hold bytes, so it is closed, never handed to another
            // connection.
            if let (Some(pipe), 0, false) = (half.pipe, half.queued, half.busy) {
                self.pipes.give(pipe);
            }
        }
    }
}

impl Splice {
    fn on_readable(
        &mut self,
        io: &mut Io<'_>,
        c: &mut Conn,
        dir: usize,
        res: i32,
        flags: u32,
    ) -> Step {
        let half = &mut c.half[dir];
        half.epoch = half.epoch.wrapping_add(1);
        if !io_uring::cqueue::more(flags) {
            half.watching = false;
        }
        if res < 0 && res != -libc::ECANCELED {
            return Err(errno(res));
        }
        if half.busy || half.eof || half.queued > 0 || c.ending.over(dir) {
            return Ok(());
        }
        self.read(io, c, dir)
    }

    /// Splices from the source into a pooled pipe.
    fn read(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize) -> Step {
        let pipe = self
            .pipes
            .take()
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))?;
        let half = &mut c.half[dir];
        let splice = opcode::Splice::new(
            Fd(c.ends.src(dir)),
            -1,
            Fd(pipe.write_fd()),
            -1,
            self.pipes.capacity() as u32,
        )
        .flags(SPLICE_FLAGS)
        .build();
        half.pipe = Some(pipe);
        half.busy = true;
        half.read_epoch = half.epoch;
        // SAFETY: the socket is open until teardown; the pipe stays in `half` (not returned to
        // the pool) until this splice completes.
        unsafe { io.submit(splice, SPLICE_IN, dir) }
    }

    fn on_read(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize, res: i32) -> Step {
        let half = &mut c.half[dir];
        half.busy = false;
        if c.ending.over(dir) {
            // The destination failed meanwhile: these bytes have nowhere to go.
            half.queued = res.max(0) as usize;
            self.release(c, dir);
            return Ok(());
        }
        match res {
            n if n > 0 => {
                half.queued = n as usize;
                self.write(io, c, dir)
            }
            0 => {
                half.eof = true;
                self.release(c, dir);
                self.finish(c, dir)
            }
            e if e == -libc::EAGAIN => {
                self.release(c, dir);
                let half = &c.half[dir];
                if half.epoch != half.read_epoch {
                    // Became readable while the splice was in flight: that event was skipped.
                    self.read(io, c, dir)
                } else if half.watching {
                    Ok(())
                } else {
                    watch(io, c, dir)
                }
            }
            e => {
                // What the source held before its error was read: the direction ends.
                c.ending.fail(Side::src(dir), errno(e));
                self.release(c, dir);
                self.finish(c, dir)
            }
        }
    }

    /// Splices the queued bytes from the pipe to the destination.
    fn write(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize) -> Step {
        if c.ending.over(dir) {
            self.release(c, dir);
            return Ok(());
        }
        let half = &mut c.half[dir];
        let pipe = half.pipe.as_ref().expect("queued bytes live in a pipe");
        let splice = opcode::Splice::new(
            Fd(pipe.read_fd()),
            -1,
            Fd(c.ends.dst(dir)),
            -1,
            half.queued as u32,
        )
        .flags(SPLICE_FLAGS)
        .build();
        half.busy = true;
        // SAFETY: the pipe stays in `half` and the socket open until this splice completes.
        unsafe { io.submit(splice, SPLICE_OUT, dir) }
    }

    fn on_written(&mut self, io: &mut Io<'_>, c: &mut Conn, dir: usize, res: i32) -> Step {
        let half = &mut c.half[dir];
        half.busy = false;
        match res {
            n if n > 0 => {
                half.queued -= n as usize;
                io.delivered(dir, n as usize);
            }
            e if e == -libc::EAGAIN => {}
            e => {
                c.ending.fail(Side::dst(dir), errno(e));
                self.release(c, dir);
                return Ok(());
            }
        }
        if c.ending.over(dir) {
            self.release(c, dir);
            return Ok(());
        }
        if half.queued > 0 {
            half.busy = true;
            return io.wait_writable(&c.ends, dir, POLL_OUT);
        }
        self.release(c, dir);
        // The source may hold more than one pipe's worth; only EAGAIN proves it empty.
        self.read(io, c, dir)
    }

    /// Gives the direction's pipe back when empty; one still holding bytes (its destination
    /// failed) is closed instead.
    fn release(&mut self, c: &mut Conn, dir: usize) {
        let half = &mut c.half[dir];
        self.pipes.reclaim(&mut half.pipe, &mut half.queued);
    }

    /// The source sent EOF (passed on as a FIN) or failed (no FIN: the destination is reset
    /// when the connection ends).
    fn finish(&mut self, c: &mut Conn, dir: usize) -> Step {
        if !c.ending.src_failed(dir) && !c.ending.stopped(dir) {
            let _ = sys::shutdown_write(c.ends.dst(dir));
        }
        c.ending.end(dir);
        Ok(())
    }
}

/// Arms direction `dir`'s multishot readable poll.
fn watch(io: &mut Io<'_>, c: &mut Conn, dir: usize) -> Step {
    let armed = io.watch_readable(&c.ends, dir, POLL_IN);
    c.half[dir].watching = armed.is_ok();
    armed
}
