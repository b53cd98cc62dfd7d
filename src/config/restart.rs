//! Which keys of a reloaded configuration need a restart to take effect.
//!
//! Owns that comparison, without a list of key names: a key needs a restart exactly when
//! keeping the running [`Startup`](super::Startup) would change what `--check` prints for it.
//! The names are therefore the file's own, dotted (`admin.listen`,
//! `health_check.passive_fall`), from the same serde structs that read the file. One key of
//! [`Startup`](super::Startup) is live all the same: `admin.token_file`, read again on every
//! reload (the server does), so it never needs a restart.
//!
//! In the services form, what needs a restart is the set of listeners and the set of pools
//! the workers were built with, which live in [`Live`](super::Live) but are compared here by
//! name and position:
//! - `services`: a service added, removed, renamed or moved (the list of names differs);
//! - `services[i].listen`: service `i` (same name, same place) moved to another address;
//! - `pools`: a pool added, removed, renamed or moved (the list of names differs);
//! - both `pools` and `services` when the file changes from one form to the other.
//!
//! Everything else of a pool (targets, `balance`, `send_proxy`, `[pools.health_check]`) and
//! of a service (its service-level keys, `pool`, `routes`) is live: the server applies it on
//! reload. Never applies anything; the server does.

use toml::{Table, Value};

use super::{file::FileConfig, Config};

impl Config {
    /// The keys, dotted as in the file, whose values in `next` differ from `self`'s in the
    /// part fixed at start ([`Config::startup`]), in file order. Empty when `next` changes
    /// only what a reload applies.
    pub fn restart_keys(&self, next: &Config) -> Vec<String> {
        let mut kept = Config {
            startup: self.startup.clone(),
            ..next.clone()
        };
        // The runtime API's token is read again on every reload.
        kept.startup.admin.token_file = next.startup.admin.token_file.clone();
        let mut keys = Vec::new();
        changed(
            "",
            &as_table(&FileConfig::from(&kept)),
            &as_table(&FileConfig::from(next)),
            &mut keys,
        );
        keys.extend(shape_keys(self, next));
        keys
    }
}

/// The services-form keys needing a restart (see the module doc), pools first as in the file.
fn shape_keys(old: &Config, new: &Config) -> Vec<String> {
    if old.has_services() != new.has_services() {
        return vec!["pools".into(), "services".into()];
    }
    if !new.has_services() {
        return Vec::new();
    }
    let mut keys = Vec::new();
    let pool_names = |c: &Config| {
        c.live
            .pools
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    if pool_names(old) != pool_names(new) {
        keys.push("pools".into());
    }
    let (old, new) = (&old.live.services, &new.live.services);
    if old.len() != new.len() || old.iter().zip(new).any(|(a, b)| a.name != b.name) {
        keys.push("services".into());
        return keys;
    }
    let moved = old
        .iter()
        .zip(new)
        .enumerate()
        .filter(|(_, (a, b))| a.listen != b.listen);
    keys.extend(moved.map(|(i, _)| format!("services[{i}].listen")));
    keys
}

/// The file's structs as a TOML table. They always serialize (see `Display`); were that ever to
/// fail, both sides would be empty and nothing reported, never a panic.
fn as_table(file: &FileConfig) -> Table {
    Table::try_from(file).unwrap_or_default()
}

/// Pushes onto `keys` every leaf key under `prefix` whose value differs between `old` and
/// `new` (or that only one of them has).
fn changed(prefix: &str, old: &Table, new: &Table, keys: &mut Vec<String>) {
    let dotted = |name: &str| match prefix {
        "" => name.to_owned(),
        _ => format!("{prefix}.{name}"),
    };
    for (name, value) in new {
        match (old.get(name), value) {
            (Some(Value::Table(old)), Value::Table(new)) => {
                changed(&dotted(name), old, new, keys);
            }
            (Some(old), new) if old == new => {}
            _ => keys.push(dotted(name)),
        }
    }
    for name in old.keys().filter(|name| !new.contains_key(*name)) {
        keys.push(dotted(name));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, Target};

    fn config() -> Config {
        Config::new(vec![Target::http("a", 1, "/")])
    }

    #[test]
    fn only_startup_keys_are_named_in_file_order_and_dotted() {
        let old = config();
        assert!(old.restart_keys(&old).is_empty());
        let mut new = config();
        new.startup.workers = 7;
        new.startup.listen = "127.0.0.1:1".parse().unwrap();
        new.startup.admin.listen = "127.0.0.1:2".parse().unwrap();
        new.live.traffic.passive_fall = 9;
        new.live.traffic.idle_timeout = Duration::from_secs(1);
        new.live.targets[0].weight = 5;
        new.live.health_check.rise = 3;
        assert_eq!(
            old.restart_keys(&new),
            ["listen", "workers", "admin.listen"],
            "the workers' own settings (idle_timeout, passive_fall) are live"
        );
    }

    #[test]
    fn every_startup_setting_is_named_by_its_own_key() {
        use crate::config::{IoBackend, RelayMode};
        type Change = fn(&mut Config);
        let changes: [(&str, Change); 10] = [
            ("listen", |c| {
                c.startup.listen = "127.0.0.1:1".parse().unwrap()
            }),
            ("defer_accept", |c| {
                c.startup.defer_accept = Some(Duration::from_secs(5))
            }),
            ("workers", |c| c.startup.workers = 3),
            ("pin_workers", |c| c.startup.pin_workers = true),
            ("relay", |c| c.startup.relay = RelayMode::Splice),
            ("io_backend", |c| c.startup.io_backend = IoBackend::Epoll),
            ("admin.enabled", |c| c.startup.admin.enabled = false),
            ("admin.listen", |c| {
                c.startup.admin.listen = "127.0.0.1:2".parse().unwrap()
            }),
            ("pid_file", |c| {
                c.startup.pid_file = Some("/run/x.pid".into())
            }),
            ("source", |c| {
                c.startup.source = vec!["10.0.0.2".parse().unwrap()]
            }),
        ];
        let old = config();
        for (key, change) in changes {
            let mut new = config();
            change(&mut new);
            assert_eq!(old.restart_keys(&new), [key]);
        }
    }

    #[test]
    fn the_admin_token_file_is_live() {
        let old = config();
        let mut new = config();
        new.startup.admin.token_file = Some("/etc/ringlb/admin.token".into());
        assert!(old.restart_keys(&new).is_empty());
        assert!(new.restart_keys(&old).is_empty());
    }

    #[test]
    fn a_change_of_live_keys_alone_needs_no_restart() {
        let old = config();
        let mut new = config();
        new.live.targets.push(Target::http("b", 2, "/h"));
        new.live.health_check.interval = Duration::from_millis(250);
        new.live.balance = crate::config::Strategy::SourceHash;
        new.source = "other.toml".into();
        assert!(old.restart_keys(&new).is_empty());
    }
}
