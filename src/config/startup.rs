//! The part of a configuration fixed when ringlb starts: what needs new sockets, new threads or
//! a restart of the workers to change.
//!
//! Owns the shape of that part only. Its defaults are in `defaults.rs`, its spelling in the file
//! is `file.rs`'s; a reload keeps the running values of all of it and says which keys changed
//! (see [`super::Config::restart_keys`]). Never knows about targets or health checks, which
//! change live ([`super::Live`]).

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use super::{IoBackend, OnNoBackend};

/// What a running ringlb keeps until it restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    /// Address every worker's `SO_REUSEPORT` listener binds to: the seed form's one service.
    /// In the services form it is unused and at its default; each [`super::Service`] has its
    /// own `listen`.
    pub listen: SocketAddr,
    /// `TCP_DEFER_ACCEPT` on the listeners: a client is accepted only once it has sent a byte,
    /// or after about this long (rounded up by the kernel to its SYN-ACK retransmissions);
    /// `None` accepts at the handshake. Only for protocols where the client speaks first.
    pub defer_accept: Option<Duration>,
    /// Number of worker threads; 0 means one per CPU core (see [`Startup::worker_count`]).
    pub workers: usize,
    /// Pin worker `i` to CPU core `i % cores`.
    pub pin_workers: bool,
    /// How bytes are moved between client and backend (io_uring only: set up per ring).
    pub relay: RelayMode,
    /// The workers' I/O runtime: io_uring, epoll, or io_uring with an epoll fallback.
    pub io_backend: IoBackend,
    /// The admin HTTP listener: `/metrics`, `/status`, `/healthz`.
    pub admin: Admin,
    /// Where the serving process writes its id (atomically, also after an upgrade).
    pub pid_file: Option<PathBuf>,
    /// Local addresses connections to backends are bound to: each backend cycles through
    /// those of its family (each gives the whole ephemeral port range per backend); empty lets
    /// the kernel choose. A backend of a family without one is connected as if this were empty.
    /// Fixed at start (each worker sets up its cycles once): a change is carried out by an
    /// upgrade, like `listen`.
    pub source: Vec<IpAddr>,
}

/// The workers' own settings: how each connection is connected, retried, timed out and
/// refused. Live: a reload publishes them to the workers for new connections (see
/// [`super::Live`]); defined here with the other worker-facing types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traffic {
    /// Longest wait for a backend connect before the next backend is tried.
    pub connect_timeout: Duration,
    /// A connection with no byte either way for this long is closed on both sides.
    pub idle_timeout: Duration,
    /// After SIGTERM/SIGINT, how long open connections may finish before they are closed.
    pub drain_timeout: Duration,
    /// Connections open at once, over all workers; at the limit ringlb stops accepting.
    pub max_connections: usize,
    /// Further backends tried when a connect fails, before the client gets the 503.
    pub retries: u32,
    /// Keep the client's first bytes until the backend answers, and replay them to another
    /// backend if it closes first (safe for idempotent request/response traffic only).
    pub retry_on_early_close: bool,
    /// Bytes of the client's first data kept for a replay; past them the connection commits.
    pub replay_buffer: usize,
    /// What a client receives when no backend can take it.
    pub on_no_backend: OnNoBackend,
    /// Every client connection must begin with a PROXY header, whose addresses then stand for
    /// the client's (only behind a trusted balancer).
    pub accept_proxy: bool,
    /// With `retry_on_early_close`: consecutive early closes (after the client's bytes were
    /// sent, before any answer) that take a target out of rotation (`[health_check]
    /// passive_fall` in the file: a worker counts them, the health checker does not).
    pub passive_fall: u32,
}

/// The admin HTTP listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Serve `/metrics`, `/status` and `/healthz` at all.
    pub enabled: bool,
    /// Where the admin listener binds: loopback by default, so nothing is exposed by accident.
    pub listen: SocketAddr,
    /// The file holding the runtime API's bearer token (`[admin] token_file`); `None` leaves
    /// the mutating endpoints disabled (they answer 403). Read at start and on every reload,
    /// so unlike the rest of [`Startup`] a change takes effect on reload. Relative paths are
    /// relative to the working directory.
    pub token_file: Option<PathBuf>,
}

/// The relay strategy (README, "Relay strategies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayMode {
    /// io_uring readiness, then `IORING_OP_SPLICE` through a pipe.
    Splice,
    /// io_uring readiness, then non-blocking `splice(2)` from the worker thread.
    SpliceInline,
    /// A receive into a provided-buffer ring, then a non-blocking send.
    Copy,
    /// Per direction: `Copy` for small exchanges, `SpliceInline` while it carries bulk.
    Auto,
}

impl RelayMode {
    /// Every relay mode, in the order messages list them.
    pub const ALL: [RelayMode; 4] = [Self::Splice, Self::SpliceInline, Self::Copy, Self::Auto];

    /// The spelling in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Splice => "splice",
            Self::SpliceInline => "splice-inline",
            Self::Copy => "copy",
            Self::Auto => "auto",
        }
    }
}

impl Startup {
    /// The number of worker threads to start: `workers`, or one per core when it is 0.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}
