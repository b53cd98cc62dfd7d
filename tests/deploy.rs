//! The deployment files cannot be run here (no Docker engine, no cluster), so these checks keep
//! them consistent with the code: every config they ship validates, the seccomp profile allows
//! io_uring, and the grace periods leave room for the drain.

use std::{path::Path, time::Duration};

use ringlb::Config;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn parse(text: &str, path: &str) -> Config {
    Config::parse(text, Path::new(path)).unwrap_or_else(|e| panic!("{e}"))
}

/// The TOML embedded in the Kubernetes ConfigMap.
fn configmap_toml() -> String {
    let yaml = read("deploy/kubernetes/ringlb-configmap.yaml");
    let (_, block) = yaml
        .split_once("  ringlb.toml: |\n")
        .expect("a ringlb.toml key");
    block
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The integer after `key:` in `text`.
fn yaml_number(text: &str, key: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no {key}"));
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn the_container_config_is_the_seed_with_a_reachable_admin_listener() {
    let container = parse(&read("deploy/ringlb.container.toml"), "container");
    let seed = parse(&read("config/ringlb.toml"), "seed");
    assert_eq!(container.live.targets, seed.live.targets);
    assert!(container.startup.admin.enabled);
    assert_eq!(
        container.startup.admin.listen,
        "0.0.0.0:9100".parse().unwrap()
    );
    assert_eq!(container.startup.listen.port(), 80);

    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("COPY deploy/ringlb.container.toml /etc/ringlb/ringlb.toml"));
    assert!(dockerfile.contains("EXPOSE 80 9100"));
    assert!(dockerfile.contains("\"--probe-admin\", \"--config\", \"/etc/ringlb/ringlb.toml\""));
    assert!(dockerfile.contains("STOPSIGNAL SIGTERM"));
    assert!(dockerfile.contains("cargo build --release --locked"));
}

#[test]
fn the_seccomp_profile_allows_io_uring() {
    let profile: serde_json::Value =
        serde_json::from_str(&read("deploy/seccomp-io_uring.json")).expect("valid JSON");
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let allowed: Vec<&str> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["action"] == "SCMP_ACT_ALLOW" && rule.get("includes").is_none())
        .flat_map(|rule| rule["names"].as_array().unwrap())
        .map(|name| name.as_str().unwrap())
        .collect();
    for syscall in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
        assert!(allowed.contains(&syscall), "{syscall} not allowed");
    }
    // Still Docker's profile: the everyday syscalls are there, the dangerous ones are not.
    for syscall in ["accept4", "epoll_wait", "splice", "eventfd2"] {
        assert!(allowed.contains(&syscall), "{syscall} not allowed");
    }
    assert!(!allowed.contains(&"kexec_load"));

    let compose = read("docker-compose.yml");
    assert!(compose.contains("security_opt: [\"seccomp=deploy/seccomp-io_uring.json\"]"));
}

#[test]
fn grace_periods_cover_the_drain() {
    let k8s = parse(&configmap_toml(), "configmap");
    assert_eq!(k8s.startup.admin.listen, "0.0.0.0:9100".parse().unwrap());
    assert_eq!(k8s.live.targets[0].address.host, "http-api");
    let deployment = read("deploy/kubernetes/ringlb-deployment.yaml");
    let grace = yaml_number(&deployment, "terminationGracePeriodSeconds:");
    let pause = yaml_number(&deployment, "seconds:");
    assert!(
        Duration::from_secs(grace) > Duration::from_secs(pause) + k8s.live.traffic.drain_timeout,
        "grace {grace}s <= preStop {pause}s + drain {:?}",
        k8s.live.traffic.drain_timeout
    );
    assert!(deployment.contains("localhostProfile: ringlb/seccomp-io_uring.json"));

    let compose = read("docker-compose.yml");
    let container = parse(&read("deploy/ringlb.container.toml"), "container");
    let stop = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("stop_grace_period: "))
        .expect("stop_grace_period");
    let stop = humantime::parse_duration(stop).unwrap();
    assert!(stop > container.live.traffic.drain_timeout, "{stop:?}");
}

/// The systemd unit follows an upgrade (the new process becomes the main one), reloads with
/// SIGHUP, and leaves room for the drain.
#[test]
fn the_systemd_unit_follows_upgrades_and_covers_the_drain() {
    let unit = read("deploy/ringlb.service");
    for line in [
        "Type=notify",
        "NotifyAccess=all",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "PIDFile=/run/ringlb/ringlb.pid",
        "KillMode=mixed",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("a stop timeout")
        .parse()
        .unwrap();
    let drain = Config::new(vec![ringlb::config::Target::http("a", 1, "/")])
        .live
        .traffic
        .drain_timeout;
    assert!(Duration::from_secs(stop) > drain, "{stop} s < the drain");
}
