//! What a worker is given, whichever I/O driver runs it: its settings from the configuration and
//! the handles it shares with the rest of the process.
//!
//! The settings are live: the server publishes a new [`WorkerSettings`] on reload, and each
//! worker picks it up for the connections it accepts from then on ([`Current`]); a connection
//! keeps the settings it started with. Owns nothing but the description and that hand-over; the
//! server fills it in, a driver consumes it. Never does I/O.

use std::{
    net::{IpAddr, TcpListener},
    rc::Rc,
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;

use super::routing::Routing;
use crate::{
    access_log::Sink,
    balancer::Balancer,
    config::{OnNoBackend, RelayMode},
    health::Ejector,
    limit::ConnectionLimit,
    stats::WorkerStats,
};

/// The workers' settings as the server publishes them; a reload stores a new value.
pub type Published = Arc<ArcSwap<WorkerSettings>>;

/// Per-worker settings taken from the configuration.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// The service these settings are for: its index in the effective list of services
    /// (metrics, the access log).
    pub service: u16,
    /// Which pool a connection of the service goes to.
    pub routing: Arc<Routing>,
    /// How bytes are moved (io_uring only; the epoll driver always copies).
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
    /// The defaults, for unit tests of the drivers.
    #[cfg(test)]
    pub(crate) fn for_tests() -> WorkerSettings {
        WorkerSettings {
            service: 0,
            routing: Arc::new(Routing {
                default: Some(0),
                sni: None,
            }),
            relay: RelayMode::Copy,
            connect_timeout: Duration::from_secs(3),
            drain_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            retries: 2,
            replay_buffer: None,
            on_no_backend: OnNoBackend::Http503,
            accept_proxy: false,
            passive_fall: 3,
        }
    }

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
    /// One listener per service, in the order of the effective services.
    pub services: Vec<ServiceContext>,
    /// Every pool, in the order of the effective pools (a [`Routing`] names them by index).
    pub pools: Vec<PoolContext>,
    /// The process-wide connection cap.
    pub limit: Arc<ConnectionLimit>,
    /// Local addresses backend connections are bound to (`source`, fixed at start; see
    /// [`super::source::Sources`]); empty: the kernel's choice, no bind.
    pub source: Vec<IpAddr>,
    /// Its event counters.
    pub stats: Arc<WorkerStats>,
    /// Its queue of access-log records.
    pub access_log: Sink,
}

/// One service as a worker serves it.
pub struct ServiceContext {
    /// The worker's own `SO_REUSEPORT` listener for the service (non-blocking, `TCP_NODELAY`
    /// inherited by accepted sockets).
    pub listener: TcpListener,
    /// The service's settings and routing, as published (live).
    pub settings: Published,
}

/// One pool as a worker picks from it.
pub struct PoolContext {
    /// The pool's healthy set.
    pub balancer: Arc<Balancer>,
    /// Where failed connects to its backends are reported (its health checker).
    pub ejector: Ejector,
}

impl WorkerContext {
    /// The settings the worker's first service starts with: what is the same for every
    /// service (the relay, the drain deadline) is read here.
    pub fn first_settings(&self) -> Arc<WorkerSettings> {
        self.services[0].settings.load_full()
    }
}

/// One worker's view of the published settings: the latest, copied into worker-local memory
/// when they change, so handing them to a connection costs a non-atomic reference count.
pub struct Current<T> {
    published: Published,
    seen: Arc<WorkerSettings>,
    local: Rc<T>,
    derive: fn(&WorkerSettings) -> T,
}

impl<T> Current<T> {
    /// A view of `published`; `derive` turns published settings into the driver's own form
    /// (with its timers, say), once per change.
    pub fn new(published: Published, derive: fn(&WorkerSettings) -> T) -> Self {
        let seen = published.load_full();
        let local = Rc::new(derive(&seen));
        Self {
            published,
            seen,
            local,
            derive,
        }
    }

    /// The settings a new connection starts with: one atomic load, and a copy only when the
    /// server published new ones.
    pub fn get(&mut self) -> Rc<T> {
        let now = self.published.load();
        if !Arc::ptr_eq(&now, &self.seen) {
            self.seen = arc_swap::Guard::into_inner(now);
            self.local = Rc::new((self.derive)(&self.seen));
        }
        Rc::clone(&self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(retries: u32) -> WorkerSettings {
        WorkerSettings {
            retries,
            ..WorkerSettings::for_tests()
        }
    }

    #[test]
    fn a_published_change_reaches_new_connections_only() {
        let published: Published = Arc::new(ArcSwap::from_pointee(settings(2)));
        let mut current = Current::new(Arc::clone(&published), |s| s.retries);
        let open = current.get();
        assert!(
            Rc::ptr_eq(&open, &current.get()),
            "no copy while nothing changed"
        );
        published.store(Arc::new(settings(5)));
        assert_eq!(*current.get(), 5, "a new connection sees the reload");
        assert_eq!(*open, 2, "an open one keeps what it started with");
    }
}
