//! Starting and stopping a whole ringlb instance: listeners, workers, the health checker and
//! the admin listener.
//!
//! Owns the order of start-up (probe io_uring, check the descriptor limit, bind, prime the
//! balancer, start threads) so that every failure is reported before traffic is accepted, the
//! watch over worker threads (a worker that dies stops the whole process, [`supervise`]), and
//! the order of stopping: workers drain, the health checker stops, and only then the admin
//! listener, so `/healthz` answers 503 for the whole drain. Never on the hot path.

mod descriptors;
mod driver;
#[cfg(debug_assertions)]
mod fault;
mod supervise;

use driver::Driver;

use std::{
    io,
    net::{IpAddr, SocketAddr},
    os::fd::AsRawFd,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use crate::{
    admin::{self, AdminServer},
    balancer::Balancer,
    config::{Config, IoBackend, Startup},
    conn::settings::{WorkerContext, WorkerSettings},
    health::{HealthChecker, HealthStatus, Reloader, Resolver, SystemResolver},
    limit::ConnectionLimit,
    listener,
    metrics::{Metrics, WorkerStats},
    shutdown::Shutdown,
    uring,
};

/// Why ringlb could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// io_uring is missing or blocked.
    #[error(
        "io_uring is not available: {0}. ringlb needs Linux 6.1 or newer with io_uring enabled: \
         check the sysctl kernel.io_uring_disabled (must be 0), and in a container run with a \
         seccomp profile that allows io_uring_setup, io_uring_enter and io_uring_register \
         (Docker's default profile blocks them); or set io_backend = \"auto\" or \"epoll\" to \
         run on epoll instead"
    )]
    IoUringUnavailable(#[source] io::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The bind error.
        source: io::Error,
    },
    /// A worker could not be set up.
    #[error("cannot start worker {id}: {source}")]
    Worker {
        /// Worker index.
        id: usize,
        /// The error.
        source: io::Error,
    },
    /// A `source` address cannot be bound: it is no address of this host.
    #[error(
        "cannot use {addr} as a source address for backend connections (source): {source}; \
         expected an address configured on this host"
    )]
    Source {
        /// The configured address.
        addr: IpAddr,
        /// The bind error.
        source: io::Error,
    },
    /// A thread could not be spawned.
    #[error("cannot spawn thread: {0}")]
    Spawn(#[source] io::Error),
    /// The admin listener (`[admin] listen`) could not be bound.
    #[error("cannot listen on {addr} for the admin endpoints ([admin] listen): {source}")]
    Admin {
        /// The configured admin address.
        addr: SocketAddr,
        /// The bind error.
        source: io::Error,
    },
}

/// A running ringlb instance.
pub struct Server {
    local_addr: SocketAddr,
    balancer: Arc<Balancer>,
    health_status: Arc<HealthStatus>,
    reload: ReloadHandle,
    shutdown: Shutdown,
    workers: Vec<JoinHandle<io::Result<()>>>,
    health: JoinHandle<()>,
    metrics: Arc<Metrics>,
    /// `None` when `[admin] enabled = false`.
    admin: Option<AdminServer>,
    io_backend: IoBackend,
}

impl Server {
    /// Starts listeners, workers and the health checker; returns once traffic is accepted.
    pub fn start(config: &Config, shutdown: Shutdown) -> Result<Server, StartError> {
        Self::start_with_resolver(config, shutdown, Arc::new(SystemResolver))
    }

    /// [`Server::start`], with target names resolved by `resolver` instead of the system
    /// resolver: for tests, and for embedders with a service discovery of their own. It is
    /// asked again every health round, so its answers are followed without a restart.
    pub fn start_with_resolver(
        config: &Config,
        shutdown: Shutdown,
        resolver: Arc<dyn Resolver>,
    ) -> Result<Server, StartError> {
        let io_backend = choose_io_backend(config.startup.io_backend)?;
        match uring::sys::raise_nofile_limit() {
            Ok(limit) => {
                let admin_clients = if config.startup.admin.enabled {
                    admin::MAX_CLIENTS
                } else {
                    0
                };
                let demand = descriptors::Demand::of(config, io_backend, admin_clients);
                descriptors::check(limit, demand);
            }
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
        }
        let Config { startup, live, .. } = config;
        check_sources(&startup.traffic.source)?;
        let count = startup.worker_count();
        let listeners =
            listener::bind_all(startup.listen, count, startup.defer_accept).map_err(|source| {
                StartError::Bind {
                    addr: startup.listen,
                    source,
                }
            })?;
        let local_addr = listeners[0]
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: startup.listen,
                source,
            })?;
        let admin_listener = match startup.admin.enabled {
            true => {
                Some(
                    admin::bind(startup.admin.listen).map_err(|source| StartError::Admin {
                        addr: startup.admin.listen,
                        source,
                    })?,
                )
            }
            false => None,
        };

        let balancer = Arc::new(Balancer::with_strategy(live.balance));
        let mut health = HealthChecker::new(
            live.resolved_targets(),
            live.health_check.clone(),
            Arc::clone(&balancer),
        )
        .with_resolver(resolver);
        health.prime();

        let limit = Arc::new(ConnectionLimit::new(startup.traffic.max_connections));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut built = Vec::with_capacity(count);
        let mut worker_stats = Vec::with_capacity(count);
        for (id, listener) in listeners.into_iter().enumerate() {
            let stats = Arc::new(WorkerStats::new(id));
            worker_stats.push(Arc::clone(&stats));
            let settings = worker_settings(startup);
            let ctx = WorkerContext {
                id,
                listener,
                balancer: Arc::clone(&balancer),
                limit: Arc::clone(&limit),
                ejector: health.ejector(),
                settings,
                stats,
            };
            let worker = Driver::new(io_backend, ctx, &shutdown)
                .map_err(|source| StartError::Worker { id, source })?;
            built.push(worker);
        }
        let health_status = health.status_handle();
        let reloader = health.reloader();
        let metrics = Arc::new(Metrics::new(
            worker_stats,
            Arc::clone(&health_status),
            Arc::clone(&limit),
            shutdown.clone(),
        ));
        metrics.set_io_backend(io_backend.as_str());
        let health = health.spawn(shutdown.clone()).map_err(StartError::Spawn)?;
        let mut workers = Vec::with_capacity(count);
        for (id, worker) in built.into_iter().enumerate() {
            let pin = startup.pin_workers.then_some(id % cores);
            let stop = shutdown.clone();
            let watched = Arc::clone(&metrics);
            #[cfg(debug_assertions)]
            let counted = Arc::clone(&metrics);
            let handle = std::thread::Builder::new()
                .name(format!("ringlb-w{id}"))
                .spawn(move || {
                    supervise::run_watched(id, stop.clone(), watched, move || {
                        if let Some(core) = pin {
                            uring::sys::pin_to_core(core);
                        }
                        #[cfg(debug_assertions)]
                        fault::maybe_panic(id, &counted, &stop);
                        worker.run()
                    })
                })
                .map_err(StartError::Spawn)?;
            workers.push(handle);
        }
        let admin = match admin_listener {
            Some(listener) => {
                let admin = AdminServer::spawn(listener, Arc::clone(&metrics))
                    .map_err(StartError::Spawn)?;
                tracing::info!(addr = %admin.addr(), "admin listener serving /metrics, /status and /healthz");
                Some(admin)
            }
            None => None,
        };
        tracing::info!(listen = %local_addr, workers = count, relay = ?startup.relay,
            io_backend = io_backend.as_str(), "ringlb started");
        Ok(Server {
            local_addr,
            balancer,
            health_status,
            reload: ReloadHandle {
                reloader,
                running: Arc::new(Mutex::new(config.clone())),
            },
            shutdown,
            workers,
            health,
            metrics,
            admin,
            io_backend,
        })
    }

    /// The address the listeners are bound to (with the real port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the admin endpoints are served (with the real port when 0 was configured), or
    /// `None` when `[admin] enabled = false`.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::addr)
    }

    /// The metrics registry: the workers' and backends' live counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The balancer the workers pick from.
    pub fn balancer(&self) -> &Arc<Balancer> {
        &self.balancer
    }

    /// What the health checker sees: per-endpoint state, last outcome, finished rounds.
    pub fn health_status(&self) -> &Arc<HealthStatus> {
        &self.health_status
    }

    /// A handle for reloading the configuration from another thread (the signal handler).
    pub fn reload_handle(&self) -> ReloadHandle {
        self.reload.clone()
    }

    /// The I/O backend the workers run on: `"io_uring"` or `"epoll"` (never `"auto"`).
    pub fn io_backend(&self) -> &'static str {
        self.io_backend.as_str()
    }

    /// Asks every thread to stop; [`Server::wait`] then returns.
    pub fn stop(&self) {
        self.shutdown.trigger();
    }

    /// Waits until every worker and the health checker have stopped, then stops the admin
    /// listener (it answers `/healthz` with 503 for the whole drain). A worker that panicked or
    /// failed (each is logged when it happens) makes this an error, the first failure's, so
    /// the process exits non-zero.
    pub fn wait(self) -> io::Result<()> {
        let mut result = Ok(());
        for (id, handle) in self.workers.into_iter().enumerate() {
            // A worker's panic is caught and returned by its watch; a join error would be a
            // panic in the watch itself.
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("panicked")));
            if let Err(e) = outcome {
                if result.is_ok() {
                    result = Err(io::Error::new(e.kind(), format!("worker {id} failed: {e}")));
                }
            }
        }
        let _ = self.health.join();
        if let Some(admin) = self.admin {
            admin.stop();
        }
        match self.metrics.worker_failure() {
            Some(first) => Err(io::Error::other(first.to_string())),
            None => result,
        }
    }
}

/// Applies reloaded configurations to a running server.
#[derive(Clone, Debug)]
pub struct ReloadHandle {
    reloader: Reloader,
    /// The configuration running now (control plane only: reloads compare against it).
    running: Arc<Mutex<Config>>,
}

impl ReloadHandle {
    /// Applies a reloaded configuration: targets (added, removed, changed), weights, health
    /// settings and the strategy take effect for new connections; open connections are not
    /// touched. Returns the keys (dotted, as in the file) that changed but need a restart to
    /// take effect; their running values are kept, so the next reload compares against what
    /// really runs.
    pub fn reload(&self, config: &Config) -> Vec<String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let restart = running.restart_keys(config);
        let live = &config.live;
        self.reloader.reload(
            live.resolved_targets(),
            live.health_check.clone(),
            live.balance,
        );
        running.live = live.clone();
        running.source = config.source.clone();
        restart
    }
}

/// What every worker is built with, from the part of the configuration fixed at start.
fn worker_settings(startup: &Startup) -> WorkerSettings {
    let traffic = &startup.traffic;
    WorkerSettings {
        relay: startup.relay,
        connect_timeout: traffic.connect_timeout,
        source: traffic.source.clone(),
        drain_timeout: traffic.drain_timeout,
        idle_timeout: traffic.idle_timeout,
        retries: traffic.retries,
        replay_buffer: traffic
            .retry_on_early_close
            .then_some(traffic.replay_buffer),
        on_no_backend: traffic.on_no_backend,
        accept_proxy: traffic.accept_proxy,
        passive_fall: traffic.passive_fall,
    }
}

/// Binds a socket to every `source` address once, as each backend connection will: an address
/// that is not this host's fails the start instead of every connection later.
fn check_sources(source: &[IpAddr]) -> Result<(), StartError> {
    for &ip in source {
        let addr = SocketAddr::new(ip, 0);
        socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .and_then(|socket| uring::sys::bind_source(socket.as_raw_fd(), &addr.into()))
        .map_err(|source| StartError::Source { addr: ip, source })?;
    }
    Ok(())
}

/// Resolves `io_backend = "…"` to the backend the workers run on, probing io_uring unless epoll
/// was asked for, and logs once which one runs and why.
fn choose_io_backend(configured: IoBackend) -> Result<IoBackend, StartError> {
    let (chosen, why) = match configured {
        IoBackend::Epoll => (IoBackend::Epoll, "configured"),
        IoBackend::IoUring => {
            uring::probe().map_err(StartError::IoUringUnavailable)?;
            (IoBackend::IoUring, "configured")
        }
        IoBackend::Auto => match uring::probe() {
            Ok(()) => (IoBackend::IoUring, "auto: io_uring is available"),
            Err(e) => {
                tracing::warn!("io_uring unavailable ({e}); using the epoll backend");
                (IoBackend::Epoll, "auto: io_uring is unavailable")
            }
        },
    };
    tracing::info!(io_backend = %chosen, reason = why, "I/O backend selected");
    Ok(chosen)
}
