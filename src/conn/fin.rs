//! Letting a source's FIN ride on the last bytes before it, for both I/O drivers.
//!
//! A backend answering one request per connection sends its reply and its FIN back to back,
//! and they usually reach ringlb before ringlb reads either. Relayed plainly, the client would
//! get them as two segments, each with its own ACK and its own wake-up of the client, all paid
//! for in ringlb's time on loopback. So when a receive shows that the FIN is already queued
//! behind the bytes it returned, the relay sends those bytes with `MSG_MORE` and passes the FIN
//! on (`SHUT_WR`) right after: the kernel holds the partial segment until the FIN joins it, and
//! the peer gets both in one segment. On a connection per request this saved 5–11 % of
//! ringlb's CPU per connection (docs/benchmarks.md); keep-alive traffic never sees a FIN, so
//! it never takes this path.
//!
//! Owns the rule only and never does I/O. The duty it puts on a driver: bytes sent with
//! `MSG_MORE` wait for the next send or the `SHUT_WR`. A direction always does one of the two
//! right after (its next receive returns at once: the FIN, or bytes that arrived meanwhile),
//! except when the connection ends with a reset instead; a driver that resets a side once its
//! send queue has drained pushes the queue out first (`TCP_NODELAY`, which flushes what a
//! `MSG_MORE` send held), or the bytes would sit there until the reset dropped them.

/// Whether the FIN is known to be queued right behind the `received` bytes just read into a
/// buffer of `capacity`, given what the kernel said about the source after the read:
/// `source_closed` is io_uring's "the socket is not empty" (which a queued FIN sets once the
/// data is drained) or epoll's `EPOLLRDHUP`.
///
/// A full buffer says nothing: more data may come before the FIN, and those bytes must not wait.
pub fn follows(received: usize, capacity: usize, source_closed: bool) -> bool {
    source_closed && received > 0 && received < capacity
}

/// The extra `send(2)` flags for bytes the FIN [`follows`]: `MSG_MORE`, or none.
pub fn send_flags(fin_follows: bool) -> libc::c_int {
    if fin_follows {
        libc::MSG_MORE
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_short_read_before_a_closed_source_waits_for_the_fin() {
        assert!(follows(152, 16384, true));
        // A full buffer: more bytes may be queued before the FIN.
        assert!(!follows(16384, 16384, true));
        // Nothing read (the EOF itself), or the source is still open.
        assert!(!follows(0, 16384, true));
        assert!(!follows(152, 16384, false));
        assert_eq!(send_flags(true), libc::MSG_MORE);
        assert_eq!(send_flags(false), 0);
    }
}
