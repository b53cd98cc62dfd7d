//! The runtime API's bearer token: read from `[admin] token_file`, compared in constant time,
//! never shown.
//!
//! Owns the rules of the token file (one line, its trailing newline trimmed, not empty, at most
//! [`MAX_TOKEN`] bytes of visible ASCII, not readable by others) and the comparison with what a
//! client sent. A [`Token`] prints as `Token(<redacted>)` and has no `Display`, so no log line
//! or error can carry it by accident. Never logs, never panics on a file's content.

use std::{
    fmt,
    fs::File,
    io::{self, Read},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

/// The longest token accepted: far more than any generated secret, well inside the admin's
/// request head.
pub const MAX_TOKEN: usize = 1024;

/// The key every error names.
const KEY: &str = "admin.token_file";

/// A bearer token. Compared in constant time; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Box<[u8]>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a token file was refused. Every message names the key and the file, never the content.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be opened or read.
    #[error("{KEY}: {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Anyone on the host could read it.
    #[error(
        "{KEY}: {path}: is readable by every user (mode {mode:o}); expected a file only ringlb's \
         user (and group) can read: chmod o-rwx {path}"
    )]
    WorldReadable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Nothing in it (once the trailing newline is trimmed).
    #[error("{KEY}: {path}: is empty; expected one line holding the runtime API's token")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Longer than [`MAX_TOKEN`] bytes.
    #[error(
        "{KEY}: {path}: is longer than {MAX_TOKEN} bytes; expected one line holding the token"
    )]
    TooLong {
        /// The file.
        path: PathBuf,
    },
    /// A byte an HTTP header cannot carry (a space, a control character, a second line,
    /// non-ASCII).
    #[error(
        "{KEY}: {path}: holds a space, a control character, a second line or non-ASCII; expected \
         one line of visible ASCII (e.g. from `openssl rand -hex 32`)"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
    },
}

impl Token {
    /// Reads the token from `path`: refused when the file is readable by others, empty, longer
    /// than [`MAX_TOKEN`] or not one line of visible ASCII. One trailing `\n` (or `\r\n`) is
    /// trimmed. The permissions are those of the file opened (no race with a rename).
    pub fn read(path: &Path) -> Result<Token, TokenError> {
        let failed = |source| TokenError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(failed)?;
        let mode = file.metadata().map_err(failed)?.permissions().mode();
        if mode & 0o004 != 0 {
            return Err(TokenError::WorldReadable {
                path: path.to_owned(),
                mode: mode & 0o7777,
            });
        }
        let mut text = Vec::with_capacity(64);
        // Two bytes more than a token: room for its newline, and one to tell "too long".
        let limit = (MAX_TOKEN + 3) as u64;
        (&mut file)
            .take(limit)
            .read_to_end(&mut text)
            .map_err(failed)?;
        Self::parse(&text).map_err(|problem| problem.at(path))
    }

    /// The token in a file's content: one line, its trailing newline trimmed.
    pub fn parse(content: &[u8]) -> Result<Token, Problem> {
        let line = content.strip_suffix(b"\n").unwrap_or(content);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(Problem::Empty);
        }
        if line.len() > MAX_TOKEN {
            return Err(Problem::TooLong);
        }
        if !line.iter().all(u8::is_ascii_graphic) {
            return Err(Problem::Invalid);
        }
        Ok(Token(line.into()))
    }

    /// Whether `given` is this token. Takes the same time whatever `given` holds: every byte of
    /// the token is compared, with no early exit (only the token's own length shows).
    pub fn matches(&self, given: &[u8]) -> bool {
        let mut differ = u8::from(given.len() != self.0.len());
        for (i, &expected) in self.0.iter().enumerate() {
            let got = given.get(i).copied().unwrap_or(!expected);
            differ |= std::hint::black_box(expected ^ got);
        }
        differ == 0
    }

    /// The token itself, to put in an `Authorization` header (`ringlb ctl`).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// What is wrong with a token file's content, before its path is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// See [`TokenError::Empty`].
    Empty,
    /// See [`TokenError::TooLong`].
    TooLong,
    /// See [`TokenError::Invalid`].
    Invalid,
}

impl Problem {
    fn at(self, path: &Path) -> TokenError {
        let path = path.to_owned();
        match self {
            Problem::Empty => TokenError::Empty { path },
            Problem::TooLong => TokenError::TooLong { path },
            Problem::Invalid => TokenError::Invalid { path },
        }
    }
}

/// The token of `[admin] token_file`, or `None` when the key is absent (the runtime API is then
/// disabled).
pub fn configured(token_file: Option<&Path>) -> Result<Option<Token>, TokenError> {
    token_file.map(Token::read).transpose()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn token(text: &str) -> Token {
        Token::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn one_trailing_newline_is_trimmed() {
        assert_eq!(token("s3cret\n"), token("s3cret"));
        assert_eq!(token("s3cret\r\n"), token("s3cret"));
        assert!(token("s3cret\n").matches(b"s3cret"));
        assert_eq!(Token::parse(b"\n"), Err(Problem::Empty));
        assert_eq!(Token::parse(b""), Err(Problem::Empty));
        assert_eq!(Token::parse(b"a\n\n"), Err(Problem::Invalid), "two lines");
        assert_eq!(Token::parse(b"a b"), Err(Problem::Invalid));
        assert_eq!(Token::parse("é".as_bytes()), Err(Problem::Invalid));
        assert_eq!(Token::parse(&[b'a'; MAX_TOKEN + 1]), Err(Problem::TooLong));
        assert!(Token::parse(&[b'a'; MAX_TOKEN]).is_ok());
    }

    #[test]
    fn only_the_exact_token_matches() {
        let t = token("0123456789abcdef");
        assert!(t.matches(b"0123456789abcdef"));
        for wrong in [
            &b""[..],
            b"0123456789abcde",
            b"0123456789abcdef0",
            b"0123456789abcdeF",
            b"x123456789abcdef",
            // The complement of every byte, which a missing byte is compared against.
            &[!b'0'; 16],
        ] {
            assert!(!t.matches(wrong), "{}", wrong.escape_ascii());
        }
    }

    #[test]
    fn the_token_is_never_printed() {
        let t = token("hunter2hunter2");
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        assert!(!format!("{:?}", Some(&t)).contains("hunter2"));
    }

    fn file(content: &[u8], mode: u32) -> (Dir, PathBuf) {
        let dir = Dir::new();
        let path = dir.0.join("admin.token");
        let mut f = File::create(&path).unwrap();
        f.write_all(content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    /// A directory removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("ringlb-token-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_are_checked_and_errors_name_the_key_not_the_token() {
        let (_dir, path) = file(b"s3cret-token\n", 0o600);
        assert!(Token::read(&path).unwrap().matches(b"s3cret-token"));
        assert!(configured(Some(&path)).unwrap().is_some());
        assert!(configured(None).unwrap().is_none());
        let (_dir, readable) = file(b"s3cret-token\n", 0o644);
        let err = Token::read(&readable).unwrap_err().to_string();
        assert!(err.starts_with("admin.token_file: "), "{err}");
        assert!(err.contains("readable by every user (mode 644)"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let (_dir, empty) = file(b"\n", 0o640);
        let err = Token::read(&empty).unwrap_err().to_string();
        assert!(err.starts_with("admin.token_file: "), "{err}");
        assert!(err.contains("is empty"), "{err}");
        let (_dir, long) = file(&[b'x'; 5000], 0o600);
        assert!(matches!(
            Token::read(&long),
            Err(TokenError::TooLong { .. })
        ));
        let missing = Token::read(Path::new("/nonexistent/admin.token")).unwrap_err();
        assert!(missing
            .to_string()
            .starts_with("admin.token_file: /nonexistent/admin.token: cannot read"));
    }
}
