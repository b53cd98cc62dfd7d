//! Connecting: pick a backend, bind the socket to a `source` address when there is one, connect
//! with a linked timeout, move on to another backend when the connect fails (reporting the
//! failed one to the health checker unless the failure is local), and hand the connected pair
//! to the relay strategy.

use std::sync::Arc;

use io_uring::{
    opcode,
    types::{Fd, Timespec},
};

use super::Engine;
use crate::{
    access_log::Termination,
    backend::Backend,
    balancer::Strategy,
    conn::{events, tally},
    metrics::WorkerCounter,
    relay::Relay,
    stats::ServiceCounter,
    uring::sys,
    uring::token::{Op, Token},
    worker::slots::UNKNOWN_PEER,
};

impl<R: Relay> Engine<R> {
    /// Picks a backend of the slot's pool for a new client and starts connecting to it; a
    /// client routed to no pool gets the no-backend answer.
    pub(super) fn start_connect(&mut self, index: u32) {
        let slot = self.slots.at(index);
        let Some(pool) = slot.pool.and_then(|p| self.pools.get(p as usize)) else {
            return self.give_up(index);
        };
        if pool.balancer.strategy() == Strategy::SourceHash
            && slot.prelude.addrs.is_none()
            && slot.peer == UNKNOWN_PEER
        {
            // Only this strategy needs the client's address (unless a PROXY header gave it);
            // multishot accept does not return it, so ask the kernel once.
            if let Some(peer) = sys::peer_addr(slot.client) {
                slot.peer = peer;
            }
        }
        self.connect(index);
    }

    /// Picks a backend not tried yet for this client and connects to it, or rejects the client
    /// when none is left.
    fn connect(&mut self, index: u32) {
        let slot = self.slots.at(index);
        let balancer = slot.pool.and_then(|p| self.pools.get(p as usize));
        let Some(backend) = balancer.and_then(|pool| slot.failed.pick(&pool.balancer, slot.peer))
        else {
            return self.give_up(index);
        };
        let server = match sys::tcp_socket(&backend.addr) {
            Ok(fd) => fd,
            Err(e) => {
                events::no_backend_socket(self.id, &e);
                return self.give_up(index);
            }
        };
        if let Some(source) = self.sources.pick(&backend) {
            if let Err(e) = sys::bind_source(server, source) {
                // SAFETY: the socket was created just above and nothing else has it.
                unsafe { sys::close(server) };
                self.sources.bind_failed(self.id, source, &e);
                return self.give_up(index);
            }
        }
        let connect = opcode::Connect::new(
            Fd(server),
            backend.sockaddr.as_ptr().cast(),
            backend.sockaddr.len(),
        )
        .build()
        .flags(io_uring::squeue::Flags::IO_LINK)
        .user_data(Token::conn(index, slot.generation, Op::Connect).into());
        // A backend that never answers the SYN must not hold the client for the kernel's
        // two-minute SYN retry budget: the connect is cancelled and the next backend tried.
        let deadline = opcode::LinkTimeout::new(&slot.settings().connect as *const Timespec)
            .build()
            .user_data(Token::IGNORE.into());
        // Counted from the pick, so least-connections sees a burst of new clients.
        backend.connection_opened();
        if let Some(tally) = slot.tally.as_mut() {
            tally.trying(backend.addr);
        }
        slot.opened = true;
        slot.server = server;
        slot.attempts += 1;
        slot.backend = Some(backend);
        // SAFETY: the sockaddr lives in the backend, which the slot holds until teardown; the
        // socket stays open until teardown; the timespec is in the slot's settings, an `Rc` the
        // slot holds until teardown.
        if !unsafe { self.push_connect(index, connect, deadline) } {
            self.abandon_backend(index);
            self.give_up(index);
        }
    }

    /// Closes the slot's backend socket and stops counting the connection on that backend;
    /// returns the backend.
    fn abandon_backend(&mut self, index: u32) -> Option<Arc<Backend>> {
        let slot = self.slots.at(index);
        // SAFETY: the backend socket is the slot's own (created in `connect`) and no operation
        // on it is in flight: its connect chain has completed.
        unsafe { sys::close(slot.server) };
        slot.server = -1;
        let backend = slot.backend.take();
        if let (Some(b), true) = (&backend, slot.opened) {
            b.connection_closed();
        }
        slot.opened = false;
        backend
    }

    /// No backend for this client: free its slot and send the no-backend answer. While a
    /// replay-phase receive is still in flight the slot cannot be freed yet: close instead.
    pub(super) fn give_up(&mut self, index: u32) {
        let slot = self.slots.at(index);
        if let Some(tally) = slot.tally.as_mut() {
            tally.ends(tally::rejected(u32::from(slot.attempts)));
        }
        if slot.inflight > 0 {
            let generation = slot.generation;
            return self.teardown(index, generation);
        }
        if let Some(replay) = slot.replay.take() {
            self.replay_pool.push(replay.buf);
        }
        let (client, on_no_backend) = (slot.client, slot.settings().base.on_no_backend);
        let service = slot.settings().base.service as usize;
        self.stats.add_service(service, ServiceCounter::NoBackend);
        self.log_end(index, Termination::NoBackend);
        self.slots.remove(index);
        self.reject(client, on_no_backend);
    }

    pub(super) fn on_connect(&mut self, token: Token, result: i32) {
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        slot.inflight -= 1;
        if slot.closing {
            return self.finish_teardown(token.slot, token.generation);
        }
        if slot.prelude.waiting > 0 {
            // A PROXY header (or the client's early bytes) is linked after this connect.
            return self.chain_part_done(token, true, result);
        }
        if result < 0 {
            return self.on_connect_failed(token.slot, -result);
        }
        self.on_connected(token.slot, token.generation);
    }

    /// The backend failed this client before answering (replay phase; the passive-health
    /// verdict is already taken): try another one.
    pub(super) fn retry_elsewhere(&mut self, index: u32) {
        let Some(backend) = self.abandon_backend(index) else {
            return self.give_up(index);
        };
        self.try_next(index, backend);
    }

    /// Lets the passive-health rules judge the failed connect (a refused or timed-out one
    /// reports the backend; a local failure blames nobody) and tries another backend.
    pub(super) fn on_connect_failed(&mut self, index: u32, errno: i32) {
        let Some(backend) = self.abandon_backend(index) else {
            return self.give_up(index);
        };
        let slot = self.slots.at(index);
        if let Some(pool) = slot.pool.and_then(|p| self.pools.get(p as usize)) {
            pool.passive.connect_failed(&backend, errno, slot.attempts);
        }
        self.try_next(index, backend);
    }

    /// Excludes `failed` for this client and connects another backend, until the attempts
    /// run out.
    fn try_next(&mut self, index: u32, failed: Arc<Backend>) {
        let slot = self.slots.at(index);
        slot.failed.push(failed);
        if slot.attempts < slot.settings().attempts {
            self.stats.add(WorkerCounter::Retry);
            self.connect(index);
        } else {
            self.give_up(index);
        }
    }
}
