//! haproxy as a path under test: `mode tcp`, `balance roundrobin`, `nbthread` = workers.
//!
//! Owns haproxy's config text and command line. Health checks mirror ringlb's (`GET /healthz`
//! every second), so all proxies do the same background work. Never daemonises haproxy: it runs
//! in the foreground (`-db`) so that the harness can stop it.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use crate::process::find_program;

use super::{backend_list, connection_limit, Proxy, Setup, Unavailable};

/// haproxy, found on `PATH`.
#[derive(Debug, Clone)]
pub struct Haproxy {
    binary: PathBuf,
}

impl Haproxy {
    /// Finds haproxy, or says how to install it.
    pub fn discover() -> Result<Haproxy, Unavailable> {
        find_program("haproxy")
            .map(|binary| Haproxy { binary })
            .ok_or_else(|| {
                Unavailable::Skipped(
                    "haproxy is not on PATH (install: apt-get install haproxy)".into(),
                )
            })
    }
}

/// Descriptors haproxy holds besides its connections' (listeners, pollers, logs; it asked for
/// 17 in a test run): what `maxconn` leaves of the open-files limit.
const OWN_DESCRIPTORS: u64 = 32;

/// haproxy's `maxconn`: the usual [`connection_limit`], but never more than the open-files
/// limit can hold (haproxy refuses to start when it cannot get two descriptors per `maxconn`
/// plus its own), and never fewer than the connections the run opens.
fn maxconn(setup: &Setup) -> usize {
    let fits = (setup.open_files_limit.saturating_sub(OWN_DESCRIPTORS) / 2) as usize;
    connection_limit(setup).min(fits).max(setup.connections)
}

impl Proxy for Haproxy {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    fn config_file(&self) -> &'static str {
        "haproxy.cfg"
    }

    fn config(&self, listen: SocketAddr, setup: &Setup) -> String {
        let mut text = format!(
            "# Written by loadtest for one run: TCP proxy, round robin, {workers} thread(s).\n\
             global\n    nbthread {workers}\n    maxconn {maxconn}\n\n\
             defaults\n    mode tcp\n    balance roundrobin\n    timeout connect 5s\n    \
             timeout client 60s\n    timeout server 60s\n\n\
             frontend loadtest\n    bind {listen}\n    default_backend replicas\n\n\
             backend replicas\n    option httpchk GET /healthz\n",
            workers = setup.workers,
            maxconn = maxconn(setup),
        );
        for (i, backend) in backend_list(setup).enumerate() {
            let _ = writeln!(text, "    server r{i} {backend} check inter 1s");
        }
        text
    }

    fn command(&self, config: &Path, _setup: &Setup) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("-f").arg(config).arg("-db");
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_replica_with_a_health_check() {
        let setup = Setup::example(2);
        let haproxy = Haproxy {
            binary: "haproxy".into(),
        };
        let text = haproxy.config("127.0.0.1:8000".parse().unwrap(), &setup);
        assert!(text.contains("nbthread 2"));
        assert!(text.contains("bind 127.0.0.1:8000"));
        assert!(text.contains("mode tcp"));
        assert!(text.contains("balance roundrobin"));
        assert!(text.contains("server r1 127.0.0.1:9002 check inter 1s"));
        assert!(text.contains("maxconn 4096\n"));
    }

    #[test]
    fn maxconn_fits_the_open_files_limit() {
        let idle = Setup {
            connections: 9_950,
            ..Setup::example(1)
        };
        // Room for the probe request on top of 9,950 idle connections.
        assert_eq!(maxconn(&idle), 9_984);
        let roomy = Setup {
            open_files_limit: 1 << 20,
            ..idle
        };
        assert_eq!(maxconn(&roomy), 4 * 9_950);
    }
}
