//! The measuring tools and the sections of the benchmarks of `actix-leaky-bucket`.
//!
//! The bench binaries (`benches/report.rs`, `benches/keyed.rs`, `benches/shared.rs`,
//! `benches/throughput.rs`)
//! only choose sections and print what they return; each section of a harness-less bench
//! is a module of [`report`], [`keyed`] or [`shared`] with a `run` that returns its rows
//! of the table.
//! What several sections use lives beside them, one role per module:
//!
//! - [`alloc`]: the counting global allocator, and glibc's view of its free memory;
//! - [`procfs`]: CPU time, page faults, RSS and run-queue waits from `/proc`;
//! - [`witness`]: threads pinned to each CPU that note when the host ran nothing on it;
//! - [`wake`]: how late this machine wakes a sleeping or yielding thread;
//! - [`rounds`]: interleaved rounds, their medians, and timed runs of requests;
//! - [`conformance`]: the conformance bound over recorded grant times;
//! - [`svg`]: the plot of cumulative grants;
//! - [`table`]: the markdown table and its verdicts;
//! - [`section`]: which sections the command line asks for;
//! - [`peers`]: the trivial actix actor every round trip is compared with.

#![deny(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod alloc;
pub mod conformance;
pub mod keyed;
pub mod peers;
pub mod procfs;
pub mod report;
pub mod rounds;
pub mod section;
pub mod shared;
pub mod svg;
pub mod table;
pub mod wake;
pub mod witness;
