//! The PROXY protocol end to end: ringlb sending v1 and v2 headers to backends (`send_proxy`),
//! from IPv4 and IPv6 clients, on probes too; and ringlb receiving them from a trusted balancer
//! in front of it (`accept_proxy`), whole, split, slow, invalid or oversized.
//!
//! Clients bind to distinct `127.0.0.x` source addresses so the address that arrives at the
//! backend can only be the real client's. Every wait is bounded (`common::DEADLINE`).

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{
    line::{connect_from, exchange, talk, LineBackend, LineOptions, SeenHeader},
    *,
};
use ringlb::{
    config::{HealthCheckKind, IoBackend, RelayMode, SendProxy, Target, TargetAddress},
    metrics::WorkerCounter,
    proxy_protocol::{Addresses, Command, Header, Version},
    Config,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
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

/// A configuration on `io` with `send_proxy` as the default of `targets`.
fn proxied_config(
    io: IoBackend,
    targets: Vec<Target>,
    send_proxy: SendProxy,
    relay: RelayMode,
) -> Config {
    let mut cfg = config(io, &[], relay);
    cfg.live.targets = targets;
    cfg.live.send_proxy = send_proxy;
    cfg
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

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_proxy_v1_and_v2_carry_the_real_client_address(io: IoBackend, relay: RelayMode) {
        for (setting, version) in [(SendProxy::V1, Version::V1), (SendProxy::V2, Version::V2)] {
            let backend = strict_backend("b").await;
            let cfg = proxied_config(io, vec![target(backend.addr)], setting, relay);
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
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_proxy_from_ipv6_and_ipv4_clients_of_a_dual_stack_listener(io: IoBackend) {
        if !ipv6_loopback() {
            return;
        }
        for setting in [SendProxy::V1, SendProxy::V2] {
            let backend = strict_backend("b").await;
            let mut cfg = proxied_config(io, vec![target(backend.addr)], setting, RelayMode::Copy);
            cfg.startup.listen = "[::]:0".parse().unwrap();
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
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_can_turn_send_proxy_off_and_probes_carry_a_local_header(io: IoBackend) {
        let strict = strict_backend("strict").await;
        let plain = LineBackend::start("plain", LineOptions::default()).await;
        let mut off = target(plain.addr);
        off.send_proxy = Some(SendProxy::Off);
        let mut v1 = target(strict.addr);
        v1.send_proxy = Some(SendProxy::V1);
        let cfg = proxied_config(io, vec![v1, off], SendProxy::V2, RelayMode::Copy);
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
        let cfg = proxied_config(
            io,
            vec![target(strict_v2.addr)],
            SendProxy::V2,
            RelayMode::Copy,
        );
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
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_connect_with_a_linked_header_moves_on_to_the_next_backend(io: IoBackend) {
        let live = strict_backend("live").await;
        let mut cfg = proxied_config(
            io,
            vec![target(dead_addr()), target(live.addr)],
            SendProxy::V2,
            RelayMode::Copy,
        );
        // Only the start-up priming: the dead target stays in until a connect fails.
        cfg.live.health_check.interval = Duration::from_secs(3600);
        cfg.startup.workers = 1;
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
);

async fn line_eventually(check: impl FnMut() -> bool) {
    common::line::eventually("a LOCAL probe", check).await;
}

// ---------------------------------------------------------------------------------------------
// accept_proxy

/// A ringlb with `accept_proxy = true` in front of `backend`, sending it v2 headers, so the
/// backend reports which client ringlb believed it served.
fn behind_a_balancer(io: IoBackend, backend: &LineBackend) -> Proxy {
    let mut cfg = proxied_config(
        io,
        vec![target(backend.addr)],
        SendProxy::V2,
        RelayMode::Copy,
    );
    cfg.live.traffic.accept_proxy = true;
    Proxy::start(&cfg)
}

/// Connects to the proxy, writes `chunks` with `pause` between them, and returns the answers
/// to `lines` sent afterwards (none if the proxy closed).
async fn through(proxy: &Proxy, chunks: &[&[u8]], pause: Duration, lines: &[&str]) -> Vec<String> {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    for chunk in chunks {
        stream.write_all(chunk).await.unwrap();
        tokio::time::sleep(pause).await;
    }
    talk(stream, lines).await
}

/// Whether the proxy closes a client that wrote `bytes`, within `within`; returns how long it
/// took.
async fn closed_after(proxy: &Proxy, bytes: &[u8], within: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => started.elapsed(),
        Ok(Ok(n)) => panic!("the proxy answered {:?}", &buf[..n]),
        Err(_) => panic!("still open after {within:?}"),
    }
}

fn v1_header(src: &str, dst: &str) -> Vec<u8> {
    Header::v1(src.parse().unwrap(), dst.parse().unwrap())
        .as_bytes()
        .to_vec()
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accept_proxy_takes_the_client_address_from_a_valid_header(io: IoBackend) {
        let backend = strict_backend("b").await;
        let proxy = behind_a_balancer(io, &backend);
        proxy.wait_healthy(1).await;
        let v1 = v1_header("192.0.2.7:40000", "198.51.100.1:443");
        let v2 = Header::v2(
            "[2001:db8::7]:40001".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
        );
        for (header, client) in [
            (v1.as_slice(), "192.0.2.7:40000"),
            (v2.as_bytes(), "[2001:db8::7]:40001"),
        ] {
            // The client's first bytes arrive in the same segment as the header: forwarded too.
            let first = [header, b"PING\r\n"].concat();
            // One answer is read per line sent: the first line's answer is the early PING's.
            let answers = through(&proxy, &[&first], Duration::ZERO, &["PEER", "PEER"]).await;
            assert_eq!(answers, ["+PONG", &format!("+{client}")]);
        }
        let seen: Vec<Addresses> = backend.proxied().iter().map(|h| h.addresses).collect();
        assert_eq!(
            seen,
            [
                Addresses::Tcp {
                    src: "192.0.2.7:40000".parse().unwrap(),
                    dst: "198.51.100.1:443".parse().unwrap()
                },
                Addresses::Tcp {
                    src: "[2001:db8::7]:40001".parse().unwrap(),
                    dst: "[2001:db8::1]:443".parse().unwrap()
                },
            ]
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accept_proxy_reads_headers_split_and_slow_and_keeps_the_real_client_for_local(
        io: IoBackend,
    ) {
        let backend = strict_backend("b").await;
        let proxy = behind_a_balancer(io, &backend);
        proxy.wait_healthy(1).await;
        // Byte by byte, with the client's data split in the middle of the last read.
        let v1 = v1_header("192.0.2.8:1", "198.51.100.1:2");
        let mut bytes: Vec<&[u8]> = v1.chunks(1).collect();
        bytes.push(b"PI");
        let answers = through(&proxy, &bytes, Duration::from_millis(2), &["NG", "PEER"]).await;
        assert_eq!(answers, ["+PONG", "+192.0.2.8:1"]);

        // A v2 header in three reads spread over 1.5 s: slow, but within the 5 s budget.
        let v2 = Header::v2(
            "192.0.2.9:3".parse().unwrap(),
            "198.51.100.1:4".parse().unwrap(),
        );
        let (a, rest) = v2.as_bytes().split_at(5);
        let (b, c) = rest.split_at(14);
        let answers = through(&proxy, &[a, b, c], Duration::from_millis(500), &["PEER"]).await;
        assert_eq!(answers, ["+192.0.2.9:3"]);

        // LOCAL (v2) and UNKNOWN (v1) name no client: the real connection's endpoints stand.
        for header in [Header::v2_local(), Header::v1_unknown()] {
            let stream = TcpStream::connect(proxy.addr).await.unwrap();
            let real = stream.local_addr().unwrap();
            let mut stream = stream;
            stream.write_all(header.as_bytes()).await.unwrap();
            assert_eq!(talk(stream, &["PEER"]).await, [format!("+{real}")]);
        }
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_headers_close_the_client_reach_no_backend_and_ringlb_keeps_serving(io: IoBackend) {
        let backend = strict_backend("b").await;
        let proxy = behind_a_balancer(io, &backend);
        proxy.wait_healthy(1).await;
        let mut oversized_v2 = ringlb::proxy_protocol::V2_SIGNATURE.to_vec();
        oversized_v2.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let cases: [(&str, Vec<u8>); 5] = [
            ("plain HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            (
                "a bad address",
                b"PROXY TCP4 1.2.3 4.5.6.7 1 2\r\nPING\r\n".to_vec(),
            ),
            (
                "a v1 line past 107 bytes",
                [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 120]].concat(),
            ),
            ("a v2 header past the cap", oversized_v2),
            ("TLS", vec![0x16, 0x03, 0x01, 0x02, 0x00]),
        ];
        let probes_only = backend.accepted();
        for (what, bytes) in cases {
            let took = closed_after(&proxy, &bytes, Duration::from_secs(2)).await;
            assert!(
                took < Duration::from_secs(1),
                "{what}: closed after {took:?}"
            );
            let answers = through(
                &proxy,
                &[&v1_header("192.0.2.10:5", "198.51.100.1:6")],
                Duration::ZERO,
                &["PING"],
            )
            .await;
            assert_eq!(answers, ["+PONG"], "serving after {what}");
        }
        let refused = proxy
            .server()
            .metrics()
            .total(WorkerCounter::ProxyHeaderRefused);
        assert_eq!(refused, 5, "every refused header is counted");
        // Only probes and the good clients ever reached the backend, and every header it got was
        // valid (probes' included).
        let good = backend.proxied().len();
        assert_eq!(good, 5);
        assert!(backend.accepted() >= probes_only + good);
        assert!(
            backend.refused.lock().unwrap().is_empty(),
            "nothing invalid was forwarded"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_header_not_complete_within_5_s_closes_the_client(io: IoBackend) {
        let backend = strict_backend("b").await;
        let proxy = behind_a_balancer(io, &backend);
        proxy.wait_healthy(1).await;
        // A header that stops halfway, and a client that sends nothing at all, side by side.
        let (partial, silent) = tokio::join!(
            closed_after(&proxy, b"PROXY TCP4 192.0.2.1", Duration::from_secs(8)),
            closed_after(&proxy, b"", Duration::from_secs(8)),
        );
        for took in [partial, silent] {
            assert!(took >= Duration::from_millis(4500), "closed after {took:?}");
        }
        let answers = through(
            &proxy,
            &[&v1_header("192.0.2.11:7", "198.51.100.1:8")],
            Duration::ZERO,
            &["PING"],
        )
        .await;
        assert_eq!(answers, ["+PONG"]);
        assert!(backend.refused.lock().unwrap().is_empty());
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_send_proxy_early_bytes_are_forwarded_and_source_hash_uses_the_header(
        io: IoBackend,
    ) {
        let a = LineBackend::start("a", LineOptions::default()).await;
        let b = LineBackend::start("b", LineOptions::default()).await;
        let mut cfg = proxied_config(
            io,
            vec![target(a.addr), target(b.addr)],
            SendProxy::Off,
            RelayMode::Copy,
        );
        cfg.live.traffic.accept_proxy = true;
        cfg.live.balance = ringlb::config::Strategy::SourceHash;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;
        let mut by_client = std::collections::HashMap::new();
        for round in 0..2 {
            for i in 1..=20 {
                let header = v1_header(&format!("192.0.2.{i}:{}", 1000 + round), "198.51.100.1:1");
                let first = [header.as_slice(), b"NAME\r\n"].concat();
                let answers = through(&proxy, &[&first], Duration::ZERO, &["PING", "PING"]).await;
                assert_eq!(answers.len(), 2, "{answers:?}");
                assert_eq!(answers[1], "+PONG");
                let previous = by_client.insert(i, answers[0].clone());
                if let Some(previous) = previous {
                    assert_eq!(previous, answers[0], "client {i} moved to another backend");
                }
            }
        }
        let mut names: Vec<&String> = by_client.values().collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            2,
            "20 header addresses spread over both backends"
        );
    }
);

/// A backend that resets every connection without a byte of answer, like a listener closing
/// with clients in its backlog: after reading what arrives first, or (`read_first` false) at
/// once, so that ringlb's PROXY header send itself tends to fail.
async fn early_closer(read_first: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                if read_first {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                }
                let socket = socket2::Socket::from(stream.into_std().unwrap());
                let _ = socket.set_linger(Some(Duration::ZERO));
            });
        }
    });
    (addr, accepted)
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_to_another_backend_sends_the_header_and_the_early_bytes_again(io: IoBackend) {
        replay_past_an_early_closer(io, true).await;
    }
);

io_backends!(
    /// The backend resets before ringlb's header is (all) sent: with `retry_on_early_close` that
    /// is an early close like any other, not a reason to drop the client.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backend_resetting_during_the_header_send_is_replayed_elsewhere(io: IoBackend) {
        replay_past_an_early_closer(io, false).await;
    }
);

io_backends!(
    /// Bytes a client sends while ringlb connects the next backend of a replay wait for that
    /// connect and its PROXY header: they never overtake the header. The next backend's accept
    /// queue is full, so its connect takes a SYN retransmission (about a second), and the
    /// client speaks again meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_bytes_sent_while_the_next_backend_connects_follow_its_header(io: IoBackend) {
        let (closer_addr, closed) = early_closer(true).await;
        let (slow, fillers) = full_listener();
        let mut targets = vec![target(closer_addr), target(slow.local_addr().unwrap())];
        for t in &mut targets {
            t.health_check = HealthCheckKind::None;
            t.health_check_send = None;
            t.health_check_expect = None;
        }
        let mut cfg = proxied_config(io, targets, SendProxy::V2, RelayMode::Copy);
        cfg.live.traffic.accept_proxy = true;
        cfg.live.traffic.retry_on_early_close = true;
        cfg.live.traffic.connect_timeout = Duration::from_secs(8);
        cfg.startup.workers = 1;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;

        let client = "192.0.2.9:4000";
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let header = v1_header(client, "198.51.100.1:6379");
        stream
            .write_all(&[header.as_slice(), b"NAME\r\n"].concat())
            .await
            .unwrap();
        // Round robin starts at the first target: the closer resets, ringlb retries.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while proxy.server().metrics().total(WorkerCounter::Retry) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no retry");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            closed.load(Ordering::Relaxed),
            1,
            "the closer had the client first"
        );
        // The connect to the full listener is waiting for its SYN's retransmission.
        stream.write_all(b"PEER\r\n").await.unwrap();

        // Drain the queue: the retransmitted SYN gets in, the connect completes.
        let slow = tokio::net::TcpListener::from_std(slow).unwrap();
        let mut backend = loop {
            let (conn, peer) = tokio::time::timeout(DEADLINE, slow.accept())
                .await
                .expect("ringlb connects the second backend")
                .unwrap();
            if !fillers.iter().any(|f| f.local_addr().ok() == Some(peer)) {
                break conn;
            }
        };
        let mut got = Vec::new();
        let rest = loop {
            let mut chunk = [0u8; 256];
            let n = tokio::time::timeout(DEADLINE, backend.read(&mut chunk))
                .await
                .expect("the header and the client's bytes arrive")
                .unwrap();
            assert!(n > 0, "closed after {got:?}");
            got.extend_from_slice(&chunk[..n]);
            match ringlb::proxy_protocol::parse(&got) {
                ringlb::proxy_protocol::ParseOutcome::Complete { header, consumed } => {
                    let src: SocketAddr = client.parse().unwrap();
                    assert!(
                        matches!(header.addresses, Addresses::Tcp { src: s, .. } if s == src),
                        "{header:?}"
                    );
                    if got.len() - consumed >= 12 {
                        break got[consumed..].to_vec();
                    }
                }
                ringlb::proxy_protocol::ParseOutcome::Incomplete { .. } => {}
                ringlb::proxy_protocol::ParseOutcome::Invalid(e) => {
                    panic!("the backend's first bytes are no PROXY header ({e:?}): {got:?}")
                }
            }
        };
        assert_eq!(
            rest,
            b"NAME\r\nPEER\r\n",
            "{:?}",
            String::from_utf8_lossy(&rest)
        );
        // Committed once the backend speaks: the relay carries both ways from there.
        backend.write_all(b"+slow\r\n+peer\r\n").await.unwrap();
        let answers = talk(stream, &["PING"]).await;
        assert_eq!(answers, ["+slow"]);
        drop(fillers);
    }
);

/// A listener whose accept queue is full, and the connections that fill it: Linux drops
/// further SYNs until one is accepted.
fn full_listener() -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    socket.set_nonblocking(true).unwrap();
    let listener: std::net::TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(filler) => fillers.push(filler),
            Err(_) => return (listener, fillers),
        }
    }
    panic!("the accept queue of {addr} never filled");
}

async fn replay_past_an_early_closer(io: IoBackend, read_first: bool) {
    let good = strict_backend("good").await;
    let (closer_addr, closed) = early_closer(read_first).await;
    let mut closer = target(closer_addr);
    closer.health_check = HealthCheckKind::None;
    closer.health_check_send = None;
    closer.health_check_expect = None;
    let mut cfg = proxied_config(
        io,
        vec![closer, target(good.addr)],
        SendProxy::V2,
        RelayMode::Copy,
    );
    cfg.live.traffic.accept_proxy = true;
    cfg.live.traffic.retry_on_early_close = true;
    cfg.startup.workers = 1;
    let proxy = Proxy::start(&cfg);
    for i in 1..=10 {
        proxy.wait_healthy(2).await;
        let client = format!("192.0.2.{i}:4000");
        let header = v1_header(&client, "198.51.100.1:6379");
        let first = [header.as_slice(), b"NAME\r\n"].concat();
        let answers = through(&proxy, &[&first], Duration::ZERO, &["PEER", "PEER"]).await;
        assert_eq!(
            answers,
            ["+good".to_owned(), format!("+{client}")],
            "client {i}"
        );
    }
    assert!(good.refused.lock().unwrap().is_empty());
    assert!(closed.load(Ordering::Relaxed) >= 3, "replays happened");
}
