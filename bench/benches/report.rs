//! Accuracy, scale, memory and throughput ratios of the bucket, as one table (no harness).
//!
//! Sections, in the order they run, each a module of `actix_leaky_bucket_bench::report`:
//! `throughput`, `timing`, `accuracy` (which also writes `BENCHMARKS-100k.svg`) and `scale`
//! (scale and memory). Run with `cargo bench -p actix-leaky-bucket-bench --bench report`;
//! takes about two minutes. `... --bench report -- throughput scale` runs only the sections
//! named. `REPORT_PHASES=1` prints the phases of the scale, timing and accuracy runs on
//! stderr. `profile-bucket`, `profile-floor`, `profile-bucket-pipelined` or
//! `profile-floor-pipelined` instead runs one run for a profiler, and nothing else (see
//! `report::profile`).

#![forbid(unsafe_code)]

use actix_leaky_bucket_bench::alloc::Counting;
use actix_leaky_bucket_bench::report::{self, accuracy, profile, scale, throughput, timing};
use actix_leaky_bucket_bench::section::{run_wanted, Section};

/// Counts the heap, for the `scale` section's memory rows.
#[global_allocator]
static GLOBAL: Counting = Counting;

/// The sections, in the order they run.
const SECTIONS: &[Section] = &[
    Section::new("throughput", throughput::run),
    Section::new("timing", timing::run),
    Section::new("accuracy", accuracy::run),
    Section::new("scale", scale::run),
];

/// Runs the profile named, or the sections the command line names (all, if it names none),
/// then prints the table.
fn main() {
    if let Some(profile) = profile::requested() {
        profile::run(&profile);
        return;
    }
    run_wanted(SECTIONS).print();
    report::print_clock_read();
}
