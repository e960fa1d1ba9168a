//! `max_queue` bounds the number of waiters: a request beyond it is answered `QueueFull`
//! at once, with the time until the head leaves as a retry hint.

mod common;

use actix_leaky_bucket::{Acquire, AcquireError, BucketActor};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn a_full_queue_answers_at_once() {
    let bucket = BucketActor::new(config(1.0, ms(1000))).max_queue(2);
    let (addr, start) = start_paused(bucket).await;
    let answers = answers(spawn_all(&addr, start, (0..4).map(|_| Acquire::new(1.0)))).await;
    assert_granted(&answers[0], 1.0, Duration::ZERO); // granted at once: not a waiter
    assert_granted(&answers[1], 1.0, ms(1000));
    assert_granted(&answers[2], 1.0, ms(2000));
    assert_eq!(answers[3].0, Duration::ZERO);
    assert_eq!(
        answers[3].1,
        Err(AcquireError::QueueFull {
            max_queue: 2,
            retry_after: ms(1000),
        })
    );
}

#[actix_rt::test]
async fn a_place_frees_when_the_head_is_granted() {
    let bucket = BucketActor::new(config(1.0, ms(1000))).max_queue(1);
    let (addr, start) = start_paused(bucket).await;
    let queue = spawn_all(&addr, start, (0..2).map(|_| Acquire::new(1.0)));
    let refused = spawn_acquire(&addr, start, Acquire::new(1.0))
        .await
        .unwrap();
    assert!(matches!(refused.1, Err(AcquireError::QueueFull { .. })));
    tokio::time::sleep(ms(1000)).await;
    let admitted = spawn_acquire(&addr, start, Acquire::new(1.0))
        .await
        .unwrap();
    assert_granted(&admitted, 1.0, ms(2000));
    answers(queue).await;
}

#[actix_rt::test]
async fn callers_that_left_do_not_hold_places() {
    let bucket = BucketActor::new(config(1.0, ms(1000))).max_queue(3);
    let (addr, start) = start_paused(bucket).await;
    let first = spawn_acquire(&addr, start, Acquire::new(1.0));
    let waiters = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    settle().await;
    waiters[2].abort();
    settle().await;
    let admitted = spawn_acquire(&addr, start, Acquire::new(1.0))
        .await
        .unwrap();
    assert_granted(&admitted, 1.0, ms(3000));
    assert_granted(&first.await.unwrap(), 1.0, Duration::ZERO);
}

#[actix_rt::test]
async fn an_unbounded_queue_holds_a_hundred_thousand_waiters() {
    let (addr, start) = start_paused(BucketActor::new(config(1000.0, ms(1000)))).await;
    let n = 100_000u64;
    let answers = answers(spawn_all(&addr, start, (0..n).map(|_| Acquire::new(1.0)))).await;
    assert!(answers.iter().all(|answer| answer.1.is_ok()));
    assert_at(answers.last().unwrap().0, ms(n - 1000));
}
