//! Properties of target-address parsing (`config::address::parse_target_address`): the
//! `address` of every `[[targets]]` entry, `host:port` or `[ipv6]:port`.
//!
//! Owns the checks that a parsed address is one the health checker can resolve and connect to
//! (a host, a port above 0, brackets only around IPv6), that its `Display` form parses back to
//! it, that what the standard library writes for a socket address is accepted as the same
//! address, and that a refusal reads as one line of text. Never resolves a name.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::config::{address::parse_target_address, TargetAddress};

/// Fuzz entry point: `data` as the text of an `address` value (invalid UTF-8 replaced; TOML
/// strings are UTF-8).
pub fn target_address(data: &[u8]) {
    target_address_text(&String::from_utf8_lossy(data));
}

/// Parses `text` as a target address and checks the answer; where the standard library reads
/// `text` as a socket address without a scope id, the answer must be that address.
pub fn target_address_text(text: &str) {
    let parsed = parse_target_address(text);
    match &parsed {
        Ok(address) => check_address(text, address),
        Err(problem) => {
            assert!(!problem.is_empty(), "empty refusal of {text:?}");
            assert!(
                !problem.chars().any(char::is_control),
                "refusal of {text:?} spans lines: {problem:?}"
            );
        }
    }
    if let Ok(std) = text.parse::<SocketAddr>() {
        let scoped = matches!(std, SocketAddr::V6(v6) if v6.scope_id() != 0);
        if !scoped {
            same_as_std(text, std, &parsed);
        }
    }
}

/// A parsed address is connectable and survives `Display`.
fn check_address(text: &str, address: &TargetAddress) {
    let host = &address.host;
    assert_ne!(address.port, 0, "port 0 from {text:?}");
    assert!(!host.is_empty(), "empty host from {text:?}");
    assert!(
        !host.chars().any(|c| c.is_whitespace() || c.is_control()),
        "host {host:?} from {text:?}"
    );
    if host.contains(':') {
        assert!(host.parse::<Ipv6Addr>().is_ok(), "bare host {host:?}");
    } else {
        assert!(
            host.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')),
            "host {host:?} from {text:?}"
        );
    }
    let shown = address.to_string();
    assert_eq!(
        parse_target_address(&shown).as_ref(),
        Ok(address),
        "{text:?} shows as {shown:?}"
    );
}

/// `text`, which the standard library reads as `std`, is the same address to ringlb (refused
/// only for port 0, which cannot be connected to).
fn same_as_std(text: &str, std: SocketAddr, parsed: &Result<TargetAddress, String>) {
    match parsed {
        Ok(address) => {
            assert_eq!(address.host.parse::<IpAddr>(), Ok(std.ip()), "{text:?}");
            assert_eq!(address.port, std.port(), "{text:?}");
        }
        Err(problem) => assert_eq!(std.port(), 0, "{text:?} refused: {problem}"),
    }
}

/// What the standard library writes for `addr` (without flow info and scope id, which target
/// addresses cannot carry) parses to its IP and port, unless the port is 0.
pub fn socket_addr_round_trip(addr: SocketAddr) {
    let addr = SocketAddr::new(addr.ip(), addr.port());
    let text = addr.to_string();
    target_address_text(&text);
    let parsed = parse_target_address(&text);
    if addr.port() == 0 {
        assert!(parsed.is_err(), "port 0 accepted in {text:?}");
    } else {
        let expected = TargetAddress {
            host: addr.ip().to_string(),
            port: addr.port(),
        };
        assert_eq!(parsed, Ok(expected), "{text:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_addresses_pass() {
        for text in [
            "http-api-1:8001",
            "[::1]:8001",
            "10.0.0.5:5432",
            "[2001:db8::6]:5432",
        ] {
            assert!(parse_target_address(text).is_ok(), "{text}");
            target_address_text(text);
        }
        for text in [
            "", ":", "[::1]", "::1:80", "a b:1", "h:0", "h:65536", "[x]:1", "é:1",
        ] {
            assert!(parse_target_address(text).is_err(), "{text}");
            target_address(text.as_bytes());
        }
        socket_addr_round_trip("[::ffff:1.2.3.4]:0".parse().unwrap());
        socket_addr_round_trip("192.0.2.1:443".parse().unwrap());
    }
}
