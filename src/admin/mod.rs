//! The admin HTTP listener: `GET /metrics` (Prometheus text), `GET /status` (JSON) and
//! `GET /healthz` (200 while ringlb accepts traffic, 503 while it drains or after a worker
//! failed), and the runtime API (`POST /targets/<target>/state` and `/weight`, with
//! `?pool=<name>` where several pools hold the target, behind a bearer token; see [`api`]),
//! which `ringlb ctl` ([`ctl`]) wraps for the shell.
//!
//! Owns the admin socket and its thread, `ringlb-admin`, with its own current-thread tokio
//! runtime: pure control plane. It keeps serving through the drain (so an orchestrator sees
//! `/healthz` turn 503) and stops only when the server has finished ([`AdminServer::stop`],
//! called by [`crate::Server::wait`]). Built to answer while attacked: at most [`MAX_CLIENTS`]
//! connections at once, each with [`HEAD_DEADLINE`] to send its request and
//! [`CLIENT_DEADLINE`] for the whole exchange, and at the cap the oldest connection that has
//! sent no request is closed to make room ([`client`], [`slots`]), so a flood of idle
//! connections cannot lock a health probe out. The runtime API lives under the same bounds: its
//! body is a few bytes read with the head, its wait for the health checker is bounded. Never
//! touches a worker, never holds a lock a worker could take.

pub mod api;
mod client;
pub mod ctl;
pub(crate) mod http;
pub mod probe;
mod select;
mod slots;
mod status;
#[cfg(test)]
mod tests;
pub mod token;

use std::{
    future::Future,
    io,
    net::SocketAddr,
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, warn};

use crate::{metrics::Metrics, shutdown::Shutdown};
pub use api::RuntimeApi;
use client::{Admitted, Clients, Ticket};
use http::{Request, Response};

/// Admin connections served at once. Far more than an idle attacker cheaply holds once each
/// must send its request within [`HEAD_DEADLINE`] (over 2,000 new connections a second), and
/// still bounded: each costs a descriptor, a small task and, once bytes arrive, an 8 KiB buffer.
pub const MAX_CLIENTS: usize = 1024;
/// The longest a connection may take, from accept, to send its whole request head. Health
/// probes and scrapers send theirs right after the handshake, which is over by the accept, so
/// even a slow network barely eats into this; a client silent for this long is an attacker or
/// broken, and holding its slot for the whole [`CLIENT_DEADLINE`] is what let 64 idle
/// connections lock every probe out.
pub const HEAD_DEADLINE: Duration = Duration::from_millis(500);
/// The longest one admin exchange (request and response) may take, from accept: also bounds a
/// client that sends a request and then never reads the answer.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (descriptors exhausted), so the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The admin listener's accept backlog: a burst of connections waits in the kernel for the
/// accept loop (which never waits for a client) instead of having its SYNs dropped.
const BACKLOG: i32 = 1024;

/// The bounds one admin listener keeps; [`Limits::DEFAULT`] in production, smaller in tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections at once ([`MAX_CLIENTS`]).
    pub cap: usize,
    /// Time from accept to a complete request head ([`HEAD_DEADLINE`]).
    pub head: Duration,
    /// Time from accept to the end of the exchange ([`CLIENT_DEADLINE`]).
    pub exchange: Duration,
}

impl Limits {
    /// The production bounds.
    pub const DEFAULT: Limits = Limits {
        cap: MAX_CLIENTS,
        head: HEAD_DEADLINE,
        exchange: CLIENT_DEADLINE,
    };
}

/// A running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: Shutdown,
    thread: JoinHandle<()>,
}

/// Binds the admin socket: done before the workers start, so a taken port is a start-up error.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std's `TcpListener::bind` does: a restarted ringlb rebinds while the old one's
    // connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

impl AdminServer {
    /// Serves `metrics` and the runtime `api` on `listener` from a new thread until
    /// [`AdminServer::stop`].
    pub fn spawn(
        listener: std::net::TcpListener,
        metrics: Arc<Metrics>,
        api: RuntimeApi,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stop = Shutdown::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ringlb-admin".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let route = move |request: Request| {
                                let (metrics, api) = (Arc::clone(&metrics), api.clone());
                                async move { route(request, &metrics, &api).await }
                            };
                            serve(listener, stopped, Limits::DEFAULT, route).await
                        }
                        Err(e) => warn!(error = %e, "admin listener unusable; admin disabled"),
                    }
                });
                debug!("admin listener stopped");
            })?;
        Ok(Self { addr, stop, thread })
    }

    /// A handle that stops this listener (an upgrade's successor takes its socket over).
    pub fn stop_handle(&self) -> Shutdown {
        self.stop.clone()
    }

    /// The address the admin listener is bound to (with the real port when 0 was configured).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread; requests in progress are dropped.
    pub fn stop(self) {
        self.stop.trigger();
        let _ = self.thread.join();
    }
}

/// Accepts until `stop`, giving every connection a slot (making room if need be) and a task of
/// its own that answers with `route`.
async fn serve<R, F>(listener: tokio::net::TcpListener, stop: Shutdown, limits: Limits, route: R)
where
    R: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let route = Arc::new(route);
    let clients = Clients::new(limits.cap);
    let mut accept_failures = Sparse::default();
    let mut evictions = Sparse::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.wait() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                if let Some(more) = accept_failures.note() {
                    warn!(error = %e, also_failed = more, "admin accept failed; pausing");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let accepted = tokio::time::Instant::now();
        let Some(ticket) = slot(&clients, &stop, &mut evictions, limits.cap).await else {
            return;
        };
        let route = Arc::clone(&route);
        tokio::spawn(client::serve(
            stream,
            accepted,
            ticket,
            limits,
            move |request| route(request),
        ));
    }
}

/// A slot for the connection accepted just now, closing the oldest connection without a
/// request if need be; `None` if `stop` fires while every slot is answering a request.
async fn slot(
    clients: &Arc<Clients>,
    stop: &Shutdown,
    evictions: &mut Sparse,
    cap: usize,
) -> Option<Ticket> {
    loop {
        match clients.admit() {
            Admitted::Slot { ticket, made_room } => {
                if made_room {
                    if let Some(more) = evictions.note() {
                        warn!(cap, also_closed = more,
                            "admin connections at the cap: closed the oldest one that sent no request");
                    }
                }
                return Some(ticket);
            }
            // Every slot answers a request, each done within the exchange deadline: this
            // connection waits for the first to finish (newer clients wait in the backlog).
            Admitted::Full => tokio::select! {
                biased;
                () = stop.wait() => return None,
                () = clients.freed() => {}
            },
        }
    }
}

/// Rate-limits a warning to one a second, counting the occurrences it leaves out.
#[derive(Debug, Default)]
struct Sparse {
    last: Option<Instant>,
    left_out: u64,
}

impl Sparse {
    /// Something happened: `Some(left out since the last warning)` when it may be logged now.
    fn note(&mut self) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.left_out += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.left_out))
    }
}

/// The answer to `request`.
async fn route(request: Request, metrics: &Metrics, api: &RuntimeApi) -> Response {
    match request.path.strip_prefix(api::PREFIX) {
        Some(rest) => api::serve(&request, rest, api).await,
        None => read_only(&request, metrics),
    }
}

/// The answer to a request for anything but the runtime API.
fn read_only(request: &Request, metrics: &Metrics) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(405, "only GET and HEAD\n");
    }
    match request.path.as_str() {
        "/metrics" => Response::ok(crate::metrics::CONTENT_TYPE, metrics.encode()),
        "/status" => Response::ok("application/json", status::render(metrics)),
        "/healthz" => match metrics.worker_failure() {
            Some(failure) => Response::text(503, &format!("{failure}; stopping\n")),
            None if metrics.draining() => Response::text(503, "draining\n"),
            None => Response::text(200, "ok\n"),
        },
        _ => Response::text(
            404,
            "not found; try /metrics, /status or /healthz (the runtime API is under /targets/)\n",
        ),
    }
}
