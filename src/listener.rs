//! Listening sockets: one `SO_REUSEPORT` listener per worker, all bound to the same address,
//! with `TCP_DEFER_ACCEPT` when `defer_accept` asks for it (both I/O drivers accept from these).
//!
//! Binding happens on the control thread before any worker starts, so a bad address fails the
//! start with a clear error instead of killing a worker later. A stopping worker takes the
//! clients still queued in its listener ([`queued`], the same rule for both drivers) before it
//! closes it.

use std::{
    io,
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::{AsFd, AsRawFd},
    time::Duration,
};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::uring::sys;

/// Listen backlog: large, so bursts queue in the kernel instead of being refused.
const BACKLOG: i32 = 4096;

/// The listeners for `addr`: the `inherited` ones (handed over by the process this one
/// succeeds), then as many new ones as make `count`. More inherited than `count` are all kept:
/// closing one would reset the connections queued in it. Every one gets this configuration's
/// `defer_accept`, the inherited ones too (the previous process may have had another).
pub fn open(
    addr: SocketAddr,
    count: usize,
    inherited: Vec<TcpListener>,
    defer_accept: Option<Duration>,
) -> io::Result<Vec<TcpListener>> {
    let Some(first) = inherited.first() else {
        return bind_all(addr, count, defer_accept);
    };
    // The port an inherited listener serves, when the address asked for port 0.
    let actual = first.local_addr()?;
    for listener in &inherited {
        set_defer_accept(listener.as_raw_fd(), defer_accept)?;
    }
    let mut listeners = inherited;
    while listeners.len() < count {
        listeners.push(bind_one(actual, defer_accept)?);
    }
    Ok(listeners)
}

/// The clients waiting in `listener`'s backlog now, accepted without blocking until it is empty,
/// each set non-blocking. A stopping worker serves these before it closes its listener.
///
/// Why: a client whose handshake the kernel completed must not be lost to the stop. Without a
/// successor, closing the listener would reset it. With one (an upgrade: both processes hold the
/// same socket), it could be stranded: an io_uring multishot accept waits as an *exclusive*
/// waiter, the kernel wakes one waiter per arriving client, and a wake-up taken by an accept being
/// cancelled accepts nobody while the successor is never woken, so the client would wait for the
/// next one to arrive. Once the cancelled accept has completed it takes no wake-up any more, so
/// what is queued then is exactly what this returns; anything arriving later wakes the successor.
///
/// Bounded by the backlog; an error other than an aborted handshake (out of descriptors) ends
/// it, and what is left waits for another holder of the socket or is reset with it.
pub fn queued(listener: &impl AsFd) -> impl Iterator<Item = (TcpStream, SocketAddr)> + '_ {
    let socket = SockRef::from(listener);
    std::iter::from_fn(move || loop {
        let (client, peer) = match socket.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e)
                if e.kind() == io::ErrorKind::Interrupted
                    || e.raw_os_error() == Some(libc::ECONNABORTED) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!(error = %e, "stopping: cannot accept the clients still queued; \
                    they wait for another process holding the listener, or are reset");
                return None;
            }
        };
        // Dropped (closed) when it cannot be made non-blocking: a worker never blocks on it.
        if let (Ok(()), Some(peer)) = (client.set_nonblocking(true), peer.as_socket()) {
            return Some((client.into(), peer));
        }
    })
}

/// Binds `count` non-blocking listeners to `addr` with `SO_REUSEPORT`; with `defer_accept`, a
/// client is accepted only once it has sent a byte (or after about that long).
///
/// With port 0 the first listener picks an ephemeral port and the others join it, so all of them
/// share one address (tests rely on this).
pub fn bind_all(
    addr: SocketAddr,
    count: usize,
    defer_accept: Option<Duration>,
) -> io::Result<Vec<TcpListener>> {
    let first = bind_one(addr, defer_accept)?;
    let actual = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_one(actual, defer_accept)?);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr, defer_accept: Option<Duration>) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // `[::]` serves IPv4 too, as users expect from a dual-stack edge.
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    // Accepted sockets inherit TCP_NODELAY: a proxy forwards what it has at once, and no
    // per-connection system call is needed for it.
    socket.set_tcp_nodelay(true)?;
    if defer_accept.is_some() {
        set_defer_accept(socket.as_raw_fd(), defer_accept)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Sets `TCP_DEFER_ACCEPT` to `defer_accept`, or clears it (0) for `None`.
fn set_defer_accept(fd: std::os::fd::RawFd, defer_accept: Option<Duration>) -> io::Result<()> {
    // Whole seconds, as the configuration guarantees; at least one, as the kernel needs.
    let seconds = defer_accept.map_or(0, |wait| {
        u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).max(1)
    });
    sys::set_defer_accept(fd, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_port_is_shared_by_all_listeners() {
        let ls = bind_all("127.0.0.1:0".parse().unwrap(), 3, None).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for l in &ls {
            assert_eq!(l.local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn defer_accept_is_set_on_every_listener() {
        let wait = Some(Duration::from_secs(5));
        let ls = bind_all("127.0.0.1:0".parse().unwrap(), 2, wait).unwrap();
        for l in &ls {
            // The kernel reports the value rounded to its SYN-ACK retransmissions: 1 + 2 + 4 s.
            assert_eq!(defer_accept(l), 7);
        }
        let plain = bind_all("127.0.0.1:0".parse().unwrap(), 1, None).unwrap();
        assert_eq!(defer_accept(&plain[0]), 0);
    }

    #[test]
    fn inherited_listeners_take_the_new_defer_accept() {
        let old = bind_all(
            "127.0.0.1:0".parse().unwrap(),
            1,
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        let addr = old[0].local_addr().unwrap();
        let ls = open(addr, 2, old, None).unwrap();
        assert_eq!(ls.len(), 2);
        for l in &ls {
            assert_eq!(defer_accept(l), 0);
            assert_eq!(l.local_addr().unwrap(), addr);
        }
    }

    fn defer_accept(listener: &TcpListener) -> i32 {
        sys::defer_accept(listener.as_raw_fd()).unwrap()
    }

    #[test]
    fn address_in_use_without_reuseport_peer_is_an_error() {
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = bind_all(plain.local_addr().unwrap(), 1, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
