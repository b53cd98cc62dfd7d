//! AFL target `proxy_round_trip`: two socket addresses encoded as PROXY v1 and v2 headers and parsed back.
//! The properties are `ringlb::fuzzing::proxy_round_trip`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::proxy_round_trip(data));
}
