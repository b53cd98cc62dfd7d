//! Process-wide shutdown signal, observable from every kind of thread.
//!
//! Owns the "stop now" flag and the ways to wake whoever is waiting for it: async control-plane
//! tasks await [`Shutdown::wait`]; io_uring workers keep a read armed on an eventfd from
//! [`Shutdown::eventfd`]. Triggering is idempotent and never blocks.

use std::{
    io,
    os::fd::OwnedFd,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

use crate::uring::sys;

/// A cloneable handle to one shutdown signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fired: watch::Sender<bool>,
    // Control plane only: registered once per worker, read once at trigger.
    eventfds: Mutex<Vec<Arc<OwnedFd>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                fired: watch::Sender::new(false),
                eventfds: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Fires the signal: wakes every waiter and every registered eventfd.
    pub fn trigger(&self) {
        self.inner.fired.send_replace(true);
        let fds = self
            .inner
            .eventfds
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for fd in fds.iter() {
            sys::eventfd_signal(fd);
        }
    }

    /// Whether [`Shutdown::trigger`] has been called.
    pub fn is_triggered(&self) -> bool {
        *self.inner.fired.borrow()
    }

    /// Completes once the signal fires (at once if it already has).
    pub async fn wait(&self) {
        let mut rx = self.inner.fired.subscribe();
        // The sender lives in `self`, so `wait_for` can only end by seeing `true`.
        let _ = rx.wait_for(|fired| *fired).await;
    }

    /// A new eventfd that becomes readable when the signal fires (at once if it already has).
    pub fn eventfd(&self) -> io::Result<Arc<OwnedFd>> {
        let fd = Arc::new(sys::eventfd()?);
        let mut fds = self
            .inner
            .eventfds
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        fds.push(Arc::clone(&fd));
        drop(fds);
        if self.is_triggered() {
            sys::eventfd_signal(&fd);
        }
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_becomes_readable_on_trigger() {
        let s = Shutdown::new();
        let fd = s.eventfd().unwrap();
        assert!(!sys::eventfd_take(&fd), "not readable before trigger");
        s.trigger();
        assert!(s.is_triggered());
        assert!(sys::eventfd_take(&fd));
        // Late registration after the trigger is readable at once.
        let late = s.eventfd().unwrap();
        assert!(sys::eventfd_take(&late));
    }

    #[tokio::test]
    async fn wait_returns_after_trigger() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.wait().await });
        s.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
