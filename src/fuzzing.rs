//! Fuzzing and property entry points for every parser a peer or a file can reach: the PROXY
//! header a client sends first, the admin request head, the health-check replies (HTTP status
//! line, TCP `health_check_expect`), the TOML configuration, target addresses, and the TLS
//! ClientHello read for SNI routing.
//!
//! Owns what must hold for *any* input to those parsers: each entry point takes raw bytes, runs
//! the parser the way its caller does (fed in reads of arbitrary sizes where the caller reads a
//! socket), and checks its invariants and round trips. The same functions serve three callers,
//! so a property is written once: the AFL targets in `fuzz/` (one `afl::fuzz!` line each, and
//! the libFuzzer one in `fuzz/libfuzzer/`), the proptests in `tests/parsers_prop.rs`, and the
//! seed-corpus replay in that same file.
//!
//! Never does I/O, never sleeps, never logs, never uses a clock: the same input always takes the
//! same path. It panics only to report a broken property, which is how AFL and proptest see a
//! failure. Not part of the crate's API (`#[doc(hidden)]`); its parsers' own visibility is
//! widened to `pub(crate)` only so this module can call them.

mod admin_request;
mod config_file;
mod health_reply;
mod hello_builder;
mod proxy_header;
mod split;
mod target_address;
mod tls_client_hello;

pub use admin_request::{admin_request, admin_request_split};
pub use config_file::{config, config_text};
pub use health_reply::{
    health_status_line, health_status_line_split, tcp_expect, tcp_expect_split,
};
pub use hello_builder::{client_hello_message, in_records, server_name_extension};
pub use proxy_header::{proxy_header, proxy_header_split, proxy_round_trip, proxy_round_trip_of};
pub use split::schedule;
pub use target_address::{socket_addr_round_trip, target_address, target_address_text};
pub use tls_client_hello::{
    tls_client_hello, tls_client_hello_split, tls_sni_round_trip, tls_sni_round_trip_of,
};

/// One fuzz target: the name of its `fuzz/` binary and of its seed directory under
/// `fuzz/corpus/`, and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every fuzz target, in the order `.ci/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    ("proxy_header", proxy_header),
    ("proxy_round_trip", proxy_round_trip),
    ("admin_request", admin_request),
    ("health_status_line", health_status_line),
    ("tcp_expect", tcp_expect),
    ("config", config),
    ("target_address", target_address),
    ("tls_client_hello", tls_client_hello),
    ("tls_sni_round_trip", tls_sni_round_trip),
];

/// Asserts that a failure reason shown in logs and `/status` is short, printable ASCII: a peer
/// must not be able to write control characters or megabytes into ringlb's log.
fn assert_printable_reason(reason: &str, limit: usize) {
    assert!(
        reason.len() <= limit,
        "reason of {} bytes (limit {limit}): {reason}",
        reason.len()
    );
    assert!(
        reason.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "unprintable reason: {reason:?}"
    );
}
