//! The connection table of one worker: a slab of slots reused through a free list, so a new
//! connection allocates nothing once the table has grown to the worker's peak.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    os::fd::RawFd,
    rc::Rc,
    sync::Arc,
};

use super::{prelude::Prelude, replay_state::Replay, settings::Settings};
use crate::{
    backend::Backend,
    conn::{
        ending::{Linger, Side},
        routing::PoolIndex,
        tally::Tally,
        tried::Tried,
    },
    uring::token::GENERATION_MASK,
};
/// The client address when no strategy asked for it.
pub const UNKNOWN_PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// One proxied connection, from the accept to the last completion.
pub struct Slot<C> {
    /// Bumped when the slot is freed, so stale completions are recognised.
    pub generation: u32,
    /// Operations submitted and not yet completed.
    pub inflight: u32,
    /// The accepted client socket (-1 when free).
    pub client: RawFd,
    /// The backend socket (-1 before the connect starts).
    pub server: RawFd,
    /// The chosen backend.
    pub backend: Option<Arc<Backend>>,
    /// The pool its backends are picked from, once routed (`None`: none; it gets
    /// `on_no_backend`).
    pub pool: Option<PoolIndex>,
    /// Connect attempts made so far.
    pub attempts: u8,
    /// Backends whose connect failed for this client, not to be tried again.
    pub failed: Tried,
    /// The client's address, when the strategy needs it (`source_hash`).
    pub peer: SocketAddr,
    /// The backend counts this connection as active (from the pick on, so strategies that
    /// look at active counts see a burst of new connections).
    pub opened: bool,
    /// The worker tick of the last completion (idle timeout).
    pub last_active: u32,
    /// Teardown started: every further completion only counts down `inflight`.
    pub closing: bool,
    /// The relay strategy's state, once connected (and, with replay, committed).
    pub conn: Option<C>,
    /// The client's first bytes, kept until the backend speaks (`retry_on_early_close`).
    pub replay: Option<Replay>,
    /// PROXY protocol state: the client's header, what goes to the backend first.
    pub prelude: Prelude,
    /// After a fault: the side to reset once its send queue has drained, and the wait for it.
    pub reset: Option<(Side, Linger)>,
    /// The settings this connection started with (a reload never changes them under it).
    pub settings: Option<Rc<Settings>>,
    /// What its access-log line will say; `None` when the log was off at its accept.
    pub tally: Option<Tally>,
}

impl<C> Slot<C> {
    /// The settings this connection started with; every live slot has them from its accept.
    pub fn settings(&self) -> &Settings {
        self.settings
            .as_deref()
            .expect("a live slot has its settings from the accept")
    }

    fn empty() -> Self {
        Slot {
            generation: 0,
            inflight: 0,
            client: -1,
            server: -1,
            backend: None,
            pool: None,
            attempts: 0,
            failed: Default::default(),
            peer: UNKNOWN_PEER,
            opened: false,
            last_active: 0,
            closing: false,
            conn: None,
            replay: None,
            prelude: Prelude::default(),
            reset: None,
            settings: None,
            tally: None,
        }
    }
}

/// All slots of a worker.
pub struct Slots<C> {
    slots: Vec<Slot<C>>,
    free: Vec<u32>,
    live: usize,
}

impl<C> Slots<C> {
    /// An empty table with room for `capacity` connections before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Slots {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            live: 0,
        }
    }

    /// Takes a free slot for `client`.
    pub fn insert(&mut self, client: RawFd) -> u32 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::empty());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.client = client;
        self.live += 1;
        index
    }

    /// The slot `index` if it is live at `generation`.
    pub fn get(&mut self, index: u32, generation: u32) -> Option<&mut Slot<C>> {
        self.slots
            .get_mut(index as usize)
            .filter(|s| s.client >= 0 && s.generation == generation)
    }

    /// The live slot `index`, whatever its generation (the caller just inserted or checked it).
    pub fn at(&mut self, index: u32) -> &mut Slot<C> {
        &mut self.slots[index as usize]
    }

    /// Read access to slot `index`.
    pub fn peek(&self, index: u32) -> &Slot<C> {
        &self.slots[index as usize]
    }

    /// Frees slot `index`, resetting it; descriptors must already be closed.
    pub fn remove(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let generation = (slot.generation + 1) & GENERATION_MASK;
        let mut prelude = std::mem::take(&mut slot.prelude);
        prelude.reset();
        *slot = Slot::empty();
        slot.generation = generation;
        slot.prelude = prelude;
        self.free.push(index);
        self.live -= 1;
    }

    /// Connections in the table.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Indices and generations of every live slot.
    pub fn live_tokens(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.client >= 0)
            .map(|(i, s)| (i as u32, s.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_with_a_new_generation() {
        let mut slots: Slots<()> = Slots::with_capacity(2);
        let a = slots.insert(10);
        assert_eq!(slots.live(), 1);
        assert!(slots.get(a, 0).is_some());
        slots.remove(a);
        assert_eq!(slots.live(), 0);
        assert!(slots.get(a, 0).is_none(), "freed slot is not live");
        let b = slots.insert(11);
        assert_eq!(a, b);
        assert!(slots.get(b, 0).is_none(), "old generation is stale");
        assert!(slots.get(b, 1).is_some());
    }
}
