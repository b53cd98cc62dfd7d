//! `ringlb --check`: the real binary validating configuration files.
//!
//! Owns the command-line contract of configuration checking (exit codes, what goes to stdout and
//! stderr). Never starts a balancer and never needs the network or DNS.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicUsize, Ordering},
};

/// A configuration file under the temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ringlb-config-cli-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("write temp config");
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `ringlb --check --config path`.
fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("--check")
        .arg("--config")
        .arg(path)
        .output()
        .expect("run ringlb")
}

/// Asserts that `--check` rejects `text` with exit code 2 and a message on stderr naming the
/// file, `key` and `problem`.
fn assert_rejected(text: &str, key: &str, problem: &str) {
    let file = TempConfig::new(text);
    let output = check(&file.0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{text:?}: stdout is not empty");
    for needle in [&file.0.display().to_string(), key, problem] {
        assert!(
            stderr.contains(needle),
            "{text:?}: {stderr:?} lacks {needle:?}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

const TARGET: &str = "[[targets]]\naddress = \"a:1\"\nhealth_check_endpoint = \"/h\"\n";

#[test]
fn shipped_config_prints_the_effective_configuration() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringlb.toml");
    let output = check(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "listen = \"0.0.0.0:80\"",
        "relay = \"auto\"",
        "interval = \"5s\"",
        "timeout = \"1s\"",
        "address = \"http-api-2:8001\"",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing in:\n{stdout}"
        );
    }
}

/// `ringlb --check | head -1`: the reader goes away before ringlb writes. That is the reader's
/// choice, not a failure, and must never be a panic (exit code 101).
#[test]
fn closed_stdout_is_not_a_panic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ringlb.toml");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // every write to `writer` now fails with EPIPE
    let output = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn printed_configuration_checks_again() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let first = check(&path);
    assert_eq!(first.status.code(), Some(0));
    let file = TempConfig::new(&String::from_utf8_lossy(&first.stdout));
    let second = check(&file.0);
    assert_eq!(second.status.code(), Some(0));
    let body = |out: &Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&first), body(&second));
}

#[test]
fn targets_need_no_dns() {
    let text =
        "[[targets]]\naddress = \"no-such-host.invalid:8001\"\nhealth_check_endpoint = \"/\"";
    let file = TempConfig::new(text);
    assert_eq!(check(&file.0).status.code(), Some(0));
}

#[test]
fn syntax_error() {
    assert_rejected("[[targets]\n", "<file>", "line 1");
}

#[test]
fn unknown_keys() {
    assert_rejected(
        &format!("lissen = \"0.0.0.0:80\"\n{TARGET}"),
        "<file>",
        "lissen",
    );
    assert_rejected(
        &format!("[health_check]\nrize = 2\n{TARGET}"),
        "health_check",
        "rize",
    );
    assert_rejected("[[targets]]\nadress = \"a:1\"\n", "targets[0]", "adress");
}

#[test]
fn missing_or_empty_targets() {
    assert_rejected("listen = \"0.0.0.0:80\"\n", "targets", "missing");
    assert_rejected("targets = []\n", "targets", "empty");
}

#[test]
fn bad_address() {
    let text = "[[targets]]\naddress = \"http-api-1\"\nhealth_check_endpoint = \"/h\"\n";
    assert_rejected(text, "targets[0].address", "has no port");
    let text = format!("{TARGET}[[targets]]\naddress = \"a:70000\"\nhealth_check_endpoint = \"/\"");
    assert_rejected(&text, "targets[1].address", "above 65535");
}

#[test]
fn duplicate_address() {
    assert_rejected(
        &format!("{TARGET}{TARGET}"),
        "targets[1].address",
        "same target",
    );
}

#[test]
fn bad_endpoint() {
    let text = "[[targets]]\naddress = \"a:1\"\nhealth_check_endpoint = \"healthz\"\n";
    assert_rejected(text, "targets[0].health_check_endpoint", "start with '/'");
}

#[test]
fn bad_listen() {
    assert_rejected(
        &format!("listen = \"localhost:80\"\n{TARGET}"),
        "listen",
        "localhost:80",
    );
}

#[test]
fn bad_durations() {
    let zero = format!("[health_check]\ntimeout = \"0s\"\n{TARGET}");
    assert_rejected(&zero, "health_check.timeout", "is zero");
    let unitless = format!("[health_check]\ninterval = \"5\"\n{TARGET}");
    assert_rejected(&unitless, "health_check.interval", "not a duration");
}

#[test]
fn bad_counts() {
    assert_rejected(
        &format!("[health_check]\nrise = 0\n{TARGET}"),
        "health_check.rise",
        "too small",
    );
    assert_rejected(
        &format!("[health_check]\nfall = 0\n{TARGET}"),
        "health_check.fall",
        "too small",
    );
}

#[test]
fn unknown_relay() {
    assert_rejected(
        &format!("relay = \"zerocopy\"\n{TARGET}"),
        "relay",
        "zerocopy",
    );
}

#[test]
fn wrong_types() {
    assert_rejected(
        &format!("workers = \"4\"\n{TARGET}"),
        "workers",
        "not an integer",
    );
    assert_rejected(
        &format!("pin_workers = 1\n{TARGET}"),
        "pin_workers",
        "not a boolean",
    );
}

#[test]
fn missing_file() {
    let path = std::env::temp_dir().join(format!("ringlb-no-such-{}.toml", std::process::id()));
    let output = check(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The services form: `--check` prints it back (no top-level `listen` or `[[targets]]`, every
/// pool and service resolved), the output checks again, and a pool no service uses is a
/// warning on stderr, never an error.
#[test]
fn services_form_prints_checks_again_and_warns_of_unused_pools() {
    let text = "[[pools]]\nname = \"web\"\n[[pools.targets]]\naddress = \"web-1:8001\"\n\
                health_check_endpoint = \"/healthz\"\n\
                [[pools]]\nname = \"spare\"\n[[pools.targets]]\naddress = \"spare-1:1\"\n\
                [[services]]\nname = \"https\"\nlisten = \"[::]:443\"\npool = \"web\"\n\
                [[services.routes]]\nsni = [\"*.example.com\"]\npool = \"web\"\n";
    let file = TempConfig::new(text);
    let output = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .env_remove("RUST_LOG")
        .arg("--check")
        .arg("--config")
        .arg(&file.0)
        .output()
        .expect("run ringlb");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("pool \"spare\" is used by no service"),
        "{stderr}"
    );
    for line in [
        "[[pools]]",
        "[[services]]",
        "[[services.routes]]",
        "balance = \"round_robin\"",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing in:\n{stdout}"
        );
    }
    assert!(
        !stdout.lines().any(|l| l.starts_with("listen = \"0.0.0.0")),
        "{stdout}"
    );
    let again = TempConfig::new(&stdout);
    let second = check(&again.0);
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&second.stdout)
            .lines()
            .skip(1)
            .collect::<Vec<_>>(),
        stdout.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn services_form_errors() {
    const POOL: &str = "[[pools]]\nname = \"p\"\n[[pools.targets]]\naddress = \"a:1\"\n";
    const SERVICE: &str = "[[services]]\nname = \"s\"\nlisten = \"127.0.0.1:1\"\npool = \"p\"\n";
    assert_rejected(&format!("{TARGET}{POOL}{SERVICE}"), "targets", "two forms");
    assert_rejected(POOL, "services", "missing");
    assert_rejected(
        &format!("{POOL}{}", SERVICE.replace("\"p\"", "\"q\"")),
        "services[0].pool",
        "\"q\" is not a pool",
    );
}
