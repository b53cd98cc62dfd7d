//! How a byte stream is cut into reads: a schedule of read lengths, a reader that serves the
//! stream by that schedule (as a socket serves segments), and a poll loop for the async readers
//! of the health checker.
//!
//! Owns making "however the bytes are split" concrete and deterministic. Never uses a runtime,
//! a clock or randomness from outside: a schedule is a function of the bytes it cuts.

use std::{
    future::Future,
    io,
    pin::{pin, Pin},
    task::{Context, Poll, Waker},
};

use tokio::io::{AsyncRead, ReadBuf};

/// Longest single read a schedule produces: past the largest buffer any caller here reads into
/// (the admin's 8 KiB head), so "everything in one read" is one of the shapes tried.
const LONGEST_READ: u64 = 9 * 1024;

/// Where a stateless parser is asked about a stream of `len` bytes arriving in reads of
/// `lengths`: every prefix up to `every` bytes (the header region, byte by byte), then the end
/// of each read, then the whole; ascending, each once.
pub fn cuts(len: usize, lengths: &[usize], every: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..=len.min(every)).collect();
    cuts.extend(lengths.iter().scan(0, |at, &read| {
        *at += read.max(1);
        Some((*at).min(len))
    }));
    cuts.push(len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Read lengths for `data`, derived from the bytes themselves (so a fuzz input decides its own
/// split, and the same input always splits the same way): mostly 1 to 4 bytes, often up to 64,
/// sometimes up to 9 KiB. They add up to at least `data.len()`.
pub fn schedule(data: &[u8]) -> Vec<usize> {
    // FNV-1a of the input seeds a xorshift generator.
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut lengths = Vec::new();
    let mut total = 0;
    while total < data.len() {
        let r = next();
        let bound = match r % 8 {
            0..=3 => 4,
            4..=6 => 64,
            _ => LONGEST_READ,
        };
        let len = 1 + ((r >> 8) % bound) as usize;
        lengths.push(len);
        total += len;
    }
    lengths
}

/// `data` served as successive reads: read `i` has at most `lengths[i]` bytes (0 counts as 1),
/// and whatever is left after the last length comes as one more read. A read asks for at most
/// `room` bytes; the rest of its segment is served by the next read, as a socket would.
#[derive(Debug, Clone)]
pub(super) struct Stream<'a> {
    /// The segments not yet started.
    rest: &'a [u8],
    /// The lengths not yet used.
    lengths: std::slice::Iter<'a, usize>,
    /// The segment being read.
    segment: &'a [u8],
}

impl<'a> Stream<'a> {
    pub(super) fn new(data: &'a [u8], lengths: &'a [usize]) -> Self {
        Self {
            rest: data,
            lengths: lengths.iter(),
            segment: &[],
        }
    }

    /// Whether the segment being read is used up (the next read starts a new one).
    fn between_segments(&self) -> bool {
        self.segment.is_empty()
    }

    /// The next read of at most `room` bytes, `None` at the end of the stream.
    pub(super) fn read(&mut self, room: usize) -> Option<&'a [u8]> {
        if self.segment.is_empty() {
            let len = self.lengths.next().map_or(self.rest.len(), |&l| l.max(1));
            let (segment, rest) = self.rest.split_at(len.min(self.rest.len()));
            (self.segment, self.rest) = (segment, rest);
        }
        if self.segment.is_empty() || room == 0 {
            return None;
        }
        let (read, left) = self.segment.split_at(room.min(self.segment.len()));
        self.segment = left;
        Some(read)
    }
}

/// An [`AsyncRead`] over a [`Stream`]: `Pending` once before each new segment (a socket with
/// nothing buffered yet, so every await point of the reader is crossed), then the segment, then
/// end of file. Counts what it delivered.
pub(super) struct ChunkedReader<'a> {
    stream: Stream<'a>,
    /// Whether the `Pending` before the next segment was already returned.
    waited: bool,
    /// Bytes handed to the reader so far.
    pub(super) delivered: usize,
}

impl<'a> ChunkedReader<'a> {
    pub(super) fn new(data: &'a [u8], lengths: &'a [usize]) -> Self {
        Self {
            stream: Stream::new(data, lengths),
            waited: false,
            delivered: 0,
        }
    }
}

impl AsyncRead for ChunkedReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stream.between_segments() && !self.waited {
            self.waited = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.waited = false;
        if let Some(bytes) = self.stream.read(buf.remaining()) {
            buf.put_slice(bytes);
            self.delivered += bytes.len();
        }
        Poll::Ready(Ok(()))
    }
}

/// Drives `future` to completion without a runtime. Every reader here is a [`ChunkedReader`],
/// which makes progress on every poll, so `polls` (twice the reads, and some) is a bound that a
/// correct reader never reaches; reaching it means the reader waits for nothing.
pub(super) fn run_ready<F: Future>(future: F, polls: usize) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("still pending after {polls} polls of an always-ready reader");
}

/// A poll bound for [`run_ready`] over `data` split by `lengths`.
pub(super) fn poll_bound(data: &[u8], lengths: &[usize]) -> usize {
    2 * (lengths.len().min(data.len()) + 1) + 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_cover_the_input_and_depend_on_it() {
        for data in [&b""[..], b"x", b"GET / HTTP/1.1\r\n\r\n", &[0u8; 5000]] {
            let lengths = schedule(data);
            assert!(lengths.iter().sum::<usize>() >= data.len());
            assert!(lengths.iter().all(|&l| l >= 1));
            assert_eq!(schedule(data), lengths);
        }
        assert_ne!(schedule(&[1u8; 64]), schedule(&[2u8; 64]));
    }

    #[test]
    fn streams_serve_segments_within_room() {
        let mut stream = Stream::new(b"abcdefgh", &[3, 0, 2]);
        assert_eq!(stream.read(2), Some(&b"ab"[..]));
        assert_eq!(stream.read(9), Some(&b"c"[..]));
        assert_eq!(stream.read(9), Some(&b"d"[..]));
        assert_eq!(stream.read(9), Some(&b"ef"[..]));
        assert_eq!(stream.read(9), Some(&b"gh"[..]));
        assert_eq!(stream.read(9), None);
    }

    #[test]
    fn reader_waits_before_each_segment() {
        use tokio::io::AsyncReadExt;
        let mut reader = ChunkedReader::new(b"hello", &[2]);
        let mut out = Vec::new();
        let read = run_ready(reader.read_to_end(&mut out), 16).unwrap();
        assert_eq!((read, &out[..], reader.delivered), (5, &b"hello"[..], 5));
    }
}
