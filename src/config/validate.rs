//! The rules between keys, checked once after every single value was read (`file.rs`): targets
//! present, each with an address, distinct, not all drained; each target's health-check keys
//! consistent (`l4.rs`); every `source` address once (`local.rs`). Builds the runtime [`Config`] from the file's structs.
//!
//! Owns the errors before the file is attached ([`Invalid`]). Never resolves names (two names
//! for one host are two targets), never does I/O and never panics on input.

use std::{collections::HashMap, path::Path};

use super::{
    address::{same_target_key, ADDRESS_EXPECTED},
    file::{FileAdmin, FileConfig, FileHealthCheck, FileTarget, TARGETS_EXPECTED},
    l4::{self, RawCheck},
    local, Admin, Config, ConfigError, HealthCheck, Live, Startup, Target, Traffic,
};

/// A rejected value before the file path is attached.
#[derive(Debug)]
pub(super) struct Invalid {
    key: String,
    message: String,
}

impl Invalid {
    pub(super) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    pub(super) fn at(self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_owned(),
            key: self.key,
            message: self.message,
        }
    }
}

/// The key used for problems with the document as a whole (syntax, top-level keys).
pub(super) const FILE_KEY: &str = "<file>";

/// Checks the rules between keys and builds the runtime configuration. Every field is named,
/// so a key the runtime does not take does not compile.
pub(super) fn validate(file: FileConfig, source: &Path) -> Result<Config, Invalid> {
    let FileConfig {
        listen,
        defer_accept,
        workers,
        pin_workers,
        relay,
        io_backend,
        connect_timeout,
        source: source_addresses,
        idle_timeout,
        drain_timeout,
        max_connections,
        retries,
        retry_on_early_close,
        replay_buffer,
        balance,
        on_no_backend,
        send_proxy,
        accept_proxy,
        pid_file,
        health_check,
        admin,
        access_log,
        targets: file_targets,
    } = file;
    let FileHealthCheck {
        interval,
        timeout,
        rise,
        fall,
        passive_fall,
    } = health_check;
    let FileAdmin {
        enabled,
        listen: admin_listen,
        token_file,
    } = admin;
    local::check_sources(&source_addresses)?;
    let startup = Startup {
        listen,
        defer_accept,
        workers,
        pin_workers,
        relay,
        io_backend,
        admin: Admin {
            enabled,
            listen: admin_listen,
            token_file,
        },
        pid_file,
        source: source_addresses,
    };
    let traffic = Traffic {
        connect_timeout,
        idle_timeout,
        drain_timeout,
        max_connections,
        retries,
        retry_on_early_close,
        replay_buffer,
        on_no_backend,
        accept_proxy,
        passive_fall,
    };
    let live = Live {
        balance,
        send_proxy,
        health_check: HealthCheck {
            interval,
            timeout,
            rise,
            fall,
        },
        targets: targets(file_targets)?,
        traffic,
        access_log: access_log.into(),
        pools: Vec::new(),
        services: Vec::new(),
    };
    Ok(Config {
        source: source.to_owned(),
        startup,
        live,
    })
}

/// The targets: at least one, every address once, not every weight 0.
fn targets(entries: Option<Vec<FileTarget>>) -> Result<Vec<Target>, Invalid> {
    let entries = match entries {
        None => {
            return Err(Invalid::new(
                "targets",
                format!("missing; {TARGETS_EXPECTED}"),
            ))
        }
        Some(entries) if entries.is_empty() => {
            return Err(Invalid::new(
                "targets",
                format!("is empty; {TARGETS_EXPECTED}"),
            ))
        }
        Some(entries) => entries,
    };
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
    if targets.iter().all(|t| t.weight == 0) {
        return Err(Invalid::new(
            "targets",
            "every target has weight 0, so no connection could be served; expected at least \
             one target with a weight above 0",
        ));
    }
    Ok(targets)
}

/// Target `index`: its address present, its health-check keys consistent.
fn target(index: usize, entry: FileTarget) -> Result<Target, Invalid> {
    let FileTarget {
        address,
        health_check,
        health_check_endpoint,
        health_check_send,
        health_check_expect,
        health_check_port,
        send_proxy,
        weight,
    } = entry;
    let table_key = format!("targets[{index}]");
    let address = address.ok_or_else(|| {
        Invalid::new(
            format!("{table_key}.address"),
            format!("missing; expected {ADDRESS_EXPECTED}"),
        )
    })?;
    let check = l4::target_check(
        &table_key,
        RawCheck {
            kind: health_check,
            endpoint: health_check_endpoint,
            send: health_check_send,
            expect: health_check_expect,
            port: health_check_port,
        },
    )?;
    Ok(Target {
        address,
        health_check_endpoint: check.endpoint,
        weight,
        health_check: check.kind,
        health_check_send: check.send,
        health_check_expect: check.expect,
        health_check_port: check.port,
        send_proxy,
    })
}
