//! The backends one client has already failed on, so that its retries pick others; shared by
//! both I/O backends. Fixed capacity: a retry never allocates, and never takes a lock.

use std::{net::SocketAddr, sync::Arc};

use crate::{backend::Backend, balancer::Balancer};

/// Most connect attempts one client gets (the first plus at most `MAX_ATTEMPTS - 1` retries).
pub const MAX_ATTEMPTS: usize = 8;

/// The backends tried and failed for one client, in order.
#[derive(Default)]
pub struct Tried {
    failed: [Option<Arc<Backend>>; MAX_ATTEMPTS],
    len: usize,
}

impl Tried {
    /// The balancer's choice for `peer` among the backends not failed yet; `None` when none is
    /// left.
    pub fn pick(&self, balancer: &Balancer, peer: SocketAddr) -> Option<Arc<Backend>> {
        let Some(first) = &self.failed[0] else {
            return balancer.pick(peer);
        };
        // The unused places repeat the first failed backend: a fixed-size list, no allocation.
        let excluded: [&Backend; MAX_ATTEMPTS] =
            std::array::from_fn(|i| self.failed[i].as_deref().unwrap_or(first));
        balancer.pick_excluding_all(peer, &excluded)
    }

    /// Records a failed backend; past [`MAX_ATTEMPTS`] (more attempts than ever made) it is
    /// not kept.
    pub fn push(&mut self, backend: Arc<Backend>) {
        if let Some(place) = self.failed.get_mut(self.len) {
            *place = Some(backend);
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: u8) -> Vec<Arc<Backend>> {
        (1..=n)
            .map(|i| {
                let addr = SocketAddr::from(([127, 0, 0, i], 8000));
                Arc::new(Backend::new(usize::from(i), addr.to_string(), addr))
            })
            .collect()
    }

    #[test]
    fn retries_never_pick_a_failed_backend_until_none_is_left() {
        let all = backends(3);
        let balancer = Balancer::new();
        balancer.publish(all.clone());
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let mut tried = Tried::default();
        for _ in 0..3 {
            let picked = tried.pick(&balancer, peer).expect("a backend is left");
            for _ in 0..10 {
                let again = tried.pick(&balancer, peer).unwrap();
                assert!(!tried.failed.iter().flatten().any(|f| f.addr == again.addr));
            }
            tried.push(picked);
        }
        assert!(
            tried.pick(&balancer, peer).is_none(),
            "every backend failed"
        );
    }

    #[test]
    fn more_failures_than_places_are_dropped_not_a_panic() {
        let mut tried = Tried::default();
        for backend in backends(MAX_ATTEMPTS as u8 + 2) {
            tried.push(backend);
        }
        assert_eq!(tried.len, MAX_ATTEMPTS);
    }
}
