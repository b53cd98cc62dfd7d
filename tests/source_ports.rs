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
//! 20,000 per process, which caps ringlb at about 9,900 connections and this test process
//! (holding both the clients and the backend's ends) likewise. So the range is narrowed instead:
//! 5,400 connections over a 500-port range is 10.8 ranges' worth, where 50,000 over the default
//! 28,232 ports would be 1.8.

mod common;

use std::{
    collections::HashMap,
    fs::File,
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::fd::AsRawFd,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    admin_http::{admin_addr, get, metric},
    binary::{toml, Process},
};
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{watch, Semaphore},
    time::{timeout, Instant},
};

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
const FIRST_CLIENT_PORT: u16 = 10000;
/// What each client sends and the echo backend returns; as long as the start of the 503.
const HELLO: &[u8] = b"hello, echo\n";
/// The start of ringlb's no-backend answer.
const REFUSED: &[u8] = b"HTTP/1.1 503";
/// Clients connecting at once (the rest wait for a permit): well within the listen backlogs.
const CONNECTING: usize = 256;
/// The log line of a connect that found no local port.
const NO_PORT_LINE: &str = "no local port for a backend connection";

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
    let Some(ns) = Netns::create("noport") else {
        return;
    };
    ns.run(|| async {
        let backend = EchoBackend::start(BACKEND_PORT).await;
        let ringlb = Process::start(&config(io, &[backend.addr], ""), None);
        let admin = admin_addr(&ringlb);
        wait_up(admin, 1).await;
        let started = Instant::now();

        let mut outcome = Clients::open(ringlb.addr, clients).await;
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
    let Some(ns) = Netns::create("source") else {
        return;
    };
    ns.run(|| async {
        let backend = EchoBackend::start(BACKEND_PORT).await;
        let list: Vec<String> = sources.iter().map(|ip| format!("\"{ip}\"")).collect();
        let extra = format!("source = [{}]\nmax_connections = 8000", list.join(", "));
        let ringlb = Process::start(&config(io, &[backend.addr], &extra), None);
        let admin = admin_addr(&ringlb);
        wait_up(admin, 1).await;

        let mut outcome = Clients::open(ringlb.addr, clients).await;
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
    let Some(ns) = Netns::create("perbackend") else {
        return;
    };
    ns.run(|| async {
        let a = EchoBackend::start(BACKEND_PORT).await;
        let b = EchoBackend::start(BACKEND_PORT + 1).await;
        let extra = "source = [\"127.0.0.2\", \"127.0.0.3\"]";
        let ringlb = Process::start(&config(io, &[a.addr, b.addr], extra), None);
        let admin = admin_addr(&ringlb);
        wait_up(admin, 2).await;
        let mut outcome = Clients::open(ringlb.addr, clients).await;
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

/// A network namespace of this test's, with `lo` up and the narrowed port range; deleted when
/// dropped (whether the test passed or not).
struct Netns {
    name: String,
}

impl Netns {
    /// `None`, after saying why, where namespaces cannot be made (not root, no `ip`).
    fn create(tag: &str) -> Option<Netns> {
        let name = format!("ringlb-test-{tag}-{}", std::process::id());
        match Command::new("ip").args(["netns", "add", &name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!(
                    "cannot create a network namespace ({}); skipping",
                    why.trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("cannot run `ip netns add` ({e}); skipping");
                return None;
            }
        }
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        let range = format!("net.ipv4.ip_local_port_range={} {}", RANGE.0, RANGE.1);
        ns.exec(&["sysctl", "-q", "-w", &range]);
        Some(ns)
    }

    /// Runs `command` inside the namespace (`ip netns exec`); it must succeed.
    fn exec(&self, command: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(command)
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "{command:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `body` on a tokio runtime whose threads are all inside the namespace, as is every
    /// process they spawn: a fresh thread enters it first, and the runtime is built there. A
    /// panic in `body` is this test's, after the runtime (and the processes it owns) is gone.
    fn run<F: std::future::Future<Output = ()>>(&self, body: impl FnOnce() -> F + Send) {
        std::thread::scope(|scope| {
            let inside = scope.spawn(|| {
                self.enter();
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    timeout(Duration::from_secs(180), body())
                        .await
                        .expect("the test finishes within 3 minutes")
                });
            });
            if let Err(panic) = inside.join() {
                std::panic::resume_unwind(panic);
            }
        });
    }

    /// Moves the calling thread (only) into the namespace.
    fn enter(&self) {
        let handle = File::open(format!("/run/netns/{}", self.name)).expect("open the namespace");
        // SAFETY: setns(2) reads a descriptor that stays open for the call and a flag; it
        // changes only the calling thread's network namespace, touching no memory of ours.
        let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// An echo backend on 127.0.0.1:`port` answering ringlb's health probes, counting
/// the connections it holds by the peer's address.
struct EchoBackend {
    addr: SocketAddr,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl EchoBackend {
    async fn start(port: u16) -> EchoBackend {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr).await.expect("bind the backend");
        let peers = Arc::new(Mutex::new(HashMap::new()));
        let count = Arc::clone(&peers);
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                tokio::spawn(serve(stream, peer.ip(), Arc::clone(&count)));
            }
        });
        EchoBackend { addr, peers }
    }

    /// Connections open now (health probes aside), by the address they came from.
    fn peers(&self) -> HashMap<IpAddr, usize> {
        let peers = self.peers.lock().unwrap();
        peers
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(ip, n)| (*ip, *n))
            .collect()
    }
}

/// Echoes a relayed connection (small buffer: thousands are open at once) until EOF; answers a
/// health probe and closes.
async fn serve(mut stream: TcpStream, peer: IpAddr, open: Arc<Mutex<HashMap<IpAddr, usize>>>) {
    let mut buf = [0u8; 256];
    let Ok(n) = stream.read(&mut buf).await else {
        return;
    };
    if buf[..n].starts_with(b"GET /healthz") {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(ok).await;
        return;
    }
    *open.lock().unwrap().entry(peer).or_insert(0) += 1;
    let mut next = &buf[..n];
    let mut more = [0u8; 256];
    while !next.is_empty() && stream.write_all(next).await.is_ok() {
        next = match stream.read(&mut more).await {
            Ok(n) => &more[..n],
            Err(_) => &[],
        };
    }
    *open.lock().unwrap().entry(peer).or_insert(1) -= 1;
}

/// How a crowd of clients fared, and the relayed ones, still open.
struct Clients {
    relayed: usize,
    refused: usize,
    open: Vec<TcpStream>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} relayed, {} refused", self.relayed, self.refused)
    }
}

impl Clients {
    /// Opens `n` client connections through `ringlb`, each from an explicit port outside the
    /// narrowed range, each sending [`HELLO`]: relayed when it comes back, refused when the
    /// no-backend answer does. The relayed ones stay open.
    async fn open(ringlb: SocketAddr, n: usize) -> Clients {
        let permits = Arc::new(Semaphore::new(CONNECTING));
        let (done, mut finished) = watch::channel(0usize);
        let done = Arc::new(done);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let permits = Arc::clone(&permits);
            let done = Arc::clone(&done);
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                let outcome = hello(ringlb, FIRST_CLIENT_PORT + i as u16).await;
                done.send_modify(|d| *d += 1);
                outcome
            }));
        }
        let all = timeout(Duration::from_secs(90), finished.wait_for(|&d| d == n))
            .await
            .is_ok();
        assert!(
            all,
            "only {} of {n} clients answered in 90 s",
            *finished.borrow()
        );
        let mut clients = Clients {
            relayed: 0,
            refused: 0,
            open: Vec::new(),
        };
        for task in tasks {
            match task.await.unwrap() {
                Some(stream) => {
                    clients.relayed += 1;
                    clients.open.push(stream);
                }
                None => clients.refused += 1,
            }
        }
        clients
    }

    /// Every relayed client sends [`HELLO`] again and gets it back, one after the other.
    async fn echo_all(&mut self) {
        let every = async {
            for stream in &mut self.open {
                stream.write_all(HELLO).await.unwrap();
                let mut back = [0u8; HELLO.len()];
                stream.read_exact(&mut back).await.unwrap();
                assert_eq!(back, HELLO);
            }
        };
        timeout(Duration::from_secs(60), every)
            .await
            .expect("every open client echoed within 60 s");
    }
}

/// One client: `Some(stream)` relayed, `None` given the no-backend answer. Anything else (a
/// reset, a hang, a wrong answer) fails the test.
async fn hello(ringlb: SocketAddr, port: u16) -> Option<TcpStream> {
    let exchange = async {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let mut stream = socket.connect(ringlb).await?;
        stream.write_all(HELLO).await?;
        let mut back = [0u8; HELLO.len()];
        stream.read_exact(&mut back).await?;
        io::Result::Ok((stream, back))
    };
    let (stream, back) = timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("client from port {port}: no answer in 30 s"))
        .unwrap_or_else(|e| panic!("client from port {port}: {e}"));
    match &back[..] {
        b if b == HELLO => Some(stream),
        b if b.starts_with(REFUSED) => None,
        b => panic!("client from port {port}: {:?}", String::from_utf8_lossy(b)),
    }
}

/// The binary's test configuration for `backends`, with `extra` top-level keys and a health
/// check that a test process busy with thousands of clients cannot fail by answering late.
fn config(io: IoBackend, backends: &[SocketAddr], extra: &str) -> String {
    let text = toml(io, backends, extra);
    let patient = "timeout = \"10s\"\nfall = 3\n";
    assert!(text.contains("timeout = \"500ms\"\n"), "{text}");
    text.replacen("timeout = \"500ms\"\n", patient, 1)
}

/// Waits (bounded) until the admin API says every backend is up.
async fn wait_up(admin: SocketAddr, backends: usize) {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let metrics = get(admin, "/metrics").await.1;
        if metric(&metrics, "ringlb_backend_up") == backends as f64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the backend never came up: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
