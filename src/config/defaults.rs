//! Every default of the configuration, in one place; `Display` spells each of them out.

use std::{net::SocketAddr, time::Duration};

use super::{HealthCheck, RelayMode};

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

pub(super) fn default_health_check() -> HealthCheck {
    HealthCheck {
        interval: default_interval(),
        timeout: default_timeout(),
        rise: default_rise(),
        fall: default_fall(),
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
