//! Behaviour of every strategy through the public [`Balancer`] API, including concurrent picks
//! while snapshots are swapped. Table details are tested next to each strategy.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Acquire, Ordering::Release},
        Arc,
    },
};

use super::*;

fn backend(i: usize, weight: u32) -> Arc<Backend> {
    let addr = SocketAddr::from(([127, 0, 1, i as u8], 8000));
    Arc::new(Backend::with_weight(
        i,
        format!("backend-{i}:8000"),
        addr,
        weight,
    ))
}

fn backends(weights: &[u32]) -> Vec<Arc<Backend>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| backend(i, w))
        .collect()
}

fn client(i: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0xc612_0000 + i), 40_000))
}

fn publishing(strategy: Strategy, backends: &[Arc<Backend>]) -> Balancer {
    let balancer = Balancer::with_strategy(strategy);
    balancer.publish(backends.to_vec());
    balancer
}

/// Target index of `n` picks, from client `i` for pick `i`; `open` keeps every connection open.
fn picks(balancer: &Balancer, n: u32, open: bool) -> Vec<usize> {
    (0..n)
        .map(|i| {
            let picked = balancer.pick(client(i)).expect("a backend");
            if open {
                picked.connection_opened();
            }
            picked.target
        })
        .collect()
}

/// Target index of `n` picks that open no connection.
fn picks_from(balancer: &Balancer, n: u32) -> Vec<usize> {
    picks(balancer, n, false)
}

fn counts(picks: &[usize], n: usize) -> Vec<usize> {
    let mut counts = vec![0; n];
    for &p in picks {
        counts[p] += 1;
    }
    counts
}

fn assert_near(counts: &[usize], expected: &[usize]) {
    for (&count, &want) in counts.iter().zip(expected) {
        let slack = want / 10;
        assert!(
            count.abs_diff(want) <= slack,
            "{counts:?}, expected {expected:?} ± 10 %"
        );
    }
}

#[test]
fn balancer_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Balancer>();
    shared::<Snapshot>();
}

#[test]
fn weights_3_1_0_spread_smoothly_for_ordered_strategies() {
    // Least connections and power of two see the connections they hand out stay open, so they
    // fill the two live backends 3:1 as well (with two candidates, p2c always compares both).
    for (strategy, open) in [
        (Strategy::RoundRobin, false),
        (Strategy::LeastConnections, true),
        (Strategy::PowerOfTwo, true),
    ] {
        let balancer = publishing(strategy, &backends(&[3, 1, 0]));
        let picks = picks(&balancer, 400, open);
        assert_near(&counts(&picks, 3), &[300, 100, 0]);
        assert!(
            picks.windows(8).all(|window| window.contains(&1)),
            "{strategy}: light backend missing from 8 consecutive picks: {picks:?}"
        );
    }
}

#[test]
fn weights_3_1_0_spread_for_random_strategies() {
    let pool = backends(&[3, 1, 0]);
    // Idle backends: every p2c comparison ties and the weighted first draw wins.
    let p2c = picks(&publishing(Strategy::PowerOfTwo, &pool), 4_000, false);
    assert_near(&counts(&p2c, 3), &[3_000, 1_000, 0]);
    // One pick per client IP: the Maglev table's 3:1 shares.
    let hashed = picks(&publishing(Strategy::SourceHash, &pool), 4_000, false);
    assert_near(&counts(&hashed, 3), &[3_000, 1_000, 0]);
}

#[test]
fn round_robin_with_equal_weights_strictly_alternates() {
    let balancer = publishing(Strategy::RoundRobin, &backends(&[1, 1, 1]));
    let picks = picks(&balancer, 30, false);
    let first = picks[0];
    for (i, &p) in picks.iter().enumerate() {
        assert_eq!(p, (first + i) % 3, "{picks:?}");
    }
    let weighted = publishing(Strategy::RoundRobin, &backends(&[3, 1]));
    assert_eq!(picks_from(&weighted, 8), [0, 0, 1, 0, 0, 0, 1, 0]);
}

#[test]
fn least_connections_prefers_the_idle_backend_and_rotates_ties() {
    let pool = backends(&[1, 1, 1]);
    let balancer = publishing(Strategy::LeastConnections, &pool);
    // Equal load: the three alternate.
    let picks = picks_from(&balancer, 9);
    assert!(picks.windows(2).all(|w| w[0] != w[1]), "{picks:?}");
    assert_eq!(counts(&picks, 3), [3, 3, 3]);
    // Two busy backends: the idle one every time.
    for _ in 0..4 {
        pool[0].connection_opened();
        pool[2].connection_opened();
    }
    assert!(picks_from(&balancer, 20).iter().all(|&p| p == 1));
    // Relative to weight: 4 connections on weight 4 is lighter than 2 on weight 1.
    let weighted = backends(&[4, 1]);
    let balancer = publishing(Strategy::LeastConnections, &weighted);
    (0..4).for_each(|_| weighted[0].connection_opened());
    (0..2).for_each(|_| weighted[1].connection_opened());
    assert_eq!(picks_from(&balancer, 1), [0]);
}

#[test]
fn power_of_two_compares_two_distinct_candidates() {
    // Two backends: both are always the candidates, so the idle one always wins.
    let pool = backends(&[1, 1]);
    pool[0].connection_opened();
    let balancer = publishing(Strategy::PowerOfTwo, &pool);
    assert!(picks_from(&balancer, 1_000).iter().all(|&p| p == 1));
    // Three backends loaded 0, 5, 10: the busiest always loses, the idle one wins whenever
    // drawn (2 pairs in 3).
    let pool = backends(&[1, 1, 1]);
    (0..5).for_each(|_| pool[1].connection_opened());
    (0..10).for_each(|_| pool[2].connection_opened());
    let balancer = publishing(Strategy::PowerOfTwo, &pool);
    let counts = counts(&picks_from(&balancer, 3_000), 3);
    assert_eq!(counts[2], 0, "{counts:?}");
    assert_near(&counts, &[2_000, 1_000, 0]);
}

#[test]
fn source_hash_keeps_clients_and_moves_only_the_departed_ones() {
    let pool = backends(&[1, 1, 1, 1, 1]);
    let balancer = publishing(Strategy::SourceHash, &pool);
    let targets = |balancer: &Balancer| -> Vec<usize> {
        (0..5_000)
            .map(|i| balancer.pick(client(i)).unwrap().target)
            .collect()
    };
    let before = targets(&balancer);
    // The port is not hashed: another connection from the same IP lands on the same backend.
    for i in 0..100 {
        let mut other_port = client(i);
        other_port.set_port(50_000 + i as u16);
        assert_eq!(
            balancer.pick(other_port).unwrap().target,
            before[i as usize]
        );
    }
    let without_2: Vec<_> = pool.iter().filter(|b| b.target != 2).cloned().collect();
    balancer.publish(without_2);
    let after = targets(&balancer);
    let (mut stayed, mut others) = (0, 0);
    for (&b, &a) in before.iter().zip(&after) {
        assert_ne!(a, 2);
        if b != 2 {
            others += 1;
            stayed += usize::from(a == b);
        }
    }
    assert!(
        stayed * 100 >= others * 90,
        "only {stayed} of {others} clients stayed"
    );
    balancer.publish(pool.clone());
    assert_eq!(
        targets(&balancer),
        before,
        "re-adding the backend restores every client"
    );
    // Publication order does not matter: the table only depends on the set.
    balancer.publish(pool.iter().rev().cloned().collect());
    assert_eq!(targets(&balancer), before);
}

#[test]
fn pick_excluding_never_returns_the_excluded_backend() {
    for strategy in Strategy::ALL {
        for weights in [&[1, 1, 1][..], &[1_000, 1, 1], &[1, 1_000, 0]] {
            let pool = backends(weights);
            let balancer = publishing(strategy, &pool);
            for i in 0..500 {
                let picked = balancer.pick_excluding(client(i), &pool[1]).unwrap();
                assert_ne!(picked.target, 1, "{strategy} {weights:?}");
                assert_ne!(picked.weight(), 0, "{strategy} {weights:?}");
                let both = [&*pool[0], &*pool[1]];
                let picked = balancer.pick_excluding_all(client(i), &both);
                assert!(picked.is_none_or(|p| p.target == 2), "{strategy}");
            }
        }
        // Nothing else available: `None`, and a plain pick still finds the excluded one.
        let single = backends(&[1]);
        let balancer = publishing(strategy, &single);
        assert!(balancer.pick_excluding(client(0), &single[0]).is_none());
        assert_eq!(balancer.pick(client(0)).unwrap().target, 0);
    }
}

#[test]
fn empty_and_single_backend_snapshots() {
    for strategy in Strategy::ALL {
        let balancer = Balancer::with_strategy(strategy);
        assert!(balancer.pick(client(0)).is_none(), "{strategy}");
        balancer.publish(backends(&[0, 0]));
        assert!(
            balancer.pick(client(0)).is_none(),
            "{strategy}: only draining backends"
        );
        assert_eq!(balancer.healthy_count(), 2);
        balancer.publish(backends(&[5]));
        assert!(
            picks_from(&balancer, 100).iter().all(|&p| p == 0),
            "{strategy}"
        );
        balancer.publish(Vec::new());
        assert!(balancer.pick(client(0)).is_none(), "{strategy}");
    }
}

#[test]
fn draining_takes_effect_at_the_next_publish() {
    let pool = backends(&[1, 1]);
    let balancer = publishing(Strategy::RoundRobin, &pool);
    pool[0].set_weight(0);
    assert_eq!(
        counts(&picks_from(&balancer, 10), 2),
        [5, 5],
        "old snapshot unchanged"
    );
    balancer.publish(pool.clone());
    assert_eq!(counts(&picks_from(&balancer, 10), 2), [0, 10]);
    assert_eq!(balancer.snapshot().pickable_count(), 1);
}

#[test]
fn set_strategy_rebuilds_the_current_snapshot() {
    let pool = backends(&[1, 1]);
    let balancer = publishing(Strategy::RoundRobin, &pool);
    pool[0].connection_opened();
    balancer.set_strategy(Strategy::LeastConnections);
    assert_eq!(balancer.strategy(), Strategy::LeastConnections);
    assert!(picks_from(&balancer, 10).iter().all(|&p| p == 1));
    assert_eq!(balancer.snapshot().backends().len(), 2);
}

/// Eight threads pick while snapshots are swapped under them. Every pick must come from a
/// snapshot published between the start and the end of the call: never a backend that was never
/// published, never one removed by a publish that completed before the call started.
#[test]
fn picks_during_snapshot_swaps_only_see_published_backends() {
    const BACKENDS: usize = 12;
    const NEVER_PUBLISHED: usize = 11;
    const DRAINING: usize = 10;
    for strategy in Strategy::ALL {
        // A Maglev table takes tens of milliseconds to build in a debug build.
        let epochs = if strategy == Strategy::SourceHash {
            16
        } else {
            400
        };
        let mut pool = backends(&[1; BACKENDS]);
        pool[DRAINING] = backend(DRAINING, 0);
        // Epoch e publishes a sliding window of 4 of the first 10 backends, plus the draining one.
        let members = |e: usize| -> u32 { (0..4).map(|k| 1u32 << ((e + k) % 10)).sum() };
        let set = |e: usize| -> Vec<Arc<Backend>> {
            let mut set: Vec<_> = (0..10)
                .filter(|&i| members(e) & (1 << i) != 0)
                .map(|i| Arc::clone(&pool[i]))
                .collect();
            set.push(Arc::clone(&pool[DRAINING]));
            set
        };
        let balancer = publishing(strategy, &set(0));
        let epoch = AtomicUsize::new(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for thread in 0..8u32 {
                let (balancer, epoch, done, members) = (&balancer, &epoch, &done, &members);
                scope.spawn(move || {
                    let mut i = thread;
                    while !done.load(Acquire) {
                        let before = epoch.load(Acquire);
                        let picked = balancer.pick(client(i)).expect("never empty");
                        let after = epoch.load(Acquire);
                        let allowed = (before..=(after + 1).min(epochs - 1))
                            .fold(0, |mask, e| mask | members(e));
                        assert_ne!(picked.target, NEVER_PUBLISHED);
                        assert_ne!(picked.target, DRAINING);
                        assert!(
                            allowed & (1 << picked.target) != 0,
                            "{strategy}: picked {} in epochs {before}..={after}",
                            picked.target
                        );
                        picked.connection_opened();
                        picked.connection_closed();
                        i = i.wrapping_add(8);
                    }
                });
            }
            for e in 1..epochs {
                balancer.publish(set(e));
                epoch.store(e, Release);
            }
            done.store(true, Release);
        });
        assert!(pool.iter().all(|b| b.active() == 0));
    }
}

/// Publishes and strategy changes from two threads at once: whatever the interleaving, the
/// final snapshot holds the last published backends *and* the last strategy set, neither
/// undone by a writer that read the other's old value.
#[test]
fn concurrent_publish_and_set_strategy_lose_no_update() {
    let all = backends(&[1, 1, 1, 1]);
    // Few rounds: a publish under `source_hash` builds a Maglev table, slow in a debug build
    // (20 × 200 took minutes on a busy machine); the race needs interleaving, not volume.
    for _ in 0..8 {
        let balancer = Balancer::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..60 {
                    balancer.publish(all[..1 + i % 4].to_vec());
                }
                balancer.publish(all[..2].to_vec());
            });
            s.spawn(|| {
                for i in 0..60 {
                    balancer.set_strategy(Strategy::ALL[i % 4]);
                }
                balancer.set_strategy(Strategy::PowerOfTwo);
            });
        });
        let snapshot = balancer.snapshot();
        assert_eq!(snapshot.strategy(), Strategy::PowerOfTwo);
        assert_eq!(snapshot.backends().len(), 2);
    }
}
