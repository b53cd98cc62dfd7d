//! Services and pools: what a configuration serves (listeners, each with its routes) and what
//! it serves it with (pools of targets, each balanced and checked on its own).
//!
//! A file names them in `[[services]]` and `[[pools]]`; the seed form (a top-level `listen` and
//! `[[targets]]`) is one service and one pool, both named [`DEFAULT`]. [`super::Config::services`]
//! and [`super::Config::pools`] give the effective list either way, which is all the server reads.
//! Owns the shape of a service, a route and a pool. Never checks them (`validate.rs` does, once)
//! and never knows about sockets.

use std::net::SocketAddr;

use super::{Config, HealthCheck, Live, OnNoBackend, SendProxy, Strategy, Target, Traffic};

/// The name of the seed form's one service and one pool.
pub const DEFAULT: &str = "default";

/// A pool of targets: one balancer snapshot and one set of health checks, shared by every
/// service that routes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Its name (`[[pools]] name`), unique in the file.
    pub name: String,
    /// How a target is chosen for each new connection.
    pub balance: Strategy,
    /// Whether connections to its targets begin with a PROXY header (a target may override).
    pub send_proxy: SendProxy,
    /// How its targets are probed.
    pub health_check: HealthCheck,
    /// Its targets, in configuration order (never empty once validated).
    pub targets: Vec<Target>,
}

impl Pool {
    /// The targets with each one's `send_proxy` resolved against the pool's: what the health
    /// checker (which creates the backends) is given.
    pub fn resolved_targets(&self) -> Vec<Target> {
        let resolve = |t: &Target| Target {
            send_proxy: Some(t.send_proxy.unwrap_or(self.send_proxy)),
            ..t.clone()
        };
        self.targets.iter().map(resolve).collect()
    }
}

/// A service: a listen address, where its connections go, and how they are treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its name (`[[services]] name`), unique in the file; the `service` label of its metrics.
    pub name: String,
    /// Where every worker's `SO_REUSEPORT` listener for it binds (fixed at start).
    pub listen: SocketAddr,
    /// The pool of a connection no route selects (no SNI, no match, not TLS); `None`: such a
    /// connection gets `on_no_backend`.
    pub pool: Option<String>,
    /// Routes by TLS server name, tried in order of specificity (exact names, then wildcards);
    /// a service with routes reads each client's ClientHello before connecting.
    pub routes: Vec<Route>,
    /// How its connections are connected, retried, timed out and refused.
    pub traffic: ServiceTraffic,
}

impl Service {
    /// Every pool this service may send a connection to: its default, then its routes'.
    pub fn pools(&self) -> impl Iterator<Item = &str> {
        self.pool
            .as_deref()
            .into_iter()
            .chain(self.routes.iter().map(|r| r.pool.as_str()))
    }
}

/// One `[[services.routes]]` entry: TLS server names and the pool they select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Exact names and one-label wildcards (`*.internal.example.com`), never empty.
    pub sni: Vec<String>,
    /// The pool they select.
    pub pool: String,
}

/// A service's own settings for its connections: the service-level part of [`Traffic`]. The
/// process-wide rest (`max_connections`, `drain_timeout`, `[health_check] passive_fall`) is
/// [`Live::traffic`]'s alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTraffic {
    /// Longest wait for a backend connect before the next backend is tried.
    pub connect_timeout: std::time::Duration,
    /// A connection with no byte either way for this long is closed on both sides.
    pub idle_timeout: std::time::Duration,
    /// Further backends tried when a connect fails.
    pub retries: u32,
    /// Keep the client's first bytes and replay them to another backend on an early close.
    pub retry_on_early_close: bool,
    /// Bytes of the client's first data kept for a replay.
    pub replay_buffer: usize,
    /// What a client receives when no backend can take it.
    pub on_no_backend: OnNoBackend,
    /// Every client connection must begin with a PROXY header.
    pub accept_proxy: bool,
}

impl From<&Traffic> for ServiceTraffic {
    /// The service-level part of the top-level settings: what a service that sets none of its
    /// own runs with (and the seed form's one service).
    fn from(traffic: &Traffic) -> Self {
        Self {
            connect_timeout: traffic.connect_timeout,
            idle_timeout: traffic.idle_timeout,
            retries: traffic.retries,
            retry_on_early_close: traffic.retry_on_early_close,
            replay_buffer: traffic.replay_buffer,
            on_no_backend: traffic.on_no_backend,
            accept_proxy: traffic.accept_proxy,
        }
    }
}

impl Live {
    /// The seed form's one pool: the top-level targets, balance, send_proxy and health check.
    fn seed_pool(&self) -> Pool {
        Pool {
            name: DEFAULT.into(),
            balance: self.balance,
            send_proxy: self.send_proxy,
            health_check: self.health_check.clone(),
            targets: self.targets.clone(),
        }
    }
}

impl Config {
    /// Whether the file used `[[services]]` and `[[pools]]` (else it is the seed form).
    pub fn has_services(&self) -> bool {
        !self.live.services.is_empty()
    }

    /// The effective pools, in configuration order: `[[pools]]`, or the seed form's one pool
    /// named [`DEFAULT`].
    pub fn pools(&self) -> Vec<Pool> {
        match self.has_services() {
            true => self.live.pools.clone(),
            false => vec![self.live.seed_pool()],
        }
    }

    /// The effective services, in configuration order: `[[services]]`, or the seed form's one
    /// service named [`DEFAULT`] on `listen`, sending everything to pool [`DEFAULT`].
    pub fn services(&self) -> Vec<Service> {
        match self.has_services() {
            true => self.live.services.clone(),
            false => vec![Service {
                name: DEFAULT.into(),
                listen: self.startup.listen,
                pool: Some(DEFAULT.into()),
                routes: Vec::new(),
                traffic: ServiceTraffic::from(&self.live.traffic),
            }],
        }
    }

    /// Pools no service sends a connection to: worth a warning, never an error.
    pub fn unused_pools(&self) -> Vec<String> {
        let services = self.services();
        let used = |pool: &str| services.iter().any(|s| s.pools().any(|p| p == pool));
        self.pools()
            .into_iter()
            .map(|p| p.name)
            .filter(|name| !used(name))
            .collect()
    }
}
