//! `Stats` counts what the bucket did: every answer once, by kind, and the waits.

mod common;

use actix::Supervisor;
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketStats, Reconcile, Shutdown, Stats,
};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn counters_match_what_happened() {
    tokio::time::pause();
    // Supervised, so the bucket still answers `Stats` after its shutdown.
    let addr = Supervisor::start(|_| BucketActor::new(config(2.0, ms(1000))).max_queue(3));
    assert_eq!(addr.send(Stats).await.unwrap(), BucketStats::default());
    let start = actix_rt::time::Instant::now();

    let burst = spawn_all(&addr, start, (0..2).map(|_| Acquire::new(1.0)));
    let mut waiting = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    let refused = spawn_all(
        &addr,
        start,
        [
            Acquire::new(1.0),                       // the queue is full
            Acquire::new(1.0).with_timeout(ms(100)), // would wait 2 s
            Acquire::new(f64::NAN),
        ],
    );
    let bad_cost = addr.send(Reconcile::new(f64::INFINITY, 1.0)).await.unwrap();
    assert!(bad_cost.is_err());
    let stats = addr.send(Stats).await.unwrap();
    assert_eq!(
        (stats.granted, stats.queue_len, stats.max_queue_len),
        (2, 3, 3)
    );
    assert_eq!(
        (stats.queue_full, stats.timed_out, stats.invalid),
        (1, 1, 2)
    );

    waiting.pop().unwrap().abort(); // due at 1.5 s; noticed when it becomes the head
    answers(burst).await;
    answers(refused).await;
    answers(waiting).await; // granted at 500 ms and 1 s
    let late = spawn_acquire(&addr, start, Acquire::new(1.0)); // due at 1.5 s
    settle().await;
    addr.send(Shutdown::immediate()).await.unwrap();
    assert_eq!(late.await.unwrap().1, Err(AcquireError::ShuttingDown));
    let after = addr.send(Acquire::new(1.0)).await.unwrap();
    assert_eq!(after, Err(AcquireError::ShuttingDown));

    let stats = addr.send(Stats).await.unwrap();
    assert_eq!(start.elapsed(), ms(1000));
    assert_eq!((stats.granted, stats.granted_amount), (4, 4.0));
    assert_eq!((stats.cancelled, stats.shutting_down), (1, 2));
    assert_eq!(
        (stats.queue_full, stats.timed_out, stats.invalid),
        (1, 1, 2)
    );
    assert_eq!((stats.queue_len, stats.max_queue_len), (0, 3));
    assert_eq!((stats.total_wait, stats.max_wait), (ms(1500), ms(1000)));
}

#[actix_rt::test]
async fn waits_and_amounts_are_summed() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let amounts = [0.5, 0.5, 1.0, 0.25];
    answers(spawn_all(&addr, start, amounts.map(Acquire::new))).await;
    let stats = addr.send(Stats).await.unwrap();
    assert_eq!((stats.granted, stats.granted_amount), (4, 2.25));
    // Granted at 0, 0, 1 s and 1.25 s.
    assert_eq!(stats.total_wait, ms(2250));
    assert_eq!(stats.max_wait, ms(1250));
    assert_eq!(stats.mean_wait(), Duration::from_nanos(562_500_000));
    assert_eq!((stats.queue_len, stats.max_queue_len), (0, 2));
}

#[actix_rt::test]
async fn a_cancelled_waiter_left_at_a_shutdown_is_counted_once() {
    tokio::time::pause();
    // Supervised, so the bucket still answers `Stats` after its shutdown.
    let addr = Supervisor::start(|_| BucketActor::new(config(1.0, ms(1000))));
    addr.send(Stats).await.unwrap();
    let start = actix_rt::time::Instant::now();
    let first = spawn_acquire(&addr, start, Acquire::new(1.0)); // granted at once
    let head = spawn_acquire(&addr, start, Acquire::new(1.0)); // due at 1 s
    let behind = spawn_acquire(&addr, start, Acquire::new(1.0)); // due at 2 s
    settle().await;
    behind.abort(); // not the head: the bucket notices only when it reaches the head
    settle().await;
    addr.send(Shutdown::immediate()).await.unwrap();
    assert_eq!(first.await.unwrap().1.map(|g| g.amount), Ok(1.0));
    assert_eq!(head.await.unwrap().1, Err(AcquireError::ShuttingDown));

    // "Every request is counted once, by its answer": three requests, one granted, one
    // refused `ShuttingDown`, one whose caller gave up. The shutdown finds the third
    // abandoned (its reply cannot be sent) but counts it neither as cancelled nor
    // as shutting down.
    let stats = addr.send(Stats).await.unwrap();
    assert_eq!((stats.granted, stats.shutting_down), (1, 1));
    assert_eq!(stats.cancelled, 1, "{stats:?}");
}
