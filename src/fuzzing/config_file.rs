//! Properties of the configuration loader (`crate::config::Config::parse`).
//!
//! Owns the checks of what the rest of ringlb trusts about a loaded file: any text gives a
//! validated [`Config`] or an error naming a key of the schema (never a panic); a loaded
//! configuration keeps every rule `validate` states; and `--check`'s output (the `Display`
//! form) loads back to the same configuration. Never reads a file; it parses text it is given.

use std::{net::IpAddr, path::Path, sync::OnceLock, time::Duration};

use crate::config::{
    Config, ConfigError, HealthCheck, HealthCheckKind, Pool, Route, SendProxy, Service,
    ServiceTraffic, Target, TargetAddress, MAX_CHECK_BYTES,
};

/// The path the text is said to come from, in messages and [`Config::source`].
const SOURCE: &str = "fuzz.toml";

/// Every key of the schema, dotted, with `[]` for any index (`targets[]`, `pools[].targets[]`,
/// `source[]`): read from what `--check` prints for a configuration of each form that sets every
/// optional key, so it follows the schema by itself.
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
        let targets = vec![Target::http("a", 1, "/"), tcp];
        let seed = Config::new(targets.clone());
        let mut services = seed.clone();
        services.live.pools = vec![Pool {
            name: "p".into(),
            balance: Default::default(),
            send_proxy: SendProxy::Off,
            health_check: HealthCheck::default(),
            targets,
        }];
        services.live.services = vec![Service {
            name: "s".into(),
            listen: "127.0.0.1:1".parse().expect("an address"),
            pool: Some("p".into()),
            routes: vec![Route {
                sni: vec!["a.example".into()],
                pool: "p".into(),
            }],
            traffic: ServiceTraffic::from(&seed.live.traffic),
        }];
        let mut keys = Vec::new();
        for config in [seed, services] {
            let shown: toml::Table = config.to_string().parse().expect("--check output is TOML");
            collect_keys("", &shown, &mut keys);
        }
        keys.sort();
        keys.dedup();
        keys
    })
}

/// Pushes every key of `table` under `prefix`, with `[]` for the elements of an array (and,
/// for an array of tables, their keys under `name[]`).
fn collect_keys(prefix: &str, table: &toml::Table, keys: &mut Vec<String>) {
    for (name, value) in table {
        let key = match prefix {
            "" => name.clone(),
            _ => format!("{prefix}.{name}"),
        };
        match value {
            toml::Value::Table(inner) => collect_keys(&key, inner, keys),
            toml::Value::Array(elements) => {
                let element = format!("{key}[]");
                for inner in elements.iter().filter_map(toml::Value::as_table) {
                    collect_keys(&element, inner, keys);
                }
                keys.push(element);
            }
            _ => {}
        }
        keys.push(key);
    }
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

/// Whether `key` is `<file>` or a dotted key of the schema (`targets[3].address`,
/// `services[0].routes[1].sni`).
fn names_a_key(key: &str) -> bool {
    if key == FILE_KEY {
        return true;
    }
    // Any index stands for `[]`, as in `schema_keys`; `[]` itself is no key of a file.
    let mut generic = String::with_capacity(key.len());
    let mut rest = key;
    while let Some((before, after)) = rest.split_once('[') {
        let Some((index, after)) = after.split_once(']') else {
            return false;
        };
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        generic.push_str(before);
        generic.push_str("[]");
        rest = after;
    }
    generic.push_str(rest);
    schema_keys().contains(&generic)
}

/// The rules `validate` promises the rest of the crate, in either form.
fn check_valid(config: &Config) {
    assert_eq!(config.source, Path::new(SOURCE));
    let traffic = &config.live.traffic;
    for d in [traffic.drain_timeout, config.live.health_check.interval] {
        assert!(positive(d), "duration {d:?} accepted");
    }
    assert!(traffic.passive_fall >= 1);
    assert!(traffic.max_connections >= 1);
    assert_eq!(config.has_services(), !config.live.services.is_empty());
    assert_eq!(config.has_services(), config.live.targets.is_empty());
    let pools = config.pools();
    assert!(!pools.is_empty(), "no pool");
    for (i, pool) in pools.iter().enumerate() {
        assert!(is_name(&pool.name), "pool name {:?}", pool.name);
        assert!(
            !pools[..i].iter().any(|p| p.name == pool.name),
            "{} twice",
            pool.name
        );
        check_health_check(&pool.health_check);
        check_targets(&pool.targets);
    }
    let services = config.services();
    assert!(!services.is_empty(), "no service");
    for (i, service) in services.iter().enumerate() {
        assert!(is_name(&service.name), "service name {:?}", service.name);
        let earlier = &services[..i];
        assert!(
            !earlier.iter().any(|s| s.name == service.name),
            "{} twice",
            service.name
        );
        assert!(
            !earlier.iter().any(|s| s.listen == service.listen),
            "{} twice",
            service.listen
        );
        assert!(
            service.pool.is_some() || !service.routes.is_empty(),
            "nowhere to send"
        );
        for name in service.pools() {
            assert!(pools.iter().any(|p| p.name == name), "unknown pool {name}");
        }
        let patterns = service.routes.iter().map(|r| (&r.sni, ()));
        assert!(crate::tls::SniRoutes::new(patterns).is_ok(), "bad routes");
        check_traffic(&service.traffic);
    }
}

/// A duration the file accepts: above zero, at most a day.
fn positive(d: Duration) -> bool {
    !d.is_zero() && d <= MAX_DURATION
}

/// A pool's or a service's name: non-empty, letters, digits, `_`, `.` and `-` only.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn check_health_check(hc: &HealthCheck) {
    assert!(positive(hc.interval) && positive(hc.timeout), "{hc:?}");
    assert!(hc.rise >= 1 && hc.fall >= 1);
}

fn check_traffic(traffic: &ServiceTraffic) {
    for d in [traffic.connect_timeout, traffic.idle_timeout] {
        assert!(positive(d), "duration {d:?} accepted");
    }
    assert!((1..=1024 * 1024).contains(&traffic.replay_buffer));
}

/// One pool's targets: some, each address once, not all drained, checks consistent.
fn check_targets(targets: &[Target]) {
    assert!(!targets.is_empty(), "no target");
    assert!(targets.iter().any(|t| t.weight > 0), "all weights 0");
    let mut seen = Vec::new();
    for target in targets {
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
        config_text(include_str!("../../fuzz/corpus/config/services.toml"));
        config_text("[[pools]]\nname = \"p\"\n[[services]]\nname = \"s\"\n");
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
            "source[1]",
            "pools",
            "pools[3].targets[1].health_check_send",
            "pools[0].health_check.rise",
            "services[0].routes[2].sni[1]",
            "services[1].on_no_backend",
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
            "pools[0].health_check.passive_fall",
            "services[0].balance",
            "pools[].name",
            "nope",
        ] {
            assert!(!names_a_key(key), "{key}");
        }
    }
}
