//! The pieces of the tests that run ringlb out of local ports toward a backend
//! (`tests/source_ports.rs`, `tests/fifty_thousand.rs`): an echo backend that counts the
//! connections it holds by the peer's address, a crowd of clients from explicit ports that each
//! send a hello and hold the connection open, the binary's configuration with a patient health
//! check, and a wait for the backends to come up.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{watch, Semaphore},
    time::timeout,
};

use super::binary::toml;

/// What each client sends and the echo backend returns; as long as the start of the 503.
pub const HELLO: &[u8] = b"hello, echo\n";
/// The start of ringlb's no-backend answer.
pub const REFUSED: &[u8] = b"HTTP/1.1 503";
/// Clients connecting at once (the rest wait for a permit): well within the listen backlogs.
pub const CONNECTING: usize = 256;
/// The log line of a connect that found no local port.
pub const NO_PORT_LINE: &str = "no local port for a backend connection";

/// An echo backend on 127.0.0.1:`port` answering ringlb's health probes, counting the
/// connections it holds by the peer's address.
pub struct CountingEcho {
    pub addr: SocketAddr,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl CountingEcho {
    /// The only listener on its address.
    pub async fn start(port: u16) -> CountingEcho {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr).await.expect("bind the backend");
        Self::serve_on(listener)
    }

    /// One of several listeners on its address, in this process or others (`SO_REUSEPORT`):
    /// the kernel spreads the connections to the address over them.
    pub async fn start_shared(port: u16) -> CountingEcho {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.set_reuseport(true).unwrap();
        socket.bind(addr).expect("bind the backend");
        Self::serve_on(socket.listen(4096).unwrap())
    }

    fn serve_on(listener: TcpListener) -> CountingEcho {
        let addr = listener.local_addr().unwrap();
        let peers = Arc::new(Mutex::new(HashMap::new()));
        let count = Arc::clone(&peers);
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                tokio::spawn(serve(stream, peer.ip(), Arc::clone(&count)));
            }
        });
        CountingEcho { addr, peers }
    }

    /// Connections open now (health probes aside), by the address they came from.
    pub fn peers(&self) -> HashMap<IpAddr, usize> {
        let peers = self.peers.lock().unwrap();
        peers
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(ip, n)| (*ip, *n))
            .collect()
    }
}

/// Echoes a relayed connection (small buffer: thousands are open at once) until EOF; answers a
/// health probe and closes.
async fn serve(mut stream: TcpStream, peer: IpAddr, open: Arc<Mutex<HashMap<IpAddr, usize>>>) {
    let mut buf = [0u8; 256];
    let Ok(n) = stream.read(&mut buf).await else {
        return;
    };
    if buf[..n].starts_with(b"GET /healthz") {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(ok).await;
        return;
    }
    *open.lock().unwrap().entry(peer).or_insert(0) += 1;
    let mut next = &buf[..n];
    let mut more = [0u8; 256];
    while !next.is_empty() && stream.write_all(next).await.is_ok() {
        next = match stream.read(&mut more).await {
            Ok(n) => &more[..n],
            Err(_) => &[],
        };
    }
    *open.lock().unwrap().entry(peer).or_insert(1) -= 1;
}

/// How a crowd of clients fared, and the relayed ones, still open.
pub struct Clients {
    pub relayed: usize,
    pub refused: usize,
    pub open: Vec<TcpStream>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} relayed, {} refused", self.relayed, self.refused)
    }
}

impl Clients {
    /// Opens `n` client connections through `ringlb`, each from an explicit local address
    /// (`first`, then the ports after it, on the same IP; outside the narrowed range), each
    /// sending [`HELLO`]: relayed when it comes back, refused when the no-backend answer does.
    /// The relayed ones stay open.
    pub async fn open(ringlb: SocketAddr, first: SocketAddr, n: usize) -> Clients {
        assert!(
            usize::from(first.port()) + n <= usize::from(u16::MAX),
            "{n} ports from {first}"
        );
        let permits = Arc::new(Semaphore::new(CONNECTING));
        let (done, mut finished) = watch::channel(0usize);
        let done = Arc::new(done);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let permits = Arc::clone(&permits);
            let done = Arc::clone(&done);
            let local = SocketAddr::new(first.ip(), first.port() + i as u16);
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                let outcome = hello(ringlb, local).await;
                done.send_modify(|d| *d += 1);
                outcome
            }));
        }
        let all = timeout(Duration::from_secs(90), finished.wait_for(|&d| d == n))
            .await
            .is_ok();
        assert!(
            all,
            "only {} of {n} clients answered in 90 s",
            *finished.borrow()
        );
        let mut clients = Clients {
            relayed: 0,
            refused: 0,
            open: Vec::new(),
        };
        for task in tasks {
            match task.await.unwrap() {
                Some(stream) => {
                    clients.relayed += 1;
                    clients.open.push(stream);
                }
                None => clients.refused += 1,
            }
        }
        clients
    }

    /// Every relayed client sends [`HELLO`] again and gets it back, one after the other.
    pub async fn echo_all(&mut self) {
        let every = async {
            for stream in &mut self.open {
                stream.write_all(HELLO).await.unwrap();
                let mut back = [0u8; HELLO.len()];
                stream.read_exact(&mut back).await.unwrap();
                assert_eq!(back, HELLO);
            }
        };
        timeout(Duration::from_secs(60), every)
            .await
            .expect("every open client echoed within 60 s");
    }
}

/// One client from `local`: `Some(stream)` relayed, `None` given the no-backend answer.
/// Anything else (a reset, a hang, a wrong answer) fails the test.
pub async fn hello(ringlb: SocketAddr, local: SocketAddr) -> Option<TcpStream> {
    let exchange = async {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(local)?;
        let mut stream = socket.connect(ringlb).await?;
        stream.write_all(HELLO).await?;
        let mut back = [0u8; HELLO.len()];
        stream.read_exact(&mut back).await?;
        io::Result::Ok((stream, back))
    };
    let (stream, back) = timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("client from {local}: no answer in 30 s"))
        .unwrap_or_else(|e| panic!("client from {local}: {e}"));
    match &back[..] {
        b if b == HELLO => Some(stream),
        b if b.starts_with(REFUSED) => None,
        b => panic!("client from {local}: {:?}", String::from_utf8_lossy(b)),
    }
}

/// The binary's test configuration for `backends`, with `extra` top-level keys and a health
/// check that a test process busy with thousands of clients cannot fail by answering late.
pub fn config(io: IoBackend, backends: &[SocketAddr], extra: &str) -> String {
    let text = toml(io, backends, extra);
    let patient = "timeout = \"10s\"\nfall = 3\n";
    assert!(text.contains("timeout = \"500ms\"\n"), "{text}");
    text.replacen("timeout = \"500ms\"\n", patient, 1)
}
