//! The answer to a client when no backend can take it (`on_no_backend`): by default the exact
//! 503, then a close that the client sees as a FIN after the answer, not as a reset that could
//! destroy it; or only that FIN (`close`); or a reset (`reset`, `SO_LINGER` 0), which non-HTTP
//! clients handle best.

use std::os::fd::RawFd;

use io_uring::{
    opcode,
    types::{Fd, Timespec},
};

use super::Engine;
use crate::{
    config::OnNoBackend,
    metrics::WorkerCounter,
    relay::Relay,
    uring::sys,
    worker::token::{Op, Token},
};

/// The exact answer to a client when no backend is healthy.
pub const RESPONSE_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain\r\n\
Content-Length: 19\r\n\
Connection: close\r\n\
\r\n\
Service Unavailable";

impl<R: Relay> Engine<R> {
    /// Answers as `on_no_backend` says; the client descriptor travels in the token instead of a
    /// slot.
    pub(super) fn reject(&mut self, client: RawFd) {
        self.stats.add(WorkerCounter::Rejected);
        match self.on_no_backend {
            OnNoBackend::Http503 => self.write_503(client),
            OnNoBackend::Close => {
                // The FIN, the drain and the close of the 503's path, without the answer.
                self.rejecting += 1;
                self.on_reject_written(client);
            }
            OnNoBackend::Reset => {
                sys::set_linger_zero(client);
                self.close_client(client);
            }
        }
    }

    /// Writes the 503; its completion continues in [`Engine::on_reject_written`].
    fn write_503(&mut self, client: RawFd) {
        let write =
            opcode::Write::new(Fd(client), RESPONSE_503.as_ptr(), RESPONSE_503.len() as u32)
                .build()
                .user_data(Token::conn(client as u32, 0, Op::RejectWrite).into());
        // SAFETY: the response is a static; the client descriptor stays open until RejectDrain.
        if unsafe { self.ring.push(&write) }.is_ok() {
            self.rejecting += 1;
        } else {
            self.close_client(client);
        }
    }

    /// Shuts down writing (FIN after the answer), then reads and discards what the client still
    /// sends, for at most a second: closing with unread input would send a reset instead.
    pub(super) fn on_reject_written(&mut self, client: RawFd) {
        let _ = sys::shutdown_write(client);
        let drain = opcode::Recv::new(Fd(client), std::ptr::null_mut(), 64 * 1024)
            .flags(libc::MSG_TRUNC)
            .build()
            .flags(io_uring::squeue::Flags::IO_LINK)
            .user_data(Token::conn(client as u32, 0, Op::RejectDrain).into());
        let timeout = opcode::LinkTimeout::new(&self.timers.linger as *const Timespec)
            .build()
            .user_data(Token::IGNORE.into());
        // SAFETY: MSG_TRUNC on TCP discards the bytes, so no buffer is written; the timespec is
        // boxed in `self`; the descriptor stays open until the drain completes.
        if unsafe { self.ring.push_chain(&[drain, timeout]) }.is_err() {
            self.on_reject_drained(client);
        }
    }

    pub(super) fn on_reject_drained(&mut self, client: RawFd) {
        self.rejecting -= 1;
        self.close_client(client);
    }
}
