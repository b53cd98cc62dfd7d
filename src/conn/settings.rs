//! What a worker is given, whichever I/O driver runs it: its settings from the configuration and
//! the handles it shares with the rest of the process.
//!
//! Owns nothing but the description; the server fills it in, a driver consumes it. Never does
//! I/O.

use std::{
    net::{IpAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use crate::{
    balancer::Balancer,
    config::{OnNoBackend, RelayMode},
    health::Ejector,
    limit::ConnectionLimit,
    stats::WorkerStats,
};

/// Per-worker settings taken from the configuration.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// How bytes are moved (io_uring only; the epoll driver always copies).
    pub relay: RelayMode,
    /// How long a backend connect may take before the next backend is tried.
    pub connect_timeout: Duration,
    /// Local addresses backend connections are bound to (`source`; see
    /// [`super::source::Sources`]); empty: the kernel's choice, no bind.
    pub source: Vec<IpAddr>,
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
    /// [`super::tried::MAX_ATTEMPTS`].
    pub fn attempts(&self) -> usize {
        (self.retries as usize)
            .saturating_add(1)
            .min(super::tried::MAX_ATTEMPTS)
    }
}

/// Everything one worker thread needs from the server.
pub struct WorkerContext {
    /// The worker's index (logs, metrics, the shard of counters it writes).
    pub id: usize,
    /// Its own `SO_REUSEPORT` listener (non-blocking, `TCP_NODELAY` inherited by accepted
    /// sockets).
    pub listener: TcpListener,
    /// The healthy set it picks from.
    pub balancer: Arc<Balancer>,
    /// The process-wide connection cap.
    pub limit: Arc<ConnectionLimit>,
    /// Where failed connects are reported.
    pub ejector: Ejector,
    /// Its settings.
    pub settings: WorkerSettings,
    /// Its event counters.
    pub stats: Arc<WorkerStats>,
}
