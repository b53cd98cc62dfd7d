//! The keys that make ringlb a balancer for any TCP service, not only HTTP: how each target is
//! health-checked (`health_check = "http" | "tcp" | "none"` and its companions), what a client
//! gets when no target is healthy (`on_no_backend`), and the PROXY protocol on either side
//! (`send_proxy`, `accept_proxy`).
//!
//! Owns these keys' types, spellings and checks, including the rule that keys contradicting each
//! other (`health_check_send` with an HTTP check, an endpoint with a TCP check) are an error
//! naming the target and the key. Like the rest of `config`, never resolves names, never does
//! I/O and never panics on input.

use std::fmt;

use toml::Value;

use super::{
    file::Invalid,
    value::{health_check_endpoint, integer, string},
};
use crate::proxy_protocol::Version;

/// How a target is health-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HealthCheckKind {
    /// `GET <health_check_endpoint>`; a 2xx status line is healthy (the seed's check, and the
    /// default when `health_check_endpoint` is set).
    #[default]
    Http,
    /// A TCP connect within the timeout, then optionally `health_check_send` written and a reply
    /// beginning with `health_check_expect` (the default without `health_check_endpoint`).
    Tcp,
    /// No probe at all: always in rotation unless a worker's connect fails (passive ejection);
    /// an ejected endpoint comes back one health-check `interval` later.
    None,
}

impl HealthCheckKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [HealthCheckKind; 3] = [Self::Http, Self::Tcp, Self::None];

    /// The spelling in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::None => "none",
        }
    }
}

/// What a client receives when no backend can take its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnNoBackend {
    /// The seed's exact `503 Service Unavailable`, then a FIN.
    #[default]
    Http503,
    /// A FIN and no byte.
    Close,
    /// A reset (`SO_LINGER` 0): what non-HTTP clients handle best.
    Reset,
}

impl OnNoBackend {
    /// Every answer, in the order messages list them.
    pub const ALL: [OnNoBackend; 3] = [Self::Http503, Self::Close, Self::Reset];

    /// The spelling in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http503 => "http503",
            Self::Close => "close",
            Self::Reset => "reset",
        }
    }
}

/// Whether connections to a target begin with a PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SendProxy {
    /// No header: the backend sees ringlb's address (the seed's behaviour).
    #[default]
    Off,
    /// A v1 text line, `PROXY TCP4 ...\r\n`.
    V1,
    /// A v2 binary header.
    V2,
}

impl SendProxy {
    /// Every setting, in the order messages list them.
    pub const ALL: [SendProxy; 3] = [Self::Off, Self::V1, Self::V2];

    /// The spelling in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }

    /// The header version to send, `None` when off.
    pub fn version(self) -> Option<Version> {
        match self {
            Self::Off => None,
            Self::V1 => Some(Version::V1),
            Self::V2 => Some(Version::V2),
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(HealthCheckKind, OnNoBackend, SendProxy);

/// Longest `health_check_send` or `health_check_expect`, in bytes.
pub const MAX_CHECK_BYTES: usize = 1024;

const CHECK_BYTES_EXPECTED: &str =
    "a non-empty TOML string of at most 1024 bytes, such as \"PING\\r\\n\" or \"+PONG\"";
const PORT_EXPECTED: &str = "a TCP port from 1 to 65535";

/// One of `choices` by its spelling; the message lists them all.
fn choice<T: Copy + fmt::Display>(
    key: &str,
    value: &Value,
    choices: &[T],
    what: &str,
) -> Result<T, Invalid> {
    let names: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    let expected = format!("one of {}", names.join(", "));
    let text = string(key, value, &expected)?;
    choices
        .iter()
        .copied()
        .find(|c| c.to_string() == text)
        .ok_or_else(|| Invalid::new(key, format!("{text:?} is not {what}; expected {expected}")))
}

pub(super) fn on_no_backend(value: &Value) -> Result<OnNoBackend, Invalid> {
    choice(
        "on_no_backend",
        value,
        &OnNoBackend::ALL,
        "an answer to a client without a backend",
    )
}

pub(super) fn send_proxy(key: &str, value: &Value) -> Result<SendProxy, Invalid> {
    choice(key, value, &SendProxy::ALL, "a PROXY protocol setting")
}

/// The health-check keys of one `[[targets]]` entry, as read from the file.
pub(super) struct RawCheck {
    pub(super) kind: Option<Value>,
    pub(super) endpoint: Option<Value>,
    pub(super) send: Option<Value>,
    pub(super) expect: Option<Value>,
    pub(super) port: Option<Value>,
}

/// The health check of one target, checked for contradictions.
pub(super) struct TargetCheck {
    pub(super) kind: HealthCheckKind,
    /// Empty unless `kind` is HTTP.
    pub(super) endpoint: String,
    pub(super) send: Option<String>,
    pub(super) expect: Option<String>,
    pub(super) port: Option<u16>,
}

/// Reads the health-check keys of target `table_key` (`targets[3]`). The kind defaults to
/// `http` when an endpoint is given, else `tcp`; a key the kind does not use is an error.
pub(super) fn target_check(table_key: &str, raw: RawCheck) -> Result<TargetCheck, Invalid> {
    let key = |name: &str| format!("{table_key}.{name}");
    let explicit = raw
        .kind
        .map(|v| {
            choice(
                &key("health_check"),
                &v,
                &HealthCheckKind::ALL,
                "a health check kind",
            )
        })
        .transpose()?;
    let endpoint_key = key("health_check_endpoint");
    let endpoint = raw
        .endpoint
        .map(|v| health_check_endpoint(&endpoint_key, &v))
        .transpose()?;
    let send = raw
        .send
        .map(|v| check_bytes(&key("health_check_send"), &v))
        .transpose()?;
    let expect = raw
        .expect
        .map(|v| check_bytes(&key("health_check_expect"), &v))
        .transpose()?;
    let port = raw
        .port
        .map(|v| integer(&key("health_check_port"), &v, 1, PORT_EXPECTED))
        .transpose()?;
    let kind = explicit.unwrap_or(match endpoint {
        Some(_) => HealthCheckKind::Http,
        None => HealthCheckKind::Tcp,
    });
    let given = [
        ("health_check_endpoint", endpoint.is_some()),
        ("health_check_send", send.is_some()),
        ("health_check_expect", expect.is_some()),
        ("health_check_port", port.is_some()),
    ];
    for (name, present) in given {
        if present && !uses(kind, name) {
            return Err(contradiction(&key(name), name, kind, explicit.is_some()));
        }
    }
    if kind == HealthCheckKind::Http && endpoint.is_none() {
        return Err(Invalid::new(
            endpoint_key,
            "missing, but health_check = \"http\" requests it; expected an HTTP path such as \
             \"/healthz\", or health_check = \"tcp\" for a plain connect",
        ));
    }
    Ok(TargetCheck {
        kind,
        endpoint: endpoint.unwrap_or_default(),
        send,
        expect,
        port,
    })
}

/// Whether a check of `kind` reads the target key `name`.
fn uses(kind: HealthCheckKind, name: &str) -> bool {
    match kind {
        HealthCheckKind::Http => matches!(name, "health_check_endpoint" | "health_check_port"),
        HealthCheckKind::Tcp => name != "health_check_endpoint",
        HealthCheckKind::None => false,
    }
}

/// The error for key `name` given to a check of `kind` that does not use it.
fn contradiction(key: &str, name: &str, kind: HealthCheckKind, explicit: bool) -> Invalid {
    let why = match (kind, explicit) {
        (HealthCheckKind::Http, false) => " (the default when health_check_endpoint is set)",
        (HealthCheckKind::Tcp, false) => " (the default without health_check_endpoint)",
        _ => "",
    };
    let owner = match name {
        "health_check_endpoint" => "health_check = \"http\"",
        "health_check_port" => "health_check = \"http\" or \"tcp\"",
        _ => "health_check = \"tcp\"",
    };
    let message = match kind {
        HealthCheckKind::None => format!(
            "is set, but this target's health_check is \"none\", which never probes; \
             expected no {name} with health_check = \"none\""
        ),
        _ => format!(
            "is only used by {owner}, but this target's health_check is \"{kind}\"{why}; \
             expected {owner} or no {name}"
        ),
    };
    Invalid::new(key, message)
}

/// A probe payload: a non-empty string of at most [`MAX_CHECK_BYTES`] bytes.
fn check_bytes(key: &str, value: &Value) -> Result<String, Invalid> {
    let text = string(key, value, CHECK_BYTES_EXPECTED)?;
    let problem = match text.len() {
        0 => "is empty".to_owned(),
        n if n > MAX_CHECK_BYTES => format!("is {n} bytes long"),
        _ => return Ok(text.to_owned()),
    };
    Err(Invalid::new(
        key,
        format!("{problem}; expected {CHECK_BYTES_EXPECTED}"),
    ))
}
