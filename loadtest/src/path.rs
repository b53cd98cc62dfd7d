//! The paths a request can take to a replica, and external targets given on the command line.
//!
//! Owns the names used everywhere else: in flags, file names, the table and `summary.json`.
//! Never starts anything (that is [`crate::lab`]'s job).

use std::{
    fmt,
    net::{SocketAddr, ToSocketAddrs},
    str::FromStr,
};

/// A local path under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum PathKind {
    /// Straight to one replica: the floor no proxy can beat.
    Direct,
    /// Through the ringlb binary of this workspace.
    Ringlb,
    /// Through haproxy in tcp mode.
    Haproxy,
    /// Through nginx's stream module.
    Nginx,
}

impl PathKind {
    /// The path's name in reports and file names.
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Ringlb => "ringlb",
            PathKind::Haproxy => "haproxy",
            PathKind::Nginx => "nginx",
        }
    }
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An existing deployment to load-test: `[NAME=]HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Name in reports; the address (made file-name safe) when none is given. Name a target
    /// `direct` or `haproxy` to get ratios against it.
    pub name: String,
    /// `HOST:PORT` as given.
    pub address: String,
}

impl Target {
    /// Resolves the address (DNS names allowed), preferring the first answer.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        self.address
            .to_socket_addrs()
            .map_err(|e| format!("target {}: cannot resolve {}: {e}", self.name, self.address))?
            .next()
            .ok_or_else(|| format!("target {}: {} resolves to nothing", self.name, self.address))
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, address) = match text.split_once('=') {
            Some((name, address)) => (safe_name(name), address.trim()),
            None => (safe_name(text), text.trim()),
        };
        let port_ok = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || name.is_empty() {
            return Err(format!("{text:?}: expected [NAME=]HOST:PORT"));
        }
        Ok(Target {
            name,
            address: address.to_owned(),
        })
    }
}

/// The process of an existing deployment, for its CPU figures: `NAME=PID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPid {
    /// The `--target` it belongs to (after the same file-name-safe renaming).
    pub name: String,
    /// Its process id; the process and its descendants are counted.
    pub pid: u32,
}

impl FromStr for TargetPid {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, pid) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected NAME=PID"))?;
        let pid: u32 = pid
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: {pid:?} is not a process id"))?;
        let name = safe_name(name);
        if name.is_empty() || pid == 0 {
            return Err(format!("{text:?}: expected NAME=PID"));
        }
        Ok(TargetPid { name, pid })
    }
}

/// `text` with everything but letters, digits, `-` and `_` replaced by `_`.
pub fn safe_name(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_and_without_names() {
        let named: Target = "ringlb=127.0.0.1:8080".parse().unwrap();
        assert_eq!(named.name, "ringlb");
        assert_eq!(named.address, "127.0.0.1:8080");
        let bare: Target = "localhost:9000".parse().unwrap();
        assert_eq!(bare.name, "localhost_9000");
        assert!("nohost".parse::<Target>().is_err());
        assert!("a=b:notaport".parse::<Target>().is_err());
    }

    #[test]
    fn target_pids_parse() {
        let given: TargetPid = "ringlb=1234".parse().unwrap();
        assert_eq!(given.name, "ringlb");
        assert_eq!(given.pid, 1234);
        assert!("ringlb".parse::<TargetPid>().is_err());
        assert!("ringlb=me".parse::<TargetPid>().is_err());
        assert!("=12".parse::<TargetPid>().is_err());
    }

    #[test]
    fn targets_resolve() {
        let target: Target = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(target.resolve().unwrap(), "127.0.0.1:8080".parse().unwrap());
    }
}
