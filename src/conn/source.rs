//! Which local address a connection to a backend is bound to (`source`): the next address of
//! the backend's family, round robin per worker, or none (the kernel's choice) when `source`
//! has no address of that family.
//!
//! Owns that choice, once for both drivers, and the log line when a bind fails. Binding with
//! `IP_BIND_ADDRESS_NO_PORT` lets the kernel choose the port at connect time against the whole
//! 4-tuple, so each address gives the whole ephemeral range to every backend; the system calls
//! are [`crate::uring::sys::bind_source`]'s. Never does I/O, never allocates per connection.

use std::{
    cell::Cell,
    io,
    net::{IpAddr, SocketAddr},
};

use socket2::SockAddr;

use super::events::{self, Throttle};

/// One worker's `source` addresses, by family, each with its round-robin position.
#[derive(Debug)]
pub(crate) struct Sources {
    v4: Family,
    v6: Family,
    bind_failures: Throttle,
}

/// The addresses of one family, as socket addresses with port 0, ready for `bind(2)`.
#[derive(Debug)]
struct Family {
    addrs: Box<[SockAddr]>,
    next: Cell<usize>,
}

impl Family {
    fn new(ips: impl Iterator<Item = IpAddr>, worker: usize) -> Family {
        let addrs: Box<[SockAddr]> = ips.map(|ip| SocketAddr::new(ip, 0).into()).collect();
        // Workers start at different addresses, so a few connections per worker already
        // spread over all of them.
        let next = Cell::new(if addrs.is_empty() {
            0
        } else {
            worker % addrs.len()
        });
        Family { addrs, next }
    }

    fn pick(&self) -> Option<&SockAddr> {
        let i = self.next.get();
        let addr = self.addrs.get(i)?;
        self.next
            .set(if i + 1 == self.addrs.len() { 0 } else { i + 1 });
        Some(addr)
    }
}

impl Sources {
    /// Worker `worker`'s view of `source` (the configuration's order within each family).
    pub(crate) fn new(source: &[IpAddr], worker: usize) -> Sources {
        let of = |v4: bool| source.iter().copied().filter(move |ip| ip.is_ipv4() == v4);
        Sources {
            v4: Family::new(of(true), worker),
            v6: Family::new(of(false), worker),
            bind_failures: Throttle::default(),
        }
    }

    /// The address to bind a new connection to `backend` to, `None` to leave the choice to the
    /// kernel (no `source` address of its family: no system call beyond the connect).
    pub(crate) fn pick(&self, backend: &SocketAddr) -> Option<&SockAddr> {
        match backend {
            SocketAddr::V4(_) => self.v4.pick(),
            SocketAddr::V6(_) => self.v6.pick(),
        }
    }

    /// Binding a backend socket to `source` failed with `error`: logged at most once a second;
    /// the driver gives the client the no-backend answer (no backend was involved).
    pub(crate) fn bind_failed(&self, worker: usize, source: &SockAddr, error: &io::Error) {
        events::source_bind_failed(&self.bind_failures, worker, source.as_socket(), error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(list: &[&str], worker: usize) -> Sources {
        let ips: Vec<IpAddr> = list.iter().map(|s| s.parse().unwrap()).collect();
        Sources::new(&ips, worker)
    }

    fn picks(sources: &Sources, backend: &str, n: usize) -> Vec<String> {
        let backend: SocketAddr = backend.parse().unwrap();
        (0..n)
            .map(|_| match sources.pick(&backend) {
                Some(addr) => {
                    let addr = addr.as_socket().unwrap();
                    assert_eq!(addr.port(), 0, "the kernel picks the port");
                    addr.ip().to_string()
                }
                None => "-".into(),
            })
            .collect()
    }

    #[test]
    fn each_family_is_its_own_round_robin() {
        let s = sources(
            &[
                "10.0.0.2",
                "2001:db8::2",
                "10.0.0.3",
                "2001:db8::3",
                "10.0.0.4",
            ],
            0,
        );
        assert_eq!(
            picks(&s, "10.0.0.9:80", 4),
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.2"]
        );
        assert_eq!(
            picks(&s, "[2001:db8::9]:80", 3),
            ["2001:db8::2", "2001:db8::3", "2001:db8::2"]
        );
        // The IPv6 picks did not move the IPv4 position.
        assert_eq!(picks(&s, "10.0.0.9:80", 1), ["10.0.0.3"]);
    }

    #[test]
    fn a_backend_of_a_family_without_sources_gets_none() {
        let s = sources(&["10.0.0.2"], 0);
        assert_eq!(picks(&s, "[::1]:80", 2), ["-", "-"]);
        assert_eq!(picks(&s, "127.0.0.1:80", 2), ["10.0.0.2", "10.0.0.2"]);
        let none = sources(&[], 3);
        assert_eq!(picks(&none, "127.0.0.1:80", 1), ["-"]);
        assert_eq!(picks(&none, "[::1]:80", 1), ["-"]);
    }

    #[test]
    fn workers_start_at_different_addresses() {
        let list = ["10.0.0.2", "10.0.0.3", "10.0.0.4"];
        let firsts: Vec<String> = (0..4)
            .map(|worker| picks(&sources(&list, worker), "10.0.0.9:80", 1).remove(0))
            .collect();
        assert_eq!(firsts, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.2"]);
    }

    #[test]
    fn every_address_is_used_equally_over_a_round() {
        let list: Vec<String> = (2..=9).map(|i| format!("127.0.0.{i}")).collect();
        let list: Vec<&str> = list.iter().map(String::as_str).collect();
        let s = sources(&list, 5);
        let mut counts = std::collections::HashMap::new();
        for ip in picks(&s, "127.0.0.1:80", 8 * 100) {
            *counts.entry(ip).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 8);
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");
        let s = sources(&list, 5);
        let round = picks(&s, "127.0.0.1:80", 16);
        assert_eq!(round[..8], round[8..], "a fixed cycle");
    }
}
