//! Running the real `ringlb` binary: a config file in a temp dir, readiness from its log.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ringlb::config::IoBackend;

/// Whether `prlimit` (util-linux) is installed, for the tests that start ringlb under a
/// descriptor limit; says so when it is not.
pub fn prlimit_available() -> bool {
    let found = Command::new("prlimit").arg("--version").output().is_ok();
    if !found {
        eprintln!("prlimit (util-linux) not installed; skipping");
    }
    found
}

/// A ringlb process; killed when dropped.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every stderr line so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// The configuration file it was started with (rewrite it, then SIGHUP).
    pub config_path: PathBuf,
    _dir: TempDir,
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ringlb-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Process {
    /// Starts `ringlb --config` on `toml` (whose listen must be 127.0.0.1:0), optionally under
    /// `prlimit` arguments, and waits for its "ringlb started" line.
    pub fn start(toml: &str, prlimit: Option<&str>) -> Process {
        Self::start_with(toml, prlimit, |_| {})
    }

    /// Like [`Process::start`], with `setup` applied to the command before it is spawned.
    pub fn start_with(
        toml: &str,
        prlimit: Option<&str>,
        setup: impl FnOnce(&mut Command),
    ) -> Process {
        let dir = TempDir::new("bin");
        let path = dir.0.join("ringlb.toml");
        std::fs::write(&path, toml).unwrap();
        let bin = env!("CARGO_BIN_EXE_ringlb");
        let mut cmd = match prlimit {
            Some(limits) => {
                let mut c = Command::new("prlimit");
                c.arg(limits).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        setup(&mut cmd);
        let mut child = cmd
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringlb");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("listen=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .filter(|_| line.contains("ringlb started"))
                {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("ringlb did not start: {:?}", log.lock().unwrap()));
        Process {
            child,
            addr,
            log,
            config_path: path,
            _dir: dir,
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ringlb did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until the log has `n` lines containing `needle`.
    pub fn wait_log(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log_lines(needle) < n {
            assert!(
                Instant::now() < deadline,
                "no log line {needle:?}: {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The value of `key=` on every log line containing `marker`, in order (the line's first
    /// `key=`, up to the next space).
    pub fn logged(&self, marker: &str, key: &str) -> Vec<String> {
        let key = format!("{key}=");
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|l| l.contains(marker))
            .filter_map(|l| Some(l.split(&key).nth(1)?.split_whitespace().next()?.to_owned()))
            .collect()
    }

    /// The pids of the processes its upgrades started, in order, from its log.
    pub fn successor_pids(&self) -> Vec<i32> {
        let pids = self.logged("upgrade: started the new process", "pid");
        pids.iter().filter_map(|pid| pid.parse().ok()).collect()
    }

    pub fn log_lines(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config for the binary on the I/O backend `io` (the test's, from
/// [`io_backends!`](super::io_backends!)): listen on an ephemeral port, one worker, `extra`
/// top-level keys.
pub fn toml(io: IoBackend, targets: &[SocketAddr], extra: &str) -> String {
    let mut text =
        format!("io_backend = \"{io}\"\nlisten = \"127.0.0.1:0\"\nworkers = 1\n{extra}\n");
    text.push_str("[health_check]\ninterval = \"100ms\"\ntimeout = \"500ms\"\n");
    // Many instances run at once: an ephemeral admin port each.
    text.push_str("[admin]\nlisten = \"127.0.0.1:0\"\n");
    for t in targets {
        text.push_str(&format!(
            "[[targets]]\naddress = \"{t}\"\nhealth_check_endpoint = \"/healthz\"\n"
        ));
    }
    text
}
