//! `Reconfigure` applies the new capacity and rate from now on, keeps the level, re-plans
//! the head, and times out at their deadlines the waiters it makes late.

mod common;

use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, CapacityInfo, Reconfigure};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn a_slower_rate_keeps_the_level_and_times_out_a_tick_after_the_deadline() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let full = spawn_acquire(&addr, start, Acquire::new(10.0)).await;
    assert_granted(&full.unwrap(), 10.0, Duration::ZERO);
    let hasty = spawn_acquire(&addr, start, Acquire::new(1.0).with_timeout(ms(150)));
    let patient = spawn_acquire(&addr, start, Acquire::new(1.0));
    sleep_to(start, ms(50)).await;
    // From 10 per second to 1 per second: the level, 9.5 at 50 ms, is kept.
    addr.send(Reconfigure(config(10.0, ms(10_000))))
        .await
        .unwrap();
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!(capacity.level, 9.5);

    // Answered one timer tick after its deadline: the grace for a grant made late.
    let (at, answer) = hasty.await.unwrap();
    assert_at(at, ms(151));
    assert!(
        matches!(answer, Err(AcquireError::Timeout { timeout, .. }) if timeout == ms(150)),
        "{answer:?}"
    );
    // The level falls to 9 at 550 ms, when the patient 1 fits.
    assert_granted(&patient.await.unwrap(), 1.0, ms(550));
}

#[actix_rt::test]
async fn a_faster_rate_speeds_the_queue_up() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let queue = spawn_all(&addr, start, (0..20).map(|_| Acquire::new(1.0)));
    sleep_to(start, ms(200)).await;
    // 12 granted by 200 ms (10 at once, then at 100 and 200 ms); from now on, 100 per
    // second: one every 10 ms.
    addr.send(Reconfigure(config(10.0, ms(100)))).await.unwrap();
    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        let expected = match i {
            0..=9 => 0,
            10 | 11 => 100 * (i as u64 - 9),
            _ => 200 + 10 * (i as u64 - 11),
        };
        assert_granted(answer, 1.0, ms(expected));
    }
}

#[actix_rt::test]
async fn waiters_above_a_smaller_capacity_are_refused_at_once() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let full = spawn_acquire(&addr, start, Acquire::new(10.0)).await;
    assert_granted(&full.unwrap(), 10.0, Duration::ZERO);
    let big = spawn_acquire(&addr, start, Acquire::new(8.0));
    let small = spawn_acquire(&addr, start, Acquire::new(2.0));
    settle().await;
    addr.send(Reconfigure(config(5.0, ms(500)))).await.unwrap();
    assert_eq!(
        big.await.unwrap(),
        (
            Duration::ZERO,
            Err(AcquireError::InvalidAmount {
                amount: 8.0,
                capacity: 5.0
            })
        )
    );
    // The level, 10, is above the new capacity 5: 2 fits once 7 leaked at 10 per second.
    assert_granted(&small.await.unwrap(), 2.0, ms(700));
}

#[actix_rt::test]
async fn reconfiguring_grants_no_extra_burst() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let full = spawn_acquire(&addr, start, Acquire::new(10.0)).await;
    assert_granted(&full.unwrap(), 10.0, Duration::ZERO);
    addr.send(Reconfigure(config(10.0, ms(1000))))
        .await
        .unwrap();
    let next = spawn_acquire(&addr, start, Acquire::new(1.0))
        .await
        .unwrap();
    assert_granted(&next, 1.0, ms(100));
}
