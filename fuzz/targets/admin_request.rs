//! AFL target `admin_request`: a request head sent to the admin port, in arbitrary read splits.
//! The properties are `ringlb::fuzzing::admin_request`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::admin_request(data));
}
