//! Fuzzes `ringlb::proxy_protocol::parse` with arbitrary first bytes of a connection.
//!
//! Beyond "never panics", it checks the contract the worker relies on: `consumed` never passes the
//! input, the header alone parses to the same answer, one byte less of it is `Incomplete`, the
//! TLV iterator walks the whole validated area, and re-encoding the addresses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlb::proxy_protocol::{parse, Addresses, Header, ParseOutcome, Version};

fuzz_target!(|data: &[u8]| {
    let outcome = parse(data);
    match outcome {
        ParseOutcome::Incomplete { needed } => assert!(needed >= 1),
        ParseOutcome::Invalid(_) => {}
        ParseOutcome::Complete { header, consumed } => {
            assert!(consumed <= data.len());
            assert_eq!(parse(&data[..consumed]), outcome);
            assert!(matches!(
                parse(&data[..consumed - 1]),
                ParseOutcome::Incomplete { .. }
            ));
            let _ = header.tlvs().count();
            if let Addresses::Tcp { src, dst } = header.addresses {
                for version in [Version::V1, Version::V2] {
                    let encoded = Header::new(version, src, dst);
                    let ParseOutcome::Complete { header: again, .. } = parse(encoded.as_bytes())
                    else {
                        panic!("{encoded:?} does not parse");
                    };
                    let Addresses::Tcp { src: s, dst: d } = again.addresses else {
                        panic!("{encoded:?} lost its addresses");
                    };
                    assert_eq!(s.ip().to_canonical(), src.ip().to_canonical());
                    assert_eq!(d.ip().to_canonical(), dst.ip().to_canonical());
                    assert_eq!((s.port(), d.port()), (src.port(), dst.port()));
                }
            }
        }
    }
});
