//! The `io_backend` key: which I/O runtime the workers use, as written in the configuration.
//!
//! Owns the names of the backends only; never probes the kernel (the server does that at start,
//! see [`crate::server`]) and never holds state.

use std::fmt;

/// The I/O runtime of the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoBackend {
    /// io_uring where it works, epoll otherwise (`auto`, the default): probed once at start.
    Auto,
    /// io_uring only (`io_uring`): start fails with a clear message where it is unavailable.
    IoUring,
    /// epoll only (`epoll`): a tokio current-thread runtime per worker, never probes io_uring.
    Epoll,
}

impl IoBackend {
    /// Every backend, in the order messages list them.
    pub const ALL: [IoBackend; 3] = [IoBackend::Auto, IoBackend::IoUring, IoBackend::Epoll];

    /// The configuration name, e.g. `"io_uring"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IoBackend::Auto => "auto",
            IoBackend::IoUring => "io_uring",
            IoBackend::Epoll => "epoll",
        }
    }

    /// The backend named `name` in the configuration.
    pub fn from_name(name: &str) -> Option<IoBackend> {
        IoBackend::ALL.into_iter().find(|b| b.as_str() == name)
    }
}

impl fmt::Display for IoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
