//! The admin listener's connection slots: at most `cap` connections at once, and which one to
//! close when a new one needs room.
//!
//! Owns the bookkeeping only: the connections still waiting for their request head, oldest
//! first, each with its accept time and a cancellation handle, and the number of connections
//! whose request is being answered. Pure and synchronous (no socket, no clock: callers pass the
//! time), so the policy is unit-tested. Never holds more than `cap` connections, never evicts
//! one whose request is being answered: that one has proved it speaks HTTP, and its slot ends
//! with the exchange deadline anyway.

use std::{collections::BTreeMap, time::Instant};

/// A connection's key in [`Slots`]; increasing with accept order.
pub(super) type Id = u64;

/// A connection accepted but whose request head is not complete yet.
#[derive(Debug)]
pub(super) struct Waiting<H> {
    /// When it was accepted.
    pub accepted: Instant,
    /// Dropping (or using) this tells the connection to close.
    pub cancel: H,
}

/// What [`Slots::admit`] decided.
#[derive(Debug)]
pub(super) enum Admission<H> {
    /// The connection has slot `id`; to make room, `evicted` (the oldest waiting connection)
    /// lost its slot and must be told to close.
    Admitted {
        /// The new connection's slot.
        id: Id,
        /// The connection closed to make room, if the slots were full.
        evicted: Option<Waiting<H>>,
    },
    /// Every slot is answering a request: nothing may be evicted; the handle is given back.
    Full(H),
}

/// The slots of one admin listener.
#[derive(Debug)]
pub(super) struct Slots<H> {
    cap: usize,
    next: Id,
    /// Ordered by id, hence by accept time: the first entry is the oldest.
    waiting: BTreeMap<Id, Waiting<H>>,
    answering: usize,
}

impl<H> Slots<H> {
    /// Room for `cap` connections (at least one).
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            next: 0,
            waiting: BTreeMap::new(),
            answering: 0,
        }
    }

    /// Gives a connection accepted at `accepted` a slot, evicting the oldest connection still
    /// waiting for its head when every slot is taken.
    pub fn admit(&mut self, accepted: Instant, cancel: H) -> Admission<H> {
        let evicted = if self.len() < self.cap {
            None
        } else {
            match self.waiting.pop_first() {
                Some((_, oldest)) => Some(oldest),
                None => return Admission::Full(cancel),
            }
        };
        let id = self.next;
        self.next += 1;
        self.waiting.insert(id, Waiting { accepted, cancel });
        Admission::Admitted { id, evicted }
    }

    /// Connection `id` sent its whole head: from now on it cannot be evicted. `false` when it
    /// was evicted already (it must close).
    pub fn start_answer(&mut self, id: Id) -> bool {
        // Spelled as a match on purpose: with `self.waiting.remove(&id).is_some()` feeding
        // `usize::from`, the unit tests below failed in release builds of rustc 1.95.0 (opt-level
        // 2 and 3 only; a connection just admitted was reported evicted), and passed with this or
        // any other equivalent spelling: most likely a miscompilation.
        match self.waiting.remove(&id) {
            Some(_) => {
                self.answering += 1;
                true
            }
            None => false,
        }
    }

    /// Connection `id` closed: its slot is free. `answering` says whether
    /// [`Slots::start_answer`] had succeeded for it.
    pub fn release(&mut self, id: Id, answering: bool) {
        if answering {
            self.answering = self.answering.saturating_sub(1);
        } else {
            self.waiting.remove(&id);
        }
    }

    /// Connections holding a slot.
    pub fn len(&self) -> usize {
        self.waiting.len() + self.answering
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn admitted<H>(admission: Admission<H>) -> (Id, Option<Waiting<H>>) {
        match admission {
            Admission::Admitted { id, evicted } => (id, evicted),
            Admission::Full(_) => panic!("expected a slot"),
        }
    }

    #[test]
    fn at_the_cap_the_oldest_waiting_connection_makes_room() {
        let t0 = Instant::now();
        let mut slots = Slots::new(3);
        let (a, _) = admitted(slots.admit(t0, "a"));
        let (b, _) = admitted(slots.admit(t0 + Duration::from_millis(1), "b"));
        let (_, none) = admitted(slots.admit(t0 + Duration::from_millis(2), "c"));
        assert!(none.is_none());
        assert_eq!(slots.len(), 3);
        // "a" sent its request: it is answered, never evicted; "b" is now the oldest waiting.
        assert!(slots.start_answer(a));
        let (d, evicted) = admitted(slots.admit(t0 + Duration::from_millis(3), "d"));
        let evicted = evicted.expect("full: one must go");
        assert_eq!(evicted.cancel, "b");
        assert_eq!(evicted.accepted, t0 + Duration::from_millis(1));
        assert_eq!(slots.len(), 3, "bounded by the cap");
        // The evicted one learns it lost its slot when its head arrives after all.
        assert!(!slots.start_answer(b));
        slots.release(b, false);
        assert_eq!(
            slots.len(),
            3,
            "releasing an evicted slot frees nothing twice"
        );
        assert!(slots.start_answer(d));
    }

    #[test]
    fn full_of_answers_refuses_and_frees_on_release() {
        let now = Instant::now();
        let mut slots = Slots::new(2);
        let (a, _) = admitted(slots.admit(now, 1));
        let (b, _) = admitted(slots.admit(now, 2));
        assert!(slots.start_answer(a) && slots.start_answer(b));
        match slots.admit(now, 3) {
            Admission::Full(handle) => assert_eq!(handle, 3, "the handle comes back"),
            Admission::Admitted { .. } => panic!("nothing may be evicted"),
        }
        slots.release(a, true);
        assert_eq!(slots.len(), 1);
        let (c, evicted) = admitted(slots.admit(now, 3));
        assert!(evicted.is_none());
        slots.release(c, false);
        slots.release(b, true);
        assert_eq!(slots.len(), 0);
    }

    #[test]
    fn never_holds_more_than_the_cap() {
        let now = Instant::now();
        let mut slots = Slots::new(16);
        let mut answering = Vec::new();
        for i in 0..10_000u64 {
            let (id, _) = admitted(slots.admit(now, ()));
            // Every seventh connection sends its request and stays until the end.
            if i % 7 == 0 && answering.len() < 8 {
                assert!(slots.start_answer(id));
                answering.push(id);
            }
            assert!(slots.len() <= 16);
            assert!(slots.waiting.len() <= 16);
        }
        for id in answering {
            slots.release(id, true);
        }
        assert_eq!(slots.len(), 16 - 8, "only the waiting ones are left");
    }
}
