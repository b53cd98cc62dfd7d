//! The rules of the services form, checked once after every single value was read
//! (`file_services.rs`): which form a file is of (never both), pools and services present,
//! named, each name once, each service on its own address, every pool a service or route
//! names known, every route's SNI patterns valid and each once per service (the same table the
//! server builds, [`crate::tls::SniRoutes`], checks them). Resolves every key a pool or a
//! service leaves out against the top-level key of the same name, so the runtime [`Pool`] and
//! [`Service`] hold no `Option` for an inherited value.
//!
//! Owns these rules and their messages. A pool that no service uses is valid (a warning,
//! `warnings.rs`). Never resolves names, never does I/O and never panics on input.

use std::net::SocketAddr;

use super::{
    file::{FileTarget, LISTEN_EXPECTED},
    file_services::{
        FilePool, FilePoolHealthCheck, FileRoute, FileService, NAME_EXPECTED, POOLS_EXPECTED,
        POOL_TARGETS_EXPECTED, SERVICES_EXPECTED,
    },
    validate::{targets, Invalid},
    HealthCheck, Live, Pool, Route, SendProxy, Service, ServiceTraffic, Startup, Strategy,
};
use crate::tls::{RouteError, SniRoutes};

/// Which of the two forms a file is of, with the keys that form reads.
pub(super) enum Form {
    /// A top-level `listen` (optional) and `[[targets]]`: one service, one pool.
    Seed {
        listen: Option<SocketAddr>,
        targets: Option<Vec<FileTarget>>,
    },
    /// `[[pools]]` and `[[services]]`, both present and not empty.
    Services {
        pools: Vec<FilePool>,
        services: Vec<FileService>,
    },
}

/// The form of a file from its top-level keys: mixing them is an error naming both sides.
pub(super) fn form(
    listen: Option<SocketAddr>,
    targets: Option<Vec<FileTarget>>,
    pools: Option<Vec<FilePool>>,
    services: Option<Vec<FileService>>,
) -> Result<Form, Invalid> {
    let seed: Vec<(&str, &str)> = [
        (listen.is_some(), ("listen", "a top-level listen")),
        (targets.is_some(), ("targets", "[[targets]]")),
    ]
    .into_iter()
    .filter_map(|(present, key)| present.then_some(key))
    .collect();
    let (pools, services) = match (pools, services) {
        (None, None) => return Ok(Form::Seed { listen, targets }),
        (pools, services) if !seed.is_empty() => {
            return Err(mixed(&seed, pools.is_some(), services.is_some()))
        }
        (Some(_), None) => {
            return Err(Invalid::new(
                "services",
                format!(
                    "missing, but the file has [[pools]], which only [[services]] send \
                     connections to; {SERVICES_EXPECTED}"
                ),
            ))
        }
        (None, Some(_)) => {
            return Err(Invalid::new(
                "pools",
                format!(
                    "missing, but the file has [[services]], which send connections to \
                     [[pools]]; {POOLS_EXPECTED}"
                ),
            ))
        }
        (Some(pools), Some(services)) => (pools, services),
    };
    if pools.is_empty() {
        return Err(Invalid::new("pools", format!("is empty; {POOLS_EXPECTED}")));
    }
    if services.is_empty() {
        let message = format!("is empty; {SERVICES_EXPECTED}");
        return Err(Invalid::new("services", message));
    }
    Ok(Form::Services { pools, services })
}

/// The error for a file with keys of both forms, at the first seed-form key.
fn mixed(seed: &[(&str, &str)], pools: bool, services: bool) -> Invalid {
    let seed_keys: Vec<&str> = seed.iter().map(|(_, spelled)| *spelled).collect();
    let other = match (pools, services) {
        (true, true) => "[[pools]] and [[services]]",
        (true, false) => "[[pools]]",
        _ => "[[services]]",
    };
    Invalid::new(
        seed[0].0,
        format!(
            "{} and {other} are two forms of a configuration, which one file cannot mix; \
             expected either a top-level listen with [[targets]] (one service, one pool) or \
             [[pools]] with [[services]] (each service with its own listen)",
            seed_keys.join(" and ")
        ),
    )
}

/// The pools and the services of the services form, every key they leave out resolved from
/// the top-level keys in `live`; no service may take the admin listener's address.
pub(super) fn resolve(
    pools: Vec<FilePool>,
    services: Vec<FileService>,
    live: &Live,
    startup: &Startup,
) -> Result<(Vec<Pool>, Vec<Service>), Invalid> {
    let pool_defaults = PoolDefaults {
        balance: live.balance,
        send_proxy: live.send_proxy,
        health_check: &live.health_check,
    };
    let pools = self::pools(pools, &pool_defaults)?;
    let service_defaults = ServiceDefaults {
        traffic: ServiceTraffic::from(&live.traffic),
        pools: &pools,
        admin: startup.admin.enabled.then_some(startup.admin.listen),
    };
    let services = self::services(services, &service_defaults)?;
    Ok((pools, services))
}

/// What a pool inherits when it leaves a key out: the top-level keys of the same names.
struct PoolDefaults<'a> {
    balance: Strategy,
    send_proxy: SendProxy,
    health_check: &'a HealthCheck,
}

/// The pools: each valid, every name once.
fn pools(entries: Vec<FilePool>, defaults: &PoolDefaults) -> Result<Vec<Pool>, Invalid> {
    let mut pools: Vec<Pool> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let pool = pool(i, entry, defaults)?;
        if let Some(first) = pools.iter().position(|p| p.name == pool.name) {
            return Err(Invalid::new(
                format!("pools[{i}].name"),
                format!(
                    "{:?} is also the name of pools[{first}]; expected every pool name once",
                    pool.name
                ),
            ));
        }
        pools.push(pool);
    }
    Ok(pools)
}

/// Pool `index`, every key resolved; its targets follow the rules of top-level `[[targets]]`.
fn pool(index: usize, entry: FilePool, defaults: &PoolDefaults) -> Result<Pool, Invalid> {
    let FilePool {
        name,
        balance,
        send_proxy,
        health_check,
        targets: entries,
    } = entry;
    let key = format!("pools[{index}]");
    let name = required(name, &format!("{key}.name"), NAME_EXPECTED)?;
    let FilePoolHealthCheck {
        interval,
        timeout,
        rise,
        fall,
    } = health_check.unwrap_or_default();
    let inherited = defaults.health_check;
    Ok(Pool {
        name,
        balance: balance.unwrap_or(defaults.balance),
        send_proxy: send_proxy.unwrap_or(defaults.send_proxy),
        health_check: HealthCheck {
            interval: interval.unwrap_or(inherited.interval),
            timeout: timeout.unwrap_or(inherited.timeout),
            rise: rise.unwrap_or(inherited.rise),
            fall: fall.unwrap_or(inherited.fall),
        },
        targets: targets(&format!("{key}.targets"), POOL_TARGETS_EXPECTED, entries)?,
    })
}

/// What a service is checked against and inherits.
struct ServiceDefaults<'a> {
    /// The top-level service-level keys.
    traffic: ServiceTraffic,
    /// The pools, already valid.
    pools: &'a [Pool],
    /// `[admin] listen` when the admin listener is enabled: no service may take it.
    admin: Option<SocketAddr>,
}

/// The services: each valid, every name and every listen address once.
fn services(
    entries: Vec<FileService>,
    defaults: &ServiceDefaults,
) -> Result<Vec<Service>, Invalid> {
    let mut services: Vec<Service> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let service = service(i, entry, defaults)?;
        let clash =
            |key: &str, message: String| Err(Invalid::new(format!("services[{i}].{key}"), message));
        if let Some(first) = services.iter().position(|s| s.name == service.name) {
            return clash(
                "name",
                format!(
                    "{:?} is also the name of services[{first}]; expected every service name once",
                    service.name
                ),
            );
        }
        // Port 0 asks the kernel for a free port: two such listeners never clash.
        let fixed = service.listen.port() != 0;
        if let Some(first) = (services.iter()).position(|s| fixed && s.listen == service.listen) {
            return clash(
                "listen",
                format!(
                    "\"{}\" is also the address of services[{first}] ({:?}); expected every \
                     service on an address of its own",
                    service.listen, services[first].name
                ),
            );
        }
        if fixed && defaults.admin == Some(service.listen) {
            return clash(
                "listen",
                format!(
                    "\"{}\" is the admin listener's address ([admin] listen); expected another \
                     address, or [admin] enabled = false",
                    service.listen
                ),
            );
        }
        services.push(service);
    }
    Ok(services)
}

/// Service `index`, every key resolved: somewhere to send connections (a default pool, routes
/// or both), every pool known.
fn service(
    index: usize,
    entry: FileService,
    defaults: &ServiceDefaults,
) -> Result<Service, Invalid> {
    let FileService {
        name,
        listen,
        pool,
        connect_timeout,
        idle_timeout,
        retries,
        retry_on_early_close,
        replay_buffer,
        on_no_backend,
        accept_proxy,
        routes: entries,
    } = entry;
    let key = format!("services[{index}]");
    let name = required(name, &format!("{key}.name"), NAME_EXPECTED)?;
    let listen = required(listen, &format!("{key}.listen"), LISTEN_EXPECTED)?;
    let pool = pool
        .map(|pool| known(&format!("{key}.pool"), pool, defaults.pools))
        .transpose()?;
    let routes = routes(&key, entries.unwrap_or_default(), defaults.pools)?;
    if pool.is_none() && routes.is_empty() {
        return Err(Invalid::new(
            format!("{key}.pool"),
            "missing, and the service has no [[services.routes]], so it has nothing to send \
             connections to; expected pool = the name of a [[pools]] entry, routes, or both",
        ));
    }
    let inherited = &defaults.traffic;
    let traffic = ServiceTraffic {
        connect_timeout: connect_timeout.unwrap_or(inherited.connect_timeout),
        idle_timeout: idle_timeout.unwrap_or(inherited.idle_timeout),
        retries: retries.unwrap_or(inherited.retries),
        retry_on_early_close: retry_on_early_close.unwrap_or(inherited.retry_on_early_close),
        replay_buffer: replay_buffer.unwrap_or(inherited.replay_buffer),
        on_no_backend: on_no_backend.unwrap_or(inherited.on_no_backend),
        accept_proxy: accept_proxy.unwrap_or(inherited.accept_proxy),
    };
    Ok(Service {
        name,
        listen,
        pool,
        routes,
        traffic,
    })
}

/// The hint of the messages about a route's `sni`.
const SNI_EXPECTED: &str = "a non-empty array of TLS server names: exact names such as \
                            \"api.example.com\" and one-label wildcards such as \
                            \"*.internal.example.com\", each once in a service";

/// The routes of service `service_key`, each with patterns and a known pool; the patterns are
/// checked by building the route table the server will build.
fn routes(
    service_key: &str,
    entries: Vec<FileRoute>,
    pools: &[Pool],
) -> Result<Vec<Route>, Invalid> {
    let sni_key = |route: usize| format!("{service_key}.routes[{route}].sni");
    let mut routes = Vec::with_capacity(entries.len());
    for (j, FileRoute { sni, pool }) in entries.into_iter().enumerate() {
        let sni = required(sni, &sni_key(j), SNI_EXPECTED)?;
        if sni.is_empty() {
            return Err(Invalid::new(
                sni_key(j),
                format!("is empty; expected {SNI_EXPECTED}"),
            ));
        }
        let pool_key = format!("{service_key}.routes[{j}].pool");
        let pool = required(pool, &pool_key, &pool_list(pools))?;
        let pool = known(&pool_key, pool, pools)?;
        routes.push(Route { sni, pool });
    }
    SniRoutes::new(routes.iter().map(|r| (&r.sni, ()))).map_err(|e| {
        let (route, problem) = match e {
            RouteError::NoPatterns { route } => (route, "is empty".to_owned()),
            RouteError::BadPattern {
                route,
                pattern,
                error,
            } => (route, format!("{pattern:?} is not an SNI pattern: {error}")),
            RouteError::Duplicate {
                route,
                pattern,
                first,
            } => (
                route,
                format!("{pattern:?} is already routed by {service_key}.routes[{first}]"),
            ),
        };
        Invalid::new(
            sni_key(route),
            format!("{problem}; expected {SNI_EXPECTED}"),
        )
    })?;
    Ok(routes)
}

/// `value`, or the error "missing" at `key`.
fn required<T>(value: Option<T>, key: &str, expected: &str) -> Result<T, Invalid> {
    value.ok_or_else(|| Invalid::new(key, format!("missing; expected {expected}")))
}

/// `name` if it is a pool's, else the error at `key` listing the pools.
fn known(key: &str, name: String, pools: &[Pool]) -> Result<String, Invalid> {
    match pools.iter().any(|p| p.name == name) {
        true => Ok(name),
        false => Err(Invalid::new(
            key,
            format!("{name:?} is not a pool; expected {}", pool_list(pools)),
        )),
    }
}

/// "one of the pools "web", "api"", for messages.
fn pool_list(pools: &[Pool]) -> String {
    let names: Vec<String> = pools.iter().map(|p| format!("{:?}", p.name)).collect();
    format!("one of the pools {}", names.join(", "))
}
