//! The admin listener end to end: `/metrics` is strict Prometheus text whose counters follow the
//! traffic, `/status` follows the health checker, `/healthz` turns 503 for the drain.

mod common;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use common::*;
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// An admin answer: status code, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// Sends `method path` to the admin listener and reads the whole answer (it closes).
async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    tokio::time::timeout(DEADLINE, async {
        let mut s = TcpStream::connect(addr).await.expect("connect to admin");
        let request = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read admin answer");
        let text = String::from_utf8(raw).expect("UTF-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| l.split_once(": ").expect("header line"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect::<HashMap<_, _>>();
        let length: usize = headers["content-length"].parse().unwrap();
        if method != "HEAD" {
            assert_eq!(body.len(), length, "Content-Length matches the body");
        }
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
    .expect("admin answers within the deadline")
}

async fn get_admin(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path).await
}

// --- A strict parser of the Prometheus text exposition format (0.0.4) -------------------------

/// Every sample of an exposition, by series (`name{k="v",...}` with labels sorted).
#[derive(Debug)]
struct Exposition {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    chars.next().is_some_and(first_ok)
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Parses `{k="v",...}` at the start of `text`; returns the sorted labels and the rest.
fn parse_labels(text: &str) -> (Vec<(String, String)>, &str) {
    let mut labels = Vec::new();
    let mut rest = text.strip_prefix('{').unwrap();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            labels.sort();
            return (labels, after);
        }
        let (key, after) = rest.split_once("=\"").expect("label key=\"value\"");
        assert!(is_name(key, false), "bad label name {key:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("unterminated label value") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("dangling escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (_, c) => value.push(c),
            }
        };
        assert!(!labels.iter().any(|(k, _)| k == key), "label {key} twice");
        labels.push((key.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<_> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Parses `text`, asserting that every line is a HELP, a TYPE or a sample; that every family
/// has exactly one HELP and one TYPE, before its samples, which are contiguous; that every
/// series appears once and every value is a number.
fn parse_exposition(text: &str) -> Exposition {
    let mut samples = HashMap::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    assert!(text.ends_with('\n'), "ends with a newline");
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let (kind, rest) = comment.split_once(' ').expect("# KIND name ...");
            let (name, arg) = rest.split_once(' ').expect("# KIND name text");
            assert!(is_name(name, true), "bad metric name {name:?}");
            match kind {
                "HELP" => assert!(
                    helps.insert(name.into(), arg.into()).is_none(),
                    "HELP {name} twice"
                ),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                        "bad type {arg}"
                    );
                    assert!(
                        types.insert(name.into(), arg.into()).is_none(),
                        "TYPE {name} twice"
                    );
                }
                other => panic!("unexpected comment kind {other}: {line}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "no blank lines");
        let name_end = line.find(['{', ' ']).expect("a sample has a value");
        let name = &line[..name_end];
        assert!(is_name(name, true), "bad metric name {name:?}");
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..])
        } else {
            (Vec::new(), &line[name_end..])
        };
        let value = rest.strip_prefix(' ').expect("one space before the value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            types.contains_key(name),
            "{name} has no TYPE before its samples"
        );
        assert!(
            helps.contains_key(name),
            "{name} has no HELP before its samples"
        );
        if current.as_deref() != Some(name) {
            assert!(
                !finished.contains(&name.to_owned()),
                "{name}'s samples are split"
            );
            finished.extend(current.replace(name.to_owned()));
        }
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let key = series(name, &labels);
        assert!(samples.insert(key.clone(), value).is_none(), "{key} twice");
    }
    for name in types.keys() {
        assert!(helps.contains_key(name), "{name} has a TYPE but no HELP");
    }
    Exposition { samples, types }
}

impl Exposition {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(&series(name, labels)).copied()
    }

    /// Sum of every sample of `name`.
    fn sum(&self, name: &str) -> f64 {
        let prefix = format!("{name}{{");
        self.samples
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

async fn scrape(addr: SocketAddr) -> Exposition {
    let answer = get_admin(addr, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse_exposition(&answer.body)
}

/// Scrapes until `done` holds (bounded); returns that scrape.
async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let metrics = scrape(addr).await;
        if done(&metrics) {
            return metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw {what}: {metrics:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn admin_addr(proxy: &Proxy) -> SocketAddr {
    proxy.server().admin_addr().expect("admin enabled in tests")
}

fn endpoint_labels(addr: SocketAddr) -> [(&'static str, String); 3] {
    [
        ("pool", "default".to_owned()),
        ("target", addr.to_string()),
        ("addr", addr.to_string()),
    ]
}

// --- Tests -------------------------------------------------------------------------------------

#[test]
fn the_parser_rejects_what_prometheus_would() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 3\n";
    assert_eq!(parse_exposition(good).samples.len(), 1);
    for bad in [
        "a_total 3\n",                                            // no HELP/TYPE
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",                // duplicate series
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",                // unquoted label value
        "# HELP a A.\n# TYPE a gauge\na  1\n",                    // two spaces
        "# HELP a A.\n# TYPE a gauge\na one\n",                   // not a number
        "# HELP a A.\n# TYPE a weird\na 1\n",                     // unknown type
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na{x=\"1\"} 1\nb 1\na{x=\"2\"} 1\n",
    ] {
        let parsed = std::panic::catch_unwind(|| parse_exposition(bad));
        assert!(parsed.is_err(), "accepted {bad:?}");
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_follow_the_traffic_for_every_relay(io: IoBackend, relay: RelayMode) {
        let echo = EchoBackend::start().await;
        let proxy = Proxy::start(&config(io, &[echo.addr], relay));
        proxy.wait_healthy(1).await;
        let admin = admin_addr(&proxy);
        let before = scrape(admin).await;
        assert_eq!(before.types["ringlb_backend_bytes_total"], "counter");
        assert_eq!(before.types["ringlb_backend_up"], "gauge");
        assert_eq!(
            before.get("ringlb_io_backend", &[("backend", io.as_str())]),
            Some(1.0)
        );
        assert_eq!(before.sum("ringlb_worker_accepted_connections_total"), 0.0);
        for worker in ["0", "1"] {
            let accepted = before.get(
                "ringlb_worker_accepted_connections_total",
                &[("worker", worker)],
            );
            assert_eq!(accepted, Some(0.0), "worker {worker} is listed");
        }

        // Three connections, each echoing a different amount both ways.
        let sizes = [1usize, 70_000, 300_000];
        for (i, &size) in sizes.iter().enumerate() {
            let data = random_bytes(size, i as u64);
            let mut s = TcpStream::connect(proxy.addr).await.unwrap();
            s.write_all(&data).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            tokio::time::timeout(DEADLINE, s.read_to_end(&mut back))
                .await
                .expect("echo within the deadline")
                .unwrap();
            assert!(back == data, "{relay:?}: echo intact");
        }
        let total: usize = sizes.iter().sum();
        let [pool, target, addr] = endpoint_labels(echo.addr);
        let labels = [
            (pool.0, pool.1.as_str()),
            (target.0, target.1.as_str()),
            (addr.0, addr.1.as_str()),
        ];
        let with = |direction| [labels[0], labels[1], labels[2], ("direction", direction)];
        let after = scrape_until(admin, "every byte and connection counted", |m| {
            m.get("ringlb_backend_bytes_total", &with("upstream")) == Some(total as f64)
                && m.get("ringlb_backend_bytes_total", &with("downstream")) == Some(total as f64)
                && m.get("ringlb_backend_active_connections", &labels) == Some(0.0)
                && m.get("ringlb_backend_health_check_duration_seconds", &labels)
                    .is_some()
        })
        .await;
        assert_eq!(
            after.get("ringlb_backend_connections_total", &labels),
            Some(3.0),
            "{relay:?}"
        );
        assert_eq!(after.get("ringlb_backend_up", &labels), Some(1.0));
        assert_eq!(
            after.get("ringlb_backend_connect_failures_total", &labels),
            Some(0.0)
        );
        assert_eq!(
            after.sum("ringlb_worker_accepted_connections_total"),
            3.0,
            "{relay:?}"
        );
        assert_eq!(
            after.get("ringlb_rejected_connections_total", &[]),
            Some(0.0)
        );
        assert_eq!(after.get("ringlb_open_connections", &[]), Some(0.0));
        let check = after.get("ringlb_backend_health_check_duration_seconds", &labels);
        assert!(check.is_some_and(|s| s > 0.0 && s < 1.0), "{check:?}");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rejected_clients_are_counted_as_503s(io: IoBackend) {
        let proxy = Proxy::start(&config(io, &[dead_addr()], RelayMode::Copy));
        proxy.wait_healthy(0).await;
        let admin = admin_addr(&proxy);
        for _ in 0..2 {
            let response = get(proxy.addr).await;
            assert!(
                response.starts_with(b"HTTP/1.1 503 "),
                "{:?}",
                String::from_utf8_lossy(&response)
            );
        }
        let metrics = scrape_until(admin, "two 503s", |m| {
            m.get("ringlb_rejected_connections_total", &[]) == Some(2.0)
        })
        .await;
        assert_eq!(metrics.sum("ringlb_worker_accepted_connections_total"), 2.0);
        assert_eq!(metrics.sum("ringlb_backend_up"), 0.0);
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn status_shows_the_real_health_states(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let named = NamedBackend::start("b").await;
        let proxy = Proxy::start(&config(io, &[echo.addr, named.addr], RelayMode::Copy));
        proxy.wait_healthy(2).await;
        let admin = admin_addr(&proxy);

        // One open connection to the echo backend. Round robin may hand a connection to the
        // named backend instead, which answers and closes: then try again.
        let mut attempts = 0;
        let open = loop {
            attempts += 1;
            assert!(attempts < 10, "never reached the echo backend");
            let mut s = TcpStream::connect(proxy.addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            let mut four = [0u8; 4];
            tokio::time::timeout(DEADLINE, s.read_exact(&mut four))
                .await
                .expect("an answer")
                .unwrap();
            if &four == b"GET " {
                break s;
            }
        };

        let stopped = named.stop().await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let status = loop {
            let answer = get_admin(admin, "/status").await;
            assert_eq!(answer.status, 200);
            assert_eq!(answer.headers["content-type"], "application/json");
            let status: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
            // A probe that was in the stopped listener's backlog fails as "reset"; every later
            // one is refused, which is what this test pins.
            let down = &status["targets"][1]["endpoints"][0];
            if down["state"] == "down" && down["reason"] == "refused" {
                break status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never down: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };

        assert_eq!(status["draining"], false);
        assert_eq!(status["io_backend"], io.as_str());
        let echo_target = &status["targets"][0];
        assert_eq!(echo_target["name"], echo.addr.to_string());
        assert_eq!(
            echo_target["addresses"],
            serde_json::json!([echo.addr.to_string()])
        );
        assert_eq!(echo_target["resolve_error"], serde_json::Value::Null);
        let up = &echo_target["endpoints"][0];
        assert_eq!(up["addr"], echo.addr.to_string());
        assert_eq!(up["state"], "up");
        assert_eq!(up["last_check"], "passed");
        assert_eq!(up["reason"], serde_json::Value::Null);
        assert_eq!(up["active_connections"], 1);
        assert!(up["last_check_ms"].as_f64().is_some_and(|ms| ms > 0.0));

        let down = &status["targets"][1]["endpoints"][0];
        assert_eq!(down["addr"], stopped.to_string());
        assert_eq!(down["last_check"], "failed");
        assert_eq!(down["reason"], "refused");
        assert_eq!(down["active_connections"], 0);
        assert!(down["consecutive_failures"]
            .as_u64()
            .is_some_and(|n| n >= 1));

        // The same as the health checker's own report.
        let report = proxy.server().health_status().report();
        for (t, target) in report.targets.iter().enumerate() {
            for (e, endpoint) in target.endpoints.iter().enumerate() {
                let shown = &status["targets"][t]["endpoints"][e];
                assert_eq!(shown["addr"], endpoint.addr.to_string());
                assert_eq!(shown["state"] == "up", endpoint.healthy, "{shown}");
            }
        }
        drop(open);
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn healthz_answers_503_while_draining_and_stops_after(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let mut proxy = Proxy::start(&config(io, &[echo.addr], RelayMode::Copy));
        proxy.wait_healthy(1).await;
        let admin = admin_addr(&proxy);
        let ok = get_admin(admin, "/healthz").await;
        assert_eq!((ok.status, ok.body.as_str()), (200, "ok\n"));

        // A long-lived connection keeps the drain going.
        let mut open = TcpStream::connect(proxy.addr).await.unwrap();
        open.write_all(b"hello").await.unwrap();
        let mut five = [0u8; 5];
        open.read_exact(&mut five).await.unwrap();

        proxy.server().stop();
        let draining = get_admin(admin, "/healthz").await;
        assert_eq!(
            (draining.status, draining.body.as_str()),
            (503, "draining\n")
        );
        let metrics = scrape(admin).await;
        assert_eq!(metrics.get("ringlb_draining", &[]), Some(1.0));
        assert_eq!(metrics.get("ringlb_open_connections", &[]), Some(1.0));
        let status = get_admin(admin, "/status").await;
        assert!(
            status.body.contains("\"draining\": true"),
            "{}",
            status.body
        );

        // The connection still relays during the drain; closing it ends the drain.
        open.write_all(b"again").await.unwrap();
        open.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"again");
        let still = get_admin(admin, "/healthz").await;
        assert_eq!(still.status, 503);
        drop(open);

        let server = proxy.server.take().unwrap();
        tokio::time::timeout(DEADLINE, tokio::task::spawn_blocking(move || server.wait()))
            .await
            .expect("the drain ends once the connection closed")
            .unwrap()
            .unwrap();
        let refused = TcpStream::connect(admin).await;
        assert!(refused.is_err(), "the admin listener stops with the server");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_paths_and_methods_are_refused_politely(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let proxy = Proxy::start(&config(io, &[echo.addr], RelayMode::Copy));
        let admin = admin_addr(&proxy);
        assert_eq!(get_admin(admin, "/nope").await.status, 404);
        let post = request(admin, "POST", "/metrics").await;
        assert_eq!(post.status, 405);
        assert_eq!(post.headers["allow"], "GET, HEAD");
        let head = request(admin, "HEAD", "/metrics").await;
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert!(head.headers["content-length"].parse::<usize>().unwrap() > 0);
        let query = get_admin(admin, "/healthz?verbose=1").await;
        assert_eq!(query.status, 200);
        // Not HTTP at all.
        let mut s = TcpStream::connect(admin).await.unwrap();
        s.write_all(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(DEADLINE, s.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_admin_listener_can_be_disabled(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let mut cfg = config(io, &[echo.addr], RelayMode::Copy);
        cfg.startup.admin.enabled = false;
        let proxy = Proxy::start(&cfg);
        assert_eq!(proxy.server().admin_addr(), None);
        proxy.wait_healthy(1).await;
        // Counting goes on without it.
        let response = {
            let mut s = TcpStream::connect(proxy.addr).await.unwrap();
            s.write_all(b"x").await.unwrap();
            let mut one = [0u8; 1];
            s.read_exact(&mut one).await.unwrap();
            one
        };
        assert_eq!(&response, b"x");
        let metrics = proxy.server().metrics();
        assert_eq!(metrics.total(ringlb::metrics::WorkerCounter::Accepted), 1);
    }
);

/// Runs `ringlb --probe-admin --config path`; its exit code.
fn probe_admin(config: &std::path::Path) -> Option<i32> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("--probe-admin")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run ringlb --probe-admin");
    output.status.code()
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probe_admin_says_healthy_while_serving_and_unhealthy_while_draining(io: IoBackend) {
        use common::binary::{toml, Process, TempDir};
        let echo = EchoBackend::start().await;
        // The probe reads the admin address from the file, so it needs a real port.
        let admin = dead_addr();
        let text = toml(io, &[echo.addr], "").replace(
            "[admin]\nlisten = \"127.0.0.1:0\"\n",
            &format!("[admin]\nlisten = \"0.0.0.0:{}\"\n", admin.port()),
        );
        assert!(text.contains("0.0.0.0:"), "{text}");
        let dir = TempDir::new("probe");
        let path = dir.0.join("ringlb.toml");
        std::fs::write(&path, &text).unwrap();

        let mut ringlb = Process::start(&text, None);
        let probe = path.clone();
        let code = tokio::task::spawn_blocking(move || probe_admin(&probe))
            .await
            .unwrap();
        assert_eq!(code, Some(0), "healthy while serving");

        let mut open = TcpStream::connect(ringlb.addr).await.unwrap();
        open.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        open.read_exact(&mut one).await.unwrap();
        ringlb.signal("TERM");
        // The signal is handled asynchronously: probe until it took effect.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let probe = path.clone();
            let code = tokio::task::spawn_blocking(move || probe_admin(&probe))
                .await
                .unwrap();
            if code == Some(1) {
                break;
            }
            assert_eq!(code, Some(0), "0 or 1, nothing else");
            assert!(
                tokio::time::Instant::now() < deadline,
                "never unhealthy while draining"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ringlb.child.try_wait().unwrap().is_none(), "still draining");
        drop(open);
        let status = tokio::task::block_in_place(|| ringlb.wait_exit(DEADLINE));
        assert!(status.success(), "{status:?}");
        let code = tokio::task::spawn_blocking(move || probe_admin(&path))
            .await
            .unwrap();
        assert_eq!(code, Some(1), "unhealthy once stopped");
    }
);
