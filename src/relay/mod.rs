//! Relay strategies: how one proxied connection moves bytes both ways once it is connected.
//!
//! Every strategy implements [`Relay`] and is driven by the worker's completion loop; the worker
//! owns the connection slot, its descriptors and teardown, the strategy owns only the byte
//! movement and its buffers. Rules shared by all of them: never block (every descriptor is
//! non-blocking), never lose or reorder a byte, half-close (a side's EOF becomes a `SHUT_WR` on
//! the other side once everything before it was written), and end as [`crate::conn::ending`]
//! says when a socket fails: what the failed side sent is still delivered, then the other side
//! is reset once it has it.

pub mod auto;
pub mod copy;

mod pipes;
pub mod splice;
pub mod splice_inline;

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types::Fd};

use crate::{
    conn::ending::{Close, Ending},
    uring::ring::Ring,
    uring::token::{Op, Token},
};

pub use pipes::PipePool;

use crate::conn::ending::UPSTREAM;

/// `poll(2)` mask for "there is something to read (data, EOF or an error)".
const POLL_READABLE: u32 = (libc::POLLIN | libc::POLLRDHUP) as u32;
/// `poll(2)` mask for "there is room to write".
const POLL_WRITABLE: u32 = libc::POLLOUT as u32;

/// The two sockets of a proxied connection.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    /// The accepted client socket.
    pub client: RawFd,
    /// The connected backend socket.
    pub backend: RawFd,
}

impl Ends {
    /// Where direction `dir` reads from.
    pub fn src(&self, dir: usize) -> RawFd {
        if dir == UPSTREAM {
            self.client
        } else {
            self.backend
        }
    }

    /// Where direction `dir` writes to.
    pub fn dst(&self, dir: usize) -> RawFd {
        if dir == UPSTREAM {
            self.backend
        } else {
            self.client
        }
    }
}

/// A connection's two sockets, the progress of each direction (`H`, a strategy's own
/// per-direction state) and how far the connection is from its end, for the strategies that
/// need nothing else per connection.
pub struct Pair<H> {
    ends: Ends,
    half: [H; 2],
    ending: Ending,
}

impl<H: Default> Pair<H> {
    /// Fresh state for a connected pair of sockets.
    pub fn new(ends: Ends) -> Self {
        Self {
            ends,
            half: Default::default(),
            ending: Ending::default(),
        }
    }
}

impl<H> Pair<H> {
    /// Direction `dir` of this connection, for a strategy's per-direction functions.
    pub fn dir(&mut self, dir: usize) -> Dir<'_, H> {
        Dir {
            ends: &self.ends,
            ending: &mut self.ending,
            half: &mut self.half[dir],
            dir,
        }
    }
}

/// One direction of a connection as a strategy's functions see it: the two sockets, how far
/// the connection is from its end (shared by both directions), the direction's own state `H`
/// and its index. Lets strategies be combined per direction (`relay = "auto"`).
pub struct Dir<'a, H> {
    ends: &'a Ends,
    ending: &'a mut Ending,
    half: &'a mut H,
    dir: usize,
}

impl<H> Dir<'_, H> {
    /// The same direction with `part` of its state: lets a strategy that combines two drive
    /// each one's functions on its own share.
    pub fn part<G>(&mut self, part: impl FnOnce(&mut H) -> &mut G) -> Dir<'_, G> {
        Dir {
            ends: self.ends,
            ending: self.ending,
            half: part(self.half),
            dir: self.dir,
        }
    }

    /// Where this direction reads from.
    fn src(&self) -> RawFd {
        self.ends.src(self.dir)
    }

    /// Where this direction writes to.
    fn dst(&self) -> RawFd {
        self.ends.dst(self.dir)
    }
}

/// What the worker should do with a connection after a relay step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep going: operations are armed.
    Continue,
    /// Both directions are over: close as this says.
    Ended(Close),
    /// The worker itself could not go on (the ring refused an operation, no pipe could be
    /// made): close both sides now.
    Failed(i32),
}

/// [`Flow::Ended`] once both directions of `ending` are over, else [`Flow::Continue`].
pub(crate) fn flow(ending: &Ending) -> Flow {
    ending.close().map_or(Flow::Continue, Flow::Ended)
}

/// The outcome of one strategy step: `Err(errno)` closes the connection.
pub(crate) type Step = Result<(), i32>;

/// Submission context for one connection: tags every operation with the connection's token and
/// counts it, so the worker knows when the last one has completed and descriptors may close.
pub struct Io<'a> {
    pub(crate) ring: &'a mut Ring,
    pub(crate) token: Token,
    pub(crate) inflight: &'a mut u32,
    /// Bytes written to their destination during this call, per direction; the worker adds
    /// them to the backend's counters once the strategy returns.
    pub(crate) moved: [u64; 2],
    /// Added to every operation kind submitted (see [`Io::kinds_from`]).
    pub(crate) kind_base: u8,
}

impl Io<'_> {
    /// Records `bytes` of direction `dir` written to their destination (for the metrics).
    #[inline]
    pub fn delivered(&mut self, dir: usize, bytes: usize) {
        self.moved[dir] += bytes as u64;
    }

    /// Submits `entry` as operation `kind` of direction `dir`; `Err(ENOMEM)` if the ring
    /// refused it.
    ///
    /// # Safety
    /// Everything `entry` points to must stay valid until its completion is delivered to
    /// [`Relay::complete`] (buffers live in the strategy, descriptors until the worker's teardown,
    /// which waits for every counted operation).
    pub unsafe fn submit(&mut self, entry: squeue::Entry, kind: u8, dir: usize) -> Step {
        let op = Op::relay(kind + self.kind_base, dir);
        let entry = entry.user_data(self.token.with_op(op).into());
        // SAFETY: forwarded from the caller.
        unsafe { self.ring.push(&entry) }.map_err(|_| libc::ENOMEM)?;
        *self.inflight += 1;
        Ok(())
    }

    /// Submits `entry` with a token whose completion the worker ignores (cancellations).
    ///
    /// # Safety
    /// As for [`Io::submit`]; the completion is never seen, so `entry` must reference nothing
    /// that outlives the connection.
    pub unsafe fn submit_untracked(&mut self, entry: squeue::Entry) -> Step {
        let entry = entry.user_data(Token::IGNORE.into());
        // SAFETY: forwarded from the caller.
        unsafe { self.ring.push(&entry) }.map_err(|_| libc::ENOMEM)
    }

    /// Runs `f` with every kind it submits offset by `base`: a strategy combining two others
    /// (`relay = "auto"`) tells their completions apart by kind.
    pub fn kinds_from<T>(&mut self, base: u8, f: impl FnOnce(&mut Self) -> T) -> T {
        let before = std::mem::replace(&mut self.kind_base, base);
        let out = f(self);
        self.kind_base = before;
        out
    }

    /// Arms a multishot poll, operation `kind`, that completes each time direction `dir`'s
    /// source becomes readable (data, EOF or an error).
    pub fn watch_readable(&mut self, ends: &Ends, dir: usize, kind: u8) -> Step {
        let poll = opcode::PollAdd::new(Fd(ends.src(dir)), POLL_READABLE)
            .multi(true)
            .build();
        // SAFETY: a poll carries no pointer, only the socket, which stays open until the
        // worker's teardown has seen this poll complete.
        unsafe { self.submit(poll, kind, dir) }
    }

    /// Arms a one-shot poll, operation `kind`, that completes once direction `dir`'s
    /// destination has room to write.
    pub fn wait_writable(&mut self, ends: &Ends, dir: usize, kind: u8) -> Step {
        let poll = opcode::PollAdd::new(Fd(ends.dst(dir)), POLL_WRITABLE).build();
        // SAFETY: as in `watch_readable`: no pointer, a socket open until teardown.
        unsafe { self.submit(poll, kind, dir) }
    }
}

/// A byte-moving strategy, one instance per worker (it may hold worker-wide pools).
pub trait Relay {
    /// Per-connection state.
    type Conn;

    /// State for a freshly connected pair of sockets.
    fn open(&mut self, ends: Ends) -> Self::Conn;

    /// Arms what direction `dir` needs to start relaying (a receive, a readable poll).
    fn arm(&mut self, io: &mut Io<'_>, conn: &mut Self::Conn, dir: usize) -> Step;

    /// Arms both directions.
    fn start(&mut self, io: &mut Io<'_>, conn: &mut Self::Conn) -> Flow {
        match (0..2).try_for_each(|dir| self.arm(io, conn, dir)) {
            Ok(()) => Flow::Continue,
            Err(errno) => Flow::Failed(errno),
        }
    }

    /// Handles the completion of operation `kind` of direction `dir`.
    fn complete(
        &mut self,
        io: &mut Io<'_>,
        conn: &mut Self::Conn,
        kind: u8,
        dir: usize,
        result: i32,
        flags: u32,
    ) -> Flow;

    /// Releases what a completion carries when its connection is already closing (a buffer the
    /// kernel picked, for instance).
    fn discard(&mut self, _kind: u8, _result: i32, _flags: u32) {}

    /// Returns the connection's buffers; called once no operation of it is in flight.
    fn close(&mut self, conn: Self::Conn);
}

/// The errno of a negative io_uring result.
pub(crate) fn errno(result: i32) -> i32 {
    -result
}
