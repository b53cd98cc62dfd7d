//! Hostname targets end to end: traffic through a running ringlb follows what a target's name
//! resolves to, round after round, without a restart or a reload.
//!
//! Two ways in: a resolver injected through `Server::start_with_resolver` whose answer the test
//! changes (the machine's `/etc/hosts` is never touched), and `localhost:PORT` targets resolved
//! by the system resolver.

mod common;

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use common::*;
use ringlb::{
    config::{IoBackend, RelayMode},
    health::{ResolveFuture, Resolver},
    Config,
};

/// Answers every name with the addresses the test last set (an error when none).
#[derive(Default)]
struct Switchable(Mutex<Vec<SocketAddr>>);

impl Switchable {
    fn answer(&self, addrs: &[SocketAddr]) {
        *self.0.lock().unwrap() = addrs.to_vec();
    }
}

impl Resolver for Switchable {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
        let addrs = self.0.lock().unwrap().clone();
        Box::pin(async move {
            if addrs.is_empty() {
                Err(io::Error::other("NXDOMAIN"))
            } else {
                Ok(addrs)
            }
        })
    }
}

/// The test configuration on `io` with its targets named `host:port` instead of IP literals.
fn named_config(io: IoBackend, targets: &[(&str, u16)]) -> Config {
    let mut cfg = config(io, &[], RelayMode::Copy);
    cfg.live.targets = targets
        .iter()
        .map(|&(host, port)| target(host, port))
        .collect();
    cfg
}

/// Waits (bounded) until `n` consecutive requests are all answered by `name`.
async fn until_served_by(proxy: &Proxy, name: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut streak = 0;
    while streak < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never served only by {name}"
        );
        streak = if body(&get(proxy.addr).await) == name {
            streak + 1
        } else {
            0
        };
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_whose_answer_changes_is_followed_without_restart(io: IoBackend) {
        let a = NamedBackend::start("A").await;
        let b = NamedBackend::start("B").await;
        let resolver = Arc::new(Switchable::default());
        resolver.answer(&[a.addr]);
        let proxy =
            Proxy::start_with_resolver(&named_config(io, &[("api.test", 80)]), resolver.clone());
        proxy.wait_healthy(1).await;
        for _ in 0..4 {
            assert_eq!(body(&get(proxy.addr).await), "A");
        }

        // The service moved: the name now points at B only. A is still up, so only the new answer
        // can take traffic away from it.
        resolver.answer(&[b.addr]);
        until_served_by(&proxy, "B", 8).await;
        let snapshot = proxy.server().balancer().snapshot();
        let addrs: Vec<SocketAddr> = snapshot.backends().iter().map(|b| b.addr).collect();
        assert_eq!(addrs, [b.addr]);

        // Scaled out: both answer, both serve.
        resolver.answer(&[a.addr, b.addr]);
        proxy.wait_healthy(2).await;
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..8 {
            seen.push(body(&get(proxy.addr).await));
        }
        assert!(
            seen.iter().any(|s| s == "A") && seen.iter().any(|s| s == "B"),
            "{seen:?}"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn localhost_port_targets_serve_and_follow_their_backends(io: IoBackend) {
        let a = NamedBackend::start("A").await;
        let b = NamedBackend::start("B").await;
        let cfg = named_config(
            io,
            &[("localhost", a.addr.port()), ("localhost", b.addr.port())],
        );
        let proxy = Proxy::start(&cfg);

        // `localhost` may also resolve to ::1, where nothing listens: those endpoints fail their
        // probes (or a connect) and leave, and no client is handed to them.
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..12 {
            seen.push(body(&get(proxy.addr).await));
        }
        assert!(seen.iter().all(|s| s == "A" || s == "B"), "{seen:?}");
        assert!(
            seen.iter().any(|s| s == "A") && seen.iter().any(|s| s == "B"),
            "{seen:?}"
        );

        // B goes away and comes back on the same port: it leaves, then returns, no restart.
        let b_addr = b.stop().await;
        until_served_by(&proxy, "A", 8).await;
        let _b = NamedBackend::start_on(b_addr, "B").await;
        until_served_by(&proxy, "B", 1).await;
    }
);
