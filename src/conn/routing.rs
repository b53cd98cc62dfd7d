//! Which pool a client connection goes to, shared by both I/O drivers: a service's default
//! pool, or (on a service with SNI routes) the pool its TLS ClientHello's server name selects.
//!
//! The rule, from the bytes the client sent after its PROXY header (if any):
//! - a whole ClientHello: its `server_name` looked up in the service's routes (exact names,
//!   then the one-label wildcard); no name or no match goes to the default pool;
//! - not TLS at all (the first bytes are not a TLS handshake record): the default pool, so a
//!   service may carry TLS and a plain protocol side by side;
//! - a TLS record that is no valid ClientHello, one longer than [`crate::tls::MAX_HELLO`], or
//!   one not complete within [`HELLO_BUDGET`] of the accept: refused (the client is closed,
//!   `tls_hello_refused`), never forwarded to a backend that would have to make sense of it;
//! - no default pool where one is needed: the service's `on_no_backend`.
//!
//! The bytes are never changed or consumed here: the driver forwards everything it read.
//! Owns the decision and its log event. Never does I/O, never allocates per connection.

use std::time::Duration;

use super::header::HeaderRefused;
use crate::{
    proxy_protocol::{ParseError, MAX_V2_LEN},
    tls::{self, HelloError, HelloOutcome, ServerName, SniRoutes},
};

/// The size a full prelude buffer of `held` bytes grows to, at most `cap`
/// ([`Routing::prelude_cap`]): it doubles, from at least 1 KiB. A driver starts with room for
/// a PROXY header, which a typical ClientHello fits too, so only a client that really sends a
/// large hello makes its connection hold more, and never more than it sent, doubled.
pub(crate) fn grown_prelude(held: usize, cap: usize) -> usize {
    (held * 2).clamp(1024, cap)
}

/// How long a client has, from its accept, to send its whole ClientHello (its PROXY header
/// included, with `accept_proxy`).
pub(crate) const HELLO_BUDGET: Duration = Duration::from_secs(5);

/// A pool's index in the effective list of pools ([`crate::config::Config::pools`]).
pub type PoolIndex = u16;

/// One service's routing, as the server builds it from the configuration (published with the
/// service's settings, so a reload changes it for new connections).
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// The pool of a connection no route selects; `None`: such a connection gets
    /// `on_no_backend`.
    pub default: Option<PoolIndex>,
    /// Routes by server name; `None` when the service has none (its clients' first bytes are
    /// not read before connecting).
    pub sni: Option<SniRoutes<PoolIndex>>,
}

/// What the bytes so far decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "the name is inline on purpose: no allocation per connection"
)]
pub(crate) enum Decision {
    /// Read more (the ClientHello is not complete).
    ReadMore,
    /// Connect to the pool it names.
    Route(Routed),
    /// Close the client: its ClientHello is refused.
    Refuse(HelloRefused),
}

/// Where a connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Routed {
    /// The pool (`None`: no pool; the client gets `on_no_backend`).
    pub(crate) pool: Option<PoolIndex>,
    /// The ClientHello's server name, if it had one.
    pub(crate) sni: Option<ServerName>,
    /// Whether a route (not the default) chose the pool.
    pub(crate) by_route: bool,
}

/// Why a client's ClientHello was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HelloRefused {
    /// A TLS record that no more bytes can make a valid ClientHello (or one over 16 KiB).
    #[error("{0}")]
    Invalid(#[from] HelloError),
    /// Not complete within [`HELLO_BUDGET`].
    #[error("not complete within 5 s")]
    Late,
    /// The client closed before its ClientHello was complete.
    #[error("closed before the ClientHello was complete")]
    Closed,
    /// The receive failed (errno).
    #[error("receive failed (errno {0})")]
    Io(i32),
    /// The ring refused the receive (io_uring only).
    #[error("cannot submit the receive")]
    Submit,
}

/// Why a client was closed before a pool was chosen: its PROXY header, or its ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreludeRefused {
    /// Its PROXY header (`accept_proxy`): logged as `proxy_header_refused`.
    Header(HeaderRefused),
    /// Its ClientHello (a service with SNI routes): logged as `tls_hello_refused`.
    Hello(HelloRefused),
}

/// How reading a client's prelude ended without a verdict from the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// The budget from the accept was spent.
    Late,
    /// The client closed.
    Closed,
    /// The receive failed (errno).
    Io(i32),
    /// The ring refused the receive (io_uring only).
    Submit,
    /// The buffer is full: the header, or the hello, is longer than ringlb reads.
    Full,
}

impl PreludeRefused {
    /// The refusal `end` is: the PROXY header's while it is still awaited, else the
    /// ClientHello's.
    pub(crate) fn of(awaits_header: bool, end: ReadEnd) -> Self {
        if awaits_header {
            return Self::Header(match end {
                ReadEnd::Late => HeaderRefused::Late,
                ReadEnd::Closed => HeaderRefused::Closed,
                ReadEnd::Io(errno) => HeaderRefused::Io(errno),
                ReadEnd::Submit => HeaderRefused::Submit,
                ReadEnd::Full => ParseError::TooLong.into(),
            });
        }
        Self::Hello(match end {
            ReadEnd::Late => HelloRefused::Late,
            ReadEnd::Closed => HelloRefused::Closed,
            ReadEnd::Io(errno) => HelloRefused::Io(errno),
            ReadEnd::Submit => HelloRefused::Submit,
            ReadEnd::Full => HelloError::TooLarge.into(),
        })
    }
}

impl Routing {
    /// Whether a client's ClientHello must be read before a pool is chosen.
    pub(crate) fn reads_hello(&self) -> bool {
        self.sni.is_some()
    }

    /// Bytes of the client's data (after its PROXY header) a driver must be able to hold for
    /// [`Routing::decide`] to reach a verdict: 0 when the hello is not read.
    pub(crate) fn hello_room(&self) -> usize {
        match self.reads_hello() {
            true => tls::MAX_HELLO,
            false => 0,
        }
    }

    /// Whether a connection's first bytes are read before its pool is chosen: its PROXY header
    /// (`accept_proxy`), a ClientHello (a service with routes), or both.
    pub(crate) fn reads_prelude(&self, accept_proxy: bool) -> bool {
        accept_proxy || self.reads_hello()
    }

    /// Most bytes a client may send before its pool is chosen: a PROXY header (with
    /// `accept_proxy`), then, on a service with routes, a whole ClientHello. A driver whose
    /// prelude buffer is full at this size refuses the client ([`ReadEnd::Full`]).
    pub(crate) fn prelude_cap(&self, accept_proxy: bool) -> usize {
        let header = if accept_proxy { MAX_V2_LEN } else { 0 };
        header + self.hello_room()
    }

    /// The pool for a connection whose first bytes are not read (no SNI routes).
    pub(crate) fn without_hello(&self) -> Routed {
        Routed {
            pool: self.default,
            sni: None,
            by_route: false,
        }
    }

    /// What the client's data received so far (`data`: everything after its PROXY header)
    /// decides. Monotone: once it answers other than [`Decision::ReadMore`], more bytes give
    /// the same answer.
    pub(crate) fn decide(&self, data: &[u8]) -> Decision {
        let Some(routes) = &self.sni else {
            return Decision::Route(self.without_hello());
        };
        match tls::parse(data) {
            HelloOutcome::Incomplete { .. } => Decision::ReadMore,
            HelloOutcome::NotTls => Decision::Route(self.without_hello()),
            HelloOutcome::Invalid(error) => Decision::Refuse(error.into()),
            HelloOutcome::Complete { sni } => {
                let routed = sni.as_ref().and_then(|name| routes.lookup(name.as_str()));
                Decision::Route(Routed {
                    pool: routed.copied().or(self.default),
                    sni,
                    by_route: routed.is_some(),
                })
            }
        }
    }
}

/// A client's ClientHello was refused.
pub(crate) fn hello_refused(worker: usize, why: &HelloRefused) {
    tracing::debug!(worker, reason = %why, "TLS ClientHello refused; closing the client");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record naming `name` (or none), minimal but valid.
    fn hello(name: Option<&str>) -> Vec<u8> {
        let mut ext = Vec::new();
        if let Some(name) = name {
            let n = name.len() as u16;
            ext.extend_from_slice(&[0, 0]);
            ext.extend_from_slice(&(n + 5).to_be_bytes());
            ext.extend_from_slice(&(n + 3).to_be_bytes());
            ext.push(0);
            ext.extend_from_slice(&n.to_be_bytes());
            ext.extend_from_slice(name.as_bytes());
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut message = vec![1, 0];
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&body);
        let mut record = vec![0x16, 3, 1];
        record.extend_from_slice(&(message.len() as u16).to_be_bytes());
        record.extend_from_slice(&message);
        record
    }

    fn routing(default: Option<PoolIndex>) -> Routing {
        let routes = [
            (vec!["api.example.com"], 1),
            (vec!["*.internal.example.com"], 2),
        ];
        Routing {
            default,
            sni: Some(SniRoutes::new(routes).unwrap()),
        }
    }

    fn pool_of(decision: Decision) -> (Option<PoolIndex>, bool) {
        match decision {
            Decision::Route(routed) => (routed.pool, routed.by_route),
            other => panic!("expected a route, got {other:?}"),
        }
    }

    #[test]
    fn names_select_their_pools_and_everything_else_the_default() {
        let r = routing(Some(0));
        assert_eq!(
            pool_of(r.decide(&hello(Some("api.example.com")))),
            (Some(1), true)
        );
        assert_eq!(
            pool_of(r.decide(&hello(Some("API.example.COM")))),
            (Some(1), true)
        );
        assert_eq!(
            pool_of(r.decide(&hello(Some("a.internal.example.com")))),
            (Some(2), true)
        );
        assert_eq!(
            pool_of(r.decide(&hello(Some("b.a.internal.example.com")))),
            (Some(0), false)
        );
        assert_eq!(
            pool_of(r.decide(&hello(Some("other.example.com")))),
            (Some(0), false)
        );
        assert_eq!(pool_of(r.decide(&hello(None))), (Some(0), false));
        assert_eq!(pool_of(r.decide(b"GET / HTTP/1.1\r\n")), (Some(0), false));
        assert_eq!(pool_of(routing(None).decide(&hello(None))), (None, false));
    }

    #[test]
    fn the_name_is_kept_for_the_log() {
        let Decision::Route(routed) = routing(Some(0)).decide(&hello(Some("Api.Example.com")))
        else {
            panic!("expected a route");
        };
        assert_eq!(routed.sni.unwrap().as_str(), "api.example.com");
    }

    #[test]
    fn a_partial_hello_reads_more_at_every_cut_and_a_broken_one_is_refused() {
        let r = routing(Some(0));
        let whole = hello(Some("api.example.com"));
        for cut in 1..whole.len() {
            assert_eq!(r.decide(&whole[..cut]), Decision::ReadMore, "cut at {cut}");
        }
        let mut broken = whole.clone();
        broken[5] = 2; // a ServerHello, not a ClientHello
        assert!(matches!(
            r.decide(&broken),
            Decision::Refuse(HelloRefused::Invalid(_))
        ));
    }

    #[test]
    fn a_failed_read_is_the_headers_while_it_is_awaited_then_the_hellos() {
        use PreludeRefused::{Header, Hello};
        assert_eq!(
            PreludeRefused::of(true, ReadEnd::Late),
            Header(HeaderRefused::Late)
        );
        assert_eq!(
            PreludeRefused::of(false, ReadEnd::Late),
            Hello(HelloRefused::Late)
        );
        assert_eq!(
            PreludeRefused::of(true, ReadEnd::Full),
            Header(ParseError::TooLong.into())
        );
        assert_eq!(
            PreludeRefused::of(false, ReadEnd::Full),
            Hello(HelloError::TooLarge.into())
        );
        assert_eq!(
            PreludeRefused::of(false, ReadEnd::Io(5)),
            Hello(HelloRefused::Io(5))
        );
    }

    #[test]
    fn a_service_without_routes_never_reads() {
        let plain = Routing {
            default: Some(3),
            sni: None,
        };
        assert!(!plain.reads_hello());
        assert_eq!(plain.hello_room(), 0);
        assert_eq!(
            pool_of(plain.decide(&hello(Some("api.example.com")))),
            (Some(3), false)
        );
    }
}
