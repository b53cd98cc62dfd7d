//! Many services in one process: each service's listeners reach only its own pools, and a
//! service with SNI routes sends each TLS client to the pool its ClientHello names, forwarding
//! every byte unchanged; hellos that are broken, too large or too slow are refused.

mod common;

use std::time::{Duration, Instant};

use common::{
    io_backends,
    services::{client_hello, exchange, pool, service, services_config, Recorder},
    Proxy,
};
use ringlb::config::{IoBackend, OnNoBackend};

/// The proxy's address for service `name`.
fn addr_of(proxy: &Proxy, name: &str) -> std::net::SocketAddr {
    proxy.server().service_addr(name).expect("the service runs")
}

/// The sum of `name`'s samples in the proxy's `/metrics`.
async fn metric(proxy: &Proxy, name: &str) -> f64 {
    let admin = proxy.server().admin_addr().expect("the admin listener");
    let (_, text) = common::admin_http::get(admin, "/metrics").await;
    common::admin_http::metric(&text, name)
}

/// Waits (bounded) until every pool's checker has admitted all its targets.
async fn wait_pools(proxy: &Proxy) {
    let deadline = Instant::now() + common::DEADLINE;
    for handle in proxy.server().pools() {
        while handle
            .status
            .report()
            .targets
            .iter()
            .any(|t| t.endpoints.is_empty())
        {
            assert!(
                Instant::now() < deadline,
                "pool {} never resolved",
                handle.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

io_backends!(
    /// An HTTP-ish service, a line service and a TLS service in one process: every client
    /// reaches the pool of the service it connected to, and no other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_service_reaches_only_its_own_pools(io: IoBackend) {
        let (api, lines, tls_a, tls_default) = (
            Recorder::start("api").await,
            Recorder::start("lines").await,
            Recorder::start("tls-a").await,
            Recorder::start("tls-default").await,
        );
        let config = services_config(
            io,
            vec![
                pool("api", &[api.addr]),
                pool("lines", &[lines.addr]),
                pool("tls-a", &[tls_a.addr]),
                pool("tls-default", &[tls_default.addr]),
            ],
            vec![
                service("http", Some("api"), &[]),
                service("redis", Some("lines"), &[]),
                service(
                    "https",
                    Some("tls-default"),
                    &[(&["a.example.com"], "tls-a")],
                ),
            ],
        );
        let proxy = Proxy::start(&config);
        wait_pools(&proxy).await;
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let hello = client_hello(Some("a.example.com"), 0, 16384);
        for _ in 0..3 {
            assert_eq!(
                exchange(addr_of(&proxy, "http"), get, 4096).await.unwrap(),
                b"api"
            );
            let ping = exchange(addr_of(&proxy, "redis"), b"PING\r\n", 4096).await;
            assert_eq!(ping.unwrap(), b"lines");
            let tls = exchange(addr_of(&proxy, "https"), &hello, 4096).await;
            assert_eq!(tls.unwrap(), b"tls-a");
        }
        assert_eq!(api.connections(), vec![get.to_vec(); 3]);
        assert_eq!(lines.connections(), vec![b"PING\r\n".to_vec(); 3]);
        assert_eq!(
            tls_a.connections(),
            vec![hello.clone(); 3],
            "forwarded unchanged"
        );
        assert!(tls_default.connections().is_empty());
    }
);

io_backends!(
    /// Exact names first, then the one-label wildcard, case-insensitively; no match, no SNI and
    /// not TLS at all go to the default pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sni_selects_exact_then_wildcard_and_the_rest_goes_to_the_default(io: IoBackend) {
        let (api, internal, default) = (
            Recorder::start("api").await,
            Recorder::start("internal").await,
            Recorder::start("default").await,
        );
        let config = services_config(
            io,
            vec![
                pool("api", &[api.addr]),
                pool("internal", &[internal.addr]),
                pool("default", &[default.addr]),
            ],
            vec![service(
                "tls",
                Some("default"),
                &[
                    (&["api.example.com", "exact.internal.example.com"], "api"),
                    (&["*.internal.example.com"], "internal"),
                ],
            )],
        );
        let proxy = Proxy::start(&config);
        wait_pools(&proxy).await;
        let addr = addr_of(&proxy, "tls");
        let cases: [(Option<&str>, &[u8]); 7] = [
            (Some("api.example.com"), b"api"),
            (Some("API.Example.COM"), b"api"),
            (Some("exact.internal.example.com"), b"api"),
            (Some("x.internal.example.com"), b"internal"),
            (Some("a.b.internal.example.com"), b"default"),
            (Some("other.example.com"), b"default"),
            (None, b"default"),
        ];
        for (sni, expected) in cases {
            let hello = client_hello(sni, 0, 16384);
            let answer = exchange(addr, &hello, 4096).await.unwrap();
            assert_eq!(answer, expected, "{sni:?}");
        }
        let plain = exchange(addr, b"PING\r\n", 4096).await.unwrap();
        assert_eq!(plain, b"default", "not TLS: the default pool");
        assert_eq!(default.connections().last().unwrap(), b"PING\r\n");
        assert_eq!(api.connections().len(), 3);
        assert_eq!(internal.connections().len(), 1);
    }
);

io_backends!(
    /// A real ClientHello (captured from `openssl s_client`) sent one byte per segment, and a
    /// large one split over several records, are routed and arrive whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hello_split_anyhow_is_routed_and_forwarded_whole(io: IoBackend) {
        let (internal, default) = (
            Recorder::start("internal").await,
            Recorder::start("default").await,
        );
        let config = services_config(
            io,
            vec![
                pool("internal", &[internal.addr]),
                pool("default", &[default.addr]),
            ],
            vec![service(
                "tls",
                Some("default"),
                &[(&["*.internal.example.com"], "internal")],
            )],
        );
        let proxy = Proxy::start(&config);
        wait_pools(&proxy).await;
        let addr = addr_of(&proxy, "tls");
        let captured = include_bytes!("../fuzz/corpus/tls_client_hello/openssl-tls13-alpn-sni");
        let mut sent = captured.to_vec();
        sent.extend_from_slice(b"after the hello");
        let answer = exchange(addr, &sent, 1).await.unwrap();
        assert_eq!(answer, b"internal");
        assert_eq!(internal.connections(), vec![sent]);
        // 12 KiB of padding in 1000-byte records, sent in 700-byte writes: past the first
        // buffer, so the buffer grows while the hello arrives.
        let large = client_hello(Some("big.internal.example.com"), 12 * 1024, 1000);
        assert_eq!(exchange(addr, &large, 700).await.unwrap(), b"internal");
        assert_eq!(internal.connections()[1], large);
    }
);

io_backends!(
    /// A PROXY header, then the hello: the header is consumed, the hello routes and is all the
    /// backend gets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hello_after_a_proxy_header_routes(io: IoBackend) {
        let (api, default) = (
            Recorder::start("api").await,
            Recorder::start("default").await,
        );
        let mut tls = service("tls", Some("default"), &[(&["api.example.com"], "api")]);
        tls.traffic.accept_proxy = true;
        let config = services_config(
            io,
            vec![pool("api", &[api.addr]), pool("default", &[default.addr])],
            vec![tls],
        );
        let proxy = Proxy::start(&config);
        wait_pools(&proxy).await;
        let hello = client_hello(Some("api.example.com"), 0, 16384);
        let header = b"PROXY TCP4 192.0.2.1 192.0.2.2 5555 443\r\n";
        let mut sent = header.to_vec();
        sent.extend_from_slice(&hello);
        // In 13-byte writes, and with the header alone in the first write: the hello arrives
        // in reads of its own after the header completed.
        let answer = exchange(addr_of(&proxy, "tls"), &sent, 13).await.unwrap();
        assert_eq!(answer, b"api");
        let answer = exchange(addr_of(&proxy, "tls"), &sent, header.len())
            .await
            .unwrap();
        assert_eq!(answer, b"api");
        assert_eq!(api.connections(), vec![hello.clone(), hello]);
    }
);

/// A proxy with one service, `tls`, routing `api.example.com` (and everything else) to one
/// recording backend, `default`; ready.
async fn one_tls_service(io: IoBackend) -> (Recorder, Proxy) {
    let default = Recorder::start("default").await;
    let routes: &[(&[&str], &str)] = &[(&["api.example.com"], "default")];
    let config = services_config(
        io,
        vec![pool("default", &[default.addr])],
        vec![service("tls", Some("default"), routes)],
    );
    let proxy = Proxy::start(&config);
    wait_pools(&proxy).await;
    (default, proxy)
}

/// Connects, sends `bytes`, and returns how the connection ended from the client's side:
/// `Ok(answer)` at EOF, `Err` on a reset; never an answer from a backend.
async fn refused(addr: std::net::SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    exchange(addr, bytes, 4096).await
}

io_backends!(
    /// A TLS record that is no ClientHello, and a hello longer than 16 KiB, are refused: the
    /// client is closed, and no backend ever sees a byte of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broken_and_oversized_hellos_are_refused(io: IoBackend) {
        let (default, proxy) = one_tls_service(io).await;
        let addr = addr_of(&proxy, "tls");
        // A handshake record holding a ServerHello.
        let mut not_hello = client_hello(Some("api.example.com"), 0, 16384);
        not_hello[5] = 2;
        let answer = refused(addr, &not_hello).await;
        assert!(
            answer.as_deref().map_or(true, |a| a.is_empty()),
            "{answer:?}"
        );
        // 20 KiB of padding: over the cap.
        let huge = client_hello(Some("api.example.com"), 20 * 1024, 16384);
        let answer = refused(addr, &huge).await;
        assert!(
            answer.as_deref().map_or(true, |a| a.is_empty()),
            "{answer:?}"
        );
        // The service still works.
        let good = client_hello(Some("api.example.com"), 0, 16384);
        assert_eq!(exchange(addr, &good, 4096).await.unwrap(), b"default");
        assert_eq!(
            default.connections(),
            vec![good],
            "nothing refused got through"
        );
        assert_eq!(metric(&proxy, "ringlb_tls_hello_refused_total").await, 2.0);
        assert_eq!(
            metric(&proxy, "ringlb_service_connections_total").await,
            3.0
        );
    }
);

io_backends!(
    /// A client that starts a hello and stalls is closed once the 5 s budget is spent, and
    /// holds nothing of a backend meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hello_that_stalls_is_closed_after_its_budget(io: IoBackend) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (default, proxy) = one_tls_service(io).await;
        let hello = client_hello(Some("api.example.com"), 0, 16384);
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(addr_of(&proxy, "tls"))
            .await
            .unwrap();
        stream.write_all(&hello[..20]).await.unwrap();
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(common::DEADLINE, stream.read_to_end(&mut rest)).await;
        let waited = started.elapsed();
        assert!(ended.is_ok(), "closed within the deadline");
        assert!(rest.is_empty(), "no answer: {rest:?}");
        assert!(
            waited >= Duration::from_millis(4900) && waited < Duration::from_secs(10),
            "closed after the 5 s budget, not {waited:?}"
        );
        assert!(default.connections().is_empty());
        assert_eq!(metric(&proxy, "ringlb_tls_hello_refused_total").await, 1.0);
    }
);

io_backends!(
    /// A service with routes and no default pool: what no route selects gets the service's
    /// `on_no_backend` (the 503 by default).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_route_and_no_default_gets_on_no_backend(io: IoBackend) {
        let api = Recorder::start("api").await;
        let strict = service("strict", None, &[(&["api.example.com"], "api")]);
        let mut reset = service("reset", None, &[(&["api.example.com"], "api")]);
        reset.traffic.on_no_backend = OnNoBackend::Reset;
        let config = services_config(io, vec![pool("api", &[api.addr])], vec![strict, reset]);
        let proxy = Proxy::start(&config);
        wait_pools(&proxy).await;
        let other = client_hello(Some("other.example.com"), 0, 16384);
        let answer = exchange(addr_of(&proxy, "strict"), &other, 4096)
            .await
            .unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 503"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        let answer = exchange(addr_of(&proxy, "reset"), &other, 4096).await;
        assert!(
            answer.is_err() || answer.unwrap().is_empty(),
            "reset or closed"
        );
        let matched = client_hello(Some("api.example.com"), 0, 16384);
        let answer = exchange(addr_of(&proxy, "strict"), &matched, 4096).await;
        assert_eq!(answer.unwrap(), b"api");
        assert_eq!(api.connections(), vec![matched]);
    }
);

io_backends!(
    /// A reload moves a name to another pool for new connections, without a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_changes_routes_for_new_connections(io: IoBackend) {
        let (a, b) = (Recorder::start("a").await, Recorder::start("b").await);
        let pools = vec![pool("a", &[a.addr]), pool("b", &[b.addr])];
        let before = services_config(
            io,
            pools.clone(),
            vec![service("tls", Some("b"), &[(&["api.example.com"], "a")])],
        );
        let proxy = Proxy::start(&before);
        wait_pools(&proxy).await;
        let addr = addr_of(&proxy, "tls");
        let hello = client_hello(Some("api.example.com"), 0, 16384);
        assert_eq!(exchange(addr, &hello, 4096).await.unwrap(), b"a");
        let after = services_config(
            io,
            pools,
            vec![service("tls", Some("a"), &[(&["api.example.com"], "b")])],
        );
        let restart = proxy.server().reload_handle().reload(&after);
        assert!(restart.is_empty(), "routes are live: {restart:?}");
        assert_eq!(exchange(addr, &hello, 4096).await.unwrap(), b"b");
        assert_eq!(exchange(addr, b"PING\r\n", 4096).await.unwrap(), b"a");
    }
);

io_backends!(
    /// Hundreds of clients that start a hello and stall hold no worker: clients with a whole
    /// hello are routed meanwhile, and the stalled ones are closed at their budget.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stalled_hellos_do_not_hold_up_other_clients(io: IoBackend) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let api = Recorder::start("api").await;
        let config = services_config(
            io,
            vec![pool("api", &[api.addr])],
            vec![service("tls", None, &[(&["api.example.com"], "api")])],
        );
        let proxy = Proxy::start(&config);
        wait_pools(&proxy).await;
        let addr = addr_of(&proxy, "tls");
        let hello = client_hello(Some("api.example.com"), 0, 16384);
        let mut stalled = Vec::new();
        for _ in 0..300 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(&hello[..7]).await.unwrap();
            stalled.push(stream);
        }
        for _ in 0..20 {
            assert_eq!(exchange(addr, &hello, 4096).await.unwrap(), b"api");
        }
        // Still open: the good clients did not wait for them to time out.
        let mut byte = [0u8; 1];
        let probe = tokio::time::timeout(Duration::from_millis(50), stalled[0].read(&mut byte));
        assert!(
            probe.await.is_err(),
            "the first stalled client is still waiting"
        );
        for mut stream in stalled {
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(common::DEADLINE, stream.read_to_end(&mut rest));
            assert!(
                closed.await.is_ok(),
                "every stalled client is closed at its budget"
            );
        }
        assert_eq!(
            api.connections().len(),
            20,
            "no stalled byte reached the backend"
        );
    }
);

io_backends!(
    /// A reload that adds a service and drops a pool needs an upgrade: it says so, keeps
    /// serving what it started with (a route to the new pool is left out, the dropped pool
    /// keeps serving its route), and says so again on the next reload, since that is still
    /// what runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_that_changes_the_sets_is_left_to_an_upgrade(io: IoBackend) {
        let (a, b, c) = (
            Recorder::start("a").await,
            Recorder::start("b").await,
            Recorder::start("c").await,
        );
        let before = services_config(
            io,
            vec![pool("a", &[a.addr]), pool("b", &[b.addr])],
            vec![service("tls", Some("a"), &[(&["b.example.com"], "b")])],
        );
        let proxy = Proxy::start(&before);
        wait_pools(&proxy).await;
        let addr = addr_of(&proxy, "tls");
        let to_b = client_hello(Some("b.example.com"), 0, 16384);
        let to_c = client_hello(Some("c.example.com"), 0, 16384);
        let after = services_config(
            io,
            vec![pool("a", &[a.addr]), pool("c", &[c.addr])],
            vec![
                service("tls", Some("a"), &[(&["c.example.com"], "c")]),
                service("extra", Some("a"), &[]),
            ],
        );
        for _ in 0..2 {
            let mut restart = proxy.server().reload_handle().reload(&after);
            restart.sort();
            assert_eq!(restart, ["pools", "services"], "both sets changed");
            // Pool c does not run yet: its route is left out, the default serves the name.
            assert_eq!(exchange(addr, &to_c, 4096).await.unwrap(), b"a");
            // The file's routes replaced the old ones: b's name is no route any more.
            assert_eq!(exchange(addr, &to_b, 4096).await.unwrap(), b"a");
        }
        assert!(proxy.server().service_addr("extra").is_none());
        assert!(c.connections().is_empty() && b.connections().is_empty());
    }
);
