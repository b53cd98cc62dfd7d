//! Rolling restarts under load, with the health interval at its 5 s default: drained replicas,
//! listeners closed abruptly, replicas killed outright. 32 clients make short requests the whole
//! time; every failure is counted.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use common::*;
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinSet,
};

/// A replica whose health, accept loop and connections the test controls.
struct Replica {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    /// Requests being served right now.
    active: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
    listener: Option<tokio::task::JoinHandle<()>>,
    connections: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    stop_accepting: Arc<Notify>,
}

impl Replica {
    async fn start(addr: SocketAddr) -> Replica {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Replica {
            addr,
            healthy: Arc::new(AtomicBool::new(true)),
            active: Arc::new(AtomicUsize::new(0)),
            served: Arc::new(AtomicUsize::new(0)),
            listener: None,
            connections: Arc::new(tokio::sync::Mutex::new(JoinSet::new())),
            stop_accepting: Arc::new(Notify::new()),
        };
        let (healthy, active, served) = (r.healthy.clone(), r.active.clone(), r.served.clone());
        let (connections, stop) = (r.connections.clone(), r.stop_accepting.clone());
        r.listener = Some(tokio::spawn(async move {
            loop {
                let (mut s, _) = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => return },
                    () = stop.notified() => {
                        // A server on its way out: it stops accepting first, so clients pile up in
                        // the backlog, then closes the listener, which resets them all.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        return;
                    }
                };
                let (healthy, active, served) = (healthy.clone(), active.clone(), served.clone());
                connections.lock().await.spawn(async move {
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if buf[..n].starts_with(b"GET /healthz") {
                        let status = if healthy.load(Relaxed) {
                            "200 OK"
                        } else {
                            "503 Draining"
                        };
                        let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                        let _ = s.write_all(answer.as_bytes()).await;
                        return;
                    }
                    active.fetch_add(1, Relaxed);
                    // A short request that takes a little while, so some are always in flight.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = s.shutdown().await;
                    served.fetch_add(1, Relaxed);
                    active.fetch_sub(1, Relaxed);
                });
            }
        }));
        r
    }

    /// Closes the listener at once; connections being served finish.
    fn close_listener_abruptly(&mut self) {
        self.stop_accepting.notify_one();
    }

    async fn wait_listener_closed(&mut self) {
        if let Some(l) = self.listener.take() {
            let _ = l.await;
        }
    }

    /// Kills the replica: listener and every connection at once.
    async fn kill(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
            let _ = l.await;
        }
        self.connections.lock().await.abort_all();
    }
}

/// 32 clients, a new connection per request, until `stop`; returns (ok, failed) counters.
fn clients(
    proxy: SocketAddr,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicUsize>, Arc<AtomicUsize>, JoinSet<()>) {
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut set = JoinSet::new();
    for _ in 0..32 {
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        set.spawn(async move {
            while !stop.load(Relaxed) {
                let attempt = async {
                    let mut s = TcpStream::connect(proxy).await.ok()?;
                    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .await
                        .ok()?;
                    let mut out = Vec::new();
                    s.read_to_end(&mut out).await.ok()?;
                    out.ends_with(b"\r\n\r\nok").then_some(())
                };
                match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                    Ok(Some(())) => ok.fetch_add(1, Relaxed),
                    _ => failed.fetch_add(1, Relaxed),
                };
            }
        });
    }
    (ok, failed, set)
}

/// Waits (bounded) until `cond` holds, checking every 20 ms.
async fn until(what: &str, cond: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn start(io: IoBackend, replay: bool) -> (Vec<Replica>, Proxy) {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Replica::start("127.0.0.1:0".parse().unwrap()).await);
    }
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let mut cfg = config(io, &addrs, RelayMode::Copy);
    cfg.live.health_check = ringlb::Config::new(vec![]).live.health_check; // the shipped 5 s default
    cfg.live.traffic.retry_on_early_close = replay;
    let proxy = Proxy::start(&cfg);
    proxy.wait_healthy(3).await;
    (replicas, proxy)
}

/// Brings replica `i` back on its port and waits until it serves traffic again.
async fn restart(replicas: &mut [Replica], i: usize) {
    let addr = replicas[i].addr;
    replicas[i] = Replica::start(addr).await;
    let served = replicas[i].served.clone();
    until("the restarted replica to get traffic", || {
        served.load(Relaxed) > 0
    })
    .await;
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drained_rolling_restart_fails_nothing(io: IoBackend) {
        let (mut replicas, proxy) = start(io, false).await;
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed, mut load) = clients(proxy.addr, stop.clone());
        for i in 0..3 {
            let target = replicas[i].addr;
            let balancer = proxy.server().balancer().clone();
            let in_rotation = |b: &&Arc<ringlb::backend::Backend>| b.addr == target;
            until("the replica to be in rotation", || {
                balancer
                    .snapshot()
                    .backends()
                    .iter()
                    .any(|b| in_rotation(&b))
            })
            .await;
            let backend = Arc::clone(
                balancer
                    .snapshot()
                    .backends()
                    .iter()
                    .find(in_rotation)
                    .unwrap(),
            );
            replicas[i].healthy.store(false, Relaxed);
            until("ringlb to stop sending to the drained replica", || {
                !balancer
                    .snapshot()
                    .backends()
                    .iter()
                    .any(|b| in_rotation(&b))
            })
            .await;
            // ringlb counts a connection on its backend from the pick on, so this also covers a
            // pick made from the last snapshot that still held the replica.
            until("ringlb's connections to it to end", || {
                backend.active() == 0
            })
            .await;
            let active = replicas[i].active.clone();
            until("in-flight requests to finish", || active.load(Relaxed) == 0).await;
            replicas[i].kill().await;
            restart(&mut replicas, i).await;
        }
        stop.store(true, Relaxed);
        while load.join_next().await.is_some() {}
        assert!(ok.load(Relaxed) > 100);
        assert_eq!(
            failed.load(Relaxed),
            0,
            "requests failed during a drained restart"
        );
    }
);

/// Each replica in turn stops accepting, then closes its listener (resetting its backlog) while
/// finishing what it accepted; returns the failed requests.
async fn abrupt_listener_close(io: IoBackend, replay: bool, rounds: usize) -> (usize, usize) {
    let (mut replicas, proxy) = start(io, replay).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, mut load) = clients(proxy.addr, stop.clone());
    for i in 0..rounds {
        let served = replicas[i].served.clone();
        let before = served.load(Relaxed);
        until("the replica to serve", || {
            served.load(Relaxed) > before + 10
        })
        .await;
        replicas[i].close_listener_abruptly();
        replicas[i].wait_listener_closed().await;
        let active = replicas[i].active.clone();
        until("in-flight requests to finish", || active.load(Relaxed) == 0).await;
        restart(&mut replicas, i).await;
    }
    stop.store(true, Relaxed);
    while load.join_next().await.is_some() {}
    (ok.load(Relaxed), failed.load(Relaxed))
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abrupt_listener_close_fails_nothing_with_replay(io: IoBackend) {
        let (ok, failed) = abrupt_listener_close(io, true, 3).await;
        assert!(ok > 100);
        assert_eq!(
            failed, 0,
            "requests failed although retry_on_early_close was on"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abrupt_listener_close_fails_requests_without_replay(io: IoBackend) {
        let (_, failed) = abrupt_listener_close(io, false, 1).await;
        assert!(
            failed > 0,
            "the backlog reset should fail requests when replay is off"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_replica_fails_only_its_in_flight_requests(io: IoBackend) {
        let (mut replicas, proxy) = start(io, false).await;
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed, mut load) = clients(proxy.addr, stop.clone());
        for i in 0..3 {
            let served = replicas[i].served.clone();
            let before = served.load(Relaxed);
            until("the replica to serve", || {
                served.load(Relaxed) > before + 10
            })
            .await;
            let failed_before = failed.load(Relaxed);
            replicas[i].kill().await;
            // Whatever starts after the kill succeeds: refused connects go elsewhere.
            let ok_before = ok.load(Relaxed);
            until("later requests to succeed", || {
                ok.load(Relaxed) > ok_before + 200
            })
            .await;
            // Each client has one request in flight at a time, so at most the clients whose request
            // was on the killed replica lose it: never more than one per client.
            let lost = failed.load(Relaxed) - failed_before;
            assert!(lost <= 32, "{lost} requests failed for 32 clients");
            let failed_after_kill = failed.load(Relaxed);
            let ok_mark = ok.load(Relaxed);
            until("more requests", || ok.load(Relaxed) > ok_mark + 200).await;
            assert_eq!(
                failed.load(Relaxed),
                failed_after_kill,
                "a request after the kill failed"
            );
            restart(&mut replicas, i).await;
        }
        stop.store(true, Relaxed);
        while load.join_next().await.is_some() {}
    }
);
