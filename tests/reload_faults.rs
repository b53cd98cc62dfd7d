//! A reload under faults, with the real binary: SIGHUP switches `retry_on_early_close` on, then
//! every backend is killed abruptly (its open connections reset, its listener closed) and
//! restarted, one after the other, while clients keep making connection-per-request requests.
//! Not one request fails: connects refused by a dead backend go to another (`retries`), and
//! requests it reset before answering are replayed to another (the replay the reload enabled).

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use common::{
    admin_http::{admin_addr, get, metric, wait_backends_up},
    binary::{toml, Process},
    io_backends, DEADLINE,
};
use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// Clients making requests all along.
const CLIENTS: usize = 8;

/// A backend that can be killed abruptly and started again on the same port.
struct Restartable {
    addr: SocketAddr,
    name: &'static str,
    kill: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Restartable {
    async fn start_on(addr: SocketAddr, name: &'static str) -> Restartable {
        let listener = TcpListener::bind(addr).await.expect("bind the backend");
        let addr = listener.local_addr().unwrap();
        let (kill, killed) = watch::channel(false);
        let task = tokio::spawn(serve(listener, name, killed));
        Restartable {
            addr,
            name,
            kill,
            task,
        }
    }

    /// Resets every open connection and closes the listener, as a crash does; then, once the
    /// port has refused connects for a moment, listens again.
    async fn crash_and_restart(self) -> Restartable {
        let _ = self.kill.send(true);
        let _ = self.task.await;
        // Down for a moment: connects are refused meanwhile.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Restartable::start_on(self.addr, self.name).await
    }
}

async fn serve(listener: TcpListener, name: &'static str, mut killed: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = killed.changed() => return,
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { return };
                let mut killed = killed.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = killed.changed() => {
                            // Closed with a reset, like a process that died.
                            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                        }
                        _ = answer(&mut stream, name) => {}
                    }
                });
            }
        }
    }
}

/// Reads a request head and answers it (after a short pause, so that crashes meet requests in
/// flight); health probes at once.
async fn answer(stream: &mut TcpStream, name: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    if common::answered_health_probe(stream, &head).await {
        return;
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
        name.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// One connection-per-request exchange: `Ok` when a whole answer came (by its
/// `Content-Length`: a backend that crashes right after answering may reset the connection);
/// otherwise what went wrong, and what had arrived.
async fn request(proxy: SocketAddr) -> Result<(), String> {
    let exchange = async {
        let mut s = TcpStream::connect(proxy)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|l| l.parse::<usize>().ok());
                if let Some(length) = length.filter(|l| got.len() >= end + 4 + l) {
                    let _ = length;
                    return match head.starts_with("HTTP/1.1 200") {
                        true => Ok(()),
                        false => Err(format!("answer: {head:?}")),
                    };
                }
            }
            match s.read(&mut buf).await {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                end => {
                    let got = String::from_utf8_lossy(&got);
                    return Err(format!("{end:?} after {got:?}"));
                }
            }
        }
    };
    match tokio::time::timeout(DEADLINE, exchange).await {
        Ok(result) => result,
        Err(_) => Err("no answer within the deadline".into()),
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_reload_to_replay_then_backends_crashing_one_by_one_fail_no_request(io: IoBackend) {
        let mut backends = Vec::new();
        for name in ["a", "b", "c"] {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            backends.push(Restartable::start_on(any, name).await);
        }
        let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
        let ringlb = tokio::task::block_in_place(|| Process::start(&toml(io, &addrs, ""), None));
        let admin = admin_addr(&ringlb);
        wait_backends_up(admin, 3).await;

        std::fs::write(
            &ringlb.config_path,
            toml(io, &addrs, "retry_on_early_close = true"),
        )
        .unwrap();
        let pid = ringlb.child.id().to_string();
        let hup = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status();
        assert!(hup.unwrap().success());
        tokio::task::block_in_place(|| ringlb.wait_log("SIGHUP: configuration reloaded", 1));
        assert_eq!(
            ringlb.log_lines("needs new sockets or threads"),
            0,
            "a live setting: no upgrade"
        );

        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let proxy = ringlb.addr;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
                tokio::spawn(async move {
                    while !stop.load(Relaxed) {
                        match request(proxy).await {
                            Ok(()) => ok.fetch_add(1, Relaxed),
                            Err(why) => {
                                failed.lock().unwrap().push(why);
                                0
                            }
                        };
                    }
                })
            })
            .collect();

        // Waits (bounded) until `n` more requests than now have been served.
        let served = |n: usize| {
            let ok = Arc::clone(&ok);
            async move {
                let target = ok.load(Relaxed) + n;
                tokio::time::timeout(DEADLINE, async {
                    while ok.load(Relaxed) < target {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
                .await
                .expect("requests are served");
            }
        };
        for i in 0..backends.len() {
            // Under load when it crashes, and after it is back.
            served(CLIENTS).await;
            let backend = backends.remove(i);
            backends.insert(i, backend.crash_and_restart().await);
            wait_backends_up(admin, 3).await;
        }
        served(CLIENTS).await;
        stop.store(true, Relaxed);
        for client in clients {
            client.await.unwrap();
        }
        let metrics = get(admin, "/metrics").await.1;
        let failed = failed.lock().unwrap().clone();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed: {failed:?}; log: {}",
            failed.len(),
            ok.load(Relaxed) + failed.len(),
            ringlb.log.lock().unwrap().join("\n")
        );
        assert!(
            metric(&metrics, "ringlb_connect_retries_total") > 0.0,
            "the crashes met requests (retried or replayed elsewhere): {metrics}"
        );
    }
);
