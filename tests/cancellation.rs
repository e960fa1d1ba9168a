//! A caller that gives up costs nothing: its place is skipped, no capacity is consumed
//! for it, and the requests behind it move up at once. A request sent with `do_send`,
//! which nobody awaits, takes what fits at once and is otherwise skipped.

mod common;

use actix_leaky_bucket::{Acquire, BucketActor, CapacityInfo, Stats};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn an_abandoned_head_lets_the_next_waiter_move_up_at_once() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let full = spawn_acquire(&addr, start, Acquire::new(10.0));
    let big = spawn_acquire(&addr, start, Acquire::new(10.0)); // due at 1 s
    let small = spawn_acquire(&addr, start, Acquire::new(1.0)); // behind it
    tokio::time::sleep(ms(50)).await;
    big.abort();
    // Without the big request ahead, 1 fits once 1 has leaked: at 100 ms.
    assert_granted(&small.await.unwrap(), 1.0, ms(100));
    assert_granted(&full.await.unwrap(), 10.0, Duration::ZERO);
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    // At 100 ms: the first 10, less 1 leaked, plus the small 1; nothing for the big one.
    assert_eq!((capacity.level, capacity.waiters), (10.0, 0));
}

#[actix_rt::test]
async fn a_caller_timeout_around_send_frees_its_place() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let first = spawn_acquire(&addr, start, Acquire::new(1.0));
    let impatient = {
        let reply = addr.send(Acquire::new(1.0));
        actix_rt::spawn(async move { tokio::time::timeout(ms(300), reply).await })
    };
    let patient = spawn_acquire(&addr, start, Acquire::new(1.0));
    assert!(
        impatient.await.unwrap().is_err(),
        "the caller's own timeout fired"
    );
    // The impatient request would have been granted at 1 s; the patient one moves into
    // its place, and the bucket holds only what was granted.
    assert_granted(&patient.await.unwrap(), 1.0, ms(1000));
    assert_granted(&first.await.unwrap(), 1.0, Duration::ZERO);
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!((capacity.level, capacity.waiters), (1.0, 0));
}

#[actix_rt::test]
async fn abandoned_waiters_deep_in_the_queue_are_skipped_without_delay() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let handles = spawn_all(&addr, start, (0..10).map(|_| Acquire::new(1.0)));
    settle().await;
    // Every odd waiter gives up at 0.5 s: 1, 3, 5, 7 and 9.
    tokio::time::sleep(ms(500)).await;
    for handle in handles.iter().skip(1).step_by(2) {
        handle.abort();
    }
    let kept: Vec<_> = handles.into_iter().step_by(2).collect();
    let answers = answers(kept).await;
    for (k, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(1000 * k as u64));
    }
}

#[actix_rt::test]
async fn a_storm_of_cancellations_spends_no_capacity() {
    let (addr, start) = start_paused(BucketActor::new(config(5.0, ms(1000)))).await;
    let handles = spawn_all(&addr, start, (0..1000).map(|_| Acquire::new(1.0)));
    settle().await;
    // Waiters give up one by one, every 10 ms, from the back of the queue, while the
    // bucket serves the front.
    let mut handles = handles;
    let mut given_up = 0;
    for _ in 0..100 {
        tokio::time::sleep(ms(10)).await;
        handles.pop().unwrap().abort();
        given_up += 1;
    }
    assert_eq!(given_up, 100);
    let answers = answers(handles).await;
    // 900 served: a burst of 5, then one every 200 ms.
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(200 * (i as u64).saturating_sub(4)));
    }
}

#[actix_rt::test]
async fn a_refusal_that_finds_an_abandoned_head_replans_the_next() {
    let bucket = BucketActor::new(config(10.0, ms(1000))).max_queue(2);
    let (addr, start) = start_paused(bucket).await;
    let full = spawn_acquire(&addr, start, Acquire::new(10.0));
    let big = spawn_acquire(&addr, start, Acquire::new(10.0)); // due at 1 s
    let small = spawn_acquire(&addr, start, Acquire::new(1.0)); // behind it
    settle().await;
    // The big head gives up; before the bucket's timer notices, a third request finds the
    // queue full, purges the head, and is admitted. The small one is now due at 100 ms.
    big.abort();
    let third = spawn_acquire(&addr, start, Acquire::new(1.0));
    assert_granted(&small.await.unwrap(), 1.0, ms(100));
    assert_granted(&third.await.unwrap(), 1.0, ms(200));
    assert_granted(&full.await.unwrap(), 10.0, Duration::ZERO);
}

#[actix_rt::test]
async fn capacity_info_does_not_count_callers_who_left() {
    // Capacity 1 per 100 ms: one grant, one waiter due at 100 ms, three that leave.
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(100)))).await;
    let first = spawn_acquire(&addr, start, Acquire::new(1.0));
    let head = spawn_acquire(&addr, start, Acquire::new(1.0));
    let leaving = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    settle().await;
    for caller in leaving {
        caller.abort();
    }
    settle().await;
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!((capacity.waiters, capacity.wait), (1, Some(ms(200))));
    // What a request sent at that instant gets is what was predicted.
    let next = spawn_acquire(&addr, start, Acquire::new(1.0));
    assert_granted(&next.await.unwrap(), 1.0, ms(200));
    assert_granted(&head.await.unwrap(), 1.0, ms(100));
    assert_granted(&first.await.unwrap(), 1.0, Duration::ZERO);
}

/// A request sent with `do_send` has nobody to answer: it takes its amount if it fits at
/// once, and is otherwise skipped, neither waiting nor counted as waiting.
#[actix_rt::test]
async fn a_do_send_takes_what_fits_at_once_and_is_otherwise_skipped() {
    let (addr, start) = start_paused(BucketActor::new(config(2.0, ms(1000)))).await;
    for _ in 0..5 {
        addr.do_send(Acquire::new(1.0));
    }
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!(
        (capacity.level, capacity.waiters, capacity.wait),
        (2.0, 0, Some(ms(500)))
    );
    let stats = addr.send(Stats).await.unwrap();
    assert_eq!(
        (
            stats.granted,
            stats.cancelled,
            stats.queue_len,
            stats.max_queue_len
        ),
        (2, 3, 0, 0)
    );
    // Nothing waits: a request sent now is granted when the leak allows, at 500 ms.
    let next = spawn_acquire(&addr, start, Acquire::new(1.0));
    assert_granted(&next.await.unwrap(), 1.0, ms(500));
}
