//! Which system errors are the local host's fault — out of descriptors, memory, buffers or
//! local ports — and therefore never evidence against a backend.
//!
//! Owns that one classification, for both the data path (a connect that fails in traffic) and
//! the health checker (a probe that cannot even open its socket). A leaf: imports nothing of
//! the crate. Never decides what to do about such an error; callers leave the backend's state
//! as it is and log the real cause.

use std::io;

/// Whether `errno` (a positive `E…` value) describes a shortage of this host rather than
/// anything the peer did.
pub fn is_local(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE
            | libc::ENFILE
            | libc::ENOBUFS
            | libc::ENOMEM
            // No free local port (ephemeral range exhausted) or address conflict.
            | libc::EADDRNOTAVAIL
            | libc::EADDRINUSE
    )
}

/// [`is_local`] for an `io::Error`; errors without an errno are not local.
pub fn is_local_io(error: &io::Error) -> bool {
    error.raw_os_error().is_some_and(is_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortages_are_local_and_peer_errors_are_not() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EADDRNOTAVAIL,
        ] {
            assert!(is_local(errno), "{errno}");
        }
        for errno in [
            libc::ECONNREFUSED,
            libc::ETIMEDOUT,
            libc::ECONNRESET,
            libc::EHOSTUNREACH,
            libc::ECANCELED,
        ] {
            assert!(!is_local(errno), "{errno}");
        }
        assert!(is_local_io(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_local_io(&io::Error::other("no errno")));
    }
}
