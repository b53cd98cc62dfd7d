//! Listening sockets: one `SO_REUSEPORT` listener per worker, all bound to the same address.
//!
//! Binding happens on the control thread before any worker starts, so a bad address fails the
//! start with a clear error instead of killing a worker later.

use std::{io, net::SocketAddr, net::TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Listen backlog: large, so bursts queue in the kernel instead of being refused.
const BACKLOG: i32 = 4096;

/// The listeners for `addr`: the `inherited` ones (handed over by the process this one
/// succeeds), then as many new ones as make `count`. More inherited than `count` are all kept:
/// closing one would reset the connections queued in it.
pub fn open(
    addr: SocketAddr,
    count: usize,
    inherited: Vec<TcpListener>,
) -> io::Result<Vec<TcpListener>> {
    let Some(first) = inherited.first() else {
        return bind_all(addr, count);
    };
    // The port an inherited listener serves, when the address asked for port 0.
    let actual = first.local_addr()?;
    let mut listeners = inherited;
    while listeners.len() < count {
        listeners.push(bind_one(actual)?);
    }
    Ok(listeners)
}

/// Binds `count` non-blocking listeners to `addr` with `SO_REUSEPORT`.
///
/// With port 0 the first listener picks an ephemeral port and the others join it, so all of them
/// share one address (tests rely on this).
pub fn bind_all(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let first = bind_one(addr)?;
    let actual = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_one(actual)?);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
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
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_port_is_shared_by_all_listeners() {
        let ls = bind_all("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for l in &ls {
            assert_eq!(l.local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn address_in_use_without_reuseport_peer_is_an_error() {
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = bind_all(plain.local_addr().unwrap(), 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
