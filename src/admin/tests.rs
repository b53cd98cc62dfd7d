//! The admin listener's defences over real sockets on 127.0.0.1, with small limits: eviction at
//! the cap, the head deadline, the exchange deadline against a client that never reads; and
//! what `/healthz` says after a worker failed.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::Instant,
};

use super::*;
use crate::{
    limit::ConnectionLimit,
    metrics::{Metrics, WorkerFailure},
};

/// Every wait here is bounded by this.
const DEADLINE: Duration = Duration::from_secs(10);

/// Bytes of the `/big` answer: more than loopback's socket buffers hold for a reader that
/// does not read (4 MiB of send buffer at most, a few KiB of receive buffer).
const BIG: usize = 16 * 1024 * 1024;

/// An admin listener on an ephemeral port with `limits`, answering `/healthz` with `ok` and
/// `/big` with [`BIG`] bytes; it stops when the returned signal fires.
async fn start(limits: Limits) -> (SocketAddr, Shutdown) {
    let listener =
        tokio::net::TcpListener::from_std(bind("127.0.0.1:0".parse().unwrap()).unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Shutdown::new();
    let route = |request: Request| {
        std::future::ready(match request.path.as_str() {
            "/big" => Response::ok("text/plain", "x".repeat(BIG)),
            _ => Response::text(200, "ok\n"),
        })
    };
    tokio::spawn(serve(listener, stop.clone(), limits, route));
    (addr, stop)
}

/// Sends `GET path` and reads the whole answer.
async fn get(addr: SocketAddr, path: &str) -> String {
    tokio::time::timeout(DEADLINE, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
    })
    .await
    .expect("an answer within the deadline")
}

/// Waits (bounded) until the server closes `stream`; what it sent before.
async fn closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
        .await
        .expect("closed by the server")
        .unwrap();
    rest
}

#[tokio::test]
async fn silent_connections_beyond_the_cap_make_room_for_a_request() {
    let limits = Limits {
        cap: 8,
        head: DEADLINE * 3,
        exchange: DEADLINE * 3,
    };
    let (addr, stop) = start(limits).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let answer = get(addr, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
    // 21 connections for 8 slots: the 13 oldest silent ones were closed, oldest first,
    // without an answer (the head deadline is far away: eviction did it).
    for (i, stream) in silent.iter_mut().take(13).enumerate() {
        assert!(closed(stream).await.is_empty(), "connection {i}");
    }
    // The 7 newest are still open (and would get their answer).
    let mut last = silent.pop().unwrap();
    last.write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(closed(&mut last).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    stop.trigger();
}

#[tokio::test]
async fn a_head_not_complete_in_time_is_closed_even_when_trickled() {
    let limits = Limits {
        cap: 8,
        head: Duration::from_millis(200),
        exchange: DEADLINE * 3,
    };
    let (addr, stop) = start(limits).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    let writer = tokio::spawn(async move {
        // One byte every 50 ms: each arrives in time, the head never does.
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: ".iter().cycle() {
            if trickle.write_all(&[*byte]).await.is_err() {
                return trickle;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!("cycle() never ends")
    });
    assert!(closed(&mut silent).await.is_empty());
    let mut trickle = tokio::time::timeout(DEADLINE, writer)
        .await
        .expect("the trickler is cut off")
        .unwrap();
    assert!(closed(&mut trickle).await.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed at the head deadline, not the exchange's: {:?}",
        started.elapsed()
    );
    stop.trigger();
}

#[tokio::test]
async fn a_client_that_never_reads_holds_its_slot_only_until_the_exchange_deadline() {
    let limits = Limits {
        cap: 1,
        head: DEADLINE * 3,
        exchange: Duration::from_millis(500),
    };
    let (addr, stop) = start(limits).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut reader = socket.connect(addr).await.unwrap();
    reader
        .write_all(b"GET /big HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    // Once the answer began, that connection is answering (not evictable) and stops reading.
    let mut first = [0u8; 16];
    tokio::time::timeout(DEADLINE, reader.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first[..9], b"HTTP/1.1 ");
    let asked = Instant::now();
    // The only slot is answering /big to a client that does not read: /healthz waits for it
    // to be cut off at the exchange deadline, and is answered then.
    let answer = get(addr, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "answered once the stuck exchange ended: {waited:?}"
    );
    // The stuck client got part of the answer, never all of it.
    let got = closed(&mut reader).await;
    assert!(got.len() < BIG, "{} bytes", got.len());
    stop.trigger();
}

fn metrics() -> Metrics {
    Metrics::new(
        Vec::new(),
        vec![crate::metrics::test_pool("default")],
        vec!["default".into()],
        Arc::new(ConnectionLimit::new(1)),
        Shutdown::new(),
    )
}

fn healthz(metrics: &Metrics) -> (u16, String) {
    let request = Request {
        method: "GET".into(),
        path: "/healthz".into(),
        query: String::new(),
        authorization: None,
        body: Vec::new(),
    };
    let response = read_only(&request, metrics);
    (response.status, response.body)
}

#[test]
fn healthz_names_a_failed_worker() {
    let metrics = metrics();
    assert_eq!(healthz(&metrics), (200, "ok\n".into()));
    metrics.record_worker_failure(WorkerFailure {
        worker: 1,
        cause: "panicked: boom".into(),
    });
    metrics.record_worker_failure(WorkerFailure {
        worker: 0,
        cause: "later".into(),
    });
    assert_eq!(
        healthz(&metrics),
        (503, "worker 1 failed: panicked: boom; stopping\n".into())
    );
    let status = status::render(&metrics);
    assert!(status.contains("\"worker\": 1"), "{status}");
    assert!(status.contains("\"cause\": \"panicked: boom\""), "{status}");
}
