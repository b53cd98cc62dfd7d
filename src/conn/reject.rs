//! The answer to a client when no backend can take it (`on_no_backend`), for both I/O drivers:
//! by default the exact 503, then a FIN, then whatever the client still sends read and dropped
//! for at most [`LINGER`] (closing with unread input would send a reset that could destroy the
//! answer before the client reads it); or only that FIN and drain (`close`); or a reset
//! (`reset`, `SO_LINGER` 0), which non-HTTP clients handle best.
//!
//! Owns the bytes and the steps; never does I/O.

use std::time::Duration;

use crate::config::OnNoBackend;

/// The exact answer to a client when no backend is healthy.
pub const RESPONSE_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain\r\n\
Content-Length: 19\r\n\
Connection: close\r\n\
\r\n\
Service Unavailable";

/// How long a rejected client may keep sending after its answer before it is closed.
pub const LINGER: Duration = Duration::from_secs(1);

/// What a driver does with a client no backend can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Write these bytes (perhaps none), then a FIN, then drain for at most [`LINGER`], then
    /// close.
    Answer(&'static [u8]),
    /// Close with `SO_LINGER` 0: a reset, at once.
    Reset,
}

impl From<OnNoBackend> for Rejection {
    fn from(on: OnNoBackend) -> Self {
        match on {
            OnNoBackend::Http503 => Rejection::Answer(RESPONSE_503),
            OnNoBackend::Close => Rejection::Answer(b""),
            OnNoBackend::Reset => Rejection::Reset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_has_its_steps() {
        assert_eq!(
            Rejection::from(OnNoBackend::Http503),
            Rejection::Answer(RESPONSE_503)
        );
        assert_eq!(Rejection::from(OnNoBackend::Close), Rejection::Answer(b""));
        assert_eq!(Rejection::from(OnNoBackend::Reset), Rejection::Reset);
        let text = std::str::from_utf8(RESPONSE_503).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
