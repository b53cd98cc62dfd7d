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
    /// Run once, first thing, when the signal fires.
    hooks: Mutex<Vec<Hook>>,
}

/// Something to do the moment the signal fires.
struct Hook(Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hook")
    }
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
                hooks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Fires the signal: wakes every waiter and every registered eventfd.
    pub fn trigger(&self) {
        let hooks =
            std::mem::take(&mut *self.inner.hooks.lock().unwrap_or_else(|e| e.into_inner()));
        for hook in hooks {
            (hook.0)();
        }
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

    /// Runs `hook` when the signal fires, before anyone is woken (at once if it already has):
    /// for what must be undone before the workers stop, such as extra descriptors of the
    /// listeners that would keep them open.
    pub fn on_trigger(&self, hook: impl FnOnce() + Send + 'static) {
        if self.is_triggered() {
            return hook();
        }
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Hook(Box::new(hook)));
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
