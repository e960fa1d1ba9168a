//! What a bucket answers when a request cannot wait: an impossible timeout, a full queue,
//! and a caller that gives up (whose place goes to the next in line).
//!
//! Run with `cargo run --example timeouts_and_cancellation`.

use std::time::Duration;

use actix::Actor;
use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};
use actix_rt::time::Instant;

#[actix_rt::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let config = BucketConfig::new(2.0, Duration::from_secs(1)).expect("a valid config");
    let bucket = BucketActor::new(config).max_queue(3).start();
    let start = Instant::now();
    let stamp = move || format!("[{:>7.4}s]", start.elapsed().as_secs_f64());
    println!("a bucket of 2 per second, at most 3 waiters\n");

    for _ in 0..2 {
        bucket
            .send(Acquire::new(1.0))
            .await
            .expect("running")
            .expect("burst");
    }
    println!("{} a burst of 2 granted: the bucket is full", stamp());

    let hasty = bucket
        .send(Acquire::new(1.0).with_timeout(Duration::from_millis(100)))
        .await
        .expect("running");
    println!("{} timeout 100 ms: {}", stamp(), hasty.unwrap_err());

    // Three wait, one of them ready to give up after 300 ms.
    let first = actix_rt::spawn(bucket.send(Acquire::new(1.0)));
    // The caller's own timeout drops the request after 300 ms, cancelling it.
    let impatient = actix_rt::spawn(actix_rt::time::timeout(
        Duration::from_millis(300),
        bucket.send(Acquire::new(1.0)),
    ));
    let third = actix_rt::spawn(bucket.send(Acquire::new(1.0)));
    let crowded = bucket.send(Acquire::new(1.0)).await.expect("running");
    println!("{} a fourth waiter: {}", stamp(), crowded.unwrap_err());

    if impatient.await.expect("task").is_err() {
        println!("{} the impatient caller gave up its place", stamp());
    }
    for (name, waiter) in [("first", first), ("third", third)] {
        let granted = waiter
            .await
            .expect("task")
            .expect("running")
            .expect("granted");
        println!(
            "{} {name} waiter granted after {:?}",
            stamp(),
            granted.waited
        );
    }
    println!("\nthe third moved into the impatient caller's place: granted at 1 s, not 1.5 s");
}
