//! Unit tests of the services form (`[[pools]]` and `[[services]]`): loading, inheriting from
//! the top-level keys, every rule's error at its key, `--check`'s output, restart keys and
//! warnings.

use std::time::Duration;

use super::*;

const EXAMPLE: &str = include_str!("../../config/example.toml");
const SEED: &str = include_str!("../../config/ringlb.toml");

/// The issue's example, with the pool `api` its route names.
const ISSUE: &str = r#"
[[pools]]
name = "web"
balance = "least_connections"
[[pools.targets]]
address = "web-1:8001"
health_check_endpoint = "/healthz"

[[pools]]
name = "api"
[[pools.targets]]
address = "api-1:9000"
health_check = "tcp"

[[services]]
name = "https"
listen = "[::]:443"
pool = "web"
on_no_backend = "reset"
[[services.routes]]
sni = ["api.example.com", "*.internal.example.com"]
pool = "api"
"#;

/// One valid pool named `p`, appended to documents that test other keys.
const POOL: &str = "[[pools]]\nname = \"p\"\n[[pools.targets]]\naddress = \"a:1\"\n";
/// One valid service on pool `p`.
const SERVICE: &str = "[[services]]\nname = \"s\"\nlisten = \"127.0.0.1:1\"\npool = \"p\"\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

fn parsed(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Asserts that `text` is rejected at `key` with a message holding every needle and saying
/// what was expected.
fn assert_rejected(text: &str, key: &str, needles: &[&str]) {
    match parse(text) {
        Err(ConfigError::Invalid {
            key: got, message, ..
        }) => {
            assert_eq!(got, key, "key for {text:?} ({message})");
            for needle in needles.iter().chain(&["expected"]) {
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
        }
        other => panic!("expected an error at {key} for {text:?}, got {other:?}"),
    }
}

/// `--check`'s output loads back to the same configuration.
fn assert_round_trip(config: &Config) {
    let shown = config.to_string();
    assert_eq!(parsed(&shown), *config, "{shown}");
}

fn http(host: &str, port: u16) -> Target {
    Target::http(host, port, "/healthz")
}

fn tcp(host: &str, port: u16) -> Target {
    Target {
        health_check: HealthCheckKind::Tcp,
        ..Target::http(host, port, "")
    }
}

#[test]
fn the_issues_example_loads_to_its_pools_and_services() {
    let config = parsed(ISSUE);
    assert!(config.has_services());
    let defaults = Live::new(Vec::new());
    assert_eq!(
        config.pools(),
        [
            Pool {
                name: "web".into(),
                balance: Strategy::LeastConnections,
                send_proxy: SendProxy::Off,
                health_check: HealthCheck::default(),
                targets: vec![http("web-1", 8001)],
            },
            Pool {
                name: "api".into(),
                balance: Strategy::RoundRobin,
                send_proxy: SendProxy::Off,
                health_check: HealthCheck::default(),
                targets: vec![tcp("api-1", 9000)],
            },
        ]
    );
    assert_eq!(
        config.services(),
        [Service {
            name: "https".into(),
            listen: "[::]:443".parse().unwrap(),
            pool: Some("web".into()),
            routes: vec![Route {
                sni: vec!["api.example.com".into(), "*.internal.example.com".into()],
                pool: "api".into(),
            }],
            traffic: ServiceTraffic {
                on_no_backend: OnNoBackend::Reset,
                ..ServiceTraffic::from(&defaults.traffic)
            },
        }]
    );
    assert!(config.live.targets.is_empty(), "no top-level targets");
    assert!(config.unused_pools().is_empty());
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn absent_keys_inherit_the_top_level_and_given_ones_win() {
    let text = format!(
        "balance = \"source_hash\"\nsend_proxy = \"v1\"\nconnect_timeout = \"250ms\"\n\
         idle_timeout = \"10s\"\nretries = 0\nretry_on_early_close = true\nreplay_buffer = 99\n\
         on_no_backend = \"close\"\naccept_proxy = true\n\
         [health_check]\ninterval = \"2s\"\ntimeout = \"300ms\"\nrise = 4\nfall = 5\n\
         passive_fall = 6\n\
         {POOL}{SERVICE}\
         [[pools]]\nname = \"own\"\nbalance = \"power_of_two\"\nsend_proxy = \"off\"\n\
         [pools.health_check]\ninterval = \"7s\"\nrise = 2\n\
         [[pools.targets]]\naddress = \"b:1\"\nsend_proxy = \"v2\"\n\
         [[services]]\nname = \"own\"\nlisten = \"127.0.0.1:2\"\npool = \"own\"\n\
         connect_timeout = \"1s\"\nidle_timeout = \"1h\"\nretries = 3\n\
         retry_on_early_close = false\nreplay_buffer = 7\non_no_backend = \"http503\"\n\
         accept_proxy = false\n"
    );
    let config = parsed(&text);
    let [inherits, own] = <[Pool; 2]>::try_from(config.pools()).unwrap();
    assert_eq!(inherits.balance, Strategy::SourceHash);
    assert_eq!(inherits.send_proxy, SendProxy::V1);
    assert_eq!(
        inherits.health_check,
        HealthCheck {
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(300),
            rise: 4,
            fall: 5,
        }
    );
    assert_eq!(own.balance, Strategy::PowerOfTwo);
    assert_eq!(own.send_proxy, SendProxy::Off);
    assert_eq!(
        own.health_check,
        HealthCheck {
            interval: Duration::from_secs(7),
            timeout: Duration::from_millis(300),
            rise: 2,
            fall: 5,
        },
        "each key of [pools.health_check] on its own"
    );
    assert_eq!(own.resolved_targets()[0].send_proxy, Some(SendProxy::V2));
    let [inherits, own] = <[Service; 2]>::try_from(config.services()).unwrap();
    assert_eq!(
        inherits.traffic,
        ServiceTraffic {
            connect_timeout: Duration::from_millis(250),
            idle_timeout: Duration::from_secs(10),
            retries: 0,
            retry_on_early_close: true,
            replay_buffer: 99,
            on_no_backend: OnNoBackend::Close,
            accept_proxy: true,
        }
    );
    assert_eq!(
        own.traffic,
        ServiceTraffic {
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3600),
            retries: 3,
            retry_on_early_close: false,
            replay_buffer: 7,
            on_no_backend: OnNoBackend::Http503,
            accept_proxy: false,
        }
    );
    assert_eq!(config.live.traffic.passive_fall, 6, "process-wide");
    assert_round_trip(&config);
}

#[test]
fn the_seed_form_is_one_default_service_and_pool_as_before() {
    let config = parsed(SEED);
    assert!(!config.has_services());
    assert!(config.live.pools.is_empty() && config.live.services.is_empty());
    assert_eq!(config.startup.listen, Startup::default().listen);
    let [pool] = <[Pool; 1]>::try_from(config.pools()).unwrap();
    assert_eq!(pool.name, DEFAULT);
    assert_eq!(pool.targets, config.live.targets);
    let [service] = <[Service; 1]>::try_from(config.services()).unwrap();
    assert_eq!(
        (
            service.name.as_str(),
            service.listen,
            service.pool.as_deref()
        ),
        (DEFAULT, config.startup.listen, Some(DEFAULT))
    );
    let shown = config.to_string();
    assert!(shown.contains("\nlisten = \"0.0.0.0:80\"\n"), "{shown}");
    assert!(
        !shown.contains("pools") && !shown.contains("services"),
        "{shown}"
    );
    assert!(
        !shown.contains("resolved"),
        "the seed form's header is unchanged"
    );
    assert!(config.warnings().is_empty());
    let listen = parsed(&format!("listen = \"[::1]:9\"\n{SEED}"));
    assert_eq!(listen.services()[0].listen, "[::1]:9".parse().unwrap());
}

#[test]
fn check_output_is_the_services_form_and_loads_back() {
    let config = parsed(ISSUE);
    let shown = config.to_string();
    let table: toml::Table = shown.parse().unwrap();
    assert!(
        !table.contains_key("listen") && !table.contains_key("targets"),
        "{shown}"
    );
    for line in [
        "[[pools]]",
        "[pools.health_check]",
        "[[pools.targets]]",
        "[[services]]",
        "[[services.routes]]",
        "name = \"api\"",
        "balance = \"round_robin\"",
        "interval = \"5s\"",
        "rise = 1",
        "listen = \"[::]:443\"",
        "connect_timeout = \"3s\"",
        "on_no_backend = \"reset\"",
        "sni = [\"api.example.com\", \"*.internal.example.com\"]",
        "health_check = \"tcp\"",
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "{line:?} missing in:\n{shown}"
        );
    }
    assert_round_trip(&config);
    let no_default = ISSUE.replace("pool = \"web\"\non_no_backend", "on_no_backend");
    let routes_only = parsed(&no_default);
    assert_eq!(routes_only.services()[0].pool, None);
    assert_round_trip(&routes_only);
    assert_round_trip(&parsed(&format!(
        "workers = 2\nsource = [\"10.0.0.2\"]\n{POOL}{SERVICE}"
    )));
}

#[test]
fn the_examples_services_form_is_valid() {
    let start = EXAMPLE
        .find("\n# [[pools]]\n")
        .expect("a commented services example");
    let uncommented: String = EXAMPLE[start + 1..]
        .lines()
        .map(|line| {
            line.strip_prefix("# ")
                .unwrap_or(line.trim_start_matches('#'))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let config = parsed(&uncommented);
    let names = |names: Vec<String>| names.join(" ");
    let pools = names(config.pools().into_iter().map(|p| p.name).collect());
    let services = names(config.services().into_iter().map(|s| s.name).collect());
    assert_eq!(pools, "http-api tls-web tls-internal redis");
    assert_eq!(services, "http https redis");
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    assert_round_trip(&config);
}

#[test]
fn the_two_forms_do_not_mix() {
    let listen = "listen = \"0.0.0.0:80\"\n";
    let target = "[[targets]]\naddress = \"t:1\"\n";
    for (text, key, needles) in [
        (
            format!("{listen}{POOL}{SERVICE}"),
            "listen",
            &[
                "a top-level listen and [[pools]] and [[services]]",
                "two forms",
            ][..],
        ),
        (
            format!("{target}{POOL}{SERVICE}"),
            "targets",
            &["[[targets]] and [[pools]] and [[services]]"][..],
        ),
        (
            format!("{listen}{target}{SERVICE}"),
            "listen",
            &["a top-level listen and [[targets]] and [[services]]"][..],
        ),
        (
            format!("{target}{POOL}"),
            "targets",
            &["[[targets]] and [[pools]]"][..],
        ),
    ] {
        assert_rejected(&text, key, needles);
    }
}

#[test]
fn pools_and_services_come_together() {
    assert_rejected(POOL, "services", &["missing", "[[pools]]"]);
    assert_rejected(SERVICE, "pools", &["missing", "[[services]]"]);
    assert_rejected(&format!("pools = []\n{SERVICE}"), "pools", &["empty"]);
    assert_rejected(&format!("services = []\n{POOL}"), "services", &["empty"]);
    assert_rejected(
        &format!("{SERVICE}[pools]\nname = \"p\"\n"),
        "pools",
        &["single [pools] table", "double brackets"],
    );
    assert_rejected(&format!("services = 1\n{POOL}"), "services", &["integer 1"]);
}

#[test]
fn names_are_required_once_and_label_safe() {
    let pool_named = |name: &str| POOL.replace("name = \"p\"", name);
    let service_named = |name: &str| SERVICE.replace("name = \"s\"", name);
    assert_rejected(
        &format!("{}{SERVICE}", pool_named("")),
        "pools[0].name",
        &["missing"],
    );
    assert_rejected(
        &format!("{POOL}{}", service_named("")),
        "services[0].name",
        &["missing"],
    );
    for (name, problem) in [
        ("\"\"", "is empty"),
        ("\"  \"", "is blank"),
        ("\"web 1\"", "' '"),
        ("\"web\\\"1\"", "'\"'"),
        ("\"wéb\"", "'é'"),
        ("\"a{b}\"", "'{'"),
        ("1", "integer 1"),
    ] {
        let pool = format!("{POOL}{}", pool_named(&format!("name = {name}")));
        assert_rejected(&format!("{pool}{SERVICE}"), "pools[1].name", &[problem]);
        let service = service_named(&format!("name = {name}"));
        assert_rejected(&format!("{POOL}{service}"), "services[0].name", &[problem]);
    }
    let allowed = parsed(&format!(
        "{}{}",
        pool_named("name = \"web_2.eu-1\""),
        service_named("name = \"A.b-c_9\"\npool = \"web_2.eu-1\"").replace("pool = \"p\"\n", "")
    ));
    assert_eq!(allowed.pools()[0].name, "web_2.eu-1");
    assert_eq!(allowed.services()[0].name, "A.b-c_9");
    assert_rejected(
        &format!("{POOL}{POOL}{SERVICE}"),
        "pools[1].name",
        &["\"p\" is also the name of pools[0]"],
    );
    let other_listen = SERVICE.replace("127.0.0.1:1", "127.0.0.1:2");
    assert_rejected(
        &format!("{POOL}{SERVICE}{other_listen}"),
        "services[1].name",
        &["\"s\" is also the name of services[0]"],
    );
}

#[test]
fn every_service_listens_on_its_own_address() {
    let service = |name: &str, listen: &str| {
        format!("[[services]]\nname = \"{name}\"\nlisten = \"{listen}\"\npool = \"p\"\n")
    };
    assert_rejected(
        &format!("{POOL}[[services]]\nname = \"s\"\npool = \"p\"\n"),
        "services[0].listen",
        &["missing", "IP address and port"],
    );
    assert_rejected(
        &format!("{POOL}{}", service("s", "localhost:80")),
        "services[0].listen",
        &["not an IP address and port"],
    );
    assert_rejected(
        &format!(
            "{POOL}{}{}{}",
            service("a", "[::]:443"),
            service("b", "0.0.0.0:443"),
            service("c", "[::]:443")
        ),
        "services[2].listen",
        &["\"[::]:443\" is also the address of services[0] (\"a\")"],
    );
    assert_rejected(
        &format!("{POOL}{}", service("s", "127.0.0.1:9100")),
        "services[0].listen",
        &["[admin] listen", "enabled = false"],
    );
    let off = format!(
        "[admin]\nenabled = false\n{POOL}{}",
        service("s", "127.0.0.1:9100")
    );
    assert_eq!(parsed(&off).services()[0].listen.port(), 9100);
    // Port 0 is a free port each: never a clash, not even with an admin listener on port 0.
    let ephemeral = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n{POOL}{}{}",
        service("a", "127.0.0.1:0"),
        service("b", "127.0.0.1:0")
    );
    assert_eq!(parsed(&ephemeral).services().len(), 2);
}

#[test]
fn a_service_sends_connections_to_known_pools() {
    let unknown = SERVICE.replace("pool = \"p\"", "pool = \"nope\"");
    assert_rejected(
        &format!("{POOL}{}{unknown}", POOL.replace("\"p\"", "\"q\"")),
        "services[0].pool",
        &["\"nope\" is not a pool", "\"p\", \"q\""],
    );
    let nowhere = SERVICE.replace("pool = \"p\"\n", "");
    assert_rejected(
        &format!("{POOL}{nowhere}"),
        "services[0].pool",
        &["missing", "no [[services.routes]]", "nothing to send"],
    );
    let route =
        |sni: &str, pool: &str| format!("[[services.routes]]\nsni = {sni}\npool = \"{pool}\"\n");
    let routed = |routes: &str| format!("{POOL}{nowhere}{routes}");
    assert_rejected(
        &routed(&route("[\"a.example.com\"]", "nope")),
        "services[0].routes[0].pool",
        &["\"nope\" is not a pool", "\"p\""],
    );
    assert_rejected(
        &routed("[[services.routes]]\nsni = [\"a.example.com\"]\n"),
        "services[0].routes[0].pool",
        &["missing", "\"p\""],
    );
    let config = parsed(&routed(&route("[\"a.example.com\"]", "p")));
    assert_eq!(config.services()[0].pool, None);
    assert_eq!(config.services()[0].pools().collect::<Vec<_>>(), ["p"]);
}

#[test]
fn routes_have_valid_sni_patterns_once_per_service() {
    let routed = |routes: &str| format!("{POOL}{SERVICE}{routes}");
    let route = |sni: &str| format!("[[services.routes]]\nsni = {sni}\npool = \"p\"\n");
    let ok = route("[\"a.example.com\"]");
    assert_rejected(
        &routed(&format!("{ok}{}", route("[]"))),
        "services[0].routes[1].sni",
        &["is empty", "non-empty array"],
    );
    assert_rejected(
        &routed("[[services.routes]]\npool = \"p\"\n"),
        "services[0].routes[0].sni",
        &["missing"],
    );
    assert_rejected(
        &routed(&route("\"a.example.com\"")),
        "services[0].routes[0].sni",
        &["the string \"a.example.com\" is not an array"],
    );
    assert_rejected(
        &routed(&route("[\"a.example.com\", 5]")),
        "services[0].routes[0].sni[1]",
        &["integer 5", "not a string"],
    );
    for (pattern, problem) in [
        ("*", "'*' alone"),
        ("a.*.example.com", "leftmost"),
        ("a*.example.com", "whole leftmost label"),
        (
            "a_b.example.com",
            "\"a_b.example.com\" is not an SNI pattern",
        ),
        ("", "\"\" is not an SNI pattern"),
    ] {
        let sni = format!("[\"b.example.com\", {}]", toml::Value::from(pattern));
        assert_rejected(
            &routed(&format!("{ok}{}", route(&sni))),
            "services[0].routes[1].sni",
            &[problem],
        );
    }
    assert_rejected(
        &routed(&format!(
            "{ok}{}",
            route("[\"b.example.com\", \"A.Example.com\"]")
        )),
        "services[0].routes[1].sni",
        &["\"A.Example.com\" is already routed by services[0].routes[0]"],
    );
    assert_rejected(
        &routed(&route("[\"*.x.com\", \"*.x.com\"]")),
        "services[0].routes[0].sni",
        &["already routed by services[0].routes[0]"],
    );
    let other = SERVICE.replace("\"s\"", "\"t\"").replace(":1\"", ":2\"");
    let twice = format!("{POOL}{SERVICE}{ok}{other}{ok}");
    assert_eq!(
        parsed(&twice).services().len(),
        2,
        "a pattern once per service"
    );
}

#[test]
fn a_pools_keys_follow_the_top_level_rules_at_their_own_key() {
    let services = SERVICE.replace("pool = \"p\"", "pool = \"q\"");
    let second = |rest: &str| format!("{POOL}[[pools]]\nname = \"q\"\n{rest}{services}");
    let target = "[[pools.targets]]\naddress = \"a:1\"\n";
    assert_rejected(
        &second(""),
        "pools[1].targets",
        &["missing", "[[pools.targets]]"],
    );
    assert_rejected(&second("targets = []\n"), "pools[1].targets", &["empty"]);
    assert_rejected(
        &second("[pools.targets]\naddress = \"a:1\"\n"),
        "pools[1].targets",
        &["single [pools.targets] table"],
    );
    assert_rejected(
        &second(&format!("{target}{target}")),
        "pools[1].targets[1].address",
        &["same target as pools[1].targets[0]"],
    );
    assert_rejected(
        &second("[[pools.targets]]\nweight = 1\n"),
        "pools[1].targets[0].address",
        &["missing"],
    );
    assert_rejected(
        &second("[[pools.targets]]\naddress = \"a\"\n"),
        "pools[1].targets[0].address",
        &["no port"],
    );
    assert_rejected(
        &second("[[pools.targets]]\naddress = \"a:1\"\nhealth_check = \"http\"\n"),
        "pools[1].targets[0].health_check_endpoint",
        &["missing"],
    );
    assert_rejected(
        &second("[[pools.targets]]\naddress = \"a:1\"\nweight = 0\n"),
        "pools[1].targets",
        &["weight 0"],
    );
    assert_rejected(
        &second("balance = \"random\"\n"),
        "pools[1].balance",
        &["\"random\" is not a balancing strategy"],
    );
    assert_rejected(
        &second("send_proxy = true\n"),
        "pools[1].send_proxy",
        &["boolean"],
    );
    assert_rejected(
        &second("[pools.health_check]\npassive_fall = 2\n"),
        "pools[1].health_check",
        &["`passive_fall`", "`interval`"],
    );
    assert_rejected(
        &second("[pools.health_check]\ninterval = \"0s\"\n"),
        "pools[1].health_check.interval",
        &["zero"],
    );
    assert_rejected(
        &second("[pools.health_check]\nrise = 0\n"),
        "pools[1].health_check.rise",
        &["too small"],
    );
    assert_rejected(
        &second("listen = \"0.0.0.0:1\"\n"),
        "pools[1]",
        &["`listen`"],
    );
    let same_target = second(target);
    assert_eq!(parsed(&same_target).pools()[1].targets[0].address.host, "a");
}

#[test]
fn a_services_keys_follow_the_top_level_rules_at_their_own_key() {
    for (key, value, problem) in [
        ("connect_timeout", "\"2d\"", "longer than one day"),
        ("idle_timeout", "5", "integer 5"),
        ("retries", "-1", "too small"),
        ("retry_on_early_close", "\"yes\"", "not a boolean"),
        ("replay_buffer", "2000000", "too large"),
        ("on_no_backend", "\"drop\"", "\"drop\" is not an answer"),
        ("accept_proxy", "1", "not a boolean"),
        ("balance", "\"round_robin\"", "`balance`"),
        ("workers", "1", "`workers`"),
    ] {
        let text = format!("{POOL}{SERVICE}{key} = {value}\n");
        let at = match problem.starts_with('`') {
            true => "services[0]".to_owned(),
            false => format!("services[0].{key}"),
        };
        assert_rejected(&text, &at, &[problem]);
    }
    let pool = SERVICE.replace("pool = \"p\"", "pool = 1");
    assert_rejected(&format!("{POOL}{pool}"), "services[0].pool", &["integer 1"]);
    assert_rejected(
        &format!("{POOL}{SERVICE}[[services.routes]]\nsni = [\"a.b\"]\npool = \"p\"\nweight = 1\n"),
        "services[0].routes[0]",
        &["`weight`", "`sni`"],
    );
}

#[test]
fn an_unused_pool_is_a_warning_not_an_error() {
    let config = parsed(&format!(
        "{POOL}{}{SERVICE}",
        POOL.replace("\"p\"", "\"spare\"")
    ));
    assert_eq!(config.unused_pools(), ["spare"]);
    assert_eq!(config.warnings(), ["pool \"spare\" is used by no service"]);
    let routed = format!(
        "{POOL}{}{SERVICE}[[services.routes]]\nsni = [\"a.b\"]\npool = \"spare\"\n",
        POOL.replace("\"p\"", "\"spare\"")
    );
    assert!(parsed(&routed).warnings().is_empty(), "a route uses it");
}

#[test]
fn the_source_warning_looks_at_every_pools_targets() {
    let v4 = POOL.replace("a:1", "10.0.0.1:1");
    let v6 = POOL.replace("\"p\"", "\"q\"").replace("a:1", "[::1]:1");
    let routes = "[[services.routes]]\nsni = [\"a.b\"]\npool = \"q\"\n";
    let source = "source = [\"10.0.0.2\", \"2001:db8::2\"]\n";
    let both = parsed(&format!("{source}{v4}{v6}{SERVICE}{routes}"));
    assert!(both.warnings().is_empty(), "{:?}", both.warnings());
    let only_v4 = parsed(&format!("{source}{v4}{SERVICE}"));
    assert_eq!(only_v4.warnings().len(), 1);
    assert!(only_v4.warnings()[0].contains("2001:db8::2"));
}

/// The restart keys between `old` and `new`, both parsed.
fn restart_keys(old: &str, new: &str) -> Vec<String> {
    parsed(old).restart_keys(&parsed(new))
}

#[test]
fn pools_and_services_added_removed_renamed_or_moved_need_a_restart() {
    let pool = |name: &str| POOL.replace("\"p\"", &format!("\"{name}\""));
    let service = |name: &str, port: u16| {
        SERVICE
            .replace("\"s\"", &format!("\"{name}\""))
            .replace(":1\"", &format!(":{port}\""))
    };
    let base = format!(
        "{}{}{}{}",
        pool("p"),
        pool("q"),
        service("a", 1),
        service("b", 2)
    );
    assert!(restart_keys(&base, &base).is_empty());
    for (new, keys) in [
        (
            format!("{}{}{}", pool("p"), pool("q"), service("a", 1)),
            &["services"][..],
        ),
        (
            format!(
                "{}{}{}{}",
                pool("p"),
                pool("q"),
                service("b", 2),
                service("a", 1)
            ),
            &["services"][..],
        ),
        (
            format!(
                "{}{}{}{}",
                pool("p"),
                pool("q"),
                service("a", 1),
                service("c", 2)
            ),
            &["services"][..],
        ),
        (
            format!(
                "{}{}{}{}",
                pool("p"),
                pool("q"),
                service("a", 1),
                service("b", 3)
            ),
            &["services[1].listen"][..],
        ),
        (
            format!(
                "{}{}{}{}",
                pool("p"),
                pool("q"),
                service("a", 4),
                service("b", 3)
            ),
            &["services[0].listen", "services[1].listen"][..],
        ),
        (
            format!(
                "{}{}{}{}",
                pool("q"),
                pool("p"),
                service("a", 1),
                service("b", 2)
            ),
            &["pools"][..],
        ),
        (
            format!("{}{}{}", pool("p"), service("a", 1), service("b", 2)),
            &["pools"][..],
        ),
        (
            format!(
                "{}{}{}{}",
                pool("p"),
                pool("r"),
                service("a", 1),
                service("b", 2)
            ),
            &["pools"][..],
        ),
        (
            format!("workers = 3\n{}{}{}", pool("p"), pool("q"), service("a", 1)),
            &["workers", "services"][..],
        ),
        (SEED.to_owned(), &["pools", "services"][..]),
    ] {
        assert_eq!(restart_keys(&base, &new), keys, "{new}");
    }
    assert_eq!(restart_keys(SEED, &base), ["pools", "services"]);
}

#[test]
fn what_a_pool_or_a_service_does_is_live() {
    let base = format!("{POOL}{}{SERVICE}", POOL.replace("\"p\"", "\"q\""));
    for new in [
        base.replace("address = \"a:1\"", "address = \"b:2\"\nweight = 3"),
        base.replacen(
            "name = \"p\"",
            "name = \"p\"\nbalance = \"least_connections\"",
            1,
        ),
        base.replacen("name = \"p\"", "name = \"p\"\nsend_proxy = \"v2\"", 1),
        base.replacen(
            "name = \"p\"",
            "name = \"p\"\n[pools.health_check]\ninterval = \"1s\"\nfall = 9",
            1,
        ),
        base.replace("pool = \"p\"", "pool = \"q\""),
        format!("{base}connect_timeout = \"1s\"\nretries = 0\non_no_backend = \"reset\"\n"),
        format!("{base}accept_proxy = true\nidle_timeout = \"1s\"\nreplay_buffer = 5\n"),
        format!("{base}[[services.routes]]\nsni = [\"a.example.com\"]\npool = \"q\"\n"),
        format!("balance = \"source_hash\"\nidle_timeout = \"1s\"\n{base}"),
        format!("[health_check]\npassive_fall = 9\n{base}"),
    ] {
        assert!(restart_keys(&base, &new).is_empty(), "{new}");
        assert!(restart_keys(&new, &base).is_empty(), "{new}");
    }
}
