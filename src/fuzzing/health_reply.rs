//! Properties of the health checker's reply readers: the HTTP probe's status line
//! (`health::probe`) and the TCP check's `health_check_expect` match (`health::check`).
//!
//! Owns the checks of what the health checker relies on: whatever a backend answers, in
//! segments of any size, the verdict is the same and is the one a plain reading of the rule
//! gives; the reader never takes more bytes than its bound; and the failure reason it logs is
//! short printable text. Never changes the readers; it drives them over an in-memory stream.

use super::{
    assert_printable_reason,
    split::{poll_bound, run_ready, schedule, ChunkedReader},
};
use crate::{
    config::MAX_CHECK_BYTES,
    health::{
        check::{read_expected, REPLY_WINDOW},
        probe::{check_status_line, read_status_line, QUOTE_LIMIT},
        ProbeFailure, MAX_STATUS_LINE,
    },
};

/// Longest failure reason: the longest prefix (`bad response: no status line in the first
/// 4096 bytes`, or `expect mismatch: got `) and a quote of [`QUOTE_LIMIT`] bytes, each escaped
/// to at most 4 characters, with its quotes and `...`.
const REASON_LIMIT: usize = 64 + 4 * QUOTE_LIMIT + 5;

/// A verdict without its quoted text (which shows the bytes of the read that failed, so it
/// legitimately depends on how the reply was split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Up,
    Status(u16),
    Closed,
    BadResponse,
    ExpectMismatch,
}

impl Verdict {
    fn of(outcome: &Result<(), ProbeFailure>) -> Self {
        match outcome {
            Ok(()) => Self::Up,
            Err(ProbeFailure::Status(code)) => Self::Status(*code),
            Err(ProbeFailure::Closed) => Self::Closed,
            Err(ProbeFailure::BadResponse(_)) => Self::BadResponse,
            Err(ProbeFailure::ExpectMismatch(_)) => Self::ExpectMismatch,
            Err(other) => panic!("a reply reader answered {other:?}"),
        }
    }
}

/// Fuzz entry point: `data` as a backend's answer to the HTTP probe, split by [`schedule`].
pub fn health_status_line(data: &[u8]) {
    health_status_line_split(data, &schedule(data));
}

/// `data` as a backend's answer to the HTTP probe, in segments of `lengths`: the probe's verdict
/// is the one [`status_rule`] gives for the whole answer, it reads at most
/// [`MAX_STATUS_LINE`] bytes, and its reason is short printable text.
pub fn health_status_line_split(data: &[u8], lengths: &[usize]) {
    let mut reader = ChunkedReader::new(data, lengths);
    let outcome = run_ready(
        async {
            let line = read_status_line(&mut reader).await?;
            check_status_line(&line)
        },
        poll_bound(data, lengths),
    );
    assert!(
        reader.delivered <= MAX_STATUS_LINE,
        "read {} bytes",
        reader.delivered
    );
    assert_eq!(
        Verdict::of(&outcome),
        status_rule(data),
        "{outcome:?} for {}",
        data.escape_ascii()
    );
    if let Err(why) = &outcome {
        assert_printable_reason(&why.to_string(), REASON_LIMIT);
    }
}

/// The HTTP probe's rule, read plainly: up iff the first line, ended by LF within the first
/// [`MAX_STATUS_LINE`] bytes (CR before it dropped), is `HTTP/1.<digit> <3 digits>` followed by
/// nothing or a space and a reason, with a 2xx code.
fn status_rule(data: &[u8]) -> Verdict {
    if data.is_empty() {
        return Verdict::Closed;
    }
    let window = &data[..data.len().min(MAX_STATUS_LINE)];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        return Verdict::BadResponse;
    };
    let line = &window[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digit = |at: usize| line.get(at).copied().filter(u8::is_ascii_digit);
    let shaped = line.starts_with(b"HTTP/1.")
        && digit(7).is_some()
        && line.get(8) == Some(&b' ')
        && (9..12).all(|at| digit(at).is_some())
        && matches!(line.get(12), None | Some(b' '));
    if !shaped {
        return Verdict::BadResponse;
    }
    let code = (9..12).fold(0, |code, at| code * 10 + u16::from(line[at] - b'0'));
    match code {
        200..=299 => Verdict::Up,
        _ => Verdict::Status(code),
    }
}

/// Fuzz entry point: the first two bytes (big-endian) give the length of `health_check_expect`,
/// 1 to [`MAX_CHECK_BYTES`] (as the configuration allows), the next that many bytes are it, and
/// the rest is the backend's reply, split by [`schedule`].
pub fn tcp_expect(data: &[u8]) {
    let (len, rest) = match data {
        [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        _ => (0, &[][..]),
    };
    let len = 1 + len % MAX_CHECK_BYTES;
    let (expect, reply) = rest.split_at(len.min(rest.len()));
    if expect.is_empty() {
        return; // the TCP check reads no reply without an expect
    }
    tcp_expect_split(expect, reply, &schedule(reply));
}

/// The TCP check's reply judgement for a non-empty `expect`, the reply arriving in segments of
/// `lengths`: up iff the reply begins with `expect`; a reply that stops short of it is `Closed`
/// (nothing) or a bad response; the check reads at most `max(expect, 256)` bytes, and its
/// reason is short printable text.
pub fn tcp_expect_split(expect: &[u8], reply: &[u8], lengths: &[usize]) {
    assert!(
        !expect.is_empty(),
        "the TCP check reads no reply without an expect"
    );
    let mut reader = ChunkedReader::new(reply, lengths);
    let outcome = run_ready(
        read_expected(&mut reader, expect),
        poll_bound(reply, lengths),
    );
    let window = expect.len().max(REPLY_WINDOW);
    assert!(
        reader.delivered <= window,
        "read {} bytes",
        reader.delivered
    );
    let compared = reply.len().min(expect.len());
    let rule = if reply[..compared] != expect[..compared] {
        Verdict::ExpectMismatch
    } else if compared == expect.len() {
        Verdict::Up
    } else if reply.is_empty() {
        Verdict::Closed
    } else {
        Verdict::BadResponse
    };
    assert_eq!(
        Verdict::of(&outcome),
        rule,
        "{outcome:?} for {} expecting {}",
        reply.escape_ascii(),
        expect.escape_ascii()
    );
    if let Err(why) = &outcome {
        assert_printable_reason(&why.to_string(), REASON_LIMIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_replies_pass() {
        for reply in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.0 503 Service Unavailable\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"",
            b"HTTP/1.1 2",
        ] {
            health_status_line(reply);
            health_status_line_split(reply, &[1; 64]);
        }
        assert_eq!(status_rule(b"HTTP/1.1 204\n"), Verdict::Up);
        assert_eq!(status_rule(b"HTTP/1.1 302 Found\r\n"), Verdict::Status(302));
        tcp_expect(b"\x00\x04+PONG+PONG\r\n");
        tcp_expect_split(b"+PONG", b"-NOAUTH Authentication required.\r\n", &[1]);
        tcp_expect_split(b"+PONG", b"+PO", &[]);
        tcp_expect_split(&[b'x'; 1024], &[b'x'; 2000], &[7]);
    }
}
