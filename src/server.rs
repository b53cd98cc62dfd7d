//! Starting and stopping a whole ringlb instance: every service's listeners, the workers, every
//! pool's balancer and health checker, and the admin listener; and applying a reload to them
//! ([`ReloadHandle`]: each running pool and service gets its new definition by name, the sets
//! themselves wait for an upgrade).
//!
//! Owns the order of start-up (probe io_uring, check the descriptor limit, bind, prime the
//! balancers, start threads) so that every failure is reported before traffic is accepted, the
//! watch over worker threads (a worker that dies stops the whole process, [`supervise`]), and
//! the order of stopping: workers drain, the health checker stops, and only then the admin
//! listener, so `/healthz` answers 503 for the whole drain. Never on the hot path.

mod descriptors;
mod driver;
#[cfg(debug_assertions)]
mod fault;
mod listeners;
mod supervise;
pub mod upgrade;

use listeners::Listeners;
use upgrade::Upgrader;

use driver::Driver;

use std::{
    io,
    net::{IpAddr, SocketAddr},
    os::fd::AsRawFd,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::{
    access_log::{AccessLog, LogNames},
    admin::{
        self,
        token::{self, Token, TokenError},
        AdminServer, RuntimeApi,
    },
    balancer::Balancer,
    config::{Config, IoBackend, Pool, Service, Startup, Traffic},
    conn::{
        routing::{PoolIndex, Routing},
        settings::{PoolContext, Published, ServiceContext, WorkerContext, WorkerSettings},
    },
    health::{HealthChecker, HealthStatus, Kept, Overrides, PoolHandle, Resolver, SystemResolver},
    limit::ConnectionLimit,
    metrics::{Metrics, WorkerStats},
    shutdown::Shutdown,
    tls::SniRoutes,
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
    /// The runtime API's token file (`[admin] token_file`) is unusable.
    #[error("{0}")]
    AdminToken(#[from] TokenError),
    /// The access log's file (`[access_log] path`) cannot be opened.
    #[error("cannot open the access log ([access_log] path): {0}")]
    AccessLog(#[source] io::Error),
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
    /// Each service's name and the address its listeners are bound to.
    services: Vec<(String, SocketAddr)>,
    /// Each pool's balancer, in the order of the pools.
    balancers: Vec<Arc<Balancer>>,
    /// Each pool's checker handles, in the same order.
    pools: Vec<PoolHandle>,
    reload: ReloadHandle,
    shutdown: Shutdown,
    workers: Vec<JoinHandle<io::Result<()>>>,
    /// The health checkers' thread (every pool's).
    health: JoinHandle<()>,
    metrics: Arc<Metrics>,
    /// `None` when `[admin] enabled = false`.
    admin: Option<AdminServer>,
    io_backend: IoBackend,
    /// Hands the listeners to a successor (SIGUSR2, or a reload needing new sockets).
    upgrader: Arc<Upgrader>,
    /// Where this process's id is written while it serves.
    pid_file: Option<std::path::PathBuf>,
    /// The access log's writer and counters.
    access_log: Arc<AccessLog>,
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
        check_sources(&startup.source)?;
        let services = config.services();
        let pools = config.pools();
        let Listeners {
            traffic: listeners,
            admin: admin_listener,
            handover,
        } = listeners::open(startup, &services)?;
        // One worker per listener of a service: more inherited than configured are all served.
        let count = listeners.len();
        let service_addrs = listeners[0]
            .iter()
            .zip(&services)
            .map(|(listener, service)| {
                listener.local_addr().map_err(|source| StartError::Bind {
                    addr: service.listen,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Read before anything starts: a token file that is unusable is a start-up error.
        let admin_token = match startup.admin.enabled {
            true => token::configured(startup.admin.token_file.as_deref())?,
            false => None,
        };
        let admin_token = Arc::new(ArcSwapOption::from(admin_token.map(Arc::new)));

        // After an upgrade: the runtime API's overrides in force in the process this one
        // succeeds, applied before any worker serves (a drained target stays drained).
        let mut handed = upgrade::inherited_overrides().unwrap_or_default();
        let mut checkers = Vec::with_capacity(pools.len());
        let mut balancers = Vec::with_capacity(pools.len());
        for pool in &pools {
            let balancer = Arc::new(Balancer::with_strategy(pool.balance));
            let mut health = HealthChecker::new(
                pool.resolved_targets(),
                pool.health_check.clone(),
                Arc::clone(&balancer),
            )
            .with_resolver(Arc::clone(&resolver));
            if config.has_services() {
                health = health.for_pool(&pool.name);
            }
            health.prime();
            if let Some(overrides) = handed.pools.remove(&pool.name) {
                health.restore(overrides);
            }
            checkers.push(health);
            balancers.push(balancer);
        }
        for (pool, _) in handed.pools {
            tracing::warn!(
                pool,
                "upgrade: overrides handed over for a pool no longer \
                configured are dropped"
            );
        }
        let handles: Vec<PoolHandle> = pools
            .iter()
            .zip(&checkers)
            .map(|(pool, health)| health.pool_handle(&pool.name))
            .collect();

        let limit = Arc::new(ConnectionLimit::new(live.traffic.max_connections));
        // Each service's settings, live: a reload publishes new ones for new connections.
        let published: Vec<Published> = (services.iter().enumerate())
            .map(|(index, service)| {
                let settings = worker_settings(startup, &live.traffic, index, service, &pools);
                Arc::new(ArcSwap::from_pointee(settings))
            })
            .collect();
        let names = LogNames {
            services: services.iter().map(|s| s.name.clone()).collect(),
            pools: pools.iter().map(|p| p.name.clone()).collect(),
        };
        let access_log =
            AccessLog::start(&live.access_log, count, names).map_err(StartError::AccessLog)?;
        let access_log = Arc::new(access_log);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut built = Vec::with_capacity(count);
        let mut worker_stats = Vec::with_capacity(count);
        for (id, listeners) in listeners.into_iter().enumerate() {
            let stats = Arc::new(WorkerStats::new(id, services.len()));
            worker_stats.push(Arc::clone(&stats));
            let ctx = WorkerContext {
                id,
                services: (listeners.into_iter().zip(&published))
                    .map(|(listener, settings)| ServiceContext {
                        listener,
                        settings: Arc::clone(settings),
                    })
                    .collect(),
                pools: (balancers.iter().zip(&checkers))
                    .map(|(balancer, health)| PoolContext {
                        balancer: Arc::clone(balancer),
                        ejector: health.ejector(),
                    })
                    .collect(),
                limit: Arc::clone(&limit),
                source: startup.source.clone(),
                stats,
                access_log: access_log.sink(id),
            };
            let worker = Driver::new(io_backend, ctx, &shutdown)
                .map_err(|source| StartError::Worker { id, source })?;
            built.push(worker);
        }
        let metrics = Arc::new(Metrics::new(
            worker_stats,
            handles.clone(),
            services.iter().map(|s| s.name.clone()).collect(),
            Arc::clone(&limit),
            shutdown.clone(),
        ));
        metrics.set_io_backend(io_backend.as_str());
        metrics.set_access_log(Arc::clone(&access_log));
        let health =
            HealthChecker::spawn_all(checkers, shutdown.clone()).map_err(StartError::Spawn)?;
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
                let api = RuntimeApi::new(handles.clone(), Arc::clone(&admin_token));
                let admin = AdminServer::spawn(listener, Arc::clone(&metrics), api)
                    .map_err(StartError::Spawn)?;
                let runtime_api = match admin_token.load().is_some() {
                    true => "enabled",
                    false => "disabled (no [admin] token_file)",
                };
                tracing::info!(addr = %admin.addr(), runtime_api,
                    "admin listener serving /metrics, /status and /healthz");
                Some(admin)
            }
            None => None,
        };
        let admin_stop = admin.as_ref().map(AdminServer::stop_handle);
        let upgrader = Upgrader::new(handover, shutdown.clone(), admin_stop, handles.clone())
            .map_err(|source| StartError::Bind {
                addr: service_addrs[0],
                source,
            })?;
        let upgrader = Arc::new(upgrader);
        let weak = Arc::downgrade(&upgrader);
        // Stopping without a successor: the kernel must refuse new clients once the workers
        // close their listeners, so these copies go first.
        shutdown.on_trigger(move || {
            if let Some(upgrader) = weak.upgrade() {
                upgrader.release();
            }
        });
        let pid_file = startup.pid_file.clone();
        // Serving: tell the process this one succeeds (if any), and write the pid file.
        upgrade::announce_ready(pid_file.as_deref());
        for (service, addr) in services.iter().zip(&service_addrs) {
            tracing::info!(service = service.name, listen = %addr, "service listening");
        }
        tracing::info!(listen = %service_addrs[0], workers = count, relay = ?startup.relay,
            io_backend = io_backend.as_str(), services = services.len(), pools = pools.len(),
            "ringlb started");
        Ok(Server {
            services: (services.into_iter().map(|s| s.name))
                .zip(service_addrs)
                .collect(),
            balancers,
            pools: handles.clone(),
            reload: ReloadHandle {
                pools: handles,
                running: Arc::new(Mutex::new(config.clone())),
                published,
                limit: Arc::clone(&limit),
                admin_token,
                access_log: Arc::clone(&access_log),
            },
            shutdown,
            workers,
            health,
            metrics,
            admin,
            io_backend,
            upgrader,
            pid_file,
            access_log,
        })
    }

    /// Starts a successor from the same binary and arguments, hands it the listeners and, once
    /// it serves, stops this server gracefully (see [`upgrade`]); this one keeps serving if the
    /// successor fails.
    pub fn upgrader(&self) -> Arc<Upgrader> {
        Arc::clone(&self.upgrader)
    }

    /// The address the first service's listeners are bound to (with the real port when 0 was
    /// configured): the seed form's one listen address.
    pub fn local_addr(&self) -> SocketAddr {
        self.services[0].1
    }

    /// The address the listeners of service `name` are bound to, if there is such a service.
    pub fn service_addr(&self, name: &str) -> Option<SocketAddr> {
        let found = self.services.iter().find(|(n, _)| n == name);
        found.map(|(_, addr)| *addr)
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

    /// The first pool's balancer (the seed form's one pool).
    pub fn balancer(&self) -> &Arc<Balancer> {
        &self.balancers[0]
    }

    /// What the first pool's health checker sees (the seed form's one pool): per-endpoint
    /// state, last outcome, finished rounds.
    pub fn health_status(&self) -> &Arc<HealthStatus> {
        &self.pools[0].status
    }

    /// Every pool's checker handles, in configuration order.
    pub fn pools(&self) -> &[PoolHandle] {
        &self.pools
    }

    /// A handle for reloading the configuration from another thread (the signal handler).
    pub fn reload_handle(&self) -> ReloadHandle {
        self.reload.clone()
    }

    /// The runtime API's overrides in force (targets drained, in maintenance or reweighted),
    /// serialisable. A binary upgrade of the ringlb binary hands them over by itself (JSON in
    /// an in-memory file beside the listeners, applied by the new process's [`Server::start`]
    /// before any worker serves); an embedder that replaces a [`Server`] another way takes
    /// them here and gives them to the next one's [`Server::restore_overrides`]. These are the
    /// first pool's (the seed form's one); with several pools, each pool's are its handle's
    /// (`server.pools()[i].status.overrides()`, restored with its `reloader.restore(…)`).
    pub fn overrides(&self) -> Arc<Overrides> {
        self.pools[0].status.overrides()
    }

    /// Takes over `overrides` handed over by the process this one replaces, for the first pool
    /// (see [`Server::overrides`]): each target's
    /// overrides hold where this process runs the same entry for it (under the same rule as a
    /// reload), the others are dropped and logged. Completes once they are applied and
    /// published; `None` if the health checker has stopped.
    pub async fn restore_overrides(&self, overrides: Overrides) -> Option<Kept> {
        self.reload.pools[0].reloader.restore(overrides).await
    }

    /// The I/O backend the workers run on: `"io_uring"` or `"epoll"` (never `"auto"`).
    pub fn io_backend(&self) -> &'static str {
        self.io_backend.as_str()
    }

    /// The access log: reopen its file after logrotate moved it (SIGUSR1), read its counters.
    pub fn access_log(&self) -> Arc<AccessLog> {
        Arc::clone(&self.access_log)
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
        // Every connection has ended: what is queued is written before the process exits.
        self.access_log.stop();
        if let Some(admin) = self.admin {
            admin.stop();
        }
        if let Some(path) = &self.pid_file {
            // Kept when it names a successor that took over.
            upgrade::remove_pid_file(path);
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
    /// Each running pool's checker, in the order of the pools at start.
    pools: Vec<PoolHandle>,
    /// The configuration running now (control plane only: reloads compare against it).
    running: Arc<Mutex<Config>>,
    /// Where the workers read each service's settings: a reload stores new ones.
    published: Vec<Published>,
    /// The connection cap, changed in place by a reload.
    limit: Arc<ConnectionLimit>,
    /// The runtime API's token in force, read again on every reload.
    admin_token: Arc<ArcSwapOption<Token>>,
    /// The access log, reopened when a reload changes `[access_log]`.
    access_log: Arc<AccessLog>,
}

impl ReloadHandle {
    /// Applies a reloaded configuration: each running pool's targets (added, removed,
    /// changed), weights, health settings and strategy, and each running service's own
    /// settings and routes, take effect for new connections; open connections keep what they
    /// started with; the runtime overrides of targets whose entry changed are cleared. The
    /// runtime API's token file is read again. Returns the keys (dotted, as in the file) that
    /// need new sockets or threads (an upgrade carries them out: a service or pool added or
    /// removed, a listen address); their running values are kept, so the next reload compares
    /// against what really runs.
    pub fn reload(&self, config: &Config) -> Vec<String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let restart = running.restart_keys(config);
        // What runs after this reload: the pools and services this process started with (only
        // an upgrade changes that set), each with the file's new definition where it still has
        // one by that name, and a service on the address it is bound to.
        let pools = carried(running.pools(), config.pools(), |p| &p.name, |_, next| next);
        let services = carried(
            running.services(),
            config.services(),
            |s| &s.name,
            |old, next| Service {
                listen: old.listen,
                ..next
            },
        );
        let traffic = &config.live.traffic;
        self.limit.set_max(traffic.max_connections);
        for (index, (published, service)) in self.published.iter().zip(&services).enumerate() {
            let settings = worker_settings(&running.startup, traffic, index, service, &pools);
            published.store(Arc::new(settings));
        }
        if running.startup.admin.enabled {
            let token_file = config.startup.admin.token_file.clone();
            self.reload_token(token_file.as_deref());
            running.startup.admin.token_file = token_file;
        }
        for (handle, pool) in self.pools.iter().zip(&pools) {
            handle.reloader.reload(
                pool.resolved_targets(),
                pool.health_check.clone(),
                pool.balance,
            );
        }
        settle(&mut running, config, pools, services);
        if let Err(e) = self.access_log.configure(&config.live.access_log) {
            tracing::error!("SIGHUP: access log not changed, the running one is kept: {e}");
        }
        // What really runs, so the next reload compares against it.
        running.live.access_log = self.access_log.config();
        running.source = config.source.clone();
        restart
    }
}

impl ReloadHandle {
    /// Reads the token file again (or drops the token when the key is gone). A file that is
    /// unusable disables the runtime API until a reload reads a good one: a token being
    /// replaced may be one that leaked, so the old one is never kept.
    fn reload_token(&self, token_file: Option<&std::path::Path>) {
        let had = self.admin_token.load().is_some();
        match token::configured(token_file) {
            Ok(token) => {
                let has = token.is_some();
                self.admin_token.store(token.map(Arc::new));
                match (had, has) {
                    (false, true) => tracing::info!("SIGHUP: runtime API enabled"),
                    (true, false) => {
                        tracing::info!("SIGHUP: runtime API disabled (no [admin] token_file)")
                    }
                    _ => {}
                }
            }
            Err(e) => {
                self.admin_token.store(None);
                tracing::error!(
                    "SIGHUP: {e}; the runtime API is disabled until a reload reads a usable token"
                );
            }
        }
    }
}

/// The `running` entries (the set this process started with), each replaced by `merge(old,
/// next)` where `next` has an entry of the same name, kept as it was otherwise.
fn carried<T: Clone>(
    running: Vec<T>,
    next: Vec<T>,
    name: impl Fn(&T) -> &String,
    merge: impl Fn(T, T) -> T,
) -> Vec<T> {
    (running.into_iter())
        .map(|old| match next.iter().find(|n| name(n) == name(&old)) {
            Some(new) => merge(old, new.clone()),
            None => old,
        })
        .collect()
}

/// Makes `running` say what runs after a reload to `next`: `next`'s live settings, with the
/// pools and services that really run, in the form `running` was started in (a file that
/// switched forms waits for the upgrade, like any change of the set).
fn settle(running: &mut Config, next: &Config, pools: Vec<Pool>, services: Vec<Service>) {
    let started_with_services = running.has_services();
    running.live = next.live.clone();
    if started_with_services {
        running.live.pools = pools;
        running.live.services = services;
        return;
    }
    // The seed form: its one pool is the top-level keys.
    running.live.pools.clear();
    running.live.services.clear();
    if let Some(pool) = pools.into_iter().next() {
        running.live.targets = pool.targets;
        running.live.balance = pool.balance;
        running.live.send_proxy = pool.send_proxy;
        running.live.health_check = pool.health_check;
    }
}

/// What the workers run service `index` with: the relay they were started with, the live
/// process-wide settings, the service's own and its routing against `pools` (the running ones,
/// by name; a route to a pool not among them is left out, and logged).
fn worker_settings(
    startup: &Startup,
    traffic: &Traffic,
    index: usize,
    service: &Service,
    pools: &[Pool],
) -> WorkerSettings {
    let own = &service.traffic;
    WorkerSettings {
        service: index as u16,
        routing: Arc::new(routing(service, pools)),
        relay: startup.relay,
        connect_timeout: own.connect_timeout,
        drain_timeout: traffic.drain_timeout,
        idle_timeout: own.idle_timeout,
        retries: own.retries,
        replay_buffer: own.retry_on_early_close.then_some(own.replay_buffer),
        on_no_backend: own.on_no_backend,
        accept_proxy: own.accept_proxy,
        passive_fall: traffic.passive_fall,
    }
}

/// Service `service`'s routing, pools named by their index in `pools`.
fn routing(service: &Service, pools: &[Pool]) -> Routing {
    let index = |name: &str| {
        let found = pools.iter().position(|p| p.name == name);
        if found.is_none() {
            tracing::warn!(
                service = service.name,
                pool = name,
                "pool not running (an upgrade starts it); connections are not sent to it"
            );
        }
        found.map(|i| i as PoolIndex)
    };
    let default = service.pool.as_deref().and_then(index);
    let routes = (service.routes.iter())
        .filter_map(|route| Some((route.sni.clone(), index(&route.pool)?)))
        .collect::<Vec<_>>();
    // Validated with the configuration: the patterns are good and distinct. Were they not,
    // the service would route everything to its default rather than fail.
    let sni = (!service.routes.is_empty())
        .then(|| SniRoutes::new(routes))
        .and_then(|table| {
            table
                .inspect_err(|e| tracing::error!(service = service.name, "SNI routes: {e}"))
                .ok()
        });
    Routing { default, sni }
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
