//! One pass of interleaved rounds over some of the lab's paths, with the CPU read around each
//! measured phase.
//!
//! Owns running a [`plan`] timetable: each phase's load, what each replica served during it,
//! and the CPU time of the path's processes right before and right after it. Used once by the
//! load modes and once per step by the sweep. Never keeps a warm-up's figures.

use std::{sync::Arc, time::Duration};

use tokio::runtime::Runtime;

use crate::{
    cpu,
    lab::Lab,
    phase,
    plan::{self, Slot},
    progress::Progress,
    report::PathRun,
    workload::Workload,
};

/// What one pass measures.
#[derive(Debug, Clone)]
pub struct Pass {
    /// The load of every phase.
    pub workload: Arc<Workload>,
    /// Indices into the lab's endpoints, in measuring order.
    pub paths: Vec<usize>,
    /// Interleaved rounds asked for.
    pub rounds: usize,
    /// Measured time per path, over all rounds.
    pub duration: Duration,
    /// Unmeasured warm-up per path first (zero for none).
    pub warmup: Duration,
    /// Put before each progress label (e.g. the sweep step's rate).
    pub label: String,
}

/// Runs `pass` on `lab`; one [`PathRun`] per entry of `pass.paths`, in the same order.
pub fn run(pass: &Pass, lab: &Lab, load_runtime: &Runtime, progress: &Progress) -> Vec<PathRun> {
    let rounds = plan::effective_rounds(pass.rounds, pass.duration);
    let mut runs: Vec<PathRun> = pass
        .paths
        .iter()
        .map(|&i| PathRun::new(&lab.endpoints[i].name))
        .collect();
    let slots = plan::plan(pass.paths.len(), pass.rounds, pass.duration, pass.warmup);
    for slot in slots {
        let endpoint = &lab.endpoints[pass.paths[slot.path]];
        let before = lab.served();
        let label = format!("{}{}", pass.label, label(&slot, rounds, &endpoint.name));
        let bar = progress.phase(&label, slot.duration, pass.workload.mode);
        let measured = slot.round.is_some();
        let pid = endpoint.pid.filter(|_| measured);
        let (mut result, spent) = cpu::around(pid, || {
            phase::run(
                load_runtime,
                &pass.workload,
                endpoint.addr,
                slot.duration,
                &bar,
            )
        });
        if measured {
            result.cpu = spent;
            let served: Vec<u64> = lab
                .served()
                .iter()
                .zip(&before)
                .map(|(after, b)| after - b)
                .collect();
            runs[slot.path].add(result, &served);
        }
    }
    runs
}

fn label(slot: &Slot, rounds: usize, name: &str) -> String {
    match slot.round {
        None => format!("warm-up    {name}"),
        Some(r) => format!("round {}/{rounds}  {name}", r + 1),
    }
}
