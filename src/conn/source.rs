//! Which local address a connection to a backend is bound to (`source`): the next address of
//! the backend's family for that backend, or none (the kernel's choice) when `source` has no
//! address of that family.
//!
//! Owns that choice, once for both drivers, and the log line when a bind fails. Binding with
//! `IP_BIND_ADDRESS_NO_PORT` lets the kernel choose the port at connect time against the whole
//! 4-tuple, so each address gives the whole ephemeral range to every backend; the system calls
//! are [`crate::uring::sys::bind_source`]'s. Each backend cycles through the addresses on its
//! own: a round robin over addresses shared by all backends would line up with the balancer's
//! round robin over backends (two of each: every connection to one backend from the same
//! address), exhausting one pair while the others stay idle. Never does I/O, never allocates
//! per connection, writes nothing shared.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

use socket2::SockAddr;

use super::events::{self, Throttle};
use crate::backend::Backend;

/// One worker's `source` addresses, by family, as socket addresses with port 0 ready for
/// `bind(2)`.
#[derive(Debug)]
pub(crate) struct Sources {
    v4: Box<[SockAddr]>,
    v6: Box<[SockAddr]>,
    bind_failures: Throttle,
}

impl Sources {
    /// The addresses of `source`, in the configuration's order within each family.
    pub(crate) fn new(source: &[IpAddr]) -> Sources {
        let of = |v4: bool| {
            let family = source.iter().filter(|ip| ip.is_ipv4() == v4);
            family.map(|&ip| SocketAddr::new(ip, 0).into()).collect()
        };
        Sources {
            v4: of(true),
            v6: of(false),
            bind_failures: Throttle::default(),
        }
    }

    /// The address to bind a new connection to `backend` to, `None` to leave the choice to the
    /// kernel (no `source` address of its family: no system call beyond the connect). Call it
    /// before the connection is counted on the backend: the backend's count of connections
    /// ever handed to it is the position in the cycle (across workers, with no counter of its
    /// own to write; two workers racing may pick the same address once, which costs nothing).
    pub(crate) fn pick(&self, backend: &Backend) -> Option<&SockAddr> {
        let family = match backend.addr {
            SocketAddr::V4(_) => &self.v4,
            SocketAddr::V6(_) => &self.v6,
        };
        let len = family.len() as u64;
        family.get((backend.connections_total().checked_rem(len)?) as usize)
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

    fn sources(list: &[&str]) -> Sources {
        let ips: Vec<IpAddr> = list.iter().map(|s| s.parse().unwrap()).collect();
        Sources::new(&ips)
    }

    fn backend(addr: &str) -> Backend {
        Backend::new(0, addr, addr.parse().unwrap())
    }

    /// The address of each of `n` connections to `backend`, counted on it as the drivers do.
    fn picks(sources: &Sources, backend: &Backend, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let picked = match sources.pick(backend) {
                    Some(addr) => {
                        let addr = addr.as_socket().unwrap();
                        assert_eq!(addr.port(), 0, "the kernel picks the port");
                        addr.ip().to_string()
                    }
                    None => "-".into(),
                };
                backend.connection_opened();
                picked
            })
            .collect()
    }

    #[test]
    fn each_family_is_its_own_cycle() {
        let s = sources(&[
            "10.0.0.2",
            "2001:db8::2",
            "10.0.0.3",
            "2001:db8::3",
            "10.0.0.4",
        ]);
        let v4 = backend("10.0.0.9:80");
        assert_eq!(
            picks(&s, &v4, 4),
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.2"]
        );
        let v6 = backend("[2001:db8::9]:80");
        assert_eq!(
            picks(&s, &v6, 3),
            ["2001:db8::2", "2001:db8::3", "2001:db8::2"]
        );
        assert_eq!(picks(&s, &v4, 1), ["10.0.0.3"]);
    }

    #[test]
    fn a_backend_of_a_family_without_sources_gets_none() {
        let s = sources(&["10.0.0.2"]);
        assert_eq!(picks(&s, &backend("[::1]:80"), 2), ["-", "-"]);
        assert_eq!(
            picks(&s, &backend("127.0.0.1:80"), 2),
            ["10.0.0.2", "10.0.0.2"]
        );
        let none = sources(&[]);
        assert_eq!(picks(&none, &backend("127.0.0.1:80"), 1), ["-"]);
        assert_eq!(picks(&none, &backend("[::1]:80"), 1), ["-"]);
    }

    /// What the end-to-end test found: connections alternating between two backends must not
    /// go to each from the same address.
    #[test]
    fn every_backend_cycles_through_every_address_whatever_the_balancer_does() {
        let s = sources(&["127.0.0.2", "127.0.0.3"]);
        let (a, b) = (backend("127.0.0.1:1"), backend("127.0.0.1:2"));
        let mut seen: std::collections::HashMap<(u16, String), usize> = Default::default();
        for _ in 0..100 {
            for backend in [&a, &b] {
                let ip = picks(&s, backend, 1).remove(0);
                *seen.entry((backend.addr.port(), ip)).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.values().all(|&n| n == 50), "{seen:?}");
    }

    #[test]
    fn every_address_is_used_equally() {
        let list: Vec<String> = (2..=9).map(|i| format!("127.0.0.{i}")).collect();
        let list: Vec<&str> = list.iter().map(String::as_str).collect();
        let s = sources(&list);
        let mut counts = std::collections::HashMap::new();
        for ip in picks(&s, &backend("127.0.0.1:80"), 8 * 100) {
            *counts.entry(ip).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 8);
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");
    }
}
