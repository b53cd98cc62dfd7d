//! Asking a ringlb process's admin API: its address (from the log), one `GET`, and
//! `ringlb --probe-admin` as a container health check runs it.

use std::{net::SocketAddr, path::Path};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{binary::Process, DEADLINE};

/// Where `process` serves its admin API, as its start-up log says.
pub fn admin_addr(process: &Process) -> SocketAddr {
    let addrs = process.logged("admin listener serving", "addr");
    let first = addrs.first().unwrap_or_else(|| {
        panic!(
            "no admin address in the log: {:?}",
            process.log.lock().unwrap()
        )
    });
    first.parse().unwrap()
}

/// Sends `GET path` to the admin API at `addr`; the status code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    tokio::time::timeout(DEADLINE, async {
        let mut s = TcpStream::connect(addr).await.expect("connect to admin");
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read answer");
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_owned())
    })
    .await
    .expect("admin answers within the deadline")
}

/// Runs `ringlb --probe-admin --config config` (blocking); its exit code.
pub fn probe_admin(config: &Path) -> Option<i32> {
    std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("--probe-admin")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run ringlb --probe-admin")
        .status
        .code()
}

/// The sum of every sample of `name` (with any labels) in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (bounded by [`DEADLINE`]) until the admin API at `admin` reports `n` backends up
/// (`ringlb_backend_up`).
pub async fn wait_backends_up(admin: SocketAddr, n: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let metrics = get(admin, "/metrics").await.1;
        if metric(&metrics, "ringlb_backend_up") == n as f64 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} backends never came up: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
