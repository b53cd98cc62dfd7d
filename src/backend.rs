//! A backend endpoint: one resolved address of one configured target, with its live counters.
//!
//! Backends are created by the control plane and shared with workers through balancer snapshots
//! (`Arc<Backend>`). The same endpoint keeps the same `Arc` across snapshots, so its counters
//! survive health flaps. Counters are atomics with `Relaxed` ordering: never a lock.
//! The weight is read by the balancer only when a snapshot is published, never per pick.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed},
};

use crossbeam_utils::CachePadded;

use crate::{proxy_protocol::Version, stats::ByteCounters};

/// One resolved endpoint of a target.
#[derive(Debug)]
pub struct Backend {
    /// Index of the target in the configuration this endpoint belongs to.
    pub target: usize,
    /// The target as written in the configuration (`host:port`), for logs.
    pub name: String,
    /// The address connections go to.
    pub addr: SocketAddr,
    /// `addr` in the kernel's layout, kept here so a pending connect can point at it for as
    /// long as the connection holds this backend.
    pub sockaddr: socket2::SockAddr,
    /// Live counters, written by every worker.
    pub stats: CachePadded<BackendStats>,
    /// Relative share of new connections; 0 drains (see [`Backend::weight`]).
    weight: AtomicU32,
    /// A worker saw a connect fail and asked the health checker to take this backend out;
    /// set until the checker brings it back, so a burst of failures sends one request.
    ejected: AtomicBool,
    /// Consecutive early closes after the client's bytes were sent (`retry_on_early_close`);
    /// cleared when the backend answers a client or is brought back (see
    /// the passive-health rules of the connection policy).
    early_closes: AtomicU32,
    /// Which PROXY protocol header connections to this backend begin with (see
    /// [`Backend::send_proxy`]), as 0 (none), 1 or 2.
    send_proxy: AtomicU8,
}

/// Counters of one backend, shared by all workers.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Connections currently relayed to this backend.
    pub active: AtomicUsize,
    /// Connections ever handed to this backend.
    pub total: AtomicU64,
    /// Connect attempts that failed.
    pub connect_failures: AtomicU64,
    /// Bytes relayed per direction, each worker counting on a cache line of its own.
    pub bytes: ByteCounters,
}

impl Backend {
    /// A backend with zeroed counters and weight 1.
    pub fn new(target: usize, name: impl Into<String>, addr: SocketAddr) -> Self {
        Self::with_weight(target, name, addr, 1)
    }

    /// A backend with zeroed counters and the given weight (0 = draining).
    pub fn with_weight(
        target: usize,
        name: impl Into<String>,
        addr: SocketAddr,
        weight: u32,
    ) -> Self {
        Self {
            target,
            name: name.into(),
            addr,
            sockaddr: addr.into(),
            stats: CachePadded::new(BackendStats::default()),
            weight: AtomicU32::new(weight),
            ejected: AtomicBool::new(false),
            early_closes: AtomicU32::new(0),
            send_proxy: AtomicU8::new(0),
        }
    }

    /// The PROXY protocol version connections to this backend begin with, if any. Read by a
    /// worker once per connect.
    pub fn send_proxy(&self) -> Option<Version> {
        match self.send_proxy.load(Relaxed) {
            1 => Some(Version::V1),
            2 => Some(Version::V2),
            _ => None,
        }
    }

    /// Sets the PROXY protocol header of new connections (the control plane, at creation and
    /// on reload); connections already open keep what they sent.
    pub fn set_send_proxy(&self, version: Option<Version>) {
        let code = match version {
            None => 0,
            Some(Version::V1) => 1,
            Some(Version::V2) => 2,
        };
        self.send_proxy.store(code, Relaxed);
    }

    /// Marks the backend as reported down by a worker; `true` for the first report since it
    /// was last brought back.
    pub fn mark_ejected(&self) -> bool {
        !self.ejected.swap(true, Relaxed)
    }

    /// Clears the mark (and the early-close strikes) once the health checker has brought the
    /// backend back.
    pub fn clear_ejected(&self) {
        self.ejected.store(false, Relaxed);
        self.early_closes.store(0, Relaxed);
    }

    /// Whether a worker has reported this backend and the checker has not brought it back yet.
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Relaxed)
    }

    /// Counts one early close (the backend closed after the client's bytes were sent, before
    /// answering); returns the strikes in a row, this one included.
    pub fn early_closed(&self) -> u32 {
        self.early_closes.fetch_add(1, Relaxed).saturating_add(1)
    }

    /// The backend answered a client: its early-close strikes start again from 0. Written only
    /// when there were strikes, so answering backends never bounce this cache line.
    pub fn answered(&self) {
        if self.early_closes.load(Relaxed) != 0 {
            self.early_closes.store(0, Relaxed);
        }
    }

    /// Relative share of new connections this backend should get (default 1).
    ///
    /// 0 means draining: the balancer never picks it for a new connection, while connections
    /// already open run to their end and stay counted in [`Backend::active`].
    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    /// Changes the weight, keeping this `Arc` and its live counters (e.g. to drain on reload).
    ///
    /// Takes effect at the next [`crate::balancer::Balancer::publish`], which rebuilds the
    /// balancer's tables; snapshots already published keep the weight they were built with.
    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Relaxed);
    }

    /// Records a new connection to this backend.
    pub fn connection_opened(&self) {
        self.stats.active.fetch_add(1, Relaxed);
        self.stats.total.fetch_add(1, Relaxed);
    }

    /// Records the end of a connection opened with [`Backend::connection_opened`].
    pub fn connection_closed(&self) {
        self.stats.active.fetch_sub(1, Relaxed);
    }

    /// Records a failed connect.
    pub fn connect_failed(&self) {
        self.stats.connect_failures.fetch_add(1, Relaxed);
    }

    /// Connections ever handed to this backend (by every worker).
    pub fn connections_total(&self) -> u64 {
        self.stats.total.load(Relaxed)
    }

    /// Connections currently open to this backend.
    pub fn active(&self) -> usize {
        self.stats.active.load(Relaxed)
    }

    /// Records bytes worker `worker` relayed through this backend, per direction
    /// (upstream, client to backend, then downstream).
    #[inline]
    pub fn bytes_moved(&self, worker: usize, moved: [u64; 2]) {
        self.stats.bytes.add(worker, moved);
    }
}
