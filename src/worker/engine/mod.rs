//! The completion loop of one worker: accept, pick, connect, hand over to the relay strategy,
//! tear down. Generic over the strategy so each one compiles to its own loop without dynamic
//! dispatch.
//!
//! Split by phase: [`accept`] (listeners, connection cap, stop), [`proxy_header`] (the client's
//! prelude: its PROXY header and ClientHello, and what goes to the backend before relaying),
//! [`route`] (the pool the prelude selects), [`connect`] (pick, connect, retries), [`reject`]
//! (the no-backend answer); this file holds the loop, the relay hand-off, idle sweeps and
//! teardown.

mod accept;
mod connect;
mod proxy_header;
mod reject;
mod replay;
mod route;

use std::{
    os::fd::{AsRawFd, OwnedFd, RawFd},
    sync::Arc,
    time::{Duration, Instant},
};

use io_uring::{
    cqueue, opcode,
    types::{CancelBuilder, Fd, Timespec},
};

use super::{
    slots::{Slot, Slots},
    Worker,
};
use crate::{
    access_log::{Sink, Termination},
    backend::Backend,
    balancer::Balancer,
    conn::{
        ending::{Close, Linger, LingerStep, Side, LINGER_POLL},
        events,
        passive::Passive,
        source::Sources,
        tally,
    },
    limit::ConnectionLimit,
    metrics::WorkerStats,
    relay::{Flow, Io, Relay},
    uring::{
        ring::{Completion, Ring},
        sys,
        token::{Op, Token},
    },
};
use accept::Listening;

/// One pool as this worker picks from it.
struct Picking {
    balancer: Arc<Balancer>,
    /// Which failures in traffic count against its backends, and the reports to its checker.
    passive: Passive,
}

/// Timer values the kernel reads at submission; boxed so their addresses stay put.
struct Timers {
    drain: Timespec,
    linger: Timespec,
    accept_pause: Timespec,
    tick: Timespec,
    /// How often a socket waiting to be reset after a fault has its send queue looked at.
    linger_poll: Timespec,
}

/// One worker's event loop, relaying with strategy `R`.
pub(super) struct Engine<R: Relay> {
    // Field order is drop order: the ring goes before the strategy's buffers it may reference.
    ring: Ring,
    relay: R,
    id: usize,
    /// One per service, in the order of the services.
    listeners: Vec<Listening>,
    /// One per pool, in the order of the pools (a slot's `pool` indexes it).
    pools: Vec<Picking>,
    limit: Arc<ConnectionLimit>,
    /// The local addresses backend sockets are bound to (`source`).
    sources: Sources,
    wake: Arc<OwnedFd>,
    /// This worker's event counters (Relaxed increments on its own cache line).
    stats: Arc<WorkerStats>,
    /// This worker's queue of access-log records.
    log: Sink,
    wake_buf: Box<u64>,
    timers: Box<Timers>,
    /// Replay buffers ready for reuse, and their size (buffers of another size, from before a
    /// reload changed `replay_buffer`, are dropped).
    replay_pool: Vec<Box<[u8]>>,
    /// Idle sweeps: the current tick, and its period (fixed at start from `idle_timeout`).
    tick: u32,
    tick_period: Duration,
    slots: Slots<R::Conn>,
    /// Rejected clients whose answer is still being written or drained.
    rejecting: usize,
    /// Accepting is paused until the connection cap has room again.
    at_capacity: bool,
    stopping: bool,
    /// The drain deadline has passed: sockets waiting to be reset are reset at once.
    drain_expired: bool,
    accept_errors: events::AcceptErrors,
}

impl<R: Relay> Engine<R> {
    pub(super) fn new(worker: Worker, ring: Ring, relay: R) -> Self {
        let Worker { ctx, wake } = worker;
        let start = ctx.first_settings();
        // Sweep often enough that a connection is closed within a quarter of its idle timeout
        // past it, and at least every second. The period stays; a reload to a shorter idle
        // timeout is kept to within one period (at most a second).
        let tick =
            (start.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let (id, stats) = (ctx.id, Arc::clone(&ctx.stats));
        Engine {
            ring,
            relay,
            id,
            listeners: ctx.services.into_iter().map(Listening::new).collect(),
            pools: (ctx.pools.into_iter())
                .map(|pool| Picking {
                    balancer: pool.balancer,
                    passive: Passive::new(pool.ejector, start.passive_fall, id, Arc::clone(&stats)),
                })
                .collect(),
            limit: ctx.limit,
            sources: Sources::new(&ctx.source),
            wake,
            stats: ctx.stats,
            log: ctx.access_log,
            wake_buf: Box::new(0),
            timers: Box::new(Timers {
                drain: Timespec::from(start.drain_timeout),
                linger: Timespec::from(crate::conn::reject::LINGER),
                accept_pause: Timespec::from(events::ACCEPT_PAUSE),
                tick: Timespec::from(tick),
                linger_poll: Timespec::from(LINGER_POLL),
            }),
            replay_pool: Vec::new(),
            tick: 0,
            tick_period: tick,
            slots: Slots::with_capacity(1024),
            rejecting: 0,
            at_capacity: false,
            stopping: false,
            drain_expired: false,
            accept_errors: events::AcceptErrors::default(),
        }
    }

    /// Runs until shutdown and drain complete. If the loop fails or panics instead, operations
    /// may still be in flight in the kernel, pointing into this engine's buffers: the listener
    /// is closed (no new client queues at a dead worker) and everything else is leaked rather
    /// than freed under the kernel. The process is about to exit anyway (see
    /// `server::supervise`).
    pub(super) fn run(self) -> std::io::Result<()> {
        let mut engine = std::mem::ManuallyDrop::new(self);
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.serve()));
        match served {
            Ok(Ok(())) => {
                drop(std::mem::ManuallyDrop::into_inner(engine));
                Ok(())
            }
            Ok(Err(e)) => {
                engine.close_listeners();
                Err(e)
            }
            Err(panic) => {
                engine.close_listeners();
                std::panic::resume_unwind(panic)
            }
        }
    }

    fn serve(&mut self) -> std::io::Result<()> {
        self.arm_accept();
        let read = opcode::Read::new(
            Fd(self.wake.as_raw_fd()),
            (&mut *self.wake_buf as *mut u64).cast(),
            8,
        )
        .build()
        .user_data(Token::worker(Op::Wake).into());
        // SAFETY: the eventfd is kept open by `self.wake` and the 8-byte buffer is boxed in
        // `self`; both outlive the ring, which is dropped first.
        unsafe { self.ring.push(&read)? };
        self.arm_timer(Op::Tick);
        let mut completions = Vec::with_capacity(1024);
        while !(self.stopping && self.slots.live() == 0 && self.rejecting == 0 && !self.accepting())
        {
            self.ring.submit_and_wait(1)?;
            self.ring.drain(&mut completions);
            for c in completions.drain(..) {
                self.dispatch(c);
            }
        }
        events::stopped(self.id);
        Ok(())
    }

    fn dispatch(&mut self, c: Completion) {
        let token = Token::from(c.user_data);
        match token.op {
            Op::Ignore => {}
            Op::Accept => self.on_accept(token, c),
            Op::AcceptResume => self.on_accept_resume(),
            Op::Tick => self.on_tick(),
            Op::Wake => self.on_wake(),
            Op::DrainDeadline => self.close_all(),
            Op::RejectWrite => self.on_reject_written(token.slot as RawFd),
            Op::RejectDrain => self.on_reject_drained(token.slot as RawFd),
            Op::Connect => self.on_connect(token, c.result),
            Op::ReplayRecv | Op::ReplaySend | Op::ReplayPeek => self.on_replay(token, c.result),
            Op::ProxyRead => self.on_proxy_read(token, c.result),
            Op::ProxySend => self.on_proxy_sent(token, c.result),
            Op::Linger => self.on_linger(token),
            Op::Relay { kind, dir } => self.on_relay(token, kind, dir as usize, c),
        }
    }

    /// Arms a worker-level timer (`Tick`, `AcceptResume` or `DrainDeadline`).
    fn arm_timer(&mut self, op: Op) -> bool {
        let ts: &Timespec = match op {
            Op::Tick => &self.timers.tick,
            Op::AcceptResume => &self.timers.accept_pause,
            _ => &self.timers.drain,
        };
        let timeout = opcode::Timeout::new(ts as *const Timespec)
            .build()
            .user_data(Token::worker(op).into());
        // SAFETY: the timespec is boxed in `self`, which outlives the ring.
        unsafe { self.ring.push(&timeout) }.is_ok()
    }

    fn on_relay(&mut self, token: Token, kind: u8, dir: usize, c: Completion) {
        let tick = self.tick;
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        if !cqueue::more(c.flags) {
            slot.inflight -= 1;
        }
        if slot.closing {
            self.relay.discard(kind, c.result, c.flags);
            self.finish_teardown(token.slot, token.generation);
            return;
        }
        slot.last_active = tick;
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let mut io = Io {
            ring: &mut self.ring,
            token,
            inflight: &mut slot.inflight,
            moved: [0; 2],
            kind_base: 0,
        };
        let flow = self
            .relay
            .complete(&mut io, conn, kind, dir, c.result, c.flags);
        let moved = io.moved;
        count_bytes(slot.backend.as_deref(), self.id, moved);
        if let Some(tally) = slot.tally.as_mut() {
            tally.add(moved);
        }
        self.after(token, flow);
    }

    fn after(&mut self, token: Token, flow: Flow) {
        match flow {
            Flow::Continue => return,
            Flow::Ended(close) => {
                events::ended(self.id, close);
                self.ends(token, tally::termination(close));
                if let (Close::Reset { reset, .. }, Some(slot)) =
                    (close, self.slots.get(token.slot, token.generation))
                {
                    slot.reset = Some((reset, Linger::new(Instant::now())));
                }
            }
            Flow::Failed(errno) => {
                events::failed(self.id, &std::io::Error::from_raw_os_error(errno));
                self.ends(token, Termination::InternalError);
            }
        }
        self.teardown(token.slot, token.generation);
    }

    /// Closes relayed connections that moved no byte for `idle_timeout`.
    fn on_tick(&mut self) {
        self.tick = self.tick.wrapping_add(1);
        let (now, period) = (self.tick, self.tick_period.as_nanos().max(1));
        let expired: Vec<(u32, u32)> = self
            .slots
            .live_tokens()
            .filter(|&(i, _)| {
                let slot = self.slots.peek(i);
                let Some(settings) = slot.settings.as_deref() else {
                    return false;
                };
                // Each connection's own idle timeout, in ticks (at least one). Its last
                // activity was somewhere in the tick `last_active` began, so only a full
                // `idle` ticks after that one is it surely idle that long: closed at most one
                // tick (a quarter of the timeout) late, never early.
                let idle = settings
                    .base
                    .idle_timeout
                    .as_nanos()
                    .div_ceil(period)
                    .max(1) as u32;
                slot.opened && !slot.closing && now.wrapping_sub(slot.last_active) > idle
            })
            .collect();
        for (index, generation) in expired {
            events::idle_timeout(self.id);
            self.ends(
                Token::conn(index, generation, Op::Ignore),
                Termination::IdleTimeout,
            );
            self.teardown(index, generation);
        }
        if !self.arm_timer(Op::Tick) {
            tracing::warn!(worker = self.id, "cannot re-arm the idle timer");
        }
    }

    /// Starts closing a connection: cancels what is in flight, then closes once it all
    /// completed.
    fn teardown(&mut self, index: u32, generation: u32) {
        let Some(slot) = self.slots.get(index, generation) else {
            return;
        };
        if slot.closing {
            return;
        }
        slot.closing = true;
        if slot.inflight > 0 {
            for fd in [slot.client, slot.server] {
                if fd >= 0 {
                    let cancel = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all())
                        .build()
                        .user_data(Token::IGNORE.into());
                    // SAFETY: a cancellation references no memory. If the ring refuses it, the
                    // operations still end on their own once the peer closes.
                    let _ = unsafe { self.ring.push(&cancel) };
                }
            }
        }
        self.finish_teardown(index, generation);
    }

    fn finish_teardown(&mut self, index: u32, generation: u32) {
        let Some(slot) = self.slots.get(index, generation) else {
            return;
        };
        if slot.inflight > 0 {
            return;
        }
        if let Some(conn) = slot.conn.take() {
            self.relay.close(conn);
        }
        if let Some(replay) = slot.replay.take() {
            self.replay_pool.push(replay.buf);
        }
        if let Some((side, _)) = slot.reset {
            if !self.drain_expired {
                // Both sockets stay open until the side to reset has every byte; bytes a
                // `MSG_MORE` send held for a FIN that never came are pushed out first.
                sys::set_nodelay(side_fd(slot, side));
                return self.arm_linger(index, generation);
            }
            sys::set_linger_zero(side_fd(slot, side));
        }
        let (client, server) = (slot.client, slot.server);
        if let (Some(backend), true) = (slot.backend.take(), slot.opened) {
            backend.connection_closed();
        }
        self.log_end(index, Termination::InternalError);
        self.slots.remove(index);
        // SAFETY: the slot owned both sockets and nothing of it is in flight any more
        // (`inflight` is 0); the slot has been freed, so neither number is used again.
        unsafe { sys::close(server) };
        self.close_client(client);
    }

    /// Closes a counted client descriptor and gives its place under the cap back.
    fn close_client(&mut self, client: RawFd) {
        // SAFETY: the caller hands over a client descriptor it owned (a freed slot's, or a
        // rejected client's whose last operation completed).
        unsafe { sys::close(client) };
        self.limit.release();
        if self.at_capacity && self.limit.has_room() {
            self.at_capacity = false;
            self.arm_accept();
        }
    }

    /// Looks again, after [`LINGER_POLL`], at the send queue of a socket waiting to be reset.
    fn arm_linger(&mut self, index: u32, generation: u32) {
        let timeout = opcode::Timeout::new(&self.timers.linger_poll as *const Timespec)
            .build()
            .user_data(Token::conn(index, generation, Op::Linger).into());
        // SAFETY: the timespec is boxed in `self`, which outlives the ring.
        if unsafe { self.ring.push(&timeout) }.is_ok() {
            self.slots.at(index).inflight += 1;
        } else {
            self.reset_now(index, generation);
        }
    }

    /// A lingering socket's send queue: reset it once drained (or stalled), else look again.
    fn on_linger(&mut self, token: Token) {
        let expired = self.drain_expired;
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        slot.inflight -= 1;
        let Some((side, _)) = slot.reset else {
            return;
        };
        let queued = sys::unacked_bytes(side_fd(slot, side));
        let Some((_, linger)) = slot.reset.as_mut() else {
            return;
        };
        match linger.step(queued, Instant::now()) {
            LingerStep::Wait if !expired => self.arm_linger(token.slot, token.generation),
            _ => self.reset_now(token.slot, token.generation),
        }
    }

    /// Resets the lingering side and closes the connection.
    fn reset_now(&mut self, index: u32, generation: u32) {
        let slot = self.slots.at(index);
        if let Some((side, _)) = slot.reset.take() {
            sys::set_linger_zero(side_fd(slot, side));
        }
        self.finish_teardown(index, generation);
    }

    /// The drain deadline passed: close whatever is still open.
    fn close_all(&mut self) {
        self.drain_expired = true;
        let open: Vec<(u32, u32)> = self.slots.live_tokens().collect();
        if open.is_empty() {
            return;
        }
        events::drain_expired(self.id, open.len());
        for (index, generation) in open {
            self.ends(
                Token::conn(index, generation, Op::Ignore),
                Termination::Drained,
            );
            self.teardown(index, generation);
        }
    }

    /// Says why the connection of `token` ends, if it is logged (the first reason is kept).
    pub(super) fn ends(&mut self, token: Token, termination: Termination) {
        if let Some(tally) = self
            .slots
            .get(token.slot, token.generation)
            .and_then(|slot| slot.tally.as_mut())
        {
            tally.ends(termination);
        }
    }

    /// Pushes the access-log record of the connection in slot `index`, ending now, if it is
    /// logged: its reason, or `otherwise` if none was given. Called just before the slot is
    /// freed.
    pub(super) fn log_end(&mut self, index: u32, otherwise: Termination) {
        let slot = self.slots.at(index);
        if let Some(tally) = slot.tally.take() {
            let retries = u32::from(slot.attempts.saturating_sub(1));
            let record = tally.record(slot.peer, retries, otherwise, Instant::now());
            self.log.push(record);
        }
    }
}

/// The descriptor of `side` of a connection.
fn side_fd<C>(slot: &Slot<C>, side: Side) -> RawFd {
    match side {
        Side::Client => slot.client,
        Side::Backend => slot.server,
    }
}

/// Adds the bytes a relay step wrote to its backend's counters (this worker's shard).
#[inline]
fn count_bytes(backend: Option<&Backend>, worker: usize, moved: [u64; 2]) {
    if let (Some(backend), true) = (backend, moved != [0; 2]) {
        backend.bytes_moved(worker, moved);
    }
}
