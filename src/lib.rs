//! ringlb: a thread-per-core io_uring TCP (layer-4) load balancer.
//!
//! The modules are layered, leaves first (README, "Architecture"); no two import each other:
//!
//! - leaves: `stats` (the hot path's counters), `limit` (the connection cap), `local_error`,
//!   [`proxy_protocol`] (the wire format), [`tls`] (the ClientHello's SNI and the SNI route
//!   table), `listener`, `uring` (every raw system call and all the io_uring plumbing);
//! - the shared model: [`backend`] (an endpoint and its atomics), [`balancer`] (the lock-free
//!   pick), [`config`] (load and validate once);
//! - the control plane: [`access_log`] (the writer of one line per connection), [`health`] (probe, publish the healthy set, passive reports),
//!   [`metrics`] and [`admin`] (`/metrics`, `/status`, `/healthz`, the runtime API and
//!   `ringlb ctl`), [`shutdown`];
//! - the connection policy, `conn`: every decision about a client connection (retries and
//!   ejection, the no-backend answer, the PROXY header, replay, how a connection ends),
//!   written once and performed by both I/O drivers;
//! - the data path: `relay` (the io_uring byte-moving strategies), `worker` (the io_uring
//!   driver) and `epoll` (the epoll driver, for where io_uring is unavailable);
//! - [`server`] on top: binds, starts, chooses the driver, supervises, stops.
//!
//! The public API is what an embedder needs: [`Config`], [`Server`] (with
//! [`Server::start_with_resolver`] and the [`health::Resolver`] seam for a discovery of one's
//! own), [`Shutdown`], and the balancer and backend types for those who reuse the pick.
//! Nothing on the hot path takes a lock or allocates per byte.
#![warn(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod backend;
pub mod balancer;
pub mod config;
pub(crate) mod conn;
pub(crate) mod epoll;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod limit;
pub(crate) mod listener;
pub(crate) mod local_error;
pub mod metrics;
pub mod proxy_protocol;
pub(crate) mod relay;
pub mod server;
pub mod shutdown;
pub(crate) mod stats;
pub mod tls;
pub(crate) mod uring;
pub(crate) mod worker;

pub use config::Config;
pub use conn::reject::RESPONSE_503;
pub use server::{ReloadHandle, Server, StartError};
pub use shutdown::Shutdown;
