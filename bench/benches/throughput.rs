//! Throughput of an unconstrained bucket against its peers (criterion).
//!
//! Every limiter is configured so that it never makes anyone wait (the bucket: capacity
//! 1e12 per second), so what is measured is the cost of one acquisition:
//!
//! - `sequential`: one caller awaits each acquisition before starting the next;
//! - `pipelined`: one caller starts a batch of 64 acquisitions at once and awaits them all.
//!
//! Peers: a trivial actix actor's `send` round trip (the floor for any actor), governor
//! (`until_ready`), leaky-bucket (`acquire_one`) and `tokio::sync::Semaphore` (the floor of
//! an async wait primitive). Everything runs on one actix system (a current-thread tokio
//! runtime), as the bucket does in an application.
//!
//! Run with `cargo bench -p actix-leaky-bucket-bench --bench throughput`; the summary table
//! with the ratios to the targets comes from `... --bench report`.

#![forbid(unsafe_code)]

use std::future::Future;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use actix::{Actor, System, SystemRunner};
use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};
use actix_leaky_bucket_bench::peers::{Echo, Ping};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::future::join_all;

/// Requests per batch when pipelined.
const BATCH: usize = 64;

/// Benchmarks one limiter, sequential and pipelined; `make` starts one acquisition.
/// Generic rather than boxed, so that no limiter pays an extra allocation.
fn bench_limiter<F, Fut>(c: &mut Criterion, system: &SystemRunner, name: &str, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut group = c.benchmark_group("sequential");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    make().await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("pipelined_{BATCH}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    join_all((0..BATCH).map(|_| make())).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// Every limiter, sequential and pipelined, on one actix system.
fn throughput(c: &mut Criterion) {
    let system = System::new();

    let bucket = system.block_on(async {
        BucketActor::new(BucketConfig::new(1e12, Duration::from_secs(1)).unwrap()).start()
    });
    bench_limiter(c, &system, "actix-leaky-bucket", || {
        let bucket = bucket.clone();
        async move {
            bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
        }
    });

    let echo = system.block_on(async { Echo.start() });
    bench_limiter(c, &system, "actix send (trivial actor)", || {
        let echo = echo.clone();
        async move {
            echo.send(Ping).await.unwrap();
        }
    });

    let max = NonZeroU32::MAX;
    let governor = governor::RateLimiter::direct(governor::Quota::per_second(max).allow_burst(max));
    bench_limiter(c, &system, "governor", || governor.until_ready());

    let leaky = leaky_bucket::RateLimiter::builder()
        .initial(usize::MAX)
        .max(usize::MAX)
        .refill(usize::MAX)
        .interval(Duration::from_millis(1))
        .build();
    bench_limiter(c, &system, "leaky-bucket", || leaky.acquire_one());

    let semaphore = tokio::sync::Semaphore::new(tokio::sync::Semaphore::MAX_PERMITS);
    bench_limiter(c, &system, "tokio Semaphore", || async {
        drop(semaphore.acquire().await.unwrap());
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = throughput
}
criterion_main!(benches);
