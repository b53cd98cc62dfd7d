//! The two spellings of a record: one JSON object per line, or one line of text in the manner
//! of HAProxy's `tcplog`.
//!
//! Owns the field names, their order and how each value is written, and [`LogNames`], which
//! turns a record's service and pool indices into names. Runs on the writer thread only, never
//! on a worker: every string of the log is made here. Never does I/O (it appends to a buffer
//! the writer owns).

use std::{
    fmt::Display,
    io::Write,
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use serde::{Serialize, Serializer};

use super::record::Record;
use crate::config::LogFormat;

/// The seed form's one service and pool, and the name shown for an index no list holds.
pub const DEFAULT_NAME: &str = "default";

/// The names of the effective services and pools, in the order a [`Record`]'s indices count.
/// Empty lists (the `Default`) name every index [`DEFAULT_NAME`], as the seed form would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogNames {
    /// The effective services' names.
    pub services: Vec<String>,
    /// The effective pools' names.
    pub pools: Vec<String>,
}

impl LogNames {
    /// The name of service `index`; [`DEFAULT_NAME`] for one the list does not hold (a record
    /// is never worth a panic, and the seed form's one service is named so).
    fn service(&self, index: u16) -> &str {
        let name = self.services.get(usize::from(index));
        name.map_or(DEFAULT_NAME, String::as_str)
    }

    /// The name of pool `index`, `None` when no pool was chosen; [`DEFAULT_NAME`] for an index
    /// the list does not hold.
    fn pool(&self, index: Option<u16>) -> Option<&str> {
        let index = usize::from(index?);
        Some(self.pools.get(index).map_or(DEFAULT_NAME, String::as_str))
    }
}

/// Turns a worker's [`Instant`] into wall-clock time: one pair of clock readings taken by the
/// writer for a whole batch, so a record costs its worker no wall-clock reading.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    /// Both clocks, now.
    pub fn now() -> Clock {
        Clock {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// The wall-clock time of `at`.
    pub fn wall(&self, at: Instant) -> SystemTime {
        match self.mono.checked_duration_since(at) {
            Some(ago) => self.wall - ago,
            None => self.wall + at.duration_since(self.mono),
        }
    }
}

/// Appends `record` as one line (with its `\n`) to `out`, its service and pool named by
/// `names`.
pub fn write_line(
    out: &mut Vec<u8>,
    record: &Record,
    names: &LogNames,
    format: LogFormat,
    clock: &Clock,
) {
    let ts = humantime::format_rfc3339_millis(clock.wall(record.ended));
    match format {
        LogFormat::Json => json(out, record, names, &ts),
        LogFormat::Text => text(out, record, names, &ts),
    }
    out.push(b'\n');
}

/// A duration in milliseconds with microsecond precision, as a JSON number.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// The JSON object; every field present, `null` where a value is missing.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(serialize_with = "display")]
    ts: &'a dyn Display,
    service: &'a str,
    pool: Option<&'a str>,
    #[serde(serialize_with = "display")]
    client: &'a SocketAddr,
    #[serde(serialize_with = "display_option")]
    target: Option<SocketAddr>,
    sni: Option<&'a str>,
    bytes_up: u64,
    bytes_down: u64,
    connect_ms: Option<f64>,
    duration_ms: f64,
    retries: u8,
    termination: &'static str,
}

fn display<S: Serializer, T: Display + ?Sized>(value: &&T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(*value)
}

fn display_option<S: Serializer>(value: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(addr) => s.collect_str(addr),
        None => s.serialize_none(),
    }
}

fn json(out: &mut Vec<u8>, r: &Record, names: &LogNames, ts: &dyn Display) {
    let line = Line {
        ts,
        service: names.service(r.service),
        pool: names.pool(r.pool),
        client: &r.client,
        target: r.target,
        sni: r.sni.as_ref().map(|name| name.as_str()),
        bytes_up: r.bytes_up,
        bytes_down: r.bytes_down,
        connect_ms: r.connect.map(millis),
        duration_ms: millis(r.duration),
        retries: r.retries,
        termination: r.termination.as_str(),
    };
    // Writing plain fields into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &line);
}

/// `ts client service pool/target connect_ms/duration_ms bytes_up/bytes_down retries
/// termination sni`, `-` for a missing value:
///
/// `2024-05-01T12:00:00.123Z 10.0.0.9:51234 default default/10.0.0.5:8001 0.412/12.031 78/512 0
/// client_close -`
fn text(out: &mut Vec<u8>, r: &Record, names: &LogNames, ts: &dyn Display) {
    let target = r.target.map_or_else(|| "-".to_owned(), |t| t.to_string());
    let connect = r
        .connect
        .map_or_else(|| "-".to_owned(), |c| format!("{:.3}", millis(c)));
    // The line splits on spaces: a server name never holds one (a checked DNS name); service
    // and pool names are meant to be plain identifiers, and are written as they are.
    let _ = write!(
        out,
        "{ts} {client} {service} {pool}/{target} {connect}/{duration:.3} \
         {up}/{down} {retries} {termination} {sni}",
        service = names.service(r.service),
        pool = names.pool(r.pool).unwrap_or("-"),
        sni = r.sni.as_ref().map_or("-", |name| name.as_str()),
        client = r.client,
        duration = millis(r.duration),
        up = r.bytes_up,
        down = r.bytes_down,
        retries = r.retries,
        termination = r.termination,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::Termination;

    fn record(clock: &Clock) -> Record {
        Record {
            ended: clock.mono,
            client: "10.0.0.9:51234".parse().unwrap(),
            service: 0,
            pool: Some(0),
            sni: None,
            target: Some("10.0.0.5:8001".parse().unwrap()),
            bytes_up: 78,
            bytes_down: 512,
            connect: Some(Duration::from_micros(412)),
            duration: Duration::from_micros(12_031),
            retries: 1,
            termination: Termination::ClientClose,
        }
    }

    fn clock() -> Clock {
        Clock {
            wall: SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_564_800_123),
            mono: Instant::now(),
        }
    }

    /// The seed form's names.
    fn seed() -> LogNames {
        LogNames {
            services: vec!["default".into()],
            pools: vec!["default".into()],
        }
    }

    /// Services `plain` and `tls`, pools `web`, `api` and `admin`.
    fn names() -> LogNames {
        let owned = |names: &[&str]| names.iter().map(|&n| n.to_owned()).collect();
        LogNames {
            services: owned(&["plain", "tls"]),
            pools: owned(&["web", "api", "admin"]),
        }
    }

    fn line(r: &Record, names: &LogNames, format: LogFormat, clock: &Clock) -> String {
        let mut out = Vec::new();
        write_line(&mut out, r, names, format, clock);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_json_line_has_every_field_in_order() {
        let clock = clock();
        assert_eq!(
            line(&record(&clock), &seed(), LogFormat::Json, &clock),
            "{\"ts\":\"2024-05-01T12:00:00.123Z\",\"service\":\"default\",\"pool\":\"default\",\
             \"client\":\"10.0.0.9:51234\",\"target\":\"10.0.0.5:8001\",\"sni\":null,\
             \"bytes_up\":78,\"bytes_down\":512,\"connect_ms\":0.412,\"duration_ms\":12.031,\
             \"retries\":1,\"termination\":\"client_close\"}\n"
        );
    }

    #[test]
    fn missing_values_are_null_in_json_and_a_dash_in_text() {
        let clock = clock();
        let r = Record {
            target: None,
            connect: None,
            client: "[2001:db8::1]:443".parse().unwrap(),
            termination: Termination::NoBackend,
            ..record(&clock)
        };
        let json = line(&r, &seed(), LogFormat::Json, &clock);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v["target"].is_null() && v["connect_ms"].is_null() && v["sni"].is_null());
        assert_eq!(v["client"], "[2001:db8::1]:443");
        assert_eq!(v["termination"], "no_backend");
        assert_eq!(
            line(&r, &seed(), LogFormat::Text, &clock),
            "2024-05-01T12:00:00.123Z [2001:db8::1]:443 default default/- -/12.031 78/512 1 \
             no_backend -\n"
        );
    }

    #[test]
    fn services_pools_and_server_names_are_named_in_both_formats() {
        let clock = clock();
        let routed = Record {
            service: 1,
            pool: Some(2),
            sni: Some(crate::tls::ServerName::new(b"Admin.Example.com").unwrap()),
            ..record(&clock)
        };
        let v: serde_json::Value =
            serde_json::from_str(&line(&routed, &names(), LogFormat::Json, &clock)).unwrap();
        assert_eq!(
            (&v["service"], &v["pool"], &v["sni"]),
            (&"tls".into(), &"admin".into(), &"admin.example.com".into())
        );
        assert_eq!(
            line(&routed, &names(), LogFormat::Text, &clock),
            "2024-05-01T12:00:00.123Z 10.0.0.9:51234 tls admin/10.0.0.5:8001 0.412/12.031 \
             78/512 1 client_close admin.example.com\n"
        );
        let refused = Record {
            pool: None,
            target: None,
            connect: None,
            termination: Termination::TlsHelloRefused,
            ..routed
        };
        let v: serde_json::Value =
            serde_json::from_str(&line(&refused, &names(), LogFormat::Json, &clock)).unwrap();
        assert!(v["pool"].is_null(), "no pool chosen: {v}");
        assert_eq!(
            line(&refused, &names(), LogFormat::Text, &clock),
            "2024-05-01T12:00:00.123Z 10.0.0.9:51234 tls -/- -/12.031 78/512 1 \
             tls_hello_refused admin.example.com\n"
        );
    }

    #[test]
    fn an_index_no_list_holds_is_named_default() {
        let clock = clock();
        let stray = Record {
            service: 7,
            pool: Some(9),
            ..record(&clock)
        };
        let v: serde_json::Value =
            serde_json::from_str(&line(&stray, &names(), LogFormat::Json, &clock)).unwrap();
        assert_eq!(
            (&v["service"], &v["pool"]),
            (&"default".into(), &"default".into())
        );
        let seed_without_names = line(
            &record(&clock),
            &LogNames::default(),
            LogFormat::Text,
            &clock,
        );
        assert_eq!(
            seed_without_names,
            line(&record(&clock), &seed(), LogFormat::Text, &clock)
        );
    }

    #[test]
    fn a_text_line_reads_like_a_tcplog() {
        let clock = clock();
        assert_eq!(
            line(&record(&clock), &seed(), LogFormat::Text, &clock),
            "2024-05-01T12:00:00.123Z 10.0.0.9:51234 default default/10.0.0.5:8001 \
             0.412/12.031 78/512 1 client_close -\n"
        );
    }

    #[test]
    fn the_wall_clock_follows_the_record_not_the_batch() {
        let clock = clock();
        let earlier = clock.mono - Duration::from_millis(250);
        assert_eq!(clock.wall(earlier), clock.wall - Duration::from_millis(250));
        let later = clock.mono + Duration::from_millis(5);
        assert_eq!(clock.wall(later), clock.wall + Duration::from_millis(5));
    }
}
