//! AFL target `tls_sni_round_trip`: a ClientHello built from the input (server name, extension order, record sizes) parsed back.
//! The properties are `ringlb::fuzzing::tls_sni_round_trip`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::tls_sni_round_trip(data));
}
