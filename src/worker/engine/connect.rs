//! Connecting: pick a backend, connect with a linked timeout, move on to another backend when
//! the connect fails, and hand the connected pair to the relay strategy.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use io_uring::{
    opcode,
    types::{Fd, Timespec},
};

use super::Engine;
use crate::{
    relay::{Ends, Io, Relay},
    uring::sys,
    worker::token::{Op, Token},
};

/// Placeholder client address until a strategy needs the real one.
const UNKNOWN_PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

impl<R: Relay> Engine<R> {
    /// Picks a backend and starts connecting to it, or rejects the client when none is left.
    pub(super) fn connect(&mut self, index: u32) {
        let Some(backend) = self.balancer.pick(UNKNOWN_PEER) else {
            return self.give_up(index);
        };
        let server = match sys::tcp_socket(&backend.addr) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::debug!(worker = self.id, error = %e, "cannot create backend socket");
                return self.give_up(index);
            }
        };
        let slot = self.slots.at(index);
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
        let deadline = opcode::LinkTimeout::new(&self.timers.connect as *const Timespec)
            .build()
            .user_data(Token::IGNORE.into());
        slot.server = server;
        slot.attempts += 1;
        slot.backend = Some(backend);
        // SAFETY: the sockaddr lives in the backend, which the slot holds until teardown; the
        // socket stays open until teardown; the timespec is boxed in `self`.
        if unsafe { self.ring.push_chain(&[connect, deadline]) }.is_ok() {
            slot.inflight += 1;
        } else {
            sys::close(server);
            slot.server = -1;
            slot.backend = None;
            self.give_up(index);
        }
    }

    /// No backend for this client: free its slot and send the no-backend answer.
    fn give_up(&mut self, index: u32) {
        let client = self.slots.at(index).client;
        self.slots.remove(index);
        self.reject(client);
    }

    pub(super) fn on_connect(&mut self, token: Token, result: i32) {
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        slot.inflight -= 1;
        if slot.closing {
            return self.finish_teardown(token.slot, token.generation);
        }
        let backend = slot
            .backend
            .clone()
            .expect("a connecting slot has a backend");
        if result < 0 {
            backend.connect_failed();
            let error = std::io::Error::from_raw_os_error(-result);
            tracing::debug!(worker = self.id, backend = %backend.name, addr = %backend.addr,
                %error, attempt = slot.attempts, "connect failed");
            sys::close(slot.server);
            slot.server = -1;
            slot.backend = None;
            return if slot.attempts < self.attempts {
                self.connect(token.slot)
            } else {
                self.give_up(token.slot)
            };
        }
        backend.connection_opened();
        slot.opened = true;
        let mut conn = self.relay.open(Ends {
            client: slot.client,
            backend: slot.server,
        });
        let mut io = Io {
            ring: &mut self.ring,
            token: Token::conn(token.slot, token.generation, Op::Ignore),
            inflight: &mut slot.inflight,
        };
        let flow = self.relay.start(&mut io, &mut conn);
        slot.conn = Some(conn);
        self.after(token, flow);
    }
}
