//! `relay = "auto"` switches each direction between copy and splice with the traffic, and no
//! byte is lost, duplicated or reordered across a switch.
//!
//! io_uring only: the epoll driver always copies, so there is nothing to switch. Each
//! connection alternates small request/response exchanges with megabytes in one direction and
//! then the other, against a backend that checks and echoes; several connections at once, so
//! switches of different connections interleave in one worker. The test also asserts that the
//! switches really happened (`ringlb_relay_switches_total`), in both directions of the mode.

mod common;

use std::net::SocketAddr;

use common::{admin_http, random_bytes, DEADLINE};
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Bytes of each bulk leg: far more than the copy buffers a direction takes before it
/// switches (4 × 16 KiB).
const BULK: usize = 4 << 20;
/// Request/response exchanges around each bulk leg: enough small wakeups to switch back.
const PINGS: usize = 20;
/// Connections at once.
const CONNECTIONS: u64 = 6;

/// A backend speaking a tiny protocol: `P` + 8 bytes → the same 9 bytes back (a ping);
/// `D` + length → that many bytes of `random_bytes(len, len)` (a download); `U` + length +
/// bytes → their count and a checksum back (an upload). Health probes get a 200.
async fn backend() -> SocketAddr {
    common::probed_backend(|mut stream| async move {
        let _ = serve(&mut stream).await;
    })
    .await
}

async fn serve(stream: &mut TcpStream) -> std::io::Result<()> {
    loop {
        let mut op = [0u8; 1];
        if stream.read(&mut op).await? == 0 {
            return stream.shutdown().await;
        }
        let mut arg = [0u8; 8];
        stream.read_exact(&mut arg).await?;
        let n = u64::from_be_bytes(arg) as usize;
        match op[0] {
            b'P' => stream.write_all(&[&op[..], &arg[..]].concat()).await?,
            b'D' => stream.write_all(&random_bytes(n, n as u64)).await?,
            _ => {
                let mut buf = vec![0u8; n];
                stream.read_exact(&mut buf).await?;
                let sum = buf
                    .iter()
                    .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                stream
                    .write_all(&[n.to_be_bytes(), sum.to_be_bytes()].concat())
                    .await?;
            }
        }
    }
}

async fn pings(stream: &mut TcpStream, conn: u64) {
    for i in 0..PINGS as u64 {
        let request = [&b"P"[..], &(conn << 32 | i).to_be_bytes()].concat();
        stream.write_all(&request).await.unwrap();
        let mut answer = [0u8; 9];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(
            answer[..],
            request[..],
            "connection {conn}: ping {i} echoed"
        );
    }
}

/// One connection: pings, a download, pings, an upload, pings, each checked byte for byte.
async fn session(proxy: SocketAddr, conn: u64) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    pings(&mut stream, conn).await;
    let len = BULK + conn as usize; // a length each, so no two streams are alike
    stream
        .write_all(&[&b"D"[..], &(len as u64).to_be_bytes()].concat())
        .await
        .unwrap();
    let mut got = vec![0u8; len];
    stream.read_exact(&mut got).await.unwrap();
    let want = random_bytes(len, len as u64);
    if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!("connection {conn}: download differs at byte {at} of {len}");
    }
    pings(&mut stream, conn).await;
    let upload = random_bytes(len, conn + 7);
    stream
        .write_all(&[&b"U"[..], &(len as u64).to_be_bytes()].concat())
        .await
        .unwrap();
    stream.write_all(&upload).await.unwrap();
    let mut answer = [0u8; 16];
    stream.read_exact(&mut answer).await.unwrap();
    let sum = upload
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
    assert_eq!(
        answer[..8],
        (len as u64).to_be_bytes(),
        "connection {conn}: upload length"
    );
    assert_eq!(
        answer[8..],
        sum.to_be_bytes(),
        "connection {conn}: upload checksum"
    );
    pings(&mut stream, conn).await;
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(
        rest.is_empty(),
        "connection {conn}: nothing after the last answer"
    );
}

/// The value of `metric` with `label` in a Prometheus text body.
fn sample(metrics: &str, metric: &str, label: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(metric) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {metric}{{{label}}} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_switches_both_ways_without_losing_a_byte() {
    let addr = backend().await;
    // io_uring only: the epoll driver always copies, there is nothing to switch.
    let mut cfg = common::config(IoBackend::IoUring, &[addr], RelayMode::Auto);
    cfg.startup.workers = 1;
    let proxy = common::Proxy::start(&cfg);
    proxy.wait_healthy(1).await;
    let sessions = (0..CONNECTIONS).map(|conn| tokio::spawn(session(proxy.addr, conn)));
    tokio::time::timeout(DEADLINE, async {
        for s in sessions {
            s.await.expect("session finished");
        }
    })
    .await
    .expect("every session ended within the deadline");

    let admin = proxy.server().admin_addr().expect("admin enabled");
    let (_, metrics) = admin_http::get(admin, "/metrics").await;
    let to_splice = sample(&metrics, "ringlb_relay_switches_total", "to=\"splice\"");
    let to_copy = sample(&metrics, "ringlb_relay_switches_total", "to=\"copy\"");
    // Every connection's download and upload carried bulk, and pings followed each.
    assert!(
        to_splice >= 2 * CONNECTIONS,
        "{to_splice} switches to splice for {CONNECTIONS} connections"
    );
    assert!(
        to_copy >= 2 * CONNECTIONS,
        "{to_copy} switches back to copy for {CONNECTIONS} connections"
    );
}
