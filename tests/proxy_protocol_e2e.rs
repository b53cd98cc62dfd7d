//! The PROXY protocol end to end: ringlb sending v1 and v2 headers to backends (`send_proxy`),
//! from IPv4 and IPv6 clients, on probes too; and ringlb receiving them from a trusted balancer
//! in front of it (`accept_proxy`), whole, split, slow, invalid or oversized.
//!
//! Clients bind to distinct `127.0.0.x` source addresses so the address that arrives at the
//! backend can only be the real client's. Every wait is bounded (`common::DEADLINE`).

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    line::{connect_from, exchange, talk, LineBackend, LineOptions, SeenHeader},
    *,
};
use ringlb::{
    config::{HealthCheckKind, RelayMode, SendProxy, Target, TargetAddress},
    proxy_protocol::{Addresses, Command, Version},
    Config,
};

/// A target at `addr` with a Redis-style TCP check (`PING` → `+PONG`).
fn target(addr: SocketAddr) -> Target {
    Target {
        address: TargetAddress {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        health_check: HealthCheckKind::Tcp,
        health_check_send: Some("PING\r\n".into()),
        health_check_expect: Some("+PONG".into()),
        ..Default::default()
    }
}

fn proxied_config(targets: Vec<Target>, send_proxy: SendProxy, relay: RelayMode) -> Config {
    Config {
        targets,
        send_proxy,
        ..config(&[], relay)
    }
}

/// A backend that requires a PROXY header on every connection.
async fn strict_backend(name: &'static str) -> LineBackend {
    let options = LineOptions {
        proxy: true,
        ..Default::default()
    };
    LineBackend::start(name, options).await
}

fn source(ip: &str) -> Option<SocketAddr> {
    Some(SocketAddr::new(ip.parse().unwrap(), 0))
}

/// Whether `::1` can be bound here; IPv6 cases skip (saying so) where it cannot.
fn ipv6_loopback() -> bool {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping the IPv6 part: ::1 is unavailable on this machine ({e})");
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// send_proxy

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_proxy_v1_and_v2_carry_the_real_client_address() {
    for relay in RELAYS {
        for (setting, version) in [(SendProxy::V1, Version::V1), (SendProxy::V2, Version::V2)] {
            let backend = strict_backend("b").await;
            let cfg = proxied_config(vec![target(backend.addr)], setting, relay);
            let proxy = Proxy::start(&cfg);
            proxy.wait_healthy(1).await;
            for (i, client) in ["127.0.0.2", "127.0.0.3"].into_iter().enumerate() {
                let stream = connect_from(proxy.addr, source(client)).await.unwrap();
                let local = stream.local_addr().unwrap();
                let answers = talk(stream, &["PEER", "PING"]).await;
                assert_eq!(answers, [format!("+{local}"), "+PONG".into()], "{relay:?}");
                let seen = backend.proxied();
                assert_eq!(
                    seen[i],
                    SeenHeader {
                        version,
                        command: Command::Proxy,
                        addresses: Addresses::Tcp {
                            src: local,
                            dst: proxy.addr
                        },
                    },
                    "{relay:?} {setting:?}"
                );
            }
            assert!(backend.refused.lock().unwrap().is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_proxy_from_ipv6_and_ipv4_clients_of_a_dual_stack_listener() {
    if !ipv6_loopback() {
        return;
    }
    for setting in [SendProxy::V1, SendProxy::V2] {
        let backend = strict_backend("b").await;
        let mut cfg = proxied_config(vec![target(backend.addr)], setting, RelayMode::Copy);
        cfg.listen = "[::]:0".parse().unwrap();
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(1).await;
        let port = proxy.addr.port();
        let v6 = SocketAddr::new("::1".parse().unwrap(), port);
        let v4 = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
        let mut clients = Vec::new();
        for (to, from) in [(v6, "::1"), (v4, "127.0.0.4")] {
            let stream = connect_from(to, source(from)).await.unwrap();
            clients.push((stream.local_addr().unwrap(), to));
            assert_eq!(talk(stream, &["PING"]).await, ["+PONG"]);
        }
        let seen: Vec<Addresses> = backend.proxied().iter().map(|h| h.addresses).collect();
        let expected: Vec<Addresses> = clients
            .iter()
            .map(|&(src, dst)| Addresses::Tcp { src, dst })
            .collect();
        // The IPv4 client arrives on the IPv6 socket as ::ffff:127.0.0.4 and leaves as TCP4.
        assert_eq!(seen, expected, "{setting:?}");
        assert!(matches!(seen[1], Addresses::Tcp { src, .. } if src.is_ipv4()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_can_turn_send_proxy_off_and_probes_carry_a_local_header() {
    let strict = strict_backend("strict").await;
    let plain = LineBackend::start("plain", LineOptions::default()).await;
    let mut off = target(plain.addr);
    off.send_proxy = Some(SendProxy::Off);
    let mut v1 = target(strict.addr);
    v1.send_proxy = Some(SendProxy::V1);
    let cfg = proxied_config(vec![v1, off], SendProxy::V2, RelayMode::Copy);
    let proxy = Proxy::start(&cfg);
    proxy.wait_healthy(2).await;
    let mut names = Vec::new();
    for _ in 0..4 {
        names.extend(exchange(proxy.addr, None, &["NAME"]).await);
    }
    names.sort();
    assert_eq!(names, ["+plain", "+plain", "+strict", "+strict"]);
    // The strict backend accepted the probes because they carried `PROXY UNKNOWN`.
    let probes = strict.headers.lock().unwrap().clone();
    assert!(
        probes.iter().any(|h| h.version == Version::V1
            && h.command == Command::Proxy
            && h.addresses == Addresses::Unknown),
        "{probes:?}"
    );
    assert!(strict.refused.lock().unwrap().is_empty());

    // A v2 target's probes carry the LOCAL command.
    let strict_v2 = strict_backend("v2").await;
    let cfg = proxied_config(vec![target(strict_v2.addr)], SendProxy::V2, RelayMode::Copy);
    let proxy = Proxy::start(&cfg);
    proxy.wait_healthy(1).await;
    line_eventually(|| {
        let probes = strict_v2.headers.lock().unwrap();
        probes
            .iter()
            .any(|h| h.version == Version::V2 && h.command == Command::Local)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connect_with_a_linked_header_moves_on_to_the_next_backend() {
    let live = strict_backend("live").await;
    let mut cfg = proxied_config(
        vec![target(dead_addr()), target(live.addr)],
        SendProxy::V2,
        RelayMode::Copy,
    );
    // Only the start-up priming: the dead target stays in until a connect fails.
    cfg.health_check.interval = Duration::from_secs(3600);
    cfg.workers = 1;
    let proxy = Proxy::start(&cfg);
    for _ in 0..4 {
        let stream = connect_from(proxy.addr, source("127.0.0.5")).await.unwrap();
        assert_eq!(talk(stream, &["NAME"]).await, ["+live"]);
    }
    proxy.wait_healthy(1).await;
    assert_eq!(
        live.proxied().len(),
        4,
        "one header per client, none lost to the retry"
    );
}

async fn line_eventually(check: impl FnMut() -> bool) {
    common::line::eventually("a LOCAL probe", check).await;
}
