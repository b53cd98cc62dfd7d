//! End-to-end: 50,000 connections open at once through ringlb to ONE backend address, with the
//! ephemeral port range narrowed to 1,000 ports, because `source` gives each of 64 local
//! addresses a whole range toward that backend (issue 15's target; `tests/source_ports.rs`
//! tests the same mechanism at 5,400 connections in one process).
//!
//! Why it is built from many processes: 50,000 relayed connections need 100,000 descriptors in
//! ringlb (the client's socket and the backend's for each) and as many again on the far sides,
//! the clients' and the backend's; this machine's hard open-files limit is 20,000 per process,
//! and raising it needs `CAP_SYS_RESOURCE`, which the tests do not have. The ephemeral port
//! space, though, is per network namespace, not per process: the ports toward one destination
//! are the same pool for every process in the namespace. So the connections are split over
//! processes in one namespace, and what is tested is still the namespace's range against the
//! one backend address:
//!
//! - 6 ringlb processes (the real binary, 3 on io_uring and 3 on epoll, one worker each), all
//!   listening on 127.0.0.1:8000 (their listeners are `SO_REUSEPORT`, so the kernel spreads the
//!   clients over them), each allowed 9,400 connections (what fits in 20,000 descriptors with
//!   its reserve) and given the same `source` list: 127.0.0.2 … 127.0.0.65 (all of 127/8 is
//!   local on `lo`), 64 × 1,000 ports toward the backend;
//! - 4 backend processes sharing 127.0.0.1:9000 with `SO_REUSEPORT`, echoing, answering the
//!   health probes, counting the connections they hold by the peer's address;
//! - 4 client processes of 12,500 connections each, each from explicit (IP, port) pairs outside
//!   the range (127.1.0.k, ports 10000 and up), so only ringlb's connections to the backend
//!   draw on it; each sends a hello, reads the echo and holds the connection open.
//!
//! The children are this test binary run again (`--exact child --ignored`), their role in the
//! environment ([`ROLE`]); they print marked lines ([`MARK`]: `ready`, `open 12500 0`, …) that
//! the test awaits, and read commands from stdin (`peers`; `echo`: every client sends a hello
//! again, then every one reads the echo); at stdin's end they close everything and exit.
//!
//! Then, with all 50,000 open: every client got its echo and none the 503, and all 50,000 echo
//! again with every hello in flight together; the backends hold 50,000 connections, every one from
//! a `source` address, all 64 used, none more than the range's 1,000 (and evenly: each ringlb
//! cycles through the list); no ringlb counted a connect without a local port. Everything is
//! closed, and every ringlb is still up and relays fresh clients. Last, the contrast: one ringlb
//! without `source` in the same namespace relays at most the range's 1,000 of 1,200 clients
//! (`tests/source_ports.rs` tests that case fully).
//!
//! It takes about 30 to 45 s in a debug build on 2 cores (most of it the 50,000 connects), so it
//! runs with the rest of the suite; each ringlb peaks at about 40 MiB resident, each other child
//! at about 20 MiB, and the machine's used memory (the kernel's 200,000 sockets included) rises
//! by 0.5 to 0.9 GiB in all.

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::Stdio,
    time::Duration,
};

use common::{
    admin_http::{admin_addr, get, metric, wait_backends_up},
    binary::Process,
    local_ports::{config, Clients, CountingEcho, HELLO, NO_PORT_LINE},
    netns::Netns,
    DEADLINE,
};
use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines},
    net::TcpStream,
    process::{ChildStdin, ChildStdout},
    task::JoinSet,
    time::{timeout, Instant},
};

/// Ports of the narrowed range (`net.ipv4.ip_local_port_range` in the namespace).
const RANGE: (u16, u16) = (61000, 61999);
const RANGE_PORTS: usize = (RANGE.1 - RANGE.0 + 1) as usize;
/// `source` addresses: 127.0.0.2 … 127.0.0.65, 64 ranges toward the backend.
const SOURCES: u8 = 64;
/// Client connections open at once.
const CONNECTIONS: usize = 50_000;
/// Where every ringlb listens (the namespace is ours alone: a fixed port is free).
const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);
/// The one backend address's port, on 127.0.0.1.
const BACKEND_PORT: u16 = 9000;
/// ringlb processes sharing [`LISTEN`]: 6 × 9,400 leaves a wide margin over 50,000 for the
/// kernel's uneven spread (about ±100 per process).
const RINGLBS: usize = 6;
/// Each ringlb's `max_connections`: with 2 descriptors each and ringlb's reserve (see
/// [`ringlb_descriptors`]), what fits in a 20,000 limit.
const MAX_CONNECTIONS: usize = 9_400;
/// Backend processes sharing 127.0.0.1:9000: about 12,500 connections each.
const BACKENDS: usize = 4;
/// Client processes, [`PER_CLIENT`] connections each.
const CLIENT_PROCESSES: usize = 4;
const PER_CLIENT: usize = CONNECTIONS / CLIENT_PROCESSES;
/// Client ports start here, on an IP of their own per process: far below the range.
const FIRST_CLIENT_PORT: u16 = 10000;
/// Names a child's role and its parameters; absent, the `child` test returns at once.
const ROLE: &str = "RINGLB_FIFTY_THOUSAND_CHILD";
/// Marks a child's report lines among the test harness's own.
const MARK: &str = "fifty-thousand:";
/// How long the 50,000 clients may take to connect and get their echo.
const CONNECT_WITHIN: Duration = Duration::from_secs(120);

#[test]
fn fifty_thousand_connections_to_one_backend_address_through_source_addresses() {
    let needed = ringlb_descriptors();
    let limit = raise_nofile();
    if limit < needed {
        eprintln!("the open-files limit is {limit}, each ringlb needs {needed}; skipping");
        return;
    }
    let Some(ns) = Netns::create("fifty", RANGE) else {
        return;
    };
    let started = std::time::Instant::now();
    ns.run(fifty_thousand);
    eprintln!("took {:.1?}", started.elapsed());
}

/// The test, inside the namespace.
async fn fifty_thousand() {
    let begun = Instant::now();
    let mut backends = Vec::new();
    for _ in 0..BACKENDS {
        let mut child = Child::spawn("backend".to_owned());
        child.expect("ready", DEADLINE).await;
        backends.push(child);
    }
    let mut ringlbs = Vec::new();
    for i in 0..RINGLBS {
        ringlbs.push(Ringlb::start(i, [IoBackend::IoUring, IoBackend::Epoll][i % 2]).await);
    }

    // 50,000 clients, all at once in four processes.
    let set_up = begun.elapsed();
    let connecting = Instant::now();
    let mut clients = Vec::new();
    for k in 0..CLIENT_PROCESSES {
        let first = SocketAddr::from(([127, 1, 0, k as u8 + 1], FIRST_CLIENT_PORT));
        clients.push(Child::spawn(format!("client {first} {PER_CLIENT}")));
    }
    for client in &mut clients {
        let outcome = client.expect("open", CONNECT_WITHIN).await;
        assert_eq!(
            outcome,
            format!("{PER_CLIENT} 0"),
            "{}: relayed and refused (the 503) clients",
            client.role
        );
    }
    let connected = connecting.elapsed();

    // All of them open now, on both sides of every ringlb.
    let spread = held_by_backends(&mut backends).await;
    let shares = held_by_ringlbs(&ringlbs).await;
    // And all 50,000 are relayed both ways at once: every client sends its hello again before
    // any reads the echo.
    for client in &mut clients {
        client.send("echo").await;
    }
    for client in &mut clients {
        let echoed = client.expect("echoed", Duration::from_secs(60)).await;
        assert_eq!(echoed, PER_CLIENT.to_string(), "{}", client.role);
    }

    let sockets = std::fs::read_to_string("/proc/thread-self/net/sockstat").unwrap_or_default();
    let tcp = sockets.lines().find(|l| l.starts_with("TCP:"));
    let peaks = |pids: Vec<u32>| -> Vec<u64> {
        pids.into_iter()
            .map(|pid| peak_rss_kib(pid).unwrap_or(0) / 1024)
            .collect()
    };
    eprintln!(
        "set up in {set_up:.1?}; {CONNECTIONS} connected and echoed in {connected:.1?}; per \
         ringlb {shares:?}; per source address {spread:?}; peak RSS in MiB: ringlb {:?}, \
         backends {:?}, clients {:?}; {}",
        peaks(ringlbs.iter().map(|r| r.process.child.id()).collect()),
        peaks(backends.iter().map(|b| b.pid).collect()),
        peaks(clients.iter().map(|c| c.pid).collect()),
        tcp.unwrap_or("")
    );

    // Close everything: the clients exit (all at once: each takes a second or two to close
    // its 12,500), ringlb closes both sides.
    let mut closing = JoinSet::new();
    for client in clients {
        closing.spawn(client.finish());
    }
    while let Some(closed) = closing.join_next().await {
        if let Err(e) = closed {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    let deadline = Instant::now() + DEADLINE;
    for ringlb in &ringlbs {
        while ringlb.metric("ringlb_open_connections").await != 0.0 {
            assert!(Instant::now() < deadline, "connections left open in ringlb");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    still_relaying(&mut ringlbs).await;
    drop(ringlbs);

    without_source().await;
    for backend in backends {
        backend.finish().await;
    }
}

/// One of the ringlb processes sharing [`LISTEN`], and its admin API.
struct Ringlb {
    process: Process,
    admin: SocketAddr,
}

impl Ringlb {
    /// Starts ringlb number `i` on `io`, with the `source` list, and waits for the backend to
    /// be up in it.
    async fn start(i: usize, io: IoBackend) -> Ringlb {
        let list: Vec<String> = (2..2 + SOURCES)
            .map(|i| format!("\"127.0.0.{i}\""))
            .collect();
        // `relay = "copy"`: 2 descriptors per connection. (`auto` may splice on io_uring, and
        // ringlb then budgets a pipe per direction as well, 6 per connection.)
        let extra = format!(
            "source = [{}]\nmax_connections = {MAX_CONNECTIONS}\nrelay = \"copy\"",
            list.join(", ")
        );
        let backend = SocketAddr::from(([127, 0, 0, 1], BACKEND_PORT));
        let text = on_listen(&config(io, &[backend], &extra));
        // A process that cannot bind the address it would share fails its start here.
        let process = Process::start(&text, None);
        assert_eq!(process.addr, LISTEN, "ringlb {i} not on the shared address");
        let admin = admin_addr(&process);
        wait_backends_up(admin, 1).await;
        let ringlb = Ringlb { process, admin };
        let on = format!("ringlb_io_backend{{backend=\"{io}\"}} 1");
        let metrics = ringlb.metrics().await;
        assert!(metrics.contains(&on), "ringlb {i} not on {io}: {metrics}");
        ringlb
    }

    async fn metrics(&self) -> String {
        get(self.admin, "/metrics").await.1
    }

    /// One metric's value (summed over its labels).
    async fn metric(&self, name: &str) -> f64 {
        metric(&self.metrics().await, name)
    }
}

/// Asks every backend process which connections it holds: together all 50,000, every one from
/// a `source` address, every address used, none past its range, and evenly. The fewest and the
/// most from one address.
async fn held_by_backends(backends: &mut [Child]) -> (usize, usize) {
    let mut peers: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for (i, backend) in backends.iter_mut().enumerate() {
        backend.send("peers").await;
        let held = parse_peers(&backend.expect("peers", DEADLINE).await);
        let total: usize = held.values().sum();
        assert!(total > 0, "backend process {i} took none: {held:?}");
        for (ip, n) in held {
            *peers.entry(ip).or_default() += n;
        }
    }
    let total: usize = peers.values().sum();
    assert_eq!(total, CONNECTIONS, "held by the backend: {peers:?}");
    let sources: Vec<IpAddr> = (2..2 + SOURCES)
        .map(|i| Ipv4Addr::new(127, 0, 0, i).into())
        .collect();
    let from: Vec<IpAddr> = peers.keys().copied().collect();
    assert_eq!(from, sources, "the peers are the source addresses");
    let fewest = *peers.values().min().unwrap();
    let most = *peers.values().max().unwrap();
    assert!(
        most <= RANGE_PORTS,
        "past a range from one address: {peers:?}"
    );
    // Each ringlb cycles through the list on its own: an address carries at most one
    // connection more than another per ringlb.
    assert!(most - fewest <= RINGLBS, "uneven: {peers:?}");
    (fewest, most)
}

/// Asks every ringlb what it holds: together all 50,000 open, each a share within its
/// `max_connections`; none refused, none short of a local port, no accept failed, and the
/// descriptor budget held (no warning at start). The share of each.
async fn held_by_ringlbs(ringlbs: &[Ringlb]) -> Vec<usize> {
    let names = [
        "ringlb_open_connections",
        "ringlb_backend_active_connections",
        "ringlb_connect_no_local_port_total",
        "ringlb_rejected_connections_total",
        "ringlb_accept_errors_total",
        "ringlb_max_connections_reached_total",
    ];
    let mut sum = [0.0; 6];
    let mut shares = Vec::new();
    for ringlb in ringlbs {
        let metrics = ringlb.metrics().await;
        for (total, name) in sum.iter_mut().zip(names) {
            *total += metric(&metrics, name);
        }
        shares.push(metric(&metrics, "ringlb_open_connections") as usize);
        let process = &ringlb.process;
        let log = || process.log.lock().unwrap().join("\n");
        assert_eq!(process.log_lines(NO_PORT_LINE), 0, "{}", log());
        let short = process.log_lines("open-files limit is too small");
        assert_eq!(short, 0, "{}", log());
    }
    let sum: Vec<(&str, f64)> = names.into_iter().zip(sum).collect();
    let n = CONNECTIONS as f64;
    let expected = [n, n, 0.0, 0.0, 0.0, 0.0];
    let want: Vec<(&str, f64)> = names.into_iter().zip(expected).collect();
    assert_eq!(sum, want, "summed over the ringlb processes");
    let within = |&n: &usize| n > 0 && n <= MAX_CONNECTIONS;
    assert!(shares.iter().all(within), "per ringlb: {shares:?}");
    shares
}

/// Every ringlb survived it all and still relays: fresh clients through [`LISTEN`] are all
/// relayed, and each ringlb takes some of them.
async fn still_relaying(ringlbs: &mut [Ringlb]) {
    let accepted = "ringlb_worker_accepted_connections_total";
    let mut before = Vec::new();
    for ringlb in ringlbs.iter_mut() {
        let exited = ringlb.process.child.try_wait().unwrap();
        assert!(exited.is_none(), "a ringlb exited: {exited:?}");
        wait_backends_up(ringlb.admin, 1).await;
        before.push(ringlb.metric(accepted).await);
    }
    let fresh = 300;
    let first = SocketAddr::from(([127, 3, 0, 1], FIRST_CLIENT_PORT));
    let mut outcome = Clients::open(LISTEN, first, fresh).await;
    assert_eq!((outcome.relayed, outcome.refused), (fresh, 0), "fresh");
    outcome.echo_all().await;
    for (ringlb, before) in ringlbs.iter().zip(before) {
        let after = ringlb.metric(accepted).await;
        assert!(
            after > before,
            "a ringlb took none of {fresh} fresh clients"
        );
    }
}

/// The contrast: without `source`, the same namespace gives one range toward the backend, so
/// one ringlb relays at most the range's 1,000 of 1,200 clients and answers the rest.
async fn without_source() {
    let backend = SocketAddr::from(([127, 0, 0, 1], BACKEND_PORT));
    let text = config(IoBackend::IoUring, &[backend], "max_connections = 2000");
    let ringlb = Process::start(&text, None);
    let admin = admin_addr(&ringlb);
    wait_backends_up(admin, 1).await;
    let crowd = RANGE_PORTS + 200;
    let first = SocketAddr::from(([127, 4, 0, 1], FIRST_CLIENT_PORT));
    let outcome = Clients::open(ringlb.addr, first, crowd).await;
    assert_eq!(outcome.relayed + outcome.refused, crowd, "{outcome:?}");
    assert!(outcome.relayed <= RANGE_PORTS, "{outcome:?}");
    assert!(outcome.relayed >= RANGE_PORTS * 9 / 10, "{outcome:?}");
    let metrics = get(admin, "/metrics").await.1;
    let no_port = metric(&metrics, "ringlb_connect_no_local_port_total");
    assert!(no_port >= outcome.refused as f64, "{no_port}: {outcome:?}");
}

/// A child process of the test above, by [`ROLE`]: `backend`, or `client FIRST N`. Run alone
/// (no [`ROLE`]) it does nothing.
#[test]
#[ignore = "a child process of the 50,000-connection test in this file, started by it"]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    raise_nofile();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let words: Vec<&str> = role.split_whitespace().collect();
    runtime.block_on(async {
        match words[..] {
            ["backend"] => backend().await,
            ["client", first, n] => client(first.parse().unwrap(), n.parse().unwrap()).await,
            _ => panic!("unknown role {role:?}"),
        }
    });
}

/// A backend process: one of the listeners on 127.0.0.1:9000; says which peers it holds when
/// asked.
async fn backend() {
    let echo = CountingEcho::start_shared(BACKEND_PORT).await;
    say("ready");
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(command) = commands.next_line().await.unwrap() {
        match command.as_str() {
            "peers" => {
                let peers: Vec<String> = echo
                    .peers()
                    .iter()
                    .map(|(ip, n)| format!("{ip}={n}"))
                    .collect();
                say(&format!("peers {}", peers.join(" ")));
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}

/// A client process: `n` clients from `first` on, through [`LISTEN`], held open until stdin
/// ends; echoes them all again when asked.
async fn client(first: SocketAddr, n: usize) {
    let mut clients = Clients::open(LISTEN, first, n).await;
    say(&format!("open {} {}", clients.relayed, clients.refused));
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(command) = commands.next_line().await.unwrap() {
        match command.as_str() {
            "echo" => {
                let echoed = timeout(Duration::from_secs(60), echo_at_once(&mut clients.open));
                echoed.await.expect("every client echoed within 60 s");
                say(&format!("echoed {}", clients.open.len()));
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}

/// Every one of `open` sends [`HELLO`], then every one reads it back: all in flight together.
async fn echo_at_once(open: &mut [TcpStream]) {
    for stream in open.iter_mut() {
        stream.write_all(HELLO).await.unwrap();
    }
    for stream in open.iter_mut() {
        let mut back = [0u8; HELLO.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, HELLO);
    }
}

/// A report line for the test (stdout is line-buffered: it goes out at once).
fn say(report: &str) {
    println!("{MARK} {report}");
}

/// A child process in the namespace (spawned from a thread inside it), killed if dropped
/// before [`Child::finish`].
struct Child {
    role: String,
    pid: u32,
    process: tokio::process::Child,
    stdin: ChildStdin,
    reports: Lines<BufReader<ChildStdout>>,
}

impl Child {
    fn spawn(role: String) -> Child {
        let mut process = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child", "--ignored", "--nocapture"])
            .env(ROLE, &role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its panics, if any, go straight to the test's output.
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn a child");
        let pid = process.id().unwrap();
        let stdin = process.stdin.take().unwrap();
        let reports = BufReader::new(process.stdout.take().unwrap()).lines();
        Child {
            role,
            pid,
            process,
            stdin,
            reports,
        }
    }

    async fn send(&mut self, command: &str) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Waits (bounded) for the report starting with `word`; the rest of it. The harness's own
    /// lines are skipped (a report may follow its `test child ... ` on the same line).
    async fn expect(&mut self, word: &str, within: Duration) -> String {
        let read = async {
            while let Some(line) = self.reports.next_line().await? {
                let Some((_, report)) = line.split_once(MARK) else {
                    continue;
                };
                let report = report.trim();
                if let Some(rest) = report.strip_prefix(word) {
                    return Ok(Some(rest.trim().to_owned()));
                }
                panic!("{}: {report:?}, expected {word:?}", self.role);
            }
            io::Result::Ok(None)
        };
        match timeout(within, read).await {
            Ok(Ok(Some(rest))) => rest,
            Ok(Ok(None)) => {
                let status = self.process.wait().await;
                panic!("{} exited ({status:?}) before {word:?}", self.role)
            }
            Ok(Err(e)) => panic!("{}: {e}", self.role),
            Err(_) => panic!("{}: no {word:?} in {within:?}", self.role),
        }
    }

    /// Ends its stdin and waits (bounded) for it to close everything and exit cleanly.
    async fn finish(self) {
        let Child {
            role,
            mut process,
            stdin,
            ..
        } = self;
        drop(stdin);
        let status = timeout(DEADLINE, process.wait())
            .await
            .unwrap_or_else(|_| panic!("{role} did not exit"))
            .unwrap();
        assert!(status.success(), "{role}: {status}");
    }
}

/// `127.0.0.2=781 127.0.0.3=780 …` → the counts by address.
fn parse_peers(report: &str) -> HashMap<IpAddr, usize> {
    report
        .split_whitespace()
        .map(|pair| {
            let (ip, n) = pair.split_once('=').unwrap();
            (ip.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

/// `text` listening on [`LISTEN`] instead of an ephemeral port.
fn on_listen(text: &str) -> String {
    let ephemeral = "listen = \"127.0.0.1:0\"\n";
    let shared = text.replacen(ephemeral, &format!("listen = \"{LISTEN}\"\n"), 1);
    assert_ne!(shared, text, "{text}");
    shared
}

/// Descriptors each ringlb may hold: 2 per connection, and the reserve ringlb itself counts
/// for one worker and one target (its fixed 32, 4 for the worker, 1 probe, 1,024 admin
/// clients; `src/server/descriptors.rs`). Past it ringlb warns at start, which is checked.
fn ringlb_descriptors() -> u64 {
    2 * MAX_CONNECTIONS as u64 + 32 + 4 + 1 + 1024
}

/// Raises this process's soft open-files limit to the hard one; the limit now.
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write a live local only.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit),
            0,
            "{}",
            io::Error::last_os_error()
        );
    }
    limit.rlim_cur
}

/// The peak resident memory of process `pid` (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
