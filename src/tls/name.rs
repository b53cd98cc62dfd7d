//! Host names as SNI carries them: the DNS-name check shared by the ClientHello parser and the
//! route table, and [`ServerName`], the checked, lower-cased name the parser returns.
//!
//! Owns the one rule of what a routable name is. Never allocates: a [`ServerName`] is a fixed
//! 253-byte buffer, and lower-casing is done into it.

use std::{fmt, hash::Hash};

use thiserror::Error;

/// Longest DNS name, in bytes, without a trailing dot (RFC 1035, section 2.3.4, less the root).
pub const MAX_NAME_LEN: usize = 253;

/// Longest label of a DNS name, in bytes.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a host name is not a DNS name we route on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum NameError {
    /// No byte at all.
    #[error("empty name")]
    Empty,
    /// More than [`MAX_NAME_LEN`] bytes.
    #[error("longer than 253 bytes")]
    TooLong,
    /// Two dots in a row, or a dot first or last (a trailing dot is not sent in SNI, RFC 6066).
    #[error("empty label")]
    EmptyLabel,
    /// A label of more than [`MAX_LABEL_LEN`] bytes.
    #[error("label longer than 63 bytes")]
    LabelTooLong,
    /// A byte other than an ASCII letter, digit, hyphen or dot.
    #[error("character other than a letter, digit, '-' or '.'")]
    BadCharacter,
}

/// Checks that `name` is a DNS name: dot-separated, non-empty labels of ASCII letters, digits
/// and hyphens, each at most 63 bytes, at most 253 bytes in all. Either case is accepted.
/// Hyphens are not checked for position (RFC 952's "not first or last" is left to DNS).
pub fn check_name(name: &[u8]) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong);
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(NameError::BadCharacter);
        }
    }
    Ok(())
}

/// A checked host name (see [`check_name`]), lower-cased. `Copy`, no heap: 253 bytes and a
/// length. Compare, hash and look it up as a `&str` with [`ServerName::as_str`].
#[derive(Clone, Copy)]
pub struct ServerName {
    /// The name, lower-case ASCII, then zeros.
    bytes: [u8; MAX_NAME_LEN],
    /// How many of `bytes` are the name, 1 to 253.
    len: u8,
}

impl ServerName {
    /// `name` checked and lower-cased.
    pub fn new(name: &[u8]) -> Result<Self, NameError> {
        check_name(name)?;
        let mut bytes = [0; MAX_NAME_LEN];
        for (slot, b) in bytes.iter_mut().zip(name) {
            *slot = b.to_ascii_lowercase();
        }
        Ok(Self {
            bytes,
            len: name.len() as u8, // at most 253, checked above
        })
    }

    /// The name, lower-case.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        // Always ASCII (checked in `new`), so this never falls back.
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl PartialEq for ServerName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ServerName {}

impl Hash for ServerName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerName({:?})", self.as_str())
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_lower_cased() {
        let name = ServerName::new(b"Api.Example-1.COM").unwrap();
        assert_eq!(name.as_str(), "api.example-1.com");
        assert_eq!(name.to_string(), "api.example-1.com");
        assert_eq!(name, ServerName::new(b"api.EXAMPLE-1.com").unwrap());
        assert_eq!(ServerName::new(b"localhost").unwrap().as_str(), "localhost");
        assert_eq!(ServerName::new(b"192.0.2.1").unwrap().as_str(), "192.0.2.1");
    }

    #[test]
    fn bad_names_are_refused() {
        let long_label = [b'a'; 64];
        let longest = [[b'a'; 63].as_slice(); 4].join(&b'.'); // 255 bytes
        for (name, why) in [
            (&b""[..], NameError::Empty),
            (b"example.com.", NameError::EmptyLabel),
            (b".example.com", NameError::EmptyLabel),
            (b"a..b", NameError::EmptyLabel),
            (&long_label, NameError::LabelTooLong),
            (&longest, NameError::TooLong),
            (b"under_score.com", NameError::BadCharacter),
            (b"*.example.com", NameError::BadCharacter),
            (b"caf\xc3\xa9.com", NameError::BadCharacter),
            (b"a b", NameError::BadCharacter),
        ] {
            assert_eq!(ServerName::new(name).map(|_| ()), Err(why), "{name:?}");
        }
        assert!(check_name(&longest[..253]).is_ok());
        assert!(check_name(&[b'a'; 63]).is_ok());
    }
}
