//! `BucketHandle` serves code that is not an actor: every method answers
//! `Result<_, AcquireError>`, and a stopped bucket is `AcquireError::Stopped`.

mod common;

use actix::Actor;
use actix_leaky_bucket::{AcquireError, BucketActor, BucketHandle};
use common::*;
use std::time::Duration;

fn assert_send<T: Send>(_: &T) {}

#[actix_rt::test]
async fn every_method_answers() {
    let (addr, start) = start_paused(BucketActor::new(config(2.0, ms(1000)))).await;
    let bucket = BucketHandle::from(addr);
    let copy = bucket.clone();
    assert_send(&copy);
    assert_send(&bucket.acquire(1.0));

    assert_eq!(bucket.acquire(1.0).await.unwrap().waited, Duration::ZERO);
    assert!(bucket.try_acquire(1.0).await.is_ok());
    assert_eq!(
        bucket.try_acquire(1.0).await,
        Err(AcquireError::Timeout {
            amount: 1.0,
            timeout: Duration::ZERO,
            retry_after: ms(500),
        })
    );
    let refused = bucket.acquire_with_timeout(2.0, ms(999)).await;
    assert!(
        matches!(refused, Err(AcquireError::Timeout { retry_after, .. }) if retry_after == ms(1000))
    );
    let granted = copy.acquire_with_timeout(2.0, ms(1000)).await.unwrap();
    assert_eq!(granted.waited, ms(1000));
    assert_eq!(start.elapsed(), ms(1000));

    let capacity = bucket.capacity(1.0).await.unwrap();
    assert_eq!((capacity.level, capacity.has_capacity), (2.0, false));
    bucket.reconcile(0.5, 2.0).await.unwrap();
    assert_eq!(bucket.capacity(0.0).await.unwrap().level, 0.5);
    assert!(matches!(
        bucket.reconcile(f64::NAN, 1.0).await,
        Err(AcquireError::InvalidAmount { .. })
    ));
    bucket.reconfigure(config(4.0, ms(1000))).await.unwrap();
    assert!(bucket.capacity(3.5).await.unwrap().has_capacity);

    let stats = bucket.stats().await.unwrap();
    assert_eq!((stats.granted, stats.timed_out, stats.invalid), (3, 2, 1));
    bucket.shutdown_graceful().await.unwrap();
    settle().await;
    assert_eq!(bucket.acquire(1.0).await, Err(AcquireError::Stopped));
    assert_eq!(bucket.stats().await, Err(AcquireError::Stopped));
    assert_eq!(
        bucket.shutdown_immediate().await,
        Err(AcquireError::Stopped)
    );
}

#[actix_rt::test]
async fn a_try_acquire_never_jumps_the_queue() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let bucket = BucketHandle::new(addr.clone());
    bucket.acquire(10.0).await.unwrap();
    let big = spawn_acquire(&addr, start, actix_leaky_bucket::Acquire::new(5.0));
    sleep_to(start, ms(200)).await;
    // 1 would fit (the level is 8), but 5 waits ahead of it, due at 500 ms.
    assert!(bucket.capacity(1.0).await.unwrap().has_capacity);
    let refused = bucket.try_acquire(1.0).await.unwrap_err();
    assert_eq!(
        refused,
        AcquireError::Timeout {
            amount: 1.0,
            timeout: Duration::ZERO,
            retry_after: ms(400),
        }
    );
    assert_granted(&big.await.unwrap(), 5.0, ms(500));
}

#[actix_rt::test]
async fn metered_acquires_the_estimate_and_reconciles_the_actual_cost() {
    let (addr, start) = start_paused(BucketActor::new(config(100.0, ms(1000)))).await;
    let tokens = BucketHandle::new(addr);
    // Three calls estimated at 60 tokens: the second waits for the first's estimate to
    // leak, unless the first's actual cost is settled first.
    let first = tokens
        .metered(60.0, async { 20 }, |used| f64::from(*used))
        .await
        .unwrap();
    assert_eq!(first, 20);
    assert_eq!(tokens.capacity(0.0).await.unwrap().level, 20.0);
    let second = tokens
        .metered(60.0, async { 90 }, |used| f64::from(*used))
        .await
        .unwrap();
    assert_eq!(second, 90);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(tokens.capacity(0.0).await.unwrap().level, 110.0);
    // 110 + 60 - 100 = 70 must leak: 700 ms.
    tokens
        .metered(60.0, async {}, |()| f64::NAN) // an invalid actual cost: the estimate stands
        .await
        .unwrap();
    assert_eq!(start.elapsed(), ms(700));
    assert_eq!(tokens.capacity(0.0).await.unwrap().level, 100.0);
    // A refused acquire does not run the call.
    let mut ran = false;
    let refused = tokens
        .metered(f64::INFINITY, async { ran = true }, |()| 0.0)
        .await;
    assert!(matches!(refused, Err(AcquireError::InvalidAmount { .. })));
    assert!(!ran);
}

#[actix_rt::test]
async fn a_handle_works_from_another_thread() {
    let bucket = BucketHandle::from(BucketActor::new(config(5.0, ms(1000))).start());
    // A thread with a runtime of its own; this arbiter keeps running the bucket meanwhile.
    let granted = actix_rt::task::spawn_blocking(move || {
        actix_rt::System::new().block_on(async move { bucket.acquire(5.0).await })
    })
    .await
    .unwrap();
    assert_eq!(granted.unwrap().amount, 5.0);
}
