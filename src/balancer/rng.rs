//! Per-thread pseudo-random numbers for the randomised strategies.
//!
//! Owns one 64-bit state per thread (a `const`-initialised thread-local: no lock, no allocation,
//! no destructor), seeded on first use. Never shared between threads and never used for anything
//! that needs unpredictability: this spreads load, it is not cryptography.

use std::{
    cell::Cell,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{SystemTime, UNIX_EPOCH},
};

thread_local! {
    /// 0 means "not seeded yet".
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Increment of the state (an odd constant, so the state walks all 2^64 values).
const STEP: u64 = 0xa076_1d64_78bd_642f;
/// Mixed into the state before the widening multiply of the output function.
const MIX: u64 = 0xe703_7ed1_a0b4_28db;

/// The next pseudo-random 64-bit value of this thread.
#[inline]
pub(super) fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = seed();
        }
        x = x.wrapping_add(STEP);
        state.set(x);
        let wide = u128::from(x) * u128::from(x ^ MIX);
        (wide >> 64) as u64 ^ wide as u64
    })
}

/// A pseudo-random index in `0..n` (`n > 0`), by multiply-shift rather than a division.
#[inline]
pub(super) fn below(n: usize) -> usize {
    ((u128::from(next_u64()) * n as u128) >> 64) as usize
}

/// A different seed for every thread, and for every run.
#[cold]
fn seed() -> u64 {
    static THREADS: AtomicU64 = AtomicU64::new(0);
    let nth = THREADS.fetch_add(STEP, Relaxed);
    let here = 0u8;
    let stack = &here as *const u8 as u64;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    super::maglev::mix64(nth ^ stack.rotate_left(32) ^ now) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            seen[below(7)] += 1;
        }
        assert!(
            seen.iter().all(|&count| (800..1_200).contains(&count)),
            "{seen:?}"
        );
    }

    #[test]
    fn threads_get_different_sequences() {
        let a: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        let b = std::thread::spawn(|| (0..4).map(|_| next_u64()).collect::<Vec<_>>())
            .join()
            .unwrap();
        assert_ne!(a, b);
    }
}
