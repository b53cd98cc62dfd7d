//! Checks for single values. Each returns an error naming its key, what was found and what is
//! expected.

use std::{net::SocketAddr, time::Duration};

use toml::Value;

use super::{
    address::parse_target_address,
    defaults::{relay_name, RELAY_MODES},
    file::Invalid,
    IoBackend, RelayMode, Strategy, TargetAddress,
};

pub(super) const ADDRESS_EXPECTED: &str = "host:port such as \"http-api-1:8001\" or \"[::1]:8001\"";
pub(super) const ENDPOINT_EXPECTED: &str = "an HTTP path such as \"/healthz\"";
pub(super) const DURATION_EXPECTED: &str =
    "a duration above zero and at most one day, such as \"250ms\", \"5s\" or \"1m\"";
/// The longest accepted duration: far beyond any useful probe interval, far below the point
/// where timer arithmetic overflows.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// A short description of a value for messages, e.g. `the integer 5`.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(x) => format!("the float {x}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the date-time {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

pub(super) fn string<'a>(key: &str, value: &'a Value, expected: &str) -> Result<&'a str, Invalid> {
    value.as_str().ok_or_else(|| {
        Invalid::new(
            key,
            format!("{} is not a string; expected {expected}", describe(value)),
        )
    })
}

pub(super) fn boolean(key: &str, value: &Value) -> Result<bool, Invalid> {
    value.as_bool().ok_or_else(|| {
        Invalid::new(
            key,
            format!(
                "{} is not a boolean; expected true or false",
                describe(value)
            ),
        )
    })
}

/// An integer of at least `min` that fits `T`.
pub(super) fn integer<T: TryFrom<i64>>(
    key: &str,
    value: &Value,
    min: i64,
    expected: &str,
) -> Result<T, Invalid> {
    let n = value.as_integer().ok_or_else(|| {
        Invalid::new(
            key,
            format!("{} is not an integer; expected {expected}", describe(value)),
        )
    })?;
    let problem = if n < min { "too small" } else { "too large" };
    (n >= min)
        .then(|| T::try_from(n).ok())
        .flatten()
        .ok_or_else(|| Invalid::new(key, format!("{n} is {problem}; expected {expected}")))
}

pub(super) fn listen(value: &Value) -> Result<SocketAddr, Invalid> {
    const EXPECTED: &str =
        "an IP address and port such as \"0.0.0.0:80\" or \"[::]:80\" (names are not resolved)";
    let text = string("listen", value, EXPECTED)?;
    text.parse().map_err(|_| {
        Invalid::new(
            "listen",
            format!("{text:?} is not an IP address and port; expected {EXPECTED}"),
        )
    })
}

/// An IP address and port for `key` (no name resolution).
pub(super) fn socket_addr(key: &str, value: &Value) -> Result<SocketAddr, Invalid> {
    const EXPECTED: &str = "an IP address and port such as \"127.0.0.1:9100\" or \"[::1]:9100\" \
                            (names are not resolved)";
    let text = string(key, value, EXPECTED)?;
    text.parse().map_err(|_| {
        Invalid::new(
            key,
            format!("{text:?} is not an IP address and port; expected {EXPECTED}"),
        )
    })
}

pub(super) fn relay(value: &Value) -> Result<RelayMode, Invalid> {
    let names = RELAY_MODES.map(|mode| format!("{:?}", relay_name(mode)));
    let expected = format!("one of {}", names.join(", "));
    let text = string("relay", value, &expected)?;
    RELAY_MODES
        .into_iter()
        .find(|mode| relay_name(*mode) == text)
        .ok_or_else(|| {
            Invalid::new(
                "relay",
                format!("{text:?} is not a relay mode; expected {expected}"),
            )
        })
}

pub(super) fn io_backend(value: &Value) -> Result<IoBackend, Invalid> {
    let names = IoBackend::ALL.map(|b| format!("{:?}", b.as_str()));
    let expected = format!("one of {}", names.join(", "));
    let text = string("io_backend", value, &expected)?;
    IoBackend::from_name(text).ok_or_else(|| {
        Invalid::new(
            "io_backend",
            format!("{text:?} is not an I/O backend; expected {expected}"),
        )
    })
}

pub(super) fn duration(key: &str, value: &Value) -> Result<Duration, Invalid> {
    let text = string(key, value, DURATION_EXPECTED)?;
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(Invalid::new(
            key,
            format!("{text:?} is zero; expected {DURATION_EXPECTED}"),
        )),
        Ok(d) if d > MAX_DURATION => Err(Invalid::new(
            key,
            format!("{text:?} is longer than one day; expected {DURATION_EXPECTED}"),
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(Invalid::new(
            key,
            format!("{text:?} is not a duration ({e}); expected {DURATION_EXPECTED}"),
        )),
    }
}

pub(super) fn health_check_endpoint(key: &str, value: &Value) -> Result<String, Invalid> {
    let text = string(key, value, ENDPOINT_EXPECTED)?;
    let problem = if !text.starts_with('/') {
        "does not start with '/'"
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains whitespace or control characters"
    } else if !text.chars().all(|c| c.is_ascii_graphic()) {
        "contains non-ASCII characters (percent-encode them)"
    } else {
        return Ok(text.to_owned());
    };
    Err(Invalid::new(
        key,
        format!("{text:?} {problem}; expected {ENDPOINT_EXPECTED}"),
    ))
}

pub(super) fn target_address(key: &str, value: &Value) -> Result<TargetAddress, Invalid> {
    let text = string(key, value, ADDRESS_EXPECTED)?;
    parse_target_address(text).map_err(|problem| {
        Invalid::new(
            key,
            format!("{text:?} {problem}; expected {ADDRESS_EXPECTED}"),
        )
    })
}

pub(super) fn balance(value: &Value) -> Result<Strategy, Invalid> {
    let names: Vec<String> = Strategy::ALL
        .iter()
        .map(|s| format!("{:?}", s.as_str()))
        .collect();
    let expected = format!("one of {}", names.join(", "));
    let text = string("balance", value, &expected)?;
    text.parse().map_err(|_| {
        Invalid::new(
            "balance",
            format!("{text:?} is not a balancing strategy; expected {expected}"),
        )
    })
}

/// The largest replay buffer: a replay is for a request's first bytes, not for a stream.
pub(super) const MAX_REPLAY_BUFFER: i64 = 1024 * 1024;

/// An integer from `min` to `max`.
pub(super) fn integer_at_most<T: TryFrom<i64>>(
    key: &str,
    value: &Value,
    min: i64,
    max: i64,
    expected: &str,
) -> Result<T, Invalid> {
    let n: i64 = integer(key, value, min, expected)?;
    if n > max {
        return Err(Invalid::new(
            key,
            format!("{n} is too large; expected {expected}"),
        ));
    }
    T::try_from(n).map_err(|_| Invalid::new(key, format!("{n} is too large; expected {expected}")))
}
