//! `retry_on_early_close` on the epoll backend: the replay phase between a connect and the
//! relay, with the io_uring worker's contract.
//!
//! The client's first bytes are kept (up to `replay_buffer`) and forwarded until the backend's
//! first byte arrives. If the backend closes or fails before that, the caller connects another
//! backend and the kept bytes are sent again. Once the backend has spoken, or the buffer is
//! full, the connection is committed and the relay carries on; bytes not read yet stay in the
//! sockets, so nothing is lost or reordered. Never replays past the buffer.

use std::{io, time::Duration};

use tokio::net::TcpStream;

use super::copy::{write_all, Buffer, Delivered};
use crate::conn::passive::BackendEnd;

/// One client's replay state, kept across backends.
pub(super) struct Replay<'a> {
    /// The client's first bytes.
    buf: Buffer<'a>,
    /// Bytes of `buf` received from the client.
    len: usize,
    /// The client sent its EOF (it reaches the backend through the relay, after the commit).
    client_eof: bool,
}

/// How a replay phase ended.
pub(super) enum Phase {
    /// The backend answered: relay from here on.
    Answered,
    /// The buffer is full: relay from here on, without a replay.
    Full,
    /// The backend closed or failed (`end`) before answering; `client_sent` says whether any
    /// of the client's bytes had been sent to it.
    EarlyClose { client_sent: bool, end: BackendEnd },
}

impl<'a> Replay<'a> {
    /// An empty replay state over `buf` (a buffer of `replay_buffer` bytes).
    pub(super) fn new(buf: Buffer<'a>) -> Replay<'a> {
        Replay {
            buf,
            len: 0,
            client_eof: false,
        }
    }

    /// Runs the phase on a freshly connected `server`: sends what was kept so far, then keeps
    /// and forwards the client's bytes until the backend's first byte, its close, a full buffer
    /// or `idle` without activity (an error, as is a client failure: close both).
    pub(super) async fn run(
        &mut self,
        client: &TcpStream,
        server: &TcpStream,
        idle: Duration,
        count: Delivered<'_>,
    ) -> io::Result<Phase> {
        if write_all(server, &self.buf[..self.len], Some(count))
            .await
            .is_err()
        {
            return Ok(self.early_close(BackendEnd::Reset));
        }
        let mut first = [0u8; 1];
        while self.len < self.buf.len() {
            tokio::select! {
                peeked = server.peek(&mut first) => {
                    return Ok(match peeked {
                        Ok(n) if n > 0 => Phase::Answered,
                        Ok(_) => self.early_close(BackendEnd::Closed),
                        Err(_) => self.early_close(BackendEnd::Reset),
                    });
                }
                readable = client.readable(), if !self.client_eof => {
                    readable?;
                    let start = self.len;
                    match client.try_read(&mut self.buf[start..]) {
                        Ok(0) => self.client_eof = true,
                        Ok(n) => self.len += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                    if write_all(server, &self.buf[start..self.len], Some(count)).await.is_err() {
                        return Ok(self.early_close(BackendEnd::Reset));
                    }
                }
                () = tokio::time::sleep(idle) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
        Ok(Phase::Full)
    }

    fn early_close(&self, end: BackendEnd) -> Phase {
        Phase::EarlyClose {
            client_sent: self.len > 0,
            end,
        }
    }
}
