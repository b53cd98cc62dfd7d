//! AFL target `health_status_line`: a backend's answer to the HTTP health probe, in arbitrary read splits.
//! The properties are `ringlb::fuzzing::health_status_line`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::health_status_line(data));
}
