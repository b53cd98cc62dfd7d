//! Hot reload of the parts of the configuration the health checker owns: targets, weights,
//! health settings and the balancing strategy.
//!
//! The control thread that read the new file sends it here; the checker's thread applies it, so
//! the checker stays the only writer of the balancer. Never touches open connections.

use tokio::sync::mpsc;

use crate::{
    balancer::Strategy,
    config::{HealthCheck, Target},
};

/// A reloaded configuration, as far as the checker is concerned.
#[derive(Debug)]
pub(super) struct Update {
    pub(super) targets: Vec<Target>,
    pub(super) settings: HealthCheck,
    pub(super) balance: Strategy,
}

/// The checker's end.
pub(super) type Reloads = mpsc::UnboundedReceiver<Update>;

/// A handle for sending a reloaded configuration to the checker. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reloader {
    tx: mpsc::UnboundedSender<Update>,
}

pub(super) fn channel() -> (Reloader, Reloads) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Reloader { tx }, rx)
}

impl Reloader {
    /// Asks the checker to switch to these targets, settings and strategy; `false` if the
    /// checker has stopped.
    pub fn reload(&self, targets: Vec<Target>, settings: HealthCheck, balance: Strategy) -> bool {
        self.tx
            .send(Update {
                targets,
                settings,
                balance,
            })
            .is_ok()
    }
}
