//! ringlb: a thread-per-core io_uring TCP (layer-4) load balancer.
//!
//! The crate is split along the line between the *hot path* and the *control plane*:
//!
//! - hot path: [`worker`] (one io_uring per thread: accept, connect, relay) and [`relay`]
//!   (the byte-moving strategies), reading only the [`balancer`] snapshot and atomics;
//!   [`epoll`] is the same worker on a tokio runtime, for where io_uring is unavailable;
//! - control plane: [`config`] (load and validate), [`health`] (probe targets, publish the
//!   healthy set), [`server`] (bind listeners, start and stop threads), [`shutdown`].
//!
//! Nothing on the hot path takes a lock or allocates per byte.
#![warn(missing_docs)]

pub mod admin;
pub mod backend;
pub mod balancer;
pub mod config;
pub mod conn;
pub mod epoll;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod limit;
pub mod listener;
pub mod local_error;
pub mod metrics;
pub mod proxy_protocol;
pub mod relay;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod uring;
pub mod worker;

pub use config::Config;
pub use conn::reject::RESPONSE_503;
pub use server::{ReloadHandle, Server, StartError};
pub use shutdown::Shutdown;
