//! AFL target `target_address`: a `[[targets]]` address, `host:port` or `[ipv6]:port`.
//! The properties are `ringlb::fuzzing::target_address`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::target_address(data));
}
