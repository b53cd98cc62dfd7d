//! AFL target `config`: the text of a configuration file.
//! The properties are `ringlb::fuzzing::config`'s; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| ringlb::fuzzing::config(data));
}
