//! The admin HTTP listener: `GET /metrics` (Prometheus text), `GET /status` (JSON) and
//! `GET /healthz` (200 while ringlb accepts traffic, 503 while it drains).
//!
//! Owns the admin socket and its thread, `ringlb-admin`, with its own current-thread tokio
//! runtime: pure control plane. It keeps serving through the drain (so an orchestrator sees
//! `/healthz` turn 503) and stops only when the server has finished ([`AdminServer::stop`],
//! called by [`crate::Server::wait`]). Never touches a worker, never holds a lock a worker could
//! take, never lets a slow or hostile client hold more than [`MAX_CLIENTS`] sockets for longer
//! than [`CLIENT_DEADLINE`].

pub(crate) mod http;
pub mod probe;
mod status;

use std::{
    io,
    net::SocketAddr,
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::{net::TcpStream, sync::Semaphore};
use tracing::{debug, warn};

use crate::{metrics::Metrics, shutdown::Shutdown};
use http::{ReadError, Request, Response};

/// Admin connections served at once; more are closed at once.
pub const MAX_CLIENTS: usize = 64;
/// The longest one admin exchange (request and response) may take.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (descriptors exhausted), so the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: Shutdown,
    thread: JoinHandle<()>,
}

/// Binds the admin socket: done before the workers start, so a taken port is a start-up error.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl AdminServer {
    /// Serves `metrics` on `listener` from a new thread until [`AdminServer::stop`].
    pub fn spawn(listener: std::net::TcpListener, metrics: Arc<Metrics>) -> io::Result<Self> {
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
                        Ok(listener) => serve(listener, metrics, stopped).await,
                        Err(e) => warn!(error = %e, "admin listener unusable; admin disabled"),
                    }
                });
                debug!("admin listener stopped");
            })?;
        Ok(Self { addr, stop, thread })
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

async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>, stop: Shutdown) {
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.wait() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    last_warning = Some(Instant::now());
                    warn!(error = %e, "admin accept failed; pausing");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        // Over the cap the socket is dropped (closed) at once.
        let Ok(permit) = Arc::clone(&clients).try_acquire_owned() else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_DEADLINE, exchange(stream, &metrics)).await;
            drop(permit);
        });
    }
}

/// Reads one request, answers it, closes.
async fn exchange(mut stream: TcpStream, metrics: &Metrics) {
    let (response, head_only) = match http::read_request(&mut stream).await {
        Ok(request) => (route(&request, metrics), request.is_head()),
        Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
        Err(e @ ReadError::TooLarge) => (Response::text(431, &format!("{e}\n")), false),
        Err(e @ ReadError::Malformed(_)) => (Response::text(400, &format!("{e}\n")), false),
    };
    if let Err(e) = response.send(&mut stream, head_only).await {
        debug!(error = %e, "admin response not delivered");
    }
}

/// The answer to `request`.
fn route(request: &Request, metrics: &Metrics) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(405, "only GET and HEAD\n");
    }
    match request.path.as_str() {
        "/metrics" => Response::ok(crate::metrics::CONTENT_TYPE, metrics.encode()),
        "/status" => Response::ok("application/json", status::render(metrics)),
        "/healthz" if metrics.draining() => Response::text(503, "draining\n"),
        "/healthz" => Response::text(200, "ok\n"),
        _ => Response::text(404, "not found; try /metrics, /status or /healthz\n"),
    }
}
