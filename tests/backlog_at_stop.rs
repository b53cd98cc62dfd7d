//! A client whose handshake the kernel completed before ringlb stopped is served, never left in
//! the listen backlog of a socket another process still holds.
//!
//! Why this matters: during a binary upgrade the old and the new process hold the same listening
//! sockets. An io_uring multishot accept waits on the socket as an *exclusive* waiter, so the
//! kernel wakes one waiter per arriving client; a wake-up taken by the old process's accept while
//! it is being cancelled accepts nobody, and the new process is never told. The client then sits
//! in the backlog until another client arrives on that socket (in an upgrade test, found under
//! load: 4 of 52 runs hung for the full deadline). So a stopping worker accepts whatever its
//! listener's backlog holds before closing it.
//!
//! Here the test itself plays the other holder (it binds the listener and hands ringlb a copy,
//! `RINGLB_LISTEN_FDS`, the upgrade's own path) and never accepts, and the client is queued
//! deterministically: `max_connections = 1`, with one client open, keeps ringlb from accepting
//! a second.

mod common;

use std::{
    net::SocketAddr,
    os::{fd::AsRawFd, unix::process::CommandExt},
    time::Duration,
};

use common::{binary::Process, io_backends, EchoBackend, DEADLINE};
use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn toml(io: IoBackend, listen: SocketAddr, backend: SocketAddr) -> String {
    format!(
        "io_backend = \"{io}\"\nlisten = \"{listen}\"\nworkers = 1\nmax_connections = 1\n\
         drain_timeout = \"20s\"\n[health_check]\ninterval = \"100ms\"\ntimeout = \"500ms\"\n\
         [admin]\nenabled = false\n[[targets]]\naddress = \"{backend}\"\n\
         health_check_endpoint = \"/healthz\"\n"
    )
}

/// Sends `line` and reads its echo back (bounded).
async fn echoed(stream: &mut TcpStream, line: &[u8]) -> Vec<u8> {
    stream.write_all(line).await.unwrap();
    let mut got = vec![0u8; line.len()];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut got))
        .await
        .expect("the echo comes back within the deadline")
        .unwrap();
    got
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_queued_when_ringlb_stops_is_served_not_stranded(io: IoBackend) {
        let backend = EchoBackend::start().await;
        // Bound here and kept open for the whole test: the holder that never accepts.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fd = listener.as_raw_fd();
        let mut process = Process::start_with(&toml(io, addr, backend.addr), None, |cmd| {
            cmd.env("RINGLB_LISTEN_FDS", format!("listen:{fd}"));
            // SAFETY: runs in the forked child before exec and only calls fcntl, which is
            // async-signal-safe; it lets this one descriptor survive the exec.
            unsafe {
                cmd.pre_exec(move || match libc::fcntl(fd, libc::F_SETFD, 0) {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                });
            }
        });
        process.wait_log("Healthy targets: 1", 1);

        // The one connection the cap allows, served and held open.
        let mut first = TcpStream::connect(addr).await.unwrap();
        assert_eq!(echoed(&mut first, b"first\n").await, b"first\n");
        // The kernel completes this handshake; ringlb, at its cap, leaves it in the backlog.
        let mut queued = TcpStream::connect(addr).await.unwrap();
        queued.write_all(b"queued\n").await.unwrap();

        // Graceful stop: `first` keeps it draining, and the listener stays alive in this
        // process, as it would in a successor's.
        process.signal("TERM");
        let mut got = vec![0u8; 7];
        tokio::time::timeout(DEADLINE, queued.read_exact(&mut got))
            .await
            .expect("the client queued at the stop is served, not stranded in the backlog")
            .unwrap();
        assert_eq!(got, b"queued\n");
        assert_eq!(echoed(&mut first, b"again\n").await, b"again\n");

        drop((first, queued));
        assert!(process.wait_exit(Duration::from_secs(10)).success());
        drop(listener);
    }
);
