//! The part of a configuration a reload applies to a running ringlb: the targets, how one is
//! chosen, how the health checker probes them, how the workers treat new connections, and the
//! access log.
//!
//! Owns the shape of that part and the target types. Never holds a setting the workers or the
//! listeners were built with ([`super::Startup`]): a key that moves here must really take effect
//! on reload.

use std::{fmt, time::Duration};

use super::{HealthCheckKind, SendProxy, Strategy};

/// What a reload changes for new connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// How a backend is chosen for each new connection (in the services form: the default of
    /// every pool that sets none).
    pub balance: Strategy,
    /// Whether connections to targets begin with a PROXY header (a target may override it; in
    /// the services form: the default of every pool).
    pub send_proxy: SendProxy,
    /// Active health-check settings, shared by all targets (in the services form: the
    /// default of every pool's `[pools.health_check]`).
    pub health_check: HealthCheck,
    /// The backends, in configuration order (never empty once validated in the seed form;
    /// always empty in the services form, whose targets are each pool's).
    pub targets: Vec<Target>,
    /// How the workers treat each new connection (timeouts, retries, replay, the no-backend
    /// answer, the connection cap). In the services form its service-level part is the default
    /// of every service (each [`super::Service::traffic`] is resolved) and the rest is
    /// process-wide.
    pub traffic: super::Traffic,
    /// Where the line for each client connection goes, and its format (`[access_log]`); a
    /// reload reopens it.
    pub access_log: super::AccessLog,
    /// `[[pools]]`; empty in the seed form, whose one pool is the top-level keys above (see
    /// [`super::Config::pools`]).
    pub pools: Vec<super::Pool>,
    /// `[[services]]`; empty in the seed form, whose one service is the top-level `listen`
    /// and keys (see [`super::Config::services`]). A service's `listen` is fixed at start.
    pub services: Vec<super::Service>,
}

/// The health checker's settings.
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
    /// This target's own `send_proxy`; `None` follows [`Live::send_proxy`].
    pub send_proxy: Option<SendProxy>,
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

impl Live {
    /// `targets` with every other live setting at its default.
    pub fn new(targets: Vec<Target>) -> Live {
        Live {
            balance: Strategy::default(),
            send_proxy: SendProxy::default(),
            health_check: HealthCheck::default(),
            targets,
            traffic: super::Traffic::default(),
            access_log: super::AccessLog::default(),
            pools: Vec::new(),
            services: Vec::new(),
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
}
