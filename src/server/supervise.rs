//! Noticing a worker thread that ends on its own.
//!
//! Owns what a worker thread's end means for the process. A worker that panics, returns an
//! error, or returns at all while ringlb serves has taken its listener and ring with it: its
//! cause (the panic message or the error) is logged at error level with the worker id and
//! recorded for `/healthz` (503) and `/status`, and the shutdown is triggered, so the other
//! workers drain (`drain_timeout`) and [`crate::Server::wait`] returns the failure: the process
//! exits non-zero and its supervisor (systemd, Kubernetes, Docker) restarts it. A drop guard
//! reports however the thread ends, a panic included. Never restarts a worker in place: a
//! process serving on fewer workers than configured, silently, is worse than a restarted one.

use std::{
    any::Any,
    io,
    panic::{self, AssertUnwindSafe},
    sync::Arc,
};

use crate::{
    metrics::{Metrics, WorkerFailure},
    shutdown::Shutdown,
};

/// Runs worker `id`'s `body` on the current thread and reports its end (see the module doc).
/// A panic in `body` is caught and returned as an error carrying its message.
pub(super) fn run_watched(
    id: usize,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    body: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let mut watch = Watch {
        id,
        shutdown,
        metrics,
        ended: None,
    };
    // The worker's state is dropped with the panic and never looked at again.
    let result = panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(io::Error::other(format!(
            "panicked: {}",
            panic_message(&*payload)
        )))
    });
    watch.ended = Some(match &result {
        Ok(()) => Ended::Returned,
        Err(e) => Ended::Failed(e.to_string()),
    });
    result
}

/// How a worker's body ended, as far as the guard saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    /// It returned `Ok`.
    Returned,
    /// It returned this error, or panicked with this message.
    Failed(String),
}

/// Reports a worker thread's end when dropped.
struct Watch {
    id: usize,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    /// `None` if the thread is unwinding past [`run_watched`]'s catch.
    ended: Option<Ended>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let stopping = self.shutdown.is_triggered();
        let Some(cause) = failure(self.ended.take(), stopping) else {
            return;
        };
        // Recorded before it is logged: whoever reads the log line finds /healthz saying it.
        self.metrics.record_worker_failure(WorkerFailure {
            worker: self.id,
            cause: cause.clone(),
        });
        tracing::error!(worker = self.id, cause = %cause, "worker failed");
        if !stopping {
            tracing::error!(
                worker = self.id,
                "stopping ringlb after a worker failure: the other workers drain, then it \
                 exits non-zero for its supervisor to restart it"
            );
            self.shutdown.trigger();
        }
    }
}

/// Why a worker's end is a failure, or `None` when it is the normal end of a shutdown.
fn failure(ended: Option<Ended>, stopping: bool) -> Option<String> {
    match ended {
        Some(Ended::Returned) if stopping => None,
        Some(Ended::Returned) => Some("stopped serving without a shutdown".to_owned()),
        Some(Ended::Failed(cause)) => Some(cause),
        None => Some("panicked".to_owned()),
    }
}

/// The message of a panic payload: `panic!("...")` carries a `&str` or a `String`.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a panic without a message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::ConnectionLimit;

    fn registry(shutdown: &Shutdown) -> Arc<Metrics> {
        Arc::new(Metrics::new(
            Vec::new(),
            vec![crate::metrics::test_pool("default")],
            vec!["default".into()],
            Arc::new(ConnectionLimit::new(1)),
            shutdown.clone(),
        ))
    }

    #[test]
    fn only_a_return_during_shutdown_is_normal() {
        assert_eq!(failure(Some(Ended::Returned), true), None);
        assert!(failure(Some(Ended::Returned), false).is_some());
        let failed = || Some(Ended::Failed("EBADF".into()));
        assert_eq!(failure(failed(), false).as_deref(), Some("EBADF"));
        assert_eq!(failure(failed(), true).as_deref(), Some("EBADF"));
        assert_eq!(failure(None, false).as_deref(), Some("panicked"));
    }

    #[test]
    fn a_panic_is_caught_recorded_and_stops_the_server() {
        let shutdown = Shutdown::new();
        let metrics = registry(&shutdown);
        let id = 3;
        let result = std::thread::spawn({
            let (shutdown, metrics) = (shutdown.clone(), Arc::clone(&metrics));
            move || run_watched(id, shutdown, metrics, || panic!("ring {} lost", 7))
        })
        .join()
        .expect("the panic does not escape the thread");
        assert_eq!(result.unwrap_err().to_string(), "panicked: ring 7 lost");
        assert!(shutdown.is_triggered(), "the other workers drain");
        let failure = metrics.worker_failure().unwrap();
        assert_eq!(
            failure.to_string(),
            "worker 3 failed: panicked: ring 7 lost"
        );
    }

    #[test]
    fn an_error_while_serving_stops_the_server_and_a_clean_stop_does_not_count() {
        let shutdown = Shutdown::new();
        let metrics = registry(&shutdown);
        let stopped = run_watched(0, shutdown.clone(), Arc::clone(&metrics), || {
            shutdown.trigger();
            Ok(())
        });
        assert!(stopped.is_ok());
        assert!(
            metrics.worker_failure().is_none(),
            "a drained worker is fine"
        );

        let shutdown = Shutdown::new();
        let metrics = registry(&shutdown);
        let err = run_watched(1, shutdown.clone(), Arc::clone(&metrics), || {
            Err(io::Error::from_raw_os_error(libc::EBADF))
        });
        assert!(err.is_err());
        assert!(shutdown.is_triggered());
        assert!(metrics
            .worker_failure()
            .unwrap()
            .cause
            .contains("Bad file descriptor"));
    }
}
