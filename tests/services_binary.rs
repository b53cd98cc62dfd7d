//! Services and pools with the real binary and a `[[services]]` file: every service reaches
//! its own pools, metrics and `/status` carry the service and pool, the access log names the
//! service, pool and SNI of each connection, SIGHUP moves a route, and SIGUSR2 upgrades with
//! every service's listeners handed over (no client refused meanwhile).

mod common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::{
    admin_http::{self, metric},
    binary::{Process, TempDir},
    io_backends,
    services::{client_hello, exchange, Recorder},
};
use ringlb::config::IoBackend;
use serde_json::Value;

/// The file: pools `api`, `lines`, `tls-a`, `tls-b` (never probed), services `http`, `redis`
/// and `https` (routes `a.example.com` → `tls-a`, default `tls-b`), an access log at `log`.
fn file(io: IoBackend, backends: [SocketAddr; 4], route_to: &str, log: &str) -> String {
    let pool = |name: &str, addr: SocketAddr| {
        format!(
            "[[pools]]\nname = \"{name}\"\n[[pools.targets]]\naddress = \"{addr}\"\n\
             health_check = \"none\"\n"
        )
    };
    let service = |name: &str, pool: &str| {
        format!("[[services]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\npool = \"{pool}\"\n")
    };
    let [api, lines, a, b] = backends;
    format!(
        "io_backend = \"{io}\"\nworkers = 2\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [access_log]\npath = \"{log}\"\nformat = \"json\"\n{}{}{}{}{}{}{}\
         [[services.routes]]\nsni = [\"a.example.com\"]\npool = \"{route_to}\"\n",
        pool("api", api),
        pool("lines", lines),
        pool("tls-a", a),
        pool("tls-b", b),
        service("http", "api"),
        service("redis", "lines"),
        service("https", "tls-b"),
    )
}

/// The four backends of [`file`]'s pools (kept alive by the caller) and their addresses.
async fn backends() -> ([Recorder; 4], [SocketAddr; 4]) {
    let backends = [
        Recorder::start("api").await,
        Recorder::start("lines").await,
        Recorder::start("tls-a").await,
        Recorder::start("tls-b").await,
    ];
    let addrs = [0, 1, 2, 3].map(|i| backends[i].addr);
    (backends, addrs)
}

/// The address service `name` listens on, from its "service listening" log line (the last
/// one: a successor logs its own).
fn service_addr(process: &Process, name: &str) -> SocketAddr {
    let marker = format!("service listening service=\"{name}\"");
    let addrs = process.logged(&marker, "listen");
    let last = addrs
        .last()
        .unwrap_or_else(|| panic!("no address for {name}: {:?}", process.log.lock().unwrap()));
    last.parse().unwrap()
}

/// A process an upgrade started, killed when dropped.
struct Successor(i32);

impl Drop for Successor {
    fn drop(&mut self) {
        // SAFETY: kill takes a pid and a signal number only.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// The value of the sample of `name` whose labels include `label`.
fn labelled(text: &str, name: &str, label: &str) -> f64 {
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The access log's JSON lines, once there are at least `n`.
fn wait_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        assert!(Instant::now() < deadline, "{n} lines expected: {text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

io_backends!(
    /// Three services from one file: each reaches its own pools; the counters, `/status` and
    /// the access log say which service and pool each connection had.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_services_file_serves_observes_and_logs_every_service(io: IoBackend) {
        let (_backends, addrs) = backends().await;
        let dir = TempDir::new("services-bin");
        let log = dir.0.join("access.log");
        let process = Process::start(&file(io, addrs, "tls-a", &log.to_string_lossy()), None);
        let (http, redis, https) = (
            service_addr(&process, "http"),
            service_addr(&process, "redis"),
            service_addr(&process, "https"),
        );
        let hello = client_hello(Some("a.example.com"), 0, 16384);
        let other = client_hello(Some("z.example.com"), 0, 16384);
        assert_eq!(
            exchange(http, b"GET /\r\n\r\n", 4096).await.unwrap(),
            b"api"
        );
        assert_eq!(exchange(redis, b"PING\r\n", 4096).await.unwrap(), b"lines");
        assert_eq!(exchange(https, &hello, 4096).await.unwrap(), b"tls-a");
        assert_eq!(exchange(https, &other, 4096).await.unwrap(), b"tls-b");
        let mut broken = hello.clone();
        broken[5] = 2;
        let refused = exchange(https, &broken, 4096).await;
        assert!(refused.is_err() || refused.unwrap().is_empty());

        let admin = admin_http::admin_addr(&process);
        let (_, metrics) = admin_http::get(admin, "/metrics").await;
        let count = |name, service| labelled(&metrics, name, &format!("service=\"{service}\""));
        assert_eq!(count("ringlb_service_connections_total", "http"), 1.0);
        assert_eq!(count("ringlb_service_connections_total", "https"), 3.0);
        assert_eq!(count("ringlb_tls_hello_refused_total", "https"), 1.0);
        assert_eq!(count("ringlb_sni_routed_total", "https"), 1.0);
        assert_eq!(count("ringlb_tls_hello_refused_total", "redis"), 0.0);
        let pool_total = |pool| {
            labelled(
                &metrics,
                "ringlb_backend_connections_total",
                &format!("pool=\"{pool}\""),
            )
        };
        assert_eq!(
            (pool_total("tls-a"), pool_total("tls-b")),
            (1.0, 1.0),
            "{metrics}"
        );
        assert!(metric(&metrics, "ringlb_backend_connections_total") >= 4.0);
        let (_, status) = admin_http::get(admin, "/status").await;
        let status: Value = serde_json::from_str(&status).unwrap();
        let pools: Vec<&str> = status["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(pools, ["api", "lines", "tls-a", "tls-b"], "{status}");
        assert_eq!(
            status["pools"][2]["targets"][0]["name"],
            addrs[2].to_string()
        );

        let lines = tokio::task::block_in_place(|| wait_lines(&log, 5));
        let find = |service: &str, pool: Option<&str>| {
            lines
                .iter()
                .filter(|l| l["service"] == service && l["pool"].as_str() == pool)
                .collect::<Vec<_>>()
        };
        let routed = find("https", Some("tls-a"));
        assert_eq!(routed.len(), 1, "{lines:?}");
        assert_eq!(routed[0]["sni"], "a.example.com");
        assert_eq!(routed[0]["target"], addrs[2].to_string());
        assert_eq!(routed[0]["bytes_up"], hello.len());
        assert_eq!(routed[0]["bytes_down"], 5);
        assert_eq!(find("https", Some("tls-b"))[0]["sni"], "z.example.com");
        let refused = find("https", None);
        assert_eq!(refused.len(), 1, "{lines:?}");
        assert_eq!(refused[0]["termination"], "tls_hello_refused");
        assert!(refused[0]["target"].is_null());
        assert_eq!(find("http", Some("api"))[0]["bytes_up"], 9);
        assert!(find("redis", Some("lines"))[0]["sni"].is_null());
    }
);

io_backends!(
    /// SIGHUP moves a name to another pool; SIGUSR2 hands every service's listeners to a new
    /// process while clients keep connecting to all of them, and none is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sighup_moves_a_route_and_sigusr2_keeps_every_service(io: IoBackend) {
        let (_backends, addrs) = backends().await;
        let dir = TempDir::new("services-upgrade");
        let log = dir.0.join("access.log").to_string_lossy().into_owned();
        let process = Process::start(&file(io, addrs, "tls-a", &log), None);
        let https = service_addr(&process, "https");
        let hello = client_hello(Some("a.example.com"), 0, 16384);
        assert_eq!(exchange(https, &hello, 4096).await.unwrap(), b"tls-a");

        std::fs::write(&process.config_path, file(io, addrs, "tls-b", &log)).unwrap();
        process.signal("HUP");
        process.wait_log("SIGHUP: configuration reloaded", 1);
        assert_eq!(exchange(https, &hello, 4096).await.unwrap(), b"tls-b");

        let (http, redis) = (
            service_addr(&process, "http"),
            service_addr(&process, "redis"),
        );
        let clients = tokio::spawn(async move {
            let mut served = 0;
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let hello = client_hello(Some("a.example.com"), 0, 16384);
                assert_eq!(
                    exchange(http, b"GET /\r\n\r\n", 4096).await.unwrap(),
                    b"api"
                );
                assert_eq!(exchange(redis, b"PING\r\n", 4096).await.unwrap(), b"lines");
                assert_eq!(exchange(https, &hello, 4096).await.unwrap(), b"tls-b");
                served += 1;
            }
            served
        });
        process.signal("USR2");
        process.wait_log("upgrade: the new process serves", 1);
        // Not a child of this test: ended here, whatever happens below.
        let pids = process.successor_pids();
        let _successor = Successor(*pids.first().expect("the upgrade started a successor"));
        let served = clients
            .await
            .expect("no client refused or misrouted during the upgrade");
        assert!(served > 0);
        // The successor serves on the same addresses.
        assert_eq!(service_addr(&process, "https"), https);
        assert_eq!(exchange(https, &hello, 4096).await.unwrap(), b"tls-b");
    }
);
