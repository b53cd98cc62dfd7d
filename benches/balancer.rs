//! Cost of choosing a backend: every strategy of `ringlb::balancer::Balancer` at 3, 32 and
//! 1,000 backends, from 1, 2, 4 and 8 threads at once, while another thread republishes the
//! backend set every millisecond (alternately with and without one backend, so every publish
//! rebuilds the tables). Two lock-based baselines run under the same load: the seed's design
//! (`Mutex<Vec<Arc<Backend>>>` and an index, locked for every pick) and an `RwLock`.
//!
//! `pick/<picker>/<backends>/<threads>` reports wall time ÷ picks made by all threads together,
//! i.e. the inverse of the aggregate throughput. `pick_alone/<picker>/<backends>` is one thread
//! with no republisher, caches warm. `publish/<strategy>/<backends>` is the control-plane cost of
//! one publish with mixed weights (1 to 4).
//!
//! Run with `cargo bench --bench balancer`; the whole suite takes about three minutes on 2 cores.

use std::{
    hint::black_box,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
        Arc, Barrier, Mutex, RwLock,
    },
    thread,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ringlb::{
    backend::Backend,
    balancer::{Balancer, Strategy},
};

const BACKENDS: [usize; 3] = [3, 32, 1_000];
const THREADS: [usize; 4] = [1, 2, 4, 8];
const REPUBLISH_EVERY: Duration = Duration::from_millis(1);

/// Anything that picks a backend per connection and accepts a new backend set.
trait Picker: Sync {
    fn pick(&self, client: SocketAddr) -> Option<Arc<Backend>>;
    fn publish(&self, backends: Vec<Arc<Backend>>);
}

impl Picker for Balancer {
    fn pick(&self, client: SocketAddr) -> Option<Arc<Backend>> {
        Balancer::pick(self, client)
    }
    fn publish(&self, backends: Vec<Arc<Backend>>) {
        Balancer::publish(self, backends)
    }
}

/// The seed's design: one mutex around the set and the round-robin index.
#[derive(Default)]
struct MutexBaseline(Mutex<(Vec<Arc<Backend>>, usize)>);

impl Picker for MutexBaseline {
    fn pick(&self, _client: SocketAddr) -> Option<Arc<Backend>> {
        let mut guard = self.0.lock().unwrap();
        let (backends, next) = &mut *guard;
        if backends.is_empty() {
            return None;
        }
        *next = (*next + 1) % backends.len();
        Some(Arc::clone(&backends[*next]))
    }
    fn publish(&self, backends: Vec<Arc<Backend>>) {
        self.0.lock().unwrap().0 = backends;
    }
}

/// A read-write lock around the set, with an atomic round-robin index.
#[derive(Default)]
struct RwLockBaseline {
    backends: RwLock<Vec<Arc<Backend>>>,
    next: AtomicUsize,
}

impl Picker for RwLockBaseline {
    fn pick(&self, _client: SocketAddr) -> Option<Arc<Backend>> {
        let backends = self.backends.read().unwrap();
        if backends.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Relaxed) % backends.len();
        Some(Arc::clone(&backends[i]))
    }
    fn publish(&self, backends: Vec<Arc<Backend>>) {
        *self.backends.write().unwrap() = backends;
    }
}

fn backends(n: usize, weight: impl Fn(usize) -> u32) -> Vec<Arc<Backend>> {
    (0..n)
        .map(|i| {
            let addr = SocketAddr::from((Ipv4Addr::from(0x7f01_0000 + i as u32), 8000));
            let name = format!("app-{i}.internal:8000");
            Arc::new(Backend::with_weight(i, name, addr, weight(i)))
        })
        .collect()
}

fn client(thread: usize, i: u64) -> SocketAddr {
    let ip = 0xc612_0000u32
        .wrapping_add((thread as u32) << 20)
        .wrapping_add(i as u32);
    SocketAddr::from((Ipv4Addr::from(ip), 40_000))
}

/// `picks` picks shared out between `threads` threads started together; wall time of the lot.
fn run(picker: &dyn Picker, threads: usize, picks: u64) -> Duration {
    let per_thread = picks.div_ceil(threads as u64).max(1);
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..per_thread {
                        black_box(picker.pick(black_box(client(t, i))));
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    // Scale back to exactly `picks` when they did not divide evenly.
    (end - start).mul_f64(picks as f64 / (per_thread * threads as u64) as f64)
}

/// Publishes `full` and `full` less its last backend alternately, every millisecond, until
/// `stop`.
fn republish(picker: &dyn Picker, full: &[Arc<Backend>], stop: &AtomicBool) {
    let partial = &full[..full.len() - 1];
    let mut next = Instant::now();
    let mut flip = false;
    while !stop.load(Relaxed) {
        if std::env::var_os("NOREPUB").is_some() {
            thread::sleep(REPUBLISH_EVERY);
            continue;
        }
        let set = if flip { partial } else { full };
        picker.publish(set.to_vec());
        flip = !flip;
        next += REPUBLISH_EVERY;
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => thread::sleep(wait),
            None => next = Instant::now(),
        }
    }
}

fn pickers() -> Vec<(String, Box<dyn Picker>)> {
    let mut pickers: Vec<(String, Box<dyn Picker>)> = Strategy::ALL
        .into_iter()
        .map(|s| {
            (
                s.to_string(),
                Box::new(Balancer::with_strategy(s)) as Box<dyn Picker>,
            )
        })
        .collect();
    pickers.push(("mutex_baseline".into(), Box::<MutexBaseline>::default()));
    pickers.push(("rwlock_baseline".into(), Box::<RwLockBaseline>::default()));
    pickers
}

fn pick(c: &mut Criterion) {
    for (name, picker) in pickers() {
        let mut group = c.benchmark_group(format!("pick/{name}"));
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10);
        for n in BACKENDS {
            let full = backends(n, |_| 1);
            picker.publish(full.clone());
            let stop = AtomicBool::new(false);
            thread::scope(|scope| {
                let (picker, full, stop) = (&*picker, &full, &stop);
                scope.spawn(move || republish(picker, full, stop));
                for threads in THREADS {
                    group.bench_with_input(
                        BenchmarkId::new(n.to_string(), threads),
                        &threads,
                        |b, &threads| b.iter_custom(|picks| run(picker, threads, picks)),
                    );
                }
                stop.store(true, Relaxed);
            });
        }
        group.finish();
    }
}

/// One thread and no republisher: the cost of a pick on its own, caches warm.
fn pick_alone(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick_alone");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    for (name, picker) in pickers() {
        for n in BACKENDS {
            picker.publish(backends(n, |_| 1));
            let mut i = 0;
            group.bench_function(BenchmarkId::new(&name, n), |b| {
                b.iter(|| {
                    i += 1;
                    picker.pick(black_box(client(0, i)))
                })
            });
        }
    }
    group.finish();
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    for strategy in Strategy::ALL {
        let balancer = Balancer::with_strategy(strategy);
        for n in BACKENDS {
            let mixed = backends(n, |i| 1 + (i % 4) as u32);
            group.bench_function(BenchmarkId::new(strategy.to_string(), n), |b| {
                b.iter(|| balancer.publish(mixed.clone()))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = pick_alone, pick, publish
}
criterion_main!(benches);
