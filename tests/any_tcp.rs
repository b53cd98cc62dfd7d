//! ringlb in front of services that do not speak HTTP: TCP health checks (bare, with send and
//! expect, on another port), targets that are never probed, the no-backend answers a non-HTTP
//! client understands (`close`, `reset`), and IPv6 listeners and targets.
//!
//! Every test runs the real server in-process on loopback, talks to it over TCP and bounds
//! every wait (`common::DEADLINE`).

mod common;

use std::{
    io,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use common::{
    line::{eventually, exchange, LineBackend, LineOptions},
    *,
};
use ringlb::{
    config::{HealthCheckKind, IoBackend, OnNoBackend, RelayMode, Target, TargetAddress},
    metrics::WorkerCounter,
    Config,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A target at `addr` checked by `kind` (HTTP checks request `/healthz`).
fn target(addr: SocketAddr, kind: HealthCheckKind) -> Target {
    Target {
        address: TargetAddress {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        health_check: kind,
        health_check_endpoint: match kind {
            HealthCheckKind::Http => "/healthz".into(),
            _ => String::new(),
        },
        ..Default::default()
    }
}

/// A Redis-style check: `PING` must be answered `+PONG`.
fn redis_target(addr: SocketAddr) -> Target {
    Target {
        health_check_send: Some("PING\r\n".into()),
        health_check_expect: Some("+PONG".into()),
        ..target(addr, HealthCheckKind::Tcp)
    }
}

/// The test configuration (fast checks, two workers, copy relay) on `io` for `targets`.
fn l4_config(io: IoBackend, targets: Vec<Target>) -> Config {
    let mut cfg = config(io, &[], RelayMode::Copy);
    cfg.live.targets = targets;
    cfg
}

/// The last probe outcome of target `index`'s endpoint `addr`, as the log and status show it.
fn last_reason(proxy: &Proxy, index: usize, addr: SocketAddr) -> Option<String> {
    let report = proxy.server().health_status().report();
    let last = report.endpoint(index, addr)?.last.clone()?;
    Some(match last {
        Ok(()) => "ok".into(),
        Err(reason) => reason.to_string(),
    })
}

/// The admin API's `GET /status` document.
async fn admin_status(proxy: &Proxy) -> String {
    let admin = proxy.server().admin_addr().expect("admin enabled in tests");
    let mut stream = TcpStream::connect(admin).await.unwrap();
    let request = b"GET /status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("the status within the deadline")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Waits (bounded) until `n` more health rounds have finished.
async fn rounds(proxy: &Proxy, n: u64) {
    let status = proxy.server().health_status();
    let target = status.rounds() + n;
    let mut rx = status.subscribe_rounds();
    tokio::time::timeout(DEADLINE, rx.wait_for(|&r| r >= target))
        .await
        .expect("health rounds within the deadline")
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Health checks

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_expect_keeps_out_a_target_that_a_bare_connect_would_let_in(io: IoBackend) {
        let good = LineBackend::start("good", LineOptions::default()).await;
        let locked = LineBackend::start(
            "locked",
            LineOptions {
                noauth: true,
                ..Default::default()
            },
        )
        .await;
        let proxy = Proxy::start(&l4_config(
            io,
            vec![redis_target(good.addr), redis_target(locked.addr)],
        ));
        proxy.wait_healthy(1).await;
        assert_eq!(
            last_reason(&proxy, 1, locked.addr).as_deref(),
            Some("expect mismatch: got \"-NOAUTH Authentication required\"")
        );
        assert_eq!(last_reason(&proxy, 0, good.addr).as_deref(), Some("ok"));
        let status = admin_status(&proxy).await;
        let reason = r#""reason": "expect mismatch: got \"-NOAUTH Authentication required\"""#;
        assert!(status.contains(reason), "{status}");
        for _ in 0..4 {
            let answers = exchange(proxy.addr, None, &["PING", "NAME"]).await;
            assert_eq!(answers, ["+PONG", "+good"]);
        }
        // Every passed probe ends with an orderly close: the backend never sees a reset.
        rounds(&proxy, 3).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(good.accepted() >= 4, "probed every round");
        assert_eq!(good.resets.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bare_tcp_check_needs_only_a_listener(io: IoBackend) {
        let line = LineBackend::start("db", LineOptions::default()).await;
        let dead = dead_addr();
        // No endpoint: the check defaults to a plain connect.
        let proxy = Proxy::start(&l4_config(
            io,
            vec![
                target(line.addr, HealthCheckKind::Tcp),
                target(dead, HealthCheckKind::Tcp),
            ],
        ));
        proxy.wait_healthy(1).await;
        eventually("the refused reason", || {
            last_reason(&proxy, 1, dead).as_deref() == Some("refused")
        })
        .await;
        for _ in 0..4 {
            assert_eq!(exchange(proxy.addr, None, &["NAME"]).await, ["+db"]);
        }
        let probes = line.accepted();
        rounds(&proxy, 2).await;
        assert!(
            line.accepted() > probes,
            "the live target is probed every round"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_check_port_probes_the_other_port(io: IoBackend) {
        let traffic = LineBackend::start("app", LineOptions::default()).await;
        let health = LineBackend::start("health", LineOptions::default()).await;
        let mut checked = redis_target(traffic.addr);
        checked.health_check_port = Some(health.addr.port());
        let proxy = Proxy::start(&l4_config(io, vec![checked]));
        proxy.wait_healthy(1).await;
        rounds(&proxy, 2).await;
        assert!(health.accepted() >= 2, "probes go to the health port");
        let before = traffic.accepted();
        assert_eq!(exchange(proxy.addr, None, &["NAME"]).await, ["+app"]);
        assert_eq!(
            traffic.accepted(),
            before + 1,
            "only the client reached the traffic port"
        );

        // The traffic port still answers, but the health port is gone: the target leaves.
        let health_addr = health.stop().await;
        proxy.wait_healthy(0).await;
        assert_eq!(
            last_reason(&proxy, 0, traffic.addr).as_deref(),
            Some("refused")
        );
        let _health = LineBackend::start_on(health_addr, "health", LineOptions::default()).await;
        proxy.wait_healthy(1).await;
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_checked_with_none_is_never_probed(io: IoBackend) {
        let line = LineBackend::start("quiet", LineOptions::default()).await;
        let proxy = Proxy::start(&l4_config(
            io,
            vec![target(line.addr, HealthCheckKind::None)],
        ));
        proxy.wait_healthy(1).await;
        rounds(&proxy, 3).await;
        assert_eq!(line.accepted(), 0, "no probe ever connects");
        assert_eq!(exchange(proxy.addr, None, &["NAME"]).await, ["+quiet"]);
        assert_eq!(line.accepted(), 1);
        proxy.wait_healthy(1).await;
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_none_target_is_ejected_by_a_failed_connect_and_returns_after_the_back_off(
        io: IoBackend,
    ) {
        let dead = dead_addr();
        let mut cfg = l4_config(io, vec![target(dead, HealthCheckKind::None)]);
        cfg.live.health_check.interval = Duration::from_millis(400);
        cfg.startup.workers = 1;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(1).await;
        // The connect fails: the client gets the no-backend answer and the target is ejected...
        assert!(get(proxy.addr).await.starts_with(b"HTTP/1.1 503 "));
        proxy.wait_healthy(0).await;
        let out_since = tokio::time::Instant::now();
        assert_eq!(
            last_reason(&proxy, 0, dead).as_deref(),
            Some("connect failed in traffic: Connection refused (os error 111)")
        );
        // ...and comes back one interval later, without a probe.
        proxy.wait_healthy(1).await;
        let out_for = out_since.elapsed();
        assert!(
            out_for >= Duration::from_millis(250),
            "back after {out_for:?}"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_checks_are_unchanged(io: IoBackend) {
        let a = NamedBackend::start("A").await;
        let proxy = Proxy::start(&l4_config(io, vec![target(a.addr, HealthCheckKind::Http)]));
        proxy.wait_healthy(1).await;
        rounds(&proxy, 1).await;
        assert_eq!(last_reason(&proxy, 0, a.addr).as_deref(), Some("ok"));
        assert_eq!(body(&get(proxy.addr).await), "A");
    }
);

// ---------------------------------------------------------------------------------------------
// The answer when no target is healthy

/// A proxy whose only target is dead, answering clients as `answer` says.
fn without_backend(io: IoBackend, answer: OnNoBackend) -> Proxy {
    let mut cfg = l4_config(io, vec![target(dead_addr(), HealthCheckKind::Tcp)]);
    cfg.live.traffic.on_no_backend = answer;
    Proxy::start(&cfg)
}

/// What a client that sent `request` reads: every byte until EOF, or the error that ended it.
async fn client_sees(proxy: &Proxy, request: &[u8]) -> io::Result<Vec<u8>> {
    tokio::time::timeout(DEADLINE, async {
        let mut stream = TcpStream::connect(proxy.addr).await?;
        stream.write_all(request).await?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await?;
        Ok(out)
    })
    .await
    .expect("the answer within the deadline")
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_no_backend_close_is_a_fin_without_bytes(io: IoBackend) {
        let proxy = without_backend(io, OnNoBackend::Close);
        for _ in 0..2 {
            // Even with unread bytes from the client, the client sees EOF, not a reset.
            assert_eq!(client_sees(&proxy, b"PING\r\n").await.unwrap(), b"");
            assert_eq!(client_sees(&proxy, b"").await.unwrap(), b"");
            proxy.wait_healthy(0).await;
        }
        assert_eq!(proxy.server().metrics().total(WorkerCounter::Rejected), 4);
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_no_backend_reset_is_a_connection_reset(io: IoBackend) {
        let proxy = without_backend(io, OnNoBackend::Reset);
        for _ in 0..2 {
            let error = client_sees(&proxy, b"").await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
            proxy.wait_healthy(0).await;
        }
        eventually("both resets counted", || {
            proxy.server().metrics().total(WorkerCounter::Rejected) == 2
        })
        .await;
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_no_backend_defaults_to_the_seeds_503(io: IoBackend) {
        let proxy = without_backend(io, OnNoBackend::default());
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            client_sees(&proxy, request).await.unwrap(),
            ringlb::RESPONSE_503
        );
    }
);

// ---------------------------------------------------------------------------------------------
// IPv6

/// Whether `::1` can be bound here; IPv6 tests skip (saying so) where it cannot.
fn ipv6_loopback() -> bool {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping: IPv6 loopback ::1 is unavailable on this machine ({e})");
            false
        }
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ipv6_listener_and_ipv6_targets(io: IoBackend) {
        if !ipv6_loopback() {
            return;
        }
        let v6 = "[::1]:0".parse().unwrap();
        let a = LineBackend::start_on(v6, "a", LineOptions::default()).await;
        let b = LineBackend::start_on(v6, "b", LineOptions::default()).await;
        let mut cfg = l4_config(io, vec![redis_target(a.addr), redis_target(b.addr)]);
        cfg.startup.listen = "[::1]:0".parse().unwrap();
        let proxy = Proxy::start(&cfg);
        assert!(proxy.addr.is_ipv6());
        proxy.wait_healthy(2).await;
        let mut names = Vec::new();
        for _ in 0..4 {
            let answers = exchange(proxy.addr, None, &["NAME", "PEER"]).await;
            let peer: SocketAddr = answers[1].trim_start_matches('+').parse().unwrap();
            assert_eq!(peer.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST), "{answers:?}");
            names.push(answers[0].clone());
        }
        assert!(
            names.contains(&"+a".into()) && names.contains(&"+b".into()),
            "{names:?}"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dual_stack_listener_serves_both_families_over_mixed_targets(io: IoBackend) {
        if !ipv6_loopback() {
            return;
        }
        let v4 = LineBackend::start("v4", LineOptions::default()).await;
        let v6 =
            LineBackend::start_on("[::1]:0".parse().unwrap(), "v6", LineOptions::default()).await;
        let mut cfg = l4_config(
            io,
            vec![
                target(v4.addr, HealthCheckKind::Tcp),
                target(v6.addr, HealthCheckKind::Tcp),
            ],
        );
        cfg.startup.listen = "[::]:0".parse().unwrap();
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;
        let port = proxy.addr.port();
        let mut names = Vec::new();
        for client in ["127.0.0.1", "::1", "127.0.0.1", "::1"] {
            let addr = SocketAddr::new(client.parse().unwrap(), port);
            names.extend(exchange(addr, None, &["NAME"]).await);
        }
        names.sort();
        assert_eq!(names, ["+v4", "+v4", "+v6", "+v6"]);
    }
);

/// Resolves every name to one fixed address list.
struct Fixed(Vec<SocketAddr>);

impl ringlb::health::Resolver for Fixed {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ringlb::health::ResolveFuture<'a> {
        let addrs = self.0.clone();
        Box::pin(async move { Ok(addrs) })
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_resolving_to_aaaa_records_is_probed_and_served_over_ipv6(io: IoBackend) {
        if !ipv6_loopback() {
            return;
        }
        let backend =
            LineBackend::start_on("[::1]:0".parse().unwrap(), "aaaa", LineOptions::default()).await;
        let port = backend.addr.port();
        // The checker follows whatever the resolver answers: an AAAA answer is an IPv6 endpoint.
        let named = Target {
            address: TargetAddress {
                host: "cache.internal".into(),
                port,
            },
            ..redis_target(backend.addr)
        };
        let balancer = std::sync::Arc::new(ringlb::balancer::Balancer::new());
        let mut checker = ringlb::health::HealthChecker::new(
            vec![named],
            l4_config(io, vec![]).live.health_check,
            balancer.clone(),
        )
        .with_resolver(std::sync::Arc::new(Fixed(vec![backend.addr])));
        checker.run_round().await;
        assert_eq!(balancer.healthy_count(), 1);
        let report = checker.status_handle().report();
        assert_eq!(report.endpoint(0, backend.addr).unwrap().last, Some(Ok(())));

        // End to end through the system resolver, where a local name has an AAAA record.
        let Some(name) = ["ip6-localhost", "localhost6", "localhost"]
            .into_iter()
            .find(|name| {
                std::net::ToSocketAddrs::to_socket_addrs(&(*name, port))
                    .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == Ipv6Addr::LOCALHOST))
            })
        else {
            eprintln!("skipping the end-to-end half: no local name resolves to ::1 here");
            return;
        };
        let named = Target {
            address: TargetAddress {
                host: name.into(),
                port,
            },
            ..redis_target(backend.addr)
        };
        let proxy = Proxy::start(&l4_config(io, vec![named]));
        eventually("the ::1 endpoint of the name to be up", || {
            last_reason(&proxy, 0, backend.addr).as_deref() == Some("ok")
        })
        .await;
        assert_eq!(exchange(proxy.addr, None, &["NAME"]).await, ["+aaaa"]);
    }
);
