//! Every default of the configuration, in one place: the `Default` of each runtime part. The
//! file format takes its defaults from these (`file.rs`), and `--check` spells each one out.
//!
//! Never validates and never reads a file: these values are trusted as they are.

use std::{net::SocketAddr, time::Duration};

use super::{
    AccessLog, Admin, HealthCheck, IoBackend, LogFormat, LogPath, RelayMode, Startup, Target,
    TargetAddress, Traffic,
};
use crate::config::HealthCheckKind;

impl Default for Startup {
    fn default() -> Self {
        Startup {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            // Off: a protocol where the server speaks first (MySQL, SMTP) would hang with it.
            defer_accept: None,
            // One per CPU core: thread-per-core is the design.
            workers: 0,
            pin_workers: false,
            // Copy for request/response traffic (the seed's workload), splice while a direction
            // carries bulk: the best of both (docs/benchmarks.md).
            relay: RelayMode::Auto,
            // io_uring where the kernel allows it, the epoll backend elsewhere (a container under
            // Docker's default seccomp profile, gVisor): the same file runs everywhere.
            io_backend: IoBackend::Auto,
            admin: Admin::default(),
            pid_file: None,
            // The kernel's choice, as for any client: no bind, no system call of ours.
            source: Vec::new(),
        }
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            retries: 2,
            // A replay sends a request twice to a backend that processed it and then crashed:
            // only the operator knows whether the traffic is idempotent.
            retry_on_early_close: false,
            replay_buffer: 16 * 1024,
            on_no_backend: Default::default(),
            accept_proxy: false,
            // Three early closes in a row, as Envoy's outlier detection defaults to a handful
            // of consecutive errors: one reset can be a restart's backlog, three in a row are
            // the backend.
            passive_fall: 3,
        }
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            enabled: true,
            // Loopback: the admin endpoints are reachable from the host only unless the file
            // says otherwise (a container's config sets `0.0.0.0:9100` so the orchestrator can
            // probe it).
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
            // The runtime API changes what the balancer does: off until the operator gives it
            // a token.
            token_file: None,
        }
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            // Off: a line per connection is a cost (and a disk to fill) the operator opts into.
            path: LogPath::Off,
            // One object per line: what log shippers (Vector, Fluent Bit, Loki) parse without
            // a pattern.
            format: LogFormat::Json,
        }
    }
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            rise: 1,
            fall: 1,
        }
    }
}

impl Default for Target {
    fn default() -> Self {
        Target {
            address: TargetAddress::default(),
            health_check_endpoint: String::new(),
            weight: DEFAULT_WEIGHT,
            health_check: HealthCheckKind::default(),
            health_check_send: None,
            health_check_expect: None,
            health_check_port: None,
            send_proxy: None,
        }
    }
}

/// A target's share when the file gives none: every target equal.
pub(super) const DEFAULT_WEIGHT: u32 = 1;
