//! One client of the epoll backend, from accept to close: pick a backend, connect with a
//! timeout, move on to another backend when the connect fails (reporting the failed one to the
//! health checker), the exact 503 when none is left, then the relay.
//!
//! Counting is tied to ownership: a client's place under `max_connections` and a backend's
//! active count are given back when their guards drop, so a task aborted at the drain deadline
//! leaves no count behind.

use std::{io, net::SocketAddr, ops::Deref, rc::Rc, sync::Arc, time::Duration};

use tokio::{
    io::AsyncWriteExt,
    net::{TcpSocket, TcpStream},
};

use super::{copy, Shared};
use crate::{backend::Backend, worker::RESPONSE_503};

/// How long a rejected client may keep sending after the answer before it is closed.
const LINGER: Duration = Duration::from_secs(1);

/// A client counted under `max_connections`; its place is given back on drop.
pub(super) struct Counted(Rc<Shared>);

impl Counted {
    /// Takes over a place the accept loop already counted with [`ConnectionLimit::acquire`].
    ///
    /// [`ConnectionLimit::acquire`]: crate::worker::limit::ConnectionLimit::acquire
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

/// Serves one accepted client until both sides are closed.
pub(super) async fn serve(shared: Counted, mut client: TcpStream, peer: SocketAddr) {
    let Some((mut server, _opened)) = connect(&shared, peer).await else {
        return reject(&shared, client).await;
    };
    let idle = shared.settings.idle_timeout;
    match copy::relay(&shared.buffers, &mut client, &mut server, idle).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            tracing::debug!(worker = shared.id, "idle timeout: closing connection");
        }
        Err(e) => tracing::debug!(worker = shared.id, error = %e, "connection failed"),
    }
    // Dropping both streams closes them.
}

/// Connects to a backend not tried yet for this client, up to the configured attempts; `None`
/// when no backend is left.
async fn connect(shared: &Shared, peer: SocketAddr) -> Option<(TcpStream, Opened)> {
    // Allocates only once a connect failed.
    let mut failed: Vec<Arc<Backend>> = Vec::new();
    for attempt in 1..=shared.settings.attempts() {
        let backend = if failed.is_empty() {
            shared.balancer.pick(peer)
        } else {
            let excluded: Vec<&Backend> = failed.iter().map(|b| &**b).collect();
            shared.balancer.pick_excluding_all(peer, &excluded)
        }?;
        let socket = match backend_socket(backend.addr) {
            Ok(socket) => socket,
            Err(e) => {
                tracing::debug!(worker = shared.id, error = %e, "cannot create backend socket");
                return None;
            }
        };
        let opened = Opened::new(backend);
        let connecting = socket.connect(opened.0.addr);
        // A backend that never answers the SYN must not hold the client for the kernel's
        // two-minute SYN retry budget.
        let errno = match tokio::time::timeout(shared.settings.connect_timeout, connecting).await {
            Ok(Ok(server)) => return Some((server, opened)),
            Ok(Err(e)) => e.raw_os_error().unwrap_or(libc::EIO),
            Err(_) => libc::ETIMEDOUT,
        };
        let backend = Arc::clone(&opened.0);
        drop(opened);
        backend.connect_failed();
        shared.ejector.eject(&backend, errno);
        tracing::debug!(worker = shared.id, backend = %backend.name, addr = %backend.addr,
            error = %io::Error::from_raw_os_error(errno), attempt, "connect failed");
        failed.push(backend);
    }
    None
}

/// A socket for `addr`'s family with Nagle off: a proxy forwards what it has at once.
fn backend_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    Ok(socket)
}

/// Sends the exact 503, then a FIN, then reads and discards what the client still sends for at
/// most [`LINGER`]: closing with unread input would send a reset that could destroy the answer.
async fn reject(shared: &Shared, mut client: TcpStream) {
    if client.write_all(RESPONSE_503).await.is_err() {
        return;
    }
    let _ = client.shutdown().await;
    let _ = tokio::time::timeout(LINGER, copy::discard(&shared.buffers, &client)).await;
}
