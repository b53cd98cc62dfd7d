//! Accepting: one multishot accept per service's listener (a completion's token names the
//! listener, so each client starts with its service's settings), the connection cap, descriptor
//! exhaustion, and stopping on shutdown. A client still handed over once stopping began is served
//! until the drain deadline: with a successor sharing the listener, closing it would lose it; so
//! are the clients still queued in the listener when its accept ends (`close_listener`).

use std::{
    net::{SocketAddr, TcpListener},
    os::fd::{AsRawFd, IntoRawFd, RawFd},
    time::Instant,
};

use io_uring::{
    cqueue, opcode,
    types::{CancelBuilder, Fd, Timespec},
};

use super::Engine;
use crate::worker::settings::Settings;
use crate::{
    access_log::Termination,
    conn::{events, settings::Current, settings::ServiceContext, tally::Tally},
    listener,
    metrics::WorkerCounter,
    relay::Relay,
    stats::ServiceCounter,
    uring::token::{Op, Token},
    uring::{ring::Completion, sys},
    worker::slots::UNKNOWN_PEER,
};

/// One service's listener as this worker accepts on it.
pub(super) struct Listening {
    /// `None` once stopping: closing it makes the kernel refuse new clients at once.
    listener: Option<TcpListener>,
    /// Its multishot accept is in the ring.
    armed: bool,
    /// The service's published settings; each new connection takes the latest (a reload
    /// changes them).
    settings: Current<Settings>,
    /// The address clients connect to, when the listener is bound to one (not a wildcard).
    pub(super) local_addr: Option<SocketAddr>,
}

impl Listening {
    pub(super) fn new(service: ServiceContext) -> Self {
        // Known once for a listener bound to one address; a wildcard one asks per connection.
        let local_addr = service.listener.local_addr().ok();
        Self {
            local_addr: local_addr.filter(|a| !a.ip().is_unspecified()),
            listener: Some(service.listener),
            armed: false,
            settings: Current::new(service.settings, Settings::derive),
        }
    }
}

impl<R: Relay> Engine<R> {
    /// Arms the accept of every listener that is not armed (unless stopping or at the cap).
    pub(super) fn arm_accept(&mut self) {
        for index in 0..self.listeners.len() {
            self.arm_listener(index);
        }
    }

    fn arm_listener(&mut self, index: usize) {
        let listening = &mut self.listeners[index];
        if self.stopping || listening.armed || self.at_capacity {
            return;
        }
        let Some(listener) = &listening.listener else {
            return;
        };
        let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(Token::accept(index as u32).into());
        // SAFETY: the listener stays open while the accept is armed: it is only closed after
        // the accept has been cancelled (`on_wake`), and the kernel holds its own reference.
        listening.armed = unsafe { self.ring.push(&accept) }.is_ok();
    }

    /// Whether any listener's accept is still in the ring.
    pub(super) fn accepting(&self) -> bool {
        self.listeners.iter().any(|l| l.armed)
    }

    /// Closes every listener at once (the loop failed): no new client queues at a dead worker.
    pub(super) fn close_listeners(&mut self) {
        for listening in &mut self.listeners {
            drop(listening.listener.take());
        }
    }

    pub(super) fn on_accept(&mut self, token: Token, c: Completion) {
        tracing::trace!(
            worker = self.id,
            result = c.result,
            flags = c.flags,
            "accept completion"
        );
        let index = token.slot as usize;
        let Some(listening) = self.listeners.get_mut(index) else {
            return;
        };
        let last = !cqueue::more(c.flags);
        if last {
            listening.armed = false;
        }
        if c.result >= 0 {
            self.on_client(index, c.result);
        }
        if last && self.stopping {
            self.close_listener(index);
        }
        if c.result < 0 && c.result != -libc::ECANCELED {
            self.on_accept_error(-c.result);
            return;
        }
        if !self.listeners[index].armed {
            self.arm_listener(index);
        }
    }

    fn on_client(&mut self, service: usize, client: RawFd) {
        self.stats.add(WorkerCounter::Accepted);
        self.stats.add_service(service, ServiceCounter::Accepted);
        // Accepted while stopping (the multishot accept posted it before its cancellation
        // took effect): the kernel handed this client to us, not to a successor sharing the
        // listener, so it is served like any open connection until the drain deadline; only
        // past that is it closed.
        if self.drain_expired {
            if self.log.on() {
                let peer = sys::peer_addr(client).unwrap_or(UNKNOWN_PEER);
                let now = Instant::now();
                let tally = Tally::new(now, service as u16);
                let record = tally.record(peer, 0, Termination::Drained, now);
                self.log.push(record);
            }
            // SAFETY: the accept just handed this descriptor over; nothing else has it.
            unsafe { sys::close(client) };
            return;
        }
        if self.limit.acquire() && !self.at_capacity {
            self.pause_for_capacity();
        }
        let settings = self.listeners[service].settings.get();
        let base = &settings.base;
        let reads_prelude = base.routing.reads_prelude(base.accept_proxy);
        let routed = base.routing.without_hello();
        let index = self.slots.insert(client);
        let slot = self.slots.at(index);
        slot.last_active = self.tick;
        slot.settings = Some(settings);
        if self.log.on() {
            // The one clock reading and the one `getpeername` a logged connection adds
            // (multishot accept does not return the peer); `source_hash` reuses the address.
            slot.tally = Some(Tally::new(Instant::now(), service as u16));
            if let Some(peer) = sys::peer_addr(client) {
                slot.peer = peer;
            }
        }
        if reads_prelude {
            self.start_prelude(index);
        } else {
            self.route(index, routed);
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
        if !self.accepting() && !self.stopping && !self.arm_timer(Op::AcceptResume) {
            self.arm_accept();
        }
    }

    fn cancel_accept(&mut self) {
        for listening in &self.listeners {
            if let (true, Some(listener)) = (listening.armed, &listening.listener) {
                let cancel =
                    opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(listener.as_raw_fd())).all())
                        .build()
                        .user_data(Token::IGNORE.into());
                // SAFETY: a cancellation references no memory.
                let _ = unsafe { self.ring.push(&cancel) };
            }
        }
    }

    /// Stopping, with listener `index`'s accept no longer in the ring: serves the clients still
    /// queued in it (`listener::queued` says why none may be left there), then closes it, so the
    /// kernel refuses new clients at once unless a successor holds the socket too.
    fn close_listener(&mut self, index: usize) {
        let Some(listener) = self.listeners[index].listener.take() else {
            return;
        };
        for (client, _) in listener::queued(&listener) {
            self.on_client(index, client.into_raw_fd());
        }
    }

    /// Shutdown: stop accepting at once and close the listener, so new clients are refused
    /// rather than queued; open connections, and clients already queued, may finish until the
    /// drain deadline.
    pub(super) fn on_wake(&mut self) {
        if self.stopping {
            return;
        }
        events::stopping(self.id, self.slots.live());
        self.cancel_accept();
        self.stopping = true;
        for index in 0..self.listeners.len() {
            if !self.listeners[index].armed {
                self.close_listener(index);
            }
        }
        // The drain deadline as published now (a reload may have changed it).
        let drain = self.listeners[0].settings.get().base.drain_timeout;
        self.timers.drain = Timespec::from(drain);
        // Armed even with nothing open: a client the accept still hands over must not outlive
        // the drain deadline either.
        if !self.arm_timer(Op::DrainDeadline) {
            self.close_all();
        }
    }
}
