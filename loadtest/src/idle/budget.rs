//! How many idle connections fit: the open-files limit of every process that holds them.
//!
//! Owns the descriptor arithmetic of `--mode idle`. Each idle connection through a proxy costs
//! one descriptor in the client (the `loadtest hold` child), two in the proxy (its client side
//! and its backend side) and one in the backend (this process, which runs the replicas), so the
//! proxy is the process that runs out first; straight to a backend, one on each side. Never
//! raises a hard limit: only the soft one, up to the hard one.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors left for everything but the idle connections in each process (listeners, the
/// runtimes, log files, health checks, io_uring and epoll instances).
pub const SPARE: u64 = 100;

/// The number of idle connections to hold, and why it is not what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// `--connections` as given (or its idle default).
    pub asked: usize,
    /// What every process can hold.
    pub connections: usize,
    /// The open-files limit per process (soft, raised to the hard one).
    pub limit: u64,
    /// Set when `connections < asked`: the numbers, and how to get more.
    pub clamped: Option<String>,
}

/// The budget for `asked` connections under a per-process `limit`; `through_proxy` when a
/// local proxy (two descriptors per connection) is among the paths.
pub fn budget(asked: usize, limit: u64, through_proxy: bool) -> Budget {
    let per = if through_proxy { 2 } else { 1 };
    let fits = (limit.saturating_sub(SPARE) / per) as usize;
    let connections = asked.min(fits);
    let clamped = (connections < asked).then(|| {
        let who = if through_proxy {
            "each proxy (2 per idle connection"
        } else {
            "the client and the backend (1 per idle connection"
        };
        format!(
            "--connections {asked} needs {} descriptors in {who} + {SPARE} spare), but the \
             open-files hard limit is {limit} per process: holding {connections} (raise the hard \
             limit, e.g. `nofile` in /etc/security/limits.conf or `ulimit -Hn` as root, for more)",
            asked as u64 * per + SPARE
        )
    });
    Budget {
        asked,
        connections,
        limit,
        clamped,
    }
}

/// Raises the soft open-files limit to the hard one (children inherit it); returns the soft
/// limit in force afterwards. Best effort.
pub fn raise_open_files() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_needs_two_descriptors_per_connection() {
        let b = budget(10_000, 20_000, true);
        assert_eq!(b.connections, 9_950);
        let why = b.clamped.unwrap();
        assert!(why.contains("needs 20100 descriptors"), "{why}");
        assert!(why.contains("hard limit is 20000"), "{why}");
        assert!(why.contains("holding 9950"), "{why}");
    }

    #[test]
    fn direct_needs_one_and_small_counts_are_untouched() {
        assert_eq!(budget(10_000, 20_000, false).connections, 10_000);
        assert_eq!(budget(10_000, 20_000, false).clamped, None);
        assert_eq!(budget(50, 1024, true).connections, 50);
        assert_eq!(budget(5_000, 1024, true).connections, 462);
        assert_eq!(budget(5, 50, true).connections, 0);
    }

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let soft = raise_open_files();
        let (now, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, now);
        assert_eq!(now, hard);
    }
}
