//! The completion loop of one worker: accept, pick, connect, hand over to the relay strategy,
//! tear down. Generic over the strategy so each one compiles to its own loop without dynamic
//! dispatch.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener},
    os::fd::{AsRawFd, OwnedFd, RawFd},
    sync::Arc,
    time::Instant,
};

use io_uring::{
    cqueue, opcode,
    types::{CancelBuilder, Fd, Timespec},
};

use super::{
    slots::Slots,
    token::{Op, Token},
    Worker,
};
use crate::{
    balancer::Balancer,
    relay::{Ends, Flow, Io, Relay},
    uring::{
        ring::{Completion, Ring},
        sys,
    },
};

/// The exact answer to a client when no backend is healthy.
pub const RESPONSE_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain\r\n\
Content-Length: 19\r\n\
Connection: close\r\n\
\r\n\
Service Unavailable";

/// Connect attempts per client connection before it gets the no-backend answer.
const CONNECT_ATTEMPTS: u8 = 3;
/// Placeholder client address until a strategy needs the real one.
const UNKNOWN_PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// One worker's event loop, relaying with strategy `R`.
pub(super) struct Engine<R: Relay> {
    // Field order is drop order: the ring goes before the strategy's buffers it may reference.
    ring: Ring,
    relay: R,
    id: usize,
    listener: TcpListener,
    balancer: Arc<Balancer>,
    wake: Arc<OwnedFd>,
    drain: Box<Timespec>,
    wake_buf: Box<u64>,
    linger: Box<Timespec>,
    connect_timeout: Box<Timespec>,
    accept_pause: Box<Timespec>,
    slots: Slots<R::Conn>,
    /// Rejected clients whose answer is still being written or drained.
    rejecting: usize,
    accept_armed: bool,
    stopping: bool,
    last_accept_error: Option<Instant>,
}

impl<R: Relay> Engine<R> {
    pub(super) fn new(worker: Worker, ring: Ring, relay: R) -> Self {
        Engine {
            ring,
            relay,
            id: worker.id,
            listener: worker.listener,
            balancer: worker.balancer,
            wake: worker.wake,
            drain: Box::new(Timespec::from(worker.settings.drain_timeout)),
            wake_buf: Box::new(0),
            linger: Box::new(Timespec::new().sec(1)),
            connect_timeout: Box::new(Timespec::from(worker.settings.connect_timeout)),
            accept_pause: Box::new(Timespec::new().nsec(100_000_000)),
            slots: Slots::with_capacity(1024),
            rejecting: 0,
            accept_armed: false,
            stopping: false,
            last_accept_error: None,
        }
    }

    pub(super) fn run(mut self) -> std::io::Result<()> {
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
        let mut completions = Vec::with_capacity(1024);
        while !(self.stopping
            && self.slots.live() == 0
            && self.rejecting == 0
            && !self.accept_armed)
        {
            self.ring.submit_and_wait(1)?;
            self.ring.drain(&mut completions);
            for c in completions.drain(..) {
                self.dispatch(c);
            }
        }
        tracing::debug!(worker = self.id, "worker stopped");
        Ok(())
    }

    fn dispatch(&mut self, c: Completion) {
        let token = Token::from(c.user_data);
        match token.op {
            Op::Ignore => {}
            Op::Accept => self.on_accept(c),
            Op::AcceptResume => self.arm_accept(),
            Op::Wake => self.on_wake(),
            Op::DrainDeadline => self.close_all(),
            Op::RejectWrite => self.on_reject_written(token.slot as RawFd),
            Op::RejectDrain => {
                sys::close(token.slot as RawFd);
                self.rejecting -= 1;
            }
            Op::Connect => self.on_connect(token, c.result),
            Op::Relay { kind, dir } => self.on_relay(token, kind, dir as usize, c),
        }
    }

    fn arm_accept(&mut self) {
        if self.stopping || self.accept_armed {
            return;
        }
        let accept = opcode::AcceptMulti::new(Fd(self.listener.as_raw_fd()))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(Token::worker(Op::Accept).into());
        // SAFETY: the listener is owned by `self` and outlives the ring.
        self.accept_armed = unsafe { self.ring.push(&accept) }.is_ok();
    }

    fn on_accept(&mut self, c: Completion) {
        if !cqueue::more(c.flags) {
            self.accept_armed = false;
        }
        if c.result >= 0 {
            self.on_client(c.result);
        } else if c.result != -libc::ECANCELED {
            self.on_accept_error(-c.result);
        }
        if !self.accept_armed && !self.stopping && c.result >= 0 {
            self.arm_accept();
        }
    }

    /// Out of descriptors or memory: pause accepting briefly instead of spinning, keep serving
    /// the open connections, and log at most once a second.
    fn on_accept_error(&mut self, errno: i32) {
        let now = Instant::now();
        if self
            .last_accept_error
            .is_none_or(|t| now.duration_since(t).as_secs() >= 1)
        {
            self.last_accept_error = Some(now);
            tracing::warn!(worker = self.id, error = %std::io::Error::from_raw_os_error(errno), "accept failed; pausing accepts for 100ms");
        }
        if !self.accept_armed && !self.stopping {
            let pause = opcode::Timeout::new(&*self.accept_pause as *const Timespec)
                .build()
                .user_data(Token::worker(Op::AcceptResume).into());
            // SAFETY: the timespec is boxed in `self`, which outlives the ring.
            if unsafe { self.ring.push(&pause) }.is_err() {
                self.arm_accept();
            }
        }
    }

    fn on_client(&mut self, client: RawFd) {
        if self.stopping {
            sys::close(client);
            return;
        }
        let slot = self.slots.insert(client);
        self.connect(slot);
    }

    /// Picks a backend and starts connecting to it, or rejects the client when none is left.
    fn connect(&mut self, index: u32) {
        let slot = self.slots.at(index);
        let Some(backend) = self.balancer.pick(UNKNOWN_PEER) else {
            let client = slot.client;
            self.slots.remove(index);
            self.reject(client);
            return;
        };
        let server = match sys::tcp_socket(&backend.addr) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::debug!(worker = self.id, error = %e, "cannot create backend socket");
                let client = slot.client;
                self.slots.remove(index);
                self.reject(client);
                return;
            }
        };
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
        let deadline = opcode::LinkTimeout::new(&*self.connect_timeout as *const Timespec)
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
            let client = slot.client;
            sys::close(server);
            self.slots.remove(index);
            self.reject(client);
        }
    }

    fn on_connect(&mut self, token: Token, result: i32) {
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        slot.inflight -= 1;
        if slot.closing {
            self.finish_teardown(token.slot, token.generation);
            return;
        }
        let backend = slot
            .backend
            .clone()
            .expect("a connecting slot has a backend");
        if result < 0 {
            backend.connect_failed();
            tracing::debug!(worker = self.id, backend = %backend.name, addr = %backend.addr,
                error = %std::io::Error::from_raw_os_error(-result), "connect failed");
            sys::close(slot.server);
            slot.server = -1;
            slot.backend = None;
            if slot.attempts < CONNECT_ATTEMPTS {
                self.connect(token.slot);
            } else {
                let client = slot.client;
                self.slots.remove(token.slot);
                self.reject(client);
            }
            return;
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

    fn on_relay(&mut self, token: Token, kind: u8, dir: usize, c: Completion) {
        let Some(slot) = self.slots.get(token.slot, token.generation) else {
            return;
        };
        let multishot_continues = cqueue::more(c.flags);
        if !multishot_continues {
            slot.inflight -= 1;
        }
        if slot.closing {
            self.relay.discard(kind, c.result, c.flags);
            self.finish_teardown(token.slot, token.generation);
            return;
        }
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let mut io = Io {
            ring: &mut self.ring,
            token,
            inflight: &mut slot.inflight,
        };
        let flow = self
            .relay
            .complete(&mut io, conn, kind, dir, c.result, c.flags);
        self.after(token, flow);
    }

    fn after(&mut self, token: Token, flow: Flow) {
        match flow {
            Flow::Continue => {}
            Flow::Done => self.teardown(token.slot, token.generation),
            Flow::Failed(errno) => {
                tracing::debug!(worker = self.id, error = %std::io::Error::from_raw_os_error(errno), "connection failed");
                self.teardown(token.slot, token.generation);
            }
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
        sys::close(slot.client);
        sys::close(slot.server);
        if let (Some(backend), true) = (slot.backend.take(), slot.opened) {
            backend.connection_closed();
        }
        self.slots.remove(index);
    }

    /// Answers a client for whom there is no backend, then closes it without a reset: write,
    /// shut down writing, read what the client still sends (bounded by a linger timeout), close.
    fn reject(&mut self, client: RawFd) {
        let write =
            opcode::Write::new(Fd(client), RESPONSE_503.as_ptr(), RESPONSE_503.len() as u32)
                .build()
                .user_data(Token::conn(client as u32, 0, Op::RejectWrite).into());
        // SAFETY: the response is a static; the client descriptor stays open until RejectDrain.
        if unsafe { self.ring.push(&write) }.is_ok() {
            self.rejecting += 1;
        } else {
            sys::close(client);
        }
    }

    fn on_reject_written(&mut self, client: RawFd) {
        let _ = sys::shutdown_write(client);
        let drain = opcode::Recv::new(Fd(client), std::ptr::null_mut(), 64 * 1024)
            .flags(libc::MSG_TRUNC)
            .build()
            .flags(io_uring::squeue::Flags::IO_LINK)
            .user_data(Token::conn(client as u32, 0, Op::RejectDrain).into());
        let timeout = opcode::LinkTimeout::new(&*self.linger as *const Timespec)
            .build()
            .user_data(Token::IGNORE.into());
        // SAFETY: MSG_TRUNC on TCP discards the bytes, so no buffer is written; the timespec is
        // boxed in `self`; the descriptor stays open until the drain completes.
        let pushed = unsafe { self.ring.push_chain(&[drain, timeout]) }.is_ok();
        if !pushed {
            sys::close(client);
            self.rejecting -= 1;
        }
    }

    fn on_wake(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        tracing::debug!(
            worker = self.id,
            open = self.slots.live(),
            "stopping: no new connections"
        );
        if self.accept_armed {
            let cancel =
                opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(self.listener.as_raw_fd())).all())
                    .build()
                    .user_data(Token::IGNORE.into());
            // SAFETY: a cancellation references no memory.
            let _ = unsafe { self.ring.push(&cancel) };
        }
        if self.slots.live() > 0 {
            let deadline = opcode::Timeout::new(&*self.drain as *const Timespec)
                .build()
                .user_data(Token::worker(Op::DrainDeadline).into());
            // SAFETY: the timespec is boxed in `self`, which outlives the ring.
            if unsafe { self.ring.push(&deadline) }.is_err() {
                self.close_all();
            }
        }
    }

    /// The drain deadline passed: close whatever is still open.
    fn close_all(&mut self) {
        let open: Vec<(u32, u32)> = self.slots.live_tokens().collect();
        if !open.is_empty() {
            tracing::info!(
                worker = self.id,
                open = open.len(),
                "drain timeout: closing open connections"
            );
        }
        for (index, generation) in open {
            self.teardown(index, generation);
        }
    }
}
