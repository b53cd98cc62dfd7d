//! The PROXY protocol in the io_uring loop, on both sides of a connection.
//!
//! - `accept_proxy`: before anything else, a client's header is received into its slot's buffer
//!   (a `Recv` linked with a `LinkTimeout` of the remaining 5 s budget, re-armed per read) and
//!   parsed; its addresses then stand for the client's. A header that is invalid, too long or
//!   late closes the client, is counted and is never forwarded; the bytes after a valid one are.
//! - `send_proxy`: what goes to the backend before relaying — ringlb's own header, then the
//!   client bytes that followed the client's header — is one `Send` linked after the connect
//!   and its timeout, so it costs no system call of its own and no byte of the client can pass
//!   it. The relay starts only once both the connect and that send have completed.
//!
//! The client's address comes from `getpeername` (shared with `source_hash`, which needs it
//! too) and the address it connected to from the listener when it is bound to one address, or
//! from `getsockname` on a wildcard (`0.0.0.0`, `[::]`) listener; only connections to a target
//! with `send_proxy` ask, and never twice. Owns no descriptor and never blocks.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use io_uring::{opcode, squeue, types::Fd};

use super::{count_bytes, Engine};
use crate::{
    access_log::Termination,
    conn::{
        events,
        header::{self, HeaderRefused, HEADER_BUDGET},
        routing::{PreludeRefused, ReadEnd, HELLO_BUDGET},
    },
    metrics::WorkerCounter,
    proxy_protocol::{self, Addresses, Header, ParseOutcome, Version, MAX_V2_LEN},
    relay::Relay,
    uring::{
        sys,
        token::{Op, Token},
    },
    worker::slots::UNKNOWN_PEER,
};

impl<R: Relay> Engine<R> {
    /// A new client must first send a PROXY header (`accept_proxy`), its ClientHello (a
    /// service with SNI routes), or both, all within one budget from the accept.
    pub(super) fn start_prelude(&mut self, index: u32) {
        let slot = self.slots.at(index);
        let base = &slot.settings().base;
        let cap = base.routing.prelude_cap(base.accept_proxy);
        slot.prelude.reserve(MAX_V2_LEN);
        slot.prelude.allow(cap);
        slot.prelude.deadline = Some(Instant::now() + HEADER_BUDGET.max(HELLO_BUDGET));
        self.read_prelude(index);
    }

    /// Whether the client's PROXY header is still awaited (else its ClientHello is).
    fn awaits_header(&mut self, index: u32) -> bool {
        let slot = self.slots.at(index);
        slot.settings().base.accept_proxy && slot.prelude.consumed == 0
    }

    /// Refuses the client whose prelude read ended with `end`, as a PROXY header or as a
    /// ClientHello refusal, whichever it is still sending.
    fn refuse_prelude(&mut self, index: u32, end: ReadEnd) {
        match PreludeRefused::of(self.awaits_header(index), end) {
            PreludeRefused::Header(why) => self.refuse_header(index, why),
            PreludeRefused::Hello(why) => self.refuse_hello(index, why),
        }
    }

    /// Receives more of the client's prelude (see [`Engine::read_prelude`]).
    pub(super) fn read_more(&mut self, index: u32) {
        self.read_prelude(index);
    }

    /// Receives more of the client's prelude, for at most what is left of its budget.
    fn read_prelude(&mut self, index: u32) {
        let slot = self.slots.at(index);
        let now = Instant::now();
        let left = slot
            .prelude
            .deadline
            .map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
        if left.is_zero() {
            return self.refuse_prelude(index, ReadEnd::Late);
        }
        let timeout = slot.prelude.set_timeout(left);
        let (Some((ptr, room)), Some(timeout)) = (slot.prelude.receive_window(), timeout) else {
            return self.refuse_prelude(index, ReadEnd::Submit);
        };
        if room == 0 {
            return self.refuse_prelude(index, ReadEnd::Full);
        }
        let recv = opcode::Recv::new(Fd(slot.client), ptr, room as u32)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(Token::conn(index, slot.generation, Op::ProxyRead).into());
        let deadline = opcode::LinkTimeout::new(timeout)
            .build()
            .user_data(Token::IGNORE.into());
        // SAFETY: the receive writes at most `room` bytes into the slot's prelude buffer, which
        // is boxed (it does not move when the slot table grows) and is neither freed nor reused
        // before this receive completes (a slot is only freed with nothing in flight); the
        // timespec is in the same box and is read by the kernel at submission; the client
        // socket stays open until teardown.
        if unsafe { self.ring.push_chain(&[recv, deadline]) }.is_ok() {
            slot.inflight += 1;
        } else {
            self.refuse_prelude(index, ReadEnd::Submit);
        }
    }

    /// A receive of the client's prelude completed.
    pub(super) fn on_proxy_read(&mut self, token: Token, result: i32) {
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        slot.inflight -= 1;
        if slot.closing {
            return self.finish_teardown(token.slot, token.generation);
        }
        let index = token.slot;
        match result {
            0 => return self.refuse_prelude(index, ReadEnd::Closed),
            // The linked timeout fired (a teardown's cancel was handled above).
            e if e == -libc::ECANCELED => return self.refuse_prelude(index, ReadEnd::Late),
            e if e < 0 => return self.refuse_prelude(index, ReadEnd::Io(-e)),
            n => slot.prelude.received += n as usize,
        }
        if !self.awaits_header(index) {
            return self.on_hello_bytes(index);
        }
        let slot = self.slots.at(index);
        let parsed = match proxy_protocol::parse(slot.prelude.received_bytes()) {
            ParseOutcome::Complete { header, consumed } => Ok(Some((header.addresses, consumed))),
            ParseOutcome::Incomplete { .. } => Ok(None),
            ParseOutcome::Invalid(error) => Err(error),
        };
        match parsed {
            Ok(Some((addresses, consumed))) => {
                slot.prelude.consumed = consumed;
                // LOCAL and UNKNOWN headers carry no client: the real endpoints stand.
                if let Addresses::Tcp { src, dst } = addresses {
                    slot.prelude.addrs = Some((src, dst));
                    slot.peer = src;
                }
                self.on_hello_bytes(index);
            }
            Ok(None) => self.read_prelude(index),
            Err(error) => self.refuse_header(index, error.into()),
        }
    }

    /// Closes a client whose header was refused; nothing of it reaches a backend.
    fn refuse_header(&mut self, index: u32, why: HeaderRefused) {
        self.stats.add(WorkerCounter::ProxyHeaderRefused);
        events::header_refused(self.id, &why);
        let client = self.slots.at(index).client;
        self.log_end(index, Termination::ProxyHeaderRefused);
        self.slots.remove(index);
        self.close_client(client);
    }

    /// Submits a backend connect and its linked timeout, followed (linked) by the send of what
    /// must reach the backend before relaying, if anything; counts what is in flight. `false`
    /// if the ring refused the chain.
    ///
    /// # Safety
    /// As for [`crate::uring::ring::Ring::push_chain`], for what `connect` and `deadline` point
    /// to.
    pub(super) unsafe fn push_connect(
        &mut self,
        index: u32,
        connect: squeue::Entry,
        deadline: squeue::Entry,
    ) -> bool {
        let send = self.prelude_send(index);
        let slot = self.slots.at(index);
        let sends = u32::from(send.is_some());
        let pushed = match send {
            // SAFETY: forwarded from the caller.
            None => unsafe { self.ring.push_chain(&[connect, deadline]) },
            // SAFETY: forwarded from the caller for the connect and its timeout. The send reads
            // the slot's boxed prelude buffer, which stays put and unchanged until the send
            // completes (the slot waits for both completions of the chain before it retries,
            // relays or is freed); the backend socket stays open until teardown.
            Some(send) => unsafe {
                let deadline = deadline.flags(squeue::Flags::IO_LINK);
                self.ring.push_chain(&[connect, deadline, send])
            },
        };
        if pushed.is_err() {
            slot.prelude.waiting = 0;
            return false;
        }
        slot.inflight += 1 + sends;
        true
    }

    /// The send to link after the connect to the slot's backend: its PROXY header if it wants
    /// one, then the client bytes that followed the client's header; `None` if neither.
    fn prelude_send(&mut self, index: u32) -> Option<squeue::Entry> {
        let slot = self.slots.at(index);
        let version = slot.backend.as_ref().and_then(|b| b.send_proxy());
        if version.is_none() && slot.prelude.leftover() == 0 {
            return None;
        }
        let header = version.map(|v| self.header_for(index, v));
        let slot = self.slots.at(index);
        slot.prelude.reserve(0);
        let (ptr, len) = slot.prelude.stage(header.as_ref())?;
        slot.prelude.waiting = 2;
        let send = opcode::Send::new(Fd(slot.server), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Token::conn(index, slot.generation, Op::ProxySend).into());
        Some(send)
    }

    /// The header for this client: its addresses, or (if the kernel cannot tell them any more,
    /// the client being gone) the header that says "unknown".
    fn header_for(&mut self, index: u32, version: Version) -> Header {
        header::header_for(version, self.client_addrs(index))
    }

    /// The client's address and the address it connected to: from its own PROXY header, or
    /// asked of the kernel once.
    fn client_addrs(&mut self, index: u32) -> Option<(SocketAddr, SocketAddr)> {
        let service = self.slots.at(index).settings().base.service as usize;
        let fixed_local = self.listeners.get(service).and_then(|l| l.local_addr);
        let slot = self.slots.at(index);
        if slot.prelude.addrs.is_none() {
            let src = match slot.peer {
                peer if peer == UNKNOWN_PEER => sys::peer_addr(slot.client)?,
                peer => peer,
            };
            let dst = match fixed_local {
                Some(local) => local,
                None => sys::local_addr(slot.client)?,
            };
            slot.peer = src;
            slot.prelude.addrs = Some((src, dst));
        }
        slot.prelude.addrs
    }

    /// The prelude send completed.
    pub(super) fn on_proxy_sent(&mut self, token: Token, result: i32) {
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        slot.inflight -= 1;
        if slot.closing {
            return self.finish_teardown(token.slot, token.generation);
        }
        self.chain_part_done(token, false, result);
    }

    /// One part of a connect chain with a prelude send completed (`connect`: which one). Once
    /// both have: a failed connect moves on to another backend, a failed send closes, a short
    /// send sends the rest, and otherwise the relay starts.
    pub(super) fn chain_part_done(&mut self, token: Token, connect: bool, result: i32) {
        let index = token.slot;
        let slot = self.slots.at(index);
        let prelude = &mut slot.prelude;
        if connect {
            prelude.connect_result = result;
        } else {
            prelude.send_result = result;
        }
        prelude.waiting = prelude.waiting.saturating_sub(1);
        if prelude.waiting > 0 {
            return;
        }
        let (connected, sent) = (prelude.connect_result, prelude.send_result);
        if connected < 0 {
            return self.on_connect_failed(index, -connected);
        }
        if sent <= 0 {
            let errno = if sent == 0 { libc::EPIPE } else { -sent };
            if slot.settings().base.replay_buffer.is_some() {
                // The backend went away before it answered: an early close like any other.
                // Nothing of it reached the client, and the prelude is staged afresh for the
                // next backend.
                if let (Some(backend), Some(pool)) = (slot.backend.as_deref(), slot.pool) {
                    let client_sent = slot.prelude.carries_client_bytes();
                    self.pools[pool as usize]
                        .passive
                        .prelude_failed(backend, client_sent);
                }
                return self.retry_elsewhere(index);
            }
            let error = std::io::Error::from_raw_os_error(errno);
            tracing::debug!(worker = self.id, %error, "cannot send the PROXY header");
            self.ends(token, Termination::BackendReset);
            return self.teardown(index, token.generation);
        }
        let Some((ptr, len)) = prelude.advance(sent as usize) else {
            // The client's bytes that came with its header or its ClientHello were delivered.
            let moved = [prelude.leftover() as u64, 0];
            count_bytes(slot.backend.as_deref(), self.id, moved);
            if let Some(tally) = slot.tally.as_mut() {
                tally.add(moved);
            }
            return self.on_connected(index, token.generation);
        };
        let send = opcode::Send::new(Fd(slot.server), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(token.with_op(Op::ProxySend).into());
        // SAFETY: as for the linked send: the rest of the slot's boxed prelude buffer, unchanged
        // until this send completes; the backend socket stays open until teardown.
        if unsafe { self.ring.push(&send) }.is_ok() {
            slot.inflight += 1;
            slot.prelude.waiting = 1;
        } else {
            self.teardown(index, token.generation);
        }
    }
}
