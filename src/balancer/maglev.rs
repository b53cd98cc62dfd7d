//! Source hash: Maglev consistent hashing of the client IP onto the candidates.
//!
//! Owns the lookup table (a prime number of slots, each naming a candidate), built once per
//! publish, and the stable hashes behind it. A pick hashes the client IP (never the port, so all
//! of a client's connections agree) and reads one slot. Each backend fills slots in the order of
//! its own permutation of the table, seeded by a hash of its configured name and address and
//! taking turns by weight, so the table depends only on the set of (name, address, weight):
//! identical across restarts and across instances, and when a backend leaves only its slots
//! (plus Maglev's small disruption) change hands. Never uses a per-process random hash seed.

use std::{cmp::Ordering, collections::BinaryHeap, net::IpAddr};

use super::snapshot::{first_allowed, is_excluded, Candidate};
use crate::backend::Backend;

/// Slots in the table: a prime, about 65 times the number of backends at 1,000, so shares are
/// even to within a few tenths of a percent.
pub(super) const TABLE_SIZE: usize = 65_537;

/// On a retry, how many following slots to try before falling back to publication order. The
/// following slots belong to backends in proportion to their share, and the same client retries
/// to the same backend.
const RETRY_SLOTS: usize = 64;

/// The Maglev lookup table: slot → candidate index.
#[derive(Debug, Default)]
pub(super) struct Maglev {
    slots: Box<[u32]>,
}

/// One backend's place in the filling: the next slot of its permutation and its turn time.
struct Turn {
    /// Slots taken so far; the next turn is due at `(taken + 1) / weight`.
    taken: u64,
    weight: u64,
    /// Position of the backend in identity-hash order, to break ties identically everywhere.
    rank: usize,
    candidate: u32,
    position: u64,
    skip: u64,
}

impl Turn {
    /// Earlier due time first, then lower rank (`BinaryHeap` pops the greatest).
    fn priority(&self, other: &Self) -> Ordering {
        let due = (self.taken + 1) * other.weight;
        let other_due = (other.taken + 1) * self.weight;
        other_due.cmp(&due).then(other.rank.cmp(&self.rank))
    }
}

impl PartialEq for Turn {
    fn eq(&self, other: &Self) -> bool {
        self.priority(other) == Ordering::Equal
    }
}
impl Eq for Turn {}
impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Turn {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority(other)
    }
}

impl Turn {
    /// Takes the next free slot of this backend's permutation and returns it. `TABLE_SIZE` is
    /// prime and `skip` in 1..TABLE_SIZE, so the permutation visits every slot: a free one is
    /// found while the table is not full.
    fn take_free_slot(&mut self, taken: &mut [u64]) -> usize {
        let m = TABLE_SIZE as u64;
        loop {
            let slot = self.position as usize;
            self.position += self.skip;
            if self.position >= m {
                self.position -= m;
            }
            let (word, bit) = (slot / 64, 1u64 << (slot % 64));
            if taken[word] & bit == 0 {
                taken[word] |= bit;
                self.taken += 1;
                return slot;
            }
        }
    }
}

/// Every candidate's first turn, ranked by identity hash so that the publication order does
/// not matter.
fn first_turns(candidates: &[Candidate]) -> BinaryHeap<Turn> {
    let m = TABLE_SIZE as u64;
    let mut ranked: Vec<(u64, u64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (h1, h2) = identity_hashes(&c.backend);
            (h1, h2, i)
        })
        .collect();
    ranked.sort_unstable();
    ranked
        .iter()
        .enumerate()
        .map(|(rank, &(h1, h2, i))| Turn {
            taken: 0,
            weight: u64::from(candidates[i].weight),
            rank,
            candidate: i as u32,
            position: h1 % m,
            skip: h2 % (m - 1) + 1,
        })
        .collect()
}

impl Maglev {
    /// Fills the table: backends take turns in proportion to their weight (equal weights: one
    /// round after another, as in the Maglev paper), each taking the next free slot of its
    /// permutation. O(slots × log n) turns plus about slots × ln(slots) probes: from 2.5 ms at
    /// 3 backends to about 8 ms at 1,000 (15 ms with very uneven weights), control plane only.
    pub(super) fn new(candidates: &[Candidate]) -> Self {
        if candidates.is_empty() {
            return Self::default();
        }
        let mut turns = first_turns(candidates);
        let mut slots = vec![0u32; TABLE_SIZE];
        // Which slots are taken, as bits: 8 KiB that stay in L1 while the probing jumps around.
        let mut taken = vec![0u64; TABLE_SIZE.div_ceil(64)];
        for _ in 0..TABLE_SIZE {
            let mut turn = turns.pop().expect("at least one candidate");
            slots[turn.take_free_slot(&mut taken)] = turn.candidate;
            turns.push(turn);
        }
        Self {
            slots: slots.into_boxed_slice(),
        }
    }

    /// The candidate owning `client`'s slot; on a retry, the owner of the next slots.
    #[inline]
    pub(super) fn pick(
        &self,
        client: IpAddr,
        candidates: &[Candidate],
        exclude: &[&Backend],
    ) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = (hash_ip(client) % TABLE_SIZE as u64) as usize;
        let owner = self.slots[slot] as usize;
        if exclude.is_empty() || !is_excluded(exclude, &candidates[owner].backend) {
            return Some(owner);
        }
        (1..RETRY_SLOTS)
            .map(|k| self.slots[(slot + k) % TABLE_SIZE] as usize)
            .find(|&i| !is_excluded(exclude, &candidates[i].backend))
            .or_else(|| first_allowed(candidates, slot, exclude, None))
    }

    /// Slots owned by each candidate (for tests and diagnostics).
    #[cfg(test)]
    pub(super) fn shares(&self, candidates: usize) -> Vec<usize> {
        let mut shares = vec![0; candidates];
        for &slot in self.slots.iter() {
            shares[slot as usize] += 1;
        }
        shares
    }
}

/// Two independent stable hashes of a backend's identity: configured name and address.
fn identity_hashes(backend: &Backend) -> (u64, u64) {
    let mut hash = Fnv::default();
    hash.write(backend.name.as_bytes());
    hash.write(&[0xff]);
    write_ip(&mut hash, backend.addr.ip());
    hash.write(&backend.addr.port().to_be_bytes());
    (mix64(hash.0), mix64(hash.0 ^ 0x9e37_79b9_7f4a_7c15))
}

/// A stable hash of a client IP; an IPv4-mapped IPv6 address hashes as the IPv4 one.
#[inline]
fn hash_ip(ip: IpAddr) -> u64 {
    let mut hash = Fnv::default();
    write_ip(&mut hash, ip);
    mix64(hash.0)
}

#[inline]
fn write_ip(hash: &mut Fnv, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => hash.write(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => hash.write(&v4.octets()),
            None => hash.write(&v6.octets()),
        },
    }
}

/// 64-bit FNV-1a: simple and fixed forever, unlike `std`'s hasher.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A 64-bit finaliser (xor-shift / multiply rounds) so every input bit affects every output
/// bit; FNV alone leaves the low bits weak.
#[inline]
pub(super) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Arc};

    use super::*;

    fn candidates(weights: &[u32]) -> Vec<Candidate> {
        let backends: Vec<_> = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| {
                let addr = SocketAddr::from(([127, 0, 2, i as u8], 8080));
                Arc::new(Backend::with_weight(
                    i,
                    format!("app-{i}.internal:8080"),
                    addr,
                    weight,
                ))
            })
            .collect();
        super::super::snapshot::candidates(&backends)
    }

    #[test]
    fn equal_weights_share_the_table_evenly() {
        for n in [1, 2, 5, 7, 100] {
            let shares = Maglev::new(&candidates(&vec![1; n])).shares(n);
            let fair = TABLE_SIZE / n;
            assert!(
                shares.iter().all(|&s| s.abs_diff(fair) <= 1),
                "{n}: {shares:?}"
            );
        }
    }

    #[test]
    fn weighted_shares_follow_the_weights() {
        let shares = Maglev::new(&candidates(&[3, 1, 2])).shares(3);
        let sixth = TABLE_SIZE as f64 / 6.0;
        for (share, weight) in shares.iter().zip([3.0, 1.0, 2.0]) {
            assert!(
                (*share as f64 / (sixth * weight) - 1.0).abs() < 0.01,
                "{shares:?}"
            );
        }
    }

    #[test]
    fn hashes_are_stable_across_builds_and_versions() {
        // Fixed values: a change here moves every client of every deployment.
        assert_eq!(
            hash_ip("192.0.2.1".parse().unwrap()),
            hash_ip("::ffff:192.0.2.1".parse().unwrap())
        );
        assert_eq!(hash_ip("192.0.2.1".parse().unwrap()), 0x8039_3182_6a22_88ea);
        let table = Maglev::new(&candidates(&[1, 1, 1]));
        assert_eq!(&table.slots[..8], [1, 2, 1, 0, 0, 2, 0, 1]);
        let mut fnv = Fnv::default();
        fnv.write(b"a");
        assert_eq!(fnv.0, 0xaf63_dc4c_8601_ec8c, "FNV-1a 64 reference value");
    }
}
