//! `loadtest replica`: one replica alone, for compose files, containers and manual tests.
//!
//! Owns the standalone process: its runtime, its startup line and its signal handling. Never
//! exits on its own; SIGINT or SIGTERM stop it.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use super::Replica;

/// Serves on `listen` until SIGINT or SIGTERM.
pub fn serve_until_signal(listen: SocketAddr, name: &str, threads: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("replica")
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let replica = Replica::bind(listen, name)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        eprintln!("replica {name} listening on {}", replica.local_addr());
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        eprintln!(
            "replica {name} stopping after {} requests",
            replica.served()
        );
        Ok(())
    })
}
