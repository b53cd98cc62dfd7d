//! What the metrics cost: the hot path's counting, and one scrape.
//!
//! `count/*` is what a worker adds per event: one `WorkerStats` increment (per accepted client,
//! 503, retry), one per-service increment (`add_service`, per accepted client of a service) and
//! one `ByteCounters::add` (per relay step that wrote bytes, i.e. about two per
//! request/response exchange), each on a cache line only that worker writes.
//! `encode/<workers>x<endpoints>` is one `/metrics` exposition, on the admin thread.
//!
//! Run with `cargo bench --bench metrics`.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion};
use ringlb::{
    balancer::Balancer,
    config::{HealthCheck, Target, TargetAddress},
    health::HealthChecker,
    limit::ConnectionLimit,
    metrics::{ByteCounters, Metrics, ServiceCounter, WorkerCounter, WorkerStats},
    Shutdown,
};

fn count(c: &mut Criterion) {
    let mut group = c.benchmark_group("count");
    let stats = WorkerStats::new(0, 2);
    group.bench_function("worker_event", |b| {
        b.iter(|| stats.add(black_box(WorkerCounter::Accepted)))
    });
    group.bench_function("service_event", |b| {
        b.iter(|| stats.add_service(black_box(1), black_box(ServiceCounter::Accepted)))
    });
    let bytes = ByteCounters::default();
    group.bench_function("bytes_own_shard", |b| {
        b.iter(|| bytes.add(black_box(1), black_box([1448, 0])))
    });
    group.finish();
}

/// A registry over `workers` workers and `endpoints` endpoints (IP literals, primed without any
/// probe), with some traffic counted.
fn registry(workers: usize, endpoints: usize) -> Metrics {
    let targets = (0..endpoints)
        .map(|i| Target {
            address: TargetAddress {
                // Loopback literals: primed without DNS; no probe is ever sent.
                host: format!(
                    "127.{}.{}.{}",
                    i / 64000 % 250,
                    (i / 250) % 256,
                    i % 250 + 1
                ),
                port: 8001,
            },
            health_check_endpoint: "/healthz".into(),
            weight: 1,
            ..Default::default()
        })
        .collect();
    let settings = HealthCheck {
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        rise: 1,
        fall: 1,
    };
    let mut health = HealthChecker::new(targets, settings, Arc::new(Balancer::new()));
    health.prime();
    let pool = health.pool_handle("default");
    for backend in pool.status.backends().iter() {
        backend.connection_opened();
        backend.bytes_moved(0, [1000, 100_000]);
    }
    let stats: Vec<_> = (0..workers)
        .map(|i| Arc::new(WorkerStats::new(i, 1)))
        .collect();
    for s in &stats {
        s.add(WorkerCounter::Accepted);
        s.add_service(0, ServiceCounter::Accepted);
    }
    let limit = Arc::new(ConnectionLimit::new(10_000));
    let services = vec!["default".to_owned()];
    Metrics::new(stats, vec![pool], services, limit, Shutdown::new())
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (workers, endpoints) in [(2, 3), (16, 100), (64, 1_000)] {
        let metrics = registry(workers, endpoints);
        let id = format!("{workers}x{endpoints}");
        group.bench_function(id, |b| b.iter(|| black_box(metrics.encode())));
    }
    group.finish();
}

criterion_group!(benches, count, encode);
criterion_main!(benches);
