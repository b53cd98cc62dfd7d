//! The file format and its validation: raw tables read key by key, so every error knows the
//! dotted key it belongs to.

use std::{collections::HashMap, path::Path};

use serde::{de::DeserializeOwned, Deserialize};
use toml::{Table, Value};

use super::{
    address::same_target_key,
    defaults::*,
    l4::{self, RawCheck},
    value::*,
    Admin, Config, ConfigError, HealthCheck, Target,
};

/// The top-level table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Value>,
    workers: Option<Value>,
    pin_workers: Option<Value>,
    relay: Option<Value>,
    io_backend: Option<Value>,
    connect_timeout: Option<Value>,
    idle_timeout: Option<Value>,
    drain_timeout: Option<Value>,
    max_connections: Option<Value>,
    retries: Option<Value>,
    retry_on_early_close: Option<Value>,
    replay_buffer: Option<Value>,
    balance: Option<Value>,
    on_no_backend: Option<Value>,
    send_proxy: Option<Value>,
    accept_proxy: Option<Value>,
    health_check: Option<Value>,
    admin: Option<Value>,
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
    passive_fall: Option<Value>,
}

/// The `[admin]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAdmin {
    enabled: Option<Value>,
    listen: Option<Value>,
}

/// One `[[targets]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    address: Option<Value>,
    health_check_endpoint: Option<Value>,
    weight: Option<Value>,
    health_check: Option<Value>,
    health_check_send: Option<Value>,
    health_check_expect: Option<Value>,
    health_check_port: Option<Value>,
    send_proxy: Option<Value>,
}

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

/// TOML syntax: the only step that sees raw text, so the only one reporting line and column.
pub(super) fn parse_document(text: &str) -> Result<Table, Invalid> {
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
pub(super) fn validate(table: Table, source: &Path) -> Result<Config, Invalid> {
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
        io_backend: optional(file.io_backend, default_io_backend, io_backend)?,
        connect_timeout: optional(file.connect_timeout, default_connect_timeout, |v| {
            duration("connect_timeout", v)
        })?,
        idle_timeout: optional(file.idle_timeout, default_idle_timeout, |v| {
            duration("idle_timeout", v)
        })?,
        drain_timeout: optional(file.drain_timeout, default_drain_timeout, |v| {
            duration("drain_timeout", v)
        })?,
        max_connections: optional(file.max_connections, default_max_connections, |v| {
            integer(
                "max_connections",
                v,
                1,
                "a number of connections, at least 1",
            )
        })?,
        retries: optional(file.retries, default_retries, |v| {
            integer(
                "retries",
                v,
                0,
                "a number of further backends to try, 0 or more",
            )
        })?,
        retry_on_early_close: optional(
            file.retry_on_early_close,
            || false,
            |v| boolean("retry_on_early_close", v),
        )?,
        replay_buffer: optional(file.replay_buffer, default_replay_buffer, |v| {
            integer_at_most(
                "replay_buffer",
                v,
                1,
                MAX_REPLAY_BUFFER,
                "a number of bytes from 1 to 1048576",
            )
        })?,
        balance: optional(file.balance, Default::default, balance)?,
        on_no_backend: optional(file.on_no_backend, Default::default, l4::on_no_backend)?,
        send_proxy: optional(file.send_proxy, Default::default, |v| {
            l4::send_proxy("send_proxy", v)
        })?,
        accept_proxy: optional(file.accept_proxy, Default::default, |v| {
            boolean("accept_proxy", v)
        })?,
        health_check: file
            .health_check
            .map_or_else(|| Ok(default_health_check()), health_check)?,
        admin: file.admin.map_or_else(|| Ok(default_admin()), admin)?,
        targets: targets(file.targets)?,
    })
}

/// `value` checked by `check`, or the default when the key is absent.
pub(super) fn optional<T>(
    value: Option<Value>,
    default: fn() -> T,
    check: impl FnOnce(&Value) -> Result<T, Invalid>,
) -> Result<T, Invalid> {
    value.map_or_else(|| Ok(default()), |v| check(&v))
}

/// Reads one table into its raw struct; `key` names the table in messages, `expected` says what
/// it should look like.
pub(super) fn read_table<T: DeserializeOwned>(
    key: &str,
    value: Value,
    expected: &str,
) -> Result<T, Invalid> {
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

pub(super) fn health_check(value: Value) -> Result<HealthCheck, Invalid> {
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
        passive_fall: file.passive_fall.map_or_else(
            || Ok(default_passive_fall()),
            |v| {
                integer(
                    "health_check.passive_fall",
                    &v,
                    1,
                    "a number of consecutive early closes, at least 1",
                )
            },
        )?,
    })
}

pub(super) fn admin(value: Value) -> Result<Admin, Invalid> {
    let file: FileAdmin = read_table("admin", value, "an [admin] table")?;
    Ok(Admin {
        enabled: optional(file.enabled, default_admin_enabled, |v| {
            boolean("admin.enabled", v)
        })?,
        listen: optional(file.listen, default_admin_listen, |v| {
            socket_addr("admin.listen", v)
        })?,
    })
}

const TARGETS_EXPECTED: &str = "expected at least one [[targets]] entry with an address";
const TARGET_EXPECTED: &str = "a [[targets]] table with an address";

pub(super) fn targets(value: Option<Value>) -> Result<Vec<Target>, Invalid> {
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
    if targets.iter().all(|t| t.weight == 0) {
        return Err(Invalid::new(
            "targets",
            "every target has weight 0, so no connection could be served; expected at least \
             one target with a weight above 0",
        ));
    }
    Ok(targets)
}

pub(super) fn target(index: usize, value: Value) -> Result<Target, Invalid> {
    let table_key = format!("targets[{index}]");
    let file: FileTarget = read_table(&table_key, value, TARGET_EXPECTED)?;
    let address_key = format!("{table_key}.address");
    let address = required(&address_key, file.address, ADDRESS_EXPECTED)?;
    let address = target_address(&address_key, &address)?;
    let check = l4::target_check(
        &table_key,
        RawCheck {
            kind: file.health_check,
            endpoint: file.health_check_endpoint,
            send: file.health_check_send,
            expect: file.health_check_expect,
            port: file.health_check_port,
        },
    )?;
    let weight_key = format!("{table_key}.weight");
    let send_proxy_key = format!("{table_key}.send_proxy");
    Ok(Target {
        address,
        health_check_endpoint: check.endpoint,
        weight: optional(file.weight, default_weight, |v| {
            integer(&weight_key, v, 0, "a relative weight, 0 (drain) or more")
        })?,
        health_check: check.kind,
        health_check_send: check.send,
        health_check_expect: check.expect,
        health_check_port: check.port,
        send_proxy: file
            .send_proxy
            .map(|v| l4::send_proxy(&send_proxy_key, &v))
            .transpose()?,
    })
}

pub(super) fn required(key: &str, value: Option<Value>, expected: &str) -> Result<Value, Invalid> {
    value.ok_or_else(|| Invalid::new(key, format!("missing; expected {expected}")))
}
