//! The access log: one line per client connection when it ends (who, where to, how many bytes,
//! how long, and why it ended), written off the hot path.
//!
//! Each worker pushes a fixed-size [`Record`] into a bounded lock-free queue of its own
//! (`queue.rs`); one writer thread (`writer.rs`) drains every queue each
//! [`FLUSH_INTERVAL`](writer::FLUSH_INTERVAL), formats the lines (`format.rs`, JSON or text)
//! and writes them in large batches. A worker never blocks on the log, never allocates for it
//! and never wakes the writer: when the writer cannot keep up the queues fill and lines are
//! dropped and counted (`ringlb_access_log_dropped_total`). [`AccessLog`] is the control
//! plane's handle: it opens every file (at start, on reload, on SIGUSR1) and hands it to the
//! writer, so the server and the signal handler learn of a path that cannot be opened.
//!
//! A record names its service and pool by index and carries its SNI inline; the writer turns the
//! indices into names with the [`LogNames`] it was started with.
//!
//! Imports nothing of the crate but the configuration's types and the TLS server name (both
//! leaves); never knows a socket, a driver or a policy (the drivers build records through
//! [`crate::conn`]).

mod format;
mod queue;
mod record;
mod writer;

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    sync::{
        atomic::Ordering::Relaxed,
        mpsc::{self, Sender},
        Arc, Mutex,
    },
    time::Duration,
};

pub use format::{LogNames, DEFAULT_NAME};
pub use queue::{Sink, QUEUE_CAPACITY};
pub use record::{Record, Termination};

use crate::config::{self, LogPath};
use queue::Queues;
use writer::{Control, Destination, Writer};

/// How long stopping or switching waits for the writer to write what is queued (a writer
/// stuck on a full pipe is left behind rather than holding the process).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// The control plane's handle on the access log: its settings, its writer thread, its
/// counters.
#[derive(Debug)]
pub struct AccessLog {
    queues: Arc<Queues>,
    /// The settings in force and the writer's control channel (control plane only).
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    config: config::AccessLog,
    control: Sender<Control>,
}

impl AccessLog {
    /// Opens the destination `config` names and starts the writer thread, with one queue of
    /// [`QUEUE_CAPACITY`] records per worker; `names` are the effective services' and pools'
    /// names, which the records' indices stand for.
    pub fn start(
        config: &config::AccessLog,
        workers: usize,
        names: LogNames,
    ) -> io::Result<AccessLog> {
        Self::with_capacity(config, workers, names, QUEUE_CAPACITY)
    }

    /// [`AccessLog::start`] with queues of `capacity` records.
    pub fn with_capacity(
        config: &config::AccessLog,
        workers: usize,
        names: LogNames,
        capacity: usize,
    ) -> io::Result<AccessLog> {
        let queues = Arc::new(Queues::new(workers, capacity));
        let destination = open(&config.path)?;
        let (control, receiver) = mpsc::channel();
        let writer = Writer::new(
            Arc::clone(&queues),
            destination,
            config.format,
            names,
            receiver,
        );
        std::thread::Builder::new()
            .name("ringlb-access-log".into())
            .spawn(move || writer.run())?;
        queues.set_enabled(config.enabled());
        Ok(AccessLog {
            queues,
            state: Mutex::new(State {
                config: config.clone(),
                control,
            }),
        })
    }

    /// Worker `worker`'s end of the log.
    pub fn sink(&self, worker: usize) -> Sink {
        Sink::new(Arc::clone(&self.queues), worker)
    }

    /// Applies reloaded settings: a new path is opened (the old destination is kept if it
    /// cannot be), a new format used from the next line; lines queued meanwhile go to the old
    /// destination. Nothing happens when nothing changed.
    pub fn configure(&self, next: &config::AccessLog) -> io::Result<()> {
        let mut state = self.lock();
        if state.config == *next {
            return Ok(());
        }
        // Also when only the format changed: the file is reopened, as on SIGUSR1.
        let destination = open(&next.path)?;
        if !next.enabled() {
            self.queues.set_enabled(false);
        }
        switch(&state.control, destination, next.format);
        self.queues.set_enabled(next.enabled());
        state.config = next.clone();
        Ok(())
    }

    /// Reopens a file log at its path (SIGUSR1, after logrotate moved it): lines queued before
    /// go to the old file, those of connections that end after this returns to the new one. `Ok(false)` when the log is no file.
    pub fn reopen(&self) -> io::Result<bool> {
        let state = self.lock();
        if !matches!(state.config.path, LogPath::File(_)) {
            return Ok(false);
        }
        let destination = open(&state.config.path)?;
        switch(&state.control, destination, state.config.format);
        Ok(true)
    }

    /// Stops recording, writes what is queued and ends the writer (waiting at most a second).
    pub fn stop(&self) {
        self.queues.set_enabled(false);
        let (done, finished) = mpsc::channel();
        if self.lock().control.send(Control::Stop(done)).is_ok() {
            let _ = finished.recv_timeout(STOP_WAIT);
        }
    }

    /// Lines lost so far: dropped because a worker's queue was full, or not written.
    pub fn dropped(&self) -> u64 {
        self.queues.dropped()
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.queues.written.load(Relaxed)
    }

    /// The settings in force.
    pub fn config(&self) -> config::AccessLog {
        self.lock().config.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Hands the writer a new destination and waits (at most [`STOP_WAIT`]) until it uses it, so
/// that every record pushed from then on goes there.
fn switch(control: &Sender<Control>, destination: Destination, format: config::LogFormat) {
    let (done, switched) = mpsc::channel();
    if control
        .send(Control::Switch(destination, format, done))
        .is_ok()
    {
        let _ = switched.recv_timeout(STOP_WAIT);
    }
}

/// Opens what `path` names: a file is appended to and created (mode 0640) if missing.
fn open(path: &LogPath) -> io::Result<Destination> {
    Ok(match path {
        LogPath::Off => Destination::Off,
        LogPath::Stderr => Destination::Stderr,
        LogPath::File(path) => Destination::File {
            file: open_file(path)?,
            path: path.clone(),
        },
    })
}

fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::LogFormat;

    fn record(termination: Termination) -> Record {
        Record {
            ended: Instant::now(),
            client: "127.0.0.1:5000".parse().unwrap(),
            service: 0,
            pool: Some(0),
            sni: None,
            target: Some("127.0.0.1:8001".parse().unwrap()),
            bytes_up: 3,
            bytes_down: 4,
            connect: Some(Duration::from_micros(100)),
            duration: Duration::from_millis(2),
            retries: 0,
            termination,
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ringlb-alog-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("access.log")
    }

    fn wait_for(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn lines_reach_the_file_and_a_reopen_starts_a_new_one() {
        let path = temp("reopen");
        let config = config::AccessLog {
            path: LogPath::File(path.clone()),
            format: LogFormat::Text,
        };
        let log = AccessLog::start(&config, 2, LogNames::default()).unwrap();
        let sink = log.sink(1);
        assert!(sink.on());
        sink.push(record(Termination::ClientClose));
        wait_for(|| log.written() == 1);
        let rotated = path.with_extension("1");
        std::fs::rename(&path, &rotated).unwrap();
        assert!(log.reopen().unwrap());
        sink.push(record(Termination::BackendReset));
        wait_for(|| log.written() == 2);
        log.stop();
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(
            old.contains(" client_close -\n") && old.lines().count() == 1,
            "{old}"
        );
        assert!(
            new.contains(" backend_reset -\n") && new.lines().count() == 1,
            "{new}"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn off_records_nothing_and_a_reload_turns_it_on() {
        let path = temp("reload");
        let names = LogNames {
            services: vec!["edge".into()],
            pools: vec!["web".into()],
        };
        let log = AccessLog::start(&config::AccessLog::default(), 1, names).unwrap();
        assert!(!log.sink(0).on());
        assert!(!log.reopen().unwrap(), "no file to reopen");
        let on = config::AccessLog {
            path: LogPath::File(path.clone()),
            format: LogFormat::Json,
        };
        log.configure(&on).unwrap();
        assert!(log.sink(0).on());
        log.sink(0).push(record(Termination::IdleTimeout));
        wait_for(|| log.written() == 1);
        let bad = config::AccessLog {
            path: LogPath::File(path.join("not-a-dir/x.log")),
            ..on.clone()
        };
        assert!(log.configure(&bad).is_err());
        assert_eq!(log.config(), on, "the old destination is kept");
        log.stop();
        let line = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["termination"], "idle_timeout");
        assert_eq!((&v["service"], &v["pool"]), (&"edge".into(), &"web".into()));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
