//! A proptest strategy shared by the parser property suites (`tests/parsers_prop.rs`,
//! `tests/tls_prop.rs`): a valid input with a few bytes edited, to reach the parsers' error
//! paths near valid inputs. Included by path (`#[path]`): the suites do not need `common`.

use proptest::{collection::vec, prelude::*};

/// `base` with a few bytes replaced, inserted or removed.
pub fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let edits = vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..4);
    edits.prop_map(move |edits| {
        let mut bytes = base.clone();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        bytes
    })
}
