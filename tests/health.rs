//! End-to-end tests of the health checker against real HTTP servers on 127.0.0.1.
//!
//! Rounds are either stepped with `HealthChecker::run_round` (exact counting, no timing) or run
//! by the `ringlb-health` thread and awaited through `HealthStatus::subscribe_rounds`.

use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU16, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use ringlb::{
    balancer::Balancer,
    config::{HealthCheck, Target},
    health::{HealthChecker, HealthStatus, ProbeFailure, ResolveFuture, Resolver},
    Shutdown,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{oneshot, watch},
    task::JoinHandle,
    time::{timeout, Instant},
};

/// Upper bound for anything a test awaits.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Test HTTP servers

/// How a test server answers each connection.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Reads the request, answers with the current status (see [`TestServer::set_status`]).
    Status,
    /// Accepts and never says anything.
    Silent,
    /// Answers with an SSH banner.
    Garbage,
    /// Answers with a status line that never ends.
    HugeStatusLine,
    /// Answers one byte every 20 ms, forever.
    SlowDrip,
    /// Answers 200 with an 8 MiB body.
    BigBody,
    /// Sends the start of a status line, then closes.
    Partial,
}

#[derive(Debug)]
struct Shared {
    status: AtomicU16,
    accepts: watch::Sender<usize>,
    requests: Mutex<Vec<String>>,
}

struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl TestServer {
    async fn start(behaviour: Behaviour) -> Self {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), behaviour).await
    }

    async fn bind(addr: SocketAddr, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind test server");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            status: AtomicU16::new(200),
            accepts: watch::Sender::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept_loop(listener, behaviour, Arc::clone(&shared)));
        Self { addr, shared, task }
    }

    fn set_status(&self, status: u16) {
        self.shared.status.store(status, Relaxed);
    }

    /// Completes once `n` connections have been accepted.
    async fn accepted(&self, n: usize) {
        let mut rx = self.shared.accepts.subscribe();
        timeout(PATIENCE, rx.wait_for(|&count| count >= n))
            .await
            .expect("connection accepted in time")
            .expect("server alive");
    }

    fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Stops listening (new connects are refused); returns the address for a restart.
    async fn stop(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }
}

async fn accept_loop(listener: TcpListener, behaviour: Behaviour, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        shared.accepts.send_modify(|n| *n += 1);
        tokio::spawn(serve(stream, behaviour, Arc::clone(&shared)));
    }
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour, shared: Arc<Shared>) {
    if let Behaviour::Silent = behaviour {
        let _keep_open = stream;
        return std::future::pending().await;
    }
    let request = read_request(&mut stream).await;
    shared.requests.lock().unwrap().push(request);
    let _ = match behaviour {
        Behaviour::Status => {
            let status = shared.status.load(Relaxed);
            let response = format!("HTTP/1.1 {status} Test\r\nContent-Length: 0\r\n\r\n");
            stream.write_all(response.as_bytes()).await
        }
        Behaviour::Garbage => stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await,
        Behaviour::HugeStatusLine => {
            let line = [b"HTTP/1.1 200 ".as_slice(), &[b'x'; 64 * 1024]].concat();
            stream.write_all(&line).await
        }
        Behaviour::SlowDrip => drip(&mut stream).await,
        Behaviour::BigBody => {
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\n\r\n";
            let body = vec![b'z'; 8 << 20];
            stream.write_all(&[head.as_slice(), &body].concat()).await
        }
        Behaviour::Silent => Ok(()),
        Behaviour::Partial => {
            let sent = stream.write_all(b"HTTP/1.1 2").await;
            let _ = stream.shutdown().await;
            sent
        }
    };
    let _ = stream.shutdown().await;
}

async fn drip(stream: &mut TcpStream) -> io::Result<()> {
    for &byte in b"HTTP/1.1 200 ".iter().chain(std::iter::repeat(&b'x')) {
        stream.write_all(&[byte]).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Reads a request head (up to 4 KiB).
async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 4096 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

// ---------------------------------------------------------------------------------------------
// A scripted resolver

/// What the scripted resolver answers for one host.
#[derive(Debug, Clone)]
enum Script {
    Addrs(Vec<SocketAddr>),
    Fail,
    Hang,
    Slow(Duration, Vec<SocketAddr>),
}

/// Answers per host from a script the test changes between rounds; counts calls and the most
/// calls ever in flight at once.
#[derive(Default)]
struct Scripted {
    scripts: Mutex<HashMap<String, Script>>,
    calls: watch::Sender<usize>,
    in_flight: Mutex<(usize, usize)>,
}

impl Scripted {
    fn set(&self, host: &str, script: Script) {
        self.scripts.lock().unwrap().insert(host.into(), script);
    }

    fn max_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }

    fn enter(&self) {
        self.calls.send_modify(|n| *n += 1);
        let mut guard = self.in_flight.lock().unwrap();
        guard.0 += 1;
        guard.1 = guard.1.max(guard.0);
    }

    fn leave(&self) {
        self.in_flight.lock().unwrap().0 -= 1;
    }
}

impl Resolver for Scripted {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> ResolveFuture<'a> {
        let script = self.scripts.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            self.enter();
            let answer = match script {
                Some(Script::Addrs(addrs)) => Ok(addrs),
                Some(Script::Slow(delay, addrs)) => {
                    tokio::time::sleep(delay).await;
                    Ok(addrs)
                }
                Some(Script::Hang) => std::future::pending().await,
                Some(Script::Fail) | None => Err(io::Error::other("NXDOMAIN")),
            };
            self.leave();
            answer
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn target(host: &str, port: u16) -> Target {
    Target::http(host, port, "/healthz")
}

fn literal(addr: SocketAddr) -> Target {
    target(&addr.ip().to_string(), addr.port())
}

fn settings(interval_ms: u64, timeout_ms: u64, rise: u32, fall: u32) -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
        rise,
        fall,
    }
}

struct Harness {
    checker: HealthChecker,
    balancer: Arc<Balancer>,
    status: Arc<HealthStatus>,
}

fn harness(targets: Vec<Target>, settings: HealthCheck) -> Harness {
    let balancer = Arc::new(Balancer::new());
    let checker = HealthChecker::new(targets, settings, Arc::clone(&balancer));
    let status = checker.status_handle();
    Harness {
        checker,
        balancer,
        status,
    }
}

impl Harness {
    fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.checker = self.checker.with_resolver(resolver);
        self
    }

    /// Runs one round on the test's runtime, bounded by [`PATIENCE`].
    async fn round(&mut self) -> u64 {
        timeout(PATIENCE, self.checker.run_round())
            .await
            .expect("round in time")
    }

    fn healthy(&self) -> Vec<SocketAddr> {
        let snapshot = self.balancer.snapshot();
        snapshot.backends().iter().map(|b| b.addr).collect()
    }

    fn last(&self, target: usize, addr: SocketAddr) -> Option<Result<(), ProbeFailure>> {
        let report = self.status.report();
        report.endpoint(target, addr).and_then(|e| e.last.clone())
    }
}

/// Completes once `n` rounds have finished.
async fn wait_round(status: &HealthStatus, n: u64) {
    let mut rx = status.subscribe_rounds();
    timeout(PATIENCE, rx.wait_for(|&r| r >= n))
        .await
        .expect("round finished in time")
        .expect("checker alive");
}

/// Whether the thread behind `handle` ends within `limit` (without blocking the runtime).
async fn joins_within(handle: std::thread::JoinHandle<()>, limit: Duration) -> bool {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.join().is_ok());
    });
    matches!(timeout(limit, rx).await, Ok(Ok(true)))
}

async fn elapsed<T>(work: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = work.await;
    (output, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_healthy_target_stays_in_and_is_not_republished() {
    let server = TestServer::start(Behaviour::Status).await;
    let mut h = harness(vec![literal(server.addr)], settings(50, 1000, 2, 2));
    h.checker.prime();
    let primed = h.balancer.snapshot();
    assert_eq!(h.healthy(), [server.addr]);
    assert_eq!(h.status.publications(), 1);

    let shutdown = Shutdown::new();
    let thread = h.checker.spawn(shutdown.clone()).expect("spawn");
    wait_round(&h.status, 3).await;
    assert!(Arc::ptr_eq(&primed, &h.balancer.snapshot()), "republished");
    assert_eq!(h.status.publications(), 1);
    let report = h.status.report();
    assert_eq!(report.endpoint(0, server.addr).unwrap().last, Some(Ok(())));

    let request = server.requests().into_iter().next().unwrap_or_default();
    let host = format!("Host: 127.0.0.1:{}\r\n", server.addr.port());
    assert!(
        request.starts_with("GET /healthz HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains(&host), "{request}");
    assert!(request.contains("Connection: close\r\n"), "{request}");
    assert!(
        request.contains("User-Agent: ringlb-health\r\n"),
        "{request}"
    );

    shutdown.trigger();
    assert!(joins_within(thread, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_target_answering_500_leaves_after_fall_rounds() {
    let server = TestServer::start(Behaviour::Status).await;
    server.set_status(500);
    let mut h = harness(vec![literal(server.addr)], settings(50, 1000, 1, 3));
    h.checker.prime();
    for _ in 0..2 {
        h.round().await;
        assert_eq!(h.healthy(), [server.addr]);
    }
    h.round().await;
    assert!(h.healthy().is_empty());
    assert_eq!(h.last(0, server.addr), Some(Err(ProbeFailure::Status(500))));
    let report = h.status.report();
    let endpoint = report.endpoint(0, server.addr).unwrap();
    assert!(!endpoint.healthy);
    assert_eq!(endpoint.consecutive_failures, 3);
}

#[tokio::test]
async fn a_refused_target_leaves_and_a_restarted_one_comes_back_after_rise() {
    let server = TestServer::start(Behaviour::Status).await;
    let mut h = harness(vec![literal(server.addr)], settings(50, 1000, 2, 1));
    h.checker.prime();
    let before = Arc::clone(&h.balancer.snapshot().backends()[0]);

    let addr = server.stop().await;
    h.round().await;
    assert!(h.healthy().is_empty());
    assert_eq!(h.last(0, addr), Some(Err(ProbeFailure::Refused)));

    let _restarted = TestServer::bind(addr, Behaviour::Status).await;
    h.round().await;
    assert!(
        h.healthy().is_empty(),
        "one success is not enough with rise = 2"
    );
    h.round().await;
    assert_eq!(h.healthy(), [addr]);
    let after = h.balancer.snapshot();
    assert!(
        Arc::ptr_eq(&before, &after.backends()[0]),
        "same backend, counters kept"
    );
}

#[tokio::test]
async fn hysteresis_counts_consecutive_outcomes_exactly() {
    let server = TestServer::start(Behaviour::Status).await;
    let mut h = harness(vec![literal(server.addr)], settings(50, 1000, 2, 2));
    h.checker.prime();
    let steps = [
        (500, true),
        (200, true),
        (500, true),
        (500, false),
        (200, false),
        (500, false),
        (200, false),
        (200, true),
        (500, true),
    ];
    for (round, (status, expect_in)) in steps.into_iter().enumerate() {
        server.set_status(status);
        h.round().await;
        let is_in = h.healthy() == [server.addr];
        assert_eq!(is_in, expect_in, "after round {} ({status})", round + 1);
    }
}

#[tokio::test]
async fn a_silent_server_times_out_without_delaying_other_probes() {
    let healthy = TestServer::start(Behaviour::Status).await;
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TestServer::start(Behaviour::Silent).await);
    }
    let mut targets = vec![literal(healthy.addr)];
    targets.extend(silent.iter().map(|s| literal(s.addr)));
    let mut h = harness(targets, settings(50, 300, 1, 1));
    h.checker.prime();

    let (_, took) = elapsed(h.round()).await;
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(
        took < Duration::from_millis(900),
        "probes ran one after another: {took:?}"
    );
    assert_eq!(h.healthy(), [healthy.addr]);
    for (index, server) in silent.iter().enumerate() {
        server.accepted(1).await;
        let last = h.last(index + 1, server.addr);
        assert_eq!(last, Some(Err(ProbeFailure::Timeout)));
    }
}

#[tokio::test]
async fn garbage_huge_and_dripping_responses_fail_within_the_timeout() {
    let behaviours = [
        Behaviour::Garbage,
        Behaviour::HugeStatusLine,
        Behaviour::SlowDrip,
        Behaviour::BigBody,
        Behaviour::Partial,
    ];
    let mut servers = Vec::new();
    for behaviour in behaviours {
        servers.push(TestServer::start(behaviour).await);
    }
    let targets = servers.iter().map(|s| literal(s.addr)).collect();
    let mut h = harness(targets, settings(50, 500, 1, 1));
    h.checker.prime();

    let (_, took) = elapsed(h.round()).await;
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(
        h.healthy(),
        [servers[3].addr],
        "a 2xx with a big body passes"
    );
    let reason = |i: usize| match h.last(i, servers[i].addr) {
        Some(Err(failure)) => failure.to_string(),
        other => format!("{other:?}"),
    };
    assert!(
        reason(0).starts_with("bad response: \"SSH-2.0"),
        "{}",
        reason(0)
    );
    assert!(reason(1).contains("no status line"), "{}", reason(1));
    assert_eq!(reason(2), "timeout");
    assert!(reason(4).starts_with("bad response"), "{}", reason(4));
}

#[tokio::test]
async fn resolution_changes_are_followed() {
    let a = TestServer::start(Behaviour::Status).await;
    let b = TestServer::start(Behaviour::Status).await;
    let dead = TestServer::start(Behaviour::Status).await.stop().await;
    let resolver = Arc::new(Scripted::default());
    resolver.set("svc.test", Script::Addrs(vec![a.addr]));
    let targets = vec![target("svc.test", 8080)];
    let mut h = harness(targets, settings(50, 1000, 3, 3)).with_resolver(resolver.clone());
    h.checker.prime();
    assert_eq!(h.healthy(), [a.addr]);
    let backend_a = Arc::clone(&h.balancer.snapshot().backends()[0]);

    resolver.set("svc.test", Script::Addrs(vec![b.addr, a.addr]));
    h.round().await;
    let mut both = vec![a.addr, b.addr];
    both.sort();
    assert_eq!(
        h.healthy(),
        both,
        "B enters after one passed probe, in address order"
    );
    let snapshot = h.balancer.snapshot();
    let kept = snapshot
        .backends()
        .iter()
        .find(|x| x.addr == a.addr)
        .unwrap();
    assert!(Arc::ptr_eq(&backend_a, kept));
    assert!(b.requests()[0].contains("Host: svc.test:8080\r\n"));

    resolver.set("svc.test", Script::Addrs(vec![b.addr]));
    h.round().await;
    assert_eq!(
        h.healthy(),
        [b.addr],
        "A leaves as soon as it is not resolved"
    );
    assert!(h.status.report().endpoint(0, a.addr).is_none());

    let before = h.balancer.snapshot();
    let publications = h.status.publications();
    resolver.set("svc.test", Script::Addrs(vec![b.addr, dead]));
    h.round().await;
    assert_eq!(
        h.healthy(),
        [b.addr],
        "a new endpoint failing its probe stays out"
    );
    assert!(Arc::ptr_eq(&before, &h.balancer.snapshot()));
    assert_eq!(h.status.publications(), publications);
    assert_eq!(h.last(0, dead), Some(Err(ProbeFailure::Refused)));
}

#[tokio::test]
async fn a_name_that_stops_resolving_leaves_after_fall_rounds() {
    let a = TestServer::start(Behaviour::Status).await;
    let resolver = Arc::new(Scripted::default());
    resolver.set("svc.test", Script::Addrs(vec![a.addr]));
    let targets = vec![target("svc.test", 80)];
    let mut h = harness(targets, settings(50, 200, 2, 3)).with_resolver(resolver.clone());
    h.checker.prime();

    resolver.set("svc.test", Script::Fail);
    h.round().await;
    resolver.set("svc.test", Script::Hang);
    let (_, took) = elapsed(h.round()).await;
    assert!(
        took < Duration::from_millis(700),
        "resolution bounded: {took:?}"
    );
    assert_eq!(
        h.healthy(),
        [a.addr],
        "kept while fewer than `fall` rounds failed"
    );
    let last = h.last(0, a.addr);
    assert_eq!(
        last.unwrap().unwrap_err().to_string(),
        "resolve failed: timeout"
    );

    resolver.set("svc.test", Script::Fail);
    h.round().await;
    assert!(h.healthy().is_empty());
    let report = h.status.report();
    let error = report.targets[0]
        .resolve_error
        .as_ref()
        .unwrap()
        .to_string();
    assert!(error.starts_with("resolve failed: NXDOMAIN"), "{error}");

    resolver.set("svc.test", Script::Addrs(vec![a.addr]));
    h.round().await;
    assert!(
        h.healthy().is_empty(),
        "a known unhealthy endpoint needs `rise` successes"
    );
    h.round().await;
    assert_eq!(h.healthy(), [a.addr]);
    assert!(h.status.report().targets[0].resolve_error.is_none());
}

#[tokio::test]
async fn prime_publishes_what_resolves_within_the_timeout() {
    let a = TestServer::start(Behaviour::Status).await;
    let b = TestServer::start(Behaviour::Status).await;
    let resolver = Arc::new(Scripted::default());
    resolver.set("good.test", Script::Addrs(vec![b.addr, a.addr]));
    resolver.set("slow.test", Script::Hang);
    let targets = vec![
        target("bad.test", 80),
        target("good.test", 80),
        target("slow.test", 80),
    ];
    let mut h = harness(targets, settings(50, 300, 1, 1)).with_resolver(resolver);
    let started = std::time::Instant::now();
    h.checker.prime();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    let mut expected = vec![a.addr, b.addr];
    expected.sort();
    assert_eq!(h.healthy(), expected);
    let report = h.status.report();
    let reasons: Vec<Option<String>> = report
        .targets
        .iter()
        .map(|t| t.resolve_error.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(
        reasons,
        [
            Some("resolve failed: NXDOMAIN".to_string()),
            None,
            Some("resolve failed: timeout".to_string())
        ]
    );
}

#[tokio::test]
async fn every_address_of_localhost_is_an_endpoint() {
    let first = TestServer::start(Behaviour::Status).await;
    let port = first.addr.port();
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", port))
        .await
        .expect("localhost resolves")
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Serve every other address of localhost too (e.g. ::1), where this host allows it.
    let mut servers = vec![first];
    for &addr in &resolved {
        if servers.iter().all(|s| s.addr != addr) {
            if let Ok(listener) = std::net::TcpListener::bind(addr) {
                drop(listener);
                servers.push(TestServer::bind(addr, Behaviour::Status).await);
            }
        }
    }
    let mut h = harness(vec![target("localhost", port)], settings(50, 1000, 1, 1));
    h.checker.prime();
    assert_eq!(h.healthy(), resolved, "every resolved address, primed");
    h.round().await;
    let served: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|a| servers.iter().any(|s| s.addr == *a))
        .collect();
    assert_eq!(h.healthy(), served);
}

#[tokio::test]
async fn rounds_follow_the_interval_start_to_start() {
    let server = TestServer::start(Behaviour::Status).await;
    let h = harness(vec![literal(server.addr)], settings(100, 1000, 1, 1));
    let shutdown = Shutdown::new();
    let status = Arc::clone(&h.status);
    let thread = h.checker.spawn(shutdown.clone()).expect("spawn");
    wait_round(&status, 1).await;
    let (_, took) = elapsed(wait_round(&status, 4)).await;
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
    shutdown.trigger();
    assert!(joins_within(thread, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_slow_round_delays_the_next_but_never_overlaps_it() {
    let server = TestServer::start(Behaviour::Status).await;
    let resolver = Arc::new(Scripted::default());
    let slow = Script::Slow(Duration::from_millis(150), vec![server.addr]);
    resolver.set("svc.test", slow);
    let targets = vec![target("svc.test", 80)];
    let h = harness(targets, settings(50, 1000, 1, 1)).with_resolver(resolver.clone());
    let shutdown = Shutdown::new();
    let status = Arc::clone(&h.status);
    let thread = h.checker.spawn(shutdown.clone()).expect("spawn");
    wait_round(&status, 1).await;
    let (_, took) = elapsed(wait_round(&status, 4)).await;
    assert!(took >= Duration::from_millis(440), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(resolver.max_in_flight(), 1, "rounds overlapped");
    shutdown.trigger();
    assert!(joins_within(thread, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn shutdown_stops_the_thread_in_the_middle_of_a_probe() {
    let silent = TestServer::start(Behaviour::Silent).await;
    let h = harness(vec![literal(silent.addr)], settings(60_000, 30_000, 1, 1));
    let shutdown = Shutdown::new();
    let status = Arc::clone(&h.status);
    let thread = h.checker.spawn(shutdown.clone()).expect("spawn");
    silent.accepted(1).await;
    shutdown.trigger();
    assert!(joins_within(thread, Duration::from_secs(1)).await);
    assert_eq!(status.rounds(), 0, "the round was cut short");
}

#[tokio::test]
async fn shutdown_stops_the_thread_in_the_middle_of_a_resolution() {
    let resolver = Arc::new(Scripted::default());
    resolver.set("svc.test", Script::Hang);
    let targets = vec![target("svc.test", 80)];
    let h = harness(targets, settings(60_000, 30_000, 1, 1)).with_resolver(resolver.clone());
    let shutdown = Shutdown::new();
    let thread = h.checker.spawn(shutdown.clone()).expect("spawn");
    let mut calls = resolver.calls.subscribe();
    timeout(PATIENCE, calls.wait_for(|&n| n >= 1))
        .await
        .expect("resolution started")
        .expect("resolver alive");
    shutdown.trigger();
    assert!(joins_within(thread, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_checker_started_after_shutdown_exits_at_once() {
    let h = harness(vec![target("127.0.0.1", 9)], settings(50, 1000, 1, 1));
    let shutdown = Shutdown::new();
    shutdown.trigger();
    let status = Arc::clone(&h.status);
    let thread = h.checker.spawn(shutdown).expect("spawn");
    assert!(joins_within(thread, Duration::from_secs(1)).await);
    assert_eq!(status.rounds(), 0);
}
