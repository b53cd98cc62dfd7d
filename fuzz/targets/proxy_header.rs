//! AFL target `proxy_header`: the first bytes of a client connection under `accept_proxy` (PROXY v1/v2 header, in arbitrary read splits).
//! The properties are `ringlb::fuzzing::proxy_header`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::proxy_header(data));
}
