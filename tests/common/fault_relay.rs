//! A fault-injecting TCP relay for the end-to-end fault tests, and the small workload protocol
//! that it, the [`ChecksumBackend`] behind it and the test's clients agree on.
//!
//! The relay sits between ringlb and one backend (ringlb's target is the relay's port). It
//! forwards every connection to its upstream; for a workload connection it reads the client's
//! [`Header`] and derives, from the test's seed and the connection id in it (never from accept
//! order, so one connection replays alone), a [`Plan`]: random segment sizes (`TCP_NODELAY` on
//! both sockets), small random pauses and, for a share of the connections, a reset of BOTH of its
//! sockets (`SO_LINGER` 0) once a chosen number of bytes of one direction has been forwarded.
//! Anything else, ringlb's health probes included, passes through untouched. A peer's reset is
//! passed on as a reset, a FIN as a FIN once every byte before it was forwarded.
//!
//! The workload: the client sends a [`Header`] (magic, id, payload length, payload checksum) and
//! the payload, then half-closes; the backend echoes the payload as it arrives, then sends a
//! [`TRAILER_LEN`]-byte trailer, the checksum of what it received, and closes with a FIN once it
//! has seen the client's.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use super::DEADLINE;

/// The first bytes of every workload connection.
pub const MAGIC: [u8; 4] = *b"FLT1";
/// Bytes of an encoded [`Header`].
pub const HEADER_LEN: usize = 20;
/// Bytes of the backend's trailer: the checksum (little-endian) of the payload it received.
pub const TRAILER_LEN: usize = 8;

/// What a workload client sends before its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The connection's number in the workload; with the seed it decides the [`Plan`].
    pub id: u32,
    /// Payload bytes that follow the header.
    pub len: u32,
    /// [`checksum`] of the payload.
    pub checksum: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.id.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..].copy_from_slice(&self.checksum.to_le_bytes());
        out
    }

    /// The header `bytes` begin with, if they begin with a whole one.
    pub fn decode(bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER_LEN || bytes[..4] != MAGIC {
            return None;
        }
        Some(Header {
            id: u32::from_le_bytes(bytes[4..8].try_into().unwrap()),
            len: u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
            checksum: u64::from_le_bytes(bytes[12..20].try_into().unwrap()),
        })
    }

    /// Bytes the client sends: the header and the payload.
    pub fn upstream_len(&self) -> u64 {
        (HEADER_LEN as u64) + u64::from(self.len)
    }

    /// Bytes the backend answers: the echoed payload and the trailer.
    pub fn downstream_len(&self) -> u64 {
        u64::from(self.len) + TRAILER_LEN as u64
    }
}

/// A running FNV-1a 64 checksum.
#[derive(Debug, Clone, Copy)]
pub struct Checksum(u64);

impl Default for Checksum {
    fn default() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
}

impl Checksum {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}

/// The [`Checksum`] of `bytes`.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut sum = Checksum::default();
    sum.update(bytes);
    sum.value()
}

/// A small seeded generator (SplitMix64): the same seed gives the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A seed for `stream` of `seed` (the client's payload, the relay's plan, ...).
pub fn derive(seed: u64, stream: u64) -> u64 {
    Rng::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

/// A direction through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From ringlb (the client's bytes) to the backend.
    Upstream,
    /// From the backend to ringlb (toward the client).
    Downstream,
}

/// A reset of both of the relay's sockets once `offset` bytes of `dir` were forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub dir: Direction,
    pub offset: u64,
}

/// How the relay treats one direction of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Shaping {
    /// Seed of this direction's segment sizes and pauses.
    pub seed: u64,
    /// Each write is 1 to `max_segment` bytes.
    pub max_segment: u64,
    /// After a write, pause (up to 1.5 ms) with a chance of one in this (0: never).
    pub pause_one_in: u64,
    /// Reset both sockets once this many bytes were forwarded.
    pub reset_at: Option<u64>,
}

impl Shaping {
    /// Forward as read, no pause, no fault.
    const CLEAN: Shaping = Shaping {
        seed: 0,
        max_segment: u64::MAX,
        pause_one_in: 0,
        reset_at: None,
    };
}

/// What the relay does to one workload connection.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub fault: Option<Fault>,
    pub upstream: Shaping,
    pub downstream: Shaping,
}

impl Plan {
    /// The plan for the connection that sent `header`: a fault for `fault_percent` % of the
    /// connections, at an offset anywhere from 0 to the whole of the chosen direction.
    pub fn for_connection(seed: u64, header: &Header, fault_percent: u64) -> Plan {
        let mut rng = Rng::new(derive(seed, 0x5EED_0000_0000 | u64::from(header.id)));
        let fault = (rng.below(100) < fault_percent).then(|| {
            let (dir, total) = if rng.below(2) == 0 {
                (Direction::Upstream, header.upstream_len())
            } else {
                (Direction::Downstream, header.downstream_len())
            };
            Fault {
                dir,
                offset: rng.below(total + 1),
            }
        });
        let mut shaping = |dir| Shaping {
            seed: rng.next_u64(),
            max_segment: rng.pick(&[64, 1500, 16 * 1024, 64 * 1024]),
            pause_one_in: rng.pick(&[0, 8, 64]),
            reset_at: fault.filter(|f| f.dir == dir).map(|f| f.offset),
        };
        let upstream = shaping(Direction::Upstream);
        let downstream = shaping(Direction::Downstream);
        Plan {
            fault,
            upstream,
            downstream,
        }
    }

    fn clean() -> Plan {
        Plan {
            fault: None,
            upstream: Shaping::CLEAN,
            downstream: Shaping::CLEAN,
        }
    }
}

/// What a [`FaultRelay`] did so far.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Workload connections (with a valid header).
    pub workload: AtomicUsize,
    /// Other connections passed through untouched (health probes).
    pub passed_through: AtomicUsize,
    /// Planned resets that fired.
    pub faults: AtomicUsize,
    /// Connections that ended in a reset because a peer failed (its reset passed on).
    pub passed_errors: AtomicUsize,
}

/// A running fault relay in front of one upstream; stops when dropped.
pub struct FaultRelay {
    pub addr: SocketAddr,
    pub stats: Arc<RelayStats>,
    task: JoinHandle<()>,
}

impl FaultRelay {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`, faults decided by `seed` for
    /// `fault_percent` % of the workload connections.
    pub async fn start(upstream: SocketAddr, seed: u64, fault_percent: u64) -> FaultRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(RelayStats::default());
        let shared = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let stats = Arc::clone(&shared);
                tokio::spawn(relay(down, upstream, seed, fault_percent, stats));
            }
        });
        FaultRelay { addr, stats, task }
    }
}

impl Drop for FaultRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How one direction ended.
enum End {
    /// The source's EOF was passed on after every byte.
    Eof,
    /// The planned reset is due.
    Fault,
}

/// Closes `stream` with a reset (`SO_LINGER` 0) instead of a FIN.
pub fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn relay(
    mut down: TcpStream,
    upstream: SocketAddr,
    seed: u64,
    fault_percent: u64,
    stats: Arc<RelayStats>,
) {
    let mut first = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match down.read(&mut first[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let first = &first[..got];
    let workload = Header::decode(first);
    let (counter, plan) = match &workload {
        Some(header) => (
            &stats.workload,
            Plan::for_connection(seed, header, fault_percent),
        ),
        None => (&stats.passed_through, Plan::clean()),
    };
    counter.fetch_add(1, Relaxed);
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return reset(down);
    };
    if workload.is_some() {
        // Every segment leaves as written.
        let _ = down.set_nodelay(true);
        let _ = up.set_nodelay(true);
    }
    let ending = tokio::time::timeout(DEADLINE, both_ways(&mut down, &mut up, first, &plan)).await;
    match ending {
        Ok(Ok(End::Eof)) => {} // both FINs passed on: close normally
        Ok(Ok(End::Fault)) => {
            stats.faults.fetch_add(1, Relaxed);
            reset(down);
            reset(up);
        }
        Ok(Err(_)) | Err(_) => {
            stats.passed_errors.fetch_add(1, Relaxed);
            reset(down);
            reset(up);
        }
    }
}

/// Runs both directions until both passed their EOF on (`Eof`), one's fault is due (`Fault`)
/// or a socket failed (`Err`).
async fn both_ways(
    down: &mut TcpStream,
    up: &mut TcpStream,
    first: &[u8],
    plan: &Plan,
) -> std::io::Result<End> {
    let (down_rd, down_wr) = down.split();
    let (up_rd, up_wr) = up.split();
    let upstream = pump(down_rd, up_wr, first, plan.upstream);
    let downstream = pump(up_rd, down_wr, &[], plan.downstream);
    tokio::pin!(upstream, downstream);
    let mut open = [true, true];
    loop {
        let end = tokio::select! {
            end = &mut upstream, if open[0] => { open[0] = false; end? }
            end = &mut downstream, if open[1] => { open[1] = false; end? }
        };
        match end {
            End::Fault => return Ok(End::Fault),
            End::Eof if open == [false, false] => return Ok(End::Eof),
            End::Eof => {}
        }
    }
}

/// One direction: `first`, then everything `src` sends, written to `dst` as `shaping` says; the
/// EOF becomes a `shutdown(SHUT_WR)` on `dst`.
async fn pump(
    mut src: impl AsyncRead + Unpin,
    mut dst: impl AsyncWrite + Unpin,
    first: &[u8],
    shaping: Shaping,
) -> std::io::Result<End> {
    let mut rng = Rng::new(shaping.seed);
    let mut sent = 0u64;
    if forward(&mut dst, first, &mut sent, &shaping, &mut rng).await? {
        return Ok(End::Fault);
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            dst.shutdown().await?;
            return Ok(End::Eof);
        }
        if forward(&mut dst, &buf[..n], &mut sent, &shaping, &mut rng).await? {
            return Ok(End::Fault);
        }
    }
}

/// Writes `bytes` in segments; `true` as soon as the planned reset is due (checked before each
/// segment and after the last, so an offset of 0 fires before any byte and one at the end of
/// the stream fires in place of the FIN).
async fn forward(
    dst: &mut (impl AsyncWrite + Unpin),
    mut bytes: &[u8],
    sent: &mut u64,
    shaping: &Shaping,
    rng: &mut Rng,
) -> std::io::Result<bool> {
    loop {
        if shaping.reset_at == Some(*sent) {
            return Ok(true);
        }
        if bytes.is_empty() {
            return Ok(false);
        }
        let mut n = (bytes.len() as u64).min(1 + rng.below(shaping.max_segment));
        if let Some(at) = shaping.reset_at.filter(|&at| at > *sent) {
            n = n.min(at - *sent);
        }
        dst.write_all(&bytes[..n as usize]).await?;
        *sent += n;
        bytes = &bytes[n as usize..];
        if shaping.pause_one_in > 0 && rng.below(shaping.pause_one_in) == 0 {
            tokio::time::sleep(Duration::from_micros(rng.below(1500))).await;
        }
    }
}

/// What a [`ChecksumBackend`] saw so far.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Health probes answered.
    pub probes: AtomicUsize,
    /// Workload connections whose whole payload arrived with the right checksum.
    pub intact: AtomicUsize,
    /// Payloads that arrived whole but with the wrong checksum (corrupted upstream).
    pub corrupted: AtomicUsize,
    /// Clean EOFs before the whole payload (a silent upstream truncation).
    pub truncated: AtomicUsize,
    /// Connections that ended in an error (a reset passed on by the relay).
    pub errors: AtomicUsize,
}

/// The workload's backend: echoes the payload, then the [`TRAILER_LEN`]-byte checksum of what it
/// received, then a FIN after the client's; answers ringlb's health probe (`GET /healthz`).
pub struct ChecksumBackend {
    pub addr: SocketAddr,
    pub stats: Arc<BackendStats>,
    task: JoinHandle<()>,
}

impl ChecksumBackend {
    pub async fn start() -> ChecksumBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(BackendStats::default());
        let shared = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let stats = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(DEADLINE, serve(stream, &stats)).await;
                });
            }
        });
        ChecksumBackend { addr, stats, task }
    }
}

impl Drop for ChecksumBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, stats: &BackendStats) {
    let mut head = [0u8; HEADER_LEN];
    if stream.read_exact(&mut head).await.is_err() {
        stats.errors.fetch_add(1, Relaxed);
        return;
    }
    let Some(header) = Header::decode(&head) else {
        return probe(stream, head.to_vec(), stats).await;
    };
    let counter = match echo(&mut stream, &header).await {
        Ok(Some(sum)) if sum == header.checksum => &stats.intact,
        Ok(Some(_)) => &stats.corrupted,
        Ok(None) => &stats.truncated,
        Err(_) => &stats.errors,
    };
    counter.fetch_add(1, Relaxed);
}

/// Echoes the payload, sends the trailer, waits for the client's FIN and sends its own: the
/// checksum received, or `None` when the payload ended early with a clean EOF.
async fn echo(stream: &mut TcpStream, header: &Header) -> std::io::Result<Option<u64>> {
    let mut sum = Checksum::default();
    let mut left = header.len as usize;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = left.min(buf.len());
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            stream.shutdown().await?;
            return Ok(None);
        }
        sum.update(&buf[..n]);
        stream.write_all(&buf[..n]).await?;
        left -= n;
    }
    stream.write_all(&sum.value().to_le_bytes()).await?;
    if stream.read(&mut buf).await? != 0 {
        // More than the header announced: answer nothing more, the client sees a short stream.
        return Ok(Some(!header.checksum));
    }
    stream.shutdown().await?;
    Ok(Some(sum.value()))
}

/// Answers a health probe whose first bytes are `head`: reads the rest of its head first, so
/// closing sends a FIN, not the reset unread input would cause.
async fn probe(mut stream: TcpStream, mut head: Vec<u8>, stats: &BackendStats) {
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    if super::answered_health_probe(&mut stream, &head).await {
        stats.probes.fetch_add(1, Relaxed);
        let _ = stream.shutdown().await;
    }
}
