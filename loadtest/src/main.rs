//! The ringlb load-test harness (see the README).
fn main() {}
