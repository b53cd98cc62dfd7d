//! A network namespace of a test's own, with `lo` up and a narrowed ephemeral port range, and a
//! tokio runtime inside it: for the tests that run out of local ports
//! (`tests/source_ports.rs`, `tests/fifty_thousand.rs`).
//!
//! The ephemeral port space (`net.ipv4.ip_local_port_range` and the ports in use) is per
//! network namespace, so a narrowed range there is the test's alone and leaves the host's
//! untouched, and every process started inside shares it.

use std::{fs::File, io, os::fd::AsRawFd, process::Command, time::Duration};

use tokio::time::timeout;

/// A network namespace of this test's, with `lo` up and the narrowed port range; deleted when
/// dropped (whether the test passed or not).
pub struct Netns {
    name: String,
}

impl Netns {
    /// A namespace whose ephemeral ports are `range` (first and last, inclusive); `None`,
    /// after saying why, where namespaces cannot be made (not root, no `ip`).
    pub fn create(tag: &str, range: (u16, u16)) -> Option<Netns> {
        let name = format!("ringlb-test-{tag}-{}", std::process::id());
        match Command::new("ip").args(["netns", "add", &name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!(
                    "cannot create a network namespace ({}); skipping",
                    why.trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("cannot run `ip netns add` ({e}); skipping");
                return None;
            }
        }
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        let range = format!("net.ipv4.ip_local_port_range={} {}", range.0, range.1);
        ns.exec(&["sysctl", "-q", "-w", &range]);
        Some(ns)
    }

    /// Runs `command` inside the namespace (`ip netns exec`); it must succeed.
    pub fn exec(&self, command: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(command)
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "{command:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `body` on a tokio runtime whose threads are all inside the namespace, as is every
    /// process they spawn: a fresh thread enters it first, and the runtime is built there. A
    /// panic in `body` is this test's, after the runtime (and the processes it owns) is gone.
    pub fn run<F: std::future::Future<Output = ()>>(&self, body: impl FnOnce() -> F + Send) {
        std::thread::scope(|scope| {
            let inside = scope.spawn(|| {
                self.enter();
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    timeout(Duration::from_secs(180), body())
                        .await
                        .expect("the test finishes within 3 minutes")
                });
            });
            if let Err(panic) = inside.join() {
                std::panic::resume_unwind(panic);
            }
        });
    }

    /// Moves the calling thread (only) into the namespace.
    fn enter(&self) {
        let handle = File::open(format!("/run/netns/{}", self.name)).expect("open the namespace");
        // SAFETY: setns(2) reads a descriptor that stays open for the call and a flag; it
        // changes only the calling thread's network namespace, touching no memory of ours.
        let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}
