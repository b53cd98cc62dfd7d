//! The ringlb load-test harness, as a library so that tests (ours and the proxy's) can reuse it.
//!
//! The pieces, from the bottom up:
//!
//! - [`replica`]: the small HTTP/1.1 spells server that plays the backend, in-process;
//! - [`client`], [`pacer`], [`schedule`], [`recorder`], [`outcome`]: one load connection, its
//!   precise timer, its open-loop send schedule, and what it records;
//! - [`workload`]: the four load loops (rate, max, bulk, connect) and [`phase`], which runs one
//!   of them against one address for a bounded time;
//! - [`path`], [`process`], [`ports`] and [`proxy`]: the things under test (direct, ringlb,
//!   haproxy, nginx, or external targets) and how their processes are started and stopped;
//! - [`procfs`] and [`cpu`]: what those processes spend (CPU time per request, memory, threads),
//!   read from `/proc`;
//! - [`plan`], [`measure`] and [`bench`]: the interleaved rounds, one pass of them with the CPU
//!   read around each phase, and the whole run; [`sweep`] and [`idle`], the two runs that are
//!   not one pass (rates doubling until saturation; idle connections held);
//! - [`report`]: `.hgrm`, `.hlog`, `summary.json`, `latency.svg`, `sweep.svg` and the console
//!   tables;
//! - [`compare`]: the regression gate between two saved `.hgrm` files.
//!
//! Nothing here ever sends traffic to an address it was not given, and every load loop is
//! bounded in count and in time.
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod client;
pub mod compare;
pub mod cpu;
pub mod idle;
pub mod lab;
pub mod measure;
pub mod outcome;
pub mod pacer;
pub mod path;
pub mod phase;
pub mod plan;
pub mod ports;
pub mod process;
pub mod procfs;
pub mod progress;
pub mod proxy;
pub mod recorder;
pub mod replica;
pub mod report;
pub mod schedule;
pub mod sweep;
pub mod units;
pub mod workload;
