//! The scrape: reads every source once and hands the values to the `prometheus-client` encoder.
//!
//! Owns the mapping from ringlb's counters to metric families and labels (a target's and an
//! endpoint's carry their pool's name, since two pools may hold the same target). Runs only when
//! `/metrics` is requested, on the admin thread; never writes a counter.

use std::{fmt, sync::Arc};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge, TypedMetric},
};

use super::{
    names::{self, Family},
    ServiceCounter, Sources, WorkerCounter,
};
use crate::{
    backend::Backend,
    health::AdminState,
    stats::{DOWNSTREAM, UPSTREAM},
};

/// The registry's only collector: every family, computed at scrape time.
#[derive(Debug)]
pub(super) struct Collector {
    sources: Arc<Sources>,
}

impl Collector {
    pub(super) fn new(sources: Arc<Sources>) -> Self {
        Self { sources }
    }
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.process(&mut encoder)?;
        self.workers(&mut encoder)?;
        self.services(&mut encoder)?;
        self.targets(&mut encoder)?;
        self.backends(&mut encoder)
    }
}

/// One endpoint's values, read once per scrape.
struct Row<'a> {
    pool: &'a str,
    target: &'a str,
    addr: String,
    up: bool,
    check_seconds: Option<f64>,
    backend: Option<&'a Backend>,
}

impl Row<'_> {
    fn labels(&self) -> [(&str, &str); 3] {
        [
            ("pool", self.pool),
            ("target", self.target),
            ("addr", &self.addr),
        ]
    }
}

impl Collector {
    fn process(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let s = &self.sources;
        let io = [("backend", s.io_backend())];
        family(encoder, names::IO_BACKEND, [(io, gauge(1))])?;
        single(
            encoder,
            names::DRAINING,
            gauge(s.shutdown.is_triggered() as i64),
        )?;
        single(
            encoder,
            names::OPEN_CONNECTIONS,
            gauge(s.limit.open() as i64),
        )?;
        let totals = [
            (names::REJECTED, WorkerCounter::Rejected),
            (names::RETRIES, WorkerCounter::Retry),
            (names::LIMIT_REACHED, WorkerCounter::LimitReached),
            (names::ACCEPT_ERRORS, WorkerCounter::AcceptError),
            (
                names::PROXY_HEADERS_REFUSED,
                WorkerCounter::ProxyHeaderRefused,
            ),
            (names::NO_LOCAL_PORT, WorkerCounter::NoLocalPort),
        ];
        for (name, event) in totals {
            single(encoder, name, counter(s.total(event)))?;
        }
        let switches = [
            (
                [("to", "splice")],
                counter(s.total(WorkerCounter::ToSplice)),
            ),
            ([("to", "copy")], counter(s.total(WorkerCounter::ToCopy))),
        ];
        family(encoder, names::RELAY_SWITCHES, switches)?;
        let log = s.access_log.get();
        let dropped = log.map_or(0, |log| log.dropped());
        single(encoder, names::ACCESS_LOG_DROPPED, counter(dropped))?;
        let written = log.map_or(0, |log| log.written());
        single(encoder, names::ACCESS_LOG_WRITTEN, counter(written))?;
        single(encoder, names::HEALTH_ROUNDS, counter(s.health_rounds()))
    }

    fn workers(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let samples = self.sources.workers.iter().map(|w| {
            let labels = [("worker", w.id().to_string())];
            (labels, counter(w.get(WorkerCounter::Accepted)))
        });
        family(encoder, names::WORKER_ACCEPTED, samples)
    }

    fn services(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let per_service = [
            (names::SERVICE_CONNECTIONS, ServiceCounter::Accepted),
            (names::SERVICE_NO_BACKEND, ServiceCounter::NoBackend),
            (names::TLS_HELLO_REFUSED, ServiceCounter::TlsHelloRefused),
            (names::SNI_ROUTED, ServiceCounter::Routed),
        ];
        let s = &self.sources;
        for (name, event) in per_service {
            let samples = s.services.iter().enumerate().map(|(index, service)| {
                let labels = [("service", service.as_str())];
                (labels, counter(s.service_total(index, event)))
            });
            family(encoder, name, samples)?;
        }
        Ok(())
    }

    fn targets(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let reports: Vec<_> = (self.sources.pools.iter())
            .map(|p| (p.name.as_str(), p.status.report()))
            .collect();
        let targets = || {
            (reports.iter())
                .flat_map(|(pool, report)| report.targets.iter().map(move |t| (*pool, t)))
        };
        let states = targets().flat_map(|(pool, t)| {
            AdminState::ALL.map(|state| {
                let labels = [
                    ("pool", pool),
                    ("target", t.name.as_str()),
                    ("state", state.as_str()),
                ];
                (labels, gauge(i64::from(t.state == state)))
            })
        });
        family(encoder, names::TARGET_ADMIN_STATE, states)?;
        let weights = targets().map(|(pool, t)| {
            let weight = t.weight_override.unwrap_or(t.weight);
            let labels = [("pool", pool), ("target", t.name.as_str())];
            (labels, gauge(i64::from(weight)))
        });
        family(encoder, names::TARGET_WEIGHT, weights)
    }

    fn backends(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let snapshot = self.sources.snapshot();
        let mut rows = Vec::new();
        for pool in &snapshot.pools {
            for (index, target) in pool.report.targets.iter().enumerate() {
                for endpoint in &target.endpoints {
                    rows.push(Row {
                        pool: &pool.name,
                        target: &target.name,
                        addr: endpoint.addr.to_string(),
                        up: endpoint.healthy,
                        check_seconds: endpoint.check_duration.map(|d| d.as_secs_f64()),
                        backend: pool.backend(index, endpoint.addr),
                    });
                }
            }
        }
        let up = rows.iter().map(|r| (r.labels(), gauge(r.up as i64)));
        family(encoder, names::BACKEND_UP, up)?;
        let live = || rows.iter().filter_map(|r| Some((r, r.backend?)));
        let active = live().map(|(r, b)| (r.labels(), gauge(b.active() as i64)));
        family(encoder, names::BACKEND_ACTIVE, active)?;
        let total = live().map(|(r, b)| (r.labels(), counter(load(&b.stats.total))));
        family(encoder, names::BACKEND_CONNECTIONS, total)?;
        let failures = live().map(|(r, b)| (r.labels(), counter(load(&b.stats.connect_failures))));
        family(encoder, names::BACKEND_CONNECT_FAILURES, failures)?;
        let bytes = live().flat_map(|(r, b)| {
            let moved = b.stats.bytes.total();
            let [pool, target, addr] = r.labels();
            [(UPSTREAM, "upstream"), (DOWNSTREAM, "downstream")].map(|(dir, name)| {
                let labels = [pool, target, addr, ("direction", name)];
                (labels, counter(moved[dir]))
            })
        });
        family(encoder, names::BACKEND_BYTES, bytes)?;
        let checks = rows
            .iter()
            .filter_map(|r| Some((r.labels(), ConstGauge::new(r.check_seconds?))));
        family(encoder, names::BACKEND_CHECK_DURATION, checks)
    }
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

fn counter(value: u64) -> ConstCounter<u64> {
    ConstCounter::new(value)
}

fn gauge(value: i64) -> ConstGauge<i64> {
    ConstGauge::new(value)
}

/// A family with one unlabelled sample.
fn single<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    family: Family,
    metric: M,
) -> fmt::Result {
    let sample = encoder.encode_descriptor(family.name, family.help, None, metric.metric_type())?;
    metric.encode(sample)
}

/// A family with one sample per label set; its type is taken from the metric type `M`.
fn family<L, M, I>(encoder: &mut DescriptorEncoder, family: Family, samples: I) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
    I: IntoIterator<Item = (L, M)>,
{
    let mut samples_of = encoder.encode_descriptor(family.name, family.help, None, M::TYPE)?;
    for (labels, metric) in samples {
        metric.encode(samples_of.encode_family(&labels)?)?;
    }
    Ok(())
}
