//! The admin API under a flood of idle connections, against the real binary: the container
//! health check (`ringlb --probe-admin`) keeps passing, and `/healthz` answers even with more
//! idle connections than the admin listener has slots.

mod common;

use std::time::Duration;

use ringlb::config::IoBackend;

use common::{
    admin_http::{admin_addr, get, probe_admin},
    binary::{toml, Process},
    flood::{descriptors_for, Flood},
    *,
};

/// A config for `ringlb` on `io` in front of `backend` whose admin API listens on a port known
/// in advance (the probe reads it from the file, so 0 will not do).
fn config_with_admin_port(io: IoBackend, backend: std::net::SocketAddr) -> String {
    let admin = dead_addr();
    let text = toml(io, &[backend], "").replace(
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
        &format!("[admin]\nlisten = \"{admin}\"\n"),
    );
    assert!(text.contains(&admin.to_string()), "{text}");
    text
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probe_admin_passes_ten_times_in_ten_under_200_idle_connections(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let ringlb = Process::start(&config_with_admin_port(io, echo.addr), None);
        let flood = Flood::start(admin_addr(&ringlb), 200);
        flood.wait_opened(200).await;
        for attempt in 1..=10 {
            let path = ringlb.config_path.clone();
            let code = tokio::task::spawn_blocking(move || probe_admin(&path))
                .await
                .unwrap();
            assert_eq!(code, Some(0), "probe {attempt} of 10 under the flood");
        }
        // It was a flood: 200 idle connections were open at once.
        flood.wait_open(200).await;
        drop(flood);
        let (status, _) = get(admin_addr(&ringlb), "/healthz").await;
        assert_eq!(status, 200);
    }
);

/// A flood past the cap makes ringlb's admin thread accept, evict and accept again as fast as
/// the machine goes. Two at once (this test on both backends) take the CPU from each other's
/// admin threads, which then evict the test's own connections before reading their requests
/// (seen on 2 cores): one at a time, as when the backends ran in separate passes.
static ONE_FLOOD_PAST_THE_CAP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn healthz_answers_with_more_idle_connections_than_slots(io: IoBackend) {
        let _one = ONE_FLOOD_PAST_THE_CAP.lock().await;
        let flood_size = ringlb::admin::MAX_CLIENTS + 100;
        if !descriptors_for(flood_size as u64) {
            eprintln!("cannot open {flood_size} descriptors in this process; skipping");
            return;
        }
        let echo = EchoBackend::start().await;
        let ringlb = Process::start(&toml(io, &[echo.addr], ""), None);
        let admin = admin_addr(&ringlb);
        let flood = Flood::start(admin, flood_size);
        // ringlb says when it had to close an idle connection to make room: the cap was reached.
        tokio::task::block_in_place(|| ringlb.wait_log("admin connections at the cap", 1));
        for attempt in 1..=5 {
            let (status, body) = get(admin, "/healthz").await;
            assert_eq!((status, body.as_str()), (200, "ok\n"), "request {attempt}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            flood.opened() > flood_size as u64,
            "idle connections were closed and reopened"
        );
    }
);
