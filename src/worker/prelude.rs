//! What a connection slot holds for the PROXY protocol: the bytes that go to the backend before
//! the relay starts (ringlb's own header, then whatever the client sent after its header), the
//! client's header while it arrives (`accept_proxy`), and the addresses a header carries.
//!
//! Owns one buffer per slot, allocated the first time the slot needs it and kept for every later
//! connection of that slot, so the hot path allocates nothing once the table has grown. The
//! buffer sits behind a `Box`, so its address does not move when the slot table grows: a send or
//! receive in flight may point into it. Pure data: never does I/O.

use std::{net::SocketAddr, time::Instant};

use io_uring::types::Timespec;

use crate::{
    conn::routing::grown_prelude,
    proxy_protocol::{Header, MAX_V2_LEN, V1_MAX_LEN},
};

/// Room before the received bytes for ringlb's own header (the longest one it writes fits).
pub const HEADROOM: usize = V1_MAX_LEN;

/// The largest buffer a slot keeps for its next connection: a PROXY header and a typical
/// ClientHello.
const KEPT: usize = HEADROOM + MAX_V2_LEN + 4096;

/// A slot's PROXY protocol state.
#[derive(Default)]
pub struct Prelude {
    /// The slot's buffer, kept across connections.
    storage: Option<Box<Storage>>,
    /// Bytes received from the client into the buffer (`accept_proxy`), header included.
    pub received: usize,
    /// Length of the client's header once complete; `received - consumed` bytes of client
    /// data follow it.
    pub consumed: usize,
    /// When the client's header must be complete (`accept_proxy`).
    pub deadline: Option<Instant>,
    /// The client's address and the address it connected to, once known (from the client's
    /// header, or asked of the kernel when a backend wants a header).
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// Parts of the connect chain not completed yet: the connect, the linked send, or both.
    pub waiting: u8,
    /// The connect's result, kept until the linked send completes too.
    pub connect_result: i32,
    /// The send's result, kept until the connect completes too.
    pub send_result: i32,
    /// Most bytes received from the client before the backend is chosen, when more than
    /// [`MAX_V2_LEN`] (a PROXY header and a TLS ClientHello; see [`Prelude::allow`]).
    cap: usize,
    /// The bytes being sent: `start..end` of the buffer.
    pub start: usize,
    /// End of the bytes being sent.
    pub end: usize,
}

/// The heap part of a slot's state: kernel-visible memory, so it must not move.
struct Storage {
    /// The remaining header budget, read by the kernel when a `LinkTimeout` is submitted.
    timeout: Timespec,
    /// `HEADROOM` bytes, then room for the client's header and what follows it.
    bytes: Box<[u8]>,
}

impl Prelude {
    /// Forgets the connection, keeping the buffer for the slot's next one, unless a large
    /// ClientHello grew it past [`KEPT`]: that memory goes back rather than stay with a slot.
    pub fn reset(&mut self) {
        let storage = self.storage.take().filter(|s| s.bytes.len() <= KEPT);
        *self = Prelude {
            storage,
            ..Prelude::default()
        };
    }

    /// Whether bytes the client sent after its own header are part of what goes to the
    /// backend before the relay.
    pub fn carries_client_bytes(&self) -> bool {
        self.received > self.consumed
    }

    /// Makes sure the buffer exists with room for `HEADROOM + receive` bytes.
    pub fn reserve(&mut self, receive: usize) {
        let len = HEADROOM + receive;
        if self.storage.as_ref().is_none_or(|s| s.bytes.len() < len) {
            self.storage = Some(Box::new(Storage {
                timeout: Timespec::new(),
                bytes: vec![0; len].into_boxed_slice(),
            }));
        }
    }

    /// Lets this connection receive up to `cap` bytes before its backend is chosen (a PROXY
    /// header and a ClientHello), the buffer growing as they arrive: a typical hello fits the
    /// first reserve, and only a large one costs more memory, up to `cap`.
    pub fn allow(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// Where the next receive writes, and how much room is left (at most [`MAX_V2_LEN`]
    /// bytes in all, or what [`Prelude::allow`] said); `None` without a buffer. A full buffer
    /// below an allowed cap is doubled first (what it holds is kept): no receive is in flight while
    /// the caller asks.
    pub fn receive_window(&mut self) -> Option<(*mut u8, usize)> {
        let received = self.received;
        let cap = self.cap.max(MAX_V2_LEN);
        let storage = self.storage.as_mut()?;
        let held = storage.bytes.len() - HEADROOM;
        if received >= held && held < self.cap {
            let mut grown = vec![0; HEADROOM + grown_prelude(held, cap)].into_boxed_slice();
            grown[..storage.bytes.len()].copy_from_slice(&storage.bytes);
            storage.bytes = grown;
        }
        let bytes = &mut storage.bytes;
        let room = cap.min(bytes.len() - HEADROOM).checked_sub(received)?;
        Some((bytes[HEADROOM + received..].as_mut_ptr(), room))
    }

    /// The client's data received so far after its PROXY header (all of it, without one).
    pub fn data(&self) -> &[u8] {
        self.received_bytes().get(self.consumed..).unwrap_or(&[])
    }

    /// Everything received from the client so far.
    pub fn received_bytes(&self) -> &[u8] {
        match &self.storage {
            Some(s) => &s.bytes[HEADROOM..HEADROOM + self.received],
            None => &[],
        }
    }

    /// Client bytes received after the client's header, to be forwarded before relaying.
    pub fn leftover(&self) -> usize {
        self.received - self.consumed
    }

    /// Lays out what goes to the backend before relaying: `header` (if any) right before the
    /// client bytes that followed the client's header. Returns the pointer and length to send,
    /// or `None` when there is nothing to send (or no buffer).
    pub fn stage(&mut self, header: Option<&Header>) -> Option<(*const u8, usize)> {
        let header = header.map_or(&[][..], Header::as_bytes);
        let data = HEADROOM + self.consumed;
        let end = HEADROOM + self.received;
        let start = data.checked_sub(header.len())?;
        if start == end {
            return None;
        }
        let bytes = &mut self.storage.as_mut()?.bytes;
        bytes.get_mut(start..data)?.copy_from_slice(header);
        self.start = start;
        self.end = end;
        Some((bytes[start..].as_ptr(), end - start))
    }

    /// After `sent` more bytes went out, what is still to send, if anything.
    pub fn advance(&mut self, sent: usize) -> Option<(*const u8, usize)> {
        self.start = (self.start + sent).min(self.end);
        let bytes = &self.storage.as_ref()?.bytes;
        (self.start < self.end).then(|| (bytes[self.start..].as_ptr(), self.end - self.start))
    }

    /// Stores `remaining` as the header budget; returns where the kernel reads it.
    pub fn set_timeout(&mut self, remaining: std::time::Duration) -> Option<*const Timespec> {
        let storage = self.storage.as_mut()?;
        storage.timeout = Timespec::from(remaining);
        Some(&storage.timeout as *const Timespec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(prelude: &mut Prelude, bytes: &[u8]) {
        let (ptr, room) = prelude.receive_window().unwrap();
        assert!(bytes.len() <= room);
        // SAFETY: the window is `room` writable bytes of the prelude's buffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
        prelude.received += bytes.len();
    }

    fn staged(prelude: &mut Prelude, header: Option<&Header>) -> Vec<u8> {
        let (ptr, len) = prelude.stage(header).unwrap();
        // SAFETY: `stage` returns a range of the prelude's buffer.
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    }

    #[test]
    fn our_header_goes_right_before_the_leftover() {
        let mut prelude = Prelude::default();
        prelude.reserve(MAX_V2_LEN);
        fill(&mut prelude, b"PROXY UNKNOWN\r\nPING\r\n");
        prelude.consumed = 15;
        assert_eq!(prelude.leftover(), 6);
        let src = "[2001:db8::1]:1".parse().unwrap();
        let header = Header::v1(src, src);
        let mut expected = header.as_bytes().to_vec();
        expected.extend_from_slice(b"PING\r\n");
        assert_eq!(staged(&mut prelude, Some(&header)), expected);
        assert_eq!(staged(&mut prelude, None), b"PING\r\n");
        let (_, rest) = prelude.advance(4).unwrap();
        assert_eq!(rest, 2);
        assert!(prelude.advance(2).is_none());
    }

    #[test]
    fn the_window_never_passes_the_v2_cap_and_the_buffer_survives_reset() {
        let mut prelude = Prelude::default();
        assert!(prelude.receive_window().is_none());
        prelude.reserve(MAX_V2_LEN);
        assert_eq!(prelude.receive_window().unwrap().1, MAX_V2_LEN);
        fill(&mut prelude, &[b'x'; 100]);
        assert_eq!(prelude.receive_window().unwrap().1, MAX_V2_LEN - 100);
        let (before, _) = prelude.receive_window().unwrap();
        prelude.reset();
        assert_eq!(prelude.received, 0);
        let (after, room) = prelude.receive_window().unwrap();
        assert_eq!((after as usize) + 100, before as usize, "same buffer");
        assert_eq!(room, MAX_V2_LEN);
        assert!(prelude.stage(None).is_none(), "nothing to send");
    }

    #[test]
    fn a_large_hello_grows_the_buffer_keeping_its_bytes_up_to_the_cap() {
        let mut prelude = Prelude::default();
        prelude.reserve(MAX_V2_LEN);
        prelude.allow(MAX_V2_LEN + 16 * 1024);
        let mut sent = Vec::new();
        let mut byte = 0u8;
        while let Some((_, room)) = prelude.receive_window().filter(|w| w.1 > 0) {
            let chunk: Vec<u8> = (0..room.min(3000))
                .map(|_| {
                    byte = byte.wrapping_add(1);
                    byte
                })
                .collect();
            fill(&mut prelude, &chunk);
            sent.extend_from_slice(&chunk);
        }
        assert_eq!(sent.len(), MAX_V2_LEN + 16 * 1024, "exactly the cap");
        assert_eq!(
            prelude.received_bytes(),
            &sent[..],
            "nothing lost while growing"
        );
        prelude.reset();
        assert!(
            prelude.receive_window().is_none(),
            "a grown buffer is not kept"
        );
    }

    #[test]
    fn a_header_alone_needs_only_the_headroom() {
        let mut prelude = Prelude::default();
        prelude.reserve(0);
        assert_eq!(prelude.receive_window().unwrap().1, 0);
        let v4 = "192.0.2.1:5".parse().unwrap();
        let header = Header::v2(v4, v4);
        assert_eq!(staged(&mut prelude, Some(&header)), header.as_bytes());
    }
}
