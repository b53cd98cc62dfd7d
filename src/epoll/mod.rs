//! The epoll backend: the same thread-per-core worker as [`crate::worker`], for where io_uring
//! is unavailable (Docker's default seccomp profile, gVisor, hardened kernels).
//!
//! Each worker thread runs its own tokio current-thread runtime over its own `SO_REUSEPORT`
//! listener per service (accepted from in turn, so no service starves another), and one local
//! task per connection: its prelude (PROXY header, ClientHello) and route, pick, connect with
//! timeout and retries, the 503 when no backend is left, then relay with half-close and the idle
//! timeout ([`conn`], [`copy`]).
//! On shutdown it stops accepting at once, serves the clients still queued in the listeners,
//! closes the listeners, lets open connections finish until the drain deadline and then closes
//! them. Behaviour matches the io_uring worker; the end-to-end tests run on both.
//!
//! Never shares its state with another thread (workers meet only in the balancer snapshot and
//! atomics), never takes a lock, and never needs `unsafe`: readiness and sockets come from tokio.
#![forbid(unsafe_code)]

mod conn;
mod copy;
mod proxy;
mod replay;
#[cfg(test)]
mod testing;

use std::{
    cell::{Cell, RefCell},
    future::Future,
    io,
    net::{SocketAddr, TcpListener as StdListener},
    rc::Rc,
    sync::Arc,
    task::Poll,
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinSet, LocalSet},
};

use crate::{
    access_log::Sink,
    balancer::Balancer,
    conn::{
        events::{self, ACCEPT_PAUSE},
        passive::Passive,
        settings::{Current, WorkerContext, WorkerSettings},
        source::Sources,
    },
    limit::ConnectionLimit,
    listener,
    metrics::{WorkerCounter, WorkerStats},
    proxy_protocol::MAX_V2_LEN,
    shutdown::Shutdown,
    stats::ServiceCounter,
};

use copy::Buffers;

/// One epoll worker, ready to run on its own thread.
pub struct EpollWorker {
    ctx: WorkerContext,
    shutdown: Shutdown,
}

/// One pool as this worker picks from it.
struct Picking {
    balancer: Arc<Balancer>,
    /// Which failures in traffic count against its backends, and the reports to its checker.
    passive: Passive,
}

/// What every connection task of one worker reads: the worker's settings and handles.
struct Shared {
    id: usize,
    /// One per pool, in the order of the pools.
    pools: Vec<Picking>,
    limit: Arc<ConnectionLimit>,
    /// Each service's published settings; each new connection takes the latest (a reload
    /// changes them).
    settings: Vec<RefCell<Current<WorkerSettings>>>,
    /// The local addresses backend sockets are bound to (`source`).
    sources: Sources,
    /// This worker's event counters (`Relaxed` increments on its own cache line).
    stats: Arc<WorkerStats>,
    /// This worker's relay buffers, borrowed only while bytes are in flight.
    buffers: Buffers,
    /// `retry_on_early_close`: replay buffers of `replay_buffer` bytes.
    replay: Buffers,
    /// `accept_proxy` and SNI routing: buffers for the clients' PROXY headers and the bytes
    /// after them (a larger ClientHello grows its own).
    headers: Buffers,
    /// This worker's queue of access-log records.
    log: Sink,
}

impl EpollWorker {
    /// A worker for `ctx` on the epoll driver, serving until `shutdown` fires.
    pub fn new(ctx: WorkerContext, shutdown: Shutdown) -> EpollWorker {
        EpollWorker { ctx, shutdown }
    }

    /// Runs the worker until shutdown and drain complete, on the calling thread (its state is
    /// built here: it is not `Send`).
    pub fn run(self) -> io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let start = self.ctx.first_settings();
        let WorkerContext {
            id,
            services,
            pools,
            limit,
            source,
            stats,
            access_log,
        } = self.ctx;
        let (listeners, settings): (Vec<_>, Vec<_>) = (services.into_iter())
            .map(|s| {
                (
                    s.listener,
                    RefCell::new(Current::new(s.settings, WorkerSettings::clone)),
                )
            })
            .unzip();
        let shared = Shared {
            id,
            pools: (pools.into_iter())
                .map(|pool| Picking {
                    balancer: pool.balancer,
                    passive: Passive::new(pool.ejector, start.passive_fall, id, Arc::clone(&stats)),
                })
                .collect(),
            limit,
            sources: Sources::new(&source),
            replay: Buffers::new(start.replay_buffer.unwrap_or(0)),
            headers: Buffers::new(MAX_V2_LEN),
            settings,
            stats,
            buffers: Buffers::new(copy::BUFFER_SIZE),
            log: access_log,
        };
        LocalSet::new().block_on(&runtime, serve(shared, listeners, self.shutdown))
    }
}

async fn serve(shared: Shared, listeners: Vec<StdListener>, shutdown: Shutdown) -> io::Result<()> {
    let listeners = (listeners.into_iter())
        .map(TcpListener::from_std)
        .collect::<io::Result<Vec<_>>>()?;
    let shared = Rc::new(shared);
    let mut open = JoinSet::new();
    accept_until_stopped(&shared, listeners, &shutdown, &mut open).await;
    // The listener is closed: the kernel now refuses new clients.
    drain(&shared, &mut open).await;
    events::stopped(shared.id);
    Ok(())
}

/// Accepts on every service's listener and spawns a task per client until `shutdown` fires,
/// then takes the clients still queued in the listeners (`listener::queued` says why none may be
/// left there); pauses at the connection cap (clients wait in the listen backlogs) and briefly
/// after accept errors. Closes the listeners on return.
async fn accept_until_stopped(
    shared: &Rc<Shared>,
    listeners: Vec<TcpListener>,
    shutdown: &Shutdown,
    open: &mut JoinSet<()>,
) {
    let mut paused_until: Option<tokio::time::Instant> = None;
    let mut errors = events::AcceptErrors::default();
    let next = Cell::new(0);
    let stopped = shutdown.wait();
    let mut stopped = std::pin::pin!(stopped);
    loop {
        let now = tokio::time::Instant::now();
        if paused_until.is_none() && !shared.limit.has_room() {
            // Re-checked when one of this worker's connections ends, or after the pause when
            // another worker's did.
            paused_until = Some(now + ACCEPT_PAUSE);
        }
        tokio::select! {
            biased;
            () = &mut stopped => {
                for (service, listener) in listeners.iter().enumerate() {
                    for (client, peer) in listener::queued(listener) {
                        match TcpStream::from_std(client) {
                            Ok(client) => spawn_client(shared, open, service, client, peer),
                            Err(e) => errors.failed(shared.id, &e, shared.limit.open()),
                        }
                    }
                }
                return;
            }
            Some(ended) = open.join_next(), if !open.is_empty() => {
                if let Err(e) = ended {
                    tracing::error!(worker = shared.id, error = %e, "connection task failed");
                }
                paused_until = None;
            }
            _ = tokio::time::sleep_until(paused_until.unwrap_or(now)), if paused_until.is_some() => {
                paused_until = None;
            }
            (service, accepted) = accept_any(&listeners, &next), if paused_until.is_none() => match accepted {
                Ok((client, peer)) => spawn_client(shared, open, service, client, peer),
                Err(e) => {
                    shared.stats.add(WorkerCounter::AcceptError);
                    errors.failed(shared.id, &e, shared.limit.open());
                    paused_until = Some(now + ACCEPT_PAUSE);
                }
            },
        }
    }
}

/// Counts an accepted client of `service` and serves it in a task of its own.
fn spawn_client(
    shared: &Rc<Shared>,
    open: &mut JoinSet<()>,
    service: usize,
    client: TcpStream,
    peer: SocketAddr,
) {
    shared.stats.add(WorkerCounter::Accepted);
    shared.stats.add_service(service, ServiceCounter::Accepted);
    if shared.limit.acquire() {
        shared.stats.add(WorkerCounter::LimitReached);
        events::limit_reached(shared.id, shared.limit.open());
    }
    let counted = conn::Counted::new(Rc::clone(shared));
    open.spawn_local(conn::serve(counted, client, peer, service));
}

/// The next client of any of `listeners`, with the listener's index; polled from the one after
/// the last to accept, so a busy service cannot starve the others.
fn accept_any<'a>(
    listeners: &'a [TcpListener],
    next: &'a Cell<usize>,
) -> impl Future<Output = (usize, io::Result<(TcpStream, SocketAddr)>)> + 'a {
    std::future::poll_fn(move |cx| {
        let count = listeners.len();
        for k in 0..count {
            let index = (next.get() + k) % count;
            if let Poll::Ready(accepted) = listeners[index].poll_accept(cx) {
                next.set((index + 1) % count);
                return Poll::Ready((index, accepted));
            }
        }
        Poll::Pending
    })
}

/// Lets open connections finish until the drain deadline, then closes whatever is left.
async fn drain(shared: &Shared, open: &mut JoinSet<()>) {
    if open.is_empty() {
        return;
    }
    events::stopping(shared.id, open.len());
    let finished = async { while open.join_next().await.is_some() {} };
    // The drain deadline as published now (a reload may have changed it).
    let deadline = shared.settings[0].borrow_mut().get().drain_timeout;
    if tokio::time::timeout(deadline, finished).await.is_err() {
        events::drain_expired(shared.id, open.len());
        // Aborting a task drops its sockets, which closes them.
        open.shutdown().await;
    }
}
