//! Every end-to-end test once per I/O backend, by construction.
//!
//! [`io_backends!`] wraps one test written as `async fn name(io: IoBackend)` and makes two of
//! it, `name::io_uring` and `name::epoll`, each calling the function with its backend. Written
//! as `async fn name(io: IoBackend, relay: RelayMode)`, the test runs once per relay strategy on
//! io_uring (`name::io_uring::splice`, `::splice_inline`, `::copy`, `::auto`) and once on epoll
//! (`name::epoll`): the epoll driver ignores `relay` and always copies, so it has no per-relay
//! variants. A failure thus names its backend and relay in the test's name.
//!
//! The backend reaches the test as an argument, never through the environment or a task-local:
//! [`config`](super::config) and [`binary::toml`](super::binary::toml) ask for it, so a test
//! cannot start ringlb without saying on which backend, and a task or thread it spawns takes the
//! value along like any other. `cargo test ::epoll` (or `::io_uring`) runs one backend only.

use ringlb::config::{IoBackend, RelayMode};

/// What a test of [`io_backends!`] runs on, for its messages: `relay splice on io_uring`, or
/// `epoll (relay does not apply)`.
pub fn relay_on(io: IoBackend, relay: RelayMode) -> String {
    match io {
        IoBackend::Epoll => format!("{io} (relay does not apply)"),
        _ => format!("relay {} on {io}", relay.as_str()),
    }
}

/// One test on both I/O backends (see the [module](self)):
///
/// ```ignore
/// io_backends!(
///     /// Doc comments go on the test function.
///     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
///     async fn echoes(io: IoBackend, relay: RelayMode) {
///         let proxy = Proxy::start(&config(io, &[echo.addr], relay));
///         // ...
///     }
/// );
/// ```
///
/// The `#[tokio::test(...)]` line, flavor and worker threads included, and any attribute after
/// it (`#[ignore]`) go on every generated test. Parentheses, not braces, so that rustfmt
/// formats the test inside.
// Unused in a suite that picks its backends itself (`tests/io_backend.rs`).
#[allow(unused_macros)]
macro_rules! io_backends {
    (
        $(#[doc = $doc:literal])*
        #[tokio::test $(($($runtime:tt)*))?]
        $(#[$attr:meta])*
        async fn $name:ident($io:ident: $io_type:ty $(,)?) $body:block
    ) => {
        $(#[doc = $doc])*
        async fn $name($io: $io_type) $body

        mod $name {
            #[tokio::test $(($($runtime)*))?]
            $(#[$attr])*
            async fn io_uring() {
                super::$name(::ringlb::config::IoBackend::IoUring).await;
            }

            #[tokio::test $(($($runtime)*))?]
            $(#[$attr])*
            async fn epoll() {
                super::$name(::ringlb::config::IoBackend::Epoll).await;
            }
        }
    };
    (
        $(#[doc = $doc:literal])*
        #[tokio::test $(($($runtime:tt)*))?]
        $(#[$attr:meta])*
        async fn $name:ident($io:ident: $io_type:ty, $relay:ident: $relay_type:ty $(,)?)
            $body:block
    ) => {
        $(#[doc = $doc])*
        async fn $name($io: $io_type, $relay: $relay_type) $body

        mod $name {
            mod io_uring {
                use ::ringlb::config::{IoBackend::IoUring, RelayMode};

                #[tokio::test $(($($runtime)*))?]
                $(#[$attr])*
                async fn splice() {
                    super::super::$name(IoUring, RelayMode::Splice).await;
                }

                #[tokio::test $(($($runtime)*))?]
                $(#[$attr])*
                async fn splice_inline() {
                    super::super::$name(IoUring, RelayMode::SpliceInline).await;
                }

                #[tokio::test $(($($runtime)*))?]
                $(#[$attr])*
                async fn copy() {
                    super::super::$name(IoUring, RelayMode::Copy).await;
                }

                #[tokio::test $(($($runtime)*))?]
                $(#[$attr])*
                async fn auto() {
                    super::super::$name(IoUring, RelayMode::Auto).await;
                }
            }

            // The epoll driver copies whatever `relay` says: one test, given the relay it runs.
            #[tokio::test $(($($runtime)*))?]
            $(#[$attr])*
            async fn epoll() {
                use ::ringlb::config::{IoBackend::Epoll, RelayMode};
                super::$name(Epoll, RelayMode::Copy).await;
            }
        }
    };
}

pub(crate) use io_backends;
