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
        // The harness started the proxies, so it reads their CPU; direct has none.
        let has_cpu = path["cpu"]["total_us_per"].is_number();
        assert_eq!(has_cpu, path["name"] != "direct", "{path}");
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

/// A `loadtest replica` child on a free port, and its address.
fn spawn_replica() -> (std::process::Child, SocketAddr) {
    let addr = free_addr();
    let child = Command::new(BIN)
        .args(["replica", "--listen", &addr.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(addr);
    (child, addr)
}

fn stop(mut child: std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = child.wait();
}

fn summary_of(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_target_pid_gives_the_target_cpu_figures() {
    let (replica, addr) = spawn_replica();
    let out = temp_dir("target-pid");
    let output = run_short(
        &out,
        &[
            "--mode",
            "max",
            "--target",
            &format!("replica={addr}"),
            "--target-pid",
            &format!("replica={}", replica.id()),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("CPU/req"), "{stdout}");
    assert!(stdout.contains("honest efficiency figure"), "{stdout}");
    let cpu = &summary_of(&out)["paths"][0]["cpu"];
    assert_eq!(cpu["per"], "request", "{cpu}");
    assert_eq!(cpu["pids"][0], replica.id(), "{cpu}");
    let (user, system) = (
        cpu["user_s"].as_f64().unwrap(),
        cpu["system_s"].as_f64().unwrap(),
    );
    assert!(user + system > 0.0, "{cpu}");
    let per = cpu["total_us_per"].as_f64().unwrap();
    let requests = summary_of(&out)["paths"][0]["requests"].as_f64().unwrap();
    assert!(
        (per - (user + system) * 1e6 / requests).abs() < 1e-6 * per.max(1.0),
        "{cpu}"
    );
    stop(replica);
    let _ = fs::remove_dir_all(out);
}

#[test]
fn a_target_without_a_pid_has_no_cpu_figures_and_a_stray_pid_is_refused() {
    let (replica, addr) = spawn_replica();
    let out = temp_dir("target-no-pid");
    let output = run_short(&out, &["--target", &format!("replica={addr}")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(summary_of(&out)["paths"][0]["cpu"].is_null());
    let stray = run_short(
        &out,
        &[
            "--target",
            &format!("replica={addr}"),
            "--target-pid",
            "other=1",
        ],
    );
    assert_eq!(stray.status.code(), Some(2), "{}", text(&stray));
    assert!(text(&stray).contains("no --target is named other"));
    stop(replica);
    let _ = fs::remove_dir_all(out);
}

/// A run directory with `<name>.hgrm` and a summary.json giving it `cpu_us` per request.
fn run_dir(dir: &std::path::Path, name: &str, cpu_us: Option<f64>) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let hgrm = write_hgrm(dir, &format!("{name}.hgrm"), 1);
    let cpu = cpu_us.map(|t| {
        serde_json::json!({"per": "request", "total_us_per": t,
                           "user_us_per": t / 4.0, "system_us_per": t * 3.0 / 4.0})
    });
    let summary = serde_json::json!({"paths": [{"name": name, "cpu": cpu}]});
    fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    hgrm
}

#[test]
fn compare_shows_cpu_per_request_and_gates_it_when_asked() {
    let dir = temp_dir("compare-cpu");
    let a = run_dir(&dir.join("a"), "ringlb", Some(15.0));
    let b = run_dir(&dir.join("b"), "ringlb", Some(18.0));
    let none = run_dir(&dir.join("none"), "ringlb", None);
    let compare = |b: &PathBuf, extra: &[&str]| {
        Command::new(BIN)
            .arg("compare")
            .arg(&a)
            .arg(b)
            .args(extra)
            .output()
            .unwrap()
    };
    let shown = compare(&b, &[]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(
        stdout.contains("CPU/req") && stdout.contains("1.20x"),
        "{stdout}"
    );
    let gated = compare(&b, &["--cpu-tolerance", "10%"]);
    assert_eq!(gated.status.code(), Some(1), "{}", text(&gated));
    assert!(String::from_utf8_lossy(&gated.stdout).contains("REGRESSION"));
    let tolerated = compare(&b, &["--cpu-tolerance", "25%"]);
    assert_eq!(tolerated.status.code(), Some(0), "{}", text(&tolerated));
    let missing = compare(&none, &["--cpu-tolerance", "10%"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("no CPU figures"),
        "{}",
        text(&missing)
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_sweep_steps_up_and_draws_its_svg() {
    let (replica, addr) = spawn_replica();
    let out = temp_dir("sweep");
    let output = Command::new(BIN)
        .args([
            "--mode",
            "sweep",
            "--sweep-start",
            "200",
            "--sweep-max",
            "800",
        ])
        .args(["--duration", "300ms", "--warmup", "0s", "--rounds", "1"])
        .args([
            "--connections",
            "4",
            "--timeout",
            "5s",
            "--no-build",
            "--out",
        ])
        .arg(&out)
        .args(["--target", &format!("direct={addr}")])
        .args(["--target-pid", &format!("direct={}", replica.id())])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("offered") && stdout.contains("saturated"),
        "{stdout}"
    );
    let sweep = &summary_of(&out)["sweep"];
    assert_eq!(sweep["start"], 200.0);
    let steps = sweep["paths"][0]["steps"].as_array().unwrap();
    let offered: Vec<f64> = steps
        .iter()
        .map(|s| s["offered"].as_f64().unwrap())
        .collect();
    // A replica keeps 200 to 800 req/s easily, unless the machine is very busy.
    assert!(!offered.is_empty() && offered.len() <= 3, "{offered:?}");
    assert_eq!(offered[0], 200.0);
    for step in steps {
        assert!(step["latency_us"]["p99"].as_u64().unwrap() > 0, "{step}");
        assert!(step["cpu"]["total_us_per"].as_f64().is_some(), "{step}");
    }
    let svg = fs::read_to_string(out.join("sweep.svg")).unwrap();
    assert_eq!(svg.matches("<polyline class=\"p99\"").count(), 1);
    assert!(out.join("direct-200.hgrm").is_file());
    stop(replica);
    let _ = fs::remove_dir_all(out);
}

#[test]
fn idle_connections_are_held_through_every_path() {
    let mut paths = vec!["direct"];
    paths.extend(
        ["haproxy", "nginx"]
            .into_iter()
            .filter(|p| find_program(p).is_some()),
    );
    let out = temp_dir("idle");
    let output = Command::new(BIN)
        .args([
            "--mode",
            "idle",
            "--connections",
            "50",
            "--no-build",
            "--paths",
        ])
        .arg(paths.join(","))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("RSS/conn") && stdout.contains("MemAvailable"),
        "{stdout}"
    );
    let idle = &summary_of(&out)["idle"];
    assert_eq!(idle["connections"], 50);
    let measured = idle["paths"].as_array().unwrap();
    assert_eq!(measured.len(), paths.len(), "{idle}");
    for path in measured {
        assert_eq!(path["opened"], 50, "{path}");
        assert!(path["at_backends"].as_u64().unwrap() >= 40, "{path}");
        assert_eq!(path["request_after_ok"], true, "{path}");
        let proxied = path["name"] != "direct";
        assert_eq!(
            path["rss_per_connection_bytes"].is_number(),
            proxied,
            "{path}"
        );
        assert_eq!(path["after"]["threads"].is_number(), proxied, "{path}");
    }
    let _ = fs::remove_dir_all(out);
}
