//! The keys about this host's own sockets: `source`, the local addresses connections to
//! backends are bound to (so that more than one ephemeral port range serves each backend), and
//! `defer_accept`, the listeners' `TCP_DEFER_ACCEPT`.
//!
//! Owns these keys' spellings, checks and the one warning about them (a `source` family that no
//! target uses). `source` is a top-level key today and is read by [`addresses`] alone, so that it
//! can move into a pool's table unchanged. Like the rest of `config`, never resolves names,
//! never does I/O (whether an address is this host's is checked at start, by the server) and
//! never panics on input.

use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Deserializer, Serializer};

use super::{
    de::{self, read, string},
    validate::Invalid,
    Config,
};

const SOURCE_EXPECTED: &str =
    "an array of IP addresses of this host, such as [\"10.0.0.2\", \"10.0.0.3\"] (no port, no \
     name), or [] to let the kernel choose";
const ADDRESS_EXPECTED: &str =
    "an IP address of this host such as \"10.0.0.2\" or \"2001:db8::2\" (no port, no name)";

/// `source`: every element an IP address a socket can be bound to; an empty array is off.
/// Duplicates are [`check_sources`]'s to find (they need the whole list).
pub(super) fn addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    let entries: Vec<SourceIp> = de::array(d, |found| found.is_not("an array", SOURCE_EXPECTED))?;
    Ok(entries.into_iter().map(|SourceIp(ip)| ip).collect())
}

/// One element of `source`.
struct SourceIp(IpAddr);

impl<'de> Deserialize<'de> for SourceIp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(d, |found| {
            let text = string(found, ADDRESS_EXPECTED)?;
            source_ip(&text)
                .map(SourceIp)
                .map_err(|problem| format!("{text:?} {problem}; expected {ADDRESS_EXPECTED}"))
        })
    }
}

/// An address a backend socket can be bound to; the error completes "`"<text>"` ...".
fn source_ip(text: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = match text.parse() {
        Ok(ip) => ip,
        Err(_) if text.parse::<std::net::SocketAddr>().is_ok() => {
            return Err("has a port (the kernel picks the port per connection)".into())
        }
        Err(_) => return Err("is not an IP address".into()),
    };
    let problem = match ip {
        _ if ip.is_unspecified() => "is the unspecified address, which binds nothing",
        _ if ip.is_multicast() => "is a multicast address",
        IpAddr::V4(v4) if v4.is_broadcast() => "is the broadcast address",
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            "is an IPv4-mapped IPv6 address (write the IPv4 address itself)"
        }
        _ => return Ok(ip),
    };
    Err(problem.into())
}

/// The rule between `source` entries: every address once.
pub(super) fn check_sources(source: &[IpAddr]) -> Result<(), Invalid> {
    for (i, ip) in source.iter().enumerate() {
        if let Some(first) = source[..i].iter().position(|other| other == ip) {
            return Err(Invalid::new(
                format!("source[{i}]"),
                format!(
                    "\"{ip}\" is listed twice (also source[{first}]); expected every address once"
                ),
            ));
        }
    }
    Ok(())
}

const DEFER_EXPECTED: &str = "\"off\", or a whole number of seconds from \"1s\" to \"1m\" that a \
                              client may take to send its first byte, such as \"5s\"";
/// The longest `defer_accept`: the kernel's SYN-ACK retransmissions, which the value is rounded
/// up to, have long reached their two-minute cap by then.
const MAX_DEFER: Duration = Duration::from_secs(60);

/// `defer_accept`: `"off"` (`None`) or whole seconds from one second to [`MAX_DEFER`].
pub(super) mod defer {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    use super::{read, string, DEFER_EXPECTED, MAX_DEFER};

    pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        read(d, |found| {
            let text = string(found, DEFER_EXPECTED)?;
            parse(&text).map_err(|problem| format!("{text:?} {problem}; expected {DEFER_EXPECTED}"))
        })
    }

    fn parse(text: &str) -> Result<Option<Duration>, String> {
        if text == "off" {
            return Ok(None);
        }
        let d = humantime::parse_duration(text).map_err(|e| format!("is not a duration ({e})"))?;
        if d.subsec_nanos() != 0 {
            Err("is not a whole number of seconds (the kernel counts in seconds)".into())
        } else if d.is_zero() {
            Err("is zero (write \"off\" to turn it off)".into())
        } else if d > MAX_DEFER {
            Err("is longer than a minute".into())
        } else {
            Ok(Some(d))
        }
    }

    /// `"off"`, or as `humantime` prints it, which [`deserialize`] reads back.
    pub(in super::super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_str("off"),
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
        }
    }
}

/// `source` written back as an array of strings.
pub(super) fn serialize_addresses<S: Serializer>(
    source: &[IpAddr],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(source.iter().map(ToString::to_string))
}

/// The warning about `source` (see [`Config::warnings`]): a family that no target of any pool
/// can use, known only when every target is an IP literal (a name may resolve to either
/// family).
pub(super) fn source_warnings(config: &Config) -> Vec<String> {
    let source = &config.startup.source;
    let mut families = Vec::new();
    let literals: Option<Vec<IpAddr>> = config
        .pools()
        .iter()
        .flat_map(|pool| &pool.targets)
        .map(|t| t.address.host.parse::<IpAddr>().ok())
        .collect();
    let Some(literals) = literals else {
        return families;
    };
    for (name, v4) in [("IPv4", true), ("IPv6", false)] {
        let unused: Vec<String> = source
            .iter()
            .filter(|ip| ip.is_ipv4() == v4)
            .map(ToString::to_string)
            .collect();
        if !unused.is_empty() && !literals.iter().any(|ip| ip.is_ipv4() == v4) {
            families.push(format!(
                "source: no target is an {name} address, so {} is never used (a backend \
                 connection is bound to a source address of its own family)",
                unused.join(", ")
            ));
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, path::Path, time::Duration};

    use crate::config::{Config, ConfigError};

    const TARGET: &str = "[[targets]]\naddress = \"10.0.0.5:80\"\nhealth_check = \"tcp\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"))
    }

    fn rejected(text: &str, key: &str, needles: &[&str]) {
        match parse(text) {
            Err(ConfigError::Invalid {
                key: got, message, ..
            }) => {
                assert_eq!(got, key, "{text:?}: {message}");
                for needle in needles.iter().chain(&["expected"]) {
                    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
                }
            }
            other => panic!("expected an error at {key} for {text:?}, got {other:?}"),
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn source_addresses_of_both_families_are_read_in_order_and_printed_back() {
        let text = format!("source = [\"10.0.0.2\", \"2001:db8::2\", \"10.0.0.3\"]\n{TARGET}");
        let config = parse(&text).unwrap();
        let want = ips(&["10.0.0.2", "2001:db8::2", "10.0.0.3"]);
        assert_eq!(config.startup.source, want);
        let shown = config.to_string();
        assert!(
            shown.contains("source = [\"10.0.0.2\", \"2001:db8::2\", \"10.0.0.3\"]"),
            "{shown}"
        );
        assert_eq!(parse(&shown).unwrap(), config);
    }

    #[test]
    fn source_is_off_by_default_and_an_empty_array_is_off() {
        let default = parse(TARGET).unwrap();
        assert!(default.startup.source.is_empty());
        assert!(default.to_string().lines().any(|l| l == "source = []"));
        let empty = parse(&format!("source = []\n{TARGET}")).unwrap();
        assert_eq!(empty, default);
    }

    #[test]
    fn bad_source_addresses_name_their_index() {
        for (value, problem) in [
            ("\"10.0.0.300\"", "is not an IP address"),
            ("\"backend-host\"", "is not an IP address"),
            ("\"10.0.0.2:5000\"", "has a port"),
            ("\"[2001:db8::2]:0\"", "has a port"),
            ("\"0.0.0.0\"", "unspecified"),
            ("\"::\"", "unspecified"),
            ("\"224.0.0.1\"", "multicast"),
            ("\"ff02::1\"", "multicast"),
            ("\"255.255.255.255\"", "broadcast"),
            ("\"::ffff:10.0.0.2\"", "IPv4-mapped"),
            ("\"\"", "is not an IP address"),
            ("2", "integer 2"),
        ] {
            let text = format!("source = [\"10.0.0.2\", {value}]\n{TARGET}");
            rejected(&text, "source[1]", &[problem, "no port, no name"]);
        }
        rejected(
            &format!("source = \"10.0.0.2\"\n{TARGET}"),
            "source",
            &["string \"10.0.0.2\" is not an array", "[\"10.0.0.2\""],
        );
        rejected(
            &format!("source = [\"10.0.0.2\", \"10.0.0.3\", \"10.0.0.2\"]\n{TARGET}"),
            "source[2]",
            &["listed twice", "source[0]"],
        );
        let same_v6 = format!("source = [\"2001:db8::2\", \"2001:db8:0::2\"]\n{TARGET}");
        rejected(&same_v6, "source[1]", &["listed twice"]);
    }

    #[test]
    fn a_source_family_no_target_uses_is_a_warning() {
        let only_v6 = parse(&format!("source = [\"2001:db8::2\"]\n{TARGET}")).unwrap();
        let warnings = only_v6.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("no target is an IPv6 address"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("2001:db8::2 is never used"),
            "{warnings:?}"
        );
        let both = parse(&format!(
            "source = [\"10.0.0.2\", \"2001:db8::2\"]\n{TARGET}\
             [[targets]]\naddress = \"[2001:db8::9]:80\"\nhealth_check = \"tcp\"\n"
        ))
        .unwrap();
        assert!(both.warnings().is_empty(), "{:?}", both.warnings());
        // A name may resolve to either family: nothing to say.
        let named = parse(
            "source = [\"2001:db8::2\"]\n[[targets]]\naddress = \"db:5432\"\n\
             health_check = \"tcp\"\n",
        )
        .unwrap();
        assert!(named.warnings().is_empty());
        assert!(parse(TARGET).unwrap().warnings().is_empty());
    }

    #[test]
    fn defer_accept_is_off_or_whole_seconds() {
        let default = parse(TARGET).unwrap();
        assert_eq!(default.startup.defer_accept, None);
        assert!(default
            .to_string()
            .lines()
            .any(|l| l == "defer_accept = \"off\""));
        for (value, want) in [
            ("\"5s\"", 5),
            ("\"1s\"", 1),
            ("\"1m\"", 60),
            ("\"2s 0ms\"", 2),
        ] {
            let config = parse(&format!("defer_accept = {value}\n{TARGET}")).unwrap();
            assert_eq!(config.startup.defer_accept, Some(Duration::from_secs(want)));
            assert_eq!(parse(&config.to_string()).unwrap(), config);
        }
        assert_eq!(
            parse(&format!("defer_accept = \"off\"\n{TARGET}")).unwrap(),
            default
        );
    }

    #[test]
    fn bad_defer_accept_values_are_explained() {
        for (value, problem) in [
            ("\"250ms\"", "whole number of seconds"),
            ("\"1500ms\"", "whole number of seconds"),
            ("\"0s\"", "is zero"),
            ("\"61s\"", "longer than a minute"),
            ("\"soon\"", "not a duration"),
            ("\"on\"", "not a duration"),
            ("true", "boolean true is not a string"),
            ("5", "integer 5"),
        ] {
            let text = format!("defer_accept = {value}\n{TARGET}");
            rejected(&text, "defer_accept", &[problem, "\"off\"", "\"5s\""]);
        }
    }
}
