//! `host:port` target addresses: split and checked, never resolved (`--check` must work
//! without DNS); read from and written to the file as a `[[targets]]` entry's `address`
//! (`#[serde(with = "address")]`).

use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserializer, Serializer};

use super::{
    de::{read, string},
    TargetAddress,
};

/// The hint of every message about an address.
pub(super) const ADDRESS_EXPECTED: &str = "host:port such as \"http-api-1:8001\" or \"[::1]:8001\"";

/// An `address` key; `Option` because the file may lack it, which validation reports.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TargetAddress>, D::Error> {
    read(deserializer, |found| {
        let text = string(found, ADDRESS_EXPECTED)?;
        parse_target_address(&text)
            .map(Some)
            .map_err(|problem| format!("{text:?} {problem}; expected {ADDRESS_EXPECTED}"))
    })
}

/// As [`TargetAddress`]'s `Display`, which [`parse_target_address`] reads back.
pub(super) fn serialize<S: Serializer>(
    address: &Option<TargetAddress>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match address {
        Some(address) => serializer.collect_str(address),
        None => serializer.serialize_none(),
    }
}

/// Splits `host:port` (or `[ipv6]:port`) without resolving anything; the error completes the
/// sentence "`"<text>"` ...".
pub(crate) fn parse_target_address(text: &str) -> Result<TargetAddress, String> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".into());
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("has a '[' without a closing ']'")?;
        if host.is_empty() {
            return Err("has an empty host".into());
        }
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "has {host:?} in brackets, which is not an IPv6 address"
            ));
        }
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => return Err("has no port".into()),
            None => return Err(format!("has {after:?} after ']' instead of :port")),
        };
        (host, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or("has no port")?;
        check_host(host)?;
        (host, port)
    };
    Ok(TargetAddress {
        host: host.to_owned(),
        port: parse_port(port)?,
    })
}

/// A host name or IPv4 literal, as it may appear before `:port` without brackets.
pub(super) fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("has an empty host".into());
    }
    if host.contains(':') {
        return Err("has an IPv6 address without brackets (write \"[::1]:8001\")".into());
    }
    match host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        Some(c @ ('[' | ']')) => Err(format!("has a stray {c:?} (brackets are only for IPv6)")),
        Some(c) => Err(format!(
            "has {c:?} in its host, which is not a host name character"
        )),
        None => Ok(()),
    }
}

pub(super) fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err("has no port".into());
    }
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("has port {port:?}, which is not a number"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err("has port 0, which cannot be connected to".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("has port {port}, which is above 65535")),
    }
}

/// Two addresses naming the same endpoint map to the same key: host names compare
/// case-insensitively, IP literals by value.
pub(super) fn same_target_key(address: &TargetAddress) -> (String, u16) {
    let host = match address.host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => address.host.to_ascii_lowercase(),
    };
    (host, address.port)
}
