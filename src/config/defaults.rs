//! Every default of the configuration, in one place; `Display` spells each of them out.

use std::{net::SocketAddr, time::Duration};

use super::{Admin, HealthCheck, IoBackend, RelayMode};

pub(super) fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 80))
}

pub(super) fn default_workers() -> usize {
    0
}

pub(super) fn default_pin_workers() -> bool {
    false
}

/// The relay strategy used when the file names none: `copy` measured fastest on request/response
/// traffic (docs/benchmarks.md), the seed's workload.
pub(super) fn default_relay() -> RelayMode {
    RelayMode::Copy
}

/// io_uring where the kernel allows it, the epoll backend elsewhere (a container under Docker's
/// default seccomp profile, gVisor): the same file runs everywhere.
pub(super) fn default_io_backend() -> IoBackend {
    IoBackend::Auto
}

pub(super) fn default_connect_timeout() -> Duration {
    Duration::from_secs(3)
}

pub(super) fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

pub(super) fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn default_max_connections() -> usize {
    10_000
}

pub(super) fn default_retries() -> u32 {
    2
}

pub(super) fn default_interval() -> Duration {
    Duration::from_secs(5)
}

pub(super) fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

pub(super) fn default_rise() -> u32 {
    1
}

pub(super) fn default_fall() -> u32 {
    1
}

/// Three early closes in a row, as Envoy's outlier detection defaults to a handful of
/// consecutive errors: one reset can be a restart's backlog, three in a row are the backend.
pub(super) fn default_passive_fall() -> u32 {
    3
}

pub(super) fn default_health_check() -> HealthCheck {
    HealthCheck {
        interval: default_interval(),
        timeout: default_timeout(),
        rise: default_rise(),
        fall: default_fall(),
        passive_fall: default_passive_fall(),
    }
}

pub(super) fn default_admin_enabled() -> bool {
    true
}

/// Loopback: the admin endpoints are reachable from the host only unless the file says
/// otherwise (a container's config sets `0.0.0.0:9100` so the orchestrator can probe it).
pub(super) fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9100))
}

pub(super) fn default_admin() -> Admin {
    Admin {
        enabled: default_admin_enabled(),
        listen: default_admin_listen(),
    }
}

/// Every relay mode, in the order messages list them.
pub(super) const RELAY_MODES: [RelayMode; 3] =
    [RelayMode::Splice, RelayMode::SpliceInline, RelayMode::Copy];

/// The spelling of a relay mode in the file.
pub(super) fn relay_name(mode: RelayMode) -> &'static str {
    match mode {
        RelayMode::Splice => "splice",
        RelayMode::SpliceInline => "splice-inline",
        RelayMode::Copy => "copy",
    }
}

pub(super) fn default_weight() -> u32 {
    1
}

pub(super) fn default_replay_buffer() -> usize {
    16 * 1024
}
