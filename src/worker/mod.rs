//! A worker: one thread, one io_uring, one `SO_REUSEPORT` listener, and every connection that
//! listener accepts, from accept to close.
//!
//! The worker's loop is the hot path: it reads the balancer snapshot and atomics only, never
//! takes a lock, and allocates nothing per connection once its tables have grown. Its state is
//! not shared with any other thread.

mod engine;
pub mod limit;
mod prelude;
mod slots;
pub mod token;

use std::{io, net::TcpListener, os::fd::AsRawFd, os::fd::OwnedFd, sync::Arc, time::Duration};

use crate::{
    balancer::Balancer,
    config::{OnNoBackend, RelayMode},
    health::Ejector,
    metrics::WorkerStats,
    relay::{copy::CopyRelay, splice::Splice, splice_inline::SpliceInline},
    shutdown::Shutdown,
    uring::{buf_ring::BufRing, ring::Ring, sys},
};

use engine::Engine;
use limit::ConnectionLimit;

pub use crate::conn::reject::RESPONSE_503;

/// Submission queue size of each worker's ring.
const RING_ENTRIES: u32 = 4096;
/// Bytes each relay pipe holds: one pipe's worth is what a splice moves at a time.
const PIPE_CAPACITY: usize = 64 * 1024;
/// Buffers in the copy strategy's provided-buffer ring (a power of two).
const COPY_BUFFERS: u16 = 1024;
/// Size of each copy buffer.
const COPY_BUFFER_SIZE: usize = 16 * 1024;

/// Per-worker settings taken from the configuration.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// How bytes are moved.
    pub relay: RelayMode,
    /// How long a backend connect may take before the next backend is tried.
    pub connect_timeout: Duration,
    /// How long open connections may finish after shutdown before they are closed.
    pub drain_timeout: Duration,
    /// A relayed connection with no activity for this long is closed.
    pub idle_timeout: Duration,
    /// Further backends tried after a failed connect.
    pub retries: u32,
    /// `retry_on_early_close`: bytes of the client's first data kept for a replay, `None` when
    /// off.
    pub replay_buffer: Option<usize>,
    /// What a client gets when no backend can take it.
    pub on_no_backend: OnNoBackend,
    /// Every client connection begins with a PROXY header whose addresses stand for the client's.
    pub accept_proxy: bool,
    /// Consecutive early closes after which a backend is reported (`[health_check]
    /// passive_fall`).
    pub passive_fall: u32,
}

impl WorkerSettings {
    /// Connect attempts per client: the first plus `retries`, at most
    /// [`crate::conn::tried::MAX_ATTEMPTS`].
    pub fn attempts(&self) -> usize {
        (self.retries as usize)
            .saturating_add(1)
            .min(crate::conn::tried::MAX_ATTEMPTS)
    }
}

/// One worker, ready to run on its own thread.
pub struct Worker {
    id: usize,
    listener: TcpListener,
    balancer: Arc<Balancer>,
    limit: Arc<ConnectionLimit>,
    ejector: Ejector,
    settings: WorkerSettings,
    wake: Arc<OwnedFd>,
    stats: Arc<WorkerStats>,
}

impl Worker {
    /// A worker serving `listener`, picking from `balancer`, counting under `limit`, reporting
    /// failed connects to `ejector`; `wake` becomes readable when the process shuts down;
    /// `stats` receives the worker's event counts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        listener: TcpListener,
        balancer: Arc<Balancer>,
        limit: Arc<ConnectionLimit>,
        ejector: Ejector,
        settings: WorkerSettings,
        wake: Arc<OwnedFd>,
        stats: Arc<WorkerStats>,
    ) -> io::Result<Worker> {
        // Accepted sockets inherit TCP_NODELAY from the listener: no per-connection syscall.
        sys::set_nodelay(listener.as_raw_fd());
        Ok(Worker {
            id,
            listener,
            balancer,
            limit,
            ejector,
            settings,
            wake,
            stats,
        })
    }

    /// Runs the worker's loop until shutdown and drain complete. The ring is created here, on
    /// the worker's own thread, because it is a single-issuer ring.
    pub fn run(self) -> io::Result<()> {
        let ring = Ring::new(RING_ENTRIES)?;
        match self.settings.relay {
            RelayMode::SpliceInline => {
                Engine::new(self, ring, SpliceInline::new(PIPE_CAPACITY)).run()
            }
            RelayMode::Splice => Engine::new(self, ring, Splice::new(PIPE_CAPACITY)).run(),
            RelayMode::Copy => {
                let buffers = BufRing::register(&ring, 0, COPY_BUFFERS, COPY_BUFFER_SIZE)?;
                Engine::new(self, ring, CopyRelay::new(buffers, COPY_BUFFER_SIZE)).run()
            }
        }
    }

    /// Runs the same worker on the epoll backend instead ([`crate::epoll`]), for where
    /// io_uring is unavailable, until `shutdown` fires; `relay` does not apply there.
    pub fn run_epoll(self, shutdown: Shutdown) -> io::Result<()> {
        crate::epoll::EpollWorker::new(
            self.id,
            self.listener,
            self.balancer,
            self.limit,
            self.ejector,
            self.settings,
            shutdown,
            self.stats,
        )
        .run()
    }
}
