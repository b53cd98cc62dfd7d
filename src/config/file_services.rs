//! The tables of the services form: `[[pools]]` (with `[pools.health_check]` and
//! `[[pools.targets]]`) and `[[services]]` (with `[[services.routes]]`).
//!
//! Owns the spelling of their keys and what a single value may be, as `file.rs` does for the
//! rest of the file; a value is read by the same function as the top-level key of the same name,
//! so it has the same limits and messages. A pool's or a service's key that is absent inherits
//! the top-level value, so each is an `Option` here: `service_rules.rs` resolves it, and
//! `--check` writes every one back resolved. Never checks keys against each other (names
//! unique, pools known, SNI patterns: `service_rules.rs`) and never panics on input.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize};

use super::{
    de::{self, duration, Found},
    file::{self, FileTarget},
    named,
    table::{Table, TableOf},
    OnNoBackend, SendProxy, Strategy,
};

/// One `[[pools]]` entry. `name` and `targets` are required, which validation reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FilePool {
    #[serde(deserialize_with = "name", skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
    #[serde(with = "named::option", skip_serializing_if = "Option::is_none")]
    pub(super) balance: Option<Strategy>,
    #[serde(with = "named::option", skip_serializing_if = "Option::is_none")]
    pub(super) send_proxy: Option<SendProxy>,
    #[serde(
        deserialize_with = "pool_health_check",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) health_check: Option<FilePoolHealthCheck>,
    #[serde(
        deserialize_with = "pool_targets",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) targets: Option<Vec<FileTarget>>,
}

/// A pool's `[pools.health_check]`: the probe timing. `passive_fall` is not here: a worker
/// counts early closes for the whole process (top-level `[health_check] passive_fall`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FilePoolHealthCheck {
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub(super) interval: Option<Duration>,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub(super) timeout: Option<Duration>,
    #[serde(deserialize_with = "probes", skip_serializing_if = "Option::is_none")]
    pub(super) rise: Option<u32>,
    #[serde(deserialize_with = "probes", skip_serializing_if = "Option::is_none")]
    pub(super) fall: Option<u32>,
}

/// One `[[services]]` entry. `name` and `listen` are required, which validation reports; the
/// keys after `pool` are the service-level part of the top-level keys of the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileService {
    #[serde(deserialize_with = "name", skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
    #[serde(
        deserialize_with = "file::listen",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) listen: Option<SocketAddr>,
    #[serde(
        deserialize_with = "pool_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) pool: Option<String>,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub(super) connect_timeout: Option<Duration>,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub(super) idle_timeout: Option<Duration>,
    #[serde(deserialize_with = "retries", skip_serializing_if = "Option::is_none")]
    pub(super) retries: Option<u32>,
    #[serde(deserialize_with = "boolean", skip_serializing_if = "Option::is_none")]
    pub(super) retry_on_early_close: Option<bool>,
    #[serde(
        deserialize_with = "replay_buffer",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) replay_buffer: Option<usize>,
    #[serde(with = "named::option", skip_serializing_if = "Option::is_none")]
    pub(super) on_no_backend: Option<OnNoBackend>,
    #[serde(deserialize_with = "boolean", skip_serializing_if = "Option::is_none")]
    pub(super) accept_proxy: Option<bool>,
    #[serde(deserialize_with = "routes", skip_serializing_if = "Option::is_none")]
    pub(super) routes: Option<Vec<FileRoute>>,
}

/// One `[[services.routes]]` entry; both keys are required, which validation reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileRoute {
    #[serde(deserialize_with = "sni", skip_serializing_if = "Option::is_none")]
    pub(super) sni: Option<Vec<String>>,
    #[serde(
        deserialize_with = "pool_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) pool: Option<String>,
}

impl TableOf for FilePool {
    const EXPECTED: &'static str = "a [[pools]] table with a name and targets";
}

impl TableOf for FilePoolHealthCheck {
    const EXPECTED: &'static str = "a [pools.health_check] table";
}

impl TableOf for FileService {
    const EXPECTED: &'static str = "a [[services]] table with a name and a listen address";
}

impl TableOf for FileRoute {
    const EXPECTED: &'static str = "a [[services.routes]] table with sni and a pool";
}

/// The hints of the messages about each array of tables as a whole.
pub(super) const POOLS_EXPECTED: &str = "expected at least one [[pools]] entry with a name";
pub(super) const SERVICES_EXPECTED: &str =
    "expected at least one [[services]] entry with a name and a listen address";
pub(super) const POOL_TARGETS_EXPECTED: &str =
    "expected at least one [[pools.targets]] entry with an address";
const ROUTES_EXPECTED: &str = "expected [[services.routes]] entries, each with sni and a pool";

/// The hint of every message about a pool's or a service's name.
pub(super) const NAME_EXPECTED: &str =
    "a name of letters, digits, '_', '.' and '-' such as \"web\" (it labels metrics)";
const POOL_NAME_EXPECTED: &str = "the name of a [[pools]] entry, such as \"web\"";
const SNI_EXPECTED: &str = "an array of TLS server names such as [\"api.example.com\", \
                            \"*.internal.example.com\"] (exact names and one-label wildcards)";

// ---------------------------------------------------------------------------------------------
// The values of single keys.

/// A pool's or a service's `name`: it becomes a metric label, so only characters that need no
/// escaping anywhere.
fn name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::read(d, |found| {
        let text = de::string(found, NAME_EXPECTED)?;
        let bad = text
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
        let problem = match bad {
            _ if text.is_empty() => "is empty".to_owned(),
            _ if text.trim().is_empty() => format!("{text:?} is blank"),
            Some(c) => format!("{text:?} contains {c:?}, which a name cannot"),
            None => return Ok(Some(text.into_owned())),
        };
        Err(format!("{problem}; expected {NAME_EXPECTED}"))
    })
}

/// A service's or a route's `pool`: any string here; whether such a pool exists is
/// validation's to say (with the list of pools).
fn pool_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::read(d, |found| {
        de::string(found, POOL_NAME_EXPECTED).map(|text| Some(text.into_owned()))
    })
}

/// A route's `sni`: an array of strings; an empty array and the patterns themselves are
/// validation's (`crate::tls::SniRoutes` checks them).
fn sni<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let patterns: Vec<SniPattern> = de::array(d, |found| found.is_not("an array", SNI_EXPECTED))?;
    Ok(Some(patterns.into_iter().map(|SniPattern(p)| p).collect()))
}

/// One element of `sni`.
struct SniPattern(String);

impl<'de> Deserialize<'de> for SniPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::read(d, |found| {
            let pattern = de::string(found, "a TLS server name such as \"api.example.com\"")?;
            Ok(SniPattern(pattern.into_owned()))
        })
    }
}

fn pool_health_check<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<FilePoolHealthCheck>, D::Error> {
    super::table::table(d).map(Some)
}

fn probes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    file::probes(d).map(Some)
}

fn retries<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    file::retries(d).map(Some)
}

fn replay_buffer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    file::replay_buffer(d).map(Some)
}

fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    de::boolean(d).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Arrays of tables: a single table (one bracket pair too few) is named as such.

/// The entries of an array of tables, each read with `table.rs`'s messages.
fn entries<'de, D, T>(d: D, not_array: fn(Found<'_>) -> String) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + TableOf,
{
    let entries: Vec<Table<T>> = de::array(d, not_array)?;
    Ok(Some(entries.into_iter().map(|Table(t)| t).collect()))
}

/// The message for an array of tables `[name]` spelled otherwise.
fn not_array_of_tables(found: Found<'_>, name: &str, expected: &str) -> String {
    match found {
        Found::Table => format!("is a single [{name}] table; {expected}, with double brackets"),
        other => format!("{other} is not an array of tables; {expected}"),
    }
}

/// `pools`.
pub(super) fn pools<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<FilePool>>, D::Error> {
    entries(d, |found| {
        not_array_of_tables(found, "pools", POOLS_EXPECTED)
    })
}

/// `services`.
pub(super) fn services<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<FileService>>, D::Error> {
    entries(d, |found| {
        not_array_of_tables(found, "services", SERVICES_EXPECTED)
    })
}

/// A pool's `targets`.
fn pool_targets<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<FileTarget>>, D::Error> {
    entries(d, |found| {
        not_array_of_tables(found, "pools.targets", POOL_TARGETS_EXPECTED)
    })
}

/// A service's `routes`.
fn routes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<FileRoute>>, D::Error> {
    entries(d, |found| {
        not_array_of_tables(found, "services.routes", ROUTES_EXPECTED)
    })
}
