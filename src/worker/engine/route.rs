//! Routing in the io_uring loop: once a client's prelude is in (its PROXY header and, on a
//! service with SNI routes, its whole ClientHello), the pool the shared rule
//! ([`crate::conn::routing`]) names is the slot's, and connecting starts; a refused hello
//! closes the client. Everything the client sent after its header stays in the slot's prelude
//! buffer and goes to the backend unchanged, linked after the connect.

use super::Engine;
use crate::{
    access_log::Termination,
    conn::routing::{self, Decision, HelloRefused, Routed},
    relay::Relay,
    stats::ServiceCounter,
};

impl<R: Relay> Engine<R> {
    /// More of the client's data arrived after its PROXY header (or there is no header): route
    /// it if that decides, else read on.
    pub(super) fn on_hello_bytes(&mut self, index: u32) {
        let slot = self.slots.at(index);
        let routing = &slot.settings().base.routing;
        match routing.decide(slot.prelude.data()) {
            Decision::ReadMore => self.read_more(index),
            Decision::Refuse(why) => self.refuse_hello(index, why),
            Decision::Route(routed) => self.route(index, routed),
        }
    }

    /// Sends the client to the pool `routed` names (none: the no-backend answer).
    pub(super) fn route(&mut self, index: u32, routed: Routed) {
        let slot = self.slots.at(index);
        slot.prelude.deadline = None;
        slot.pool = routed.pool;
        if let Some(pool) = routed.pool.and_then(|p| self.pools.get(p as usize)) {
            // The running passive_fall (a reload may have changed it).
            pool.passive.set_fall(slot.settings().base.passive_fall);
        }
        if let Some(tally) = slot.tally.as_mut() {
            tally.routed(routed.pool, routed.sni);
        }
        if routed.by_route {
            let service = slot.settings().base.service as usize;
            self.stats.add_service(service, ServiceCounter::Routed);
        }
        self.start_connect(index);
    }

    /// Closes a client whose ClientHello was refused; nothing of it reaches a backend.
    pub(super) fn refuse_hello(&mut self, index: u32, why: HelloRefused) {
        let service = self.slots.at(index).settings().base.service as usize;
        self.stats
            .add_service(service, ServiceCounter::TlsHelloRefused);
        routing::hello_refused(self.id, &why);
        let client = self.slots.at(index).client;
        self.log_end(index, Termination::TlsHelloRefused);
        self.slots.remove(index);
        self.close_client(client);
    }
}
