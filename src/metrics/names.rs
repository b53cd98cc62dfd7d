//! Every metric ringlb exports: its name and help text, in one place.
//!
//! Owns the public names dashboards and alerts depend on; renaming one here is a breaking
//! change. Counter names leave out the `_total` suffix: the encoder appends it, as the
//! exposition format requires. Never computes a value.

/// A metric family: its name as exported (before the counter suffix) and its help text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// One line saying what it measures.
    pub help: &'static str,
}

// Process-wide.

/// Gauge, label `backend`: 1 for the I/O backend in use.
pub const IO_BACKEND: Family = Family {
    name: "ringlb_io_backend",
    help: "The I/O backend relaying connections (1 for the one in use)",
};
/// Gauge: 1 between the shutdown signal and the end of the drain.
pub const DRAINING: Family = Family {
    name: "ringlb_draining",
    help: "1 while ringlb drains open connections after a shutdown signal, 0 while it accepts",
};
/// Gauge: client connections open now, over all workers.
pub const OPEN_CONNECTIONS: Family = Family {
    name: "ringlb_open_connections",
    help: "Client connections open now (counted against max_connections)",
};
/// Counter: no-backend answers (the 503, or a close or reset per `on_no_backend`).
pub const REJECTED: Family = Family {
    name: "ringlb_rejected_connections",
    help: "Clients refused because no backend could take them (answered as on_no_backend says: \
           503 Service Unavailable by default, or a close or a reset)",
};
/// Counter: connects retried on another backend.
pub const RETRIES: Family = Family {
    name: "ringlb_connect_retries",
    help: "Backend connects that failed and were retried on another backend",
};
/// Counter: accept pauses at `max_connections`.
pub const LIMIT_REACHED: Family = Family {
    name: "ringlb_max_connections_reached",
    help: "Times a worker stopped accepting because max_connections was reached (new clients \
           wait in the listen backlog until connections close)",
};
/// Counter: failed accepts.
pub const ACCEPT_ERRORS: Family = Family {
    name: "ringlb_accept_errors",
    help: "Accepts that failed (descriptors or memory exhausted); accepting pauses for 100ms",
};
/// Counter: clients closed for their PROXY header.
pub const PROXY_HEADERS_REFUSED: Family = Family {
    name: "ringlb_proxy_headers_refused",
    help: "Clients closed because their PROXY protocol header was invalid, too long or not \
           complete within 5 s (accept_proxy)",
};
/// Counter: backend connects that found no free local port.
pub const NO_LOCAL_PORT: Family = Family {
    name: "ringlb_connect_no_local_port",
    help: "Backend connects that failed for want of a free local port (EADDRNOTAVAIL: the \
           ephemeral port range toward that backend is exhausted); no backend is blamed. Add \
           source addresses",
};
/// Counter, label `to`: directions of `relay = "auto"` connections that switched relay.
pub const RELAY_SWITCHES: Family = Family {
    name: "ringlb_relay_switches",
    help:
        "relay = \"auto\": directions that moved to splice (to=\"splice\", bulk) or back to copy \
           (to=\"copy\", small traffic)",
};
/// Counter: access-log lines lost.
pub const ACCESS_LOG_DROPPED: Family = Family {
    name: "ringlb_access_log_dropped",
    help: "Access-log lines lost: dropped because a worker's queue was full (the writer could \
           not keep up) or not written (a write error); the connections were served",
};
/// Counter: access-log lines written.
pub const ACCESS_LOG_WRITTEN: Family = Family {
    name: "ringlb_access_log_written",
    help: "Access-log lines written out",
};
/// Counter: finished health-check rounds, summed over the pools.
pub const HEALTH_ROUNDS: Family = Family {
    name: "ringlb_health_check_rounds",
    help: "Health-check rounds finished (every target resolved and probed once), summed over \
           the pools (each pool's checker runs its own rounds)",
};

// Per worker, label `worker`.

/// Counter: accepted client connections.
pub const WORKER_ACCEPTED: Family = Family {
    name: "ringlb_worker_accepted_connections",
    help: "Client connections accepted by this worker",
};

// Per service, label `service` (`[[services]] name`, or "default").

/// Counter: accepted client connections of the service.
pub const SERVICE_CONNECTIONS: Family = Family {
    name: "ringlb_service_connections",
    help: "Client connections accepted on the service's listener",
};
/// Counter: the service's clients that got `on_no_backend`.
pub const SERVICE_NO_BACKEND: Family = Family {
    name: "ringlb_service_no_backend",
    help: "Clients of the service answered as on_no_backend says because no backend could take \
           them (none healthy, every connect failed, or no pool chosen)",
};
/// Counter: ClientHellos refused on the service.
pub const TLS_HELLO_REFUSED: Family = Family {
    name: "ringlb_tls_hello_refused",
    help: "Clients of the service closed because their TLS ClientHello was invalid, too long or \
           late (only services with SNI routes read it)",
};
/// Counter: connections a route sent to a pool other than the service's default.
pub const SNI_ROUTED: Family = Family {
    name: "ringlb_sni_routed",
    help: "Connections of the service that an SNI route sent to a pool other than the service's \
           default pool",
};

// Per target, labels `pool` (the pool's name) and `target` (as configured).

/// Gauge, label `state`: 1 for the target's runtime state, 0 for the other two.
pub const TARGET_ADMIN_STATE: Family = Family {
    name: "ringlb_target_admin_state",
    help: "The target's state as the runtime API set it: 1 for the state it is in (ready, drain: \
           no new connection, maint: out of rotation and not probed), 0 for the others",
};
/// Gauge: the target's weight in force.
pub const TARGET_WEIGHT: Family = Family {
    name: "ringlb_target_weight",
    help: "The target's weight for new connections: the runtime API's override if one is set, \
           else the file's (drain and maint are shown by ringlb_target_admin_state)",
};

// Per backend endpoint, labels `pool`, `target` (as configured) and `addr` (resolved address).

/// Gauge: 1 while the endpoint is in the healthy set.
pub const BACKEND_UP: Family = Family {
    name: "ringlb_backend_up",
    help: "1 while the endpoint is healthy and receives new connections, 0 otherwise",
};
/// Gauge: connections open to the endpoint.
pub const BACKEND_ACTIVE: Family = Family {
    name: "ringlb_backend_active_connections",
    help: "Connections currently relayed to the endpoint",
};
/// Counter: connections handed to the endpoint.
pub const BACKEND_CONNECTIONS: Family = Family {
    name: "ringlb_backend_connections",
    help: "Connections handed to the endpoint (connect attempts included)",
};
/// Counter: failed connects.
pub const BACKEND_CONNECT_FAILURES: Family = Family {
    name: "ringlb_backend_connect_failures",
    help: "Connects to the endpoint that failed (refused, unreachable or timed out)",
};
/// Counter, label `direction`: bytes relayed.
pub const BACKEND_BYTES: Family = Family {
    name: "ringlb_backend_bytes",
    help: "Bytes relayed through the endpoint: direction=\"upstream\" client to backend, \
           direction=\"downstream\" backend to client",
};
/// Gauge: duration of the last health probe.
pub const BACKEND_CHECK_DURATION: Family = Family {
    name: "ringlb_backend_health_check_duration_seconds",
    help: "How long the endpoint's last health probe took (until its answer, failure or timeout)",
};
