//! Active health checking: probes every target and publishes the healthy set to the balancer.
//!
//! Runs on its own thread with its own current-thread tokio runtime, entirely off the hot path.
//! Never blocks a worker; the only thing it shares with workers is [`Balancer::publish`].

use std::{sync::Arc, thread::JoinHandle};

use crate::{
    balancer::Balancer,
    config::{HealthCheck, Target},
    shutdown::Shutdown,
};

/// Probes targets and keeps the balancer's healthy set up to date.
pub struct HealthChecker {
    #[allow(dead_code)]
    targets: Vec<Target>,
    #[allow(dead_code)]
    settings: HealthCheck,
    #[allow(dead_code)]
    balancer: Arc<Balancer>,
}

impl HealthChecker {
    /// A checker for `targets` that publishes into `balancer`.
    pub fn new(targets: Vec<Target>, settings: HealthCheck, balancer: Arc<Balancer>) -> Self {
        Self {
            targets,
            settings,
            balancer,
        }
    }

    /// Resolves every target once (blocking) and publishes every resolved endpoint as healthy,
    /// so traffic flows from the first accepted connection.
    pub fn prime(&mut self) {}

    /// Runs probe rounds on a new thread until `shutdown` fires; the first round starts at once.
    pub fn spawn(self, _shutdown: Shutdown) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("ringlb-health".into())
            .spawn(|| {})
    }
}
