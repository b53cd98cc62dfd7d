//! The handshake byte stream inside TLS records: a cursor that reads the handshake layer's
//! bytes out of the record layer (RFC 8446, section 5.1) without copying them together, so a
//! ClientHello fragmented over any number of records reads as one message.
//!
//! Owns the record header checks, the [`MAX_HELLO`] cap and the `needed` hint. Never reads past
//! the handshake bytes its caller said it wants ([`Handshake::want`]), never allocates, and stops
//! at the first record that is not a handshake record.

use super::{HelloError, MAX_HELLO};

/// Record content type of handshake messages.
const HANDSHAKE: u8 = 0x16;
/// Length of a record header: type, version (2 bytes), payload length (2 bytes).
const HEADER_LEN: usize = 5;
/// Longest record payload a peer may send (2^14, RFC 8446, section 5.1).
const MAX_RECORD: usize = 1 << 14;
/// Highest minor record version we know (TLS 1.3 would be 0x0304; the record layer says 0x0301
/// or 0x0303 in practice).
const MAX_MINOR: u8 = 4;

/// Why the cursor stopped before the caller had all it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The input ends first: at least `needed` more bytes are needed to finish the message.
    Short {
        /// Lower bound on the bytes missing, at least 1.
        needed: usize,
    },
    /// The first record is not a TLS handshake record.
    NotTls,
    /// The bytes break a rule; no more bytes can mend them.
    Invalid(HelloError),
}

impl From<HelloError> for Stop {
    fn from(error: HelloError) -> Self {
        Self::Invalid(error)
    }
}

/// Reads the handshake bytes carried by the records at the start of `input`.
#[derive(Debug)]
pub(super) struct Handshake<'a> {
    /// Everything received so far.
    input: &'a [u8],
    /// Offset in `input` of the next byte to read (a record header or payload byte).
    pos: usize,
    /// Bytes of the current record's payload not read yet; 0 before the first record.
    left_in_record: usize,
    /// Whether a record header has been read yet.
    started: bool,
    /// Handshake bytes read so far.
    read: usize,
    /// Handshake bytes the caller needs in all (the message's end); never read past.
    want: usize,
}

impl<'a> Handshake<'a> {
    /// A cursor at the start of `input`, wanting the first `want` handshake bytes.
    pub(super) fn new(input: &'a [u8], want: usize) -> Self {
        Self {
            input,
            pos: 0,
            left_in_record: 0,
            started: false,
            read: 0,
            want,
        }
    }

    /// Handshake bytes read so far: the offset of the next one in the message.
    pub(super) fn read(&self) -> usize {
        self.read
    }

    /// Sets the number of handshake bytes wanted in all, once the message length is known.
    /// Refuses, as [`HelloError::TooLarge`], a message that cannot end within [`MAX_HELLO`].
    pub(super) fn want(&mut self, want: usize) -> Result<(), Stop> {
        self.want = want;
        if self.pos + want.saturating_sub(self.read) > MAX_HELLO {
            return Err(HelloError::TooLarge.into());
        }
        Ok(())
    }

    /// The next handshake byte.
    pub(super) fn byte(&mut self) -> Result<u8, Stop> {
        let mut out = [0];
        self.copy(&mut out)?;
        Ok(out[0])
    }

    /// The next two handshake bytes, big-endian.
    pub(super) fn u16(&mut self) -> Result<usize, Stop> {
        let mut out = [0; 2];
        self.copy(&mut out)?;
        Ok(usize::from(u16::from_be_bytes(out)))
    }

    /// The next three handshake bytes, big-endian.
    pub(super) fn u24(&mut self) -> Result<usize, Stop> {
        let mut out = [0; 4];
        self.copy(&mut out[1..])?;
        Ok(u32::from_be_bytes(out) as usize)
    }

    /// Fills `out` with the next handshake bytes.
    pub(super) fn copy(&mut self, out: &mut [u8]) -> Result<(), Stop> {
        let mut done = 0;
        self.walk(out.len(), |chunk| {
            if let Some(dst) = out.get_mut(done..done + chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            done += chunk.len();
        })
    }

    /// Steps over the next `len` handshake bytes.
    pub(super) fn skip(&mut self, len: usize) -> Result<(), Stop> {
        self.walk(len, |_| {})
    }

    /// Hands the next `len` handshake bytes to `each`, in the pieces the records cut them in.
    /// Refuses to go past [`Handshake::want`] before looking at any byte.
    fn walk(&mut self, len: usize, mut each: impl FnMut(&[u8])) -> Result<(), Stop> {
        if self.read + len > self.want {
            return Err(HelloError::Overrun.into());
        }
        let mut left = len;
        while left > 0 {
            if self.left_in_record == 0 {
                self.record_header()?;
            }
            let available = self.input.len().saturating_sub(self.pos);
            let step = left.min(self.left_in_record).min(available);
            if step == 0 {
                return Err(self.short(0));
            }
            if let Some(chunk) = self.input.get(self.pos..self.pos + step) {
                each(chunk);
            }
            self.pos += step;
            self.read += step;
            self.left_in_record -= step;
            left -= step;
        }
        Ok(())
    }

    /// Reads the header of the next record. Each byte is checked as soon as it is there, so
    /// non-TLS bytes are told at the first wrong one. The cap comes first: whether the message
    /// can still end within [`MAX_HELLO`] depends only on the bytes before this header.
    fn record_header(&mut self) -> Result<(), Stop> {
        if self.pos + HEADER_LEN + (self.want - self.read) > MAX_HELLO {
            return Err(HelloError::TooLarge.into());
        }
        let header = self.input.get(self.pos..).unwrap_or_default();
        // Past the first record it is TLS after all, only broken.
        let refuse = |error: HelloError| match self.started {
            false => Stop::NotTls,
            true => Stop::Invalid(error),
        };
        if header.first().is_some_and(|&b| b != HANDSHAKE) {
            return Err(refuse(HelloError::NotHandshakeRecord));
        }
        if header.get(1).is_some_and(|&major| major != 3)
            || header.get(2).is_some_and(|&minor| minor > MAX_MINOR)
        {
            return Err(refuse(HelloError::BadRecordVersion));
        }
        let Some(&[_, _, _, hi, lo]) = header.first_chunk::<HEADER_LEN>() else {
            return Err(self.short(HEADER_LEN - header.len()));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return Err(HelloError::EmptyRecord.into());
        }
        if len > MAX_RECORD {
            return Err(HelloError::RecordTooLong.into());
        }
        self.pos += HEADER_LEN;
        self.left_in_record = len;
        self.started = true;
        Ok(())
    }

    /// The input ran out with `header_missing` bytes of a record header still to come: what is
    /// missing is those and the rest of the message (more record headers may come too).
    fn short(&self, header_missing: usize) -> Stop {
        let needed = header_missing + (self.want - self.read);
        Stop::Short {
            needed: needed.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `payloads` as handshake records.
    fn records(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in payloads {
            out.extend_from_slice(&[HANDSHAKE, 3, 1]);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn reads_across_records() {
        let input = records(&[b"ab", b"c", b"defg"]);
        let mut hs = Handshake::new(&input, 7);
        assert_eq!(hs.u24(), Ok(0x61_6263));
        let mut out = [0; 3];
        assert_eq!(hs.copy(&mut out), Ok(()));
        assert_eq!(&out, b"def");
        assert_eq!(hs.byte(), Ok(b'g'));
        assert_eq!(hs.byte(), Err(Stop::Invalid(HelloError::Overrun)));
    }

    #[test]
    fn short_input_says_what_is_missing() {
        let input = records(&[b"ab"]);
        let mut hs = Handshake::new(&input, 4);
        assert_eq!(hs.skip(4), Err(Stop::Short { needed: 7 }));
        let mut hs = Handshake::new(&input[..3], 4);
        assert_eq!(hs.skip(1), Err(Stop::Short { needed: 6 }));
        let mut hs = Handshake::new(&input[..6], 4);
        assert_eq!(hs.skip(2), Err(Stop::Short { needed: 3 }));
    }

    #[test]
    fn record_headers_are_checked() {
        let not_tls: [&[u8]; 4] = [b"G", b"\x16\x02", b"\x16\x03\x05", b"\x80\x2e\x01"];
        for input in not_tls {
            assert_eq!(Handshake::new(input, 4).skip(1), Err(Stop::NotTls));
        }
        let mut second = records(&[b"ab"]);
        second.extend_from_slice(b"\x15\x03\x03\x00\x02");
        let mut hs = Handshake::new(&second, 4);
        let refused = Stop::Invalid(HelloError::NotHandshakeRecord);
        assert_eq!(hs.skip(4), Err(refused));
        let empty = Stop::Invalid(HelloError::EmptyRecord);
        assert_eq!(Handshake::new(b"\x16\x03\x01\0\0", 4).skip(1), Err(empty));
        let long = Stop::Invalid(HelloError::RecordTooLong);
        assert_eq!(
            Handshake::new(b"\x16\x03\x01\x40\x01", 4).skip(1),
            Err(long)
        );
    }
}
