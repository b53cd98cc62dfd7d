//! What can go wrong with one request, and the per-kind error counters.
//!
//! Owns the error taxonomy shown in the report and in `summary.json`. Never drops an error:
//! every failed request lands in exactly one kind.

use std::{collections::BTreeMap, io};

/// Why one request (or connection) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The connection was refused (nothing listening, or a full backlog).
    Refused,
    /// The connection was not established in time.
    ConnectTimeout,
    /// The peer reset the connection (or the write side broke).
    Reset,
    /// The peer closed the connection before a complete response.
    Closed,
    /// No complete response in time.
    Timeout,
    /// A 4xx status.
    Status4xx,
    /// A 5xx status.
    Status5xx,
    /// Any other non-2xx status (1xx, 3xx).
    StatusOther,
    /// The response was not HTTP/1.1 we understand.
    Protocol,
    /// Any other I/O error.
    Io,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Refused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::Status4xx,
        ErrorKind::Status5xx,
        ErrorKind::StatusOther,
        ErrorKind::Protocol,
        ErrorKind::Io,
    ];

    /// The kind's name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
            ErrorKind::StatusOther => "status_other",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Io => "io",
        }
    }

    /// Classifies an I/O error.
    pub fn from_io(e: &io::Error) -> ErrorKind {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
            io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::InvalidData => ErrorKind::Protocol,
            _ => ErrorKind::Io,
        }
    }

    /// Classifies a non-2xx status.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400..=499 => ErrorKind::Status4xx,
            500..=599 => ErrorKind::Status5xx,
            _ => ErrorKind::StatusOther,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Error counts by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ErrorKind::ALL.len()]);

impl ErrorCounts {
    /// Counts one error.
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind.index()] += 1;
    }

    /// How many errors of `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind.index()]
    }

    /// All errors together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds another set of counts into this one.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// The non-zero counts by name (for JSON and the report).
    pub fn by_name(&self) -> BTreeMap<&'static str, u64> {
        ErrorKind::ALL
            .iter()
            .filter(|k| self.get(**k) > 0)
            .map(|k| (k.name(), self.get(*k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_total() {
        let mut a = ErrorCounts::default();
        a.add(ErrorKind::Reset);
        a.add(ErrorKind::Status5xx);
        let mut b = ErrorCounts::default();
        b.add(ErrorKind::Reset);
        a.merge(&b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.get(ErrorKind::Reset), 2);
        assert_eq!(a.by_name().get("status_5xx"), Some(&1));
        assert!(!a.by_name().contains_key("timeout"));
    }

    #[test]
    fn io_errors_and_statuses_are_classified() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(ErrorKind::from_io(&refused), ErrorKind::Refused);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(ErrorKind::from_io(&eof), ErrorKind::Closed);
        assert_eq!(ErrorKind::from_status(404), ErrorKind::Status4xx);
        assert_eq!(ErrorKind::from_status(503), ErrorKind::Status5xx);
        assert_eq!(ErrorKind::from_status(302), ErrorKind::StatusOther);
    }
}
