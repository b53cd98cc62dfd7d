//! The `[access_log]` table: where the line for each client connection goes (`path`) and how it
//! is spelled (`format`).
//!
//! Owns these keys' types, spellings and checks. Live: a reload hands a changed table to the
//! access log, which reopens (see [`crate::access_log`]). Like the rest of `config`, never opens
//! a file (the server does, at start and on reload) and never panics on input.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::de::{read, string};

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPath {
    /// No access log: connections are not recorded at all.
    Off,
    /// The process's standard error, with its other log lines.
    Stderr,
    /// A file, appended to (created if missing) and reopened on SIGUSR1.
    File(PathBuf),
}

/// How each access-log line is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// One line of text, in the manner of HAProxy's `tcplog`.
    Text,
}

impl LogFormat {
    /// Every format, in the order messages list them.
    pub const ALL: [LogFormat; 2] = [LogFormat::Json, LogFormat::Text];

    /// The spelling in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

/// The `[access_log]` settings (defaults in `defaults.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// Where lines go; [`LogPath::Off`] by default.
    pub path: LogPath,
    /// How they are spelled; JSON by default.
    pub format: LogFormat,
}

impl AccessLog {
    /// Whether connections are recorded.
    pub fn enabled(&self) -> bool {
        self.path != LogPath::Off
    }
}

const PATH_EXPECTED: &str =
    "\"off\", \"stderr\", or the path of a file such as \"/var/log/ringlb/access.log\"";

/// `path`: `"off"`, `"stderr"`, or a file path (not empty, no NUL).
pub(super) mod path {
    use super::*;

    pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<LogPath, D::Error> {
        read(d, |found| {
            let text = string(found, PATH_EXPECTED)?;
            match &*text {
                "off" => Ok(LogPath::Off),
                "stderr" => Ok(LogPath::Stderr),
                "" => Err(format!("is empty; expected {PATH_EXPECTED}")),
                t if t.contains('\0') => {
                    Err(format!("{t:?} is not a path; expected {PATH_EXPECTED}"))
                }
                t => Ok(LogPath::File(PathBuf::from(t))),
            }
        })
    }

    pub(in super::super) fn serialize<S: Serializer>(
        value: &LogPath,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            LogPath::Off => s.serialize_str("off"),
            LogPath::Stderr => s.serialize_str("stderr"),
            LogPath::File(path) => s.collect_str(&path.display()),
        }
    }
}

/// The `[access_log]` table as the file spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileAccessLog {
    #[serde(with = "path")]
    pub(super) path: LogPath,
    #[serde(with = "super::named")]
    pub(super) format: LogFormat,
}

impl Default for FileAccessLog {
    fn default() -> Self {
        FileAccessLog::from(&AccessLog::default())
    }
}

impl From<&AccessLog> for FileAccessLog {
    fn from(log: &AccessLog) -> Self {
        let AccessLog { path, format } = log;
        FileAccessLog {
            path: path.clone(),
            format: *format,
        }
    }
}

impl From<FileAccessLog> for AccessLog {
    fn from(file: FileAccessLog) -> Self {
        let FileAccessLog { path, format } = file;
        AccessLog { path, format }
    }
}

impl super::table::TableOf for FileAccessLog {
    const EXPECTED: &'static str = "an [access_log] table";
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const TARGET: &str = "[[targets]]\naddress = \"10.0.0.5:80\"\n";

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(&format!("{text}\n{TARGET}"), Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default_and_json() {
        let config = parse("").unwrap();
        assert_eq!(config.live.access_log, AccessLog::default());
        assert!(!config.live.access_log.enabled());
        assert_eq!(config.live.access_log.format, LogFormat::Json);
    }

    #[test]
    fn every_path_form_reads_and_prints_back() {
        for (text, path) in [
            ("off", LogPath::Off),
            ("stderr", LogPath::Stderr),
            ("/var/log/a.log", LogPath::File("/var/log/a.log".into())),
            ("logs/a.log", LogPath::File("logs/a.log".into())),
        ] {
            let config =
                parse(&format!("[access_log]\npath = {text:?}\nformat = \"text\"")).unwrap();
            assert_eq!(config.live.access_log.path, path);
            assert_eq!(config.live.access_log.format, LogFormat::Text);
            let printed = config.to_string();
            assert!(printed.contains("[access_log]"), "{printed}");
            assert!(printed.contains(&format!("path = {text:?}")), "{printed}");
            assert_eq!(
                Config::parse(&printed, Path::new("t.toml")).unwrap(),
                config
            );
        }
    }

    #[test]
    fn a_change_is_live_and_needs_no_restart() {
        let old = parse("").unwrap();
        let mut new = old.clone();
        new.live.access_log = AccessLog {
            path: LogPath::Stderr,
            format: LogFormat::Text,
        };
        assert!(old.restart_keys(&new).is_empty());
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_problem() {
        let e = parse("[access_log]\npath = \"\"").unwrap_err();
        assert!(
            e.starts_with("t.toml: access_log.path: is empty; expected \"off\""),
            "{e}"
        );
        let e = parse("[access_log]\npath = 5").unwrap_err();
        assert!(e.starts_with("t.toml: access_log.path: "), "{e}");
        let e = parse("[access_log]\nformat = \"xml\"").unwrap_err();
        assert!(
            e.contains(
                "access_log.format: \"xml\" is not an access-log format; expected one of \
                        \"json\", \"text\""
            ),
            "{e}"
        );
        let e = parse("[access_log]\nfile = \"x\"").unwrap_err();
        assert!(e.contains("access_log: unknown field `file`"), "{e}");
        let e = parse("access_log = \"stderr\"").unwrap_err();
        assert!(e.contains("access_log: "), "{e}");
        assert!(e.contains("expected an [access_log] table"), "{e}");
    }
}
