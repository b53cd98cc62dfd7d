//! What probing one target means, by its `health_check` kind: the HTTP probe of `probe.rs`, a
//! TCP connect optionally followed by `health_check_send` and a reply that must begin with
//! `health_check_expect`, or no probe at all. A target that receives PROXY headers gets one on
//! its probes too (v2 `LOCAL`, v1 `PROXY UNKNOWN`), so a backend that requires it accepts them.
//!
//! Owns the TCP check's wire behaviour: where it connects (`health_check_port`), what it writes,
//! how it judges the reply and how it closes (a FIN, then the peer's FIN awaited briefly, so the
//! backend never sees a reset from a passed probe). Never reads more than a small window of a
//! reply, never takes longer than the timeout to give its verdict and never panics on what the
//! peer sends.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::probe::{self, classify, quote, ProbeFailure};
use crate::{
    config::{HealthCheckKind, Target},
    proxy_protocol::{Header, Version},
};

/// The request bytes of an HTTP check, or why there are none.
pub(crate) type Request = Result<Arc<[u8]>, ProbeFailure>;

/// Most reply bytes a TCP check reads beyond `health_check_expect`: enough to quote a server's
/// error line in the failure reason.
pub(crate) const REPLY_WINDOW: usize = 256;

/// How long a passed TCP check waits for the peer's FIN after sending its own before it drops
/// the socket. Runs after the verdict, so it never delays a round.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How one target is probed. Cheap to clone: every probe task of a round holds one.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    kind: Kind,
    /// Probe this port of the endpoint's address instead of the traffic port.
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `GET <endpoint>` (after the PROXY header, if any).
    Http(Request),
    /// Connect, write `send` if not empty, read a reply beginning with `expect` if not empty.
    Tcp { send: Arc<[u8]>, expect: Arc<[u8]> },
    /// Nothing is ever sent.
    None,
}

impl Check {
    /// The check of `target`, named `name` (`host:port`, the HTTP `Host` header). The target's
    /// `send_proxy` is taken as already resolved against the top-level setting.
    pub(crate) fn new(target: &Target, name: &str) -> Self {
        let header = match target.send_proxy.unwrap_or_default().version() {
            None => Vec::new(),
            Some(Version::V1) => Header::v1_unknown().as_bytes().to_vec(),
            Some(Version::V2) => Header::v2_local().as_bytes().to_vec(),
        };
        let prefixed = |bytes: &[u8]| -> Arc<[u8]> { [header.as_slice(), bytes].concat().into() };
        let kind = match target.health_check {
            HealthCheckKind::Http => Kind::Http(
                probe::build_request(name, &target.health_check_endpoint).map(|r| prefixed(&r)),
            ),
            HealthCheckKind::Tcp => Kind::Tcp {
                send: prefixed(target.health_check_send.as_deref().unwrap_or("").as_bytes()),
                expect: target
                    .health_check_expect
                    .as_deref()
                    .unwrap_or("")
                    .as_bytes()
                    .into(),
            },
            HealthCheckKind::None => Kind::None,
        };
        Self {
            kind,
            port: target.health_check_port,
        }
    }

    /// Whether this check sends anything at all (`false` for `health_check = "none"`).
    pub(crate) fn probes(&self) -> bool {
        !matches!(self.kind, Kind::None)
    }

    /// Probes the endpoint `addr` (at `health_check_port` if set) within `timeout`.
    pub(crate) async fn run(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(), ProbeFailure> {
        let addr = self
            .port
            .map_or(addr, |port| SocketAddr::new(addr.ip(), port));
        match &self.kind {
            Kind::Http(Ok(request)) => probe::probe(addr, request, timeout).await,
            Kind::Http(Err(why)) => Err(why.clone()),
            Kind::Tcp { send, expect } => tcp(addr, send, expect, timeout).await,
            Kind::None => Ok(()),
        }
    }
}

/// The TCP check: up when the connect (and the exchange, if any) succeeds within `timeout`.
async fn tcp(
    addr: SocketAddr,
    send: &[u8],
    expect: &[u8],
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    let stream = match tokio::time::timeout(timeout, exchange(addr, send, expect)).await {
        Ok(outcome) => outcome?,
        Err(_elapsed) => return Err(ProbeFailure::Timeout),
    };
    tokio::spawn(close_cleanly(stream));
    Ok(())
}

async fn exchange(addr: SocketAddr, send: &[u8], expect: &[u8]) -> Result<TcpStream, ProbeFailure> {
    let mut stream = TcpStream::connect(addr).await.map_err(classify)?;
    // Best effort: the payload is one small write either way.
    let _ = stream.set_nodelay(true);
    if !send.is_empty() {
        stream.write_all(send).await.map_err(classify)?;
    }
    if !expect.is_empty() {
        read_expected(&mut stream, expect).await?;
    }
    Ok(stream)
}

/// Reads until the reply is known to begin with `expect` or known not to; a mismatch is
/// reported at its first wrong byte, quoting the first line received.
pub(crate) async fn read_expected<R: AsyncRead + Unpin>(
    reader: &mut R,
    expect: &[u8],
) -> Result<(), ProbeFailure> {
    let mut buf = vec![0u8; expect.len().max(REPLY_WINDOW)];
    let mut len = 0;
    loop {
        let n = reader.read(&mut buf[len..]).await.map_err(classify)?;
        let seen = &buf[..len + n];
        let compared = seen.len().min(expect.len());
        if seen[..compared] != expect[..compared] {
            return Err(ProbeFailure::ExpectMismatch(quote(first_line(seen))));
        }
        if compared == expect.len() {
            return Ok(());
        }
        if n == 0 {
            return Err(match len {
                0 => ProbeFailure::Closed,
                _ => ProbeFailure::BadResponse(format!("closed after {}", quote(seen))),
            });
        }
        len += n;
    }
}

/// The first line of `bytes` without its line ending, or all of them if that line is empty.
fn first_line(bytes: &[u8]) -> &[u8] {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(bytes);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bytes
    } else {
        line
    }
}

/// Sends a FIN, then waits (briefly) for the peer's and discards what it still sends, so the
/// socket is closed without unread bytes and the backend sees an orderly close, not a reset.
async fn close_cleanly(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 512];
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Ok(1..) = stream.read(&mut sink).await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SendProxy, TargetAddress};

    fn target(kind: HealthCheckKind) -> Target {
        Target {
            address: TargetAddress {
                host: "cache".into(),
                port: 6379,
            },
            health_check: kind,
            health_check_endpoint: "/healthz".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn replies_are_judged_by_their_first_bytes() {
        let ok = |reply: &'static [u8], expect: &'static [u8]| async move {
            let mut reader = reply;
            read_expected(&mut reader, expect).await
        };
        assert_eq!(ok(b"+PONG\r\n", b"+PONG").await, Ok(()));
        assert_eq!(ok(b"+PONG", b"+PONG").await, Ok(()));
        let err = ok(b"-NOAUTH Authentication required.\r\n", b"+PONG")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "expect mismatch: got \"-NOAUTH Authentication required.\""
        );
        assert_eq!(ok(b"", b"+PONG").await, Err(ProbeFailure::Closed));
        let cut = ok(b"+PO", b"+PONG").await.unwrap_err().to_string();
        assert_eq!(cut, "bad response: closed after \"+PO\"");
        let binary = ok(&[0u8; 1000], b"+PONG").await.unwrap_err().to_string();
        assert!(
            binary.starts_with("expect mismatch: got \"\\x00"),
            "{binary}"
        );
        assert!(binary.ends_with("..."), "{binary}");
    }

    #[test]
    fn probes_carry_the_targets_proxy_header() {
        let mut redis = target(HealthCheckKind::Tcp);
        redis.health_check_send = Some("PING\r\n".into());
        redis.send_proxy = Some(SendProxy::V1);
        let Kind::Tcp { send, expect } = Check::new(&redis, "cache:6379").kind else {
            panic!("not a TCP check");
        };
        assert_eq!(&send[..], b"PROXY UNKNOWN\r\nPING\r\n");
        assert!(expect.is_empty());

        let mut http = target(HealthCheckKind::Http);
        http.send_proxy = Some(SendProxy::V2);
        let Kind::Http(Ok(request)) = Check::new(&http, "cache:6379").kind else {
            panic!("not an HTTP check");
        };
        let local = Header::v2_local();
        assert!(request.starts_with(local.as_bytes()));
        assert!(request[local.as_bytes().len()..].starts_with(b"GET /healthz HTTP/1.1\r\n"));

        assert!(!Check::new(&target(HealthCheckKind::None), "c:1").probes());
    }
}
