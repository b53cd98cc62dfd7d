//! Whether `max_connections` fits in the open-files limit.
//!
//! Owns the arithmetic of how many descriptors a configuration may hold at once, and the
//! start-up warning when the limit (after the soft limit was raised to the hard one) is
//! smaller. Never refuses to start (ringlb survives running out: accepting pauses on `EMFILE`
//! and resumes) and never changes the limit itself.

use crate::config::{Config, IoBackend, RelayMode};

/// Descriptors each proxied connection holds: the client's socket and the backend's.
const PER_CONNECTION: u64 = 2;
/// More per connection with `relay = "splice"` or `"splice-inline"`: a pipe (two descriptors)
/// per direction while bytes are in flight. The pipe pool keeps idle pipes, but never more
/// than were in use at once, so this bounds them too.
const PER_SPLICE_CONNECTION: u64 = 4;
/// Per worker: its listener, its ring (or epoll instance and waker), its shutdown eventfd.
const PER_WORKER: u64 = 4;
/// For the rest of the process: standard streams, the health, admin and signal threads'
/// runtimes, the admin listener, resolver sockets, and some slack.
const FIXED: u64 = 32;

/// The descriptors a configuration may hold open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Demand {
    /// `max_connections`.
    pub connections: u64,
    /// Descriptors per connection.
    pub per_connection: u64,
    /// Descriptors held apart from connections: listeners, rings, health probes, admin API.
    pub reserve: u64,
}

impl Demand {
    /// What `config` needs on `io_backend` (never `Auto`), with `admin_clients` admin
    /// connections at most (0 with the admin API disabled). Health probes are counted one per
    /// target: a name that resolves to several addresses probes each, so it needs more.
    pub fn of(config: &Config, io_backend: IoBackend, admin_clients: usize) -> Demand {
        let splices = io_backend != IoBackend::Epoll && config.startup.relay != RelayMode::Copy;
        let per_connection = PER_CONNECTION + if splices { PER_SPLICE_CONNECTION } else { 0 };
        let workers = config.worker_count() as u64;
        // Each worker's listener per service beyond the first (`PER_WORKER` counts one), and
        // a probe per target of every pool.
        let listeners = workers * (config.services().len() as u64 - 1);
        let probes: usize = config.pools().iter().map(|p| p.targets.len()).sum();
        let reserve =
            FIXED + PER_WORKER * workers + listeners + probes as u64 + admin_clients as u64;
        Demand {
            connections: config.live.traffic.max_connections as u64,
            per_connection,
            reserve,
        }
    }

    /// Every descriptor at once.
    pub fn total(&self) -> u64 {
        self.connections
            .saturating_mul(self.per_connection)
            .saturating_add(self.reserve)
    }

    /// How many connections fit in `limit` descriptors once the reserve is set aside.
    pub fn connections_within(&self, limit: u64) -> u64 {
        limit.saturating_sub(self.reserve) / self.per_connection.max(1)
    }
}

/// Warns when `demand` does not fit in the open-files limit `limit`.
pub(super) fn check(limit: u64, demand: Demand) {
    if demand.total() <= limit {
        return;
    }
    tracing::warn!(
        limit,
        needed = demand.total(),
        max_connections = demand.connections,
        per_connection = demand.per_connection,
        reserve = demand.reserve,
        fits = demand.connections_within(limit),
        "the open-files limit is too small for max_connections: past it accepts fail (EMFILE) \
         and pause; raise the hard limit (ulimit -n, systemd LimitNOFILE=, docker --ulimit \
         nofile=) or lower max_connections"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Target, TargetAddress};

    fn config(max_connections: usize, relay: RelayMode) -> Config {
        let target = Target {
            address: TargetAddress {
                host: "a".into(),
                port: 1,
            },
            weight: 1,
            ..Default::default()
        };
        let mut config = Config::new(vec![target]);
        config.startup.workers = 2;
        config.startup.relay = relay;
        config.live.traffic.max_connections = max_connections;
        config
    }

    #[test]
    fn each_connection_needs_two_descriptors_and_four_more_when_splicing() {
        let copy = Demand::of(&config(10_000, RelayMode::Copy), IoBackend::IoUring, 1024);
        // 32 fixed + 2 workers × 4 + 1 target + 1024 admin clients.
        assert_eq!(copy.reserve, 1065);
        assert_eq!(copy.per_connection, 2);
        assert_eq!(copy.total(), 20_000 + 1065);
        let splice = Demand::of(&config(10_000, RelayMode::Splice), IoBackend::IoUring, 0);
        assert_eq!((splice.per_connection, splice.reserve), (6, 41));
        let inline = Demand::of(&config(1, RelayMode::SpliceInline), IoBackend::IoUring, 0);
        assert_eq!(inline.per_connection, 6);
        // The epoll backend always copies, whatever `relay` says.
        let epoll = Demand::of(&config(1, RelayMode::Splice), IoBackend::Epoll, 0);
        assert_eq!(epoll.per_connection, 2);
    }

    #[test]
    fn what_fits_in_a_limit() {
        let demand = Demand {
            connections: 10_000,
            per_connection: 6,
            reserve: 100,
        };
        assert_eq!(demand.total(), 60_100);
        assert_eq!(demand.connections_within(60_100), 10_000);
        assert_eq!(demand.connections_within(1_024), 154);
        assert_eq!(
            demand.connections_within(64),
            0,
            "the reserve alone is larger"
        );
        let huge = Demand {
            connections: u64::MAX,
            ..demand
        };
        assert_eq!(huge.total(), u64::MAX, "saturates instead of overflowing");
    }
}
