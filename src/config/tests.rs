//! Unit tests of loading, validating and printing configurations.

use std::time::Duration;

use super::{address::parse_target_address, validate::FILE_KEY, *};

const SEED: &str = include_str!("../../config/ringlb.toml");
const EXAMPLE: &str = include_str!("../../config/example.toml");
/// A valid target, appended to documents that test other keys.
const TARGET: &str = "[[targets]]\naddress = \"a:1\"\nhealth_check_endpoint = \"/h\"\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

/// The key and message of a rejected document.
fn rejected(text: &str) -> (String, String) {
    match parse(text) {
        Err(ConfigError::Invalid { path, key, message }) => {
            assert_eq!(path, Path::new("test.toml"));
            (key, message)
        }
        other => panic!("expected Invalid for {text:?}, got {other:?}"),
    }
}

fn assert_rejected(text: &str, key: &str, needles: &[&str]) {
    let (got_key, message) = rejected(text);
    assert_eq!(got_key, key, "key for {text:?} ({message})");
    for needle in needles {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    assert!(
        message.contains("expected"),
        "{message:?} says nothing expected"
    );
}

fn target(host: &str, port: u16) -> Target {
    Target::http(host, port, "/healthz")
}

/// A TOML basic string, escaped.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[test]
fn seed_loads_with_all_defaults() {
    let config = parse(SEED).unwrap();
    assert_eq!(
        config,
        Config {
            source: "test.toml".into(),
            startup: Startup {
                listen: "0.0.0.0:80".parse().unwrap(),
                defer_accept: None,
                workers: 0,
                pin_workers: false,
                relay: RelayMode::Auto,
                io_backend: IoBackend::Auto,
                admin: Admin {
                    enabled: true,
                    listen: "127.0.0.1:9100".parse().unwrap(),
                    token_file: None,
                },
                pid_file: None,
                source: Vec::new(),
            },
            live: Live {
                balance: Strategy::RoundRobin,
                send_proxy: SendProxy::Off,
                health_check: HealthCheck {
                    interval: Duration::from_secs(5),
                    timeout: Duration::from_secs(1),
                    rise: 1,
                    fall: 1,
                },
                targets: vec![target("http-api-1", 8001), target("http-api-2", 8001)],
                traffic: Traffic {
                    connect_timeout: Duration::from_secs(3),
                    idle_timeout: Duration::from_secs(300),
                    drain_timeout: Duration::from_secs(30),
                    max_connections: 10_000,
                    retries: 2,
                    retry_on_early_close: false,
                    replay_buffer: 16384,
                    on_no_backend: OnNoBackend::Http503,
                    accept_proxy: false,
                    passive_fall: 3,
                },
                access_log: AccessLog {
                    path: LogPath::Off,
                    format: LogFormat::Json,
                },
                pools: Vec::new(),
                services: Vec::new(),
            },
        }
    );
    assert_eq!(
        Config {
            source: "test.toml".into(),
            ..Config::new(config.live.targets.clone())
        },
        config,
        "Config::new has the file's defaults"
    );
}

#[test]
fn example_spells_out_the_defaults() {
    assert_eq!(parse(EXAMPLE).unwrap(), parse(SEED).unwrap());
}

#[test]
fn every_key_is_read() {
    let text = format!(
        "listen = \"[::]:8080\"\nworkers = 4\npin_workers = true\nrelay = \"copy\"\n\
         connect_timeout = \"250ms\"\nidle_timeout = \"10s\"\ndrain_timeout = \"2s\"\n\
         max_connections = 7\nretries = 0\n\
         [health_check]\ninterval = \"250ms\"\ntimeout = \"1m 30s\"\nrise = 2\nfall = 3\n\
         {TARGET}[[targets]]\naddress = \"[::1]:8001\"\nhealth_check_endpoint = \"/a?b=\\\"c\\\"\"\n"
    );
    let Config { startup, live, .. } = parse(&text).unwrap();
    assert_eq!(startup.listen, "[::]:8080".parse().unwrap());
    assert_eq!((startup.workers, startup.pin_workers), (4, true));
    assert_eq!(startup.relay, RelayMode::Copy);
    let traffic = &live.traffic;
    assert_eq!(traffic.connect_timeout, Duration::from_millis(250));
    assert_eq!(traffic.idle_timeout, Duration::from_secs(10));
    assert_eq!(traffic.drain_timeout, Duration::from_secs(2));
    assert_eq!((traffic.max_connections, traffic.retries), (7, 0));
    let hc = &live.health_check;
    assert_eq!(hc.interval, Duration::from_millis(250));
    assert_eq!(hc.timeout, Duration::from_secs(90));
    assert_eq!((hc.rise, hc.fall), (2, 3));
    assert_eq!(live.targets[1].address.host, "::1");
    assert_eq!(live.targets[1].health_check_endpoint, "/a?b=\"c\"");
}

#[test]
fn relay_names_round_trip() {
    for mode in RelayMode::ALL {
        let text = format!("relay = \"{}\"\n{TARGET}", mode.as_str());
        assert_eq!(parse(&text).unwrap().startup.relay, mode);
    }
}

#[test]
fn display_round_trips() {
    let text = format!(
        "listen = \"[::1]:9000\"\nworkers = 3\nrelay = \"splice\"\n\
         [health_check]\ninterval = \"1m 1ms\"\ntimeout = \"1500ms\"\nfall = 7\n\
         {TARGET}[[targets]]\naddress = \"[fe80::1]:8001\"\n\
         health_check_endpoint = \"/q\\\\x\\\"y\"\n"
    );
    for text in [SEED, EXAMPLE, &text] {
        let config = parse(text).unwrap();
        let shown = config.to_string();
        assert_eq!(parse(&shown).unwrap(), config, "{shown}");
    }
}

#[test]
fn display_spells_out_defaults() {
    let shown = parse(SEED).unwrap().to_string();
    for line in [
        "listen = \"0.0.0.0:80\"",
        "workers = 0",
        "pin_workers = false",
        "relay = \"auto\"",
        "connect_timeout = \"3s\"",
        "idle_timeout = \"5m\"",
        "drain_timeout = \"30s\"",
        "max_connections = 10000",
        "retries = 2",
        "balance = \"round_robin\"",
        "retry_on_early_close = false",
        "replay_buffer = 16384",
        "weight = 1",
        "interval = \"5s\"",
        "timeout = \"1s\"",
        "rise = 1",
        "fall = 1",
        "address = \"http-api-1:8001\"",
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "{line:?} missing in:\n{shown}"
        );
    }
}

#[test]
fn unknown_keys_name_the_table_and_the_key() {
    assert_rejected(
        &format!("lissen = 1\n{TARGET}"),
        FILE_KEY,
        &["`lissen`", "`listen`"],
    );
    assert_rejected(
        &format!("[health_check]\nintervall = \"1s\"\n{TARGET}"),
        "health_check",
        &["`intervall`", "`interval`"],
    );
    assert_rejected(
        &format!("{TARGET}[[targets]]\nadress = \"b:1\"\n"),
        "targets[1]",
        &["`adress`", "`address`", "`health_check_endpoint`"],
    );
}

#[test]
fn an_unknown_key_is_the_tables_wherever_it_stands() {
    assert_rejected(
        &format!("[health_check]\ninterval = \"1s\"\nrise = 2\nintervall = \"1s\"\n{TARGET}"),
        "health_check",
        &["`intervall`", "`passive_fall`"],
    );
    assert_rejected(
        &format!("{TARGET}weight = 2\nadress = \"b:1\"\n"),
        "targets[0]",
        &["`adress`", "`weight`"],
    );
    assert_rejected(
        &format!("listen = \"0.0.0.0:80\"\nlissen = 1\n{TARGET}"),
        FILE_KEY,
        &["`lissen`"],
    );
}

#[test]
fn date_times_and_huge_integers_are_named_at_their_key() {
    let cases = [
        (
            "workers = 1979-05-27T07:32:00Z",
            "workers",
            "the date-time 1979-05-27T07:32:00Z",
        ),
        (
            "health_check = 07:32:00",
            "health_check",
            "the date-time 07:32:00 is not a table",
        ),
        (
            "workers = 99999999999999999999",
            "workers",
            "99999999999999999999 is too large",
        ),
        ("retries = -99999999999999999999", "retries", "is too small"),
    ];
    for (line, key, problem) in cases {
        assert_rejected(&format!("{line}\n{TARGET}"), key, &[problem]);
    }
    assert_rejected(
        "targets = 1979-05-27",
        "targets",
        &["the date-time 1979-05-27 is not an array of tables"],
    );
}

#[test]
fn targets_must_be_present() {
    assert_rejected("", "targets", &["missing"]);
    assert_rejected("targets = []", "targets", &["empty"]);
    assert_rejected("[targets]\naddress = \"a:1\"", "targets", &["[[targets]]"]);
    assert_rejected("targets = 1", "targets", &["integer 1"]);
    assert_rejected("targets = [1]", "targets[0]", &["integer 1", "table"]);
    assert_rejected(
        "[[targets]]\nhealth_check_endpoint = \"/\"",
        "targets[0].address",
        &["missing"],
    );
}

#[test]
fn bad_addresses_are_explained() {
    let cases = [
        ("http-api-1", "\"http-api-1\" has no port"),
        ("a:", "no port"),
        ("a:0", "port 0"),
        ("a:65536", "65536"),
        ("a:99999999999999999999", "above 65535"),
        ("a:8x", "not a number"),
        ("a:-1", "not a number"),
        (":80", "empty host"),
        ("[]:80", "empty host"),
        ("[::1", "without a closing"),
        ("[::1]", "no port"),
        ("[::1]80", "after ']'"),
        ("[x]:80", "not an IPv6 address"),
        ("a]:80", "stray"),
        ("a[:80", "stray"),
        ("::1:80", "without brackets"),
        ("a b:80", "whitespace"),
        (" a:80", "whitespace"),
        ("a:80\n", "whitespace"),
        ("a/b:80", "not a host name character"),
    ];
    for (address, problem) in cases {
        let text = format!(
            "[[targets]]\naddress = {}\nhealth_check_endpoint = \"/\"",
            quoted(address)
        );
        assert_rejected(&text, "targets[0].address", &[problem, "host:port"]);
    }
    let text = "[[targets]]\naddress = 8001\nhealth_check_endpoint = \"/\"";
    assert_rejected(
        text,
        "targets[0].address",
        &["integer 8001", "not a string"],
    );
}

#[test]
fn addresses_are_split_not_resolved() {
    for (text, host, port) in [
        ("http-api-1:8001", "http-api-1", 8001),
        ("no-such-host.invalid:1", "no-such-host.invalid", 1),
        ("10.0.0.1:65535", "10.0.0.1", 65535),
        ("[::1]:8001", "::1", 8001),
        ("[2001:db8::7]:443", "2001:db8::7", 443),
    ] {
        let address = parse_target_address(text).unwrap();
        assert_eq!((address.host.as_str(), address.port), (host, port));
        assert_eq!(address.to_string(), text);
    }
}

#[test]
fn duplicate_targets_are_rejected() {
    assert_rejected(
        &format!("{TARGET}{TARGET}"),
        "targets[1].address",
        &["targets[0]"],
    );
    let upper = TARGET.replace("a:1", "A:1");
    assert_rejected(
        &format!("{TARGET}{upper}"),
        "targets[1].address",
        &["same target"],
    );
    let long = TARGET.replace("a:1", "[0:0::1]:1");
    let short = TARGET.replace("a:1", "[::1]:1");
    assert_rejected(
        &format!("{long}{short}"),
        "targets[1].address",
        &["same target"],
    );
    let other_port = TARGET.replace("a:1", "a:2");
    assert!(parse(&format!("{TARGET}{other_port}")).is_ok());
}

#[test]
fn bad_endpoints_are_explained() {
    for (endpoint, problem) in [
        ("healthz", "start with '/'"),
        ("", "start with '/'"),
        ("/health z", "whitespace"),
        ("/health\r\n", "whitespace or control"),
        ("/\u{7f}", "control"),
        ("/é", "non-ASCII"),
    ] {
        let text = format!(
            "[[targets]]\naddress = \"a:1\"\nhealth_check_endpoint = {}",
            quoted(endpoint)
        );
        assert_rejected(
            &text,
            "targets[0].health_check_endpoint",
            &[problem, "/healthz"],
        );
    }
}

#[test]
fn bad_durations_are_explained() {
    let keys = [
        ("[health_check]\ninterval", "health_check.interval"),
        ("[health_check]\ntimeout", "health_check.timeout"),
        ("connect_timeout", "connect_timeout"),
        ("idle_timeout", "idle_timeout"),
        ("drain_timeout", "drain_timeout"),
    ];
    for (key, full_key) in keys {
        for (value, problem) in [
            ("\"0s\"", "is zero"),
            ("\"0ms\"", "is zero"),
            ("\"5\"", "not a duration"),
            ("\"soon\"", "not a duration"),
            ("\"\"", "not a duration"),
            ("\"-5s\"", "not a duration"),
            ("\"99999999999999999999s\"", "not a duration"),
            ("\"2d\"", "longer than one day"),
            ("5", "integer 5"),
        ] {
            let text = format!("{key} = {value}\n{TARGET}");
            assert_rejected(&text, full_key, &[problem, "\"5s\""]);
        }
    }
    let text = format!("[health_check]\ninterval = \"1s\"\ntimeout = \"10s\"\n{TARGET}");
    assert!(
        parse(&text).is_ok(),
        "a timeout above the interval is allowed"
    );
}

#[test]
fn bad_counts_are_explained() {
    for key in ["rise", "fall"] {
        for (value, problem) in [
            ("0", "0 is too small"),
            ("-1", "-1 is too small"),
            ("4294967296", "too large"),
            ("\"2\"", "string \"2\""),
            ("1.5", "float 1.5"),
        ] {
            let text = format!("[health_check]\n{key} = {value}\n{TARGET}");
            let full_key = format!("health_check.{key}");
            assert_rejected(&text, &full_key, &[problem, "at least 1"]);
        }
    }
    assert_rejected(
        &format!("max_connections = 0\n{TARGET}"),
        "max_connections",
        &["too small"],
    );
    assert_rejected(
        &format!("retries = -1\n{TARGET}"),
        "retries",
        &["too small"],
    );
    assert_rejected(
        &format!("retries = \"2\"\n{TARGET}"),
        "retries",
        &["string"],
    );
}

#[test]
fn bad_top_level_values_are_explained() {
    let cases = [
        (
            "listen = \"localhost:80\"",
            "listen",
            "not an IP address and port",
        ),
        (
            "listen = \"0.0.0.0\"",
            "listen",
            "not an IP address and port",
        ),
        (
            "listen = \"0.0.0.0:99999\"",
            "listen",
            "not an IP address and port",
        ),
        ("listen = 80", "listen", "integer 80"),
        ("workers = -1", "workers", "-1 is too small"),
        ("workers = \"four\"", "workers", "string \"four\""),
        ("pin_workers = \"yes\"", "pin_workers", "string \"yes\""),
        ("pin_workers = 1", "pin_workers", "integer 1"),
        ("relay = \"fast\"", "relay", "\"splice-inline\""),
        ("relay = true", "relay", "boolean true"),
        ("health_check = 5", "health_check", "integer 5"),
    ];
    for (line, key, problem) in cases {
        assert_rejected(&format!("{line}\n{TARGET}"), key, &[problem]);
    }
    assert_rejected(
        "targets = 1979-05-27",
        "targets",
        &["the date-time 1979-05-27 is not an array of tables"],
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    assert_rejected(
        "a = 1\na = 2\n",
        FILE_KEY,
        &["line 2, column 1", "duplicate key"],
    );
    assert_rejected("listen = 0.0.0.0:80\n", FILE_KEY, &["line 1"]);
    assert_rejected("[[targets]\n", FILE_KEY, &["line 1"]);
    // Columns count characters, not bytes.
    assert_rejected("x = \"é\" y\n", FILE_KEY, &["line 1, column 9"]);
}

#[test]
fn never_panics_on_truncated_or_odd_input() {
    for end in (0..=EXAMPLE.len()).filter(|&i| EXAMPLE.is_char_boundary(i)) {
        let _ = parse(&EXAMPLE[..end]);
    }
    for text in [
        "\0",
        "\u{feff}",
        "=",
        "[",
        "[[",
        "targets = [[]]",
        "targets = [{}]",
    ] {
        let _ = parse(text);
    }
}

#[test]
fn source_is_the_given_path() {
    let config = Config::parse(SEED, Path::new("/etc/ringlb/ringlb.toml")).unwrap();
    assert_eq!(config.source, Path::new("/etc/ringlb/ringlb.toml"));
}

#[test]
fn missing_file_names_the_path() {
    let path = Path::new("/nonexistent/ringlb.toml");
    let error = Config::load(path).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/ringlb.toml"));
}

#[test]
fn balance_and_weights_are_read_and_checked() {
    let text = "balance = \"least_connections\"\n[[targets]]\naddress = \"a:1\"\n\
                health_check_endpoint = \"/\"\nweight = 3\n[[targets]]\naddress = \"b:1\"\n\
                health_check_endpoint = \"/\"\nweight = 0\n";
    let config = parse(text).unwrap();
    assert_eq!(config.live.balance, Strategy::LeastConnections);
    assert_eq!(
        config
            .live
            .targets
            .iter()
            .map(|t| t.weight)
            .collect::<Vec<_>>(),
        [3, 0]
    );
    assert_rejected(
        &format!("balance = \"random\"\n{TARGET}"),
        "balance",
        &["\"random\"", "least_connections"],
    );
    let negative = format!("{TARGET}weight = -1\n");
    assert_rejected(&negative, "targets[0].weight", &["too small"]);
    let all_zero = format!("{TARGET}weight = 0\n");
    assert_rejected(&all_zero, "targets", &["weight 0"]);
}

#[test]
fn replay_keys_are_read_and_checked() {
    let config = parse(&format!(
        "retry_on_early_close = true\nreplay_buffer = 4096\n{TARGET}"
    ))
    .unwrap();
    assert!(config.live.traffic.retry_on_early_close);
    assert_eq!(config.live.traffic.replay_buffer, 4096);
    for (value, problem) in [
        ("0", "too small"),
        ("1048577", "too large"),
        ("\"16k\"", "string"),
    ] {
        assert_rejected(
            &format!("replay_buffer = {value}\n{TARGET}"),
            "replay_buffer",
            &[problem],
        );
    }
    assert_rejected(
        &format!("retry_on_early_close = 1\n{TARGET}"),
        "retry_on_early_close",
        &["not a boolean"],
    );
}

#[test]
fn admin_is_read_checked_and_shown() {
    let defaults = parse(TARGET).unwrap().startup.admin;
    assert!(defaults.enabled);
    assert_eq!(defaults.listen, "127.0.0.1:9100".parse().unwrap());
    assert!(
        defaults.listen.ip().is_loopback(),
        "nothing exposed by default"
    );

    let text = format!("[admin]\nenabled = false\nlisten = \"[::]:9200\"\n{TARGET}");
    let config = parse(&text).unwrap();
    let expected = Admin {
        enabled: false,
        listen: "[::]:9200".parse().unwrap(),
        token_file: None,
    };
    assert_eq!(config.startup.admin, expected);
    let shown = config.to_string();
    assert!(
        shown.contains("\n[admin]\nenabled = false\nlisten = \"[::]:9200\"\n"),
        "{shown}"
    );
    assert_eq!(parse(&shown).unwrap(), config, "{shown}");

    let with_token = parse(&format!(
        "[admin]\ntoken_file = \"/etc/ringlb/admin.token\"\n{TARGET}"
    ))
    .unwrap();
    assert_eq!(
        with_token.startup.admin.token_file.as_deref(),
        Some(Path::new("/etc/ringlb/admin.token"))
    );
    let shown = with_token.to_string();
    assert!(
        shown.contains("\ntoken_file = \"/etc/ringlb/admin.token\"\n"),
        "{shown}"
    );
    assert_eq!(parse(&shown).unwrap(), with_token, "{shown}");
    assert!(
        !parse(TARGET).unwrap().to_string().contains("token_file"),
        "no token file, no key shown"
    );
    assert_rejected(
        &format!("[admin]\ntoken_file = \"\"\n{TARGET}"),
        "admin.token_file",
        &["\"\" is not a path"],
    );
    assert_rejected(
        &format!("[admin]\ntoken_file = 7\n{TARGET}"),
        "admin.token_file",
        &["not a string"],
    );

    let only_listen = parse(&format!("[admin]\nlisten = \"0.0.0.0:9100\"\n{TARGET}")).unwrap();
    assert!(only_listen.startup.admin.enabled);

    assert_rejected(
        &format!("[admin]\nlisten = \"localhost:9100\"\n{TARGET}"),
        "admin.listen",
        &["\"localhost:9100\" is not an IP address and port"],
    );
    assert_rejected(
        &format!("[admin]\nlisten = 9100\n{TARGET}"),
        "admin.listen",
        &["the integer 9100 is not a string"],
    );
    assert_rejected(
        &format!("[admin]\nenabled = \"yes\"\n{TARGET}"),
        "admin.enabled",
        &["the string \"yes\" is not a boolean"],
    );
    assert_rejected(
        &format!("admin = true\n{TARGET}"),
        "admin",
        &["the boolean true is not a table"],
    );
    let (key, message) = rejected(&format!("[admin]\nport = 9100\n{TARGET}"));
    assert_eq!(key, "admin");
    assert!(message.contains("port"), "{message}");
}

#[test]
fn io_backend_is_read_printed_and_checked() {
    assert_eq!(parse(SEED).unwrap().startup.io_backend, IoBackend::Auto);
    let shown = parse(SEED).unwrap().to_string();
    assert!(
        shown.lines().any(|l| l == "io_backend = \"auto\""),
        "default missing in:\n{shown}"
    );
    for backend in IoBackend::ALL {
        let text = format!("io_backend = \"{backend}\"\n{TARGET}");
        let config = parse(&text).unwrap();
        assert_eq!(config.startup.io_backend, backend);
        assert_eq!(parse(&config.to_string()).unwrap(), config);
    }
    assert_rejected(
        &format!("io_backend = \"uring\"\n{TARGET}"),
        "io_backend",
        &[
            "\"uring\" is not an I/O backend",
            "\"auto\", \"io_uring\", \"epoll\"",
        ],
    );
    assert_rejected(
        &format!("io_backend = 1\n{TARGET}"),
        "io_backend",
        &["integer 1"],
    );
}

#[test]
fn the_health_check_kind_follows_the_endpoint_unless_given() {
    let config = parse(&format!("{TARGET}[[targets]]\naddress = \"b:1\"\n")).unwrap();
    assert_eq!(config.live.targets[0].health_check, HealthCheckKind::Http);
    assert_eq!(config.live.targets[1].health_check, HealthCheckKind::Tcp);
    assert_eq!(config.live.targets[1].health_check_endpoint, "");
    let text = "[[targets]]\naddress = \"a:6379\"\nhealth_check = \"tcp\"\n\
                health_check_send = \"PING\\r\\n\"\nhealth_check_expect = \"+PONG\"\n\
                health_check_port = 9000\n[[targets]]\naddress = \"b:1\"\n\
                health_check = \"none\"\n";
    let config = parse(text).unwrap();
    let redis = &config.live.targets[0];
    assert_eq!(redis.health_check, HealthCheckKind::Tcp);
    assert_eq!(redis.health_check_send.as_deref(), Some("PING\r\n"));
    assert_eq!(redis.health_check_expect.as_deref(), Some("+PONG"));
    assert_eq!(redis.health_check_port, Some(9000));
    assert_eq!(config.live.targets[1].health_check, HealthCheckKind::None);
    let http_port = format!("{TARGET}health_check_port = 8080\n");
    assert_eq!(
        parse(&http_port).unwrap().live.targets[0].health_check_port,
        Some(8080)
    );
}

#[test]
fn contradicting_health_check_keys_name_the_target_and_the_key() {
    let cases = [
        (
            "health_check_endpoint = \"/h\"\nhealth_check_send = \"PING\"",
            "targets[0].health_check_send",
            "health_check is \"http\" (the default when health_check_endpoint is set)",
        ),
        (
            "health_check = \"http\"\nhealth_check_endpoint = \"/h\"\nhealth_check_expect = \"x\"",
            "targets[0].health_check_expect",
            "only used by health_check = \"tcp\"",
        ),
        (
            "health_check = \"tcp\"\nhealth_check_endpoint = \"/h\"",
            "targets[0].health_check_endpoint",
            "only used by health_check = \"http\", but this target's health_check is \"tcp\"",
        ),
        (
            "health_check = \"none\"\nhealth_check_port = 1",
            "targets[0].health_check_port",
            "\"none\", which never probes",
        ),
        (
            "health_check = \"none\"\nhealth_check_endpoint = \"/h\"",
            "targets[0].health_check_endpoint",
            "\"none\"",
        ),
        (
            "health_check = \"http\"",
            "targets[0].health_check_endpoint",
            "missing, but health_check = \"http\" requests it",
        ),
    ];
    for (keys, key, problem) in cases {
        let text = format!("[[targets]]\naddress = \"a:1\"\n{keys}\n");
        assert_rejected(&text, key, &[problem]);
    }
}

#[test]
fn bad_l4_values_are_explained() {
    let target = |keys: &str| format!("[[targets]]\naddress = \"a:1\"\n{keys}\n");
    let cases = [
        (
            target("health_check = \"udp\""),
            "targets[0].health_check",
            "\"tcp\", \"none\"",
        ),
        (
            target("health_check = 1"),
            "targets[0].health_check",
            "integer 1",
        ),
        (
            target("health_check_send = \"\""),
            "targets[0].health_check_send",
            "is empty",
        ),
        (
            target(&format!(
                "health_check_expect = \"{}\"",
                "x".repeat(MAX_CHECK_BYTES + 1)
            )),
            "targets[0].health_check_expect",
            "1025 bytes long",
        ),
        (
            target("health_check_port = 0"),
            "targets[0].health_check_port",
            "too small",
        ),
        (
            target("health_check_port = 65536"),
            "targets[0].health_check_port",
            "too large",
        ),
        (
            target("send_proxy = \"v3\""),
            "targets[0].send_proxy",
            "\"off\", \"v1\", \"v2\"",
        ),
        (
            format!("send_proxy = true\n{TARGET}"),
            "send_proxy",
            "boolean true",
        ),
        (
            format!("accept_proxy = \"yes\"\n{TARGET}"),
            "accept_proxy",
            "string \"yes\"",
        ),
        (
            format!("on_no_backend = \"503\"\n{TARGET}"),
            "on_no_backend",
            "\"http503\", \"close\", \"reset\"",
        ),
    ];
    for (text, key, problem) in cases {
        assert_rejected(&text, key, &[problem]);
    }
}

#[test]
fn l4_keys_are_read_and_printed_back() {
    let text = "on_no_backend = \"reset\"\nsend_proxy = \"v2\"\naccept_proxy = true\n\
                [[targets]]\naddress = \"[2001:db8::1]:5432\"\nsend_proxy = \"off\"\n\
                [[targets]]\naddress = \"cache:6379\"\nhealth_check_send = \"PING\\r\\n\"\n\
                health_check_expect = \"+PONG\"\n[[targets]]\naddress = \"c:1\"\n\
                health_check = \"none\"\nsend_proxy = \"v1\"\n";
    let config = parse(text).unwrap();
    assert_eq!(config.live.traffic.on_no_backend, OnNoBackend::Reset);
    assert_eq!(config.live.send_proxy, SendProxy::V2);
    assert!(config.live.traffic.accept_proxy);
    let effective: Vec<SendProxy> = config
        .live
        .targets
        .iter()
        .map(|t| config.live.send_proxy_of(t))
        .collect();
    assert_eq!(effective, [SendProxy::Off, SendProxy::V2, SendProxy::V1]);
    let shown = config.to_string();
    for line in [
        "on_no_backend = \"reset\"",
        "send_proxy = \"v2\"",
        "accept_proxy = true",
        "health_check = \"none\"",
        "health_check_expect = \"+PONG\"",
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "{line:?} missing in:\n{shown}"
        );
    }
    assert_eq!(parse(&shown).unwrap(), config, "{shown}");
    let defaults = parse(SEED).unwrap().to_string();
    for line in [
        "on_no_backend = \"http503\"",
        "send_proxy = \"off\"",
        "accept_proxy = false",
        "health_check = \"http\"",
    ] {
        assert!(
            defaults.lines().any(|l| l == line),
            "{line:?} missing in:\n{defaults}"
        );
    }
}

#[test]
fn the_readmes_beyond_http_examples_are_valid() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Beyond HTTP\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Beyond HTTP section");
    let examples: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert_eq!(examples.len(), 4);
    for key in [
        "on_no_backend",
        "send_proxy",
        "accept_proxy",
        "health_check",
        "health_check_send",
        "health_check_expect",
        "health_check_port",
    ] {
        assert!(
            EXAMPLE.contains(&format!("\n{key} = ")) || EXAMPLE.contains(&format!("# {key} = ")),
            "{key} not in config/example.toml"
        );
        let row = format!("{key}` |");
        assert!(readme.contains(&row), "{key} not in the README's table");
    }
    for example in examples {
        let config = parse(example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        assert_eq!(parse(&config.to_string()).unwrap(), config);
    }
}

#[test]
fn a_target_entry_is_its_effective_table() {
    let config = parse(&format!("send_proxy = \"v1\"\n{TARGET}")).unwrap();
    let resolved = &config.resolved_targets()[0];
    let entry = resolved.to_toml();
    assert!(entry.contains("address = \"a:1\"\n"), "{entry}");
    assert!(entry.contains("weight = 1\n"), "{entry}");
    assert!(
        entry.contains("send_proxy = \"v1\"\n"),
        "the inherited value: {entry}"
    );
    assert_eq!(entry, config.resolved_targets()[0].to_toml(), "stable");
    let mut heavier = resolved.clone();
    heavier.weight = 2;
    assert_ne!(heavier.to_toml(), entry);
}
