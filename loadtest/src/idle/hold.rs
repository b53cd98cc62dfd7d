//! The client side of idle connections, in a child process: `loadtest hold`.
//!
//! Owns opening N connections and keeping them open and silent. They live in a child so that
//! its descriptors do not count against this process's limit, which already holds the
//! backends' side of every connection. The child reports one line on stdout (`opened N`, or
//! `opened K error …` when a connect failed), then holds until its stdin closes (or this
//! process dies: it gets SIGTERM then). Never sends a byte on a held connection.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{ChildStdin, Command},
    sync::mpsc,
    time::Duration,
};

use anyhow::{anyhow, Context};

use crate::process::Supervised;

use super::budget::raise_open_files;

/// How long one connect may take in the child.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the child reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Connections it holds.
    pub opened: usize,
    /// Why it stopped short, if it did.
    pub error: Option<String>,
}

/// Parses the child's line: `opened 9950` or `opened 12 error Connection refused (os error 111)`.
pub fn parse_report(line: &str) -> Result<Report, String> {
    let rest = line
        .trim()
        .strip_prefix("opened ")
        .ok_or_else(|| format!("unexpected report {line:?}"))?;
    let (count, error) = match rest.split_once(" error ") {
        Some((count, error)) => (count, Some(error.to_owned())),
        None => (rest, None),
    };
    let opened = count
        .parse()
        .map_err(|_| format!("unexpected count in {line:?}"))?;
    Ok(Report { opened, error })
}

/// `loadtest hold`: opens `connections` to `addr`, reports, holds until stdin closes.
pub fn serve(addr: SocketAddr, connections: usize) -> anyhow::Result<bool> {
    raise_open_files();
    let mut held = Vec::with_capacity(connections);
    let mut error = None;
    for _ in 0..connections {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => held.push(stream),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match &error {
        Some(e) => writeln!(out, "opened {} error {e}", held.len())?,
        None => writeln!(out, "opened {}", held.len())?,
    }
    out.flush()?;
    let mut sink = [0u8; 64];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    drop(held);
    Ok(error.is_none())
}

/// The parent's handle on a holding child.
#[derive(Debug)]
pub struct Holder {
    process: Supervised,
    stdin: Option<ChildStdin>,
    /// What the child reported.
    pub report: Report,
}

impl Holder {
    /// Starts `loadtest hold` (this executable) against `addr` and waits up to `within` for its
    /// report; its stderr goes to `log`.
    pub fn open(
        addr: SocketAddr,
        connections: usize,
        log: &Path,
        within: Duration,
    ) -> anyhow::Result<Holder> {
        let exe = std::env::current_exe().context("cannot locate this executable")?;
        let mut command = Command::new(exe);
        command
            .arg("hold")
            .arg("--connect")
            .arg(addr.to_string())
            .arg("--connections")
            .arg(connections.to_string());
        let (process, stdin, stdout) =
            Supervised::spawn_piped("hold", command, log).context("cannot start loadtest hold")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(within).map_err(|_| {
            anyhow!(
                "loadtest hold did not report within {within:?}; its output ({}):\n{}",
                log.display(),
                process.log_tail(8)
            )
        })?;
        let report = parse_report(&line)
            .map_err(|e| anyhow!("loadtest hold: {e}; its output:\n{}", process.log_tail(8)))?;
        Ok(Holder {
            process,
            stdin: Some(stdin),
            report,
        })
    }

    /// Closes every held connection: the child exits when its stdin closes (and is stopped if
    /// it does not within `within`).
    pub fn close(mut self, within: Duration) {
        drop(self.stdin.take());
        if !self.process.wait_exit(within) {
            self.process.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        assert_eq!(
            parse_report("opened 9950\n"),
            Ok(Report {
                opened: 9950,
                error: None
            })
        );
        let short = parse_report("opened 12 error Connection refused (os error 111)").unwrap();
        assert_eq!(short.opened, 12);
        assert_eq!(
            short.error.as_deref(),
            Some("Connection refused (os error 111)")
        );
        assert!(parse_report("").is_err());
        assert!(parse_report("opened many").is_err());
    }
}
