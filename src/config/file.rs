//! The file format: one serde struct per table of the file, each field typed, checked as it is
//! read and defaulted from the runtime defaults (`defaults.rs`). The tables of the services
//! form (`[[pools]]`, `[[services]]`) are `file_services.rs`'s.
//!
//! Owns the spelling of every key and what a single value may be. Written back out
//! (`effective.rs`), the same structs are `--check`'s output and what a reload compares
//! ([`super::Config::restart_keys`]), so a key is named here and nowhere else. Rules between
//! keys (targets present and distinct, a target's health-check keys) are `validate.rs`'s.
//! Never resolves names and never panics on input.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Deserializer, Serialize};

use super::{
    access::FileAccessLog,
    de::{self, duration},
    defaults::DEFAULT_WEIGHT,
    file_services::{FilePool, FileService},
    named,
    table::{Table, TableOf},
    validate::{Invalid, FILE_KEY},
    Config, HealthCheckKind, IoBackend, OnNoBackend, RelayMode, SendProxy, Strategy, TargetAddress,
};

/// The top-level table: the whole document. Each field means what the runtime field of the same
/// name does (`startup.rs`, `live.rs`), which `config/example.toml` explains to users; here it
/// only says how the value is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileConfig {
    /// `None` when the file has no top-level `listen`: the default in the seed form, and
    /// what the services form requires (each service has its own).
    #[serde(deserialize_with = "listen", skip_serializing_if = "Option::is_none")]
    pub(super) listen: Option<SocketAddr>,
    #[serde(with = "super::local::defer")]
    pub(super) defer_accept: Option<Duration>,
    #[serde(deserialize_with = "workers")]
    pub(super) workers: usize,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) pin_workers: bool,
    #[serde(with = "named")]
    pub(super) relay: RelayMode,
    #[serde(with = "named")]
    pub(super) io_backend: IoBackend,
    #[serde(with = "duration")]
    pub(super) connect_timeout: Duration,
    #[serde(
        deserialize_with = "super::local::addresses",
        serialize_with = "super::local::serialize_addresses"
    )]
    pub(super) source: Vec<IpAddr>,
    #[serde(with = "duration")]
    pub(super) idle_timeout: Duration,
    #[serde(with = "duration")]
    pub(super) drain_timeout: Duration,
    #[serde(deserialize_with = "max_connections")]
    pub(super) max_connections: usize,
    #[serde(deserialize_with = "retries")]
    pub(super) retries: u32,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) retry_on_early_close: bool,
    #[serde(deserialize_with = "replay_buffer")]
    pub(super) replay_buffer: usize,
    #[serde(with = "named")]
    pub(super) balance: Strategy,
    #[serde(with = "named")]
    pub(super) on_no_backend: OnNoBackend,
    #[serde(with = "named")]
    pub(super) send_proxy: SendProxy,
    #[serde(deserialize_with = "de::boolean")]
    pub(super) accept_proxy: bool,
    #[serde(deserialize_with = "pid_file", skip_serializing_if = "Option::is_none")]
    pub(super) pid_file: Option<PathBuf>,
    #[serde(deserialize_with = "super::table::table")]
    pub(super) health_check: FileHealthCheck,
    #[serde(deserialize_with = "super::table::table")]
    pub(super) admin: FileAdmin,
    #[serde(deserialize_with = "super::table::table")]
    pub(super) access_log: FileAccessLog,
    /// `None` when the file has no `targets` key, which validation reports (unless the file
    /// is of the services form).
    #[serde(deserialize_with = "targets", skip_serializing_if = "Option::is_none")]
    pub(super) targets: Option<Vec<FileTarget>>,
    /// `[[pools]]`: `None` in the seed form.
    #[serde(
        deserialize_with = "super::file_services::pools",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) pools: Option<Vec<FilePool>>,
    /// `[[services]]`: `None` in the seed form.
    #[serde(
        deserialize_with = "super::file_services::services",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) services: Option<Vec<FileService>>,
}

/// The `[health_check]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileHealthCheck {
    #[serde(with = "duration")]
    pub(super) interval: Duration,
    #[serde(with = "duration")]
    pub(super) timeout: Duration,
    #[serde(deserialize_with = "probes")]
    pub(super) rise: u32,
    #[serde(deserialize_with = "probes")]
    pub(super) fall: u32,
    #[serde(deserialize_with = "passive_fall")]
    pub(super) passive_fall: u32,
}

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileAdmin {
    #[serde(deserialize_with = "de::boolean")]
    pub(super) enabled: bool,
    #[serde(deserialize_with = "admin_listen")]
    pub(super) listen: SocketAddr,
    #[serde(
        deserialize_with = "token_file",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) token_file: Option<PathBuf>,
}

/// One `[[targets]]` entry. Every key but `weight` may be absent: the address is required and
/// the health-check keys depend on each other, which validation checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileTarget {
    #[serde(with = "super::address", skip_serializing_if = "Option::is_none")]
    pub(super) address: Option<TargetAddress>,
    #[serde(with = "named::option", skip_serializing_if = "Option::is_none")]
    pub(super) health_check: Option<HealthCheckKind>,
    #[serde(
        deserialize_with = "super::l4::endpoint",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) health_check_endpoint: Option<String>,
    #[serde(
        deserialize_with = "super::l4::check_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) health_check_send: Option<String>,
    #[serde(
        deserialize_with = "super::l4::check_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) health_check_expect: Option<String>,
    #[serde(
        deserialize_with = "super::l4::port",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) health_check_port: Option<u16>,
    #[serde(with = "named::option", skip_serializing_if = "Option::is_none")]
    pub(super) send_proxy: Option<SendProxy>,
    #[serde(deserialize_with = "weight")]
    pub(super) weight: u32,
}

impl TableOf for FileConfig {
    const EXPECTED: &'static str = "a TOML document";
}

impl TableOf for FileHealthCheck {
    const EXPECTED: &'static str = "a [health_check] table";
}

impl TableOf for FileAdmin {
    const EXPECTED: &'static str = "an [admin] table";
}

impl TableOf for FileTarget {
    const EXPECTED: &'static str = TARGET_EXPECTED;
}

/// The hint of every message about the `targets` key as a whole.
pub(super) const TARGETS_EXPECTED: &str = "expected at least one [[targets]] entry with an address";
const TARGET_EXPECTED: &str = "a [[targets]] table with an address";

// ---------------------------------------------------------------------------------------------
// Defaults: what a configuration of defaults would print (see `defaults.rs`), so the file and
// `Config::new` cannot disagree.

impl Default for FileConfig {
    fn default() -> Self {
        let mut file = FileConfig::from(&Config::new(Vec::new()));
        // Absent, not the defaults: which form a file is of is told by these keys.
        file.listen = None;
        file.targets = None;
        file
    }
}

impl Default for FileHealthCheck {
    fn default() -> Self {
        FileConfig::default().health_check
    }
}

impl Default for FileAdmin {
    fn default() -> Self {
        FileConfig::default().admin
    }
}

impl Default for FileTarget {
    fn default() -> Self {
        FileTarget {
            address: None,
            health_check: None,
            health_check_endpoint: None,
            health_check_send: None,
            health_check_expect: None,
            health_check_port: None,
            send_proxy: None,
            weight: DEFAULT_WEIGHT,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The values of single keys: each key's range and hint, once.

/// The hint of every message about a `listen` key (top-level or a service's).
pub(super) const LISTEN_EXPECTED: &str =
    "an IP address and port such as \"0.0.0.0:80\" or \"[::]:80\" (names are not resolved)";

/// A `listen` key: the top-level one or a service's.
pub(super) fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    de::socket_addr(d, LISTEN_EXPECTED).map(Some)
}

fn admin_listen<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    de::socket_addr(
        d,
        "an IP address and port such as \"127.0.0.1:9100\" or \"[::1]:9100\" (names are not \
         resolved)",
    )
}

fn token_file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    const EXPECTED: &str = "the path of a file holding the runtime API's token, such as \
                            \"/etc/ringlb/admin.token\"";
    de::read(d, |found| {
        let text = de::string(found, EXPECTED)?;
        match text.is_empty() || text.contains('\0') {
            true => Err(format!("{text:?} is not a path; expected {EXPECTED}")),
            false => Ok(Some(PathBuf::from(text.into_owned()))),
        }
    })
}

fn workers<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de::at_least(d, 0, "a number of threads, or 0 for one per CPU core")
}

fn max_connections<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de::at_least(d, 1, "a number of connections, at least 1")
}

pub(super) fn retries<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de::at_least(d, 0, "a number of further backends to try, 0 or more")
}

/// The largest replay buffer: a replay is for a request's first bytes, not for a stream.
pub(super) const MAX_REPLAY_BUFFER: usize = 1024 * 1024;

pub(super) fn replay_buffer<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de::integer(
        d,
        1,
        MAX_REPLAY_BUFFER as i128,
        "a number of bytes from 1 to 1048576",
    )
}

pub(super) fn probes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de::at_least(d, 1, "a number of consecutive probes, at least 1")
}

fn passive_fall<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de::at_least(d, 1, "a number of consecutive early closes, at least 1")
}

fn weight<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de::at_least(d, 0, "a relative weight, 0 (drain) or more")
}

/// `targets`: an array of tables; a single `[targets]` table (one bracket pair too few) is
/// named as such.
fn targets<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<FileTarget>>, D::Error> {
    let entries: Vec<Table<FileTarget>> = de::array(d, |found| match found {
        de::Found::Table => {
            format!("is a single [targets] table; {TARGETS_EXPECTED}, with double brackets")
        }
        other => format!("{other} is not an array of tables; {TARGETS_EXPECTED}"),
    })?;
    Ok(Some(entries.into_iter().map(|Table(t)| t).collect()))
}

// ---------------------------------------------------------------------------------------------
// Reading the text.

impl FileConfig {
    /// Parses `text` into the file's structs, every value checked. TOML syntax is the only
    /// step that sees raw text, so the only one reporting line and column; every later error
    /// names its dotted key (`targets[0].address`), from the path serde took to it.
    pub(super) fn read(text: &str) -> Result<FileConfig, Invalid> {
        let document = toml::Deserializer::parse(text).map_err(|e| syntax_error(text, &e))?;
        serde_path_to_error::deserialize(document)
            .map(|Table(file)| file)
            .map_err(|e| Invalid::new(dotted(e.path()), e.inner().message().trim_end()))
    }
}

/// A TOML syntax error, with the line and column it starts at (in characters).
fn syntax_error(text: &str, e: &toml::de::Error) -> Invalid {
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
}

/// A serde path as the file spells keys: `health_check.interval`, `targets[1].address`, and
/// [`FILE_KEY`] for the document itself.
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: name } | Segment::Enum { variant: name } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(name);
            }
            Segment::Unknown => key.push_str(if key.is_empty() { "?" } else { ".?" }),
        }
    }
    if key.is_empty() {
        FILE_KEY.to_owned()
    } else {
        key
    }
}

/// `pid_file`: where the serving process writes its id.
fn pid_file<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    const EXPECTED: &str = "a file path such as \"/run/ringlb.pid\"";
    de::read(d, |found| {
        let text = de::string(found, EXPECTED)?;
        if text.is_empty() {
            return Err(format!("is empty; expected {EXPECTED}"));
        }
        Ok(Some(PathBuf::from(text.into_owned())))
    })
}
