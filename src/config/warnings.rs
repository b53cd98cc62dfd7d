//! What a configuration allows but probably does not mean: one sentence per finding, which the
//! binary logs as a warning at start and on `--check` (on stderr), and the server on reload.
//!
//! Owns the list of such findings. Never rejects a configuration (that is `validate.rs`'s) and
//! never does I/O.

use super::{local, Config};

impl Config {
    /// What is valid but probably not meant, one sentence each: a `source` family that no
    /// target can use (`local.rs`), and a pool that no service sends connections to (it is
    /// health-checked all the same).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = local::source_warnings(self);
        warnings.extend(
            self.unused_pools()
                .into_iter()
                .map(|pool| format!("pool {pool:?} is used by no service")),
        );
        warnings
    }
}
