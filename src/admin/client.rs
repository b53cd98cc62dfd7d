//! One admin connection from accept to close, and the table of slots all of them share.
//!
//! Owns a connection's two deadlines (its request, head and body of a few bytes, within
//! [`Limits::head`], the whole exchange within [`Limits::exchange`], both counted from accept),
//! its eviction (a connection still waiting for its request is closed when a newer one needs
//! its slot), and giving its slot back however it ends: [`Ticket`] is a drop guard, so a
//! connection that is evicted, times out, fails or is dropped with the runtime frees its slot
//! too. Never answers more than one request, never blocks the accept loop.

use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::{
    net::TcpStream,
    sync::{oneshot, Notify},
    time::Instant,
};
use tracing::debug;

use super::{
    http::{self, ReadError, Request, Response},
    slots::{Admission, Id, Slots, Waiting},
    Limits,
};

/// The slots of one admin listener, shared by its accept loop and its connections.
#[derive(Debug)]
pub(super) struct Clients {
    slots: Mutex<Slots<oneshot::Sender<()>>>,
    /// Signalled whenever a slot is freed, for an accept loop that found them all answering.
    freed: Notify,
}

/// A connection's hold on its slot; frees it when dropped.
#[derive(Debug)]
pub(super) struct Ticket {
    clients: Arc<Clients>,
    id: Id,
    /// Completes (with an error) when the slot was taken away to make room.
    evicted: oneshot::Receiver<()>,
    answering: bool,
}

/// What [`Clients::admit`] gave.
#[derive(Debug)]
pub(super) enum Admitted {
    /// A slot; when `made_room`, an older connection that had sent no request was closed for it.
    Slot {
        /// The new connection's slot.
        ticket: Ticket,
        /// Whether an older connection was evicted.
        made_room: bool,
    },
    /// Every slot is answering a request; wait for [`Clients::freed`] and try again.
    Full,
}

impl Clients {
    /// Slots for `cap` connections.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Mutex::new(Slots::new(cap)),
            freed: Notify::new(),
        })
    }

    fn slots(&self) -> MutexGuard<'_, Slots<oneshot::Sender<()>>> {
        // Only this thread's tasks take the lock, and none panics holding it.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection accepted just now, closing the oldest connection still waiting
    /// for its request head if every slot is taken.
    pub fn admit(self: &Arc<Self>) -> Admitted {
        let (cancel, evicted) = oneshot::channel();
        let admission = self.slots().admit(std::time::Instant::now(), cancel);
        match admission {
            Admission::Full(_) => Admitted::Full,
            Admission::Admitted { id, evicted: gone } => {
                let made_room = gone.is_some();
                if let Some(Waiting { accepted, cancel }) = gone {
                    debug!(waited = ?accepted.elapsed(), "admin: closing the oldest connection without a request to make room");
                    // Dropping the sender wakes that connection's task, which closes.
                    drop(cancel);
                }
                let ticket = Ticket {
                    clients: Arc::clone(self),
                    id,
                    evicted,
                    answering: false,
                };
                Admitted::Slot { ticket, made_room }
            }
        }
    }

    /// Completes once some slot was freed since the last call (perhaps already).
    pub async fn freed(&self) {
        self.freed.notified().await;
    }
}

impl Ticket {
    /// The request head is complete: the connection can no longer be evicted. `false` if it
    /// was evicted already.
    fn start_answer(&mut self) -> bool {
        self.answering = self.clients.slots().start_answer(self.id);
        self.answering
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.clients.slots().release(self.id, self.answering);
        self.clients.freed.notify_one();
    }
}

/// Serves one connection accepted at `accepted`: reads its request, answers it with `route`
/// (whose answer is awaited within the exchange deadline), closes; gives up at the first
/// deadline or when evicted.
pub(super) async fn serve<F>(
    mut stream: TcpStream,
    accepted: Instant,
    mut ticket: Ticket,
    limits: Limits,
    route: impl FnOnce(Request) -> F,
) where
    F: Future<Output = Response>,
{
    let exchange = async {
        let read = tokio::select! {
            biased;
            _ = &mut ticket.evicted => return,
            read = tokio::time::timeout_at(accepted + limits.head, http::read_request(&mut stream)) => read,
        };
        let Ok(read) = read else {
            debug!(deadline = ?limits.head, "admin: no request head in time; closing");
            return;
        };
        if matches!(read, Err(ReadError::Closed | ReadError::Io(_))) || !ticket.start_answer() {
            return;
        }
        let (response, head_only) = match read {
            Ok(request) => {
                let head_only = request.is_head();
                (route(request).await, head_only)
            }
            Err(e @ ReadError::TooLarge) => (Response::text(431, &format!("{e}\n")), false),
            Err(e @ ReadError::BodyTooLarge) => (Response::text(413, &format!("{e}\n")), false),
            Err(e) => (Response::text(400, &format!("{e}\n")), false),
        };
        if let Err(e) = response.send(&mut stream, head_only).await {
            debug!(error = %e, "admin response not delivered");
        }
    };
    // A client that stops reading a large answer holds its slot no longer than this either.
    if tokio::time::timeout_at(accepted + limits.exchange, exchange)
        .await
        .is_err()
    {
        debug!(deadline = ?limits.exchange, "admin: exchange not finished in time; closing");
    }
    drop(ticket);
}
