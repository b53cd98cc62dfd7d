//! End-to-end: running out of local ports toward one backend, and `source` addresses that each
//! add a whole ephemeral port range per backend.
//!
//! Each test makes a network namespace of its own (skipped, with a message, where namespaces
//! cannot be made), narrows `net.ipv4.ip_local_port_range` there to 500 ports, and runs the real
//! binary, one echo backend and the clients inside it: ringlb is spawned from a thread that
//! entered the namespace, and the tokio runtime of the backend and clients is built on that
//! thread, so all its sockets live there too. Clients bind explicit ports outside the narrowed
//! range, so only ringlb's connections to the backend draw on it.
//!
//! - Without `source`, 700 clients at once against one backend: at most 500 are relayed, the
//!   rest get ringlb's no-backend answer (the 503), the port exhaustion is counted and logged at
//!   most once a second, and the backend is neither blamed nor ejected.
//! - With `source` = 12 loopback addresses (127.0.0.2 … 127.0.0.13: all of 127/8 works on
//!   `lo`), 5,400 clients at once (12 × 500 less a 10 % margin for the ports the listeners hold
//!   in the range) are all relayed and stay open together, spread evenly over the addresses.
//! - With 2 addresses and 2 backends, 1,800 clients (2 × 2 ranges less the margin) are all
//!   relayed: with `IP_BIND_ADDRESS_NO_PORT` the port is chosen per backend, so each address
//!   gives every backend a range of its own (a plain bind would give 2 ranges over both).
//!
//! Issue 15 asks for 50,000 connections to one backend address; that needs about 100,000
//! descriptors in ringlb alone (two per connection), and this machine's hard open-files limit is
//! 20,000 per process, which caps one ringlb at about 9,400 connections (with its reserve) and
//! this test process (holding both the clients and the backend's ends) likewise. So here the
//! range is narrowed instead: 5,400 connections over a 500-port range is 10.8 ranges' worth,
//! where 50,000 over the default 28,232 ports would be 1.8. `tests/fifty_thousand.rs` does the
//! 50,000 itself: the port space is the namespace's, not a process's, so it splits them over
//! several ringlb, backend and client processes in one namespace (a 1,000-port range and 64
//! `source` addresses).

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::Command,
    sync::Mutex,
};

use common::{
    admin_http::{admin_addr, get, metric, wait_backends_up},
    binary::Process,
    local_ports::{config, Clients, CountingEcho, NO_PORT_LINE},
    netns::Netns,
};
use ringlb::config::{IoBackend, RelayMode};
use tokio::time::Instant;

/// Two tests of `name(io: IoBackend)`, `name::io_uring` and `name::epoll` (the suite's own
/// [`io_backends!`] takes async tests; these run their runtime inside the namespace).
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[test]
            fn io_uring() {
                super::$name(::ringlb::config::IoBackend::IoUring);
            }

            #[test]
            fn epoll() {
                super::$name(::ringlb::config::IoBackend::Epoll);
            }
        }
    };
}

/// Ports of the narrowed range (`net.ipv4.ip_local_port_range` in the namespace).
const RANGE: (u16, u16) = (40000, 40499);
const RANGE_PORTS: usize = (RANGE.1 - RANGE.0 + 1) as usize;
/// The backend's port: fixed and below the range (the namespace is ours alone).
const BACKEND_PORT: u16 = 9000;
/// Clients bind ports from here up, outside the range.
const FIRST_CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10000);

/// One test at a time: the larger one needs most of the process's descriptors.
static SERIAL: Mutex<()> = Mutex::new(());

on_both_backends!(without_source_one_range_is_the_limit_and_nobody_is_blamed);
fn without_source_one_range_is_the_limit_and_nobody_is_blamed(io: IoBackend) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let clients = RANGE_PORTS + 200;
    if !common::flood::descriptors_for(2 * clients as u64) {
        eprintln!("cannot open {} descriptors; skipping", 2 * clients);
        return;
    }
    let Some(ns) = Netns::create("noport", RANGE) else {
        return;
    };
    ns.run(|| async {
        let backend = CountingEcho::start(BACKEND_PORT).await;
        let ringlb = Process::start(&config(io, &[backend.addr], ""), None);
        let admin = admin_addr(&ringlb);
        wait_backends_up(admin, 1).await;
        let started = Instant::now();

        let mut outcome = Clients::open(ringlb.addr, FIRST_CLIENT, clients).await;
        let log = || ringlb.log.lock().unwrap().join("\n");
        assert_eq!(outcome.relayed + outcome.refused, clients, "{outcome:?}");
        assert!(
            outcome.relayed <= RANGE_PORTS,
            "{} relayed through a {RANGE_PORTS}-port range: {outcome:?}",
            outcome.relayed
        );
        assert!(outcome.refused >= clients - RANGE_PORTS, "{outcome:?}");
        assert!(
            outcome.relayed >= RANGE_PORTS * 9 / 10,
            "the range itself must serve: {outcome:?}"
        );

        let metrics = get(admin, "/metrics").await.1;
        let no_port = metric(&metrics, "ringlb_connect_no_local_port_total");
        assert!(
            no_port >= outcome.refused as f64,
            "every refused client counted: {no_port} < {}",
            outcome.refused
        );
        assert_eq!(metric(&metrics, "ringlb_backend_up"), 1.0, "{metrics}");
        assert_eq!(
            metric(&metrics, "ringlb_backend_connect_failures_total"),
            0.0,
            "a local failure is not the backend's: {metrics}"
        );
        assert_eq!(ringlb.log_lines("Healthy targets: 0"), 0, "{}", log());
        let lines = ringlb.log_lines(NO_PORT_LINE);
        let seconds = started.elapsed().as_secs() as usize + 1;
        assert!(lines >= 1, "port exhaustion not logged: {}", log());
        assert!(
            lines <= seconds,
            "{lines} lines in {seconds}s: not rate-limited"
        );
        let line = ringlb
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(NO_PORT_LINE))
            .cloned()
            .unwrap();
        assert!(
            line.contains("WARN") && line.contains("add `source` addresses"),
            "{line}"
        );

        // The relayed clients are still being served.
        outcome.echo_all().await;
    });
}

on_both_backends!(each_source_address_adds_a_whole_range);
fn each_source_address_adds_a_whole_range(io: IoBackend) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sources: Vec<IpAddr> = (2..=13)
        .map(|i| Ipv4Addr::new(127, 0, 0, i).into())
        .collect();
    let clients = sources.len() * RANGE_PORTS * 9 / 10;
    // The test process holds both ends of each backend connection's far side: the client's
    // socket and the backend's.
    if !common::flood::descriptors_for(2 * clients as u64) {
        eprintln!("cannot open {} descriptors; skipping", 2 * clients);
        return;
    }
    let Some(ns) = Netns::create("source", RANGE) else {
        return;
    };
    ns.run(|| async {
        let backend = CountingEcho::start(BACKEND_PORT).await;
        let list: Vec<String> = sources.iter().map(|ip| format!("\"{ip}\"")).collect();
        let extra = format!("source = [{}]\nmax_connections = 8000", list.join(", "));
        let ringlb = Process::start(&config(io, &[backend.addr], &extra), None);
        let admin = admin_addr(&ringlb);
        wait_backends_up(admin, 1).await;

        let mut outcome = Clients::open(ringlb.addr, FIRST_CLIENT, clients).await;
        let log = || ringlb.log.lock().unwrap().join("\n");
        assert_eq!(
            (outcome.relayed, outcome.refused),
            (clients, 0),
            "every client relayed: {}",
            log()
        );
        // All of them open at once, on both sides of ringlb.
        let metrics = get(admin, "/metrics").await.1;
        assert_eq!(metric(&metrics, "ringlb_open_connections"), clients as f64);
        assert_eq!(
            metric(&metrics, "ringlb_backend_active_connections"),
            clients as f64
        );
        assert_eq!(metric(&metrics, "ringlb_connect_no_local_port_total"), 0.0);
        assert_eq!(ringlb.log_lines(NO_PORT_LINE), 0, "{}", log());
        let peers = backend.peers();
        assert_eq!(peers.values().sum::<usize>(), clients);
        // One worker, round robin: every address carries the same share, far past one range
        // in total.
        let even = clients / sources.len();
        for ip in &sources {
            assert_eq!(peers.get(ip), Some(&even), "{peers:?}");
        }
        outcome.echo_all().await;
        let metrics = get(admin, "/metrics").await.1;
        assert_eq!(metric(&metrics, "ringlb_open_connections"), clients as f64);
    });
}

on_both_backends!(each_source_address_gives_every_backend_a_range_of_its_own);
fn each_source_address_gives_every_backend_a_range_of_its_own(io: IoBackend) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Two addresses, two backends: 2 × 2 ranges. A plain bind to port 0 (no
    // IP_BIND_ADDRESS_NO_PORT) would reserve each port for every destination at once, and
    // two addresses would then give only 2 ranges over both backends.
    let clients = 2 * 2 * RANGE_PORTS * 9 / 10;
    if !common::flood::descriptors_for(2 * clients as u64) {
        eprintln!("cannot open {} descriptors; skipping", 2 * clients);
        return;
    }
    let Some(ns) = Netns::create("perbackend", RANGE) else {
        return;
    };
    ns.run(|| async {
        let a = CountingEcho::start(BACKEND_PORT).await;
        let b = CountingEcho::start(BACKEND_PORT + 1).await;
        let extra = "source = [\"127.0.0.2\", \"127.0.0.3\"]";
        let ringlb = Process::start(&config(io, &[a.addr, b.addr], extra), None);
        let admin = admin_addr(&ringlb);
        wait_backends_up(admin, 2).await;
        let mut outcome = Clients::open(ringlb.addr, FIRST_CLIENT, clients).await;
        let log = || ringlb.log.lock().unwrap().join("\n");
        assert_eq!(
            (outcome.relayed, outcome.refused),
            (clients, 0),
            "{}",
            log()
        );
        for backend in [&a, &b] {
            let peers = backend.peers();
            assert_eq!(peers.values().sum::<usize>(), clients / 2, "{peers:?}");
            assert_eq!(peers.len(), 2, "{peers:?}");
        }
        outcome.echo_all().await;
    });
}

on_both_backends!(a_source_address_that_is_not_this_hosts_fails_the_start);
fn a_source_address_that_is_not_this_hosts_fails_the_start(io: IoBackend) {
    // 192.0.2.0/24 is TEST-NET-1: never configured on a host.
    let mut config = common::config(io, &[common::dead_addr()], RelayMode::Copy);
    config.startup.source = vec!["127.0.0.2".parse().unwrap(), "192.0.2.1".parse().unwrap()];
    let error = match ringlb::Server::start(&config, ringlb::Shutdown::new()) {
        Ok(_) => panic!("started with a source address of no interface"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("192.0.2.1") && error.contains("(source)"),
        "{error}"
    );
    assert!(error.contains("configured on this host"), "{error}");
}

#[test]
fn check_warns_about_a_source_family_no_target_uses() {
    let dir = common::binary::TempDir::new("source-check");
    let path = dir.0.join("ringlb.toml");
    let text = "source = [\"127.0.0.2\", \"::1\"]\n[[targets]]\naddress = \"127.0.0.1:1\"\n";
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        stderr.contains("no target is an IPv6 address, so ::1 is never used"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("source = [\"127.0.0.2\", \"::1\"]"),
        "{stdout}"
    );
}
