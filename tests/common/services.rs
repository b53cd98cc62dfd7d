//! Helpers for the multi-service tests: pools and services built in code (in-process
//! servers), a TLS ClientHello builder, and a backend that records every byte it received.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use ringlb::config::{
    Config, HealthCheck, HealthCheckKind, IoBackend, Pool, RelayMode, Route, Service,
    ServiceTraffic, Strategy, Target, Traffic,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use super::DEADLINE;

/// A pool of `targets`, never probed (a target enters as soon as it resolves): the backends
/// of these tests speak TLS or lines, not HTTP.
pub fn pool(name: &str, targets: &[SocketAddr]) -> Pool {
    Pool {
        name: name.into(),
        balance: Strategy::RoundRobin,
        send_proxy: Default::default(),
        health_check: HealthCheck {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            rise: 1,
            fall: 1,
        },
        targets: targets
            .iter()
            .map(|a| Target {
                health_check: HealthCheckKind::None,
                health_check_endpoint: String::new(),
                ..Target::http(&a.ip().to_string(), a.port(), "")
            })
            .collect(),
    }
}

/// A service on 127.0.0.1:0 sending what no route selects to `default`, and SNI `routes`
/// (patterns, pool).
pub fn service(name: &str, default: Option<&str>, routes: &[(&[&str], &str)]) -> Service {
    Service {
        name: name.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        pool: default.map(Into::into),
        routes: routes
            .iter()
            .map(|(sni, pool)| Route {
                sni: sni.iter().map(|s| s.to_string()).collect(),
                pool: pool.to_string(),
            })
            .collect(),
        traffic: ServiceTraffic::from(&Traffic::default()),
    }
}

/// The test configuration on `io` (fast checks, two workers, an ephemeral admin port) serving
/// `services` with `pools`.
pub fn services_config(io: IoBackend, pools: Vec<Pool>, services: Vec<Service>) -> Config {
    let mut config = super::config(io, &[], RelayMode::Auto);
    config.live.pools = pools;
    config.live.services = services;
    config
}

/// A TLS 1.2-style ClientHello record naming `sni` (or none), with `padding` bytes of a
/// padding extension (to make it large), split into handshake records of at most `record`
/// payload bytes.
pub fn client_hello(sni: Option<&str>, padding: usize, record: usize) -> Vec<u8> {
    let mut extensions = Vec::new();
    if let Some(name) = sni {
        let n = name.len() as u16;
        extensions.extend_from_slice(&[0, 0]);
        extensions.extend_from_slice(&(n + 5).to_be_bytes());
        extensions.extend_from_slice(&(n + 3).to_be_bytes());
        extensions.push(0);
        extensions.extend_from_slice(&n.to_be_bytes());
        extensions.extend_from_slice(name.as_bytes());
    }
    if padding > 0 {
        extensions.extend_from_slice(&[0, 21]);
        extensions.extend_from_slice(&(padding as u16).to_be_bytes());
        extensions.extend(std::iter::repeat_n(0u8, padding));
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(&extensions);
    let mut message = vec![1];
    message.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend_from_slice(&body);
    let mut records = Vec::new();
    for chunk in message.chunks(record) {
        records.extend_from_slice(&[0x16, 3, 1]);
        records.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        records.extend_from_slice(chunk);
    }
    records
}

/// A backend that reads each connection to its end, records the bytes and answers its name.
pub struct Recorder {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl Recorder {
    pub async fn start(name: &'static str) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut bytes = Vec::new();
                    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut bytes));
                    if read.await.is_ok() {
                        seen.lock().unwrap().push(bytes);
                        let _ = stream.write_all(name.as_bytes()).await;
                    }
                });
            }
        });
        Recorder {
            addr,
            received,
            task,
        }
    }

    /// Every connection's bytes so far.
    pub fn connections(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends `bytes` to `addr` in writes of `chunk` bytes (a pause between two, so each is its
/// own segment), half-closes, and returns what came back; an error if the connection failed.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], chunk: usize) -> std::io::Result<Vec<u8>> {
    tokio::time::timeout(DEADLINE, async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        for (i, part) in bytes.chunks(chunk).enumerate() {
            if i > 0 && chunk < bytes.len() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            stream.write_all(part).await?;
        }
        stream.shutdown().await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(answer)
    })
    .await
    .expect("exchange within the deadline")
}
