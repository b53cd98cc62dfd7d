//! One access-log record: the facts of one client connection at its end, as a worker pushes
//! them, and the termination vocabulary.
//!
//! Owns the record's shape and the spelling of every termination. A record is `Copy` and of a
//! fixed size (the SNI name inline, the service and pool as indices into the effective lists),
//! so pushing it costs no allocation on a worker; every string is made later, on the writer
//! thread (`format.rs`). Never reads a clock and never formats.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use crate::tls::ServerName;

/// Why a client connection ended: a small, documented vocabulary (README, "Access log").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Termination {
    /// Relayed to the end without a fault, and the client sent its FIN first.
    ClientClose,
    /// Relayed to the end without a fault, and the backend sent its FIN first.
    BackendClose,
    /// The client's socket failed (a reset, a broken pipe): the client went away abruptly.
    ClientReset,
    /// The backend's socket failed (a reset, a broken pipe) while relaying.
    BackendReset,
    /// No byte moved either way for `idle_timeout`.
    IdleTimeout,
    /// Every backend tried refused or timed out the connect; the client got `on_no_backend`.
    ConnectFailed,
    /// No backend could be tried (none healthy, none left); the client got `on_no_backend`.
    NoBackend,
    /// The client's PROXY header was invalid, too long or late (`accept_proxy`).
    ProxyHeaderRefused,
    /// Reserved for SNI routing: the client's TLS ClientHello was refused.
    TlsHelloRefused,
    /// Closed by shutdown: still open at the drain deadline, or accepted while stopping.
    Drained,
    /// A failure of ringlb's own (no descriptor, no memory, a ring that refused an operation),
    /// blamed on neither side.
    InternalError,
}

impl Termination {
    /// Every termination, in the order the README lists them.
    pub const ALL: [Termination; 11] = [
        Termination::ClientClose,
        Termination::BackendClose,
        Termination::ClientReset,
        Termination::BackendReset,
        Termination::IdleTimeout,
        Termination::ConnectFailed,
        Termination::NoBackend,
        Termination::ProxyHeaderRefused,
        Termination::TlsHelloRefused,
        Termination::Drained,
        Termination::InternalError,
    ];

    /// The spelling in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Termination::ClientClose => "client_close",
            Termination::BackendClose => "backend_close",
            Termination::ClientReset => "client_reset",
            Termination::BackendReset => "backend_reset",
            Termination::IdleTimeout => "idle_timeout",
            Termination::ConnectFailed => "connect_failed",
            Termination::NoBackend => "no_backend",
            Termination::ProxyHeaderRefused => "proxy_header_refused",
            Termination::TlsHelloRefused => "tls_hello_refused",
            Termination::Drained => "drained",
            Termination::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts of one client connection, pushed by its worker when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// When the connection ended (the writer turns it into wall-clock time).
    pub ended: Instant,
    /// The client's address (the PROXY header's, with `accept_proxy`).
    pub client: SocketAddr,
    /// The service it came in on: its index in the effective services.
    pub service: u16,
    /// The pool chosen for it: its index in the effective pools; `None` if none was (a refused
    /// ClientHello on a service without a default pool, say).
    pub pool: Option<u16>,
    /// The server name of its TLS ClientHello, if one was read and carried one.
    pub sni: Option<ServerName>,
    /// The backend address it was relayed to or last tried; `None` if none was tried.
    pub target: Option<SocketAddr>,
    /// Bytes delivered from the client to the backend.
    pub bytes_up: u64,
    /// Bytes delivered from the backend to the client.
    pub bytes_down: u64,
    /// From the accept until the backend connection was established (failed attempts and a
    /// PROXY header included); `None` if it never was.
    pub connect: Option<Duration>,
    /// From the accept to the end.
    pub duration: Duration,
    /// Connects retried on another backend.
    pub retries: u8,
    /// Why it ended.
    pub termination: Termination,
}
