//! The effective configuration: a [`Config`] written back as the file it could have been read
//! from, every default spelled out. It is `--check`'s output (`Display`), which loads back to
//! an equal `Config`, and what a reload compares (`restart.rs`).
//!
//! Owns the mapping from the runtime parts back to the file's structs. Every field is taken
//! apart by name, so a runtime field without a key (or a key without a field) does not compile.
//! Never validates: a `Config` is valid already.

use std::fmt;

use super::{
    file::{FileAdmin, FileConfig, FileHealthCheck, FileTarget},
    Config, HealthCheck, HealthCheckKind, Live, Startup, Target, Traffic,
};

impl fmt::Display for Config {
    /// The effective configuration as TOML, every default spelled out: it loads back to an
    /// equal `Config`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = format!("{:?}", self.source.display().to_string());
        writeln!(f, "# Effective ringlb configuration, loaded from {source}.")?;
        // The file's structs hold nothing TOML cannot write (no `None` in an array, values
        // before tables), so this never fails in practice.
        let text = toml::to_string(&FileConfig::from(self)).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl From<&Config> for FileConfig {
    fn from(config: &Config) -> Self {
        let Startup {
            listen,
            defer_accept,
            workers,
            pin_workers,
            relay,
            io_backend,
            admin,
            pid_file,
            source,
        } = &config.startup;
        let Live {
            balance,
            send_proxy,
            health_check,
            targets,
            traffic,
            access_log,
            pools: _,
            services: _,
        } = &config.live;
        let Traffic {
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
        } = traffic;
        let HealthCheck {
            interval,
            timeout,
            rise,
            fall,
        } = health_check;
        FileConfig {
            listen: *listen,
            defer_accept: *defer_accept,
            workers: *workers,
            pin_workers: *pin_workers,
            relay: *relay,
            io_backend: *io_backend,
            connect_timeout: *connect_timeout,
            source: source.clone(),
            idle_timeout: *idle_timeout,
            drain_timeout: *drain_timeout,
            max_connections: *max_connections,
            retries: *retries,
            retry_on_early_close: *retry_on_early_close,
            replay_buffer: *replay_buffer,
            balance: *balance,
            on_no_backend: *on_no_backend,
            send_proxy: *send_proxy,
            accept_proxy: *accept_proxy,
            pid_file: pid_file.clone(),
            health_check: FileHealthCheck {
                interval: *interval,
                timeout: *timeout,
                rise: *rise,
                fall: *fall,
                passive_fall: *passive_fall,
            },
            admin: FileAdmin {
                enabled: admin.enabled,
                listen: admin.listen,
                token_file: admin.token_file.clone(),
            },
            access_log: access_log.into(),
            targets: Some(targets.iter().map(FileTarget::from).collect()),
        }
    }
}

impl From<&Target> for FileTarget {
    /// The kind always spelled out; the endpoint only where the kind reads it.
    fn from(target: &Target) -> Self {
        let Target {
            address,
            health_check_endpoint,
            weight,
            health_check,
            health_check_send,
            health_check_expect,
            health_check_port,
            send_proxy,
        } = target;
        FileTarget {
            address: Some(address.clone()),
            health_check: Some(*health_check),
            health_check_endpoint: (*health_check == HealthCheckKind::Http)
                .then(|| health_check_endpoint.clone()),
            health_check_send: health_check_send.clone(),
            health_check_expect: health_check_expect.clone(),
            health_check_port: *health_check_port,
            send_proxy: *send_proxy,
            weight: *weight,
        }
    }
}

impl Target {
    /// This target's entry as `--check` prints it (one `[[targets]]` table's keys, every
    /// default spelled out). The health checker compares it across reloads to tell whether the
    /// target changed, which clears its runtime overrides; being the file's own format, it is
    /// also stable between two versions of ringlb (an upgrade hands it over with them).
    pub fn to_toml(&self) -> String {
        // A target always serializes (see `Display`); were that to fail, the empty entry would
        // only make the target look changed.
        toml::to_string(&FileTarget::from(self)).unwrap_or_default()
    }
}
