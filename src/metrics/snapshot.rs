//! One look at every pool: each checker's latest report joined with its endpoints' live
//! counters, for one scrape or one `/status`.
//!
//! Owns the join (a target's endpoints by target index and address, within its pool, since two
//! pools may hold targets of the same name). Reads each pool's `ArcSwap`s once; never writes,
//! never waits for a checker.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use crate::{
    backend::Backend,
    health::{PoolHandle, StatusReport},
};

/// Every pool's latest report with its endpoints' live counters, in pool order.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// One entry per pool, in the order of the effective pools.
    pub pools: Vec<PoolSnapshot>,
}

/// What one pool's checker last reported, with each endpoint's live counters.
#[derive(Debug, Clone)]
pub struct PoolSnapshot {
    /// The pool's name.
    pub name: String,
    /// Its checker's latest report.
    pub report: Arc<StatusReport>,
    backends: HashMap<(usize, SocketAddr), Arc<Backend>>,
}

impl Snapshot {
    /// Reads every pool of `pools` now.
    pub(super) fn of(pools: &[PoolHandle]) -> Snapshot {
        Snapshot {
            pools: pools.iter().map(PoolSnapshot::of).collect(),
        }
    }
}

impl PoolSnapshot {
    fn of(pool: &PoolHandle) -> PoolSnapshot {
        let backends = pool.status.backends();
        let backends = backends
            .iter()
            .map(|b| ((b.target, b.addr), Arc::clone(b)))
            .collect();
        PoolSnapshot {
            name: pool.name.clone(),
            report: pool.status.report(),
            backends,
        }
    }

    /// The live counters of endpoint `addr` of target `target` (its index in this pool's
    /// report), if it is still known.
    pub fn backend(&self, target: usize, addr: SocketAddr) -> Option<&Backend> {
        self.backends.get(&(target, addr)).map(Arc::as_ref)
    }
}

/// The handles of a pool named `name` whose checker is gone: its reports are whatever a test
/// stores into `status`, and its reloader answers every change with `Stopped`.
#[cfg(test)]
pub(crate) fn test_pool(name: &str) -> PoolHandle {
    let balancer = Arc::new(crate::balancer::Balancer::new());
    let checker = crate::health::HealthChecker::new(Vec::new(), Default::default(), balancer);
    checker.pool_handle(name)
}
