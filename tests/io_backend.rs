//! Choosing the I/O backend: the real binary in a child process whose io_uring system calls a
//! seccomp filter refuses, as Docker's default profile does. `auto` falls back to epoll and
//! serves; `io_uring` refuses to start with the clear message.
//!
//! Not through `io_backends!`: each test here sets `io_backend` itself (`auto` under the filter
//! and where io_uring works, `io_uring` under the filter), since the choice is what it tests.

mod common;

use std::{os::unix::process::CommandExt, process::Command};

use common::{binary::*, *};
use ringlb::config::{IoBackend, RelayMode};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

/// A seccomp program under which `io_uring_setup`, `io_uring_enter` and `io_uring_register`
/// fail with `EPERM` and every other system call is allowed.
fn io_uring_blocked() -> BpfProgram {
    let blocked = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ];
    let arch = std::env::consts::ARCH
        .try_into()
        .expect("seccompiler supports this architecture (x86_64, aarch64, riscv64)");
    SeccompFilter::new(
        blocked.into_iter().map(|call| (call, vec![])).collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .expect("the filter compiles")
}

/// Installs [`io_uring_blocked`] in the child between fork and exec; it stays across exec.
fn block_io_uring(command: &mut Command) {
    let program = io_uring_blocked();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // work is allowed: it makes two system calls (prctl, seccomp) on a program compiled in the
    // parent, and allocates nothing on success.
    unsafe {
        command.pre_exec(move || {
            seccompiler::apply_filter(&program).map_err(|_| std::io::Error::last_os_error())
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_epoll_and_serves_where_io_uring_is_blocked() {
    let a = NamedBackend::start("A").await;
    let ringlb = Process::start_with(&toml(IoBackend::Auto, &[a.addr], ""), None, block_io_uring);
    assert_eq!(
        ringlb.log_lines("io_uring unavailable (Operation not permitted"),
        1,
        "the fallback is logged once, with the reason: {:?}",
        ringlb.log.lock().unwrap()
    );
    assert_eq!(ringlb.log_lines("using the epoll backend"), 1);
    assert_eq!(ringlb.log_lines("io_backend=epoll"), 1);
    assert_eq!(body(&get(ringlb.addr).await), "A");
    assert_eq!(body(&get(ringlb.addr).await), "A");
}

#[test]
fn io_uring_refuses_to_start_where_it_is_blocked() {
    let a = dead_addr();
    let dir = TempDir::new("uring-blocked");
    let path = dir.0.join("ringlb.toml");
    std::fs::write(&path, toml(IoBackend::IoUring, &[a], "")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringlb"));
    command.arg("--config").arg(&path);
    block_io_uring(&mut command);
    let out = command.output().expect("run ringlb");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("io_uring is not available"), "{stderr}");
    assert!(stderr.contains("io_backend = \"auto\""), "{stderr}");
    assert!(!stderr.contains("ringlb started"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_runs_io_uring_where_it_works() {
    let a = NamedBackend::start("A").await;
    let proxy = Proxy::start(&config(IoBackend::Auto, &[a.addr], RelayMode::Copy));
    assert_eq!(proxy.server().io_backend(), "io_uring");
    proxy.wait_healthy(1).await;
    assert_eq!(body(&get(proxy.addr).await), "A");
}
