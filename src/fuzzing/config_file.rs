//! Properties of the configuration loader (`crate::config::Config::parse`).
//!
//! Owns the checks of what the rest of ringlb trusts about a loaded file: any text gives a
//! validated [`Config`] or an error naming a key of the schema (never a panic); a loaded
//! configuration keeps every rule `validate` states; and `--check`'s output (the `Display`
//! form) loads back to the same configuration. Never reads a file; it parses text it is given.

use std::{net::IpAddr, path::Path, sync::OnceLock, time::Duration};

use crate::config::{
    Config, ConfigError, HealthCheckKind, SendProxy, Target, TargetAddress, MAX_CHECK_BYTES,
};

/// The path the text is said to come from, in messages and [`Config::source`].
const SOURCE: &str = "fuzz.toml";

/// Every key of the schema, dotted, with `targets[]` for any target: read from what `--check`
/// prints for a configuration that sets every optional key, so it follows the schema by itself.
fn schema_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let tcp = Target {
            address: TargetAddress {
                host: "b".into(),
                port: 1,
            },
            health_check: HealthCheckKind::Tcp,
            health_check_send: Some("PING".into()),
            health_check_expect: Some("+PONG".into()),
            health_check_port: Some(2),
            send_proxy: Some(SendProxy::V1),
            ..Target::default()
        };
        let config = Config::new(vec![Target::http("a", 1, "/"), tcp]);
        let shown: toml::Table = config.to_string().parse().expect("--check output is TOML");
        let mut keys = Vec::new();
        for (name, value) in &shown {
            keys.push(name.clone());
            let entries = match value {
                toml::Value::Table(table) => vec![(name.clone(), table)],
                toml::Value::Array(targets) => targets
                    .iter()
                    .filter_map(|t| Some((format!("{name}[]"), t.as_table()?)))
                    .collect(),
                _ => Vec::new(),
            };
            for (prefix, table) in entries {
                keys.extend(table.keys().map(|key| format!("{prefix}.{key}")));
            }
        }
        keys
    })
}
/// The key of errors about the document as a whole.
const FILE_KEY: &str = "<file>";

/// Longest duration a configuration accepts (`de.rs`).
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Fuzz entry point: `data` as the text of a configuration file (invalid UTF-8 replaced, as
/// such a file never reaches the parser; `Config::load` refuses it when reading).
pub fn config(data: &[u8]) {
    config_text(&String::from_utf8_lossy(data));
}

/// Loads `text` as a configuration file: an error names a key of the schema; a configuration
/// keeps the rules of validation and survives its own `Display` (what `--check` prints).
pub fn config_text(text: &str) {
    let path = Path::new(SOURCE);
    match Config::parse(text, path) {
        Ok(config) => {
            check_valid(&config);
            let shown = config.to_string();
            match Config::parse(&shown, path) {
                Ok(again) => assert_eq!(again, config, "--check output differs:\n{shown}"),
                Err(e) => panic!("--check output does not load: {e}\n{shown}\nfrom:\n{text}"),
            }
        }
        Err(ConfigError::Invalid {
            path: at,
            key,
            message,
        }) => {
            assert_eq!(at, path);
            assert!(
                names_a_key(&key),
                "error key {key:?} is not a key: {message}"
            );
            assert!(!message.trim().is_empty(), "empty message for {key}");
        }
        Err(other) => panic!("parsing text failed as if reading a file: {other}"),
    }
}

/// Whether `key` is `<file>` or a dotted key of the schema (`targets[3].address`).
fn names_a_key(key: &str) -> bool {
    if key == FILE_KEY {
        return true;
    }
    // Any index stands for `[]`, as in `schema_keys`.
    let generic = match key
        .strip_prefix("targets[")
        .and_then(|rest| rest.split_once(']'))
    {
        Some((index, rest)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
            match rest {
                "" => return true,
                _ => format!("targets[]{rest}"),
            }
        }
        Some(_) => return false,
        None => key.to_owned(),
    };
    schema_keys().contains(&generic)
}

/// The rules `validate` promises the rest of the crate.
fn check_valid(config: &Config) {
    assert_eq!(config.source, Path::new(SOURCE));
    let positive = |d: Duration| !d.is_zero() && d <= MAX_DURATION;
    let (traffic, live) = (&config.live.traffic, &config.live);
    let hc = &live.health_check;
    for d in [
        traffic.connect_timeout,
        traffic.idle_timeout,
        traffic.drain_timeout,
        hc.interval,
        hc.timeout,
    ] {
        assert!(positive(d), "duration {d:?} accepted");
    }
    assert!(hc.rise >= 1 && hc.fall >= 1 && traffic.passive_fall >= 1);
    assert!(traffic.max_connections >= 1);
    assert!((1..=1024 * 1024).contains(&traffic.replay_buffer));
    assert!(!live.targets.is_empty(), "no target");
    assert!(live.targets.iter().any(|t| t.weight > 0), "all weights 0");
    let mut seen = Vec::new();
    for target in &live.targets {
        assert_ne!(target.address.port, 0);
        let host = &target.address.host;
        let key = match host.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => host.to_ascii_lowercase(),
        };
        assert!(
            !seen.contains(&(key.clone(), target.address.port)),
            "{host} twice"
        );
        seen.push((key, target.address.port));
        let tcp = target.health_check == HealthCheckKind::Tcp;
        let http = target.health_check == HealthCheckKind::Http;
        assert_eq!(http, !target.health_check_endpoint.is_empty());
        if http {
            assert!(target.health_check_endpoint.starts_with('/'));
        }
        for payload in [&target.health_check_send, &target.health_check_expect]
            .into_iter()
            .flatten()
        {
            assert!(tcp, "a payload on a {:?} check", target.health_check);
            assert!((1..=MAX_CHECK_BYTES).contains(&payload.len()));
        }
        if target.health_check_port.is_some() {
            assert!(tcp || http);
            assert_ne!(target.health_check_port, Some(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_pass() {
        config_text(include_str!("../../config/example.toml"));
        config_text(include_str!("../../config/ringlb.toml"));
        config_text("");
        config_text("listen = 0.0.0.0:80");
        config(b"[[targets]]\naddress = \"a:1\"\nweight = 0\n");
    }

    #[test]
    fn keys_are_told_from_other_text() {
        for key in [
            "<file>",
            "listen",
            "admin.listen",
            "health_check.passive_fall",
            "targets[12].address",
            "targets[0].health_check_port",
            "targets[0]",
        ] {
            assert!(names_a_key(key), "{key}");
        }
        for key in [
            "",
            "admin.x",
            "targets[]",
            "targets[1]x",
            "targets[a].address",
            "targets[0].interval",
            "health_check.address",
            "nope",
        ] {
            assert!(!names_a_key(key), "{key}");
        }
    }
}
