//! What a driver keeps of one client connection for its access-log line, and the termination
//! each way of ending maps to, for both I/O drivers.
//!
//! A [`Tally`] exists only while the access log is on (checked once, at the accept): when it is
//! off a connection carries `None` and pays one branch at each point below. It holds plain
//! numbers (the service and pool as indices, the SNI name inline), so keeping it costs no
//! allocation; the record it becomes is a fixed-size push.
//! Owns the mapping from [`Close`], the idle timeout, the drain and the no-backend answer to
//! [`Termination`]; never does I/O and never formats.

use std::{net::SocketAddr, time::Instant};

use super::ending::{Close, Side};
use crate::{
    access_log::{Record, Termination},
    tls::ServerName,
};

/// The facts of one logged connection, gathered as it goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    started: Instant,
    /// The service it came in on (index in the effective services).
    service: u16,
    /// The pool chosen for it (index in the effective pools); `None` when none was.
    pool: Option<u16>,
    /// The server name its ClientHello carried.
    sni: Option<ServerName>,
    connected: Option<Instant>,
    /// The backend connected to, or last tried.
    target: Option<SocketAddr>,
    /// Bytes delivered per direction ([`crate::stats::UPSTREAM`], `DOWNSTREAM`).
    bytes: [u64; 2],
    /// Why it ends, once known (the first reason given is kept).
    termination: Option<Termination>,
}

impl Tally {
    /// A connection of service `service` (its index) accepted at `started`. It has no pool
    /// until [`Tally::routed`] names one (both drivers call it once routing decided, before
    /// connecting): a client refused before that (its PROXY header, its ClientHello) went to
    /// no pool, and its line says so.
    pub(crate) fn new(started: Instant, service: u16) -> Tally {
        Tally {
            started,
            service,
            pool: None,
            sni: None,
            connected: None,
            target: None,
            bytes: [0; 2],
            termination: None,
        }
    }

    /// The route decision: the connection goes to pool `pool` (its index; `None`: no pool,
    /// it gets `on_no_backend`), chosen by the server name `sni` if its ClientHello carried
    /// one.
    pub(crate) fn routed(&mut self, pool: Option<u16>, sni: Option<ServerName>) {
        self.pool = pool;
        self.sni = sni;
    }

    /// A connect to `target` starts.
    pub(crate) fn trying(&mut self, target: SocketAddr) {
        self.target = Some(target);
    }

    /// The backend connection was established at `now`.
    pub(crate) fn connected(&mut self, now: Instant) {
        self.connected = Some(now);
    }

    /// `moved[dir]` more bytes were delivered in each direction.
    #[inline]
    pub(crate) fn add(&mut self, moved: [u64; 2]) {
        self.bytes[0] += moved[0];
        self.bytes[1] += moved[1];
    }

    /// The connection ends because of `termination`, unless a reason was already given.
    pub(crate) fn ends(&mut self, termination: Termination) {
        self.termination.get_or_insert(termination);
    }

    /// The record of the connection ending at `now`: its reason, or `otherwise` if none was
    /// given.
    pub(crate) fn record(
        &self,
        client: SocketAddr,
        retries: u32,
        otherwise: Termination,
        now: Instant,
    ) -> Record {
        Record {
            ended: now,
            client,
            service: self.service,
            pool: self.pool,
            sni: self.sni,
            target: self.target,
            bytes_up: self.bytes[0],
            bytes_down: self.bytes[1],
            connect: self
                .connected
                .map(|c| c.saturating_duration_since(self.started)),
            duration: now.saturating_duration_since(self.started),
            retries: retries.min(u8::MAX as u32) as u8,
            termination: self.termination.unwrap_or(otherwise),
        }
    }
}

/// How a relayed connection that ran to its end terminated.
pub(crate) fn termination(close: Close) -> Termination {
    match close {
        Close::Clean(Side::Client) => Termination::ClientClose,
        Close::Clean(Side::Backend) => Termination::BackendClose,
        Close::Reset { fault, .. } | Close::BothFailed(fault) => failed(fault.side),
    }
}

/// `side`'s socket failed.
pub(crate) fn failed(side: Side) -> Termination {
    match side {
        Side::Client => Termination::ClientReset,
        Side::Backend => Termination::BackendReset,
    }
}

/// A client that got the no-backend answer after `attempts` connects.
pub(crate) fn rejected(attempts: u32) -> Termination {
    match attempts {
        0 => Termination::NoBackend,
        _ => Termination::ConnectFailed,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conn::ending::{Ending, SocketError};
    use crate::stats::{DOWNSTREAM, UPSTREAM};

    #[test]
    fn a_clean_end_names_who_closed_first() {
        let mut e = Ending::default();
        e.end(DOWNSTREAM);
        e.end(UPSTREAM);
        assert_eq!(termination(e.close().unwrap()), Termination::BackendClose);
        let mut e = Ending::default();
        e.end(UPSTREAM);
        e.end(DOWNSTREAM);
        assert_eq!(termination(e.close().unwrap()), Termination::ClientClose);
    }

    #[test]
    fn a_fault_names_the_side_that_failed() {
        let fault = |side| SocketError {
            side,
            errno: libc::ECONNRESET,
        };
        let reset = Close::Reset {
            reset: Side::Client,
            fault: fault(Side::Backend),
        };
        assert_eq!(termination(reset), Termination::BackendReset);
        let both = Close::BothFailed(fault(Side::Client));
        assert_eq!(termination(both), Termination::ClientReset);
        assert_eq!(rejected(0), Termination::NoBackend);
        assert_eq!(rejected(3), Termination::ConnectFailed);
    }

    #[test]
    fn a_tally_becomes_its_record_and_keeps_the_first_reason() {
        let t0 = Instant::now();
        let mut tally = Tally::new(t0, 0);
        tally.trying("10.0.0.1:80".parse().unwrap());
        tally.trying("10.0.0.2:80".parse().unwrap());
        tally.connected(t0 + Duration::from_millis(3));
        tally.add([10, 0]);
        tally.add([5, 100]);
        tally.ends(Termination::IdleTimeout);
        tally.ends(Termination::Drained);
        let client = "127.0.0.1:9".parse().unwrap();
        let r = tally.record(
            client,
            1,
            Termination::InternalError,
            t0 + Duration::from_secs(1),
        );
        assert_eq!(
            r.target,
            Some("10.0.0.2:80".parse().unwrap()),
            "the last tried"
        );
        assert_eq!((r.bytes_up, r.bytes_down), (15, 100));
        assert_eq!(r.connect, Some(Duration::from_millis(3)));
        assert_eq!(r.duration, Duration::from_secs(1));
        assert_eq!((r.retries, r.termination), (1, Termination::IdleTimeout));
        assert_eq!(
            (r.service, r.pool, r.sni),
            (0, None, None),
            "never routed: no pool"
        );
        let never = Tally::new(t0, 0).record(client, 0, Termination::NoBackend, t0);
        assert_eq!((never.connect, never.target), (None, None));
        assert_eq!(never.termination, Termination::NoBackend);
    }

    #[test]
    fn a_tally_carries_its_service_and_route() {
        let t0 = Instant::now();
        let client = "127.0.0.1:9".parse().unwrap();
        let sni = ServerName::new(b"api.example.com").unwrap();
        let mut tally = Tally::new(t0, 2);
        tally.routed(Some(3), Some(sni));
        let r = tally.record(client, 0, Termination::ClientClose, t0);
        assert_eq!((r.service, r.pool, r.sni), (2, Some(3), Some(sni)));
        let mut refused = Tally::new(t0, 1);
        refused.routed(None, None);
        refused.ends(Termination::TlsHelloRefused);
        let r = refused.record(client, 0, Termination::InternalError, t0);
        assert_eq!((r.service, r.pool, r.sni), (1, None, None));
        assert_eq!(r.termination, Termination::TlsHelloRefused);
    }
}
