//! Connection policy shared by both I/O drivers (io_uring in [`crate::worker`], epoll in
//! [`crate::epoll`]): plain decisions about a client connection, taken here once and performed
//! by whichever driver runs.
//!
//! Owns the rules, their constants and their log events. Never does I/O on a connection's
//! sockets and never blocks: a driver asks, then acts.

pub mod ending;
pub(crate) mod events;
pub(crate) mod fin;
pub(crate) mod header;
pub(crate) mod passive;
pub mod reject;
pub mod routing;
pub mod settings;
pub(crate) mod source;
pub(crate) mod tally;
pub(crate) mod tried;
