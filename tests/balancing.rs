//! Balancing strategies end to end: weights, least connections, power of two, source hash,
//! and passive ejection of a backend whose connect fails.

mod common;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use common::*;
use ringlb::{
    balancer::Strategy,
    config::{IoBackend, RelayMode},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

fn weighted(config: &mut ringlb::Config, weights: &[u32]) {
    for (t, &w) in config.live.targets.iter_mut().zip(weights) {
        t.weight = w;
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn weights_3_1_0_are_honoured_smoothly(io: IoBackend) {
        let a = NamedBackend::start("A").await;
        let b = NamedBackend::start("B").await;
        let c = NamedBackend::start("C").await;
        let mut cfg = config(io, &[a.addr, b.addr, c.addr], RelayMode::Copy);
        weighted(&mut cfg, &[3, 1, 0]);
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(3).await;
        let mut seen = Vec::with_capacity(400);
        for _ in 0..400 {
            seen.push(body(&get(proxy.addr).await));
        }
        let count = |n: &str| seen.iter().filter(|s| *s == n).count();
        assert!((270..=330).contains(&count("A")), "A got {}", count("A"));
        assert!((90..=110).contains(&count("B")), "B got {}", count("B"));
        assert_eq!(count("C"), 0, "weight 0 receives nothing");
        for window in seen.windows(8) {
            assert!(window.iter().any(|s| s == "B"), "no B in {window:?}");
        }
    }
);

/// A backend that tells its name on connect and keeps the connection open until the client
/// closes it, answering health probes with 200.
async fn holding_backend(name: &'static str, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if answered_health_probe(&mut s, &buf[..n]).await {
                    return;
                }
                let _ = s.write_all(name.as_bytes()).await;
                let _ = s.read(&mut buf).await; // until the client closes
            });
        }
    })
}

/// Opens a long-lived connection through `proxy` and returns it with the backend's name.
async fn hold(proxy: SocketAddr) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    let mut name = [0u8; 1];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut name))
        .await
        .expect("backend named itself")
        .unwrap();
    (s, String::from_utf8_lossy(&name).into_owned())
}

async fn new_connections_go_to_the_idle_backend(io: IoBackend, strategy: Strategy) {
    let a_addr = dead_addr();
    let b_addr = dead_addr();
    let _a = holding_backend("A", a_addr).await;
    let mut cfg = config(io, &[a_addr, b_addr], RelayMode::SpliceInline);
    cfg.live.balance = strategy;
    let proxy = Proxy::start(&cfg);
    proxy.wait_healthy(1).await;
    // Only A is up: it collects six long-lived connections (over both workers).
    let mut held = Vec::new();
    for _ in 0..6 {
        let (s, name) = hold(proxy.addr).await;
        assert_eq!(name, "A");
        held.push(s);
    }
    let _b = holding_backend("B", b_addr).await;
    proxy.wait_healthy(2).await;
    for i in 0..5 {
        let (s, name) = hold(proxy.addr).await;
        assert_eq!(
            name, "B",
            "{strategy}: connection {i} went to the busy backend"
        );
        held.push(s);
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn least_connections_prefers_the_idle_backend(io: IoBackend) {
        new_connections_go_to_the_idle_backend(io, Strategy::LeastConnections).await;
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn power_of_two_prefers_the_idle_backend(io: IoBackend) {
        new_connections_go_to_the_idle_backend(io, Strategy::PowerOfTwo).await;
    }
);

/// One request from a client bound to `source`; returns the backend's name.
async fn get_from(proxy: SocketAddr, source: std::net::IpAddr) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let mut s = socket.connect(proxy).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    body(&out)
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn source_hash_keeps_clients_on_their_backend(io: IoBackend) {
        const NAMES: [&str; 5] = ["A", "B", "C", "D", "E"];
        let mut backends = Vec::new();
        for name in NAMES {
            backends.push(NamedBackend::start(name).await);
        }
        let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
        let mut cfg = config(io, &addrs, RelayMode::Copy);
        cfg.live.balance = Strategy::SourceHash;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(5).await;
        let clients: Vec<std::net::IpAddr> = (2..62)
            .map(|i| format!("127.0.0.{i}").parse().unwrap())
            .collect();
        let mut first = HashMap::new();
        for &c in &clients {
            let name = get_from(proxy.addr, c).await;
            for _ in 0..2 {
                assert_eq!(get_from(proxy.addr, c).await, name, "{c} moved");
            }
            first.insert(c, name);
        }
        let used: std::collections::HashSet<&String> = first.values().collect();
        assert!(
            used.len() >= 4,
            "sixty clients spread over the backends: {used:?}"
        );

        // Stop C: only its clients move; at least 90% of the others keep their backend.
        let stopped = backends.remove(2).stop().await;
        let _ = stopped;
        proxy.wait_healthy(4).await;
        let others: Vec<_> = clients.iter().filter(|c| first[c] != "C").collect();
        let mut kept = 0;
        for &&c in &others {
            let now = get_from(proxy.addr, c).await;
            assert_ne!(now, "C");
            if now == first[&c] {
                kept += 1;
            }
        }
        assert!(
            kept * 10 >= others.len() * 9,
            "only {kept} of {} clients kept their backend",
            others.len()
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_connect_retries_elsewhere_and_ejects_at_once(io: IoBackend) {
        let a = NamedBackend::start("A").await;
        let b = NamedBackend::start("B").await;
        let mut cfg = config(io, &[b.addr, a.addr], RelayMode::Copy);
        // One probe round (at start), then none during the test: only the workers' passive check
        // can take B out once it dies.
        cfg.live.health_check.interval = Duration::from_secs(3600);
        cfg.startup.workers = 1;
        let proxy = Proxy::start(&cfg);
        let mut rounds = proxy.server().health_status().subscribe_rounds();
        tokio::time::timeout(DEADLINE, rounds.wait_for(|&r| r >= 1))
            .await
            .unwrap()
            .unwrap();
        proxy.wait_healthy(2).await;
        b.stop().await;
        for _ in 0..10 {
            assert_eq!(
                body(&get(proxy.addr).await),
                "A",
                "never a 503 while A lives"
            );
        }
        proxy.wait_healthy(1).await;
    }
);
