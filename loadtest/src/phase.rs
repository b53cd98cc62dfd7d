//! One phase: one workload against one address for a bounded time, on the load runtime.
//!
//! Owns spawning the connections, ticking the progress display and merging the per-connection
//! recorders. Never shares a histogram between connections, and always returns: every
//! connection loop is bounded by the phase [`Window`].

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tokio::runtime::Runtime;

use crate::{
    cpu::CpuSpent,
    outcome::ErrorKind,
    progress::{PhaseBar, Tally},
    recorder::{Live, Recorder},
    workload::{self, Window, Workload},
};

/// Time between spawning the connections and the start of measurement, for them to connect.
pub const SETUP: Duration = Duration::from_millis(100);
/// Progress refresh period.
const TICK: Duration = Duration::from_millis(100);

/// The merged measurements of one phase.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// All connections' records, merged.
    pub recorder: Recorder,
    /// Wall-clock time the measurement started.
    pub started: SystemTime,
    /// The intended measurement time.
    pub duration: Duration,
    /// The time actually taken: the duration, or longer if late replies ran past it.
    pub elapsed: Duration,
    /// CPU time of the path's processes around the phase, when they could be read (filled in
    /// by [`crate::measure`], which knows the processes).
    pub cpu: Option<Result<CpuSpent, String>>,
}

impl PhaseResult {
    /// Successful requests (transfers, connections) per second over the elapsed time.
    pub fn throughput(&self) -> f64 {
        self.recorder.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `workload` against `addr` for `duration` on `runtime`, showing progress on `bar`.
pub fn run(
    runtime: &Runtime,
    workload: &Arc<Workload>,
    addr: SocketAddr,
    duration: Duration,
    bar: &PhaseBar,
) -> PhaseResult {
    let window = Window::after(SETUP, duration, workload.timeout);
    let started = SystemTime::now() + SETUP;
    let lives: Vec<Arc<Live>> = (0..workload.connections).map(|_| Arc::default()).collect();
    let recorder = runtime.block_on(async {
        let tasks: Vec<_> = lives
            .iter()
            .enumerate()
            .map(|(index, live)| {
                let task = workload::run_connection(
                    Arc::clone(workload),
                    index,
                    addr,
                    window,
                    Arc::clone(live),
                );
                tokio::spawn(task)
            })
            .collect();
        let mut ticker = tokio::time::interval(TICK);
        while !tasks.iter().all(|task| task.is_finished()) {
            ticker.tick().await;
            bar.update(tally(&lives, window.start));
        }
        let mut merged = Recorder::default();
        for task in tasks {
            match task.await {
                Ok(recorder) => merged.merge(&recorder),
                Err(_) => merged.errors.add(ErrorKind::Io),
            }
        }
        merged
    });
    let elapsed = duration.max(recorder.last_done);
    let mut final_tally = tally(&lives, window.start);
    final_tally.elapsed = elapsed;
    bar.finish(final_tally);
    PhaseResult {
        recorder,
        started,
        duration,
        elapsed,
        cpu: None,
    }
}

fn tally(lives: &[Arc<Live>], start: Instant) -> Tally {
    let (ok, errors, bytes) = Live::sum(lives);
    Tally {
        ok,
        errors,
        bytes,
        elapsed: Instant::now().saturating_duration_since(start),
    }
}
