//! The effective configuration: a [`Config`] written back as the file it could have been read
//! from, every default spelled out. It is `--check`'s output (`Display`), which loads back to
//! an equal `Config`, and what a reload compares (`restart.rs`). A file of the services form
//! is written in that form: no top-level `listen` or `[[targets]]`, every pool and every
//! service with every key resolved (the top-level keys they inherited from are written too, as
//! they were read, so the output loads back equal).
//!
//! Owns the mapping from the runtime parts back to the file's structs. Every field is taken
//! apart by name, so a runtime field without a key (or a key without a field) does not compile.
//! Never validates: a `Config` is valid already.

use std::fmt;

use super::{
    file::{FileAdmin, FileConfig, FileHealthCheck, FileTarget},
    file_services::{FilePool, FilePoolHealthCheck, FileRoute, FileService},
    Config, HealthCheck, HealthCheckKind, Live, Pool, Route, Service, ServiceTraffic, Startup,
    Target, Traffic,
};

impl fmt::Display for Config {
    /// The effective configuration as TOML, every default spelled out: it loads back to an
    /// equal `Config`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = format!("{:?}", self.source.display().to_string());
        writeln!(f, "# Effective ringlb configuration, loaded from {source}.")?;
        if self.has_services() {
            writeln!(
                f,
                "# Every pool and service below has each key resolved; the top-level keys of\n\
                 # the same names are the defaults they were resolved from."
            )?;
        }
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
            pools,
            services,
        } = &config.live;
        let services_form = config.has_services();
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
            listen: (!services_form).then_some(*listen),
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
            targets: (!services_form).then(|| targets.iter().map(FileTarget::from).collect()),
            pools: services_form.then(|| pools.iter().map(FilePool::from).collect()),
            services: services_form.then(|| services.iter().map(FileService::from).collect()),
        }
    }
}

impl From<&Pool> for FilePool {
    /// Every key spelled out, the targets as in the seed form.
    fn from(pool: &Pool) -> Self {
        let Pool {
            name,
            balance,
            send_proxy,
            health_check,
            targets,
        } = pool;
        let HealthCheck {
            interval,
            timeout,
            rise,
            fall,
        } = health_check;
        FilePool {
            name: Some(name.clone()),
            balance: Some(*balance),
            send_proxy: Some(*send_proxy),
            health_check: Some(FilePoolHealthCheck {
                interval: Some(*interval),
                timeout: Some(*timeout),
                rise: Some(*rise),
                fall: Some(*fall),
            }),
            targets: Some(targets.iter().map(FileTarget::from).collect()),
        }
    }
}

impl From<&Service> for FileService {
    /// Every key spelled out; `pool` only when the service has one, `routes` only when it has
    /// some.
    fn from(service: &Service) -> Self {
        let Service {
            name,
            listen,
            pool,
            routes,
            traffic,
        } = service;
        let ServiceTraffic {
            connect_timeout,
            idle_timeout,
            retries,
            retry_on_early_close,
            replay_buffer,
            on_no_backend,
            accept_proxy,
        } = traffic;
        FileService {
            name: Some(name.clone()),
            listen: Some(*listen),
            pool: pool.clone(),
            connect_timeout: Some(*connect_timeout),
            idle_timeout: Some(*idle_timeout),
            retries: Some(*retries),
            retry_on_early_close: Some(*retry_on_early_close),
            replay_buffer: Some(*replay_buffer),
            on_no_backend: Some(*on_no_backend),
            accept_proxy: Some(*accept_proxy),
            routes: (!routes.is_empty()).then(|| routes.iter().map(FileRoute::from).collect()),
        }
    }
}

impl From<&Route> for FileRoute {
    fn from(route: &Route) -> Self {
        let Route { sni, pool } = route;
        FileRoute {
            sni: Some(sni.clone()),
            pool: Some(pool.clone()),
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
