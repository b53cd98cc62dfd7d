//! Configuration: the TOML file format, its defaults and its validation.
//!
//! Owns turning a file into a validated [`Config`]; everything downstream trusts it.
//! Never resolves hostnames (`--check` must work without DNS) and never panics on input.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{de::DeserializeOwned, Deserialize};
use toml::{Table, Value};

/// A validated configuration, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from (for messages and reload).
    pub source: PathBuf,
    /// Address every worker's `SO_REUSEPORT` listener binds to.
    pub listen: SocketAddr,
    /// Number of worker threads; 0 means one per CPU core (see [`Config::worker_count`]).
    pub workers: usize,
    /// Pin worker `i` to CPU core `i % cores`.
    pub pin_workers: bool,
    /// How bytes are moved between client and backend.
    pub relay: RelayMode,
    /// Active health-check settings, shared by all targets.
    pub health_check: HealthCheck,
    /// The backends, in configuration order (never empty once validated).
    pub targets: Vec<Target>,
}

/// Health-check settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Time between the starts of two probe rounds.
    pub interval: Duration,
    /// Deadline of one probe (resolve, connect, request and response).
    pub timeout: Duration,
    /// Consecutive successes for an unhealthy target to come back.
    pub rise: u32,
    /// Consecutive failures for a healthy target to leave.
    pub fall: u32,
}

/// One configured backend target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host (name or IP literal) and port.
    pub address: TargetAddress,
    /// Path requested by the HTTP health check, e.g. `/healthz`.
    pub health_check_endpoint: String,
}

/// A `host:port` pair; the host may be a DNS name, resolved at health-check time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetAddress {
    /// DNS name or IP literal (without brackets for IPv6).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The relay strategy, see [`crate::relay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    /// io_uring readiness, then `IORING_OP_SPLICE` through a pipe.
    Splice,
    /// io_uring readiness, then non-blocking `splice(2)` from the worker thread.
    SpliceInline,
    /// Multishot recv into a provided buffer ring, then send.
    Copy,
}

impl Config {
    /// The number of worker threads to start: `workers`, or one per core when it is 0.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// Why a configuration file was rejected. Every message names the file and, where there is one,
/// the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid for this schema.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key, dotted (`targets[1].address`), or `<file>` for the whole document.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is only used in messages and kept as
    /// [`Config::source`].
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Config, ConfigError> {
        parse_document(text)
            .and_then(|table| validate(table, path))
            .map_err(|invalid| invalid.at(path))
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults: the only place they live. `Display` spells every one of them out.

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 80))
}

fn default_workers() -> usize {
    0
}

fn default_pin_workers() -> bool {
    false
}

/// The relay strategy used when the file names none; revisit after benchmarking.
fn default_relay() -> RelayMode {
    RelayMode::SpliceInline
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_rise() -> u32 {
    1
}

fn default_fall() -> u32 {
    1
}

fn default_health_check() -> HealthCheck {
    HealthCheck {
        interval: default_interval(),
        timeout: default_timeout(),
        rise: default_rise(),
        fall: default_fall(),
    }
}

/// Every relay mode, in the order messages list them.
const RELAY_MODES: [RelayMode; 3] = [RelayMode::Splice, RelayMode::SpliceInline, RelayMode::Copy];

/// The spelling of a relay mode in the file.
fn relay_name(mode: RelayMode) -> &'static str {
    match mode {
        RelayMode::Splice => "splice",
        RelayMode::SpliceInline => "splice-inline",
        RelayMode::Copy => "copy",
    }
}

// ---------------------------------------------------------------------------------------------
// The file format. Every field is a raw TOML value, so the derived `Deserialize` can only fail on
// an unknown key (`deny_unknown_fields`); each value is then checked below, where its dotted key
// is known. Nested tables stay raw too and are read the same way under their own key.

/// The top-level table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Value>,
    workers: Option<Value>,
    pin_workers: Option<Value>,
    relay: Option<Value>,
    health_check: Option<Value>,
    targets: Option<Value>,
}

/// The `[health_check]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHealthCheck {
    interval: Option<Value>,
    timeout: Option<Value>,
    rise: Option<Value>,
    fall: Option<Value>,
}

/// One `[[targets]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    address: Option<Value>,
    health_check_endpoint: Option<Value>,
}

/// A rejected value before the file path is attached.
#[derive(Debug)]
struct Invalid {
    key: String,
    message: String,
}

impl Invalid {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    fn at(self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_owned(),
            key: self.key,
            message: self.message,
        }
    }
}

/// The key used for problems with the document as a whole (syntax, top-level keys).
const FILE_KEY: &str = "<file>";

/// TOML syntax: the only step that sees raw text, so the only one reporting line and column.
fn parse_document(text: &str) -> Result<Table, Invalid> {
    text.parse::<Table>().map_err(|e| {
        let position = e.span().map_or_else(String::new, |span| {
            let end = (0..=span.start.min(text.len()))
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let before = &text[..end];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        });
        Invalid::new(
            FILE_KEY,
            format!(
                "invalid TOML{position}: {}; expected a TOML document like config/example.toml",
                e.message().trim_end()
            ),
        )
    })
}

/// Checks every key once and builds the runtime configuration.
fn validate(table: Table, source: &Path) -> Result<Config, Invalid> {
    let file: FileConfig = read_table(FILE_KEY, Value::Table(table), "a TOML document")?;
    Ok(Config {
        source: source.to_owned(),
        listen: file
            .listen
            .map_or_else(|| Ok(default_listen()), |v| listen(&v))?,
        workers: file.workers.map_or_else(
            || Ok(default_workers()),
            |v| {
                integer(
                    "workers",
                    &v,
                    0,
                    "a number of threads, or 0 for one per CPU core",
                )
            },
        )?,
        pin_workers: file
            .pin_workers
            .map_or_else(|| Ok(default_pin_workers()), |v| boolean("pin_workers", &v))?,
        relay: file
            .relay
            .map_or_else(|| Ok(default_relay()), |v| relay(&v))?,
        health_check: file
            .health_check
            .map_or_else(|| Ok(default_health_check()), health_check)?,
        targets: targets(file.targets)?,
    })
}

/// Reads one table into its raw struct; `key` names the table in messages, `expected` says what
/// it should look like.
fn read_table<T: DeserializeOwned>(key: &str, value: Value, expected: &str) -> Result<T, Invalid> {
    if !value.is_table() {
        return Err(Invalid::new(
            key,
            format!("{} is not a table; expected {expected}", describe(&value)),
        ));
    }
    // With raw fields the only possible failure is an unknown key; serde's message names it
    // and lists the accepted ones.
    value
        .try_into()
        .map_err(|e: toml::de::Error| Invalid::new(key, e.message().trim_end()))
}

fn health_check(value: Value) -> Result<HealthCheck, Invalid> {
    let file: FileHealthCheck = read_table("health_check", value, "a [health_check] table")?;
    let count = |key: &str, value: Option<Value>, default: fn() -> u32| {
        value.map_or_else(
            || Ok(default()),
            |v| integer(key, &v, 1, "a number of consecutive probes, at least 1"),
        )
    };
    Ok(HealthCheck {
        interval: file.interval.map_or_else(
            || Ok(default_interval()),
            |v| duration("health_check.interval", &v),
        )?,
        timeout: file.timeout.map_or_else(
            || Ok(default_timeout()),
            |v| duration("health_check.timeout", &v),
        )?,
        rise: count("health_check.rise", file.rise, default_rise)?,
        fall: count("health_check.fall", file.fall, default_fall)?,
    })
}

const TARGETS_EXPECTED: &str =
    "expected at least one [[targets]] entry with address and health_check_endpoint";
const TARGET_EXPECTED: &str = "a [[targets]] table with address and health_check_endpoint";

fn targets(value: Option<Value>) -> Result<Vec<Target>, Invalid> {
    let entries = match value {
        None => {
            return Err(Invalid::new(
                "targets",
                format!("missing; {TARGETS_EXPECTED}"),
            ))
        }
        Some(Value::Array(entries)) => entries,
        Some(Value::Table(_)) => {
            return Err(Invalid::new(
                "targets",
                format!("is a single [targets] table; {TARGETS_EXPECTED}, with double brackets"),
            ))
        }
        Some(other) => {
            return Err(Invalid::new(
                "targets",
                format!(
                    "{} is not an array of tables; {TARGETS_EXPECTED}",
                    describe(&other)
                ),
            ))
        }
    };
    if entries.is_empty() {
        return Err(Invalid::new(
            "targets",
            format!("is empty; {TARGETS_EXPECTED}"),
        ));
    }
    let mut seen: HashMap<(String, u16), usize> = HashMap::new();
    let mut targets: Vec<Target> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let target = target(i, entry)?;
        if let Some(&first) = seen.get(&same_target_key(&target.address)) {
            return Err(Invalid::new(
                format!("targets[{i}].address"),
                format!(
                    "\"{}\" is the same target as targets[{first}] (\"{}\"); expected every \
                     target address once",
                    target.address, targets[first].address
                ),
            ));
        }
        seen.insert(same_target_key(&target.address), i);
        targets.push(target);
    }
    Ok(targets)
}

fn target(index: usize, value: Value) -> Result<Target, Invalid> {
    let table_key = format!("targets[{index}]");
    let file: FileTarget = read_table(&table_key, value, TARGET_EXPECTED)?;
    let address_key = format!("{table_key}.address");
    let endpoint_key = format!("{table_key}.health_check_endpoint");
    let address = required(&address_key, file.address, ADDRESS_EXPECTED)?;
    let endpoint = required(&endpoint_key, file.health_check_endpoint, ENDPOINT_EXPECTED)?;
    Ok(Target {
        address: target_address(&address_key, &address)?,
        health_check_endpoint: health_check_endpoint(&endpoint_key, &endpoint)?,
    })
}

fn required(key: &str, value: Option<Value>, expected: &str) -> Result<Value, Invalid> {
    value.ok_or_else(|| Invalid::new(key, format!("missing; expected {expected}")))
}

// ---------------------------------------------------------------------------------------------
// Checks for single values. Each returns an error naming its key, what was found and what is
// expected.

const ADDRESS_EXPECTED: &str = "host:port such as \"http-api-1:8001\" or \"[::1]:8001\"";
const ENDPOINT_EXPECTED: &str = "an HTTP path such as \"/healthz\"";
const DURATION_EXPECTED: &str =
    "a duration above zero and at most one day, such as \"250ms\", \"5s\" or \"1m\"";
/// The longest accepted duration: far beyond any useful probe interval, far below the point
/// where timer arithmetic overflows.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// A short description of a value for messages, e.g. `the integer 5`.
fn describe(value: &Value) -> String {
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

fn string<'a>(key: &str, value: &'a Value, expected: &str) -> Result<&'a str, Invalid> {
    value.as_str().ok_or_else(|| {
        Invalid::new(
            key,
            format!("{} is not a string; expected {expected}", describe(value)),
        )
    })
}

fn boolean(key: &str, value: &Value) -> Result<bool, Invalid> {
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
fn integer<T: TryFrom<i64>>(
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

fn listen(value: &Value) -> Result<SocketAddr, Invalid> {
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

fn relay(value: &Value) -> Result<RelayMode, Invalid> {
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

fn duration(key: &str, value: &Value) -> Result<Duration, Invalid> {
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

fn health_check_endpoint(key: &str, value: &Value) -> Result<String, Invalid> {
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

fn target_address(key: &str, value: &Value) -> Result<TargetAddress, Invalid> {
    let text = string(key, value, ADDRESS_EXPECTED)?;
    parse_target_address(text).map_err(|problem| {
        Invalid::new(
            key,
            format!("{text:?} {problem}; expected {ADDRESS_EXPECTED}"),
        )
    })
}

/// Splits `host:port` (or `[ipv6]:port`) without resolving anything; the error completes the
/// sentence "`"<text>"` ...".
fn parse_target_address(text: &str) -> Result<TargetAddress, String> {
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
fn check_host(host: &str) -> Result<(), String> {
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

fn parse_port(port: &str) -> Result<u16, String> {
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
fn same_target_key(address: &TargetAddress) -> (String, u16) {
    let host = match address.host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => address.host.to_ascii_lowercase(),
    };
    (host, address.port)
}

// ---------------------------------------------------------------------------------------------
// Display: the effective configuration as TOML that parses back to an equal `Config`.

/// A TOML basic string, escaped.
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

impl fmt::Display for Config {
    /// The effective configuration as TOML, every default spelled out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = format!("{:?}", self.source.display().to_string());
        writeln!(f, "# Effective ringlb configuration, loaded from {source}.")?;
        writeln!(f, "listen = {}", quoted(&self.listen.to_string()))?;
        writeln!(f, "workers = {}", self.workers)?;
        writeln!(f, "pin_workers = {}", self.pin_workers)?;
        writeln!(f, "relay = {}", quoted(relay_name(self.relay)))?;
        let hc = &self.health_check;
        writeln!(f, "\n[health_check]")?;
        writeln!(
            f,
            "interval = \"{}\"",
            humantime::format_duration(hc.interval)
        )?;
        writeln!(
            f,
            "timeout = \"{}\"",
            humantime::format_duration(hc.timeout)
        )?;
        writeln!(f, "rise = {}", hc.rise)?;
        writeln!(f, "fall = {}", hc.fall)?;
        for target in &self.targets {
            writeln!(f, "\n[[targets]]")?;
            writeln!(f, "address = {}", quoted(&target.address.to_string()))?;
            let endpoint = quoted(&target.health_check_endpoint);
            writeln!(f, "health_check_endpoint = {endpoint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../config/ringlb.toml");
    const EXAMPLE: &str = include_str!("../config/example.toml");
    /// A valid target, appended to documents that test other keys.
    const TARGET: &str = "[[targets]]\naddress = \"a:1\"\nhealth_check_endpoint = \"/h\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    /// The key and message of a rejected document.
    fn rejected(text: &str) -> (String, String) {
        match parse(text) {
            Err(ConfigError::Invalid { path, key, message }) => {
                assert_eq!(path, Path::new("test.toml"));
                (key, message)
            }
            other => panic!("expected Invalid for {text:?}, got {other:?}"),
        }
    }

    fn assert_rejected(text: &str, key: &str, needles: &[&str]) {
        let (got_key, message) = rejected(text);
        assert_eq!(got_key, key, "key for {text:?} ({message})");
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        assert!(
            message.contains("expected"),
            "{message:?} says nothing expected"
        );
    }

    fn target(host: &str, port: u16) -> Target {
        Target {
            address: TargetAddress {
                host: host.into(),
                port,
            },
            health_check_endpoint: "/healthz".into(),
        }
    }

    #[test]
    fn seed_loads_with_all_defaults() {
        let config = parse(SEED).unwrap();
        assert_eq!(
            config,
            Config {
                source: "test.toml".into(),
                listen: "0.0.0.0:80".parse().unwrap(),
                workers: 0,
                pin_workers: false,
                relay: RelayMode::SpliceInline,
                health_check: HealthCheck {
                    interval: Duration::from_secs(5),
                    timeout: Duration::from_secs(1),
                    rise: 1,
                    fall: 1,
                },
                targets: vec![target("http-api-1", 8001), target("http-api-2", 8001)],
            }
        );
    }

    #[test]
    fn example_spells_out_the_defaults() {
        assert_eq!(parse(EXAMPLE).unwrap(), parse(SEED).unwrap());
    }

    #[test]
    fn every_key_is_read() {
        let text = format!(
            "listen = \"[::]:8080\"\nworkers = 4\npin_workers = true\nrelay = \"copy\"\n\
             [health_check]\ninterval = \"250ms\"\ntimeout = \"1m 30s\"\nrise = 2\nfall = 3\n\
             {TARGET}[[targets]]\naddress = \"[::1]:8001\"\nhealth_check_endpoint = \"/a?b=\\\"c\\\"\"\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.listen, "[::]:8080".parse().unwrap());
        assert_eq!((config.workers, config.pin_workers), (4, true));
        assert_eq!(config.relay, RelayMode::Copy);
        let hc = &config.health_check;
        assert_eq!(hc.interval, Duration::from_millis(250));
        assert_eq!(hc.timeout, Duration::from_secs(90));
        assert_eq!((hc.rise, hc.fall), (2, 3));
        assert_eq!(config.targets[1].address.host, "::1");
        assert_eq!(config.targets[1].health_check_endpoint, "/a?b=\"c\"");
    }

    #[test]
    fn relay_names_round_trip() {
        for mode in RELAY_MODES {
            let text = format!("relay = \"{}\"\n{TARGET}", relay_name(mode));
            assert_eq!(parse(&text).unwrap().relay, mode);
        }
    }

    #[test]
    fn display_round_trips() {
        let text = format!(
            "listen = \"[::1]:9000\"\nworkers = 3\nrelay = \"splice\"\n\
             [health_check]\ninterval = \"1m 1ms\"\ntimeout = \"1500ms\"\nfall = 7\n\
             {TARGET}[[targets]]\naddress = \"[fe80::1]:8001\"\n\
             health_check_endpoint = \"/q\\\\x\\\"y\"\n"
        );
        for text in [SEED, EXAMPLE, &text] {
            let config = parse(text).unwrap();
            let shown = config.to_string();
            assert_eq!(parse(&shown).unwrap(), config, "{shown}");
        }
    }

    #[test]
    fn display_spells_out_defaults() {
        let shown = parse(SEED).unwrap().to_string();
        for line in [
            "listen = \"0.0.0.0:80\"",
            "workers = 0",
            "pin_workers = false",
            "relay = \"splice-inline\"",
            "interval = \"5s\"",
            "timeout = \"1s\"",
            "rise = 1",
            "fall = 1",
            "address = \"http-api-1:8001\"",
        ] {
            assert!(
                shown.lines().any(|l| l == line),
                "{line:?} missing in:\n{shown}"
            );
        }
    }

    #[test]
    fn unknown_keys_name_the_table_and_the_key() {
        assert_rejected(
            &format!("lissen = 1\n{TARGET}"),
            FILE_KEY,
            &["`lissen`", "`listen`"],
        );
        assert_rejected(
            &format!("[health_check]\nintervall = \"1s\"\n{TARGET}"),
            "health_check",
            &["`intervall`", "`interval`"],
        );
        assert_rejected(
            &format!("{TARGET}[[targets]]\nadress = \"b:1\"\n"),
            "targets[1]",
            &["`adress`", "`address`", "`health_check_endpoint`"],
        );
    }

    #[test]
    fn targets_must_be_present() {
        assert_rejected("", "targets", &["missing"]);
        assert_rejected("targets = []", "targets", &["empty"]);
        assert_rejected("[targets]\naddress = \"a:1\"", "targets", &["[[targets]]"]);
        assert_rejected("targets = 1", "targets", &["integer 1"]);
        assert_rejected("targets = [1]", "targets[0]", &["integer 1", "table"]);
        assert_rejected(
            "[[targets]]\naddress = \"a:1\"",
            "targets[0].health_check_endpoint",
            &["missing"],
        );
        assert_rejected(
            "[[targets]]\nhealth_check_endpoint = \"/\"",
            "targets[0].address",
            &["missing"],
        );
    }

    #[test]
    fn bad_addresses_are_explained() {
        let cases = [
            ("http-api-1", "\"http-api-1\" has no port"),
            ("a:", "no port"),
            ("a:0", "port 0"),
            ("a:65536", "65536"),
            ("a:99999999999999999999", "above 65535"),
            ("a:8x", "not a number"),
            ("a:-1", "not a number"),
            (":80", "empty host"),
            ("[]:80", "empty host"),
            ("[::1", "without a closing"),
            ("[::1]", "no port"),
            ("[::1]80", "after ']'"),
            ("[x]:80", "not an IPv6 address"),
            ("a]:80", "stray"),
            ("a[:80", "stray"),
            ("::1:80", "without brackets"),
            ("a b:80", "whitespace"),
            (" a:80", "whitespace"),
            ("a:80\n", "whitespace"),
            ("a/b:80", "not a host name character"),
        ];
        for (address, problem) in cases {
            let text = format!(
                "[[targets]]\naddress = {}\nhealth_check_endpoint = \"/\"",
                quoted(address)
            );
            assert_rejected(&text, "targets[0].address", &[problem, "host:port"]);
        }
        let text = "[[targets]]\naddress = 8001\nhealth_check_endpoint = \"/\"";
        assert_rejected(
            text,
            "targets[0].address",
            &["integer 8001", "not a string"],
        );
    }

    #[test]
    fn addresses_are_split_not_resolved() {
        for (text, host, port) in [
            ("http-api-1:8001", "http-api-1", 8001),
            ("no-such-host.invalid:1", "no-such-host.invalid", 1),
            ("10.0.0.1:65535", "10.0.0.1", 65535),
            ("[::1]:8001", "::1", 8001),
            ("[2001:db8::7]:443", "2001:db8::7", 443),
        ] {
            let address = parse_target_address(text).unwrap();
            assert_eq!((address.host.as_str(), address.port), (host, port));
            assert_eq!(address.to_string(), text);
        }
    }

    #[test]
    fn duplicate_targets_are_rejected() {
        assert_rejected(
            &format!("{TARGET}{TARGET}"),
            "targets[1].address",
            &["targets[0]"],
        );
        let upper = TARGET.replace("a:1", "A:1");
        assert_rejected(
            &format!("{TARGET}{upper}"),
            "targets[1].address",
            &["same target"],
        );
        let long = TARGET.replace("a:1", "[0:0::1]:1");
        let short = TARGET.replace("a:1", "[::1]:1");
        assert_rejected(
            &format!("{long}{short}"),
            "targets[1].address",
            &["same target"],
        );
        let other_port = TARGET.replace("a:1", "a:2");
        assert!(parse(&format!("{TARGET}{other_port}")).is_ok());
    }

    #[test]
    fn bad_endpoints_are_explained() {
        for (endpoint, problem) in [
            ("healthz", "start with '/'"),
            ("", "start with '/'"),
            ("/health z", "whitespace"),
            ("/health\r\n", "whitespace or control"),
            ("/\u{7f}", "control"),
            ("/é", "non-ASCII"),
        ] {
            let text = format!(
                "[[targets]]\naddress = \"a:1\"\nhealth_check_endpoint = {}",
                quoted(endpoint)
            );
            assert_rejected(
                &text,
                "targets[0].health_check_endpoint",
                &[problem, "/healthz"],
            );
        }
    }

    #[test]
    fn bad_durations_are_explained() {
        for key in ["interval", "timeout"] {
            for (value, problem) in [
                ("\"0s\"", "is zero"),
                ("\"0ms\"", "is zero"),
                ("\"5\"", "not a duration"),
                ("\"soon\"", "not a duration"),
                ("\"\"", "not a duration"),
                ("\"-5s\"", "not a duration"),
                ("\"99999999999999999999s\"", "not a duration"),
                ("\"2d\"", "longer than one day"),
                ("5", "integer 5"),
            ] {
                let text = format!("[health_check]\n{key} = {value}\n{TARGET}");
                let full_key = format!("health_check.{key}");
                assert_rejected(&text, &full_key, &[problem, "\"5s\""]);
            }
        }
        let text = format!("[health_check]\ninterval = \"1s\"\ntimeout = \"10s\"\n{TARGET}");
        assert!(
            parse(&text).is_ok(),
            "a timeout above the interval is allowed"
        );
    }

    #[test]
    fn bad_counts_are_explained() {
        for key in ["rise", "fall"] {
            for (value, problem) in [
                ("0", "0 is too small"),
                ("-1", "-1 is too small"),
                ("4294967296", "too large"),
                ("\"2\"", "string \"2\""),
                ("1.5", "float 1.5"),
            ] {
                let text = format!("[health_check]\n{key} = {value}\n{TARGET}");
                let full_key = format!("health_check.{key}");
                assert_rejected(&text, &full_key, &[problem, "at least 1"]);
            }
        }
    }

    #[test]
    fn bad_top_level_values_are_explained() {
        let cases = [
            (
                "listen = \"localhost:80\"",
                "listen",
                "not an IP address and port",
            ),
            (
                "listen = \"0.0.0.0\"",
                "listen",
                "not an IP address and port",
            ),
            (
                "listen = \"0.0.0.0:99999\"",
                "listen",
                "not an IP address and port",
            ),
            ("listen = 80", "listen", "integer 80"),
            ("workers = -1", "workers", "-1 is too small"),
            ("workers = \"four\"", "workers", "string \"four\""),
            ("pin_workers = \"yes\"", "pin_workers", "string \"yes\""),
            ("pin_workers = 1", "pin_workers", "integer 1"),
            ("relay = \"fast\"", "relay", "\"splice-inline\""),
            ("relay = true", "relay", "boolean true"),
            ("health_check = 5", "health_check", "integer 5"),
        ];
        for (line, key, problem) in cases {
            assert_rejected(&format!("{line}\n{TARGET}"), key, &[problem]);
        }
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        assert_rejected(
            "a = 1\na = 2\n",
            FILE_KEY,
            &["line 2, column 1", "duplicate key"],
        );
        assert_rejected("listen = 0.0.0.0:80\n", FILE_KEY, &["line 1"]);
        assert_rejected("[[targets]\n", FILE_KEY, &["line 1"]);
        // Columns count characters, not bytes.
        assert_rejected("x = \"é\" y\n", FILE_KEY, &["line 1, column 9"]);
    }

    #[test]
    fn never_panics_on_truncated_or_odd_input() {
        for end in (0..=EXAMPLE.len()).filter(|&i| EXAMPLE.is_char_boundary(i)) {
            let _ = parse(&EXAMPLE[..end]);
        }
        for text in [
            "\0",
            "\u{feff}",
            "=",
            "[",
            "[[",
            "targets = [[]]",
            "targets = [{}]",
        ] {
            let _ = parse(text);
        }
    }

    #[test]
    fn source_is_the_given_path() {
        let config = Config::parse(SEED, Path::new("/etc/ringlb/ringlb.toml")).unwrap();
        assert_eq!(config.source, Path::new("/etc/ringlb/ringlb.toml"));
    }

    #[test]
    fn missing_file_names_the_path() {
        let path = Path::new("/nonexistent/ringlb.toml");
        let error = Config::load(path).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/ringlb.toml"));
    }
}
