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
    access_log::Termination,
    conn::passive::{BackendEnd, EarlyClose},
    relay::{Ends, Io, Relay},
    uring::{
        sys,
        token::{Op, Token},
    },
    worker::replay_state::{Phase, Replay},
};

impl<R: Relay> Engine<R> {
    /// The backend is connected: start (or, after a retry, restart) the replay phase, or hand
    /// the connection to the relay at once when replay is off.
    pub(super) fn on_connected(&mut self, index: u32, generation: u32) {
        let slot = self.slots.at(index);
        if let Some(tally) = slot.tally.as_mut() {
            tally.connected(std::time::Instant::now());
        }
        let Some(size) = slot.settings().base.replay_buffer else {
            return self.start_relay(index, generation);
        };
        match slot.replay.as_mut() {
            Some(replay) => replay.restart(),
            None => {
                // A pooled buffer of another size is from before a reload: let it go.
                let buf = match self.replay_pool.pop() {
                    Some(buf) if buf.len() == size => buf,
                    _ => vec![0u8; size].into_boxed_slice(),
                };
                slot.replay = Some(Replay::new(buf));
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
            kind_base: 0,
        };
        let flow = self.relay.start(&mut io, &mut conn);
        let moved = io.moved;
        super::count_bytes(slot.backend.as_deref(), self.id, moved);
        if let Some(tally) = slot.tally.as_mut() {
            tally.add(moved);
        }
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
        replay.inflight.end(token.op);
        let cancelled = result == -libc::ECANCELED
            && matches!(replay.phase, Phase::Committing | Phase::Retrying(_));
        match token.op {
            Op::ReplayRecv => match result {
                n if n > 0 => replay.len += n as usize,
                0 => replay.client_eof = true,
                _ if cancelled => {}
                _ => {
                    self.ends(token, Termination::ClientReset);
                    return self.teardown(token.slot, token.generation);
                }
            },
            Op::ReplaySend if result >= 0 => {
                replay.sent += result as usize;
                if let Some(backend) = slot.backend.as_deref() {
                    backend.bytes_moved(self.id, [result as u64, 0]);
                }
                if let Some(tally) = slot.tally.as_mut() {
                    tally.add([result as u64, 0]);
                }
            }
            // Once committing, the relay finds the failure and passes it on.
            Op::ReplaySend if replay.phase == Phase::Committing => {}
            Op::ReplaySend => replay.phase = Phase::Retrying(BackendEnd::Reset),
            _ => match result {
                n if n > 0 => {
                    if let (Some(backend), Some(pool)) = (slot.backend.as_deref(), slot.pool) {
                        self.pools[pool as usize].passive.answered(backend);
                    }
                    self.commit(token.slot, token.generation)
                }
                _ if cancelled => {}
                0 => replay.phase = Phase::Retrying(BackendEnd::Closed),
                _ => replay.phase = Phase::Retrying(BackendEnd::Reset),
            },
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
        replay.phase = Phase::Committing;
        let inflight = replay.inflight;
        for op in [Op::ReplayRecv, Op::ReplayPeek] {
            if inflight.has(op) {
                self.cancel(index, generation, op);
            }
        }
    }

    /// Asks the kernel to end operation `op` of the connection early (its completion, with
    /// `ECANCELED` or with what it got meanwhile, follows).
    fn cancel(&mut self, index: u32, generation: u32, op: Op) {
        let target = Token::conn(index, generation, op).into();
        let cancel = opcode::AsyncCancel2::new(CancelBuilder::user_data(target))
            .build()
            .user_data(Token::IGNORE.into());
        // SAFETY: a cancellation references no memory.
        let _ = unsafe { self.ring.push(&cancel) };
    }

    /// Moves the replay phase on: retries (or passes the close on) after an early close,
    /// hands over to the relay once committed and idle, else submits what it needs next.
    fn replay_step(&mut self, index: u32, generation: u32) {
        let slot = self.slots.at(index);
        let Some(replay) = slot.replay.as_mut() else {
            return;
        };
        match replay.phase {
            Phase::Retrying(_) if replay.inflight.has(Op::ReplaySend) => {}
            Phase::Retrying(_) if replay.inflight.has(Op::ReplayPeek) => {}
            // Whether the client spoke decides between a replay and passing the close on: a
            // receive still waiting may hold its first bytes, so it ends first (a cancel of
            // one that already completed is harmless).
            Phase::Retrying(_)
                if replay.inflight.has(Op::ReplayRecv)
                    && replay.len == 0
                    && !slot.prelude.carries_client_bytes() =>
            {
                self.cancel(index, generation, Op::ReplayRecv)
            }
            // The old backend's operations have ended: its socket may close.
            Phase::Retrying(end) => self.after_early_close(index, generation, end),
            // A receive from the client ended meanwhile: its bytes wait for the new backend.
            Phase::Connecting => {}
            Phase::Committing if !replay.inflight.any() && !replay.wants_send() => {
                let replay = slot.replay.take().expect("checked above");
                self.replay_pool.push(replay.buf);
                self.start_relay(index, generation);
            }
            _ => self.submit_replay_ops(index, generation),
        }
    }

    /// The backend closed before answering: the passive-health rules say whether the client's
    /// bytes go to another backend or the close is passed on.
    fn after_early_close(&mut self, index: u32, generation: u32, end: BackendEnd) {
        let slot = self.slots.at(index);
        let Some(replay) = slot.replay.as_mut() else {
            return;
        };
        // The client's bytes went out in the replay phase, or with the PROXY header, or they
        // are waiting in its socket: the backend's close raced them (a crash right after its
        // accept), it did not close a client that stayed silent.
        let client_sent = replay.len > 0
            || slot.prelude.carries_client_bytes()
            || sys::unread_bytes(slot.client).is_some_and(|n| n > 0);
        let verdict = match (slot.backend.as_deref(), slot.pool) {
            (Some(backend), Some(pool)) => {
                let passive = &self.pools[pool as usize].passive;
                passive.early_close(backend, client_sent, end)
            }
            _ => EarlyClose::Replay,
        };
        match verdict {
            EarlyClose::Replay => {
                // Until `on_connected` restarts the phase on the new socket.
                replay.phase = Phase::Connecting;
                self.retry_elsewhere(index)
            }
            // The relay reads the backend's close and passes it on to the client.
            EarlyClose::PassThrough => {
                self.commit(index, generation);
                self.replay_step(index, generation)
            }
        }
    }

    /// Submits the send of kept bytes, the next client receive and the peek, as needed; commits
    /// once the buffer is full.
    fn submit_replay_ops(&mut self, index: u32, generation: u32) {
        let slot = self.slots.at(index);
        let Some(replay) = slot.replay.as_mut() else {
            return;
        };
        let (client, server) = (slot.client, slot.server);
        let token = |op| Token::conn(index, generation, op).into();
        let mut ops = [None, None, None];
        if replay.wants_send() {
            let pending = &replay.buf[replay.sent..replay.len];
            let send = opcode::Send::new(Fd(server), pending.as_ptr(), pending.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build();
            ops[0] = Some((Op::ReplaySend, send));
        }
        if replay.wants_recv() {
            let room = &mut replay.buf[replay.len..];
            let recv = opcode::Recv::new(Fd(client), room.as_mut_ptr(), room.len() as u32).build();
            ops[1] = Some((Op::ReplayRecv, recv));
        }
        if replay.wants_peek() {
            let peek = opcode::Recv::new(Fd(server), replay.peek.as_mut_ptr(), 1)
                .flags(libc::MSG_PEEK)
                .build();
            ops[2] = Some((Op::ReplayPeek, peek));
        }
        for (op, entry) in ops.into_iter().flatten() {
            let entry = entry.user_data(token(op));
            // SAFETY: the buffers live in the slot's `Replay`, which is neither freed nor
            // reused while `inflight` counts these operations (teardown waits for them); the
            // descriptors stay open until teardown.
            if unsafe { self.ring.push(&entry) }.is_err() {
                return self.teardown(index, generation);
            }
            slot.inflight += 1;
            replay.inflight.start(op);
        }
        if replay.full() && replay.phase == Phase::Listening {
            // Past the buffer the connection is committed: no replay beyond this point.
            self.commit(index, generation);
            self.replay_step(index, generation);
        }
    }
}
