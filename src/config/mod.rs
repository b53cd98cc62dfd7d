//! Configuration: the TOML file format, its defaults and its validation, and the runtime
//! [`Config`] in two parts: what is fixed at start ([`Startup`]) and what a reload changes
//! ([`Live`]).
//!
//! Owns turning a file into a validated [`Config`]; everything downstream trusts it. The path
//! of a file is: text → `file.rs`'s serde structs (every value typed and checked, errors naming
//! the dotted key) → `validate.rs` (rules between keys) → [`Config`]. A file is of one of two
//! forms: the seed form (a top-level `listen` and `[[targets]]`: one service and one pool) or
//! the services form (`[[pools]]` and `[[services]]`, `file_services.rs` and
//! `service_rules.rs`); [`Config::services`] and [`Config::pools`] give the same lists either
//! way. `--check` writes the same
//! structs back out. Never resolves hostnames (`--check` must work without DNS) and never panics
//! on input.

mod access;
pub(crate) mod address;
mod de;
mod defaults;
mod effective;
mod file;
mod file_services;
mod io_backend;
mod l4;
mod live;
mod local;
mod named;
mod restart;
mod service;
mod service_rules;
mod startup;
mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_services;
mod validate;
mod warnings;

use std::path::{Path, PathBuf};

pub use crate::balancer::Strategy;
pub use access::{AccessLog, LogFormat, LogPath};
use file::FileConfig;
pub use io_backend::IoBackend;
pub use l4::{HealthCheckKind, OnNoBackend, SendProxy, MAX_CHECK_BYTES};
pub use live::{HealthCheck, Live, Target, TargetAddress};
pub use service::{Pool, Route, Service, ServiceTraffic, DEFAULT};
pub use startup::{Admin, RelayMode, Startup, Traffic};

/// A validated configuration, ready to run.
///
/// Embedders load a file with [`Config::load`], or build one with [`Config::new`] and set what
/// differs from the defaults; either goes to [`crate::Server::start`]:
///
/// ```
/// use std::time::Duration;
///
/// use ringlb::config::{Config, Target};
///
/// let mut config = Config::new(vec![Target::http("10.0.0.1", 8001, "/healthz")]);
/// config.startup.workers = 2;
/// config.live.traffic.connect_timeout = Duration::from_millis(500);
/// config.live.health_check.interval = Duration::from_secs(1);
/// assert_eq!(config.worker_count(), 2);
/// // What `--check` would print loads back to the same configuration.
/// let again = Config::parse(&config.to_string(), &config.source).unwrap();
/// assert_eq!(again, config);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from (for messages and reload).
    pub source: PathBuf,
    /// What needs a restart to change: listeners, threads, the admin listener and the
    /// workers' own settings. A reload keeps the running values.
    pub startup: Startup,
    /// What a reload applies: targets, balancing, health checks, the access log.
    pub live: Live,
}

impl Config {
    /// A configuration for `targets` with every other setting at its default.
    pub fn new(targets: Vec<Target>) -> Config {
        Config {
            source: PathBuf::from("<built-in>"),
            startup: Startup::default(),
            live: Live::new(targets),
        }
    }

    /// The targets with each one's `send_proxy` resolved against the top-level setting: what
    /// the health checker (which creates the backends) is given. The seed form's only: empty
    /// in the services form, whose targets are [`Pool::resolved_targets`] of each of
    /// [`Config::pools`].
    pub fn resolved_targets(&self) -> Vec<Target> {
        self.live.resolved_targets()
    }

    /// The number of worker threads to start: `workers`, or one per core when it is 0.
    pub fn worker_count(&self) -> usize {
        self.startup.worker_count()
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
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is only used in messages and kept as
    /// [`Config::source`].
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        FileConfig::read(text)
            .and_then(|file| validate::validate(file, path))
            .map_err(|invalid| invalid.at(path))
    }
}
