//! `ringlb ctl`: the runtime API from the shell. `ringlb ctl --config FILE drain api-1:8080`,
//! `ready`, `maint`, `weight api-1:8080 5` (or `reset`), and `status`; `--pool NAME` says
//! which pool's target is meant when several pools hold that name.
//!
//! Owns the subcommands, the request each one sends and reading the answer: the admin address
//! comes from the configuration (as for `--probe-admin`, an unspecified IP means loopback) and
//! the token from its `[admin] token_file`, read under the same rules as the server's. One
//! bounded, blocking HTTP/1.1 exchange. Never runs inside a serving ringlb, never prints the
//! token.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use super::{
    api,
    probe::probe_addr,
    token::{self, TokenError},
};
use crate::{health::AdminState, Config};

/// Most bytes of an answer read (`/status` of a large deployment included).
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The longest one exchange may take, connect included: past the admin's own exchange deadline.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What `ringlb ctl` does.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Print GET /status: every target with its state, weight and endpoints (JSON).
    Status,
    /// Put TARGET back in rotation: the file's weight (or its override), probes decide health.
    Ready {
        /// The target as configured, host:port.
        target: String,
        /// The pool holding it; needed only when several pools hold that name.
        #[arg(long, value_name = "NAME")]
        pool: Option<String>,
    },
    /// Give TARGET no new connection; its open connections run to their end. Still probed.
    Drain {
        /// The target as configured, host:port.
        target: String,
        /// The pool holding it; needed only when several pools hold that name.
        #[arg(long, value_name = "NAME")]
        pool: Option<String>,
    },
    /// Take TARGET out of rotation and stop probing it (maintenance).
    Maint {
        /// The target as configured, host:port.
        target: String,
        /// The pool holding it; needed only when several pools hold that name.
        #[arg(long, value_name = "NAME")]
        pool: Option<String>,
    },
    /// Give TARGET this weight instead of the file's; `reset` goes back to the file's.
    Weight {
        /// The target as configured, host:port.
        target: String,
        /// A whole number (0 takes no new connection) or `reset`.
        #[arg(value_parser = weight)]
        weight: Weight,
        /// The pool holding it; needed only when several pools hold that name.
        #[arg(long, value_name = "NAME")]
        pool: Option<String>,
    },
}

/// A weight on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// This weight.
    Set(u32),
    /// The file's weight again.
    Reset,
}

fn weight(text: &str) -> Result<Weight, String> {
    match text {
        "reset" => Ok(Weight::Reset),
        _ => text
            .parse()
            .map(Weight::Set)
            .map_err(|_| format!("{text:?} is not a weight; expected a whole number or reset")),
    }
}

/// The admin's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status code.
    pub status: u16,
    /// Its body.
    pub body: String,
}

impl Answer {
    /// Whether the request succeeded (2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// `[admin] enabled = false`: there is no admin listener to ask.
    #[error("[admin] enabled = false in the configuration: there is no admin listener to ask")]
    Disabled,
    /// The token file is unusable.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// No connection, or the exchange failed or timed out.
    #[error("cannot ask {addr}: {source}")]
    Io {
        /// The admin address.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// What came back is not an HTTP answer.
    #[error("{addr} did not answer HTTP: {start:?}")]
    NotHttp {
        /// The admin address.
        addr: SocketAddr,
        /// The first bytes of what came back.
        start: String,
    },
}

impl Command {
    /// The method, path and body of this command's request.
    fn request(&self) -> (&'static str, String, String) {
        let path = |target: &str, field: &str, pool: &Option<String>| {
            let query = pool
                .as_deref()
                .map_or_else(String::new, |p| format!("?pool={}", api::encode(p)));
            format!("{}{}/{field}{query}", api::PREFIX, api::encode(target))
        };
        let state = |target: &str, pool, state: AdminState| {
            (
                "POST",
                path(target, "state", pool),
                state.as_str().to_owned(),
            )
        };
        match self {
            Command::Status => ("GET", "/status".to_owned(), String::new()),
            Command::Ready { target, pool } => state(target, pool, AdminState::Ready),
            Command::Drain { target, pool } => state(target, pool, AdminState::Drain),
            Command::Maint { target, pool } => state(target, pool, AdminState::Maint),
            Command::Weight {
                target,
                weight,
                pool,
            } => {
                let path = path(target, "weight", pool);
                let body = match weight {
                    Weight::Set(w) => w.to_string(),
                    Weight::Reset => "reset".to_owned(),
                };
                ("POST", path, body)
            }
        }
    }
}

/// Sends `command` to the admin listener `config` describes, with the token of its
/// `[admin] token_file` (none if the key is absent: the server then says how to enable the API).
pub fn run(config: &Config, command: &Command) -> Result<Answer, CtlError> {
    let admin = &config.startup.admin;
    if !admin.enabled {
        return Err(CtlError::Disabled);
    }
    let token = match command {
        Command::Status => None,
        _ => token::configured(admin.token_file.as_deref())?,
    };
    let addr = probe_addr(admin.listen);
    let (method, path, body) = command.request();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let mut bytes = Vec::new();
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    bytes.extend_from_slice(request.as_bytes());
    if let Some(token) = &token {
        bytes.extend_from_slice(b"Authorization: Bearer ");
        bytes.extend_from_slice(token.expose());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body.as_bytes());
    let raw = exchange(addr, &bytes).map_err(|source| CtlError::Io { addr, source })?;
    parse_answer(&raw).ok_or_else(|| CtlError::NotHttp {
        addr,
        start: String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned(),
    })
}

/// Sends `request` to `addr` and reads the whole answer (the admin closes after it).
fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + TIMEOUT;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    };
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_write_timeout(Some(left()?))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while answer.len() < MAX_ANSWER {
        stream.set_read_timeout(Some(left()?))?;
        match stream.read(&mut buf)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    Ok(answer)
}

/// The status code and body of a raw answer.
fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut fields = status_line.split(' ');
    let version = fields.next()?;
    let status = fields.next()?.parse().ok()?;
    version.starts_with("HTTP/1.").then(|| Answer {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_requests() {
        let target = "[::1]:8080".to_owned();
        let drain = Command::Drain {
            target: target.clone(),
            pool: None,
        };
        assert_eq!(
            drain.request(),
            (
                "POST",
                "/targets/%5B::1%5D:8080/state".into(),
                "drain".into()
            )
        );
        let weight = Command::Weight {
            target: "api-1:8080".into(),
            weight: Weight::Set(5),
            pool: None,
        };
        assert_eq!(
            weight.request(),
            ("POST", "/targets/api-1:8080/weight".into(), "5".into())
        );
        let reset = Command::Weight {
            target: target.clone(),
            weight: Weight::Reset,
            pool: Some("web pool".into()),
        };
        assert_eq!(
            reset.request().1,
            "/targets/%5B::1%5D:8080/weight?pool=web%20pool"
        );
        let maint = Command::Maint {
            target,
            pool: Some("db".into()),
        };
        assert_eq!(
            maint.request(),
            (
                "POST",
                "/targets/%5B::1%5D:8080/state?pool=db".into(),
                "maint".into()
            )
        );
        assert_eq!(reset.request().2, "reset");
        assert_eq!(Command::Status.request().0, "GET");
        assert_eq!(weight_arg("7"), Ok(Weight::Set(7)));
        assert!(weight_arg("-1").is_err());
    }

    #[test]
    fn pool_is_an_option_of_every_target_command() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            command: Command,
        }
        let parse = |args: &[&str]| {
            let args = ["ctl"].iter().chain(args);
            <Cli as clap::Parser>::try_parse_from(args).map(|c| c.command)
        };
        assert_eq!(
            parse(&["drain", "a:80", "--pool", "web"]).unwrap(),
            Command::Drain {
                target: "a:80".into(),
                pool: Some("web".into())
            }
        );
        assert_eq!(
            parse(&["weight", "--pool", "db", "a:80", "reset"]).unwrap(),
            Command::Weight {
                target: "a:80".into(),
                weight: Weight::Reset,
                pool: Some("db".into())
            }
        );
        assert!(matches!(
            parse(&["ready", "a:80"]).unwrap(),
            Command::Ready { pool: None, .. }
        ));
        assert!(parse(&["status", "--pool", "web"]).is_err());
    }

    fn weight_arg(text: &str) -> Result<Weight, String> {
        super::weight(text)
    }

    #[test]
    fn answers_are_read_whole() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope\n";
        assert_eq!(
            parse_answer(raw),
            Some(Answer {
                status: 401,
                body: "nope\n".into()
            })
        );
        assert_eq!(parse_answer(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_answer(b"garbage\r\n\r\n"), None);
    }

    #[test]
    fn a_disabled_admin_is_not_asked() {
        let mut config = Config::new(Vec::new());
        config.startup.admin.enabled = false;
        assert!(matches!(
            run(&config, &Command::Status),
            Err(CtlError::Disabled)
        ));
    }
}
