//! Performing the answer to a client no backend can take, as [`crate::conn::reject`] decides:
//! the write, the FIN, the bounded drain (a `Recv` with `MSG_TRUNC` linked to a timeout), or
//! the reset.

use std::os::fd::RawFd;

use io_uring::{
    opcode,
    types::{Fd, Timespec},
};

use super::Engine;
use crate::{
    config::OnNoBackend,
    conn::reject::Rejection,
    metrics::WorkerCounter,
    relay::Relay,
    uring::sys,
    uring::token::{Op, Token},
};

impl<R: Relay> Engine<R> {
    /// Answers as `on_no_backend` says; the client descriptor travels in the token instead of a
    /// slot.
    pub(super) fn reject(&mut self, client: RawFd, on_no_backend: OnNoBackend) {
        self.stats.add(WorkerCounter::Rejected);
        match Rejection::from(on_no_backend) {
            Rejection::Answer(b"") => {
                // The FIN, the drain and the close of the answer's path, without the answer.
                self.rejecting += 1;
                self.on_reject_written(client);
            }
            Rejection::Answer(answer) => self.write_answer(client, answer),
            Rejection::Reset => {
                sys::set_linger_zero(client);
                self.close_client(client);
            }
        }
    }

    /// Writes the answer; its completion continues in [`Engine::on_reject_written`].
    fn write_answer(&mut self, client: RawFd, answer: &'static [u8]) {
        let write = opcode::Write::new(Fd(client), answer.as_ptr(), answer.len() as u32)
            .build()
            .user_data(Token::conn(client as u32, 0, Op::RejectWrite).into());
        // SAFETY: the answer is a static; the client descriptor stays open until RejectDrain.
        if unsafe { self.ring.push(&write) }.is_ok() {
            self.rejecting += 1;
        } else {
            self.close_client(client);
        }
    }

    /// Shuts down writing (FIN after the answer), then reads and discards what the client still
    /// sends, for at most [`crate::conn::reject::LINGER`]: closing with unread input would send a reset instead.
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
