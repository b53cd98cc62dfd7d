//! Which I/O driver runs a worker: the server decides once (`io_backend`), builds every worker
//! on that driver and runs it on the worker's thread. The drivers know nothing of each other.

use std::io;

use crate::{
    config::IoBackend, conn::settings::WorkerContext, epoll::EpollWorker, shutdown::Shutdown,
    worker::Worker,
};

/// A worker on its driver, ready to run.
pub(super) enum Driver {
    /// The io_uring worker.
    Uring(Worker),
    /// The epoll worker, for where io_uring is unavailable (boxed: its settings and pools are
    /// the larger part, and a driver is moved onto its thread once).
    Epoll(Box<EpollWorker>),
}

impl Driver {
    /// Worker `ctx` on the driver `backend` (already resolved: never `Auto`).
    pub(super) fn new(
        backend: IoBackend,
        ctx: WorkerContext,
        shutdown: &Shutdown,
    ) -> io::Result<Driver> {
        Ok(match backend {
            IoBackend::Epoll => Driver::Epoll(Box::new(EpollWorker::new(ctx, shutdown.clone()))),
            IoBackend::IoUring | IoBackend::Auto => {
                Driver::Uring(Worker::new(ctx, shutdown.eventfd()?))
            }
        })
    }

    /// Runs the worker on the calling thread until shutdown and drain complete.
    pub(super) fn run(self) -> io::Result<()> {
        match self {
            Driver::Uring(worker) => worker.run(),
            Driver::Epoll(worker) => worker.run(),
        }
    }
}
