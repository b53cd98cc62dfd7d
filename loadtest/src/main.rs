//! The `loadtest` binary (the harness lands in the following commits).
fn main() {}
