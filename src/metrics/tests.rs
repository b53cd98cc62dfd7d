//! Unit tests of the registry: sums over workers and services, joins with every pool's health
//! report, and the text it encodes.

use std::{net::SocketAddr, time::Duration};

use super::*;
use crate::{
    backend::Backend,
    health::{AdminState, EndpointStatus, ProbeFailure, StatusReport, TargetStatus},
};

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

fn target(
    state: AdminState,
    weight_override: Option<u32>,
    endpoints: Vec<EndpointStatus>,
) -> TargetStatus {
    TargetStatus {
        name: "api:8001".into(),
        resolve_error: None,
        state,
        weight: 1,
        weight_override,
        endpoints,
    }
}

/// A registry over `workers` workers, services `default` and `tls`, and two pools that both
/// hold a target `api:8001`: `web` (drained, weight 4, a healthy and a refused endpoint; 7
/// rounds) and `db` (ready, one healthy endpoint; 5 rounds). The backends are `web`'s two, then
/// `db`'s one.
fn metrics(workers: usize) -> (Metrics, Vec<Arc<WorkerStats>>, Vec<Arc<Backend>>) {
    let stats: Vec<Arc<WorkerStats>> = (0..workers)
        .map(|i| Arc::new(WorkerStats::new(i, 2)))
        .collect();
    let (web, db) = (test_pool("web"), test_pool("db"));
    let backends = vec![
        Arc::new(Backend::new(0, "api:8001", addr(1))),
        Arc::new(Backend::new(0, "api:8001", addr(2))),
        Arc::new(Backend::new(0, "api:8001", addr(3))),
    ];
    web.status.store(StatusReport {
        round: 7,
        targets: vec![target(
            AdminState::Drain,
            Some(4),
            vec![
                endpoint(addr(1), true, Some(Ok(()))),
                endpoint(addr(2), false, Some(Err(ProbeFailure::Refused))),
            ],
        )],
    });
    web.status.store_backends(backends[..2].to_vec());
    web.status.round_finished(7);
    db.status.store(StatusReport {
        round: 5,
        targets: vec![target(
            AdminState::Ready,
            None,
            vec![endpoint(addr(3), true, Some(Ok(())))],
        )],
    });
    db.status.store_backends(backends[2..].to_vec());
    db.status.round_finished(5);
    let limit = Arc::new(ConnectionLimit::new(100));
    let services = vec!["default".to_owned(), "tls".to_owned()];
    let metrics = Metrics::new(
        stats.clone(),
        vec![web, db],
        services,
        limit,
        Shutdown::new(),
    );
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
fn service_counters_are_summed_over_workers_per_service() {
    let (metrics, stats, _) = metrics(2);
    stats[0].add_service(0, ServiceCounter::Accepted);
    stats[1].add_service(0, ServiceCounter::Accepted);
    stats[1].add_service(1, ServiceCounter::Accepted);
    stats[0].add_service(1, ServiceCounter::Routed);
    stats[1].add_service(1, ServiceCounter::TlsHelloRefused);
    stats[0].add_service(0, ServiceCounter::NoBackend);
    stats[0].add_service(9, ServiceCounter::NoBackend);
    assert_eq!(metrics.service_total(0, ServiceCounter::Accepted), 2);
    assert_eq!(metrics.service_total(9, ServiceCounter::NoBackend), 0);
    assert_eq!(metrics.services(), ["default", "tls"]);
    let text = metrics.encode();
    let expect = [
        ("ringlb_service_connections_total{service=\"default\"}", 2.0),
        ("ringlb_service_connections_total{service=\"tls\"}", 1.0),
        ("ringlb_service_no_backend_total{service=\"default\"}", 1.0),
        ("ringlb_service_no_backend_total{service=\"tls\"}", 0.0),
        ("ringlb_tls_hello_refused_total{service=\"default\"}", 0.0),
        ("ringlb_tls_hello_refused_total{service=\"tls\"}", 1.0),
        ("ringlb_sni_routed_total{service=\"default\"}", 0.0),
        ("ringlb_sni_routed_total{service=\"tls\"}", 1.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
}

#[test]
fn backends_are_labelled_by_pool_target_and_address() {
    let (metrics, _, backends) = metrics(2);
    backends[0].connection_opened();
    backends[0].connection_opened();
    backends[0].connection_closed();
    backends[1].connect_failed();
    backends[0].bytes_moved(0, [100, 1000]);
    backends[0].bytes_moved(1, [1, 10]);
    backends[2].connection_opened();
    let text = metrics.encode();
    let one = "pool=\"web\",target=\"api:8001\",addr=\"10.0.0.1:8001\"";
    let two = "pool=\"web\",target=\"api:8001\",addr=\"10.0.0.2:8001\"";
    let three = "pool=\"db\",target=\"api:8001\",addr=\"10.0.0.3:8001\"";
    let expect = [
        (format!("ringlb_backend_up{{{three}}}"), 1.0),
        (format!("ringlb_backend_active_connections{{{three}}}"), 1.0),
        (format!("ringlb_backend_connections_total{{{three}}}"), 1.0),
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
fn targets_show_their_runtime_state_and_weight_per_pool() {
    let (metrics, _, _) = metrics(1);
    let text = metrics.encode();
    for (pool, state, value) in [
        ("web", "ready", 0.0),
        ("web", "drain", 1.0),
        ("web", "maint", 0.0),
        ("db", "ready", 1.0),
        ("db", "drain", 0.0),
    ] {
        let series = format!(
            "ringlb_target_admin_state{{pool=\"{pool}\",target=\"api:8001\",state=\"{state}\"}}"
        );
        assert_eq!(sample(&text, &series), Some(value), "{series} in:\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "ringlb_target_weight{pool=\"web\",target=\"api:8001\"}"
        ),
        Some(4.0),
        "the override, not the file's 1"
    );
    assert_eq!(
        sample(
            &text,
            "ringlb_target_weight{pool=\"db\",target=\"api:8001\"}"
        ),
        Some(1.0)
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
    assert_eq!(
        sample(&text, "ringlb_health_check_rounds_total"),
        Some(12.0),
        "7 rounds of web and 5 of db"
    );
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
    assert_eq!(families.len(), 26, "{families:?}");
}
