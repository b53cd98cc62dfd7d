//! Configuration: the TOML file format, its defaults and its validation.
//!
//! Owns turning a file into a validated [`Config`]; everything downstream trusts it.
//! Never resolves hostnames (`--check` must work without DNS) and never panics on input.

pub(crate) mod address;
mod defaults;
mod file;
mod io_backend;
mod l4;
#[cfg(test)]
mod tests;
mod value;

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

pub use crate::balancer::Strategy;
use defaults::relay_name;
use file::{parse_document, validate};
pub use io_backend::IoBackend;
pub use l4::{HealthCheckKind, OnNoBackend, SendProxy, MAX_CHECK_BYTES};

/// A validated configuration, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from (for messages and reload).
    pub source: PathBuf,
    /// Address every worker's `SO_REUSEPORT` listener binds to.
    pub listen: SocketAddr,
    /// Number of worker threads; 0 means one per CPU core (see [`Config::worker_count`]).
    pub workers: usize,
    /// Pin worker `i` to CPU core `i % cores`.
    pub pin_workers: bool,
    /// How bytes are moved between client and backend.
    pub relay: RelayMode,
    /// The workers' I/O runtime: io_uring, epoll, or io_uring with an epoll fallback.
    pub io_backend: IoBackend,
    /// Longest wait for a backend connect before the next backend is tried.
    pub connect_timeout: Duration,
    /// A connection with no byte either way for this long is closed on both sides.
    pub idle_timeout: Duration,
    /// After SIGTERM/SIGINT, how long open connections may finish before they are closed.
    pub drain_timeout: Duration,
    /// Connections open at once, over all workers; at the limit ringlb stops accepting.
    pub max_connections: usize,
    /// Further backends tried when a connect fails, before the client gets the 503.
    pub retries: u32,
    /// Keep the client's first bytes until the backend answers, and replay them to another
    /// backend if it closes first (safe for idempotent request/response traffic only).
    pub retry_on_early_close: bool,
    /// Bytes of the client's first data kept for a replay; past them the connection commits.
    pub replay_buffer: usize,
    /// How a backend is chosen for each new connection.
    pub balance: Strategy,
    /// What a client receives when no backend can take it.
    pub on_no_backend: OnNoBackend,
    /// Whether connections to targets begin with a PROXY header (a target may override it).
    pub send_proxy: SendProxy,
    /// Every client connection must begin with a PROXY header, whose addresses then stand for
    /// the client's (only behind a trusted balancer).
    pub accept_proxy: bool,
    /// Active health-check settings, shared by all targets.
    pub health_check: HealthCheck,
    /// The admin HTTP listener: `/metrics`, `/status`, `/healthz`.
    pub admin: Admin,
    /// The backends, in configuration order (never empty once validated).
    pub targets: Vec<Target>,
}

/// Health-check settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Time between the starts of two probe rounds.
    pub interval: Duration,
    /// Deadline of one probe (resolve, connect, request and response).
    pub timeout: Duration,
    /// Consecutive successes for an unhealthy target to come back.
    pub rise: u32,
    /// Consecutive failures for a healthy target to leave.
    pub fall: u32,
    /// With `retry_on_early_close`: consecutive early closes (after the client's bytes were
    /// sent, before any answer) that take a target out of rotation.
    pub passive_fall: u32,
}

/// The admin HTTP listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Serve `/metrics`, `/status` and `/healthz` at all.
    pub enabled: bool,
    /// Where the admin listener binds: loopback by default, so nothing is exposed by accident.
    pub listen: SocketAddr,
}

/// One configured backend target.
///
/// `Default` (an empty address, weight 1, an HTTP check of `/`) exists for struct-update
/// syntax in code and tests; a file always names the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host (name or IP literal) and port.
    pub address: TargetAddress,
    /// Path requested by the HTTP health check, e.g. `/healthz`; empty unless
    /// [`Target::health_check`] is [`HealthCheckKind::Http`].
    pub health_check_endpoint: String,
    /// Relative share of new connections (default 1); 0 drains the target.
    pub weight: u32,
    /// How the target is probed.
    pub health_check: HealthCheckKind,
    /// Bytes a TCP probe writes once connected.
    pub health_check_send: Option<String>,
    /// Bytes a TCP probe's reply must begin with.
    pub health_check_expect: Option<String>,
    /// Port probed instead of the traffic port, on the same host.
    pub health_check_port: Option<u16>,
    /// This target's own `send_proxy`; `None` follows [`Config::send_proxy`].
    pub send_proxy: Option<SendProxy>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            address: TargetAddress::default(),
            health_check_endpoint: String::new(),
            weight: 1,
            health_check: HealthCheckKind::default(),
            health_check_send: None,
            health_check_expect: None,
            health_check_port: None,
            send_proxy: None,
        }
    }
}

impl Target {
    /// A target at `host:port` (a name or an IP literal) probed with `GET
    /// <health_check_endpoint>`, everything else at its default.
    pub fn http(host: &str, port: u16, health_check_endpoint: &str) -> Target {
        Target {
            address: TargetAddress {
                host: host.into(),
                port,
            },
            health_check_endpoint: health_check_endpoint.into(),
            ..Target::default()
        }
    }
}

/// A `host:port` pair; the host may be a DNS name, resolved at health-check time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TargetAddress {
    /// DNS name or IP literal (without brackets for IPv6).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The relay strategy (README, "Relay strategies").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    /// io_uring readiness, then `IORING_OP_SPLICE` through a pipe.
    Splice,
    /// io_uring readiness, then non-blocking `splice(2)` from the worker thread.
    SpliceInline,
    /// Multishot recv into a provided buffer ring, then send.
    Copy,
}

impl Config {
    /// A configuration for `targets` with every other setting at its default.
    pub fn new(targets: Vec<Target>) -> Config {
        Config {
            source: PathBuf::from("<built-in>"),
            listen: defaults::default_listen(),
            workers: defaults::default_workers(),
            pin_workers: defaults::default_pin_workers(),
            relay: defaults::default_relay(),
            io_backend: defaults::default_io_backend(),
            connect_timeout: defaults::default_connect_timeout(),
            idle_timeout: defaults::default_idle_timeout(),
            drain_timeout: defaults::default_drain_timeout(),
            max_connections: defaults::default_max_connections(),
            retries: defaults::default_retries(),
            retry_on_early_close: false,
            replay_buffer: defaults::default_replay_buffer(),
            balance: Strategy::default(),
            on_no_backend: OnNoBackend::default(),
            send_proxy: SendProxy::default(),
            accept_proxy: false,
            health_check: defaults::default_health_check(),
            admin: defaults::default_admin(),
            targets,
        }
    }

    /// The PROXY protocol setting of `target`: its own, or the top-level one.
    pub fn send_proxy_of(&self, target: &Target) -> SendProxy {
        target.send_proxy.unwrap_or(self.send_proxy)
    }

    /// The targets with each one's `send_proxy` resolved against the top-level setting: what
    /// the health checker (which creates the backends) is given.
    pub fn resolved_targets(&self) -> Vec<Target> {
        let resolve = |t: &Target| Target {
            send_proxy: Some(self.send_proxy_of(t)),
            ..t.clone()
        };
        self.targets.iter().map(resolve).collect()
    }

    /// The number of worker threads to start: `workers`, or one per core when it is 0.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// Why a configuration file was rejected. Every message names the file and, where there is one,
/// the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid for this schema.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key, dotted (`targets[1].address`), or `<file>` for the whole document.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is only used in messages and kept as
    /// [`Config::source`].
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse_document(text)
            .and_then(|table| validate(table, path))
            .map_err(|invalid| invalid.at(path))
    }
}

// ---------------------------------------------------------------------------------------------
// Display: the effective configuration as TOML that parses back to an equal `Config`.

/// A duration as a quoted human string, e.g. `"5s"`.
fn human(d: Duration) -> String {
    quoted(&humantime::format_duration(d).to_string())
}

/// A TOML basic string, escaped.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

impl fmt::Display for Config {
    /// The effective configuration as TOML, every default spelled out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = format!("{:?}", self.source.display().to_string());
        writeln!(f, "# Effective ringlb configuration, loaded from {source}.")?;
        writeln!(f, "listen = {}", quoted(&self.listen.to_string()))?;
        writeln!(f, "workers = {}", self.workers)?;
        writeln!(f, "pin_workers = {}", self.pin_workers)?;
        writeln!(f, "relay = {}", quoted(relay_name(self.relay)))?;
        writeln!(f, "io_backend = {}", quoted(self.io_backend.as_str()))?;
        writeln!(f, "connect_timeout = {}", human(self.connect_timeout))?;
        writeln!(f, "idle_timeout = {}", human(self.idle_timeout))?;
        writeln!(f, "drain_timeout = {}", human(self.drain_timeout))?;
        writeln!(f, "max_connections = {}", self.max_connections)?;
        writeln!(f, "retries = {}", self.retries)?;
        writeln!(f, "retry_on_early_close = {}", self.retry_on_early_close)?;
        writeln!(f, "replay_buffer = {}", self.replay_buffer)?;
        writeln!(f, "balance = {}", quoted(self.balance.as_str()))?;
        writeln!(f, "on_no_backend = {}", quoted(self.on_no_backend.as_str()))?;
        writeln!(f, "send_proxy = {}", quoted(self.send_proxy.as_str()))?;
        writeln!(f, "accept_proxy = {}", self.accept_proxy)?;
        let hc = &self.health_check;
        writeln!(f, "\n[health_check]")?;
        writeln!(f, "interval = {}", human(hc.interval))?;
        writeln!(f, "timeout = {}", human(hc.timeout))?;
        writeln!(f, "rise = {}", hc.rise)?;
        writeln!(f, "fall = {}", hc.fall)?;
        writeln!(f, "passive_fall = {}", hc.passive_fall)?;
        writeln!(f, "\n[admin]")?;
        writeln!(f, "enabled = {}", self.admin.enabled)?;
        writeln!(f, "listen = {}", quoted(&self.admin.listen.to_string()))?;
        for target in &self.targets {
            writeln!(f, "\n[[targets]]")?;
            writeln!(f, "address = {}", quoted(&target.address.to_string()))?;
            writeln!(f, "health_check = {}", quoted(target.health_check.as_str()))?;
            if target.health_check == HealthCheckKind::Http {
                let endpoint = quoted(&target.health_check_endpoint);
                writeln!(f, "health_check_endpoint = {endpoint}")?;
            }
            write_target_extras(f, target)?;
            writeln!(f, "weight = {}", target.weight)?;
        }
        Ok(())
    }
}

/// The optional keys of a target, each only when set.
fn write_target_extras(f: &mut fmt::Formatter<'_>, target: &Target) -> fmt::Result {
    if let Some(send) = &target.health_check_send {
        writeln!(f, "health_check_send = {}", quoted(send))?;
    }
    if let Some(expect) = &target.health_check_expect {
        writeln!(f, "health_check_expect = {}", quoted(expect))?;
    }
    if let Some(port) = target.health_check_port {
        writeln!(f, "health_check_port = {port}")?;
    }
    if let Some(send_proxy) = target.send_proxy {
        writeln!(f, "send_proxy = {}", quoted(send_proxy.as_str()))?;
    }
    Ok(())
}
