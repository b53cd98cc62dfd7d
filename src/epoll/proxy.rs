//! The PROXY protocol on the epoll backend, on both sides of a connection, with the io_uring
//! worker's contract.
//!
//! - `accept_proxy`: before anything else a client must send a whole PROXY header (v1 or v2)
//!   within 5 s; its addresses then stand for the client's (balancing included). A header that
//!   is invalid, too long or late closes the client and never reaches a backend; the bytes
//!   after a valid one do.
//! - `send_proxy`: before relaying, each backend connection gets ringlb's own header for the
//!   client, then the client bytes that followed the client's header; after a failed attempt
//!   the next backend gets them again.
//!
//! - SNI routing: on a service with routes, the client's ClientHello is read the same way
//!   (after its header, within the same budget) until the shared rule of `conn::routing`
//!   names a pool; it is forwarded unchanged, like any bytes after a header.
//!
//! Never blocks the thread and never allocates per connection: the header buffer comes from the
//! worker's pool and goes back once the connection is committed to a backend. Only a client
//! whose ClientHello outgrows it makes its connection allocate a larger one, freed at its end.

use std::{io, net::SocketAddr, time::Instant};

use tokio::net::TcpStream;

use super::copy::{write_all, Buffer, Buffers};
use crate::{
    conn::header::{header_for, HEADER_BUDGET},
    conn::routing::{
        grown_prelude, Decision, PreludeRefused, ReadEnd, Routed, Routing, HELLO_BUDGET,
    },
    proxy_protocol::{self, Addresses, ParseOutcome, Version},
};

/// What comes before the relay: the client's header (when `accept_proxy`) and the bytes that
/// followed it (on a service with SNI routes, its ClientHello among them).
pub(super) struct Prelude<'a> {
    /// The bytes received from the client, header first; `None` without `accept_proxy`.
    received: Option<(Buffer<'a>, usize)>,
    /// Length of the client's header within `received`.
    consumed: usize,
    /// The client's address and the address it connected to, once known.
    addrs: Option<(SocketAddr, SocketAddr)>,
}

impl<'a> Prelude<'a> {
    /// No client header: the connection's own endpoints stand.
    pub(super) fn none() -> Prelude<'a> {
        Prelude {
            received: None,
            consumed: 0,
            addrs: None,
        }
    }

    /// Reads what the client must send before a pool is chosen, into a buffer of `pool` (room
    /// for a PROXY header): its header (`accept_proxy`), then, on a service with SNI routes,
    /// until the shared rule ([`Routing::decide`]) has its answer; all within one budget from
    /// the accept. A full buffer grows as the shared rule says, up to
    /// [`Routing::prelude_cap`], as on io_uring.
    pub(super) async fn read(
        pool: &'a Buffers,
        client: &TcpStream,
        accept_proxy: bool,
        routing: &Routing,
    ) -> Result<(Prelude<'a>, Routed), PreludeRefused> {
        let deadline = Instant::now() + HEADER_BUDGET.max(HELLO_BUDGET);
        let cap = routing.prelude_cap(accept_proxy);
        let mut buf = pool.take();
        let mut received = 0;
        // The header's length and addresses, once it is in (at once without `accept_proxy`).
        let mut header = (!accept_proxy).then_some((0, None));
        loop {
            if let Some((consumed, addrs)) = header {
                match routing.decide(&buf[consumed..received]) {
                    Decision::ReadMore => {}
                    Decision::Refuse(why) => return Err(PreludeRefused::Hello(why)),
                    Decision::Route(routed) => {
                        let prelude = Prelude {
                            received: Some((buf, received)),
                            consumed,
                            addrs,
                        };
                        return Ok((prelude, routed));
                    }
                }
            }
            let refused = |end| PreludeRefused::of(header.is_none(), end);
            if received == buf.len() {
                if buf.len() >= cap {
                    return Err(refused(ReadEnd::Full));
                }
                buf.grow(grown_prelude(buf.len(), cap));
            }
            let read = async {
                client.readable().await?;
                client.try_read(&mut buf[received..])
            };
            match tokio::time::timeout_at(deadline.into(), read).await {
                Err(_) => return Err(refused(ReadEnd::Late)),
                Ok(Ok(0)) => return Err(refused(ReadEnd::Closed)),
                Ok(Ok(n)) => received += n,
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(Err(e)) => {
                    return Err(refused(ReadEnd::Io(e.raw_os_error().unwrap_or(libc::EIO))))
                }
            }
            if header.is_some() {
                continue;
            }
            let (addresses, consumed) = match proxy_protocol::parse(&buf[..received]) {
                ParseOutcome::Complete { header, consumed } => (header.addresses, consumed),
                ParseOutcome::Incomplete { .. } => continue,
                ParseOutcome::Invalid(error) => return Err(PreludeRefused::Header(error.into())),
            };
            // LOCAL and UNKNOWN headers carry no client: the real endpoints stand.
            let addrs = match addresses {
                Addresses::Tcp { src, dst } => Some((src, dst)),
                _ => None,
            };
            header = Some((consumed, addrs));
        }
    }

    /// The client address its header gave, if any.
    pub(super) fn client(&self) -> Option<SocketAddr> {
        self.addrs.map(|(src, _)| src)
    }

    /// How many bytes the client sent after its own header (all of them without one), which
    /// go to the backend before the relay.
    pub(super) fn client_bytes(&self) -> usize {
        self.received
            .as_ref()
            .map_or(0, |(_, received)| received.saturating_sub(self.consumed))
    }

    /// Whether bytes the client sent after its own header go to the backend before the relay.
    pub(super) fn carries_client_bytes(&self) -> bool {
        self.received
            .as_ref()
            .is_some_and(|(_, received)| *received > self.consumed)
    }

    /// Sends what `server` must get before relaying: ringlb's header in `version` (if the
    /// backend wants one), then the client bytes that followed the client's header.
    pub(super) async fn send(
        &self,
        client: &TcpStream,
        peer: SocketAddr,
        server: &TcpStream,
        version: Option<Version>,
    ) -> io::Result<()> {
        if let Some(version) = version {
            let addrs = self
                .addrs
                .or_else(|| client.local_addr().ok().map(|dst| (peer, dst)));
            let header = header_for(version, addrs);
            write_all(server, header.as_bytes(), None).await?;
        }
        if let Some((buf, received)) = &self.received {
            write_all(server, &buf[self.consumed..*received], None).await?;
        }
        Ok(())
    }
}
