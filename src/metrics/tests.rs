//! Unit tests of the registry: sums over workers, joins with the health report, and the text
//! it encodes.

use std::{net::SocketAddr, time::Duration};

use super::*;
use crate::health::{EndpointStatus, ProbeFailure, TargetStatus};

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 8001))
}

fn endpoint(
    addr: SocketAddr,
    healthy: bool,
    last: Option<Result<(), ProbeFailure>>,
) -> EndpointStatus {
    EndpointStatus {
        addr,
        healthy,
        consecutive_successes: 0,
        consecutive_failures: 0,
        last,
        check_duration: Some(Duration::from_millis(250)),
    }
}

/// A registry over `workers` workers and one target with a healthy and a refused endpoint.
fn metrics(workers: usize) -> (Metrics, Vec<Arc<WorkerStats>>, Vec<Arc<Backend>>) {
    let stats: Vec<Arc<WorkerStats>> = (0..workers)
        .map(|i| Arc::new(WorkerStats::new(i)))
        .collect();
    let health = Arc::new(HealthStatus::new());
    let backends = vec![
        Arc::new(Backend::new(0, "api:8001", addr(1))),
        Arc::new(Backend::new(0, "api:8001", addr(2))),
    ];
    health.store(StatusReport {
        round: 7,
        targets: vec![TargetStatus {
            name: "api:8001".into(),
            resolve_error: None,
            state: crate::health::AdminState::Drain,
            weight: 1,
            weight_override: Some(4),
            endpoints: vec![
                endpoint(addr(1), true, Some(Ok(()))),
                endpoint(addr(2), false, Some(Err(ProbeFailure::Refused))),
            ],
        }],
    });
    health.store_backends(backends.clone());
    let limit = Arc::new(ConnectionLimit::new(100));
    let metrics = Metrics::new(stats.clone(), health, limit, Shutdown::new());
    (metrics, stats, backends)
}

/// The value of the sample line that starts with `series ` (name and labels, exactly).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn worker_counters_are_summed_over_workers() {
    let (metrics, stats, _) = metrics(3);
    for (i, worker) in stats.iter().enumerate() {
        for _ in 0..=i {
            worker.add(WorkerCounter::Accepted);
        }
        worker.add(WorkerCounter::Rejected);
    }
    stats[2].add(WorkerCounter::Retry);
    assert_eq!(metrics.total(WorkerCounter::Accepted), 1 + 2 + 3);
    assert_eq!(metrics.per_worker(WorkerCounter::Accepted), [1, 2, 3]);
    assert_eq!(metrics.total(WorkerCounter::Rejected), 3);
    assert_eq!(metrics.total(WorkerCounter::Retry), 1);
    assert_eq!(metrics.total(WorkerCounter::LimitReached), 0);
    let text = metrics.encode();
    assert_eq!(
        sample(&text, "ringlb_rejected_connections_total"),
        Some(3.0)
    );
    assert_eq!(sample(&text, "ringlb_connect_retries_total"), Some(1.0));
    for (worker, count) in [(0, 1.0), (1, 2.0), (2, 3.0)] {
        let series = format!("ringlb_worker_accepted_connections_total{{worker=\"{worker}\"}}");
        assert_eq!(sample(&text, &series), Some(count), "{text}");
    }
}

#[test]
fn backends_are_labelled_by_target_and_address() {
    let (metrics, _, backends) = metrics(2);
    backends[0].connection_opened();
    backends[0].connection_opened();
    backends[0].connection_closed();
    backends[1].connect_failed();
    backends[0].bytes_moved(0, [100, 1000]);
    backends[0].bytes_moved(1, [1, 10]);
    let text = metrics.encode();
    let one = "target=\"api:8001\",addr=\"10.0.0.1:8001\"";
    let two = "target=\"api:8001\",addr=\"10.0.0.2:8001\"";
    let expect = [
        (format!("ringlb_backend_up{{{one}}}"), 1.0),
        (format!("ringlb_backend_up{{{two}}}"), 0.0),
        (format!("ringlb_backend_active_connections{{{one}}}"), 1.0),
        (format!("ringlb_backend_connections_total{{{one}}}"), 2.0),
        (
            format!("ringlb_backend_connect_failures_total{{{two}}}"),
            1.0,
        ),
        (
            format!("ringlb_backend_bytes_total{{{one},direction=\"upstream\"}}"),
            101.0,
        ),
        (
            format!("ringlb_backend_bytes_total{{{one},direction=\"downstream\"}}"),
            1010.0,
        ),
        (
            format!("ringlb_backend_bytes_total{{{two},direction=\"upstream\"}}"),
            0.0,
        ),
        (
            format!("ringlb_backend_health_check_duration_seconds{{{two}}}"),
            0.25,
        ),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, &series), Some(value), "{series} in:\n{text}");
    }
}

#[test]
fn targets_show_their_runtime_state_and_weight() {
    let (metrics, _, _) = metrics(1);
    let text = metrics.encode();
    for (state, value) in [("ready", 0.0), ("drain", 1.0), ("maint", 0.0)] {
        let series = format!("ringlb_target_admin_state{{target=\"api:8001\",state=\"{state}\"}}");
        assert_eq!(sample(&text, &series), Some(value), "{series} in:\n{text}");
    }
    assert_eq!(
        sample(&text, "ringlb_target_weight{target=\"api:8001\"}"),
        Some(4.0),
        "the override, not the file's 1"
    );
}

#[test]
fn process_gauges_follow_their_sources() {
    let (metrics, _, _) = metrics(1);
    let text = metrics.encode();
    assert_eq!(
        sample(&text, "ringlb_io_backend{backend=\"io_uring\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "ringlb_draining"), Some(0.0));
    assert_eq!(sample(&text, "ringlb_health_check_rounds_total"), Some(0.0));
    metrics.set_io_backend("epoll");
    assert_eq!(metrics.io_backend(), "epoll");
    let text = metrics.encode();
    assert_eq!(
        sample(&text, "ringlb_io_backend{backend=\"epoll\"}"),
        Some(1.0)
    );
    assert!(!text.contains("io_uring"), "{text}");
}

#[test]
fn every_family_has_help_and_type_once() {
    let (metrics, _, _) = metrics(2);
    let text = metrics.encode();
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(!families.contains(&name.to_owned()), "{name} twice");
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
            families.push(name.to_owned());
        }
    }
    assert_eq!(families.len(), 22, "{families:?}");
}
