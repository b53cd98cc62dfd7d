//! PROXY protocol policy shared by both I/O drivers: how long a client has to send its header
//! (`accept_proxy`), the reasons one is refused (logged, and counted as
//! `ringlb_proxy_headers_refused_total`), and which header a backend gets (`send_proxy`). The
//! wire format itself is `crate::proxy_protocol`'s. Never does I/O.

use std::{net::SocketAddr, time::Duration};

use crate::proxy_protocol::{Header, ParseError, Version};

/// How long a client has to send its whole PROXY header.
pub(crate) const HEADER_BUDGET: Duration = Duration::from_secs(5);

/// Why a client's PROXY header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeaderRefused {
    /// The bytes are not a valid header (or one longer than ringlb accepts).
    #[error("{0}")]
    Invalid(#[from] ParseError),
    /// The header was not complete within [`HEADER_BUDGET`].
    #[error("not complete within 5 s")]
    Late,
    /// The client closed before its header was complete.
    #[error("closed before the header was complete")]
    Closed,
    /// The receive failed (errno).
    #[error("receive failed (errno {0})")]
    Io(i32),
    /// The ring refused the receive (io_uring only).
    #[error("cannot submit the receive")]
    Submit,
}

/// The header a backend with `send_proxy = version` gets for a client whose addresses (its
/// own, and the one it connected to) are `addrs`: those addresses, or, when they cannot be told
/// any more (the client is already gone), the header that says "unknown" rather than a guess.
pub(crate) fn header_for(version: Version, addrs: Option<(SocketAddr, SocketAddr)>) -> Header {
    match (addrs, version) {
        (Some((src, dst)), _) => Header::new(version, src, dst),
        (None, Version::V1) => Header::v1_unknown(),
        (None, Version::V2) => Header::v2_local(),
    }
}
