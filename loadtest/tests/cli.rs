//! The `loadtest` binary end to end: short runs, the files they leave, failing paths, external
//! targets, `loadtest replica` and `loadtest compare` exit codes.

use std::{
    fs,
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use loadtest::{process::find_program, recorder::histogram, report::Distribution};

const BIN: &str = env!("CARGO_BIN_EXE_loadtest");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadtest-cli-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary with a short, light workload plus `args`.
fn run_short(out: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args([
            "--smoke",
            "--rate",
            "1000",
            "--connections",
            "8",
            "--timeout",
            "5s",
            "--no-build",
            "--out",
        ])
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_short_direct_run_writes_every_file() {
    let out = temp_dir("direct");
    let output = run_short(&out, &["--paths", "direct"]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("direct") && stdout.contains("p99.9"),
        "{stdout}"
    );
    for file in ["direct.hgrm", "direct.hlog", "summary.json", "latency.svg"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let dist = Distribution::parse(&fs::read_to_string(out.join("direct.hgrm")).unwrap()).unwrap();
    assert!(dist.total_count > 500, "only {} samples", dist.total_count);
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["paths"][0]["name"], "direct");
    assert_eq!(
        summary["paths"][0]["latency_us"]["p99"],
        dist.value_at(0.99)
    );
    assert_eq!(summary["paths"][0]["errors"], 0);
    assert!(summary["paths"][0]["kept_rate"].as_bool().unwrap());
    let _ = fs::remove_dir_all(out);
}

#[test]
fn a_ringlb_that_exits_fails_its_path_quickly_and_the_rest_still_runs() {
    let out = temp_dir("ringlb-exits");
    let started = Instant::now();
    let output = run_short(
        &out,
        &["--paths", "direct,ringlb", "--ringlb", "/bin/false"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let all = text(&output);
    assert!(
        all.contains("ringlb exited before accepting connections"),
        "{all}"
    );
    assert!(all.contains("FAILED ringlb"), "{all}");
    assert!(out.join("direct.hgrm").is_file());
    assert!(started.elapsed() < Duration::from_secs(15));
    let _ = fs::remove_dir_all(out);
}

#[test]
fn a_missing_ringlb_names_the_problem() {
    let out = temp_dir("ringlb-missing");
    let output = run_short(
        &out,
        &["--paths", "ringlb", "--ringlb", "/nonexistent/ringlb"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("/nonexistent/ringlb: no such file"),
        "{}",
        text(&output)
    );
    let _ = fs::remove_dir_all(out);
}

#[test]
fn haproxy_and_nginx_paths_run_when_installed() {
    let installed: Vec<&str> = ["haproxy", "nginx"]
        .into_iter()
        .filter(|p| find_program(p).is_some())
        .collect();
    if installed.is_empty() {
        eprintln!("neither haproxy nor nginx is installed; nothing to test");
        return;
    }
    let out = temp_dir("proxies");
    let paths = format!("direct,{}", installed.join(","));
    let output = run_short(&out, &["--paths", &paths]);
    assert!(output.status.success(), "{}", text(&output));
    for proxy in &installed {
        let dist =
            Distribution::parse(&fs::read_to_string(out.join(format!("{proxy}.hgrm"))).unwrap())
                .unwrap();
        assert!(
            dist.total_count > 500,
            "{proxy}: only {} samples",
            dist.total_count
        );
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
    for path in summary["paths"].as_array().unwrap() {
        assert_eq!(path["errors"], 0, "{path}");
        // Round robin spreads a proxied path over all three replicas.
        if path["name"] != "direct" {
            let shares: Vec<u64> = path["replica_requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert!(
                shares.iter().all(|&n| n > 100),
                "{}: {shares:?}",
                path["name"]
            );
        }
    }
    let _ = fs::remove_dir_all(out);
}

fn free_addr() -> SocketAddr {
    loadtest::ports::free_loopback_addr().unwrap()
}

fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn replica_subcommand_serves_and_stops_on_sigterm_and_targets_load_it() {
    let addr = free_addr();
    let mut replica = Command::new(BIN)
        .args(["replica", "--listen", &addr.to_string(), "--name", "solo"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(addr);
    let out = temp_dir("target");
    let output = run_short(&out, &["--target", &format!("direct={addr}")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(out.join("direct.hgrm").is_file());
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["settings"]["replicas"], 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(replica.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = replica.wait().unwrap();
    assert!(status.success(), "replica exited with {status}");
    let _ = fs::remove_dir_all(out);
}

fn write_hgrm(dir: &std::path::Path, name: &str, scale: u64) -> PathBuf {
    let mut h = histogram();
    for i in 0..5000u64 {
        h.record(scale * (50 + i % 200)).unwrap();
    }
    let (buckets, sub_buckets) = loadtest::report::hgrm::layout(&h);
    let path = dir.join(name);
    let mut file = fs::File::create(&path).unwrap();
    Distribution::of(&h)
        .write(buckets, sub_buckets, &mut file)
        .unwrap();
    path
}

#[test]
fn compare_passes_an_equal_run_and_flags_a_regression() {
    let dir = temp_dir("compare");
    let a = write_hgrm(&dir, "a.hgrm", 1);
    let same = write_hgrm(&dir, "same.hgrm", 1);
    let slow = write_hgrm(&dir, "slow.hgrm", 2);
    let compare = |b: &PathBuf, extra: &[&str]| {
        Command::new(BIN)
            .arg("compare")
            .arg(&a)
            .arg(b)
            .args(extra)
            .output()
            .unwrap()
    };
    let equal = compare(&same, &[]);
    assert_eq!(equal.status.code(), Some(0), "{}", text(&equal));
    assert!(String::from_utf8_lossy(&equal.stdout).contains("PASS"));
    let worse = compare(&slow, &[]);
    assert_eq!(worse.status.code(), Some(1), "{}", text(&worse));
    assert!(String::from_utf8_lossy(&worse.stdout).contains("REGRESSION"));
    let tolerated = compare(&slow, &["--tolerance", "150%"]);
    assert_eq!(tolerated.status.code(), Some(0), "{}", text(&tolerated));
    let missing = compare(&dir.join("nope.hgrm"), &[]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let _ = fs::remove_dir_all(dir);
}
