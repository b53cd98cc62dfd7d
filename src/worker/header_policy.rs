//! `accept_proxy` policy shared by both I/O backends: how long a client has to send its PROXY
//! header, and the reasons one is refused (logged, and counted as
//! `ringlb_proxy_headers_refused_total`). The wire format itself is `crate::proxy_protocol`'s.

use std::time::Duration;

use crate::proxy_protocol::ParseError;

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
