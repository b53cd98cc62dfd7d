//! A backend replica: a small HTTP/1.1 spells server, run in-process on a tokio runtime.
//!
//! Owns the listener, the shared [`State`] of one replica and the test hooks ([`Replica::pause`],
//! [`Replica::resume`], [`Replica::set_healthy`]). Never blocks a runtime thread and never
//! outlives its handle: dropping a [`Replica`] stops it.
//!
//! API: `GET /spells` (JSON list), `POST /spells` (append one, JSON body), `GET /healthz`
//! (200, or 503 after `set_healthy(false)`), `POST /echo` (streams the body back, for bulk
//! transfers). Keep-alive and pipelining are supported; every response names the replica in an
//! `X-Replica` header.

mod conn;
pub mod http;
mod proxy_header;
pub mod routes;
pub mod spells;
pub mod standalone;

use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{net::TcpListener, runtime::Handle, sync::watch};

use spells::SpellBook;

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// What one replica's connections share.
#[derive(Debug)]
pub struct State {
    /// The replica's name, sent in `X-Replica`.
    pub name: String,
    /// The spells it serves.
    pub spells: SpellBook,
    healthy: AtomicBool,
    served: AtomicU64,
    open: AtomicU64,
    paused: watch::Sender<bool>,
    stopped: watch::Sender<bool>,
}

impl State {
    fn new(name: &str) -> State {
        State {
            name: name.to_owned(),
            spells: SpellBook::seeded(),
            healthy: AtomicBool::new(true),
            served: AtomicU64::new(0),
            open: AtomicU64::new(0),
            paused: watch::Sender::new(false),
            stopped: watch::Sender::new(false),
        }
    }

    /// Whether `/healthz` answers 200.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// A running replica; dropping it stops the listener and closes its connections.
#[derive(Debug)]
pub struct Replica {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Replica {
    /// Serves on an already bound listener, spawning onto `runtime`.
    pub fn start(
        listener: std::net::TcpListener,
        name: &str,
        runtime: &Handle,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _entered = runtime.enter();
            // std listens with a backlog of 128: a proxy opening thousands of backend
            // connections at once (idle mode) would see SYNs dropped and retried for seconds.
            // Listening again on the same socket raises the backlog (Linux caps it at
            // net.core.somaxconn); tokio's TcpSocket takes the socket as a plain std stream.
            let socket = std::net::TcpStream::from(std::os::fd::OwnedFd::from(listener));
            tokio::net::TcpSocket::from_std_stream(socket).listen(BACKLOG)?
        };
        let state = Arc::new(State::new(name));
        runtime.spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Replica { addr, state })
    }

    /// Binds `addr` (use port 0 for any free port) and serves on the current runtime.
    pub async fn bind(addr: SocketAddr, name: &str) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        Replica::start(listener, name, &Handle::current())
    }

    /// The address the replica listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The replica's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Requests answered so far (every route, every status).
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::Relaxed)
    }

    /// Connections open right now (accepted and not yet closed).
    pub fn open_connections(&self) -> u64 {
        self.state.open.load(Ordering::Relaxed)
    }

    /// Holds every response from now on until [`Replica::resume`] (a stalled server). Requests
    /// are still read and queued; nothing is answered.
    pub fn pause(&self) {
        self.state.paused.send_replace(true);
    }

    /// Answers again, starting with everything held while paused.
    pub fn resume(&self) {
        self.state.paused.send_replace(false);
    }

    /// Makes `GET /healthz` answer 200 (`true`) or 503 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Stops accepting and closes every connection (also done on drop).
    pub fn stop(&self) {
        self.state.stopped.send_replace(true);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut stopped = state.stopped.subscribe();
    loop {
        tokio::select! {
            () = until_stopped(&mut stopped) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(conn::serve(stream, Arc::clone(&state)));
                }
                // Out of descriptors or a connection reset before accept: back off, go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Returns once the replica is stopped (or its state is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}
