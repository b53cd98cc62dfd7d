//! `ringlb --probe-admin`: ask a running ringlb's `/healthz` and say whether it answered 200.
//!
//! Exists for container health checks: the runtime image holds no shell and no `curl`, only the
//! ringlb binary, so ringlb probes itself. Owns the address to probe (the configured admin
//! address, with an unspecified IP replaced by loopback) and one bounded, blocking HTTP/1.1
//! exchange. Never runs inside a serving ringlb.

use std::{
    io::{self, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    time::{Duration, Instant},
};

/// Most bytes read while looking for the status line.
const MAX_ANSWER: usize = 1024;

/// Why `/healthz` did not answer 200.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or the exchange failed or timed out.
    #[error("cannot ask {addr}: {source}")]
    Io {
        /// The probed address.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// An answer came, but not 200 (503 while draining).
    #[error("{addr} answered {status_line:?}")]
    Unhealthy {
        /// The probed address.
        addr: SocketAddr,
        /// The answer's status line.
        status_line: String,
    },
}

/// The address to probe for an admin listener bound to `listen`: the same port, on loopback
/// when `listen` is an unspecified address (`0.0.0.0`, `[::]`).
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Sends `GET /healthz` to `addr`; `Ok` iff the answer is `200`, all within `timeout`.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    let io = |source| ProbeError::Io { addr, source };
    let status_line = exchange(addr, timeout).map_err(io)?;
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => Err(ProbeError::Unhealthy { addr, status_line }),
    }
}

/// The status line of `addr`'s answer to `GET /healthz`.
fn exchange(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(left()?))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::with_capacity(MAX_ANSWER);
    let mut buf = [0u8; 256];
    while !answer.contains(&b'\n') && answer.len() < MAX_ANSWER {
        stream.set_read_timeout(Some(left()?))?;
        match stream.read(&mut buf)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        let probe = |s: &str| probe_addr(s.parse().unwrap()).to_string();
        assert_eq!(probe("0.0.0.0:9100"), "127.0.0.1:9100");
        assert_eq!(probe("[::]:9100"), "[::1]:9100");
        assert_eq!(probe("10.1.2.3:9100"), "10.1.2.3:9100");
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = probe(addr, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(err, ProbeError::Io { .. }), "{err}");
    }
}
