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

use serde::Deserializer;

use super::{
    de::{integer, read, string},
    validate::Invalid,
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
const ENDPOINT_EXPECTED: &str = "an HTTP path such as \"/healthz\"";

/// A target's `health_check_endpoint`: an absolute path an HTTP request line can carry as is.
pub(super) fn endpoint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read(d, |found| {
        let text = string(found, ENDPOINT_EXPECTED)?;
        let problem = if !text.starts_with('/') {
            "does not start with '/'"
        } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "contains whitespace or control characters"
        } else if !text.chars().all(|c| c.is_ascii_graphic()) {
            "contains non-ASCII characters (percent-encode them)"
        } else {
            return Ok(Some(text.into_owned()));
        };
        Err(format!("{text:?} {problem}; expected {ENDPOINT_EXPECTED}"))
    })
}

/// A probe payload (`health_check_send`, `health_check_expect`): a non-empty string of at most
/// [`MAX_CHECK_BYTES`] bytes.
pub(super) fn check_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    read(d, |found| {
        let text = string(found, CHECK_BYTES_EXPECTED)?;
        let problem = match text.len() {
            0 => "is empty".to_owned(),
            n if n > MAX_CHECK_BYTES => format!("is {n} bytes long"),
            _ => return Ok(Some(text.into_owned())),
        };
        Err(format!("{problem}; expected {CHECK_BYTES_EXPECTED}"))
    })
}

/// A target's `health_check_port`.
pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    integer(d, 1, u16::MAX.into(), "a TCP port from 1 to 65535").map(Some)
}

/// The health-check keys of one `[[targets]]` entry, each already a valid value of its own.
pub(super) struct RawCheck {
    pub(super) kind: Option<HealthCheckKind>,
    pub(super) endpoint: Option<String>,
    pub(super) send: Option<String>,
    pub(super) expect: Option<String>,
    pub(super) port: Option<u16>,
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

/// Checks the health-check keys of target `table_key` (`targets[3]`) against each other. The
/// kind defaults to `http` when an endpoint is given, else `tcp`; a key the kind does not use
/// is an error.
pub(super) fn target_check(table_key: &str, raw: RawCheck) -> Result<TargetCheck, Invalid> {
    let key = |name: &str| format!("{table_key}.{name}");
    let explicit = raw.kind;
    let kind = explicit.unwrap_or(match raw.endpoint {
        Some(_) => HealthCheckKind::Http,
        None => HealthCheckKind::Tcp,
    });
    let given = [
        ("health_check_endpoint", raw.endpoint.is_some()),
        ("health_check_send", raw.send.is_some()),
        ("health_check_expect", raw.expect.is_some()),
        ("health_check_port", raw.port.is_some()),
    ];
    for (name, present) in given {
        if present && !uses(kind, name) {
            return Err(contradiction(&key(name), name, kind, explicit.is_some()));
        }
    }
    if kind == HealthCheckKind::Http && raw.endpoint.is_none() {
        return Err(Invalid::new(
            key("health_check_endpoint"),
            "missing, but health_check = \"http\" requests it; expected an HTTP path such as \
             \"/healthz\", or health_check = \"tcp\" for a plain connect",
        ));
    }
    Ok(TargetCheck {
        kind,
        endpoint: raw.endpoint.unwrap_or_default(),
        send: raw.send,
        expect: raw.expect,
        port: raw.port,
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
