//! Connection churn: a new TCP connection for every request.
//!
//! Owns the connect-mode loop of one slot: connect, `GET /spells` with `Connection: close`, wait
//! for the server's close, repeat. Records the connect latency and the whole exchange. The
//! server closes first, so `TIME_WAIT` piles up on its side and the client's ephemeral ports are
//! not exhausted. Never runs past the window's end.

use std::{net::SocketAddr, time::Instant};

use crate::{
    client::{Conn, GET_SPELLS_CLOSE},
    outcome::ErrorKind,
    recorder::{micros, Live, Recorder},
};

use super::{is_connect_error, Window, Workload, CONNECT_BACKOFF};

/// Runs one connect-per-request slot until the window ends.
pub async fn run(workload: &Workload, addr: SocketAddr, window: Window, live: &Live) -> Recorder {
    let mut recorder = Recorder::default();
    tokio::time::sleep_until(window.start.into()).await;
    while Instant::now() < window.end {
        let started = Instant::now();
        let outcome = exchange(workload, addr, &mut recorder).await;
        let done = Instant::now();
        match outcome {
            Ok(answered) => recorder.success(answered - started, live),
            Err(kind) => {
                recorder.failure(kind, live);
                if is_connect_error(kind) {
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                }
            }
        }
        recorder.last_done = done - window.start;
    }
    recorder
}

/// Connect, request, read the reply, then wait (bounded) for the server's close. Returns when
/// the reply was complete.
async fn exchange(
    workload: &Workload,
    addr: SocketAddr,
    recorder: &mut Recorder,
) -> Result<Instant, ErrorKind> {
    let started = Instant::now();
    let mut conn = Conn::connect(addr, workload.timeout).await?;
    recorder
        .connect
        .saturating_record(micros(started.elapsed()));
    tokio::time::timeout(workload.timeout, conn.request(GET_SPELLS_CLOSE))
        .await
        .unwrap_or(Err(ErrorKind::Timeout))?;
    let answered = Instant::now();
    let _ = tokio::time::timeout(workload.timeout, conn.close()).await;
    Ok(answered)
}
