//! A worker: one thread, one io_uring, one `SO_REUSEPORT` listener, and every connection that
//! listener accepts, from accept to close.
//!
//! The worker's loop is the hot path: it reads the balancer snapshot and atomics only, never
//! takes a lock, and allocates nothing per connection once its tables have grown. Its state is
//! not shared with any other thread.

mod engine;
mod prelude;
mod replay_state;
mod settings;
mod slots;

use std::{io, os::fd::OwnedFd, sync::Arc};

use crate::{
    config::RelayMode,
    conn::settings::WorkerContext,
    relay::{auto::AutoRelay, copy::CopyRelay, splice::Splice, splice_inline::SpliceInline},
    uring::{buf_ring::BufRing, ring::Ring},
};

use engine::Engine;

/// Submission queue size of each worker's ring.
const RING_ENTRIES: u32 = 4096;
/// Bytes each relay pipe holds: one pipe's worth is what a splice moves at a time.
const PIPE_CAPACITY: usize = 64 * 1024;
/// Buffers in the copy strategy's provided-buffer ring (a power of two).
const COPY_BUFFERS: u16 = 1024;
/// Size of each copy buffer.
const COPY_BUFFER_SIZE: usize = 16 * 1024;

/// One io_uring worker, ready to run on its own thread.
pub struct Worker {
    ctx: WorkerContext,
    /// Becomes readable when the process shuts down.
    wake: Arc<OwnedFd>,
}

impl Worker {
    /// A worker for `ctx`; `wake` becomes readable when the process shuts down.
    pub fn new(ctx: WorkerContext, wake: Arc<OwnedFd>) -> Worker {
        Worker { ctx, wake }
    }

    /// Runs the worker's loop until shutdown and drain complete. The ring is created here, on
    /// the worker's own thread, because it is a single-issuer ring.
    pub fn run(self) -> io::Result<()> {
        let ring = Ring::new(RING_ENTRIES)?;
        match self.ctx.first_settings().relay {
            RelayMode::SpliceInline => {
                Engine::new(self, ring, SpliceInline::new(PIPE_CAPACITY)).run()
            }
            RelayMode::Splice => Engine::new(self, ring, Splice::new(PIPE_CAPACITY)).run(),
            RelayMode::Copy => {
                let buffers = BufRing::register(&ring, 0, COPY_BUFFERS, COPY_BUFFER_SIZE)?;
                Engine::new(self, ring, CopyRelay::new(buffers, COPY_BUFFER_SIZE)).run()
            }
            RelayMode::Auto => {
                let buffers = BufRing::register(&ring, 0, COPY_BUFFERS, COPY_BUFFER_SIZE)?;
                let copy = CopyRelay::new(buffers, COPY_BUFFER_SIZE);
                let stats = std::sync::Arc::clone(&self.ctx.stats);
                let relay = AutoRelay::new(copy, SpliceInline::new(PIPE_CAPACITY), stats);
                Engine::new(self, ring, relay).run()
            }
        }
    }
}
