//! The replica's routes: which method and path get which answer.
//!
//! Owns the API surface (`GET /spells`, `POST /spells`, `GET /healthz`, `POST /echo`) and its
//! error statuses. Never touches a socket: `/echo` streams, so it is only *recognised* here
//! ([`is_echo`]) and carried out by the connection loop.

use std::sync::Arc;

use super::{http::Head, State};

/// The largest request body accepted outside `/echo`.
pub const MAX_BODY: usize = 1 << 20;

/// A response body.
#[derive(Debug, Clone)]
pub enum Body {
    /// Fixed text.
    Static(&'static str),
    /// A buffer built for this request.
    Owned(Vec<u8>),
    /// A shared, pre-rendered buffer.
    Shared(Arc<Vec<u8>>),
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        match self {
            Body::Static(s) => s.as_bytes(),
            Body::Owned(v) => v,
            Body::Shared(v) => v,
        }
    }
}

/// A routed answer, owned so that it outlives the request buffer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Body,
    /// `Allow` header for 405.
    pub allow: Option<&'static str>,
}

impl Reply {
    fn text(status: u16, text: &'static str) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body: Body::Static(text),
            allow: None,
        }
    }

    fn json(status: u16, body: Body) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body,
            allow: None,
        }
    }

    fn not_allowed(allow: &'static str) -> Reply {
        Reply {
            allow: Some(allow),
            ..Reply::text(405, "method not allowed\n")
        }
    }
}

/// True for `POST /echo`, whose body is streamed back instead of buffered.
pub fn is_echo(head: &Head) -> bool {
    head.method == "POST" && head.path == "/echo"
}

/// Answers a buffered request (anything but [`is_echo`]); `body` is the complete body.
pub fn route(head: &Head, body: &[u8], state: &State) -> Reply {
    match (head.method.as_str(), head.path.as_str()) {
        (_, "/echo") => Reply::not_allowed("POST"),
        ("GET", "/spells") => Reply::json(200, Body::Shared(state.spells.json())),
        ("POST", "/spells") => match state.spells.add(body) {
            Ok(spell) => Reply::json(
                201,
                Body::Owned(serde_json::to_vec(&spell).unwrap_or_default()),
            ),
            Err(invalid) => Reply {
                body: Body::Owned(format!("{}\n", invalid.0).into_bytes()),
                ..Reply::text(400, "")
            },
        },
        (_, "/spells") => Reply::not_allowed("GET, POST"),
        ("GET", "/healthz") if state.is_healthy() => Reply::text(200, "ok\n"),
        ("GET", "/healthz") => Reply::text(503, "unhealthy\n"),
        (_, "/healthz") => Reply::not_allowed("GET"),
        _ => Reply::text(404, "not found\n"),
    }
}

/// True when `head` announces a body this replica refuses to buffer.
pub fn body_too_large(head: &Head) -> bool {
    head.content_length > MAX_BODY && !is_echo(head)
}
