//! A burst, then grants at the leak rate: 12 requests from independent tasks into a bucket
//! of 5 per second, printed as a timeline.
//!
//! Run with `cargo run --example demo`; add `RUST_LOG=actix_leaky_bucket=debug` to see the
//! bucket's own log of every wait and grant.

use std::time::Duration;

use actix::Actor;
use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig, CapacityInfo, Shutdown};
use actix_rt::time::Instant;

#[actix_rt::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .init();

    let config = BucketConfig::new(5.0, Duration::from_secs(1)).expect("a valid config");
    println!(
        "bucket: capacity {}, leaking {} per second: a burst of 5, then one every 200 ms\n",
        config.capacity(),
        config.leak_rate()
    );
    let bucket = BucketActor::new(config).start();
    let start = Instant::now();

    let requests: Vec<_> = (1..=12)
        .map(|n| {
            let reply = bucket.send(Acquire::new(1.0));
            actix_rt::spawn(async move {
                let granted = reply.await.expect("bucket running").expect("granted");
                println!(
                    "[{:>7.4}s] request {n:>2} granted after waiting {:?}",
                    start.elapsed().as_secs_f64(),
                    granted.waited
                );
            })
        })
        .collect();

    let capacity = bucket
        .send(CapacityInfo::new(1.0))
        .await
        .expect("bucket running");
    println!(
        "[{:>7.4}s] level {:.3}, {} waiting; a new request would wait {:?}",
        start.elapsed().as_secs_f64(),
        capacity.level,
        capacity.waiters,
        capacity.wait.unwrap_or_default()
    );

    for request in requests {
        request.await.expect("task finished");
    }
    bucket
        .send(Shutdown::graceful())
        .await
        .expect("bucket running");
    println!("[{:>7.3}s] shut down", start.elapsed().as_secs_f64());
}
