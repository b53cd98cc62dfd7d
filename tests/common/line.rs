//! A non-HTTP backend for the end-to-end tests: a line protocol in the style of Redis, optionally
//! behind a PROXY protocol header it parses and records.
//!
//! Every line gets one answer: `PING` → `+PONG`, `NAME` → `+<name>`, `PEER` → `+<client
//! address>` (the PROXY header's source when there is one, else the socket's peer), `QUIT` →
//! closes, anything else → `+ECHO <line>`. With `noauth` every line is answered
//! `-NOAUTH Authentication required`, as a Redis with a password answers a client without one.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use ringlb::proxy_protocol::{self, Addresses, Command, ParseOutcome, Version};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
    task::JoinHandle,
};

use super::DEADLINE;

/// How a [`LineBackend`] behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineOptions {
    /// Every connection must begin with a PROXY header (v1 or v2); one without is closed.
    pub proxy: bool,
    /// Answer every line with `-NOAUTH Authentication required`.
    pub noauth: bool,
}

/// A PROXY header a [`LineBackend`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenHeader {
    pub version: Version,
    pub command: Command,
    pub addresses: Addresses,
}

/// A running line-protocol backend.
pub struct LineBackend {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: watch::Receiver<usize>,
    /// Every PROXY header received, in order (health probes' included).
    pub headers: Arc<Mutex<Vec<SeenHeader>>>,
    /// The first bytes of every connection that was closed for lacking a valid header.
    pub refused: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Connections that ended with a read error (a reset) instead of an orderly close.
    pub resets: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl LineBackend {
    pub async fn start(name: &'static str, options: LineOptions) -> LineBackend {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name, options).await
    }

    pub async fn start_on(addr: SocketAddr, name: &'static str, options: LineOptions) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind line backend");
        let addr = listener.local_addr().unwrap();
        let (count, accepted) = watch::channel(0usize);
        let headers = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let resets = Arc::new(AtomicUsize::new(0));
        let (seen, bad, reset) = (
            Arc::clone(&headers),
            Arc::clone(&refused),
            Arc::clone(&resets),
        );
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                count.send_modify(|n| *n += 1);
                let (seen, bad) = (Arc::clone(&seen), Arc::clone(&bad));
                let reset = Arc::clone(&reset);
                tokio::spawn(async move {
                    if serve(stream, peer, name, options, seen, bad).await.is_err() {
                        reset.fetch_add(1, Relaxed);
                    }
                });
            }
        });
        LineBackend {
            addr,
            accepted,
            headers,
            refused,
            resets,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        *self.accepted.borrow()
    }

    /// The headers received so far that carry a client (not probes).
    pub fn proxied(&self) -> Vec<SeenHeader> {
        let seen = self.headers.lock().unwrap();
        seen.iter()
            .filter(|h| h.command == Command::Proxy && h.addresses != Addresses::Unknown)
            .copied()
            .collect()
    }

    /// Stops listening: once this returns, new connects are refused (see
    /// [`super::NamedBackend::stop`] for why it waits for the task).
    pub async fn stop(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }
}

async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    name: &'static str,
    options: LineOptions,
    seen: Arc<Mutex<Vec<SeenHeader>>>,
    refused: Arc<Mutex<Vec<Vec<u8>>>>,
) -> std::io::Result<()> {
    let mut pending = Vec::new();
    let mut client = peer;
    if options.proxy {
        match read_header(&mut stream).await {
            Ok((header, rest)) => {
                if let Addresses::Tcp { src, .. } = header.addresses {
                    client = src;
                }
                seen.lock().unwrap().push(header);
                pending = rest;
            }
            Err(first) => {
                refused.lock().unwrap().push(first);
                return Ok(());
            }
        }
    }
    let (read, mut write) = stream.split();
    let mut lines = BufReader::new(pending.as_slice().chain(read)).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match line.trim_end_matches('\r') {
            _ if options.noauth => "-NOAUTH Authentication required".to_owned(),
            "PING" => "+PONG".to_owned(),
            "NAME" => format!("+{name}"),
            "PEER" => format!("+{client}"),
            "QUIT" => return Ok(()),
            other => format!("+ECHO {other}"),
        };
        write.write_all(format!("{answer}\r\n").as_bytes()).await?;
    }
    Ok(())
}

/// Reads a PROXY header; returns it and the bytes that followed it, or the bytes read so far
/// when they are not a valid header.
async fn read_header(stream: &mut TcpStream) -> Result<(SeenHeader, Vec<u8>), Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match proxy_protocol::parse(&buf) {
            ParseOutcome::Complete { header, consumed } => {
                let seen = SeenHeader {
                    version: header.version,
                    command: header.command,
                    addresses: header.addresses,
                };
                return Ok((seen, buf[consumed..].to_vec()));
            }
            ParseOutcome::Invalid(_) => return Err(buf),
            ParseOutcome::Incomplete { .. } => {}
        }
        match tokio::time::timeout(DEADLINE, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return Err(buf),
        }
    }
}

/// Connects to `addr` (from `source` if given), sends `lines` one by one and returns the answer
/// to each; stops early at EOF.
pub async fn exchange(addr: SocketAddr, source: Option<SocketAddr>, lines: &[&str]) -> Vec<String> {
    let stream = connect_from(addr, source).await.expect("connect");
    talk(stream, lines).await
}

/// Sends `lines` one by one on `stream` and returns the answer to each; stops early at EOF.
pub async fn talk(stream: TcpStream, lines: &[&str]) -> Vec<String> {
    tokio::time::timeout(DEADLINE, async move {
        let (read, mut write) = stream.into_split();
        let mut answers = BufReader::new(read).lines();
        let mut out = Vec::new();
        for line in lines {
            if write
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            match answers.next_line().await {
                Ok(Some(answer)) => out.push(answer.trim_end_matches('\r').to_owned()),
                _ => break,
            }
        }
        out
    })
    .await
    .expect("answers within the deadline")
}

/// A TCP connection to `addr`, bound to `source` first when given (a `127.0.0.x` or `::1`
/// address, port 0 for any).
pub async fn connect_from(
    addr: SocketAddr,
    source: Option<SocketAddr>,
) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(source) = source {
        socket.bind(source)?;
    }
    tokio::time::timeout(DEADLINE, socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Waits (bounded) until `check` holds, polling every 10 ms.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
