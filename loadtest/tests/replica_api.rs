//! The replica's spells API over real TCP: routes, statuses, keep-alive, pipelining, echo, and
//! the test hooks.

use std::time::Duration;

use loadtest::replica::{spells::Spell, Replica};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A response as the tests see it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn start() -> Replica {
    Replica::bind("127.0.0.1:0".parse().unwrap(), "r0")
        .await
        .unwrap()
}

/// Reads exactly one response from `stream`, keeping extra bytes in `buf`.
async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Answer {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = response.parse(buf).unwrap() {
            let headers: Vec<(String, String)> = response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let status = response.code.unwrap();
            let body_len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap();
            while buf.len() < len + body_len {
                read_some(stream, buf).await;
            }
            let body = buf[len..len + body_len].to_vec();
            buf.drain(..len + body_len);
            return Answer {
                status,
                headers,
                body,
            };
        }
        read_some(stream, buf).await;
    }
}

async fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
        .await
        .expect("response in time")
        .unwrap();
    assert!(n > 0, "connection closed early");
    buf.extend_from_slice(&chunk[..n]);
}

async fn exchange(replica: &Replica, request: &str) -> Answer {
    let mut stream = TcpStream::connect(replica.local_addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut stream, &mut Vec::new()).await
}

#[tokio::test]
async fn get_spells_lists_json() {
    let replica = start().await;
    let answer = exchange(&replica, "GET /spells HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("x-replica"), Some("r0"));
    let spells: Vec<Spell> = serde_json::from_slice(&answer.body).unwrap();
    assert!(spells.len() >= 3);
}

#[tokio::test]
async fn post_spells_appends_to_this_replica_only() {
    let (one, two) = (start().await, start().await);
    let body = r#"{"name":"Blink","school":"transmutation","level":3}"#;
    let post = format!(
        "POST /spells HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let created = exchange(&one, &post).await;
    assert_eq!(created.status, 201);
    let spell: Spell = serde_json::from_slice(&created.body).unwrap();
    assert_eq!(spell.name, "Blink");
    let list = |answer: Answer| serde_json::from_slice::<Vec<Spell>>(&answer.body).unwrap();
    let on_one = list(exchange(&one, "GET /spells HTTP/1.1\r\n\r\n").await);
    let on_two = list(exchange(&two, "GET /spells HTTP/1.1\r\n\r\n").await);
    assert_eq!(on_one.last(), Some(&spell));
    assert_eq!(on_one.len(), on_two.len() + 1);
    let bad = "POST /spells HTTP/1.1\r\nContent-Length: 8\r\n\r\nnot json";
    assert_eq!(exchange(&one, bad).await.status, 400);
}

#[tokio::test]
async fn healthz_follows_set_healthy() {
    let replica = start().await;
    assert_eq!(
        exchange(&replica, "GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .status,
        200
    );
    replica.set_healthy(false);
    assert_eq!(
        exchange(&replica, "GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .status,
        503
    );
    replica.set_healthy(true);
    assert_eq!(
        exchange(&replica, "GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_and_garbage() {
    let replica = start().await;
    assert_eq!(
        exchange(&replica, "GET /nope HTTP/1.1\r\n\r\n")
            .await
            .status,
        404
    );
    let not_allowed = exchange(&replica, "DELETE /spells HTTP/1.1\r\n\r\n").await;
    assert_eq!(not_allowed.status, 405);
    assert_eq!(not_allowed.header("allow"), Some("GET, POST"));
    let garbage = exchange(&replica, "\x01\x02 hello\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.header("connection"), Some("close"));
}

#[tokio::test]
async fn keep_alive_and_pipelining_answer_in_order() {
    let replica = start().await;
    let mut stream = TcpStream::connect(replica.local_addr()).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(&mut stream, &mut buf).await.status, 200);
    }
    stream
        .write_all(
            b"GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /spells HTTP/1.1\r\n\r\n",
        )
        .await
        .unwrap();
    let statuses = [
        read_answer(&mut stream, &mut buf).await.status,
        read_answer(&mut stream, &mut buf).await.status,
        read_answer(&mut stream, &mut buf).await.status,
    ];
    assert_eq!(statuses, [200, 404, 200]);
    assert_eq!(replica.served(), 6);
}

#[tokio::test]
async fn echo_streams_the_body_back() {
    let replica = start().await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut stream = TcpStream::connect(replica.local_addr()).await.unwrap();
    let head = format!(
        "POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (mut reader, mut writer) = stream.split();
    let send = async {
        writer.write_all(head.as_bytes()).await.unwrap();
        writer.write_all(&body).await.unwrap();
    };
    let receive = async {
        let mut all = Vec::new();
        let mut chunk = vec![0u8; 65536];
        loop {
            let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
            if let Some(end) = head_end.filter(|end| all.len() >= end + body.len()) {
                return (all, end);
            }
            let n = reader.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early");
            all.extend_from_slice(&chunk[..n]);
        }
    };
    let ((), (all, start)) = tokio::join!(send, receive);
    assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let echoed = &all[start..];
    assert_eq!(echoed, body);
}

#[tokio::test]
async fn pause_holds_answers_until_resume() {
    let replica = start().await;
    replica.pause();
    let mut stream = TcpStream::connect(replica.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut chunk = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut chunk)).await;
    assert!(early.is_err(), "answered while paused");
    replica.resume();
    assert_eq!(read_answer(&mut stream, &mut Vec::new()).await.status, 200);
}

#[tokio::test]
async fn dropping_the_replica_stops_it() {
    let replica = start().await;
    let addr = replica.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    drop(replica);
    let mut chunk = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut chunk)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "connection still open: {read:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn open_connections_are_counted_in_and_out() {
    let replica = start().await;
    let wait_for = |want: u64| {
        let replica = &replica;
        async move {
            for _ in 0..200 {
                if replica.open_connections() == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{} open, wanted {want}", replica.open_connections());
        }
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(replica.local_addr()).await.unwrap());
    }
    wait_for(3).await;
    held.pop();
    wait_for(2).await;
    held.clear();
    wait_for(0).await;
}
