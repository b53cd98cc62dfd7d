//! Fault injection for the end-to-end tests; compiled only in debug builds.
//!
//! `RINGLB_DEBUG_PANIC_WORKER=<id>` makes worker `<id>` panic instead of serving, as soon as
//! ringlb has accepted its first client (on another worker, since this one never accepts): a
//! test can then keep that connection open through the drain that follows. Owns
//! nothing else; never compiled into a release build, so no environment can crash a
//! production ringlb this way.

use std::time::Duration;

use crate::{
    metrics::{Metrics, WorkerCounter},
    shutdown::Shutdown,
};

/// The variable naming the worker to panic.
const PANIC_WORKER: &str = "RINGLB_DEBUG_PANIC_WORKER";

/// Panics if [`PANIC_WORKER`] names worker `id`, once `metrics` count an accepted client;
/// returns if it does not, or if `shutdown` fires first.
pub(super) fn maybe_panic(id: usize, metrics: &Metrics, shutdown: &Shutdown) {
    let chosen = std::env::var(PANIC_WORKER).ok();
    if chosen.and_then(|v| v.trim().parse::<usize>().ok()) != Some(id) {
        return;
    }
    tracing::warn!(
        worker = id,
        "{PANIC_WORKER}: this worker panics once a client is connected"
    );
    // A count that only grows, so a client served and gone between two looks is not missed.
    // It has no waker; polling it is fine for a test hook.
    while metrics.total(WorkerCounter::Accepted) == 0 {
        if shutdown.is_triggered() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{PANIC_WORKER}={id}: injected panic");
}
