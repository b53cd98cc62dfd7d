//! Name resolution for targets, behind a trait so tests can script the answers.
//!
//! Owns turning a configured host and port into socket addresses under a deadline. Never caches
//! (every round asks anew, so DNS changes are followed) and never blocks the calling thread: the
//! system resolver runs `getaddrinfo` on tokio's blocking pool.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use super::{join_indexed, probe::ProbeFailure};
use crate::local_error;

/// The future returned by [`Resolver::resolve`].
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns a host name into the addresses to probe. Every address of the answer is its own
/// endpoint; the health checker sorts and deduplicates them and bounds the call by its timeout.
pub trait Resolver: Send + Sync + 'static {
    /// All addresses of `host` for `port`. An empty answer counts as a failed resolution.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The operating system's resolver (`getaddrinfo` through [`tokio::net::lookup_host`]); IP
/// literals, bracketed or not, resolve to themselves without any lookup.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            if let Some(ip) = ip_literal(host) {
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            Ok(tokio::net::lookup_host((host, port)).await?.collect())
        })
    }
}

/// The address `host` spells, if it is an IPv4 or (optionally bracketed) IPv6 literal.
fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// What resolving one target gave: its endpoints, sorted and deduplicated (never empty), or why
/// there are none this round.
pub(crate) type Answer = Result<Vec<SocketAddr>, ProbeFailure>;

/// Resolves `host` under `timeout`. An error of this host (no descriptor or memory for the
/// lookup) is [`ProbeFailure::Local`]: inconclusive, the target's endpoints stay as they are.
pub(crate) async fn resolve_bounded(
    resolver: &dyn Resolver,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Answer {
    let mut addrs = match tokio::time::timeout(timeout, resolver.resolve(host, port)).await {
        Err(_elapsed) => return Err(ProbeFailure::ResolveFailed("timeout".into())),
        // `getaddrinfo` fails with `EAI_SYSTEM` and the errno when its own socket or memory
        // runs out: this host's fault, not the name's. (A resolver that maps that to
        // `EAI_AGAIN` instead cannot be told apart from a DNS outage.)
        Ok(Err(error)) if local_error::is_local_io(&error) => {
            return Err(ProbeFailure::Local(error.to_string()))
        }
        Ok(Err(error)) => return Err(ProbeFailure::ResolveFailed(error.to_string())),
        Ok(Ok(addrs)) => addrs,
    };
    addrs.sort_unstable();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(ProbeFailure::NoAddresses);
    }
    Ok(addrs)
}

/// Resolves every `(host, port)` concurrently, each under `timeout`; answers in input order.
pub(crate) async fn resolve_all(
    resolver: &Arc<dyn Resolver>,
    names: Vec<(String, u16)>,
    timeout: Duration,
) -> Vec<Answer> {
    let jobs = names.into_iter().map(|(host, port)| {
        let resolver = Arc::clone(resolver);
        async move { resolve_bounded(resolver.as_ref(), &host, port, timeout).await }
    });
    join_indexed(jobs, || {
        Err(ProbeFailure::ResolveFailed("resolver task failed".into()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn ip_literals_are_recognised() {
        assert_eq!(ip_literal("10.0.0.1"), Some(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(ip_literal("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_literal("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_literal("localhost"), None);
        assert_eq!(ip_literal("10.0.0.1.nip.io"), None);
    }

    #[tokio::test]
    async fn system_resolver_short_circuits_literals() {
        let addrs = SystemResolver.resolve("[::1]", 8080).await.unwrap();
        assert_eq!(addrs, vec!["[::1]:8080".parse().unwrap()]);
    }

    struct Fixed(Vec<SocketAddr>);

    impl Resolver for Fixed {
        fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
            Box::pin(async move { Ok(self.0.clone()) })
        }
    }

    struct Hangs;

    impl Resolver for Hangs {
        fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn answers_are_sorted_deduplicated_and_never_empty() {
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let timeout = Duration::from_secs(1);
        let answer = resolve_bounded(&Fixed(vec![b, a, b]), "x", 80, timeout).await;
        assert_eq!(answer, Ok(vec![a, b]));
        let empty = resolve_bounded(&Fixed(vec![]), "x", 80, timeout).await;
        assert_eq!(empty, Err(ProbeFailure::NoAddresses));
    }

    struct Fails(i32);

    impl Resolver for Fails {
        fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
            let errno = self.0;
            Box::pin(async move { Err(io::Error::from_raw_os_error(errno)) })
        }
    }

    #[tokio::test]
    async fn a_lookup_without_descriptors_is_local_and_a_refused_one_is_not() {
        let timeout = Duration::from_secs(1);
        let emfile = resolve_bounded(&Fails(libc::EMFILE), "x", 80, timeout).await;
        let failure = emfile.unwrap_err();
        assert!(failure.is_local(), "{failure:?}");
        assert!(
            failure.to_string().contains("Too many open files"),
            "{failure}"
        );
        let refused = resolve_bounded(&Fails(libc::ECONNREFUSED), "x", 80, timeout).await;
        assert!(
            matches!(refused, Err(ProbeFailure::ResolveFailed(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_hanging_resolver_times_out() {
        let answer = resolve_bounded(&Hangs, "x", 80, Duration::from_millis(20)).await;
        assert_eq!(answer.unwrap_err().to_string(), "resolve failed: timeout");
    }
}
