//! The sections of the single bucket's report (`cargo bench --bench report`): one module
//! each, and what several of them use.

use std::time::{Duration, Instant};

use crate::procfs::threads_cpu_seconds;

pub mod accuracy;
pub mod profile;
pub mod scale;
pub mod throughput;
pub mod timing;

/// Sleeps on tokio's timer until `done` or `deadline`.
async fn wait_until(done: impl Fn() -> bool, deadline: Instant) {
    while !done() && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The process's CPU seconds per wall second over the next 300 ms, in which nobody asks
/// anything of the bucket.
async fn idle_cpu() -> f64 {
    let (cpu_start, wall_start) = (threads_cpu_seconds(), Instant::now());
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    (threads_cpu_seconds() - cpu_start) / wall_start.elapsed().as_secs_f64()
}

/// Prints what one read of tokio's clock costs here: the bucket reads it on every request.
pub fn print_clock_read() {
    let start = Instant::now();
    let clock_reads: u32 = 1_000_000;
    for _ in 0..clock_reads {
        std::hint::black_box(actix_rt::time::Instant::now());
    }
    println!(
        "One read of tokio's clock (`Instant::now`) here: {:.0} ns",
        start.elapsed().as_nanos() as f64 / f64::from(clock_reads)
    );
}
