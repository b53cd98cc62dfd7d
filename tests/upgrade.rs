//! Binary upgrades without downtime, with the real binary: SIGUSR2 starts a new ringlb from the
//! same path and arguments, hands it the listeners, and the old one drains and exits 0; a
//! successor whose configuration does not load leaves the old one serving.
//!
//! This file is its own test binary on purpose: the test process becomes a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so the old processes, orphaned when the ringlb that started them
//! exits, are reparented to it and their exit codes can be read.

mod common;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{binary, io_backends, random_bytes, DEADLINE};
use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Connection-per-request clients during the upgrades.
const CLIENTS: usize = 16;
/// The long transfer fed across every upgrade.
const TRANSFER: usize = 4 << 20;
/// Upgrades in a row.
const UPGRADES: usize = 3;

/// A backend that answers `GET` with `200 ok` and closes, and echoes anything else to its end.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let Ok(n) = s.read(&mut buf).await else {
                    return;
                };
                if buf[..n].starts_with(b"GET ") {
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                    return;
                }
                let mut n = n;
                while n > 0 {
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    n = s.read(&mut buf).await.unwrap_or(0);
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// One connection-per-request exchange; `true` when the whole answer came.
async fn request(proxy: SocketAddr) -> bool {
    let exchange = async {
        let mut s = TcpStream::connect(proxy).await.ok()?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        answer.ends_with(b"\r\n\r\nok").then_some(())
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// The pid the pid file names, once it names one.
fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits (bounded) until the pid file names a process other than `old`.
fn wait_for_new_pid(path: &Path, old: i32) -> i32 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(pid) = read_pid(path).filter(|&p| p != old) {
            return pid;
        }
        assert!(Instant::now() < deadline, "the pid file still names {old}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) for descendant `pid` to exit; its exit code. The test process is a child
/// subreaper, so an orphaned ringlb is its child by now.
fn wait_exit_code(pid: i32) -> i32 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a live local; WNOHANG never blocks.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == pid {
            assert!(
                libc::WIFEXITED(status),
                "process {pid} did not exit normally"
            );
            return libc::WEXITSTATUS(status);
        }
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: i32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn pid_path(io: IoBackend) -> PathBuf {
    std::env::temp_dir().join(format!("ringlb-upgrade-{}-{io}.pid", std::process::id()))
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn three_upgrades_under_load_lose_nothing(io: IoBackend) {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument only.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
        let addr = backend().await;
        let pid_file = pid_path(io);
        let _ = std::fs::remove_file(&pid_file);
        let extra = format!(
            "pid_file = {:?}\ndrain_timeout = \"10s\"",
            pid_file.display().to_string()
        );
        let mut first = tokio::task::block_in_place(|| {
            binary::Process::start(&binary::toml(io, &[addr], &extra), None)
        });
        let proxy = first.addr;
        let mut pid = read_pid(&pid_file).expect("the first process wrote its pid");
        assert_eq!(pid as u32, first.child.id());

        // Clients making connection-per-request requests all along.
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
                tokio::spawn(async move {
                    while !stop.load(Relaxed) {
                        let counter = if request(proxy).await { &ok } else { &failed };
                        counter.fetch_add(1, Relaxed);
                    }
                })
            })
            .collect();

        // A transfer opened before the first upgrade and fed across all of them.
        let data = random_bytes(TRANSFER, 13);
        let mut transfer = TcpStream::connect(proxy).await.unwrap();
        let chunks: Vec<&[u8]> = data.chunks(TRANSFER / (UPGRADES + 1)).collect();
        let mut echoed = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            transfer.write_all(chunk).await.unwrap();
            let mut back = vec![0u8; chunk.len()];
            tokio::time::timeout(DEADLINE, transfer.read_exact(&mut back))
                .await
                .expect("the echo within the deadline")
                .unwrap();
            echoed.extend_from_slice(&back);
            if i == UPGRADES {
                break;
            }
            let before = ok.load(Relaxed);
            signal(pid, "USR2");
            pid = tokio::task::block_in_place(|| wait_for_new_pid(&pid_file, pid));
            // Traffic flows through the new process while the old one drains (the first one
            // keeps this transfer to its end).
            tokio::time::timeout(DEADLINE, async {
                while ok.load(Relaxed) < before + 2 * CLIENTS {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .expect("requests are served after the upgrade");
        }
        transfer.shutdown().await.unwrap();
        let mut rest = Vec::new();
        transfer.read_to_end(&mut rest).await.unwrap();
        echoed.extend_from_slice(&rest);
        assert!(
            echoed == data,
            "the long transfer arrived intact across every upgrade"
        );
        drop(transfer);

        // Every old process drained and exited 0.
        let first_status = tokio::task::block_in_place(|| first.wait_exit(DEADLINE));
        assert!(
            first_status.success(),
            "the first process exited with {first_status}"
        );
        let log = first.log.lock().unwrap().clone();
        let olds = first.successor_pids();
        assert_eq!(
            olds.len(),
            UPGRADES,
            "three successors were started: {log:?}"
        );
        for &old in &olds[..UPGRADES - 1] {
            let code = tokio::task::block_in_place(|| wait_exit_code(old));
            assert_eq!(code, 0, "process {old} exited with {code}");
        }
        assert_eq!(
            olds[UPGRADES - 1],
            pid,
            "the pid file names the last successor"
        );

        // A successor whose configuration does not load: the running one keeps serving.
        std::fs::write(&first.config_path, "listen = \n").unwrap();
        signal(pid, "USR2");
        tokio::task::block_in_place(|| first.wait_log("upgrade failed", 1));
        assert_eq!(
            read_pid(&pid_file),
            Some(pid),
            "the pid file still names the server"
        );

        stop.store(true, Relaxed);
        for c in clients {
            c.await.unwrap();
        }
        assert!(
            request(proxy).await,
            "still serving after the failed upgrade"
        );
        let (ok, failed) = (ok.load(Relaxed), failed.load(Relaxed));
        println!(
            "{io}: {ok} requests, {failed} failed, across {UPGRADES} upgrades (pids {olds:?})"
        );
        assert_eq!(
            failed,
            0,
            "{failed} of {} requests failed across the upgrades",
            ok + failed
        );
        assert!(ok > 10 * CLIENTS, "only {ok} requests made");

        signal(pid, "TERM");
        let code = tokio::task::block_in_place(|| wait_exit_code(pid));
        assert_eq!(code, 0, "the last process exited with {code}");
        assert!(!pid_file.exists(), "the last process removed its pid file");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_reload_that_changes_listen_upgrades_in_place(io: IoBackend) {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument only.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
        let addr = backend().await;
        let pid_file =
            std::env::temp_dir().join(format!("ringlb-relisten-{}-{io}.pid", std::process::id()));
        let extra = format!("pid_file = {:?}", pid_file.display().to_string());
        let mut first = tokio::task::block_in_place(|| {
            binary::Process::start(&binary::toml(io, &[addr], &extra), None)
        });
        let old_port = first.addr;
        let pid = read_pid(&pid_file).unwrap();
        // A connection open on the old port when it is retired: it drains, it is not cut.
        let mut open = TcpStream::connect(old_port).await.unwrap();
        open.write_all(b"echo").await.unwrap();
        let mut four = [0u8; 4];
        open.read_exact(&mut four).await.unwrap();

        // The new port: a free one found now (ephemeral, not fixed).
        let new_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The first `listen` only: the admin listener's stays where it is.
        let text = binary::toml(io, &[addr], &extra).replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{new_port}\""),
            1,
        );
        std::fs::write(&first.config_path, text).unwrap();
        signal(pid, "HUP");
        let next = tokio::task::block_in_place(|| wait_for_new_pid(&pid_file, pid));
        assert!(request(new_port).await, "the new port serves");
        assert!(
            first.log_lines("changing listen needs new sockets or threads") >= 1,
            "the reload named the key"
        );
        open.write_all(b"more").await.unwrap();
        open.read_exact(&mut four).await.unwrap();
        assert_eq!(
            &four, b"more",
            "the open connection on the old port still runs"
        );
        drop(open);
        let status = tokio::task::block_in_place(|| first.wait_exit(DEADLINE));
        assert!(
            status.success(),
            "the old process drained and exited with {status}"
        );
        signal(next, "TERM");
        assert_eq!(tokio::task::block_in_place(|| wait_exit_code(next)), 0);
    }
);

/// A backend like [`backend`] that counts the requests for `/` (the probes ask for `/healthz`).
async fn counting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let Ok(n) = s.read(&mut buf).await else {
                    return;
                };
                if buf[..n].starts_with(b"GET / ") {
                    count.fetch_add(1, Relaxed);
                }
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = s.write_all(answer).await;
            });
        }
    });
    (addr, served)
}

/// `POST /targets/<target>/<field>` with `token`; the status code.
async fn set_override(
    admin: SocketAddr,
    token: &str,
    target: SocketAddr,
    field: &str,
    value: &str,
) -> u16 {
    let request = format!(
        "POST /targets/{target}/{field} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer \
         {token}\r\nContent-Length: {}\r\n\r\n{value}",
        value.len()
    );
    let mut s = TcpStream::connect(admin).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut answer))
        .await
        .expect("the admin answers")
        .unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The `/status` entry of `target`, from the process serving the admin listener at `admin`.
async fn status_of(admin: SocketAddr, target: SocketAddr) -> serde_json::Value {
    let (code, body) = common::admin_http::get(admin, "/status").await;
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let name = target.to_string();
    status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {status}"))
        .clone()
}

io_backends!(
    /// The runtime API's overrides survive upgrades: a drained target stays drained and a
    /// weight override holds in the new process, and in the one after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn runtime_overrides_are_kept_across_upgrades(io: IoBackend) {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument only.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
        let ((a, a_served), (b, _)) = (counting_backend().await, counting_backend().await);
        let dir = binary::TempDir::new("overrides-upgrade");
        const TOKEN: &str = "upgrade-overrides-token-41d9";
        let token = dir.0.join("admin.token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let pid_file = dir.0.join("ringlb.pid");
        let extra = format!("pid_file = {:?}", pid_file.display().to_string());
        let text = binary::toml(io, &[a, b], &extra).replace(
            "[admin]\n",
            &format!("[admin]\ntoken_file = {:?}\n", token.display().to_string()),
        );
        let mut first = tokio::task::block_in_place(|| binary::Process::start(&text, None));
        let admin = common::admin_http::admin_addr(&first);
        let proxy = first.addr;
        assert_eq!(set_override(admin, TOKEN, a, "state", "drain").await, 200);
        assert_eq!(set_override(admin, TOKEN, b, "weight", "5").await, 200);

        let mut pid = read_pid(&pid_file).unwrap();
        for upgrade in 1..=2 {
            signal(pid, "USR2");
            let next = tokio::task::block_in_place(|| wait_for_new_pid(&pid_file, pid));
            // The old process answers no more once it has exited: what follows is the new one's.
            if upgrade == 1 {
                let status = tokio::task::block_in_place(|| first.wait_exit(DEADLINE));
                assert!(status.success(), "the first process exited with {status}");
            } else {
                assert_eq!(tokio::task::block_in_place(|| wait_exit_code(pid)), 0);
            }
            pid = next;
            let (a_status, b_status) = (status_of(admin, a).await, status_of(admin, b).await);
            assert_eq!(a_status["state"], "drain", "upgrade {upgrade}: {a_status}");
            assert_eq!(
                b_status["weight_override"], 5,
                "upgrade {upgrade}: {b_status}"
            );
            let before = a_served.load(Relaxed);
            for _ in 0..10 {
                assert!(request(proxy).await, "upgrade {upgrade}: a request failed");
            }
            assert_eq!(
                a_served.load(Relaxed),
                before,
                "upgrade {upgrade}: the drained target got traffic"
            );
        }
        assert_eq!(
            first.log_lines("runtime overrides taken over"),
            4,
            "two targets, two upgrades (the successors' logs go to the same stderr)"
        );
        signal(pid, "TERM");
        assert_eq!(tokio::task::block_in_place(|| wait_exit_code(pid)), 0);
    }
);
