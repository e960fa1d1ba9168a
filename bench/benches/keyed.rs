//! The per-key front end (`KeyedBucketActor`, `KeyedBucketHandle`) against its targets, as
//! one markdown table (no harness). Every ratio is measured in the same run, side by side.
//!
//! Sections, in the order they run, each a module of `actix_leaky_bucket_bench::keyed`:
//! `memory`, `churn`, `flood`, `cost`, `map`, `accuracy` and `shards`. Run with
//! `cargo bench -p actix-leaky-bucket-bench --bench keyed`; name sections to run only
//! those: `cargo bench -p actix-leaky-bucket-bench --bench keyed -- flood cost`. `churn`
//! and `flood` measure the whole process's RSS: run each alone.

#![forbid(unsafe_code)]

use actix_leaky_bucket_bench::alloc::Counting;
use actix_leaky_bucket_bench::keyed::{self, accuracy, churn, cost, flood, map, memory, shards};
use actix_leaky_bucket_bench::section::{run_wanted, Section};

/// Counts the heap, for the `memory`, `churn` and `flood` sections.
#[global_allocator]
static GLOBAL: Counting = Counting;

/// The sections, in the order they run.
const SECTIONS: &[Section] = &[
    Section::new("memory", memory::run),
    Section::new("churn", churn::run),
    Section::new("flood", flood::run),
    Section::new("cost", cost::run),
    Section::new("map", map::run),
    Section::new("accuracy", accuracy::run),
    Section::new("shards", shards::run),
];

/// Runs the sections the command line names (all, if it names none), then prints the table.
fn main() {
    run_wanted(SECTIONS).print();
    keyed::print_machine();
}
