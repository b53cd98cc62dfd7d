//! Hot reload on SIGHUP: targets added and removed for new connections only, open transfers
//! untouched, an invalid file rejected with the old configuration still serving.

mod common;

use std::net::SocketAddr;

use common::{binary::*, *};
use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A backend that names itself with one byte on connect, then echoes (half-close aware);
/// health probes get 200.
async fn named_echo(name: u8) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if answered_health_probe(&mut s, &buf[..n]).await {
                    return;
                }
                if s.write_all(&[name]).await.is_err() || s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// Connects, sends one byte, returns the stream and the backend's name.
async fn open(proxy: SocketAddr) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(b".").await.unwrap();
    let mut two = [0u8; 2];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut two))
        .await
        .expect("answer through the proxy")
        .unwrap();
    (s, two[0])
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sighup_adds_and_removes_targets_for_new_connections_only(io: IoBackend) {
        let x = named_echo(b'X').await;
        let y = named_echo(b'Y').await;
        let ringlb = Process::start(&toml(io, &[x], ""), None);
        let proxy = ringlb.addr;

        // A transfer to X is open when X is removed from the configuration.
        let (mut kept, name) = open(proxy).await;
        assert_eq!(name, b'X');
        // A worker setting changes too: it applies live, no upgrade (tests/upgrade.rs has
        // the keys that need new sockets or threads).
        std::fs::write(&ringlb.config_path, toml(io, &[y], "retries = 3")).unwrap();
        ringlb.signal("HUP");
        tokio::task::block_in_place(|| ringlb.wait_log("configuration reloaded", 2));
        assert_eq!(
            ringlb.log_lines("needs new sockets or threads"),
            0,
            "a worker setting applies in place"
        );

        // New connections go to Y once its first probe passed, and never to X again.
        tokio::time::timeout(DEADLINE, async {
            loop {
                if open(proxy).await.1 == b'Y' {
                    break;
                }
            }
        })
        .await
        .expect("the added target receives traffic");
        for _ in 0..10 {
            assert_eq!(
                open(proxy).await.1,
                b'Y',
                "the removed target got a new connection"
            );
        }

        // The transfer opened before the reload completes intact.
        let data = random_bytes(2 * 1024 * 1024, 5);
        let (mut rd, mut wr) = kept.split();
        let write = async {
            wr.write_all(&data).await.unwrap();
            wr.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let read = rd.read_to_end(&mut back);
        let (_, r) = tokio::join!(write, read);
        r.unwrap();
        assert!(
            back == data,
            "the open transfer to the removed target completed intact"
        );

        // An invalid file is rejected; the running configuration keeps serving.
        std::fs::write(&ringlb.config_path, "listen = \n").unwrap();
        ringlb.signal("HUP");
        tokio::task::block_in_place(|| ringlb.wait_log("configuration rejected", 1));
        assert_eq!(open(proxy).await.1, b'Y');
    }
);
