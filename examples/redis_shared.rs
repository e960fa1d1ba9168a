//! Several processes, one budget: a bucket shared through Redis.
//!
//! Start a Redis server (`redis-server`, which listens on 127.0.0.1:6379), then run this in
//! two terminals at once: `cargo run --features redis --example redis_shared`. Each process
//! asks for 10 units from a bucket of 5 per second with a burst of 5 that they share:
//! between them they get the burst at once, then one unit every 200 ms, not one each.
//! `REDIS_URL` says where the server is; while it is away, this bucket grants from a bucket
//! of its own at half the rate (`OnOutage::local(0.5)`): stop the server mid-run to see it.

use std::time::{Duration, Instant};

use actix::Actor;
use actix_leaky_bucket::{Acquire, BucketConfig, OnOutage, RedisBucketActor, Shutdown, Stats};

#[actix_rt::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .init();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // Every process that shares the bucket must give it the same name and configuration.
    let config = BucketConfig::from_rate(5.0, 5.0).expect("a valid config");
    let bucket = match RedisBucketActor::connect(&url, "example", config).await {
        Ok(bucket) => bucket
            .on_outage(OnOutage::local(0.5).expect("a valid share"))
            .start(),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    let start = Instant::now();
    for n in 1..=10 {
        let answer = bucket
            .send(Acquire::new(1.0).with_timeout(Duration::from_secs(10)))
            .await
            .expect("the bucket runs");
        match answer {
            Ok(granted) => println!(
                "[{:>7.3}s] unit {n:>2} granted after waiting {:?}",
                start.elapsed().as_secs_f64(),
                granted.waited
            ),
            Err(error) => println!(
                "[{:>7.3}s] unit {n:>2}: {error}",
                start.elapsed().as_secs_f64()
            ),
        }
    }
    let stats = bucket.send(Stats).await.expect("the bucket runs");
    println!(
        "granted {} ({} by this process's own bucket while Redis was away)",
        stats.granted, stats.granted_locally
    );
    bucket
        .send(Shutdown::graceful())
        .await
        .expect("the bucket runs");
}
