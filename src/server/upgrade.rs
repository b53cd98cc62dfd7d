//! Binary upgrades without a lost connection: SIGUSR2 (or a reload that changes what needs new
//! sockets or threads) starts the binary at the path this process was started from, with the
//! same arguments, and hands it the listening sockets; the new process serves, says it is
//! ready, and only then does this one stop accepting, drain and exit 0.
//!
//! No listening socket is ever closed while a process still serves it: the successor holds its
//! own descriptors of the very same sockets, so connections queued in them are accepted by one
//! process or the other, never reset. If the successor fails (a configuration that does not
//! load, a crash, no readiness within [`READY_DEADLINE`]), this process keeps serving and says
//! why; the upgrade can be tried again. The same adoption path takes listeners from systemd
//! socket activation (`LISTEN_FDS`).
//!
//! Owns the hand-over protocol: which descriptors go down (`RINGLB_LISTEN_FDS`, numbers made
//! inheritable for the one spawn), the runtime API's overrides (`RINGLB_OVERRIDES_FD`, JSON in
//! an in-memory file, so a drained target stays drained in the new process), the readiness
//! pipe (`RINGLB_READY_FD`), and the pid file, written atomically by whichever process serves.
//! Control plane only.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    io::{self, Read, Write},
    net::{SocketAddr, TcpListener},
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    config::DEFAULT,
    health::{Overrides, PoolHandle},
    shutdown::Shutdown,
    uring::handover,
};

/// The listening descriptors a ringlb hands its successor, comma-separated, each with its role
/// (a traffic listener tagged with its service's name): `listen=https:3,listen=https:4,admin:5`.
/// An untagged `listen:3` (systemd's, or from a ringlb before services) serves whichever
/// service asks for its address.
pub const FDS_VAR: &str = "RINGLB_LISTEN_FDS";
/// The descriptor of the pipe a successor writes `ready` to once it serves.
pub const READY_VAR: &str = "RINGLB_READY_FD";
/// The descriptor of the in-memory file holding the overrides in force, as JSON
/// ([`Overrides`]); absent when there are none.
pub const OVERRIDES_VAR: &str = "RINGLB_OVERRIDES_FD";
/// How long a successor has to load its configuration, bind and start serving.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Why an upgrade did not happen; the running process keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Stopping already, or an upgrade handed the listeners over before.
    #[error("no listener to hand over (stopping, or already upgraded)")]
    NothingToHand,
    /// The new process could not be started.
    #[error("cannot start {exe}: {source}")]
    Spawn {
        /// The binary.
        exe: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The new process ended, or closed its readiness pipe, before it served.
    #[error("the new process (pid {pid}) exited before it was ready ({status}); see its log")]
    Exited {
        /// Its process id.
        pid: u32,
        /// How it ended.
        status: String,
    },
    /// The new process did not say it was ready in time; it was stopped.
    #[error("the new process (pid {pid}) was not ready within {READY_DEADLINE:?}; it was stopped")]
    Late {
        /// Its process id.
        pid: u32,
    },
    /// The hand-over itself failed (pipes, descriptor flags).
    #[error("cannot hand the listeners over: {0}")]
    Io(#[from] io::Error),
}

/// What a handed-down listener serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Client traffic of the service named, if the list named one (`listen`).
    Listen(Option<String>),
    /// The admin endpoints (`[admin] listen`).
    Admin,
}

impl Role {
    /// The spelling in [`FDS_VAR`].
    fn label(&self) -> String {
        match self {
            Role::Listen(None) => "listen".into(),
            Role::Listen(Some(service)) => format!("listen={service}"),
            Role::Admin => "admin".into(),
        }
    }
}

/// Listeners this process was handed when it started, by a ringlb it succeeds or by systemd.
#[derive(Debug, Default)]
pub struct Inherited(Vec<(Role, TcpListener)>);

impl Inherited {
    /// The listeners named by `RINGLB_LISTEN_FDS`, or systemd's `LISTEN_FDS` (fds 3 and up,
    /// all traffic listeners) when `LISTEN_PID` is this process; none otherwise. The variables
    /// are removed, so a program this process starts does not inherit the claim.
    pub fn from_env() -> io::Result<Inherited> {
        let fds: Vec<(Role, RawFd)> = if let Some(list) = std::env::var_os(FDS_VAR) {
            std::env::remove_var(FDS_VAR);
            parse_fds(&list.to_string_lossy())?
        } else if let Some(count) = systemd_fds() {
            (3..3 + count).map(|fd| (Role::Listen(None), fd)).collect()
        } else {
            Vec::new()
        };
        let listeners = fds
            .into_iter()
            .map(|(role, fd)| handover::adopt_listener(fd).map(|l| (role, l)))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Inherited(listeners))
    }

    /// Takes the inherited traffic listeners of service `name` on `addr`: those bound to
    /// `addr`, or, when `addr` asks for port 0 (the inherited port is what the previous process
    /// was given), those on its IP that are this service's or untagged.
    pub fn take_service(&mut self, name: &str, addr: SocketAddr) -> Vec<TcpListener> {
        self.take_where(|role, bound| {
            let Role::Listen(tag) = role else {
                return false;
            };
            bound == addr
                || (addr.port() == 0
                    && bound.ip() == addr.ip()
                    && tag.as_deref().is_none_or(|t| t == name))
        })
    }

    /// Takes the inherited admin listener on `addr` (any port when `addr` asks for port 0).
    pub fn take_admin(&mut self, addr: SocketAddr) -> Vec<TcpListener> {
        self.take_where(|role, bound| {
            *role == Role::Admin && (bound == addr || (addr.port() == 0 && bound.ip() == addr.ip()))
        })
    }

    fn take_where(&mut self, serves: impl Fn(&Role, SocketAddr) -> bool) -> Vec<TcpListener> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(r, l)| l.local_addr().is_ok_and(|a| serves(r, a)));
        self.0 = rest;
        mine.into_iter().map(|(_, l)| l).collect()
    }

    /// Inherited listeners nobody took (an address no longer configured).
    pub fn leftover(&self) -> usize {
        self.0.len()
    }
}

/// `listen=web:3,listen:4,admin:7` → roles and descriptors.
fn parse_fds(list: &str) -> io::Result<Vec<(Role, RawFd)>> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let bad = || io::Error::other(format!("{FDS_VAR}: {item:?} is not ROLE:FD"));
            let (role, fd) = item.trim().split_once(':').ok_or_else(bad)?;
            let role = match role.split_once('=') {
                None if role == "listen" => Role::Listen(None),
                None if role == "admin" => Role::Admin,
                Some(("listen", service)) if !service.is_empty() => {
                    Role::Listen(Some(service.to_owned()))
                }
                _ => return Err(bad()),
            };
            let fd = fd
                .parse::<RawFd>()
                .ok()
                .filter(|&fd| fd > 2)
                .ok_or_else(bad)?;
            Ok((role, fd))
        })
        .collect()
}

/// systemd socket activation: `LISTEN_FDS` descriptors from 3, meant for `LISTEN_PID`.
fn systemd_fds() -> Option<i32> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let count: i32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || count <= 0 {
        return None;
    }
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    Some(count)
}

/// Starts successors and hands them this process's listeners.
#[derive(Debug)]
pub struct Upgrader {
    exe: PathBuf,
    args: Vec<OsString>,
    /// Descriptors of the serving listeners (the workers and the admin thread hold their own);
    /// `None` once stopping or handed over, so the kernel refuses new clients when the workers
    /// close theirs.
    listeners: Mutex<Option<Vec<(Role, OwnedFd)>>>,
    shutdown: Shutdown,
    /// Stops the admin listener once a successor serves (it answers on the same socket).
    admin_stop: Option<Shutdown>,
    /// Where the overrides in force are read at each upgrade: every pool's checker.
    pools: Vec<PoolHandle>,
}

impl Upgrader {
    /// An upgrader handing over `listeners` (descriptors of the serving sockets) and the
    /// runtime API's overrides (as each pool's checker has them at the time) to the binary
    /// this process was started from, with its arguments.
    pub(super) fn new(
        listeners: Vec<(Role, OwnedFd)>,
        shutdown: Shutdown,
        admin_stop: Option<Shutdown>,
        pools: Vec<PoolHandle>,
    ) -> io::Result<Upgrader> {
        // Resolved now: an upgrade installs the new binary under the same path.
        let exe = std::env::current_exe()?;
        Ok(Upgrader {
            exe,
            args: std::env::args_os().skip(1).collect(),
            listeners: Mutex::new(Some(listeners)),
            shutdown,
            admin_stop,
            pools,
        })
    }

    /// Starts the successor, waits until it serves, then stops this process gracefully (it
    /// drains and exits 0). On failure this process keeps serving; the error says why.
    pub fn upgrade(&self) -> Result<u32, UpgradeError> {
        let mut held = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let fds: Vec<(Role, RawFd)> = match held.as_ref() {
            Some(fds) if !self.shutdown.is_triggered() => fds
                .iter()
                .map(|(role, fd)| (role.clone(), fd.as_raw_fd()))
                .collect(),
            _ => return Err(UpgradeError::NothingToHand),
        };
        let mut child = self.spawn(&fds)?;
        let pid = child.0.id();
        wait_ready(&mut child)?;
        tracing::info!(
            pid,
            "upgrade: the new process serves; this one stops accepting and drains"
        );
        // The successor holds its own descriptors of the listening sockets: closing ours never
        // resets a queued connection.
        *held = None;
        // Released before the trigger: its hook takes the same lock.
        drop(held);
        if let Some(admin) = &self.admin_stop {
            // The successor answers the admin endpoints from now on.
            admin.trigger();
        }
        self.shutdown.trigger();
        Ok(pid)
    }

    /// Drops this process's extra descriptors of the listeners, so that once the workers close
    /// theirs the kernel refuses new clients (stopping without a successor).
    pub fn release(&self) {
        *self.listeners.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn spawn(&self, fds: &[(Role, RawFd)]) -> Result<Successor, UpgradeError> {
        let (ready_rd, ready_wr) = handover::pipe()?;
        let handed = Handed {
            pools: (self.pools.iter())
                .map(|p| (p.name.clone(), (*p.status.overrides()).clone()))
                .filter(|(_, o)| !o.is_empty())
                .collect(),
        };
        let overrides = overrides_file(&handed)?;
        let overrides_fd = overrides.as_ref().map(AsRawFd::as_raw_fd);
        let inheritable = fds
            .iter()
            .map(|(_, fd)| *fd)
            .chain([ready_wr.as_raw_fd()])
            .chain(overrides_fd);
        for fd in inheritable.clone() {
            handover::set_inheritable(fd, true)?;
        }
        let list: Vec<String> = fds
            .iter()
            .map(|(role, fd)| format!("{}:{fd}", role.label()))
            .collect();
        let mut command = Command::new(&self.exe);
        command
            .args(&self.args)
            .env(FDS_VAR, list.join(","))
            .env(READY_VAR, ready_wr.as_raw_fd().to_string());
        match overrides_fd {
            Some(fd) => command.env(OVERRIDES_VAR, fd.to_string()),
            // Not this process's own: an upgrade of an upgraded process hands what is in force.
            None => command.env_remove(OVERRIDES_VAR),
        };
        let spawned = command.spawn();
        // Inherited by that one program only.
        for fd in inheritable {
            let _ = handover::set_inheritable(fd, false);
        }
        drop(ready_wr);
        drop(overrides);
        let child = spawned.map_err(|source| UpgradeError::Spawn {
            exe: self.exe.clone(),
            source,
        })?;
        tracing::info!(pid = child.id(), exe = %self.exe.display(), listeners = fds.len(),
            "upgrade: started the new process, handing it the listeners");
        Ok(Successor(child, std::fs::File::from(ready_rd)))
    }
}

/// What an upgrade hands over besides the listeners: the overrides in force, by pool name.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handed {
    /// Each pool's overrides; a pool without any is absent.
    pub pools: BTreeMap<String, Overrides>,
}

impl Handed {
    /// What a predecessor wrote: [`Handed`], or one pool's [`Overrides`] alone (a ringlb from
    /// before pools), which are the seed form's pool's.
    fn from_json(value: serde_json::Value) -> serde_json::Result<Handed> {
        match serde_json::from_value::<Handed>(value.clone()) {
            Ok(handed) => Ok(handed),
            Err(_) => Ok(Handed {
                pools: BTreeMap::from([(DEFAULT.to_owned(), serde_json::from_value(value)?)]),
            }),
        }
    }
}

/// `handed` as JSON in an in-memory file, rewound for its reader; `None` when there is nothing.
fn overrides_file(handed: &Handed) -> io::Result<Option<std::fs::File>> {
    if handed.pools.is_empty() {
        return Ok(None);
    }
    let mut file = handover::memfd(c"ringlb-overrides")?;
    serde_json::to_writer(&mut file, handed)?;
    io::Seek::rewind(&mut file)?;
    Ok(Some(file))
}

/// The overrides the process this one succeeds handed over (`RINGLB_OVERRIDES_FD`), by pool,
/// if any. A process of a version before pools handed one pool's overrides alone: they are the
/// seed form's pool's, `"default"`. Ones that cannot be read are logged and dropped: the
/// upgrade goes on with the file's settings rather than fail.
pub fn inherited_overrides() -> Option<Handed> {
    let fd = std::env::var_os(OVERRIDES_VAR)?;
    std::env::remove_var(OVERRIDES_VAR);
    let read = || -> Result<Handed, Box<dyn std::error::Error>> {
        let fd: RawFd = fd.to_string_lossy().parse()?;
        let file = handover::adopt_file(fd)?;
        let value: serde_json::Value = serde_json::from_reader(io::BufReader::new(file))?;
        Ok(Handed::from_json(value)?)
    };
    match read() {
        Ok(handed) => Some(handed),
        Err(e) => {
            tracing::error!(error = %e, "upgrade: the runtime overrides handed over cannot be \
                read; every target starts as the file says");
            None
        }
    }
}

/// A started successor and the read end of its readiness pipe.
struct Successor(Child, std::fs::File);

/// Waits until `child` writes `ready`, exits or runs out of time (then it is stopped).
fn wait_ready(child: &mut Successor) -> Result<(), UpgradeError> {
    let pid = child.0.id();
    let deadline = Instant::now() + READY_DEADLINE;
    let fd = child.1.as_raw_fd();
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.0.kill();
            let _ = child.0.wait();
            return Err(UpgradeError::Late { pid });
        }
        if !handover::readable_within(fd, left.min(Duration::from_millis(200)))? {
            if let Some(status) = child.0.try_wait()? {
                return Err(UpgradeError::Exited {
                    pid,
                    status: status.to_string(),
                });
            }
            continue;
        }
        let mut buf = [0u8; 16];
        let n = child.1.read(&mut buf)?;
        got.extend_from_slice(&buf[..n]);
        if got.starts_with(b"ready") {
            // Reaped in the background when it exits: it is the new server, not a child to wait
            // for.
            return Ok(());
        }
        if n == 0 {
            let status = child
                .0
                .wait()
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            return Err(UpgradeError::Exited { pid, status });
        }
    }
}

/// Tells the process that started this one (an upgrade) that it serves, writes the pid file,
/// and tells systemd (`Type=notify`, `NotifyAccess=all`) that this process is now the service's
/// main one: after an upgrade the old main process exits, and systemd must follow.
pub fn announce_ready(pid_file: Option<&Path>) {
    notify_systemd();
    if let Some(path) = pid_file {
        match write_pid_file(path) {
            Ok(()) => tracing::info!(path = %path.display(), "pid file written"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the pid file")
            }
        }
    }
    let Some(fd) = std::env::var_os(READY_VAR) else {
        return;
    };
    std::env::remove_var(READY_VAR);
    let fd: Option<RawFd> = fd.to_string_lossy().parse().ok();
    let told = fd
        .ok_or_else(|| io::Error::other("not a descriptor"))
        .and_then(handover::adopt_pipe)
        .and_then(|mut pipe| pipe.write_all(b"ready\n"));
    if let Err(e) = told {
        tracing::warn!(error = %e, "cannot tell the previous process that this one serves");
    }
}

/// `READY=1` and `MAINPID=` to `$NOTIFY_SOCKET`, when systemd set one (left set for a
/// successor, which sends its own).
fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message = format!("READY=1\nMAINPID={}\n", std::process::id());
    let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|socket| {
        let path = path.to_string_lossy();
        match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                socket.send_to_addr(message.as_bytes(), &addr)
            }
            None => socket.send_to(message.as_bytes(), path.as_ref()),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Writes this process's id to `path` atomically (a temporary file renamed over it), so a
/// reader never sees a half-written or empty file.
fn write_pid_file(path: &Path) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
    std::fs::rename(&tmp, path)
}

/// Removes the pid file on a stop without a successor, if it still names this process.
pub fn remove_pid_file(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        == Some(std::process::id());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_lists_are_checked() {
        assert_eq!(
            parse_fds("listen:3,listen=web:4,admin:10").unwrap(),
            [
                (Role::Listen(None), 3),
                (Role::Listen(Some("web".into())), 4),
                (Role::Admin, 10)
            ]
        );
        assert!(parse_fds("listen=:3").is_err(), "an empty service name");
        assert!(
            parse_fds("admin=x:3").is_err(),
            "only traffic listeners are tagged"
        );
        assert!(parse_fds("").unwrap().is_empty());
        assert!(parse_fds("listen:3,listen:x").is_err());
        assert!(parse_fds("3").is_err(), "a role is required");
        assert!(parse_fds("listen:1").is_err(), "stdout is never a listener");
    }

    #[test]
    fn inherited_listeners_are_taken_by_role_and_address() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let (addr, admin) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut inherited = Inherited(vec![(Role::Listen(None), a), (Role::Admin, b)]);
        assert!(
            inherited.take_service("default", admin).is_empty(),
            "not the admin's"
        );
        assert_eq!(inherited.take_service("default", addr).len(), 1);
        assert_eq!(inherited.leftover(), 1);
        let any_port = "127.0.0.1:0".parse().unwrap();
        assert_eq!(inherited.take_admin(any_port).len(), 1, "port 0 takes any");
        assert_eq!(inherited.leftover(), 0);
    }

    #[test]
    fn overrides_from_a_ringlb_before_pools_are_the_default_pools() {
        let old = serde_json::json!({"targets": {"a:80": {"entry": "x", "state": "drain"}}});
        let handed = Handed::from_json(old).unwrap();
        assert_eq!(handed.pools.keys().collect::<Vec<_>>(), ["default"]);
        assert!(handed.pools["default"].get("a:80").is_some());
        let mut by_pool = Handed::default();
        by_pool
            .pools
            .insert("web".into(), handed.pools["default"].clone());
        let again = Handed::from_json(serde_json::to_value(&by_pool).unwrap()).unwrap();
        assert_eq!(again.pools.keys().collect::<Vec<_>>(), ["web"]);
    }

    #[test]
    fn services_on_port_0_take_their_own_listeners_back() {
        let tagged = |name: &str| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            (Role::Listen(Some(name.to_owned())), listener)
        };
        let (web, api) = (tagged("web"), tagged("api"));
        let web_addr = web.1.local_addr().unwrap();
        let mut inherited = Inherited(vec![web, api]);
        let any_port = "127.0.0.1:0".parse().unwrap();
        let taken = inherited.take_service("web", any_port);
        assert_eq!(taken.len(), 1, "only web's");
        assert_eq!(taken[0].local_addr().unwrap(), web_addr);
        assert_eq!(inherited.take_service("api", any_port).len(), 1);
        assert_eq!(inherited.leftover(), 0);
    }

    #[test]
    fn systemd_hears_ready_and_the_new_main_pid() {
        let path = std::env::temp_dir().join(format!("ringlb-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify_systemd();
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 128];
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = socket.recv(&mut buf).unwrap();
        let message = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            message,
            format!("READY=1\nMAINPID={}\n", std::process::id())
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_pid_file_is_replaced_whole_and_removed_only_when_ours() {
        let dir = std::env::temp_dir().join(format!("ringlb-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ringlb.pid");
        write_pid_file(&path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        std::fs::write(&path, "1\n").unwrap();
        remove_pid_file(&path);
        assert!(path.exists(), "another process's pid file stays");
        write_pid_file(&path).unwrap();
        remove_pid_file(&path);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
