//! AFL target `tcp_expect`: a backend's reply to the TCP check, judged against a `health_check_expect`.
//! The properties are `ringlb::fuzzing::tcp_expect`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::tcp_expect(data));
}
