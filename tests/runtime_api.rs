//! The runtime API end to end: a target drained under load gets no new connection while its
//! open ones finish, `ready` brings it back, `maint` stops its probes, a weight override changes
//! the split, a wrong or missing token changes nothing, no token file means 403, a reload
//! clears only the overrides of the targets it changes, and `ringlb ctl` drives the real binary.

mod common;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use common::{binary::TempDir, *};
use ringlb::{
    config::{IoBackend, RelayMode},
    Config,
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const TOKEN: &str = "rt-api-test-token-6f1c2a9b0d";

/// A backend that names itself with one byte, then echoes until the client's EOF (and closes
/// after it); health probes get 200. Counts both.
struct Backend {
    addr: SocketAddr,
    /// Client connections relayed to it (counted at their first bytes).
    traffic: Arc<AtomicUsize>,
    /// Health probes it answered.
    probes: Arc<AtomicUsize>,
}

impl Backend {
    async fn start(name: u8) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let traffic = Arc::new(AtomicUsize::new(0));
        let probes = Arc::new(AtomicUsize::new(0));
        let (t, p) = (Arc::clone(&traffic), Arc::clone(&probes));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (t, p) = (Arc::clone(&t), Arc::clone(&p));
                tokio::spawn(serve(stream, name, t, p));
            }
        });
        Backend {
            addr,
            traffic,
            probes,
        }
    }

    fn traffic(&self) -> usize {
        self.traffic.load(Relaxed)
    }

    fn probes(&self) -> usize {
        self.probes.load(Relaxed)
    }

    fn name(&self) -> String {
        self.addr.to_string()
    }
}

async fn serve(mut s: TcpStream, name: u8, traffic: Arc<AtomicUsize>, probes: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).await.unwrap_or(0);
    if n == 0 {
        return;
    }
    if answered_health_probe(&mut s, &buf[..n]).await {
        probes.fetch_add(1, Relaxed);
        return;
    }
    traffic.fetch_add(1, Relaxed);
    if s.write_all(&[name]).await.is_err() || s.write_all(&buf[..n]).await.is_err() {
        return;
    }
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) if s.write_all(&buf[..n]).await.is_err() => return,
            Ok(_) => {}
        }
    }
    let _ = s.shutdown().await;
}

/// One short exchange through `proxy`: the backend's name, or `None` if it failed.
async fn exchange(proxy: SocketAddr) -> Option<u8> {
    let attempt = async {
        let mut s = TcpStream::connect(proxy).await.ok()?;
        s.write_all(b"ping").await.ok()?;
        let mut answer = [0u8; 5];
        s.read_exact(&mut answer).await.ok()?;
        s.shutdown().await.ok()?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.ok()?;
        (&answer[1..] == b"ping" && rest.is_empty()).then_some(answer[0])
    };
    tokio::time::timeout(DEADLINE, attempt).await.ok().flatten()
}

/// A connection through `proxy` held open: the stream and the name of its backend.
async fn hold(proxy: SocketAddr) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(b"L").await.unwrap();
    let mut two = [0u8; 2];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut two))
        .await
        .expect("an answer through the proxy")
        .unwrap();
    (s, two[0])
}

/// Finishes a held connection: sends `data`, half-closes, and checks every byte comes back.
async fn finish(mut s: TcpStream, data: &[u8]) {
    let (mut rd, mut wr) = s.split();
    let write = async {
        wr.write_all(data).await.unwrap();
        wr.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let read = rd.read_to_end(&mut back);
    let ((), read) = tokio::time::timeout(DEADLINE, async { tokio::join!(write, read) })
        .await
        .expect("the held connection finishes");
    read.unwrap();
    assert!(back == data, "the open connection completed intact");
}

/// Clients making short exchanges in a loop until stopped; counts per backend name and
/// failures.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(Vec<u8>, usize)>>,
}

impl Load {
    fn start(proxy: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|_| {
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let (mut names, mut failures) = (Vec::new(), 0);
                    while !stop.load(Relaxed) {
                        match exchange(proxy).await {
                            Some(name) => names.push(name),
                            None => failures += 1,
                        }
                    }
                    (names, failures)
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the clients; every name they got, and how many exchanges failed.
    async fn stop(self) -> (Vec<u8>, usize) {
        self.stop.store(true, Relaxed);
        let (mut names, mut failures) = (Vec::new(), 0);
        for task in self.tasks {
            let (n, f) = tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
            names.extend(n);
            failures += f;
        }
        (names, failures)
    }
}

/// Writes `token` into a file of `dir` that only its owner can read.
fn token_file(dir: &TempDir, name: &str, token: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.0.join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A configuration for `backends` (in order) whose runtime API takes `token_file`.
fn config_for(io: IoBackend, backends: &[&Backend], token_file: Option<&Path>) -> Config {
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let mut config = config(io, &addrs, RelayMode::Copy);
    config.startup.admin.token_file = token_file.map(Path::to_owned);
    config
}

/// An admin answer: status code, head and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends one request to the admin listener at `admin`.
async fn call(
    admin: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\n");
    if let Some(auth) = auth {
        request.push_str(&format!("Authorization: {auth}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    tokio::time::timeout(DEADLINE, async {
        let mut s = TcpStream::connect(admin).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a whole answer");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Answer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    })
    .await
    .expect("the admin answers within the deadline")
}

/// `POST /targets/<target>/<field>` with the right token.
async fn set(admin: SocketAddr, target: &Backend, field: &str, value: &str) -> Answer {
    let path = format!("/targets/{}/{field}", target.name());
    call(
        admin,
        "POST",
        &path,
        Some(&format!("Bearer {TOKEN}")),
        value,
    )
    .await
}

/// The `/status` entry of `target`.
async fn status_of(admin: SocketAddr, target: &Backend) -> Value {
    let answer = call(admin, "GET", "/status", None, "").await;
    assert_eq!(answer.status, 200);
    let status: Value = serde_json::from_str(&answer.body).unwrap();
    let targets = status["targets"].as_array().unwrap();
    let name = target.name();
    targets
        .iter()
        .find(|t| t["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {status}"))
        .clone()
}

/// Waits (bounded) until `done()` holds.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Picks made just before a change was published may still be connecting when it is
/// answered: what a backend counts is read after this.
const SETTLE: Duration = Duration::from_millis(150);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drained_target_gets_no_new_connection_its_open_ones_finish_and_ready_brings_it_back(
        io: IoBackend,
    ) {
        let (a, b) = (Backend::start(b'A').await, Backend::start(b'B').await);
        let dir = TempDir::new("runtime-api");
        let token = token_file(&dir, "admin.token", TOKEN, 0o600);
        let proxy = Proxy::start(&config_for(io, &[&a, &b], Some(&token)));
        proxy.wait_healthy(2).await;
        let admin = proxy.server().admin_addr().unwrap();

        // Long connections, some of them to A (round robin alternates).
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(hold(proxy.addr).await);
        }
        assert!(
            held.iter().any(|(_, n)| *n == b'A'),
            "a long connection to A"
        );
        let load = Load::start(proxy.addr, 4);
        until("load reaches A", async || a.traffic() >= 10).await;

        let answer = set(admin, &a, "state", "drain").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.contains(": drain, weight 1"), "{}", answer.body);
        tokio::time::sleep(SETTLE).await;
        let (a_at_drain, b_at_drain) = (a.traffic(), b.traffic());
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(
            a.traffic(),
            a_at_drain,
            "a drained target got a new connection"
        );
        assert!(b.traffic() > b_at_drain + 10, "the others take the load");
        let drained = status_of(admin, &a).await;
        assert_eq!(drained["state"], "drain", "{drained}");
        assert_eq!(
            drained["endpoints"][0]["state"], "up",
            "drained, still probed and healthy"
        );

        // Its open connections run to their end, intact.
        let data = random_bytes(256 * 1024, 13);
        for (stream, _) in held {
            finish(stream, &data).await;
        }

        let answer = set(admin, &a, "state", "ready").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let back = a.traffic();
        until("new connections reach A again", async || {
            a.traffic() > back + 10
        })
        .await;
        let (names, failures) = load.stop().await;
        assert_eq!(failures, 0, "no client noticed");
        assert!(names.contains(&b'A') && names.contains(&b'B'));
        assert_eq!(status_of(admin, &a).await["state"], "ready");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn maint_stops_probes_and_takes_the_target_out(io: IoBackend) {
        let (a, b) = (Backend::start(b'A').await, Backend::start(b'B').await);
        let dir = TempDir::new("runtime-api");
        let token = token_file(&dir, "admin.token", TOKEN, 0o600);
        let proxy = Proxy::start(&config_for(io, &[&a, &b], Some(&token)));
        proxy.wait_healthy(2).await;
        let admin = proxy.server().admin_addr().unwrap();
        until("A is probed", async || a.probes() >= 2).await;

        let answer = set(admin, &a, "state", "maint").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        tokio::time::sleep(SETTLE).await;
        let (probes, traffic) = (a.probes(), a.traffic());
        // Six probe intervals: none reaches A, every client goes to B.
        for _ in 0..20 {
            assert_eq!(exchange(proxy.addr).await, Some(b'B'));
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(a.probes(), probes, "a target in maintenance is not probed");
        assert_eq!(a.traffic(), traffic);
        assert!(b.probes() > 3, "the others are");
        let shown = status_of(admin, &a).await;
        assert_eq!(shown["state"], "maint", "{shown}");
        assert_eq!(shown["endpoints"][0]["state"], "maint", "{shown}");
        let metrics = call(admin, "GET", "/metrics", None, "").await.body;
        let series = format!(
            "ringlb_target_admin_state{{pool=\"default\",target=\"{}\",state=\"maint\"}} 1",
            a.name()
        );
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
        let up = format!(
            "ringlb_backend_up{{pool=\"default\",target=\"{0}\",addr=\"{0}\"}} 0",
            a.name()
        );
        assert!(metrics.contains(&up), "{up} in\n{metrics}");

        assert_eq!(set(admin, &a, "state", "ready").await.status, 200);
        until("A is probed again", async || a.probes() > probes).await;
        until("A takes traffic again", async || {
            exchange(proxy.addr).await == Some(b'A')
        })
        .await;
        assert_eq!(status_of(admin, &a).await["endpoints"][0]["state"], "up");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_weight_override_changes_the_split_until_reset(io: IoBackend) {
        let (a, b) = (Backend::start(b'A').await, Backend::start(b'B').await);
        let dir = TempDir::new("runtime-api");
        let token = token_file(&dir, "admin.token", TOKEN, 0o600);
        let proxy = Proxy::start(&config_for(io, &[&a, &b], Some(&token)));
        proxy.wait_healthy(2).await;
        let admin = proxy.server().admin_addr().unwrap();
        let split = async || {
            let mut a_count = 0;
            for _ in 0..200 {
                a_count += usize::from(exchange(proxy.addr).await == Some(b'A'));
            }
            a_count
        };

        let answer = set(admin, &a, "weight", "3").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            answer.body.contains("weight 3 (override; the file says 1)"),
            "{}",
            answer.body
        );
        let to_a = split().await;
        assert!(
            (135..=165).contains(&to_a),
            "3:1 gives A about 150 of 200, got {to_a}"
        );
        let shown = status_of(admin, &a).await;
        assert_eq!(
            (shown["weight"].as_u64(), shown["weight_override"].as_u64()),
            (Some(1), Some(3))
        );
        let metrics = call(admin, "GET", "/metrics", None, "").await.body;
        let weight = format!(
            "ringlb_target_weight{{pool=\"default\",target=\"{}\"}} 3",
            a.name()
        );
        assert!(metrics.contains(&weight), "{weight} in\n{metrics}");

        assert_eq!(set(admin, &a, "weight", "reset").await.status, 200);
        let to_a = split().await;
        assert!((85..=115).contains(&to_a), "1:1 again, got {to_a}");
        assert!(status_of(admin, &a).await["weight_override"].is_null());
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_or_missing_token_is_refused_and_changes_nothing(io: IoBackend) {
        let (a, b) = (Backend::start(b'A').await, Backend::start(b'B').await);
        let dir = TempDir::new("runtime-api");
        let token = token_file(&dir, "admin.token", TOKEN, 0o600);
        let proxy = Proxy::start(&config_for(io, &[&a, &b], Some(&token)));
        proxy.wait_healthy(2).await;
        let admin = proxy.server().admin_addr().unwrap();
        let path = format!("/targets/{}/state", a.name());
        let wrong = format!("Bearer {TOKEN}x");
        let basic = "Basic YWRtaW46c2VjcmV0";
        for auth in [None, Some(wrong.as_str()), Some(basic), Some("Bearer")] {
            for method in ["POST", "PUT"] {
                let answer = call(admin, method, &path, auth, "maint").await;
                assert_eq!(answer.status, 401, "{auth:?}: {}", answer.body);
                assert!(
                    answer.head.contains("\r\nWWW-Authenticate: Bearer"),
                    "{}",
                    answer.head
                );
                assert!(!answer.body.contains(TOKEN), "{}", answer.body);
            }
        }
        // Refusals in any order: GET, an unknown target, a bad value, a body too large.
        let good = format!("Bearer {TOKEN}");
        let get = call(admin, "GET", &path, Some(&good), "").await;
        assert_eq!(get.status, 405);
        assert!(get.head.contains("\r\nAllow: POST, PUT"), "{}", get.head);
        let unknown = call(
            admin,
            "POST",
            "/targets/nowhere:1/state",
            Some(&good),
            "drain",
        )
        .await;
        assert_eq!(unknown.status, 404, "{}", unknown.body);
        let bad = call(admin, "POST", &path, Some(&good), "off").await;
        assert_eq!(bad.status, 400, "{}", bad.body);
        let weight = format!("/targets/{}/weight", a.name());
        assert_eq!(
            call(admin, "POST", &weight, Some(&good), "-1").await.status,
            400
        );
        let big = "x".repeat(65);
        assert_eq!(
            call(admin, "POST", &path, Some(&good), &big).await.status,
            413
        );

        // Nothing changed: both ready, at their weight, both take traffic.
        for target in [&a, &b] {
            let shown = status_of(admin, target).await;
            assert_eq!(shown["state"], "ready", "{shown}");
            assert!(shown["weight_override"].is_null(), "{shown}");
        }
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(exchange(proxy.addr).await.unwrap());
        }
        assert!(seen.contains(&b'A') && seen.contains(&b'B'), "{seen:?}");
        // The right token, percent-encoded name: accepted.
        let encoded = format!("/targets/{}/state", a.name().replace(':', "%3A"));
        assert_eq!(
            call(admin, "PUT", &encoded, Some(&good), "drain\n")
                .await
                .status,
            200
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_token_file_the_api_is_disabled_and_a_reload_turns_it_on(io: IoBackend) {
        let (a, b) = (Backend::start(b'A').await, Backend::start(b'B').await);
        let cfg = config_for(io, &[&a, &b], None);
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;
        let admin = proxy.server().admin_addr().unwrap();
        let answer = set(admin, &a, "state", "drain").await;
        assert_eq!(answer.status, 403);
        assert!(
            answer.body.contains("set [admin] token_file"),
            "{}",
            answer.body
        );
        assert_eq!(status_of(admin, &a).await["state"], "ready");

        // A reload that names a token file turns it on; one that names an unusable file turns it
        // off again (never keeping a token that is being replaced).
        let dir = TempDir::new("runtime-api");
        let token = token_file(&dir, "admin.token", TOKEN, 0o600);
        let reload = proxy.server().reload_handle();
        assert!(
            reload
                .reload(&config_for(io, &[&a, &b], Some(&token)))
                .is_empty(),
            "no restart needed"
        );
        assert_eq!(set(admin, &a, "state", "drain").await.status, 200);
        let rotated = token_file(&dir, "rotated.token", "another-token-of-some-length", 0o640);
        reload.reload(&config_for(io, &[&a, &b], Some(&rotated)));
        assert_eq!(
            set(admin, &a, "state", "ready").await.status,
            401,
            "the old token is gone"
        );
        let path = format!("/targets/{}/state", a.name());
        let new = Some("Bearer another-token-of-some-length");
        assert_eq!(call(admin, "POST", &path, new, "ready").await.status, 200);
        let readable = token_file(&dir, "readable.token", TOKEN, 0o644);
        reload.reload(&config_for(io, &[&a, &b], Some(&readable)));
        assert_eq!(call(admin, "POST", &path, new, "drain").await.status, 403);
        assert_eq!(status_of(admin, &a).await["state"], "ready");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_clears_the_overrides_of_the_target_it_changes_and_keeps_the_others(
        io: IoBackend,
    ) {
        let (a, b) = (Backend::start(b'A').await, Backend::start(b'B').await);
        let dir = TempDir::new("runtime-api");
        let token = token_file(&dir, "admin.token", TOKEN, 0o600);
        let cfg = config_for(io, &[&a, &b], Some(&token));
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;
        let admin = proxy.server().admin_addr().unwrap();
        assert_eq!(set(admin, &a, "state", "drain").await.status, 200);
        assert_eq!(set(admin, &b, "weight", "5").await.status, 200);

        // B's entry changes (its weight in the file), A's does not.
        let mut changed_b = cfg.clone();
        changed_b.live.targets[1].weight = 2;
        proxy.server().reload_handle().reload(&changed_b);
        until("the reload is applied", async || {
            status_of(admin, &b).await["weight"].as_u64() == Some(2)
        })
        .await;
        let (shown_a, shown_b) = (status_of(admin, &a).await, status_of(admin, &b).await);
        assert_eq!(
            shown_a["state"], "drain",
            "unchanged target keeps it: {shown_a}"
        );
        assert!(
            shown_b["weight_override"].is_null(),
            "changed target loses it: {shown_b}"
        );
        for _ in 0..10 {
            assert_eq!(exchange(proxy.addr).await, Some(b'B'), "A still drained");
        }

        // Now A's entry changes: its drain is cleared and it takes traffic again.
        let mut changed_a = changed_b.clone();
        changed_a.live.targets[0].health_check_endpoint = "/healthz?v=2".into();
        proxy.server().reload_handle().reload(&changed_a);
        until("A is ready again", async || {
            status_of(admin, &a).await["state"] == "ready"
        })
        .await;
        until("A takes traffic again", async || {
            exchange(proxy.addr).await == Some(b'A')
        })
        .await;
        let overrides = proxy.server().overrides();
        assert!(overrides.is_empty(), "{overrides:?}");
    }
);

/// Runs `ringlb ctl --config config args…` (blocking): exit code, stdout, stderr.
fn ctl(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("ctl")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run ringlb ctl");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ringlb_ctl_drives_the_real_binary(io: IoBackend) {
        use common::binary::{toml, Process};
        let (a, b) = (Backend::start(b'A').await, Backend::start(b'B').await);
        let dir = TempDir::new("ctl");
        let token = token_file(&dir, "admin.token", TOKEN, 0o600);
        // ctl reads the admin address from the file, so it needs a real port.
        let port = dead_addr().port();
        let admin_table = format!(
            "[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = {:?}\n",
            token.display().to_string()
        );
        let text = toml(io, &[a.addr, b.addr], "")
            .replace("[admin]\nlisten = \"127.0.0.1:0\"\n", &admin_table);
        assert!(text.contains("token_file"), "{text}");
        let ringlb = Process::start(&text, None);
        let config = ringlb.config_path.clone();
        let run = |args: &'static [&'static str]| {
            let config = config.clone();
            let args: Vec<String> = args.iter().map(|s| s.replace("A", &a.name())).collect();
            async move {
                tokio::task::spawn_blocking(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    ctl(&config, &args)
                })
                .await
                .unwrap()
            }
        };

        let (code, out, err) = run(&["drain", "A"]).await;
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            out,
            format!("{}: drain, weight 1 (from the file)\n", a.name())
        );
        for _ in 0..10 {
            assert_eq!(exchange(ringlb.addr).await, Some(b'B'));
        }
        let (code, out, _) = run(&["status"]).await;
        assert_eq!(code, Some(0));
        let status: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(status["targets"][0]["state"], "drain", "{status}");
        let (code, out, _) = run(&["weight", "A", "3"]).await;
        assert_eq!(code, Some(0));
        assert!(out.contains("drain, weight 3 (override"), "{out}");
        let (code, out, _) = run(&["ready", "A"]).await;
        assert_eq!(
            (code, out.contains("ready, weight 3")),
            (Some(0), true),
            "{out}"
        );
        until("A takes traffic again", async || {
            exchange(ringlb.addr).await == Some(b'A')
        })
        .await;
        let (code, _, err) = run(&["maint", "nowhere:1"]).await;
        assert_eq!(code, Some(1));
        assert!(err.contains("404"), "{err}");

        // A token file holding another token: refused, nothing changes.
        let wrong = token_file(&dir, "wrong.token", "not-the-token-at-all", 0o600);
        let wrong_config = dir.0.join("wrong.toml");
        std::fs::write(
            &wrong_config,
            text.replace(
                &format!("{:?}", token.display().to_string()),
                &format!("{:?}", wrong.display().to_string()),
            ),
        )
        .unwrap();
        let name = a.name();
        let (code, _, err) =
            tokio::task::spawn_blocking(move || ctl(&wrong_config, &["drain", &name]))
                .await
                .unwrap();
        assert_eq!(code, Some(1));
        assert!(err.contains("401"), "{err}");
        let (_, out, _) = run(&["status"]).await;
        let status: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(status["targets"][0]["state"], "ready", "{status}");

        let log = ringlb.log.lock().unwrap().join("\n");
        assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
        assert!(
            !log.contains("not-the-token"),
            "a wrong token reached the log:\n{log}"
        );
        assert!(log.contains("runtime API: target state set"), "{log}");
        assert!(
            log.contains("runtime API request refused (401): a wrong token"),
            "{log}"
        );
    }
);
