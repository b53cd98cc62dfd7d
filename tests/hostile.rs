//! Hostile clients at the edge, end to end against the real binary: slow readers must not stall
//! a worker or make it spin, clients that go quiet must not eject healthy backends, and a
//! backend that really fails requests is still ejected, after `passive_fall` of them in a row.

mod common;

use std::{
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

use common::{
    admin_http::admin_addr, binary, hostile::*, io_backends, line::eventually, relay_on,
    NamedBackend, DEADLINE,
};
use ringlb::config::{IoBackend, RelayMode};
use tokio::{io::AsyncReadExt, net::TcpStream};

// --- 1. Slow readers ------------------------------------------------------------------------

/// Clients that ask for megabytes and never read.
const SLOW_READERS: usize = 80;
/// Fresh clients, one after the other, that must each get their echo in time.
const FRESH_CLIENTS: usize = 20;
const ECHO_WITHIN: Duration = Duration::from_secs(1);
/// How long the pushing must have stood still to count as settled, and the most the settling
/// may take before the measurement starts anyway.
const QUIET: Duration = Duration::from_millis(300);
const SETTLE: Duration = Duration::from_secs(5);
/// The window over which ringlb's CPU is measured while the slow readers stay connected.
const CPU_WINDOW: Duration = Duration::from_secs(2);
/// The share of one core ringlb may use over that window. The issue asks for below half a
/// core; a worker spinning on an exhausted buffer ring used 0.13–0.20 and a fair one uses
/// under 0.01, so the bound sits between them to catch that spin too.
const MAX_CORE_SHARE: f64 = 0.1;

/// The slow-reader tests measure CPU and latency on a 2-core machine: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

io_backends!(
    /// One worker, `relay`: 80 slow readers hold connections a backend pushes megabytes into; the
    /// worker must go on serving fresh clients promptly and stay nearly idle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_readers_leave_the_worker_free(io: IoBackend, relay: RelayMode) {
        let _one = ONE_AT_A_TIME.lock().await;
        let backend = PushBackend::start().await;
        let text = binary::toml(
            io,
            &[backend.addr],
            &format!("relay = \"{}\"", relay.as_str()),
        );
        assert!(text.contains("workers = 1\n"), "{text}");
        let ringlb = start(&text);
        tokio::task::block_in_place(|| ringlb.wait_log("Healthy targets: 1", 1));

        let mut slow = Vec::with_capacity(SLOW_READERS);
        for _ in 0..SLOW_READERS {
            slow.push(slow_reader(ringlb.addr).await);
        }
        let settled = wait_still(&backend.stats, SLOW_READERS, QUIET, SETTLE).await;
        let pushers = backend.stats.pushers.load(Relaxed);
        let pushed = backend.stats.pushed.load(Relaxed);

        let pid = ringlb.child.id();
        let (cpu_before, started) = (cpu_seconds(pid), Instant::now());
        tokio::time::sleep(CPU_WINDOW).await;
        let share = (cpu_seconds(pid) - cpu_before) / started.elapsed().as_secs_f64();
        eprintln!(
            "{}: settled {settled}, {pushed} bytes pushed to {pushers} connections, ringlb used \
             {share:.3} of a core",
            relay_on(io, relay)
        );

        let mut failures = Vec::new();
        if pushers < SLOW_READERS {
            failures.push(format!(
                "only {pushers} of the {SLOW_READERS} slow readers' requests reached the backend"
            ));
        }
        let finished = backend.stats.finished.load(Relaxed);
        if finished > 0 {
            failures.push(format!(
                "{finished} slow readers' connections took all {PUSH_LIMIT} bytes pushed: \
             buffered without bound"
            ));
        }
        if share >= MAX_CORE_SHARE {
            failures.push(format!(
                "ringlb used {share:.2} of a core over {CPU_WINDOW:?} with the slow readers \
             connected (limit {MAX_CORE_SHARE})"
            ));
        }
        for i in 0..FRESH_CLIENTS {
            let line = format!("fresh client {i}\n");
            if let Err(why) = echo_within(ringlb.addr, &line, ECHO_WITHIN).await {
                failures.push(format!("fresh client {i} of {FRESH_CLIENTS}: {why}"));
                break;
            }
        }
        assert!(
            failures.is_empty(),
            "{}: {}\n(the pushing {}: {pushed} bytes pushed to {pushers} connections; ringlb used \
             {share:.2} of a core)",
            relay_on(io, relay),
            failures.join("; "),
            if settled {
                "had settled"
            } else {
                "had not settled"
            },
        );
        drop(slow);
    }
);

// --- 2. Idle clients --------------------------------------------------------------------------

/// How long the backends of test 2 wait for a request before closing the client.
const PATIENCE: Duration = Duration::from_secs(1);
const IDLE_CLIENTS: usize = 4;
/// How long the endpoints must stay up once the idle clients are gone.
const STAYS_UP: Duration = Duration::from_millis(500);

io_backends!(
    /// A backend that closes a client which sent nothing is no evidence against the backend: the
    /// client never asked anything. Replaying (nothing) elsewhere and ejecting it lets any client
    /// empty the rotation by connecting and waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_clients_closed_by_their_backends_eject_no_one(io: IoBackend) {
        let a = ImpatientBackend::start("a", PATIENCE).await;
        let b = ImpatientBackend::start("b", PATIENCE).await;
        let text = binary::toml(io, &[a.addr, b.addr], "retry_on_early_close = true");
        // Probes must not bring an ejected backend back during the test.
        let ringlb = start(&health_check(&text, "interval = \"60s\""));
        let admin = admin_addr(&ringlb);
        wait_all_up(admin, 2).await;

        let mut idle = Vec::with_capacity(IDLE_CLIENTS);
        for _ in 0..IDLE_CLIENTS {
            idle.push(TcpStream::connect(ringlb.addr).await.unwrap());
        }
        // Each idle client ends (a close, a reset or an answer: what matters is below).
        let mut ends = Vec::new();
        for mut client in idle {
            let mut got = Vec::new();
            let end = tokio::time::timeout(DEADLINE, client.read_to_end(&mut got))
                .await
                .expect("the idle client is closed within the deadline");
            ends.push(format!("{end:?} {:?}", String::from_utf8_lossy(&got)));
        }
        let closed = || a.closed_idle.load(Relaxed) + b.closed_idle.load(Relaxed);
        eventually("the backends closed the idle clients", || {
            closed() >= IDLE_CLIENTS
        })
        .await;

        let until = Instant::now() + STAYS_UP;
        let mut ejected = None;
        while ejected.is_none() && Instant::now() < until {
            let status = status(admin).await;
            if !endpoints(&status).iter().all(|e| e["state"] == "up") {
                ejected = Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let response = try_get(ringlb.addr).await;
        let served = matches!(&response, Ok(r) if r.starts_with(b"HTTP/1.1 200")
        && ["a", "b"].contains(&common::body(r).as_str()));
        assert!(
            ejected.is_none() && served,
            "after {IDLE_CLIENTS} idle clients were closed by their backends ({} closes; the \
         clients got {ends:?}):\nendpoints {}\nthe request got {}",
            closed(),
            match &ejected {
                Some(status) => format!("not all up: {status:#}"),
                None => "all up".to_owned(),
            },
            match &response {
                Ok(r) => format!("{:?}", String::from_utf8_lossy(r)),
                Err(e) => e.clone(),
            },
        );
    }
);

// --- 3. A backend that really fails --------------------------------------------------------

const PASSIVE_FALL: usize = 3;

io_backends!(
    /// An early close after the client's bytes were sent is replayed elsewhere and counts against
    /// the backend; `passive_fall` of them in a row eject it, not fewer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backend_resetting_requests_is_ejected_after_passive_fall_of_them(io: IoBackend) {
        let bad = ResettingBackend::start().await;
        let good = NamedBackend::start("B").await;
        let text = binary::toml(
            io,
            &[bad.addr, good.addr],
            "retry_on_early_close = true\nbalance = \"round_robin\"",
        );
        // Its probes pass: only passive ejection can take it out, and no probe brings it back.
        let health = format!("interval = \"60s\"\npassive_fall = {PASSIVE_FALL}");
        let ringlb = start(&health_check(&text, &health));
        let admin = admin_addr(&ringlb);
        wait_all_up(admin, 2).await;

        // Requests one by one until the resetting backend has had `passive_fall` of them.
        for request in 1.. {
            let hits = bad.hits.load(Relaxed);
            assert!(
                request <= 4 * PASSIVE_FALL,
                "{} requests, only {hits} reached the resetting backend: ejected too early?\n{:#}",
                request - 1,
                status(admin).await
            );
            expect_good(ringlb.addr, request).await;
            let hits = bad.hits.load(Relaxed);
            let status = status(admin).await;
            let state = &endpoint(&status, bad.addr)["state"];
            if hits < PASSIVE_FALL {
                assert_eq!(
                    state, "up",
                    "ejected after {hits} early closes, passive_fall is {PASSIVE_FALL}: {status:#}"
                );
            } else {
                assert_eq!(
                    hits, PASSIVE_FALL,
                    "still picked past passive_fall: {status:#}"
                );
                break;
            }
        }

        let deadline = tokio::time::Instant::now() + DEADLINE;
        let down = loop {
            let status = status(admin).await;
            if endpoint(&status, bad.addr)["state"] == "down" {
                break status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not ejected after {PASSIVE_FALL} early closes in a row: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let reason = endpoint(&down, bad.addr)["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains("traffic") || reason.to_ascii_lowercase().contains("passive"),
            "the reason names the passive ejection: {down:#}"
        );
        assert_eq!(endpoint(&down, good.addr)["state"], "up", "{down:#}");

        // Out of rotation: everything goes to the good backend.
        for request in 1..=4 {
            expect_good(ringlb.addr, request).await;
        }
        assert_eq!(bad.hits.load(Relaxed), PASSIVE_FALL, "picked once ejected");
    }
);

/// A `GET /` through `addr` is answered by the good backend (`B`).
async fn expect_good(addr: std::net::SocketAddr, request: usize) {
    match try_get(addr).await {
        Ok(r) if r.starts_with(b"HTTP/1.1 200") && common::body(&r) == "B" => {}
        other => panic!(
            "request {request} was not answered by the good backend: {:?}",
            other.map(|r| String::from_utf8_lossy(&r).into_owned())
        ),
    }
}
