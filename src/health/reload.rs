//! The health checker's control channel: hot reloads of the parts of the configuration the
//! checker owns (targets, weights, health settings, the balancing strategy) and the runtime
//! API's overrides of one target (its state, its weight), or a whole set of them handed over by
//! an upgrade.
//!
//! The control thread that read the new file, or the admin thread that took a request, sends it
//! here; the checker's thread applies it, so the checker stays the only writer of the balancer.
//! Both kinds travel in one channel, in order, so an override sent after a reload applies to
//! the reloaded targets. Never touches open connections.

use tokio::sync::{mpsc, oneshot};

use super::overrides::{AdminState, Change, Kept, Overrides};
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

/// One runtime API request, and where its outcome goes once applied and published.
#[derive(Debug)]
pub(super) struct Command {
    pub(super) target: String,
    pub(super) change: Change,
    pub(super) done: oneshot::Sender<Result<Applied, ChangeError>>,
}

/// What the checker is asked to do.
#[derive(Debug)]
pub(super) enum Message {
    /// Switch to a reloaded configuration.
    Reload(Update),
    /// Override one target.
    Override(Command),
    /// Take over the overrides another process handed over (an upgrade).
    Restore(Overrides, oneshot::Sender<Kept>),
}

/// A target's overrides once a change was applied and the balancer republished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The target, as configured.
    pub target: String,
    /// Its state now.
    pub state: AdminState,
    /// Its weight in the file.
    pub weight: u32,
    /// Its weight override, if any.
    pub weight_override: Option<u32>,
}

/// Why a runtime change was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// No configured target has that name.
    #[error("no target {0:?} in the running configuration")]
    UnknownTarget(String),
    /// The health checker has stopped (ringlb is stopping).
    #[error("the health checker has stopped")]
    Stopped,
}

/// The checker's end.
pub(super) type Messages = mpsc::UnboundedReceiver<Message>;

/// A handle for sending a reloaded configuration or a runtime override to the checker. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Reloader {
    tx: mpsc::UnboundedSender<Message>,
}

pub(super) fn channel() -> (Reloader, Messages) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Reloader { tx }, rx)
}

impl Reloader {
    /// Asks the checker to switch to these targets, settings and strategy; `false` if the
    /// checker has stopped.
    pub fn reload(&self, targets: Vec<Target>, settings: HealthCheck, balance: Strategy) -> bool {
        let update = Update {
            targets,
            settings,
            balance,
        };
        self.tx.send(Message::Reload(update)).is_ok()
    }

    /// Applies `change` to `target` (as configured, `host:port`). Completes once the checker
    /// applied it and published the balancer's new set, so a connection accepted after it
    /// completes sees the change.
    pub async fn change(&self, target: &str, change: Change) -> Result<Applied, ChangeError> {
        let (done, applied) = oneshot::channel();
        let command = Command {
            target: target.to_owned(),
            change,
            done,
        };
        self.tx
            .send(Message::Override(command))
            .map_err(|_| ChangeError::Stopped)?;
        applied.await.unwrap_or(Err(ChangeError::Stopped))
    }

    /// Takes over `overrides` (handed over by the process this one replaces) where the running
    /// configuration has the same entry for the target; `None` if the checker has stopped.
    pub async fn restore(&self, overrides: Overrides) -> Option<Kept> {
        let (done, kept) = oneshot::channel();
        self.tx.send(Message::Restore(overrides, done)).ok()?;
        kept.await.ok()
    }
}
