//! ringlb as a path under test: the binary of this workspace, `workers` = workers.
//!
//! Owns finding the ringlb binary (next to the loadtest executable, so `cargo run --release -p
//! loadtest` uses `target/release/ringlb`), bringing it up to date when run by cargo, and its
//! config text and command line (`ringlb --config FILE`). Never benchmarks a binary it was not
//! pointed at: a missing binary is an error that names the `cargo build` to run.

use std::{
    ffi::OsString,
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use super::{backend_list, connection_limit, Proxy, Setup, Unavailable};

/// ringlb's default `max_connections`.
const RINGLB_MAX_CONNECTIONS: usize = 10_000;

/// The ringlb binary.
#[derive(Debug, Clone)]
pub struct Ringlb {
    binary: PathBuf,
    /// The `io_backend` written into the config, when forced.
    io_backend: Option<String>,
}

impl Ringlb {
    /// Uses `explicit` when given; otherwise the `ringlb` next to this executable, first rebuilt
    /// with the same profile when `build` is set and this process was started by cargo (so a
    /// stale binary is never measured).
    pub fn discover(explicit: Option<&Path>, build: bool) -> Result<Ringlb, Unavailable> {
        if let Some(path) = explicit {
            return match path.is_file() {
                true => Ok(Ringlb {
                    binary: path.to_owned(),
                    io_backend: None,
                }),
                false => Err(Unavailable::Broken(format!(
                    "--ringlb {}: no such file",
                    path.display()
                ))),
            };
        }
        let exe = std::env::current_exe()
            .map_err(|e| Unavailable::Broken(format!("cannot locate this executable: {e}")))?;
        let dir = exe.parent().unwrap_or(Path::new("."));
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("release");
        if let (true, Some(cargo)) = (build, std::env::var_os("CARGO")) {
            cargo_build(cargo, profile)?;
        }
        let binary = dir.join("ringlb");
        if binary.is_file() {
            Ok(Ringlb {
                binary,
                io_backend: None,
            })
        } else {
            Err(Unavailable::Broken(format!(
                "{} not found; run: {} (or pass --ringlb PATH)",
                binary.display(),
                build_command(profile)
            )))
        }
    }

    /// Writes `io_backend = "…"` into the config when `io_backend` is given.
    pub fn with_io_backend(self, io_backend: Option<String>) -> Ringlb {
        Ringlb { io_backend, ..self }
    }

    /// The binary that will run.
    pub fn binary(&self) -> &Path {
        &self.binary
    }
}

/// The `cargo build` that produces ringlb for `profile`.
pub fn build_command(profile: &str) -> String {
    match profile {
        "release" => "cargo build --release -p ringlb".into(),
        "debug" => "cargo build -p ringlb".into(),
        other => format!("cargo build --profile {other} -p ringlb"),
    }
}

/// Runs the `cargo build` for ringlb (a no-op when it is up to date); its output shows as is.
fn cargo_build(cargo: OsString, profile: &str) -> Result<(), Unavailable> {
    eprintln!("building ringlb: {}", build_command(profile));
    let mut command = Command::new(cargo);
    command.args(["build", "-p", "ringlb"]);
    match profile {
        "release" => {
            command.arg("--release");
        }
        "debug" => {}
        other => {
            command.args(["--profile", other]);
        }
    }
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(Unavailable::Broken(format!(
            "{} failed ({status})",
            build_command(profile)
        ))),
        Err(e) => Err(Unavailable::Broken(format!("cannot run cargo: {e}"))),
    }
}

impl Proxy for Ringlb {
    fn name(&self) -> &'static str {
        "ringlb"
    }

    fn config_file(&self) -> &'static str {
        "ringlb.toml"
    }

    fn config(&self, listen: SocketAddr, setup: &Setup) -> String {
        let mut text = format!(
            "# Written by loadtest for one run.\nlisten = \"{listen}\"\nworkers = {}\n",
            setup.workers
        );
        if let Some(relay) = &setup.relay {
            let _ = writeln!(text, "relay = \"{relay}\"");
        }
        if let Some(io_backend) = &self.io_backend {
            let _ = writeln!(text, "io_backend = \"{io_backend}\"");
        }
        if setup.connections + 100 > RINGLB_MAX_CONNECTIONS {
            // Many idle connections (--mode idle): lift ringlb's cap like haproxy's maxconn.
            let _ = writeln!(text, "max_connections = {}", connection_limit(setup));
        }
        if let Some(extra) = &setup.ringlb_extra {
            let _ = writeln!(text, "{extra}");
        }
        text.push_str("\n[health_check]\ninterval = \"1s\"\n");
        // Several proxies and runs share the machine: an ephemeral admin port, never a clash.
        text.push_str("\n[admin]\nlisten = \"127.0.0.1:0\"\n");
        for backend in backend_list(setup) {
            let _ = write!(
                text,
                "\n[[targets]]\naddress = \"{backend}\"\nhealth_check_endpoint = \"/healthz\"\n"
            );
        }
        text
    }

    fn command(&self, config: &Path, _setup: &Setup) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--config").arg(config);
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_follows_the_contract() {
        let setup = Setup {
            relay: Some("splice".into()),
            ringlb_extra: Some("send_proxy = \"v2\"".into()),
            ..Setup::example(2)
        };
        let ringlb = Ringlb {
            binary: "ringlb".into(),
            io_backend: None,
        };
        let text = ringlb.config("127.0.0.1:8000".parse().unwrap(), &setup);
        assert!(text.contains(
            "listen = \"127.0.0.1:8000\"\nworkers = 2\nrelay = \"splice\"\nsend_proxy = \"v2\"\n"
        ));
        assert!(text.contains("[health_check]\ninterval = \"1s\"\n"));
        assert!(text.contains("[admin]\nlisten = \"127.0.0.1:0\"\n"));
        assert_eq!(text.matches("[[targets]]").count(), 2);
        assert!(
            text.contains("address = \"127.0.0.1:9002\"\nhealth_check_endpoint = \"/healthz\"\n")
        );
    }

    #[test]
    fn many_connections_lift_the_connection_cap() {
        let ringlb = Ringlb {
            binary: "ringlb".into(),
            io_backend: None,
        };
        let listen = "127.0.0.1:8000".parse().unwrap();
        assert!(!ringlb
            .config(listen, &Setup::example(1))
            .contains("max_connections"));
        let idle = Setup {
            connections: 9_950,
            ..Setup::example(1)
        };
        assert!(ringlb
            .config(listen, &idle)
            .contains("max_connections = 39800\n"));
    }

    #[test]
    fn a_forced_io_backend_is_written() {
        let setup = Setup {
            backends: vec!["127.0.0.1:9001".parse().unwrap()],
            ..Setup::example(1)
        };
        let ringlb = Ringlb {
            binary: "ringlb".into(),
            io_backend: None,
        };
        let listen = "127.0.0.1:8000".parse().unwrap();
        assert!(!ringlb.config(listen, &setup).contains("io_backend"));
        let epoll = ringlb.with_io_backend(Some("epoll".into()));
        assert!(epoll
            .config(listen, &setup)
            .contains("workers = 1\nio_backend = \"epoll\"\n"));
    }

    #[test]
    fn a_missing_explicit_binary_is_an_error_not_a_skip() {
        let err = Ringlb::discover(Some(Path::new("/nonexistent/ringlb")), false).unwrap_err();
        assert!(matches!(err, Unavailable::Broken(m) if m.contains("/nonexistent/ringlb")));
    }

    #[test]
    fn build_commands_match_the_profile() {
        assert_eq!(build_command("release"), "cargo build --release -p ringlb");
        assert_eq!(build_command("debug"), "cargo build -p ringlb");
    }
}
