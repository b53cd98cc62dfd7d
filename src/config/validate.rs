//! The rules between keys, checked once after every single value was read (`file.rs`): targets
//! present, each with an address, distinct, not all drained; each target's health-check keys
//! consistent (`l4.rs`); every `source` address once (`local.rs`); the rules of the services
//! form (`service_rules.rs`). Builds the runtime [`Config`] from the file's structs.
//!
//! Owns the errors before the file is attached ([`Invalid`]). Never resolves names (two names
//! for one host are two targets), never does I/O and never panics on input.

use std::{collections::HashMap, path::Path};

use super::{
    address::{same_target_key, ADDRESS_EXPECTED},
    file::{FileAdmin, FileConfig, FileHealthCheck, FileTarget, TARGETS_EXPECTED},
    l4::{self, RawCheck},
    local,
    service_rules::{self, Form},
    Admin, Config, ConfigError, HealthCheck, Live, Startup, Target, Traffic,
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
        pools: file_pools,
        services: file_services,
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
    let form = service_rules::form(listen, file_targets, file_pools, file_services)?;
    let mut startup = Startup {
        // The seed form's own replaces it below; the services form leaves it at its default
        // (each service has a listen of its own).
        listen: Startup::default().listen,
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
    let mut live = Live {
        balance,
        send_proxy,
        health_check: HealthCheck {
            interval,
            timeout,
            rise,
            fall,
        },
        targets: Vec::new(),
        traffic,
        access_log: access_log.into(),
        pools: Vec::new(),
        services: Vec::new(),
    };
    match form {
        Form::Seed {
            listen,
            targets: entries,
        } => {
            startup.listen = listen.unwrap_or(startup.listen);
            live.targets = targets("targets", TARGETS_EXPECTED, entries)?;
        }
        Form::Services { pools, services } => {
            (live.pools, live.services) = service_rules::resolve(pools, services, &live, &startup)?;
        }
    }
    Ok(Config {
        source: source.to_owned(),
        startup,
        live,
    })
}

/// The targets at `key` (`targets`, or a pool's `pools[2].targets`): at least one, every
/// address once, not every weight 0; `expected` is the hint when there are none.
pub(super) fn targets(
    key: &str,
    expected: &str,
    entries: Option<Vec<FileTarget>>,
) -> Result<Vec<Target>, Invalid> {
    let entries = match entries {
        None => return Err(Invalid::new(key, format!("missing; {expected}"))),
        Some(entries) if entries.is_empty() => {
            return Err(Invalid::new(key, format!("is empty; {expected}")))
        }
        Some(entries) => entries,
    };
    let mut seen: HashMap<(String, u16), usize> = HashMap::new();
    let mut targets: Vec<Target> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let target = target(&format!("{key}[{i}]"), entry)?;
        if let Some(&first) = seen.get(&same_target_key(&target.address)) {
            return Err(Invalid::new(
                format!("{key}[{i}].address"),
                format!(
                    "\"{}\" is the same target as {key}[{first}] (\"{}\"); expected every \
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
            key,
            "every target has weight 0, so no connection could be served; expected at least \
             one target with a weight above 0",
        ));
    }
    Ok(targets)
}

/// The target at `table_key` (`targets[3]`): its address present, its health-check keys
/// consistent.
fn target(table_key: &str, entry: FileTarget) -> Result<Target, Invalid> {
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
    let address = address.ok_or_else(|| {
        Invalid::new(
            format!("{table_key}.address"),
            format!("missing; expected {ADDRESS_EXPECTED}"),
        )
    })?;
    let check = l4::target_check(
        table_key,
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
