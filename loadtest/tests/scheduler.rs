//! The open-loop scheduler against a real replica: it keeps its rate, and when the server
//! stalls it records the queueing delay (coordinated omission corrected) instead of hiding it.

use std::{sync::Arc, thread, time::Duration};

use loadtest::{
    pacer, phase,
    ports::bind_loopback,
    progress::Progress,
    replica::Replica,
    workload::{Mode, Workload},
};
use tokio::runtime::{Builder, Runtime};

fn runtime(name: &str) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .on_thread_start(pacer::tighten_timer_slack)
        .enable_all()
        .build()
        .unwrap()
}

fn rate_workload(rate: f64, connections: usize) -> Arc<Workload> {
    Arc::new(Workload {
        mode: Mode::Rate,
        rate,
        connections,
        bytes: 0,
        timeout: Duration::from_secs(2),
    })
}

#[test]
fn the_rate_scheduler_hits_its_target() {
    let (servers, load) = (runtime("replica"), runtime("load"));
    let replica = Replica::start(bind_loopback().unwrap(), "r0", servers.handle()).unwrap();
    let workload = rate_workload(2000.0, 16);
    let duration = Duration::from_millis(1500);
    let bar = Progress::plain().phase("rate", duration, Mode::Rate);
    let result = phase::run(&load, &workload, replica.local_addr(), duration, &bar);
    let recorder = &result.recorder;
    assert_eq!(recorder.errors.total(), 0);
    assert!(
        (2990..=3010).contains(&recorder.intended),
        "intended {}",
        recorder.intended
    );
    assert_eq!(
        recorder.ok, recorder.intended,
        "every scheduled request answered"
    );
    let achieved = result.throughput();
    assert!(
        (achieved - 2000.0).abs() / 2000.0 < 0.05,
        "achieved {achieved:.0} req/s"
    );
    assert_eq!(recorder.latency.len(), recorder.ok);
}

#[test]
fn a_stalled_server_shows_up_as_queueing_delay() {
    let (servers, load) = (runtime("replica"), runtime("load"));
    let replica =
        Arc::new(Replica::start(bind_loopback().unwrap(), "r0", servers.handle()).unwrap());
    let workload = rate_workload(1000.0, 8);
    let duration = Duration::from_secs(2);
    let stall = Duration::from_millis(400);
    let staller = {
        let replica = Arc::clone(&replica);
        thread::spawn(move || {
            thread::sleep(phase::SETUP + Duration::from_millis(600));
            replica.pause();
            thread::sleep(stall);
            replica.resume();
        })
    };
    let bar = Progress::plain().phase("stall", duration, Mode::Rate);
    let result = phase::run(&load, &workload, replica.local_addr(), duration, &bar);
    staller.join().unwrap();
    let latency = &result.recorder.latency;
    assert_eq!(result.recorder.errors.total(), 0);
    assert_eq!(
        result.recorder.ok, result.recorder.intended,
        "nothing dropped"
    );
    // The requests that were due during the stall each waited for the rest of it: about
    // 1000 req/s x 0.4 s = 400 samples spread from 0 to 400 ms. A closed-loop client measuring
    // from the actual send would have recorded only one slow sample per connection (8).
    let max = Duration::from_micros(latency.max());
    assert!(max >= stall - Duration::from_millis(60), "max {max:?}");
    let slow = latency.count_between(100_000, u64::MAX);
    assert!(slow >= 200, "only {slow} samples took 100 ms or more");
    assert!(
        latency.value_at_quantile(0.5) < 50_000,
        "the median stays low"
    );
}
