//! AFL target `tls_client_hello`: the first bytes of a client connection on a service routed by SNI (a TLS ClientHello, in arbitrary read splits).
//! The properties are `ringlb::fuzzing::tls_client_hello`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::tls_client_hello(data));
}
