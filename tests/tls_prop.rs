//! Properties of SNI routing's two parts, checked with proptest: the ClientHello parser
//! (`ringlb::tls::parse`) and the route table (`ringlb::tls::SniRoutes`).
//!
//! Owns the generators: arbitrary bytes, real-shaped ClientHellos (random server name in random
//! case, random other extensions in random order, random record fragmentation, random read
//! splits), mutated hellos, hellos around the 16 KiB cap, and random route tables. The parser's
//! properties live in `ringlb::fuzzing`, shared with the AFL targets; the route table's model
//! is written here. Never opens a socket; every case is small, so the file runs in seconds.
//! The seed corpus of the two `tls_*` fuzz targets is replayed by `tests/parsers_prop.rs`.

#[path = "prop/mutated.rs"]
mod mutated;

use mutated::mutated;
use proptest::{collection::vec, prelude::*, sample::select};
use ringlb::{
    fuzzing,
    tls::{parse, HelloOutcome, SniRoutes, MAX_HELLO},
};

/// Read lengths: mostly short, so the read loop turns many times.
fn splits() -> impl Strategy<Value = Vec<usize>> {
    vec(
        prop_oneof![4 => 1..5usize, 2 => 1..64usize, 1 => 1..5000usize],
        0..40,
    )
}

/// Record payload sizes: from one byte each to whole-message records.
fn fragments() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(Vec::new()),
        vec(1..8usize, 1..200),
        vec(1..400usize, 1..8),
    ]
}

/// A label of a DNS name in mixed case.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?",
        1 => "[a-z0-9-]{1,63}",
    ]
}

/// A valid DNS name: one to six labels, at most 253 bytes.
fn dns_name() -> impl Strategy<Value = String> {
    vec(label(), 1..6).prop_map(|labels| {
        let mut name = labels.join(".");
        name.truncate(253);
        name.trim_end_matches('.').to_owned()
    })
}

/// Extensions a real client sends besides `server_name`: ALPN, key share, ECH, padding,
/// GREASE, and random ones.
fn other_extensions() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
    let kind = prop_oneof![
        select(vec![
            10u16, 11, 13, 16, 21, 23, 35, 43, 45, 51, 0xfe0d, 0x0a0a, 0xff01
        ]),
        1..u16::MAX,
    ];
    vec((kind, vec(any::<u8>(), 0..120)), 0..10)
}

/// A whole valid ClientHello in records, and the name it carries.
fn hello() -> impl Strategy<Value = (Vec<u8>, String)> {
    (dns_name(), other_extensions(), any::<usize>(), fragments()).prop_map(
        |(name, mut extensions, at, fragments)| {
            extensions.retain(|(kind, _)| *kind != 0);
            let sni = fuzzing::server_name_extension(&[(0, name.as_bytes())]);
            extensions.insert(at % (extensions.len() + 1), (0, sni));
            let message = fuzzing::client_hello_message(Some(&extensions));
            (fuzzing::in_records(&message, &fragments), name)
        },
    )
}

proptest! {
    #[test]
    fn hello_any_bytes(data in vec(any::<u8>(), 0..600), lengths in splits()) {
        fuzzing::tls_client_hello_split(&data, &lengths);
    }

    #[test]
    fn hello_tls_looking_bytes(tail in vec(any::<u8>(), 0..300), lengths in splits()) {
        // Past the first record header, so the parse goes deeper than "not TLS".
        let data = [&b"\x16\x03\x01\x01\x00\x01\x00\x00\xfc\x03\x03"[..], &tail].concat();
        fuzzing::tls_client_hello_split(&data, &lengths);
    }

    #[test]
    fn valid_hellos_give_their_name((data, name) in hello(), lengths in splits()) {
        let want = name.to_ascii_lowercase();
        match parse(&data) {
            HelloOutcome::Complete { sni: Some(found) } => prop_assert_eq!(found.as_str(), want),
            other => prop_assert!(false, "{:?} for {}", other, name),
        }
        fuzzing::tls_client_hello_split(&data, &lengths);
    }

    #[test]
    fn round_trips_with_any_name(
        name in prop_oneof![dns_name().prop_map(String::into_bytes), vec(any::<u8>(), 0..80)],
        others in other_extensions(),
        at in any::<usize>(),
        fragments in fragments(),
        lengths in splits(),
    ) {
        fuzzing::tls_sni_round_trip_of(&name, &others, at, &fragments, &lengths);
    }

    #[test]
    fn mutated_hellos(data in hello().prop_flat_map(|(data, _)| mutated(data)), lengths in splits()) {
        fuzzing::tls_client_hello_split(&data, &lengths);
    }

    #[test]
    fn hellos_around_the_cap(
        pad in (MAX_HELLO - 400)..(MAX_HELLO + 100),
        fragments in prop_oneof![Just(Vec::new()), vec(1000..4000usize, 1..8)],
        lengths in splits(),
    ) {
        let others = vec![(21, vec![0; pad - 100])];
        fuzzing::tls_sni_round_trip_of(b"edge.example.com", &others, 0, &fragments, &lengths);
    }
}

// ---------------------------------------------------------------------------------------------
// The route table

/// A pattern: a name built from a few labels, or a wildcard over one, in random case.
fn pattern() -> impl Strategy<Value = String> {
    let labels = vec(
        select(vec!["a", "B", "api", "Internal", "example", "com"]),
        1..4,
    );
    (labels, any::<bool>()).prop_map(|(labels, wildcard)| {
        let name = labels.join(".");
        if wildcard {
            format!("*.{name}")
        } else {
            name
        }
    })
}

/// What a lookup should give, written plainly: the first route with an exact pattern equal to
/// `name` ignoring case; else one whose wildcard suffix equals `name` less its first label.
fn model(routes: &[Vec<String>], name: &str) -> Option<usize> {
    let exact = routes
        .iter()
        .position(|patterns| patterns.iter().any(|p| p.eq_ignore_ascii_case(name)));
    if exact.is_some() {
        return exact;
    }
    let (first, rest) = name.split_once('.')?;
    if first.is_empty() {
        return None;
    }
    routes.iter().position(|patterns| {
        patterns.iter().any(|p| {
            p.strip_prefix("*.")
                .is_some_and(|s| s.eq_ignore_ascii_case(rest))
        })
    })
}

proptest! {
    #[test]
    fn routes_match_the_model(
        routes in vec(vec(pattern(), 1..4), 1..6),
        names in vec(vec(select(vec!["a", "b", "API", "internal", "Example", "com", "x"]), 1..5), 1..20),
    ) {
        let table = SniRoutes::new(routes.iter().cloned().enumerate().map(|(i, p)| (p, i)));
        let mut seen = std::collections::HashSet::new();
        let duplicate = routes.iter().flatten().any(|p| !seen.insert(p.to_ascii_lowercase()));
        prop_assert_eq!(table.is_err(), duplicate, "{:?}", table.as_ref().err());
        let Ok(table) = table else { return Ok(()) };
        for labels in names {
            let name = labels.join(".");
            prop_assert_eq!(table.route_of(&name), model(&routes, &name), "{}", name);
            prop_assert_eq!(table.lookup(&name).copied(), model(&routes, &name));
        }
    }
}
