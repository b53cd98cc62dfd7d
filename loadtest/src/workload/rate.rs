//! Open loop at a constant rate, corrected for coordinated omission.
//!
//! Owns the rate-mode loop of one connection: wait for the next intended send time, send, and
//! record `done - intended`. When the server stalls, later requests go out back to back as soon
//! as the connection is free and each is still measured from its own intended time, so the stall
//! shows in the histogram as the queueing delay real users would have seen (wrk2's rule). Never
//! shifts the schedule and never sends after the window's hard end; what could not be sent by
//! then is counted as `missed`.

use std::{net::SocketAddr, time::Instant};

use crate::{
    outcome::ErrorKind,
    pacer::Pacer,
    recorder::{micros, Live, Recorder},
    schedule::Schedule,
};

use super::{keep_alive_request, open_before_start, Window, Workload};

/// Runs connection `index` of the open loop.
pub async fn run(
    workload: &Workload,
    index: usize,
    addr: SocketAddr,
    window: Window,
    live: &Live,
) -> Recorder {
    let mut recorder = Recorder::default();
    let mut schedule = Schedule::new(
        window.start,
        window.end,
        workload.rate,
        index,
        workload.connections,
    );
    recorder.intended = schedule.total();
    let mut pacer = match Pacer::new() {
        Ok(pacer) => pacer,
        Err(_) => {
            recorder.failure(ErrorKind::Io, live);
            recorder.missed = recorder.intended;
            return recorder;
        }
    };
    let mut conn = open_before_start(addr, workload, &window, &mut recorder, live).await;
    while let Some(intended) = schedule.next_send() {
        if Instant::now() >= window.hard_end {
            recorder.missed = schedule.remaining() + 1;
            break;
        }
        if intended > Instant::now() {
            // The connection is idle and waits for its slot: any lateness now is ours, not the
            // server's. It is still charged (wrk2's rule), and tracked so the report can tell.
            if pacer.sleep_until(intended).await.is_err() {
                recorder.failure(ErrorKind::Io, live);
                continue;
            }
            recorder
                .lag
                .saturating_record(micros(Instant::now() - intended));
        }
        let outcome = keep_alive_request(&mut conn, addr, workload.timeout).await;
        let done = Instant::now();
        match outcome {
            Ok(()) => recorder.success(done - intended, live),
            Err(kind) => recorder.failure(kind, live),
        }
        recorder.last_done = done - window.start;
    }
    recorder
}
