//! The bucket shared through Redis, as one table (no harness), against a `redis-server`
//! that the bench starts on a loopback port of its own (Debian's package `redis-server`).
//!
//! Sections, each a module of `actix_leaky_bucket_bench::shared`: `latency` (one acquire
//! against a `GET`), `throughput` (batched against one call per acquire) and `outage` (the
//! answer times while the server is killed or frozen, under each rule). Run with
//! `cargo bench -p actix-leaky-bucket-bench --bench shared`; `... -- latency` runs one. The
//! accuracy of four processes on one bucket is measured by the test
//! `four_processes_share_one_bucket_at_its_rate` (see BENCHMARKS.md).

#![forbid(unsafe_code)]

use actix_leaky_bucket_bench::section::{run_wanted, Section};
use actix_leaky_bucket_bench::shared::{latency, outage, throughput};

/// The sections, in the order they run.
const SECTIONS: &[Section] = &[
    Section::new("latency", latency::run),
    Section::new("throughput", throughput::run),
    Section::new("outage", outage::run),
];

fn main() {
    run_wanted(SECTIONS).print();
}
