//! An attacker on the admin port: many TCP connections that send nothing, each reopened as
//! soon as ringlb closes it, so the same number stays open however ringlb defends itself.

use std::{net::SocketAddr, time::Duration};

use tokio::{io::AsyncReadExt, net::TcpStream, sync::watch, task::JoinSet};

use super::DEADLINE;

/// A running flood; its connections close when it is dropped (with its tasks).
pub struct Flood {
    tasks: JoinSet<()>,
    /// Connections open now.
    open: watch::Receiver<usize>,
    /// Connections opened so far.
    opened: watch::Receiver<u64>,
}

impl Flood {
    /// Keeps `n` silent connections to `addr` open.
    pub fn start(addr: SocketAddr, n: usize) -> Flood {
        let (open_tx, open) = watch::channel(0usize);
        let (opened_tx, opened) = watch::channel(0u64);
        let mut tasks = JoinSet::new();
        for _ in 0..n {
            let (open_tx, opened_tx) = (open_tx.clone(), opened_tx.clone());
            tasks.spawn(async move {
                loop {
                    let Ok(mut stream) = TcpStream::connect(addr).await else {
                        // Refused or out of ports: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    open_tx.send_modify(|n| *n += 1);
                    opened_tx.send_modify(|n| *n += 1);
                    // Wait for ringlb to close it (EOF or reset), then come back.
                    let mut buf = [0u8; 256];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                    open_tx.send_modify(|n| *n -= 1);
                }
            });
        }
        Flood {
            tasks,
            open,
            opened,
        }
    }

    /// Waits (bounded) until `n` connections were open at the same time.
    pub async fn wait_open(&self, n: usize) {
        let mut open = self.open.clone();
        tokio::time::timeout(DEADLINE, open.wait_for(|&open| open >= n))
            .await
            .unwrap_or_else(|_| panic!("never {n} flood connections open at once"))
            .unwrap();
    }

    /// Waits (bounded) until `n` connections were opened, reopened ones included.
    pub async fn wait_opened(&self, n: u64) {
        let mut opened = self.opened.clone();
        tokio::time::timeout(DEADLINE, opened.wait_for(|&opened| opened >= n))
            .await
            .unwrap_or_else(|_| panic!("never {n} flood connections opened"))
            .unwrap();
    }

    /// Connections opened so far (reopened ones included).
    pub fn opened(&self) -> u64 {
        *self.opened.borrow()
    }
}

/// Whether this process may open `n` more descriptors, raising its soft limit to the hard one
/// (with `prlimit`) if need be.
pub fn descriptors_for(n: u64) -> bool {
    let soft_and_hard = || -> Option<(u64, u64)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut numbers = line.split_whitespace().filter_map(|w| w.parse().ok());
        Some((numbers.next()?, numbers.next().unwrap_or(u64::MAX)))
    };
    let Some((soft, hard)) = soft_and_hard() else {
        return false;
    };
    let needed = n + 256;
    if soft >= needed {
        return true;
    }
    let _ = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .status();
    soft_and_hard().is_some_and(|(soft, _)| soft >= needed)
}
