//! One client of the epoll backend, from accept to close: pick a backend, bind to a `source`
//! address when there is one, connect with a timeout, move on to another backend when the connect fails (reporting the failed one to the
//! health checker) or, with `retry_on_early_close`, when it closes before answering; the exact
//! 503 when none is left, then the relay.
//!
//! Counting is tied to ownership: a client's place under `max_connections` and a backend's
//! active count are given back when their guards drop, so a task aborted at the drain deadline
//! leaves no count behind.

use std::{
    cell::Cell,
    io,
    net::SocketAddr,
    ops::Deref,
    os::fd::AsRawFd,
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::AsyncWriteExt,
    net::{TcpSocket, TcpStream},
};

use super::{
    copy,
    proxy::Prelude,
    replay::{Phase, Replay},
    Picking, Shared,
};
use crate::{
    access_log::{Sink, Termination},
    backend::Backend,
    config::OnNoBackend,
    conn::settings::WorkerSettings,
    conn::{
        ending::{Close, Side},
        passive::{EarlyClose, Passive},
    },
    conn::{
        events,
        header::HeaderRefused,
        reject::{Rejection, LINGER},
        routing::{self, PreludeRefused},
        source::Sources,
        tally::{self, Tally},
        tried::Tried,
    },
    metrics::WorkerCounter,
    stats::ServiceCounter,
    uring::sys,
};

/// A client counted under `max_connections`; its place is given back on drop.
pub(super) struct Counted(Rc<Shared>);

impl Counted {
    /// Takes over a place the accept loop already counted with [`ConnectionLimit::acquire`].
    ///
    /// [`ConnectionLimit::acquire`]: crate::limit::ConnectionLimit::acquire
    pub(super) fn new(shared: Rc<Shared>) -> Counted {
        Counted(shared)
    }
}

impl Deref for Counted {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.limit.release();
    }
}

/// A backend counting this connection as active, from the pick (so least-connections sees a
/// burst of new clients) until the connect fails or the connection closes.
struct Opened(Arc<Backend>);

impl Opened {
    fn new(backend: Arc<Backend>) -> Opened {
        backend.connection_opened();
        Opened(backend)
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// A connection's access-log line in the making; pushed when it drops, so a task aborted at
/// the drain deadline is logged too (as `drained`). Holds nothing when the log was off at the
/// accept.
pub(super) struct Logged<'a> {
    sink: &'a Sink,
    tally: Cell<Option<Tally>>,
    client: Cell<SocketAddr>,
    /// Connects started.
    attempts: Cell<u32>,
    /// Bytes delivered per direction (counted whether or not the log is on: two additions).
    bytes: Cell<[u64; 2]>,
}

impl<'a> Logged<'a> {
    pub(super) fn new(sink: &'a Sink, client: SocketAddr, service: usize) -> Logged<'a> {
        let tally = || Tally::new(Instant::now(), service as u16);
        Logged {
            tally: Cell::new(sink.on().then(tally)),
            sink,
            client: Cell::new(client),
            attempts: Cell::new(0),
            bytes: Cell::new([0; 2]),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Tally)) {
        if let Some(mut tally) = self.tally.get() {
            change(&mut tally);
            self.tally.set(Some(tally));
        }
    }

    /// The connection ends because of `termination` (the first reason given is kept).
    pub(super) fn ends(&self, termination: Termination) {
        self.update(|t| t.ends(termination));
    }
}

impl Drop for Logged<'_> {
    fn drop(&mut self) {
        if let Some(mut tally) = self.tally.take() {
            tally.add(self.bytes.get());
            let retries = self.attempts.get().saturating_sub(1);
            let now = Instant::now();
            let record = tally.record(self.client.get(), retries, Termination::Drained, now);
            self.sink.push(record);
        }
    }
}

/// Serves one accepted client until both sides are closed.
pub(super) async fn serve(
    shared: Counted,
    mut client: TcpStream,
    peer: SocketAddr,
    service: usize,
) {
    let logged = Logged::new(&shared.log, peer, service);
    // The settings this connection keeps to its end, whatever a reload publishes meanwhile.
    let settings = shared.settings[service].borrow_mut().get();
    let routing = &settings.routing;
    let (prelude, routed) = if !routing.reads_prelude(settings.accept_proxy) {
        (Prelude::none(), routing.without_hello())
    } else {
        match Prelude::read(&shared.headers, &client, settings.accept_proxy, routing).await {
            Ok(read) => read,
            Err(PreludeRefused::Header(why)) => {
                logged.ends(Termination::ProxyHeaderRefused);
                return refuse_header(&shared, why);
            }
            Err(PreludeRefused::Hello(why)) => {
                logged.ends(Termination::TlsHelloRefused);
                shared
                    .stats
                    .add_service(service, ServiceCounter::TlsHelloRefused);
                return routing::hello_refused(shared.id, &why);
            }
        }
    };
    logged.update(|t| t.routed(routed.pool, routed.sni));
    if routed.by_route {
        shared.stats.add_service(service, ServiceCounter::Routed);
    }
    let pool = routed.pool.and_then(|p| shared.pools.get(p as usize));
    if let Some(pool) = pool {
        // The running passive_fall (a reload may have changed it).
        pool.passive.set_fall(settings.passive_fall);
    }
    let peer = prelude.client().unwrap_or(peer);
    logged.client.set(peer);
    let mut replay = settings
        .replay_buffer
        .map(|len| Replay::new(shared.replay.take_len(len)));
    let mut pending = Pending {
        client: &client,
        peer,
        prelude: &prelude,
        replay: replay.as_mut(),
        settings: &settings,
        logged: &logged,
    };
    let connected = match pool {
        Some(pool) => connect(&shared, pool, &mut pending).await,
        None => Ok(None),
    };
    // The header and replay buffers go back to their pools before the relay starts.
    drop((prelude, replay));
    let (mut server, opened) = match connected {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            logged.ends(tally::rejected(logged.attempts.get()));
            shared.stats.add_service(service, ServiceCounter::NoBackend);
            // Logged before the answer, as the io_uring driver does.
            drop(logged);
            return reject(&shared, client, settings.on_no_backend).await;
        }
        // The client failed or went idle in the replay phase.
        Err(e) => return ended(&shared, &logged, e, Termination::ClientReset),
    };
    let idle = settings.idle_timeout;
    let count = copy::Delivered {
        backend: &opened.0,
        worker: shared.id,
        bytes: &logged.bytes,
    };
    match copy::relay(&shared.buffers, &mut client, &mut server, idle, count).await {
        Ok(close) => {
            events::ended(shared.id, close);
            logged.ends(tally::termination(close));
            if let Close::Reset { reset, .. } = close {
                let (survivor, _failed) = match reset {
                    Side::Client => (client, server),
                    Side::Backend => (server, client),
                };
                copy::reset_when_drained(survivor).await;
            }
        }
        Err(e) => ended(&shared, &logged, e, Termination::InternalError),
    }
    // Dropping both streams closes them.
}

/// Closes a client whose PROXY header was refused: nothing of it reaches a backend.
fn refuse_header(shared: &Shared, why: HeaderRefused) {
    shared.stats.add(WorkerCounter::ProxyHeaderRefused);
    events::header_refused(shared.id, &why);
}

/// Logs why a connection is being closed: an idle timeout, or `otherwise` in the access log.
fn ended(shared: &Shared, logged: &Logged<'_>, error: io::Error, otherwise: Termination) {
    if error.kind() == io::ErrorKind::TimedOut {
        events::idle_timeout(shared.id);
        logged.ends(Termination::IdleTimeout);
    } else {
        logged.ends(otherwise);
        events::failed(shared.id, &error);
    }
}

/// Connects to a backend not tried yet for this client, up to the configured attempts, sends
/// it the prelude (PROXY header, client bytes after the client's header) and runs the replay
/// phase on it when `retry_on_early_close` is on. `None` when no backend is left (the client
/// gets the no-backend answer); an error when the client failed or went idle meanwhile, or the
/// prelude could not be sent (close both).
async fn connect(
    shared: &Shared,
    pool: &Picking,
    pending: &mut Pending<'_, '_>,
) -> io::Result<Option<(TcpStream, Opened)>> {
    let mut failed = Tried::default();
    let settings = pending.settings;
    for attempt in 1..=settings.attempts() {
        if attempt > 1 {
            shared.stats.add(WorkerCounter::Retry);
        }
        let Some(backend) = failed.pick(&pool.balancer, pending.peer) else {
            return Ok(None);
        };
        let socket = match backend_socket(&backend, &shared.sources, shared.id) {
            Ok(socket) => socket,
            Err(e) => {
                events::no_backend_socket(shared.id, &e);
                return Ok(None);
            }
        };
        let opened = Opened::new(backend);
        let logged = pending.logged;
        logged.attempts.set(attempt as u32);
        logged.update(|t| t.trying(opened.0.addr));
        let connecting = socket.connect(opened.0.addr);
        // A backend that never answers the SYN must not hold the client for the kernel's
        // two-minute SYN retry budget.
        let failure = match tokio::time::timeout(settings.connect_timeout, connecting).await {
            Ok(Ok(server)) => {
                logged.update(|t| t.connected(Instant::now()));
                let idle = settings.idle_timeout;
                match pending
                    .handshake(&pool.passive, idle, &server, &opened.0)
                    .await?
                {
                    Handshake::Committed => return Ok(Some((server, opened))),
                    Handshake::Retry => None,
                }
            }
            Ok(Err(e)) => Some(e.raw_os_error().unwrap_or(libc::EIO)),
            Err(_) => Some(libc::ETIMEDOUT),
        };
        let backend = Arc::clone(&opened.0);
        drop(opened);
        if let Some(errno) = failure {
            pool.passive.connect_failed(&backend, errno, attempt as u8);
        }
        failed.push(backend);
    }
    Ok(None)
}

/// How the time between a backend's connect and the relay ended.
#[derive(Debug)]
enum Handshake {
    /// Relay with this backend.
    Committed,
    /// The backend went away before it answered (`retry_on_early_close`; the passive-health
    /// verdict is taken): try another.
    Retry,
}

/// What a client brings to each backend it is tried on, before the relay: its stream and
/// address (the PROXY header's, with `accept_proxy`), the prelude every backend gets first and,
/// with `retry_on_early_close`, the replay state kept across backends.
struct Pending<'a, 'b> {
    client: &'a TcpStream,
    peer: SocketAddr,
    prelude: &'a Prelude<'b>,
    replay: Option<&'a mut Replay<'b>>,
    /// The settings the connection started with.
    settings: &'a WorkerSettings,
    /// Its access-log line in the making.
    logged: &'a Logged<'b>,
}

impl Pending<'_, '_> {
    /// Sends a freshly connected `server` the prelude (PROXY header, client bytes after the
    /// client's header), then runs the replay phase when `retry_on_early_close` is on. Without
    /// replay a failed prelude closes both; with it, it is an early close like any other:
    /// nothing of the backend reached the client, and the next backend gets the prelude again.
    async fn handshake(
        &mut self,
        passive: &Passive,
        idle: Duration,
        server: &TcpStream,
        backend: &Backend,
    ) -> io::Result<Handshake> {
        let (client, peer) = (self.client, self.peer);
        let sent = self
            .prelude
            .send(client, peer, server, backend.send_proxy())
            .await;
        let count = copy::Delivered {
            backend,
            worker: passive.worker(),
            bytes: &self.logged.bytes,
        };
        if sent.is_ok() && self.prelude.carries_client_bytes() {
            // The client's bytes that came with its header or its ClientHello were delivered.
            count.add(0, self.prelude.client_bytes());
        }
        let Some(replay) = self.replay.as_deref_mut() else {
            if sent.is_err() {
                self.logged.ends(Termination::BackendReset);
            }
            return sent.map(|()| Handshake::Committed);
        };
        if sent.is_err() {
            passive.prelude_failed(backend, self.prelude.carries_client_bytes());
            return Ok(Handshake::Retry);
        }
        Ok(match replay.run(client, server, idle, count).await? {
            Phase::Answered => {
                passive.answered(backend);
                Handshake::Committed
            }
            Phase::Full => Handshake::Committed,
            Phase::EarlyClose { client_sent, end } => {
                // The client's bytes went out in the replay phase, or with the PROXY header, or
                // they are waiting in its socket: the backend's close raced them (a crash right
                // after its accept), it did not close a client that stayed silent.
                let client_sent = client_sent
                    || self.prelude.carries_client_bytes()
                    || sys::unread_bytes(client.as_raw_fd()).is_some_and(|n| n > 0);
                match passive.early_close(backend, client_sent, end) {
                    EarlyClose::Replay => Handshake::Retry,
                    // The relay reads the backend's close and passes it on to the client.
                    EarlyClose::PassThrough => Handshake::Committed,
                }
            }
        })
    }
}

/// A socket for `backend`'s family with Nagle off (a proxy forwards what it has at once), bound
/// to its next `source` address of that family if there is one (before the connection is
/// counted on it: see [`Sources::pick`]).
fn backend_socket(backend: &Backend, sources: &Sources, worker: usize) -> io::Result<TcpSocket> {
    let socket = if backend.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    if let Some(source) = sources.pick(backend) {
        if let Err(e) = sys::bind_source(socket.as_raw_fd(), source) {
            sources.bind_failed(worker, source, &e);
            return Err(e);
        }
    }
    Ok(socket)
}

/// Answers as [`crate::conn::reject`] decides: the answer, a FIN, then what the client still
/// sends read and dropped for at most [`LINGER`]; or the reset.
async fn reject(shared: &Shared, mut client: TcpStream, on_no_backend: OnNoBackend) {
    shared.stats.add(WorkerCounter::Rejected);
    match Rejection::from(on_no_backend) {
        Rejection::Answer(answer) => {
            if client.write_all(answer).await.is_err() {
                return;
            }
        }
        Rejection::Reset => {
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            return;
        }
    }
    let _ = client.shutdown().await;
    let _ = tokio::time::timeout(LINGER, copy::discard(&shared.buffers, &client)).await;
}

#[cfg(test)]
mod tests {
    use super::{
        super::copy::Buffers,
        super::testing::{backend, pair},
        *,
    };

    fn passive() -> Passive {
        let stats = Arc::new(crate::stats::WorkerStats::new(0, 1));
        Passive::new(crate::health::test_ejector().0, 3, 0, stats)
    }

    /// A backend connection whose far end has reset it: every write to it fails. Also the
    /// backend (wanting a v2 PROXY header) and a client connection.
    async fn reset_backend() -> (TcpStream, Backend, TcpStream) {
        let (server, far) = pair().await;
        let far = socket2::Socket::from(far.into_std().unwrap());
        far.set_linger(Some(Duration::ZERO)).unwrap();
        drop(far);
        // The reset makes the socket readable; waiting for it consumes nothing.
        server.readable().await.unwrap();
        let backend = backend();
        backend.set_send_proxy(Some(crate::proxy_protocol::Version::V2));
        let (client, _) = pair().await;
        (server, backend, client)
    }

    /// With `retry_on_early_close`, a backend gone while its PROXY header is sent is an early
    /// close: the client moves on to another backend instead of being dropped.
    #[tokio::test]
    async fn a_failed_prelude_with_replay_retries_elsewhere() {
        let (server, backend, client) = reset_backend().await;
        let sink = Sink::off();
        let pool = Buffers::new(64);
        let mut replay = Replay::new(pool.take());
        let prelude = Prelude::none();
        let mut pending = Pending {
            client: &client,
            peer: client.peer_addr().unwrap(),
            prelude: &prelude,
            replay: Some(&mut replay),
            settings: &WorkerSettings::for_tests(),
            logged: &Logged::new(&sink, client.peer_addr().unwrap(), 0),
        };
        let passive = passive();
        let done = pending.handshake(&passive, Duration::from_secs(5), &server, &backend);
        assert!(matches!(done.await, Ok(Handshake::Retry)));
    }

    /// Without it, the bytes are not kept for another backend: the client is closed.
    #[tokio::test]
    async fn a_failed_prelude_without_replay_closes_the_client() {
        let (server, backend, client) = reset_backend().await;
        let sink = Sink::off();
        let prelude = Prelude::none();
        let mut pending = Pending {
            client: &client,
            peer: client.peer_addr().unwrap(),
            prelude: &prelude,
            replay: None,
            settings: &WorkerSettings::for_tests(),
            logged: &Logged::new(&sink, client.peer_addr().unwrap(), 0),
        };
        let passive = passive();
        let done = pending.handshake(&passive, Duration::from_secs(5), &server, &backend);
        assert!(done.await.is_err());
    }
}
