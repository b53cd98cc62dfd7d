//! A worker: one thread, one io_uring, one listener.
use std::{io, net::TcpListener, os::fd::OwnedFd, sync::Arc};

use crate::{balancer::Balancer, config::RelayMode};

/// One worker thread's state.
pub struct Worker {}

impl Worker {
    /// Sets up the ring for one worker.
    pub fn new(
        _id: usize,
        _listener: TcpListener,
        _balancer: Arc<Balancer>,
        _relay: RelayMode,
        _wake: Arc<OwnedFd>,
    ) -> io::Result<Worker> {
        Ok(Worker {})
    }

    /// Runs until shutdown.
    pub fn run(self) -> io::Result<()> {
        Ok(())
    }
}
