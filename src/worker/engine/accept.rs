//! Accepting: the listener's multishot accept, the connection cap, descriptor exhaustion, and
//! stopping on shutdown.

use std::{os::fd::AsRawFd, os::fd::RawFd, time::Instant};

use io_uring::{
    cqueue, opcode,
    types::{CancelBuilder, Fd, Timespec},
};

use super::Engine;
use crate::{
    access_log::Termination,
    conn::{events, tally::Tally},
    metrics::WorkerCounter,
    relay::Relay,
    uring::token::{Op, Token},
    uring::{ring::Completion, sys},
    worker::slots::UNKNOWN_PEER,
};

impl<R: Relay> Engine<R> {
    pub(super) fn arm_accept(&mut self) {
        if self.stopping || self.accept_armed || self.at_capacity {
            return;
        }
        let Some(listener) = &self.listener else {
            return;
        };
        let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(Token::worker(Op::Accept).into());
        // SAFETY: the listener stays open while the accept is armed: it is only closed after
        // the accept has been cancelled (`on_wake`), and the kernel holds its own reference.
        self.accept_armed = unsafe { self.ring.push(&accept) }.is_ok();
    }

    pub(super) fn on_accept(&mut self, c: Completion) {
        tracing::trace!(
            worker = self.id,
            result = c.result,
            flags = c.flags,
            "accept completion"
        );
        if !cqueue::more(c.flags) {
            self.accept_armed = false;
            if self.stopping {
                // Closing the listener makes the kernel refuse new clients at once.
                self.listener = None;
            }
        }
        if c.result >= 0 {
            self.on_client(c.result);
        } else if c.result != -libc::ECANCELED {
            self.on_accept_error(-c.result);
            return;
        }
        if !self.accept_armed {
            self.arm_accept();
        }
    }

    fn on_client(&mut self, client: RawFd) {
        self.stats.add(WorkerCounter::Accepted);
        if self.stopping {
            if self.log.on() {
                let peer = sys::peer_addr(client).unwrap_or(UNKNOWN_PEER);
                let now = Instant::now();
                let record = Tally::new(now).record(peer, 0, Termination::Drained, now);
                self.log.push(record);
            }
            // SAFETY: the accept just handed this descriptor over; nothing else has it.
            unsafe { sys::close(client) };
            return;
        }
        if self.limit.acquire() && !self.at_capacity {
            self.pause_for_capacity();
        }
        let settings = self.settings.get();
        self.passive.set_fall(settings.base.passive_fall);
        let accept_proxy = settings.base.accept_proxy;
        let index = self.slots.insert(client);
        let slot = self.slots.at(index);
        slot.last_active = self.tick;
        slot.settings = Some(settings);
        if self.log.on() {
            // The one clock reading and the one `getpeername` a logged connection adds
            // (multishot accept does not return the peer); `source_hash` reuses the address.
            slot.tally = Some(Tally::new(Instant::now()));
            if let Some(peer) = sys::peer_addr(client) {
                slot.peer = peer;
            }
        }
        if accept_proxy {
            self.start_header(index);
        } else {
            self.start_connect(index);
        }
    }

    /// The cap is reached: stop accepting; new clients wait in the listen backlog. Accepting
    /// resumes when a connection of this worker closes, or at the next pause tick when another
    /// worker's did.
    fn pause_for_capacity(&mut self) {
        self.at_capacity = true;
        self.stats.add(WorkerCounter::LimitReached);
        events::limit_reached(self.id, self.limit.open());
        self.cancel_accept();
        if !self.arm_timer(Op::AcceptResume) {
            self.at_capacity = false;
        }
    }

    pub(super) fn on_accept_resume(&mut self) {
        if self.at_capacity {
            if self.limit.has_room() {
                self.at_capacity = false;
            } else if self.arm_timer(Op::AcceptResume) {
                return;
            }
        }
        self.arm_accept();
    }

    /// Out of descriptors or memory: pause accepting briefly instead of spinning, keep serving
    /// the open connections, log at most once a second; accepting resumes by itself.
    fn on_accept_error(&mut self, errno: i32) {
        self.stats.add(WorkerCounter::AcceptError);
        let error = std::io::Error::from_raw_os_error(errno);
        self.accept_errors
            .failed(self.id, &error, self.limit.open());
        if !self.accept_armed && !self.stopping && !self.arm_timer(Op::AcceptResume) {
            self.arm_accept();
        }
    }

    fn cancel_accept(&mut self) {
        if let (true, Some(listener)) = (self.accept_armed, &self.listener) {
            let cancel =
                opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(listener.as_raw_fd())).all())
                    .build()
                    .user_data(Token::IGNORE.into());
            // SAFETY: a cancellation references no memory.
            let _ = unsafe { self.ring.push(&cancel) };
        }
    }

    /// Shutdown: stop accepting at once and close the listener, so new clients are refused
    /// rather than queued; open connections may finish until the drain deadline.
    pub(super) fn on_wake(&mut self) {
        if self.stopping {
            return;
        }
        events::stopping(self.id, self.slots.live());
        self.cancel_accept();
        self.stopping = true;
        if !self.accept_armed {
            self.listener = None;
        }
        // The drain deadline as published now (a reload may have changed it).
        self.timers.drain = Timespec::from(self.settings.get().base.drain_timeout);
        if self.slots.live() > 0 && !self.arm_timer(Op::DrainDeadline) {
            self.close_all();
        }
    }
}
