//! External processes under test (ringlb, haproxy, nginx): start, wait until ready, stop.
//!
//! Owns the child's lifetime: its output goes to a log file in the run's directory, readiness is
//! a connect poll with a hard deadline (never a blind sleep), and the child is stopped with
//! SIGTERM (then SIGKILL) when its [`Supervised`] handle drops, or killed by the kernel if this
//! process dies first. Never signals any process it did not start.

use std::{
    fmt, fs,
    io::{self, Read, Seek, SeekFrom},
    net::{SocketAddr, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(20);
/// How long a stopping child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A child process that is stopped when this handle drops.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    log: PathBuf,
}

/// Why a child did not become ready.
#[derive(Debug)]
pub enum NotReady {
    /// It exited first.
    Exited(ExitStatus),
    /// It did not accept a connection before the deadline.
    Timeout(Duration),
    /// Polling it failed.
    Io(io::Error),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::Exited(status) => write!(f, "exited before accepting connections ({status})"),
            NotReady::Timeout(d) => write!(f, "did not accept connections within {d:?}"),
            NotReady::Io(e) => write!(f, "cannot watch the process: {e}"),
        }
    }
}

impl Supervised {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> io::Result<Supervised> {
        let file = fs::File::create(log)?;
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        Supervised::start(name, command, log)
    }

    /// Starts `command` with its stdin and stdout as pipes to this process (for a child that
    /// talks back, like `loadtest hold`) and its stderr appended to `log`.
    pub fn spawn_piped(
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> io::Result<(Supervised, ChildStdin, ChildStdout)> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(log)?);
        let mut supervised = Supervised::start(name, command, log)?;
        let missing = || io::Error::other("the child's pipes were not set up");
        let stdin = supervised.child.stdin.take().ok_or_else(missing)?;
        let stdout = supervised.child.stdout.take().ok_or_else(missing)?;
        Ok((supervised, stdin, stdout))
    }

    /// Spawns `command`, its output already directed, with the parent-death signal set.
    fn start(name: &str, mut command: Command, log: &Path) -> io::Result<Supervised> {
        // SAFETY: the closure runs in the forked child before exec. It only calls prctl(2), which
        // is async-signal-safe, allocates nothing and touches no state shared with the parent.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)
            });
        }
        let child = command.spawn()?;
        Ok(Supervised {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The file the child's output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Polls until something accepts a TCP connection on `addr`, the child exits, or `within`
    /// has passed.
    pub fn wait_ready(&mut self, addr: SocketAddr, within: Duration) -> Result<(), NotReady> {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(NotReady::Exited(status)),
                Ok(None) => {}
                Err(e) => return Err(NotReady::Io(e)),
            }
            if TcpStream::connect_timeout(&addr, POLL * 5).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NotReady::Timeout(within));
            }
            std::thread::sleep(POLL);
        }
    }

    /// True while the child runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `within` for the child to exit on its own; true when it did.
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.is_running() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
        true
    }

    /// The last `lines` lines of the child's output, indented, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
            .unwrap_or_else(|e| format!("    (cannot read {}: {e})", self.log.display()))
    }

    /// Stops the child: SIGTERM, then SIGKILL after a grace period. Idempotent.
    pub fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(POLL);
        }
        eprintln!(
            "{} did not stop within {GRACE:?} of SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the last `lines` lines of a (small) log file, each indented by four spaces.
fn tail(path: &Path, lines: usize) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let shown = &all[all.len().saturating_sub(lines)..];
    if shown.is_empty() {
        return Ok("    (no output)".into());
    }
    Ok(shown
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Finds an executable on `PATH`, or in the sbin directories where daemons live.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(sbin)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_log(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("loadtest-{}-{name}.log", std::process::id()))
    }

    #[test]
    fn a_process_that_exits_is_reported_with_its_output() {
        let log = temp_log("exits");
        let mut command = Command::new("sh");
        command.args(["-c", "echo first; echo 'bind failed' >&2; exit 3"]);
        let mut child = Supervised::spawn("sh", command, &log).unwrap();
        let addr = crate::ports::free_loopback_addr().unwrap();
        let err = child.wait_ready(addr, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, NotReady::Exited(_)), "{err}");
        assert!(child.log_tail(5).contains("bind failed"));
        let _ = fs::remove_file(log);
    }

    #[test]
    fn a_process_that_never_listens_times_out_and_is_stopped() {
        let log = temp_log("sleeps");
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut child = Supervised::spawn("sleep", command, &log).unwrap();
        let addr = crate::ports::free_loopback_addr().unwrap();
        let started = Instant::now();
        let err = child
            .wait_ready(addr, Duration::from_millis(300))
            .unwrap_err();
        assert!(matches!(err, NotReady::Timeout(_)), "{err}");
        child.stop();
        assert!(!child.is_running());
        assert!(started.elapsed() < Duration::from_secs(3));
        let _ = fs::remove_file(log);
    }

    #[test]
    fn finds_programs_on_the_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("surely-not-a-program-here").is_none());
    }
}
