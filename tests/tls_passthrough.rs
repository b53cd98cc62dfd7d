//! TLS passthrough routed by SNI with real TLS: `openssl s_server` backends, each holding a
//! certificate for its own name, and `openssl s_client -servername …` as the client. The
//! handshake completes end to end through ringlb (it never terminates TLS), and the
//! certificate the client sees tells which backend the name reached.
//!
//! Needs the `openssl` command (`.ci/run` installs it).

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    binary::TempDir,
    io_backends,
    services::{pool, service, services_config},
    Proxy,
};
use ringlb::config::IoBackend;

/// `openssl s_server -www` with a self-signed certificate for `name`, on an ephemeral port;
/// killed on drop.
struct TlsBackend {
    child: Child,
    addr: SocketAddr,
}

impl TlsBackend {
    fn start(dir: &Path, name: &str) -> TlsBackend {
        let file = name.replace('*', "star");
        let (cert, key) = (
            dir.join(format!("{file}.crt")),
            dir.join(format!("{file}.key")),
        );
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .arg("-subj")
            .arg(format!("/CN={name}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the openssl command (install openssl)");
        assert!(made.success(), "openssl req failed");
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-www"])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        // It says where it listens (`ACCEPT 127.0.0.1:PORT`) once it does.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut said = Vec::new();
        let addr = loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!("s_server exited: {said:?}");
            }
            if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
                break addr.parse().unwrap();
            }
            said.push(line);
        };
        // Keep reading its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        TlsBackend { child, addr }
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl s_client` against `addr` with `servername` (`None`: no SNI at all), sends an
/// HTTP request, and returns (the subject CN of the certificate the server presented, whether
/// the server's answer came back through the tunnel).
async fn s_client(addr: SocketAddr, servername: Option<&str>) -> (String, bool) {
    let servername = servername.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new("openssl");
        command
            .args(["s_client", "-connect", &addr.to_string(), "-ign_eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &servername {
            Some(name) => command.args(["-servername", name]),
            None => command.arg("-noservername"),
        };
        let mut child = command.spawn().expect("openssl s_client");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        drop(stdin);
        let deadline = Instant::now() + common::DEADLINE;
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "s_client did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("subject=CN = "))
            .unwrap_or_else(|| panic!("no certificate subject in {text}"))
            .to_owned();
        (subject, text.contains("HTTP/1.0 200 ok"))
    })
    .await
    .unwrap()
}

io_backends!(
    /// Exact, wildcard, unmatched and no-SNI clients each complete a TLS handshake with the
    /// backend their name selects, through ringlb.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openssl_clients_reach_the_backend_their_name_selects(io: IoBackend) {
        let dir = TempDir::new("tls-passthrough");
        let api = TlsBackend::start(&dir.0, "api.example.com");
        let internal = TlsBackend::start(&dir.0, "*.internal.example.com");
        let fallback = TlsBackend::start(&dir.0, "default.example.com");
        let config = services_config(
            io,
            vec![
                pool("api", &[api.addr]),
                pool("internal", &[internal.addr]),
                pool("fallback", &[fallback.addr]),
            ],
            vec![service(
                "https",
                Some("fallback"),
                &[
                    (&["api.example.com"], "api"),
                    (&["*.internal.example.com"], "internal"),
                ],
            )],
        );
        let proxy = Proxy::start(&config);
        let addr = proxy.server().service_addr("https").unwrap();
        let cases = [
            (Some("api.example.com"), "api.example.com"),
            (Some("Api.Example.Com"), "api.example.com"),
            (Some("db.internal.example.com"), "*.internal.example.com"),
            (Some("other.example.com"), "default.example.com"),
            (None, "default.example.com"),
        ];
        for (servername, expected) in cases {
            let (subject, answered) = s_client(addr, servername).await;
            assert_eq!(subject, expected, "servername {servername:?}");
            assert!(
                answered,
                "the TLS session works end to end for {servername:?}"
            );
        }
    }
);
