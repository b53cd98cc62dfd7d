//! Free loopback ports for the replicas and the proxies.
//!
//! Owns choosing ports by letting the kernel pick (`127.0.0.1:0`). In-process servers keep the
//! bound listener, so their port can never be taken; for external processes the port is
//! released just before launch, and [`crate::proxy`] retries when another process won the race.
//! Never binds anything but loopback.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener},
};

/// A listener on a free loopback port, to keep (in-process servers).
pub fn bind_loopback() -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
}

/// A loopback address whose port was free a moment ago, to hand to another process.
pub fn free_loopback_addr() -> io::Result<SocketAddr> {
    bind_loopback()?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_are_loopback_and_bindable() {
        let addr = free_loopback_addr().unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        TcpListener::bind(addr).unwrap();
    }
}
