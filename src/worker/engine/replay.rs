//! `retry_on_early_close`: the replay phase between a connect and the relay.
//!
//! A backend whose listener closes or dies resets the connections still queued in its accept
//! backlog: ringlb had connected and forwarded the client's first bytes, then gets a reset or
//! EOF before any byte comes back. With replay on, the client's bytes are kept (up to
//! `replay_buffer`) until the backend's first byte arrives; if the backend closes before that,
//! another backend is connected and the bytes are sent again. Once the backend has spoken, or
//! the buffer is full, the connection is committed and handed to the relay strategy, which
//! carries on from there (bytes not yet read stay in the sockets, so nothing is lost or
//! reordered). Safe for idempotent request/response traffic only: a backend that processed the
//! request and then crashed sees it twice — hence opt-in.

use io_uring::{
    opcode,
    types::{CancelBuilder, Fd},
};

use super::Engine;
use crate::{
    conn::passive::EarlyClose,
    relay::{Ends, Io, Relay},
    uring::token::{Op, Token},
    worker::slots::Replay,
};

impl<R: Relay> Engine<R> {
    /// The backend is connected: start (or, after a retry, restart) the replay phase, or hand
    /// the connection to the relay at once when replay is off.
    pub(super) fn on_connected(&mut self, index: u32, generation: u32) {
        let Some(size) = self.replay_size else {
            return self.start_relay(index, generation);
        };
        let slot = self.slots.at(index);
        match slot.replay.as_mut() {
            Some(replay) => replay.sent = 0,
            None => {
                let buf = self
                    .replay_pool
                    .pop()
                    .unwrap_or_else(|| vec![0u8; size].into_boxed_slice());
                slot.replay = Some(Replay {
                    buf,
                    len: 0,
                    sent: 0,
                    peek: Box::new([0]),
                    receiving: false,
                    sending: false,
                    peeking: false,
                    client_eof: false,
                    committing: false,
                    retrying: false,
                });
            }
        }
        self.replay_step(index, generation);
    }

    /// Hands a connected (and committed) pair to the relay strategy.
    fn start_relay(&mut self, index: u32, generation: u32) {
        let slot = self.slots.at(index);
        let mut conn = self.relay.open(Ends {
            client: slot.client,
            backend: slot.server,
        });
        let token = Token::conn(index, generation, Op::Ignore);
        let mut io = Io {
            ring: &mut self.ring,
            token,
            inflight: &mut slot.inflight,
            moved: [0; 2],
        };
        let flow = self.relay.start(&mut io, &mut conn);
        super::count_bytes(slot.backend.as_deref(), self.id, io.moved);
        slot.conn = Some(conn);
        self.after(token, flow);
    }

    pub(super) fn on_replay(&mut self, token: Token, result: i32) {
        let tick = self.tick;
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        slot.inflight -= 1;
        slot.last_active = tick;
        if slot.closing {
            return self.finish_teardown(token.slot, token.generation);
        }
        let Some(replay) = slot.replay.as_mut() else {
            return; // a peek that completed after the commit: nothing to do
        };
        match token.op {
            Op::ReplayRecv => {
                replay.receiving = false;
                match result {
                    n if n > 0 => replay.len += n as usize,
                    0 => replay.client_eof = true,
                    e if e == -libc::ECANCELED && replay.committing => {}
                    _ => return self.teardown(token.slot, token.generation),
                }
            }
            Op::ReplaySend => {
                replay.sending = false;
                if result >= 0 {
                    replay.sent += result as usize;
                    if let Some(backend) = slot.backend.as_deref() {
                        backend.bytes_moved(self.id, [result as u64, 0]);
                    }
                } else if !replay.committing {
                    // Once committing, the relay finds the failure and passes it on.
                    replay.retrying = true;
                }
            }
            _ => {
                replay.peeking = false;
                match result {
                    n if n > 0 => {
                        if let Some(backend) = slot.backend.as_deref() {
                            self.passive.answered(backend);
                        }
                        self.commit(token.slot, token.generation)
                    }
                    e if e == -libc::ECANCELED && replay.committing => {}
                    _ => replay.retrying = true,
                }
            }
        }
        self.replay_step(token.slot, token.generation);
    }

    /// The backend spoke, or the buffer is full: stop the replay phase's receive and peek (their
    /// buffers must not be freed under the kernel); the relay takes over once they ended and
    /// what was received has been forwarded.
    fn commit(&mut self, index: u32, generation: u32) {
        let slot = self.slots.at(index);
        let Some(replay) = slot.replay.as_mut() else {
            return;
        };
        replay.committing = true;
        let pending = [
            (replay.receiving, Op::ReplayRecv),
            (replay.peeking, Op::ReplayPeek),
        ];
        for (in_flight, op) in pending {
            if in_flight {
                let target = Token::conn(index, generation, op).into();
                let cancel = opcode::AsyncCancel2::new(CancelBuilder::user_data(target))
                    .build()
                    .user_data(Token::IGNORE.into());
                // SAFETY: a cancellation references no memory.
                let _ = unsafe { self.ring.push(&cancel) };
            }
        }
    }

    /// Submits what the replay phase needs next, retries on an early close, or commits.
    fn replay_step(&mut self, index: u32, generation: u32) {
        let slot = self.slots.at(index);
        let Some(replay) = slot.replay.as_mut() else {
            return;
        };
        if replay.retrying {
            if replay.sending || replay.peeking {
                return; // the old backend's operations must end before its socket closes
            }
            replay.retrying = false;
            // The client's bytes went out in the replay phase, or with the PROXY header.
            let client_sent = replay.len > 0 || slot.prelude.carries_client_bytes();
            let verdict = match slot.backend.as_deref() {
                Some(backend) => self.passive.early_close(backend, client_sent),
                None => EarlyClose::Replay,
            };
            return match verdict {
                EarlyClose::Replay => self.retry_elsewhere(index),
                // The relay reads the backend's close and passes it on to the client.
                EarlyClose::PassThrough => {
                    self.commit(index, generation);
                    self.replay_step(index, generation)
                }
            };
        }
        let (client, server) = (slot.client, slot.server);
        let mut ops = Vec::new();
        if !replay.sending && replay.sent < replay.len {
            let pending = &replay.buf[replay.sent..replay.len];
            let send = opcode::Send::new(Fd(server), pending.as_ptr(), pending.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(Token::conn(index, generation, Op::ReplaySend).into());
            replay.sending = true;
            ops.push(send);
        }
        if replay.committing {
            if !(replay.sending || replay.receiving || replay.peeking) {
                let replay = slot.replay.take().expect("checked above");
                self.replay_pool.push(replay.buf);
                return self.start_relay(index, generation);
            }
        } else {
            if !replay.receiving && !replay.client_eof && replay.len < replay.buf.len() {
                let room = &mut replay.buf[replay.len..];
                let recv = opcode::Recv::new(Fd(client), room.as_mut_ptr(), room.len() as u32)
                    .build()
                    .user_data(Token::conn(index, generation, Op::ReplayRecv).into());
                replay.receiving = true;
                ops.push(recv);
            }
            if !replay.peeking {
                let peek = opcode::Recv::new(Fd(server), replay.peek.as_mut_ptr(), 1)
                    .flags(libc::MSG_PEEK)
                    .build()
                    .user_data(Token::conn(index, generation, Op::ReplayPeek).into());
                replay.peeking = true;
                ops.push(peek);
            }
        }
        let buffer_full = replay.len == replay.buf.len();
        for op in &ops {
            // SAFETY: the buffers live in the slot's `Replay`, which is neither freed nor
            // reused while `inflight` counts these operations (teardown waits for them); the
            // descriptors stay open until teardown.
            if unsafe { self.ring.push(op) }.is_ok() {
                slot.inflight += 1;
            } else {
                return self.teardown(index, generation);
            }
        }
        if buffer_full && !replay.committing {
            // Past the buffer the connection is committed: no replay beyond this point.
            self.commit(index, generation);
            self.replay_step(index, generation);
        }
    }
}
