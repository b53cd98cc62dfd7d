//! The runtime API: `POST` (or `PUT`) `/targets/<target>/state` with `ready`, `drain` or
//! `maint`, and `/targets/<target>/weight` with a weight or `reset`, behind a bearer token. A
//! target is named `host:port` as configured; `?pool=<name>` says which pool's target is meant,
//! and may be left out while only one pool holds that name (see `select`: 409 when several do,
//! 404 for an unknown pool).
//!
//! Owns the API's paths, its authorization (`Authorization: Bearer <token>`, compared in
//! constant time; 403 while no `[admin] token_file` is configured, 401 for a missing or wrong
//! token), the parsing of its values and the wording of its answers. The change itself goes to
//! the pool's health checker ([`Reloader::change`]), which applies it and republishes the
//! pool's balancer before the answer is sent. Never logs the token nor the header (a refusal is
//! logged without either, at most once a second), never waits for the checkers past
//! [`CONFIRM_DEADLINE`].

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use arc_swap::ArcSwapOption;
use tracing::warn;

use super::{
    http::{Request, Response},
    select::{self, Selected},
    token::Token,
    Sparse,
};
use crate::health::{AdminState, Applied, Change, ChangeError, PoolHandle};

/// Where the runtime API's paths begin.
pub(super) const PREFIX: &str = "/targets/";

/// The longest the API waits for the health checker to confirm a change: it applies overrides
/// even in the middle of a probe round, so only a reload being applied (a round and a
/// publication) makes it wait; well inside the exchange deadline.
pub const CONFIRM_DEADLINE: Duration = Duration::from_secs(3);

/// What a 403 says: the API is off until the operator gives it a token.
const DISABLED: &str = "the runtime API is disabled: set [admin] token_file to a file holding a \
                        token (chmod 600), then reload (SIGHUP) or restart\n";

/// What a 401 says, without a word about the token itself.
const UNAUTHORIZED: &str =
    "missing or wrong token; send Authorization: Bearer <the token in [admin] token_file>\n";

/// What the runtime API is served with: every pool's checker and the token in force (`None`:
/// the API is disabled). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    /// Every pool, in the order of the effective pools.
    pools: Arc<[PoolHandle]>,
    token: Arc<ArcSwapOption<Token>>,
    /// Rate limit of the warning about refused requests.
    refusals: Arc<Mutex<Sparse>>,
}

impl RuntimeApi {
    /// An API sending its changes to the checkers of `pools` (in the order of the effective
    /// pools), authorized by whatever `token` holds when a request arrives (the server stores a
    /// new one on reload).
    pub fn new(pools: Vec<PoolHandle>, token: Arc<ArcSwapOption<Token>>) -> Self {
        Self {
            pools: pools.into(),
            token,
            refusals: Arc::default(),
        }
    }

    /// `Ok` if `request` carries the token in force; else the refusal to send.
    fn authorize(&self, request: &Request) -> Result<(), Response> {
        let token = self.token.load();
        let Some(token) = token.as_deref() else {
            return Err(Response::text(403, DISABLED));
        };
        let given = request.authorization.as_ref().and_then(|c| bearer(&c.0));
        if given.is_some_and(|given| token.matches(given)) {
            return Ok(());
        }
        let missing = request.authorization.is_none();
        let refused = self.refusals.lock().map(|mut s| s.note());
        if let Ok(Some(more)) = refused {
            let why = if missing { "no token" } else { "a wrong token" };
            warn!(path = %request.path, also_refused = more, "runtime API request refused (401): {why}");
        }
        Err(Response::text(401, UNAUTHORIZED)
            .with_header("WWW-Authenticate", "Bearer realm=\"ringlb\""))
    }
}

/// Which setting of a target a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    State,
    Weight,
}

/// What a 404 for an unknown path says.
const PATHS: &str = "not found; the runtime API is POST /targets/<host:port>/state (ready, drain \
                     or maint) and POST /targets/<host:port>/weight (a weight or reset), with \
                     ?pool=<name> when several pools hold the target\n";

/// Answers a request whose path is [`PREFIX`] followed by `rest`.
pub(super) async fn serve(request: &Request, rest: &str, api: &RuntimeApi) -> Response {
    let Some((encoded, field)) = route(rest) else {
        return Response::text(404, PATHS);
    };
    if !matches!(request.method.as_str(), "POST" | "PUT") {
        return Response::text(405, "only POST and PUT; GET /status shows every target\n")
            .with_header("Allow", "POST, PUT");
    }
    if let Err(refusal) = api.authorize(request) {
        return refusal;
    }
    let Some(target) = decode(encoded) else {
        return Response::text(400, "the target name is not valid percent-encoded UTF-8\n");
    };
    let change = match value(field, &request.body) {
        Ok(change) => change,
        Err(message) => return Response::text(400, &format!("{message}\n")),
    };
    let pool = match select::pool_param(&request.query) {
        Ok(pool) => pool,
        Err(message) => return Response::text(400, &format!("{message}\n")),
    };
    let selected = match select::select(&api.pools, pool.as_deref(), &target) {
        Ok(selected) => selected,
        Err(refusal) => return Response::text(refusal.status(), &format!("{refusal}\n")),
    };
    let confirmed = tokio::time::timeout(CONFIRM_DEADLINE, apply(selected, &target, change));
    match confirmed.await {
        Ok(Ok((pool, applied))) => {
            // The pool is named only where there is a choice, so one pool reads as before.
            let pool = (api.pools.len() > 1).then_some(pool.name.as_str());
            Response::text(200, &describe(&applied, pool))
        }
        Ok(Err(e @ ChangeError::UnknownTarget(_))) => {
            let within = pool.map_or_else(String::new, |p| format!(" (pool {p:?})"));
            let message = format!(
                "{e}{within}; targets are named as configured (host:port), as GET /status lists \
                 them\n"
            );
            Response::text(404, &message)
        }
        Ok(Err(e @ ChangeError::Stopped)) => Response::text(503, &format!("{e}\n")),
        Err(_) => Response::text(
            503,
            "the health checker did not confirm the change in time (a reload is being applied); \
             it is queued: check GET /status\n",
        ),
    }
}

/// Sends `change` of `target` to the selected pools in turn until one's checker knows the
/// target: the pool it applied to, and what it applied.
async fn apply<'p>(
    selected: Selected<'p>,
    target: &str,
    change: Change,
) -> Result<(&'p PoolHandle, Applied), ChangeError> {
    let pools = match selected {
        Selected::One(pool) => std::slice::from_ref(pool),
        Selected::InOrder(pools) => pools,
    };
    for pool in pools {
        match pool.reloader.change(target, change).await {
            Err(ChangeError::UnknownTarget(_)) => continue,
            outcome => return outcome.map(|applied| (pool, applied)),
        }
    }
    Err(ChangeError::UnknownTarget(target.to_owned()))
}

/// The encoded target name and the field of `<target>/state` or `<target>/weight`.
fn route(rest: &str) -> Option<(&str, Field)> {
    let (target, field) = rest.rsplit_once('/')?;
    let field = match field {
        "state" => Field::State,
        "weight" => Field::Weight,
        _ => return None,
    };
    (!target.is_empty()).then_some((target, field))
}

/// The change a body asks for: a state name, or a weight (or `reset` for the file's).
fn value(field: Field, body: &[u8]) -> Result<Change, String> {
    let text = std::str::from_utf8(body).unwrap_or("\u{fffd}").trim();
    match field {
        Field::State => text
            .parse::<AdminState>()
            .map(Change::State)
            .map_err(|e| e.to_string()),
        Field::Weight if text == "reset" => Ok(Change::Weight(None)),
        Field::Weight => {
            let number = text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty();
            match number.then(|| text.parse::<u32>()) {
                Some(Ok(weight)) => Ok(Change::Weight(Some(weight))),
                _ => Err(format!(
                    "{text:?} is not a weight; expected a whole number from 0 to {} (0 takes \
                     no new connection) or reset (the file's weight again)",
                    u32::MAX
                )),
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The answer to an applied change: one line, for people and for `ringlb ctl`, naming the
/// target's `pool` if given.
fn describe(applied: &Applied, pool: Option<&str>) -> String {
    let weight = match applied.weight_override {
        Some(w) => format!("weight {w} (override; the file says {})", applied.weight),
        None => format!("weight {} (from the file)", applied.weight),
    };
    let pool = pool.map_or_else(String::new, |p| format!(" (pool {p})"));
    format!("{}{pool}: {}, {weight}\n", applied.target, applied.state)
}

/// `text` with every `%XX` decoded; `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let hex = std::str::from_utf8(hex).ok()?;
        out.push(u8::from_str_radix(hex, 16).ok()?);
        i += 3;
    }
    String::from_utf8(out).ok()
}

/// `name` as one path segment: every byte but letters, digits, `-._~` and `:` percent-encoded
/// (so `[::1]:80` becomes `%5B::1%5D:80`).
pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_a_target_and_a_field() {
        assert_eq!(
            route("api-1:8080/state"),
            Some(("api-1:8080", Field::State))
        );
        assert_eq!(
            route("%5B::1%5D:80/weight"),
            Some(("%5B::1%5D:80", Field::Weight))
        );
        assert_eq!(route("api-1:8080"), None);
        assert_eq!(route("/state"), None);
        assert_eq!(route("api-1:8080/health"), None);
        assert_eq!(route("api-1:8080/state/"), None);
    }

    #[test]
    fn names_round_trip_through_percent_encoding() {
        for name in ["api-1:8080", "[::1]:8080", "10.0.0.1:80", "odd name/é:1"] {
            let encoded = encode(name);
            assert!(!encoded.contains(['/', '[', ' ']), "{encoded}");
            assert_eq!(decode(&encoded).as_deref(), Some(name));
        }
        assert_eq!(encode("[::1]:80"), "%5B::1%5D:80");
        assert_eq!(decode("%5b::1%5d:80").as_deref(), Some("[::1]:80"));
        for bad in ["%", "%5", "%zz", "%+1x", "%C3"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_states_weights_or_reset() {
        let state = |s: &str| value(Field::State, s.as_bytes());
        let weight = |s: &str| value(Field::Weight, s.as_bytes());
        assert_eq!(state("drain"), Ok(Change::State(AdminState::Drain)));
        assert_eq!(state("maint\n"), Ok(Change::State(AdminState::Maint)));
        assert_eq!(state(" ready\r\n"), Ok(Change::State(AdminState::Ready)));
        assert!(state("DRAIN")
            .unwrap_err()
            .contains("expected ready, drain or maint"));
        assert!(state("").is_err());
        assert!(value(Field::State, b"\xff").is_err());
        assert_eq!(weight("5"), Ok(Change::Weight(Some(5))));
        assert_eq!(weight("0\n"), Ok(Change::Weight(Some(0))));
        assert_eq!(weight("reset"), Ok(Change::Weight(None)));
        for bad in ["-1", "+1", "1.5", "", "4294967296", "five"] {
            let err = weight(bad).unwrap_err();
            assert!(err.contains("is not a weight; expected"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_bearer_credentials_carry_a_token() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic YWJj"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    /// Pools `web` (targets `127.0.0.1:1`, `:2`) and `db` (`:2`, `:3`), each with a running
    /// checker that never probes; they stop with the returned signal.
    fn two_pools() -> (RuntimeApi, crate::shutdown::Shutdown) {
        use crate::config::{HealthCheckKind, Target, TargetAddress};
        let target = |port| Target {
            address: TargetAddress {
                host: "127.0.0.1".into(),
                port,
            },
            health_check: HealthCheckKind::None,
            ..Target::default()
        };
        let shutdown = crate::shutdown::Shutdown::new();
        let pools = [("web", [1, 2]), ("db", [2, 3])].map(|(name, ports)| {
            let targets = ports.map(target).to_vec();
            let balancer = Arc::new(crate::balancer::Balancer::new());
            let mut checker =
                crate::health::HealthChecker::new(targets, Default::default(), balancer);
            checker.prime();
            let handle = checker.pool_handle(name);
            checker.spawn(shutdown.clone()).unwrap();
            handle
        });
        let token = Token::parse(b"a-token-for-the-pool-tests").unwrap();
        let token = Arc::new(ArcSwapOption::from_pointee(token));
        (RuntimeApi::new(pools.to_vec(), token), shutdown)
    }

    async fn post(api: &RuntimeApi, target: &str, query: &str) -> (u16, String) {
        let request = Request {
            method: "POST".into(),
            path: format!("{PREFIX}{target}/state"),
            query: query.into(),
            authorization: Some(super::super::http::Credentials(
                b"Bearer a-token-for-the-pool-tests".to_vec(),
            )),
            body: b"drain".to_vec(),
        };
        let rest = request.path.strip_prefix(PREFIX).unwrap().to_owned();
        let response = serve(&request, &rest, api).await;
        (response.status, response.body)
    }

    #[tokio::test]
    async fn a_pool_is_needed_only_where_two_hold_the_target() {
        let (api, shutdown) = two_pools();
        assert_eq!(
            post(&api, "127.0.0.1:1", "").await,
            (
                200,
                "127.0.0.1:1 (pool web): drain, weight 1 (from the file)\n".into()
            )
        );
        let (status, body) = post(&api, "127.0.0.1:2", "").await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("is in pools web, db"), "{body}");
        let (status, body) = post(&api, "127.0.0.1:2", "pool=db").await;
        assert_eq!(
            (status, body.contains("(pool db): drain")),
            (200, true),
            "{body}"
        );
        let drained = |pool: usize| {
            let report = api.pools[pool].status.report();
            let states: Vec<_> = report.targets.iter().map(|t| t.state).collect();
            states
        };
        assert_eq!(drained(0), [AdminState::Drain, AdminState::Ready]);
        assert_eq!(drained(1), [AdminState::Drain, AdminState::Ready]);
        let (status, body) = post(&api, "127.0.0.1:2", "pool=cache").await;
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("the pools are web, db"), "{body}");
        let (status, body) = post(&api, "127.0.0.1:3", "pool=web").await;
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("(pool \"web\")"), "{body}");
        let (status, body) = post(&api, "127.0.0.1:9", "").await;
        assert_eq!(status, 404, "asked of every pool: {body}");
        assert_eq!(post(&api, "127.0.0.1:3", "pol=db").await.0, 400);
        shutdown.trigger();
    }

    #[test]
    fn answers_say_state_and_weight() {
        let mut applied = Applied {
            target: "api-1:8080".into(),
            state: AdminState::Drain,
            weight: 1,
            weight_override: None,
        };
        assert_eq!(
            describe(&applied, None),
            "api-1:8080: drain, weight 1 (from the file)\n"
        );
        applied.weight_override = Some(5);
        applied.state = AdminState::Ready;
        assert_eq!(
            describe(&applied, Some("web")),
            "api-1:8080 (pool web): ready, weight 5 (override; the file says 1)\n"
        );
    }
}
