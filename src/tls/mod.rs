//! TLS passthrough routing: read the server name (SNI) from the ClientHello a client sends
//! first, and look it up in a table of exact and wildcard names.
//!
//! This module owns the ClientHello wire format as far as routing needs it, the rule of what a
//! routable host name is, and the SNI route table. It is a pure library: no I/O, no clock, no
//! logging, no configuration, and it never terminates TLS. It must never modify the bytes (the
//! caller forwards them unchanged to the backend), never allocate per connection, and never
//! panic or loop on untrusted input.
//!
//! # Parsing
//! [`parse`] is stateless, like `proxy_protocol::parse`: call it with *all* bytes received so
//! far on the connection, after each read, until it answers something other than
//! [`HelloOutcome::Incomplete`]. The answer is monotonic: once [`HelloOutcome::Complete`],
//! [`HelloOutcome::NotTls`] or [`HelloOutcome::Invalid`], more bytes give the same answer, and
//! the answer depends only on the bytes, never on how they were split into reads.
//!
//! - The ClientHello may be fragmented over any number of handshake records, and the records
//!   split across reads anyhow. The parse finishes when the last byte of the ClientHello
//!   message has arrived; bytes after it (in its record or later ones) are not looked at.
//! - The whole ClientHello, record headers included, must end within the first [`MAX_HELLO`]
//!   bytes, else [`HelloError::TooLarge`]: a caller buffering [`MAX_HELLO`] bytes never fills
//!   its buffer while the answer is still `Incomplete`.
//! - [`HelloOutcome::NotTls`] is answered at the first byte that shows the connection does not
//!   start with a TLS handshake record (type 0x16, version 3.0 to 3.4): plain text, an
//!   SSLv2-compatible hello, anything else. A caller routes those to its default.
//! - The fixed fields are checked (version 3.x, session id ≤ 32 bytes, an even, non-empty cipher
//!   suite list, a non-empty compression list), the extension list must fill the message
//!   exactly, and each extension must fit in it. A hello without extensions is `Complete` with
//!   no SNI. Extensions other than `server_name` are skipped unread (Encrypted Client Hello
//!   included: the outer hello's `server_name`, the public name, is what routes).
//! - `server_name`: at most one such extension; its list must fill it; the first `host_name`
//!   entry is taken, checked by [`check_name`] (a name we could not route on is
//!   [`HelloError::BadServerName`], not "no SNI") and lower-cased into a [`ServerName`].
//!   Entries of other name types are skipped by their length.
//!
//! # Routing
//! [`SniRoutes`] is built once, from each route's patterns and value, and answers
//! [`SniRoutes::lookup`] without allocating: exact names first, then the one-label wildcard
//! (`*.internal.example.com` matches `a.internal.example.com` only), case-insensitively.

mod client_hello;
mod name;
mod records;
mod routes;

use thiserror::Error;

pub use client_hello::parse;
pub use name::{check_name, NameError, ServerName, MAX_LABEL_LEN, MAX_NAME_LEN};
pub use routes::{PatternError, RouteError, SniRoutes};

/// Most bytes read for a ClientHello, record headers included (16 KiB). Real hellos are a few
/// hundred bytes, up to about 2 KiB with post-quantum key shares.
pub const MAX_HELLO: usize = 16 * 1024;

/// What [`parse`] makes of the bytes received so far. About 256 bytes, for the name held
/// inline: returned by value once per read, it costs a copy where boxing would cost a heap
/// allocation per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "the name is inline on purpose: no allocation per connection"
)]
pub enum HelloOutcome {
    /// The bytes so far begin a ClientHello without finishing it: read more and call again.
    Incomplete {
        /// A lower bound on the bytes still missing, at least 1; the bytes so far plus these
        /// never pass [`MAX_HELLO`].
        needed: usize,
    },
    /// A whole, well-formed ClientHello.
    Complete {
        /// Its `server_name` host name, lower-cased; `None` if it has none.
        sni: Option<ServerName>,
    },
    /// The connection does not start with a TLS handshake record: route it as not TLS.
    NotTls,
    /// A TLS handshake record, but not a valid ClientHello, and no more bytes can make it one.
    Invalid(HelloError),
}

/// Why a ClientHello was refused. `Copy`, for the accept path's counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum HelloError {
    /// The ClientHello does not end within [`MAX_HELLO`] bytes.
    #[error("ClientHello longer than 16 KiB")]
    TooLarge,
    /// A record after the first is not a handshake record (the hello must not be interleaved).
    #[error("TLS record other than handshake before the ClientHello ends")]
    NotHandshakeRecord,
    /// A record after the first has a version other than 3.0 to 3.4.
    #[error("TLS record with a bad version")]
    BadRecordVersion,
    /// A handshake record with no payload (forbidden, RFC 8446, section 5.1).
    #[error("empty TLS handshake record")]
    EmptyRecord,
    /// A record payload longer than 2^14 bytes.
    #[error("TLS record longer than 2^14 bytes")]
    RecordTooLong,
    /// The first handshake message is not a ClientHello.
    #[error("first handshake message is not a ClientHello")]
    NotClientHello,
    /// A field or list runs past the end of the message.
    #[error("ClientHello field runs past the message")]
    Overrun,
    /// `legacy_version` is not 3.x.
    #[error("ClientHello version is not 3.x")]
    BadVersion,
    /// The session id is longer than 32 bytes.
    #[error("ClientHello session id longer than 32 bytes")]
    BadSessionId,
    /// The cipher suite list is empty or of odd length.
    #[error("ClientHello cipher suite list empty or odd")]
    BadCipherSuites,
    /// The compression method list is empty.
    #[error("ClientHello compression method list empty")]
    BadCompressionMethods,
    /// The extension list does not end where the message ends.
    #[error("ClientHello extensions do not fill the message")]
    BadExtensionsLength,
    /// An extension runs past the extension list.
    #[error("ClientHello extension runs past the message")]
    BadExtensionLength,
    /// Two `server_name` extensions.
    #[error("two server_name extensions")]
    DuplicateServerName,
    /// The `server_name` extension is empty, or its list does not fill it exactly.
    #[error("malformed server_name extension")]
    BadServerNameList,
    /// The first `host_name` is not a DNS name we route on.
    #[error("server_name host_name: {0}")]
    BadServerName(NameError),
}
