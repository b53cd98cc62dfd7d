//! What one connection of the io_uring driver runs with: the published worker settings in the
//! engine's form (the connect timeout as the `Timespec` the kernel reads, the attempts as a
//! count), built once per published change and shared by the connections that started under
//! it. A connection's slot holds its `Rc`, so the timespec stays put while a connect that points
//! at it is in flight.

use io_uring::types::Timespec;

use crate::conn::settings::WorkerSettings;

/// A connection's settings.
pub struct Settings {
    /// As published.
    pub base: WorkerSettings,
    /// Read by the kernel when a connect's linked timeout is submitted.
    pub connect: Timespec,
    /// Connect attempts per client: the first plus `retries`.
    pub attempts: u8,
}

impl Settings {
    /// The engine's form of `base`.
    pub fn derive(base: &WorkerSettings) -> Settings {
        Settings {
            connect: Timespec::from(base.connect_timeout),
            attempts: base.attempts() as u8,
            base: base.clone(),
        }
    }
}
