//! `relay = "splice-inline"`: io_uring tells when a socket is readable or writable, then the
//! worker thread itself moves bytes with non-blocking `splice(2)` through a pooled pipe.
//!
//! One multishot poll per direction watches the source; a one-shot poll waits for room on the
//! destination only when it is full. Bytes never enter user space. Never blocks: every splice is
//! `SPLICE_F_NONBLOCK` on non-blocking sockets, and `EAGAIN` means "wait for the poll".

use std::io;

use io_uring::{opcode, types::Fd};

use super::{errno, flow_of, Ends, Flow, Io, PipePool, Relay, POLL_READABLE, POLL_WRITABLE};
use crate::uring::sys::{self, Pipe};

const POLL_IN: u8 = 0;
const POLL_OUT: u8 = 1;

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
struct Half {
    /// Borrowed from the pool while bytes sit in it.
    pipe: Option<Pipe>,
    /// Bytes in `pipe` not yet written to the destination.
    queued: usize,
    /// The source reached EOF.
    eof: bool,
    /// EOF was relayed (destination shut for writing).
    done: bool,
    /// The multishot readable poll is armed.
    watching: bool,
    /// A one-shot writable poll is armed: the destination is full.
    blocked: bool,
}

/// Per-connection state.
pub struct Conn {
    ends: Ends,
    half: [Half; 2],
}

impl Relay for SpliceInline {
    type Conn = Conn;

    fn open(&mut self, ends: Ends) -> Conn {
        Conn {
            ends,
            half: Default::default(),
        }
    }

    fn start(&mut self, io: &mut Io<'_>, conn: &mut Conn) -> Flow {
        for dir in 0..2 {
            if !watch(io, conn, dir) {
                return Flow::Failed(libc::ENOMEM);
            }
        }
        Flow::Continue
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
                if half.blocked || half.done {
                    return flow_of(done(conn));
                }
            }
            _ => half.blocked = false,
        }
        if result < 0 && result != -libc::ECANCELED {
            return Flow::Failed(errno(result));
        }
        if let Err(e) = self.pump(io, conn, dir) {
            return Flow::Failed(e.raw_os_error().unwrap_or(libc::EIO));
        }
        flow_of(done(conn))
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
    /// Moves bytes in direction `dir` until the source is empty or the destination full.
    fn pump(&mut self, io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> io::Result<()> {
        let (src, dst) = (conn.ends.src(dir), conn.ends.dst(dir));
        loop {
            let half = &mut conn.half[dir];
            if half.queued > 0 {
                let pipe = half.pipe.as_ref().expect("queued bytes live in a pipe");
                match sys::splice(raw(&pipe.rd), dst, half.queued) {
                    Ok(n) => {
                        half.queued -= n;
                        io.delivered(dir, n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        half.blocked = true;
                        let poll = opcode::PollAdd::new(Fd(dst), POLL_WRITABLE).build();
                        // SAFETY: the poll references only `dst`, open until teardown.
                        return submitted(unsafe { io.submit(poll, POLL_OUT, dir) });
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
            if let Some(pipe) = half.pipe.take() {
                self.pipes.give(pipe);
            }
            if half.eof {
                if !half.done {
                    half.done = true;
                    let _ = sys::shutdown_write(dst);
                }
                return Ok(());
            }
            let pipe = self.pipes.take()?;
            match sys::splice(src, raw(&pipe.wr), self.pipes.capacity()) {
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
                    return submitted(half.watching || watch(io, conn, dir));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Arms the multishot readable poll of direction `dir`.
fn watch(io: &mut Io<'_>, conn: &mut Conn, dir: usize) -> bool {
    let poll = opcode::PollAdd::new(Fd(conn.ends.src(dir)), POLL_READABLE)
        .multi(true)
        .build();
    // SAFETY: the poll references only the source socket, open until teardown.
    let ok = unsafe { io.submit(poll, POLL_IN, dir) };
    conn.half[dir].watching = ok;
    ok
}

fn done(conn: &Conn) -> [bool; 2] {
    [conn.half[0].done, conn.half[1].done]
}

fn submitted(ok: bool) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::ENOMEM))
    }
}

fn raw(fd: &std::os::fd::OwnedFd) -> std::os::fd::RawFd {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}
