//! Properties of every parser a peer or a file can reach, checked with proptest, and the fuzz
//! seed corpus replayed through the same entry points.
//!
//! Owns the input *generators*: arbitrary bytes, and inputs shaped like the real thing (PROXY
//! headers, request heads, status lines, Redis replies, configuration files, addresses) with
//! arbitrary read splits. The properties themselves live in `ringlb::fuzzing`, shared with the
//! AFL targets in `fuzz/`, so a property is never written twice. Never opens a socket; every
//! case is bounded in size, so the whole file runs in seconds.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6},
    path::Path,
};

#[path = "prop/mutated.rs"]
mod mutated;

use mutated::mutated;
use proptest::{collection::vec, prelude::*, sample::select};
use ringlb::fuzzing;

/// Read lengths: mostly short, so the readers' loops turn many times.
fn splits() -> impl Strategy<Value = Vec<usize>> {
    vec(
        prop_oneof![4 => 1..5usize, 2 => 1..64usize, 1 => 1..5000usize],
        0..40,
    )
}

/// Bytes mostly from `alphabet`, sometimes anything.
fn bytes_from(alphabet: &'static [u8], len: std::ops::Range<usize>) -> BoxedStrategy<Vec<u8>> {
    vec(
        prop_oneof![3 => select(alphabet.to_vec()), 1 => any::<u8>()],
        len,
    )
    .boxed()
}

/// Any socket address, IPv4-mapped IPv6 ones included.
fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(Ipv4Addr::from(ip).into(), port)),
        (any::<u128>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
            |(ip, port, flow, scope)| {
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope))
            }
        ),
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| {
            SocketAddr::new(Ipv4Addr::from(ip).to_ipv6_mapped().into(), port)
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// PROXY protocol

/// A v1 line or v2 header, valid or nearly so, then client bytes.
fn proxy_like() -> impl Strategy<Value = Vec<u8>> {
    let v1 = (
        select(vec!["TCP4", "TCP6", "UNKNOWN", "TCP5", ""]),
        bytes_from(b"0123456789abcdefABCDEF.: ", 0..50),
        bytes_from(b"0123456789 ", 0..14),
        bytes_from(b"\r\n", 0..3),
    )
        .prop_map(|(proto, addrs, ports, end)| {
            [
                b"PROXY ",
                proto.as_bytes(),
                b" ",
                &addrs,
                b" ",
                &ports,
                &end,
            ]
            .concat()
        });
    let v2 = (
        any::<u8>(),
        select(vec![0x00u8, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32, 0x41, 0x13]),
        0..300u16,
        vec(any::<u8>(), 0..300),
    )
        .prop_map(|(command, family, len, body)| {
            let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            bytes.extend_from_slice(&[0x20 | (command & 0x3), family]);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend(body);
            bytes
        });
    let encoded = (socket_addr(), socket_addr(), any::<bool>()).prop_flat_map(|(src, dst, v2)| {
        let header = if v2 {
            ringlb::proxy_protocol::Header::v2(src, dst)
        } else {
            ringlb::proxy_protocol::Header::v1(src, dst)
        };
        mutated([header.as_bytes(), b"GET / HTTP/1.1\r\n"].concat())
    });
    prop_oneof![v1, v2, encoded]
}

proptest! {
    #[test]
    fn proxy_any_bytes(data in vec(any::<u8>(), 0..600), lengths in splits()) {
        fuzzing::proxy_header_split(&data, &lengths);
    }

    #[test]
    fn proxy_header_like_bytes(data in proxy_like(), lengths in splits()) {
        fuzzing::proxy_header_split(&data, &lengths);
    }

    #[test]
    fn proxy_round_trips(src in socket_addr(), dst in socket_addr(), tail in vec(any::<u8>(), 0..64)) {
        fuzzing::proxy_round_trip_of(src, dst, &tail);
    }

    #[test]
    fn proxy_v2_with_long_tlv_areas(len in 4000..4200u16, fill in any::<u8>(), lengths in splits()) {
        // Around the 4,112-byte cap: NOOP TLVs of `fill` bytes, whatever they tile to.
        let mut data = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&[0; 12]);
        data.extend(std::iter::repeat_n(fill, usize::from(len) - 12 + 10));
        fuzzing::proxy_header_split(&data, &lengths);
    }
}

// ---------------------------------------------------------------------------------------------
// Admin request head

/// A request head, valid or nearly so, maybe followed by more.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    (
        select(vec!["GET", "HEAD", "POST", "get", "", "G\x01T"]),
        bytes_from(b"/metricsatuhz?#=&%.", 0..30),
        select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2", "SPDY/3", ""]),
        vec(bytes_from(b"Host: 127.0.0.1:9100abc-\t", 0..40), 0..5),
        select(vec!["\r\n", "\n", "\r", ""]),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(method, target, version, headers, eol, tail)| {
            let mut head = format!("{method} ").into_bytes();
            head.extend(target);
            head.extend_from_slice(format!(" {version}").as_bytes());
            for header in headers {
                head.extend_from_slice(eol.as_bytes());
                head.extend(header);
            }
            head.extend_from_slice(eol.as_bytes());
            head.extend_from_slice(eol.as_bytes());
            head.extend(tail);
            head
        })
}

proptest! {
    #[test]
    fn admin_any_bytes(data in vec(any::<u8>(), 0..600), lengths in splits()) {
        fuzzing::admin_request_split(&data, &lengths);
    }

    #[test]
    fn admin_request_like_bytes(data in request_like().prop_flat_map(mutated), lengths in splits()) {
        fuzzing::admin_request_split(&data, &lengths);
    }

    #[test]
    fn admin_heads_near_the_cap(fill in 8100..8300usize, lengths in splits()) {
        let mut data = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        data.resize(fill, b'a');
        data.extend_from_slice(b"\r\n\r\n");
        fuzzing::admin_request_split(&data, &lengths);
    }
}

// ---------------------------------------------------------------------------------------------
// Health-check replies

/// A status line, valid or nearly so, then headers.
fn status_like() -> impl Strategy<Value = Vec<u8>> {
    (
        select(vec![
            "HTTP/1.1", "HTTP/1.0", "HTTP/1.x", "HTTP/2", "http/1.1", "HTTP/1.",
        ]),
        bytes_from(b"0123456789 ", 0..6),
        bytes_from(b"OK Service Unavailable", 0..30),
        select(vec!["\r\n", "\n", "\r", ""]),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(version, code, reason, eol, tail)| {
            [
                version.as_bytes(),
                b" ",
                &code,
                &reason,
                eol.as_bytes(),
                &tail,
            ]
            .concat()
        })
}

proptest! {
    #[test]
    fn status_any_bytes(data in vec(any::<u8>(), 0..600), lengths in splits()) {
        fuzzing::health_status_line_split(&data, &lengths);
    }

    #[test]
    fn status_like_bytes(data in status_like().prop_flat_map(mutated), lengths in splits()) {
        fuzzing::health_status_line_split(&data, &lengths);
    }

    #[test]
    fn status_lines_near_the_cap(len in 4090..4100usize, lengths in splits()) {
        let mut data = b"HTTP/1.1 200 ".to_vec();
        data.resize(len, b'x');
        data.extend_from_slice(b"\r\n");
        fuzzing::health_status_line_split(&data, &lengths);
    }

    #[test]
    fn expect_any_bytes(
        expect in vec(any::<u8>(), 1..300),
        reply in vec(any::<u8>(), 0..600),
        lengths in splits(),
    ) {
        fuzzing::tcp_expect_split(&expect, &reply, &lengths);
    }

    #[test]
    fn expect_near_matches(
        expect in bytes_from(b"+PONG\r\n-ERR", 1..1025),
        cut in any::<prop::sample::Index>(),
        extra in vec(any::<u8>(), 0..300),
        lengths in splits(),
    ) {
        // The reply is a prefix of the expectation, maybe with more after it (mutated or not).
        let mut reply = expect[..cut.index(expect.len() + 1)].to_vec();
        reply.extend(extra);
        fuzzing::tcp_expect_split(&expect, &reply, &lengths);
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and addresses

/// A TOML value a key of the schema might be given, right or wrong.
fn toml_value() -> impl Strategy<Value = String> {
    let strings = select(vec![
        "5s",
        "0s",
        "250ms",
        "25h",
        "1d",
        "24h",
        "1 minute",
        "copy",
        "splice",
        "splice-inline",
        "auto",
        "epoll",
        "io_uring",
        "v1",
        "v2",
        "off",
        "tcp",
        "http",
        "none",
        "reset",
        "close",
        "http503",
        "round_robin",
        "source_hash",
        "least_connections",
        "power_of_two",
        "/healthz",
        "healthz",
        "/a b",
        "a:1",
        "A:1",
        "[::1]:80",
        "[::0:1]:80",
        "0.0.0.0:80",
        "[::]:9100",
        "127.0.0.1:0",
        "PING\r\n",
        "+PONG",
        "",
        "é",
        "\u{0}",
    ]);
    prop_oneof![
        strings.prop_map(|s| toml::Value::String(s.to_owned()).to_string()),
        any::<String>().prop_map(|s| toml::Value::String(s).to_string()),
        prop_oneof![
            -2..70000i64,
            Just(i64::MAX),
            Just(1 << 20),
            Just((1 << 20) + 1)
        ]
        .prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("1.5".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
    ]
}

/// A configuration file made of lines of the schema's keys, tables and values, often valid.
fn config_like() -> impl Strategy<Value = String> {
    let top = select(vec![
        "listen",
        "workers",
        "pin_workers",
        "relay",
        "io_backend",
        "connect_timeout",
        "idle_timeout",
        "drain_timeout",
        "max_connections",
        "retries",
        "retry_on_early_close",
        "replay_buffer",
        "balance",
        "on_no_backend",
        "send_proxy",
        "accept_proxy",
        "unknown",
    ]);
    let target_key = select(vec![
        "health_check_endpoint",
        "weight",
        "health_check",
        "health_check_send",
        "health_check_expect",
        "health_check_port",
        "send_proxy",
        "address",
        "interval",
        "timeout",
        "rise",
        "fall",
        "enabled",
        "listen",
        "name",
        "pool",
        "sni",
    ]);
    // The services form: pools and services named from a few names (so some clash and
    // some are found), services on a few ports, routes by SNI.
    let services_form = prop_oneof![
        (0..3u16).prop_map(|i| format!(
            "[[pools]]\nname = \"p{i}\"\n[[pools.targets]]\naddress = \"host-{i}:80\""
        )),
        (0..3u16).prop_map(|i| format!("[[pools.targets]]\naddress = \"host-{i}:81\"")),
        (0..3u16, 0..3u16).prop_map(|(i, p)| format!(
            "[[services]]\nname = \"s{i}\"\nlisten = \"127.0.0.1:{i}\"\npool = \"p{p}\""
        )),
        (
            0..3u16,
            select(vec!["a.example", "*.example", "*", "A.EXAMPLE"])
        )
            .prop_map(|(p, sni)| format!(
                "[[services.routes]]\nsni = [\"{sni}\"]\npool = \"p{p}\""
            )),
        select(vec!["[pools.health_check]", "[[pools]]", "[[services]]"]).prop_map(str::to_owned),
    ];
    let line = prop_oneof![
        3 => (top, toml_value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => select(vec!["[health_check]", "[admin]", "[targets]"]).prop_map(str::to_owned),
        2 => (0..4u16).prop_map(|i| format!("[[targets]]\naddress = \"host-{i}:80{i}\"")),
        3 => (target_key, toml_value()).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => services_form,
    ];
    (vec(line, 0..14), any::<bool>()).prop_map(|(lines, seeded)| {
        let start = if seeded {
            "[[targets]]\naddress = \"a:1\"\n"
        } else {
            ""
        };
        // Top-level keys only count before the first table; put them there sometimes.
        format!("{start}{}\n", lines.join("\n"))
    })
}

/// A `host:port` or `[ip]:port`, right or wrong.
fn address_like() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-zA-Z0-9._-]{0,20}",
        any::<Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
        any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        "[\\[\\]:a-f0-9% ]{0,12}",
    ];
    let port = prop_oneof![
        "[0-9]{0,6}",
        any::<u16>().prop_map(|p| p.to_string()),
        "[+ a-z-]{0,3}"
    ];
    (host, select(vec![":", "", "::", "]:"]), port).prop_map(|(h, sep, p)| format!("{h}{sep}{p}"))
}

proptest! {
    #[test]
    fn config_any_text(text in any::<String>()) {
        fuzzing::config_text(&text);
    }

    #[test]
    fn config_like_text(text in config_like()) {
        fuzzing::config_text(&text);
    }

    #[test]
    fn config_shipped_files_mutated(
        data in prop_oneof![
            Just(include_bytes!("../config/example.toml").to_vec()),
            Just(include_bytes!("../config/ringlb.toml").to_vec()),
            Just(include_bytes!("../fuzz/corpus/config/services.toml").to_vec()),
        ].prop_flat_map(mutated)
    ) {
        fuzzing::config(&data);
    }

    #[test]
    fn address_any_text(text in any::<String>()) {
        fuzzing::target_address_text(&text);
    }

    #[test]
    fn address_like_text(text in address_like()) {
        fuzzing::target_address_text(&text);
    }

    #[test]
    fn address_display_round_trips(addr in socket_addr()) {
        fuzzing::socket_addr_round_trip(addr);
    }
}

// ---------------------------------------------------------------------------------------------
// The seed corpus, without AFL

/// Every fuzz target has seeds under `fuzz/corpus/<target>/`, and every seed passes its target:
/// the corpus is exercised by plain `cargo test`, and a crash AFL finds, once copied there,
/// stays a regression test.
#[test]
fn seed_corpus_passes_every_target() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    for (name, target) in fuzzing::TARGETS {
        let dir = corpus.join(name);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .filter(|path| path.is_file())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seed for {name} in {}", dir.display());
        for seed in &seeds {
            let data = std::fs::read(seed).expect("read seed");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", seed.display());
        }
        total += seeds.len();
    }
    assert!(total >= 3 * fuzzing::TARGETS.len(), "only {total} seeds");
}
