//! libFuzzer target `proxy_header`: the first bytes of a client connection under
//! `accept_proxy`. The properties are `ringlb::fuzzing::proxy_header`'s, shared with the AFL
//! target of the same name; see docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringlb::fuzzing::proxy_header(data));
