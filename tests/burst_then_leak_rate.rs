//! The bucket starts empty, grants a burst of its capacity at once, then follows the leak
//! exactly, with no drift, for whole and fractional amounts.

mod common;

use actix_leaky_bucket::{Acquire, BucketActor};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn a_burst_of_capacity_then_one_grant_per_leak_interval() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let answers = answers(spawn_all(&addr, start, (0..40).map(|_| Acquire::new(1.0)))).await;
    for (i, answer) in answers.iter().enumerate() {
        let expected = ms(100 * (i as u64).saturating_sub(9));
        if i < 10 {
            assert_eq!(answer.0, Duration::ZERO, "burst grant {i}");
        }
        assert_granted(answer, 1.0, expected);
        let granted = answer.1.as_ref().unwrap();
        assert_at(granted.waited, expected);
        assert_at(granted.granted_at - start, expected);
    }
}

#[actix_rt::test]
async fn grants_stay_on_the_ideal_line_for_an_hour() {
    // 3 per second does not divide a millisecond: each wait is 333_333_333 ns, rounded by
    // the timer, and the level is computed from the actual clock, so no error accumulates.
    let (addr, start) = start_paused(BucketActor::new(config(3.0, ms(1000)))).await;
    let n = 3 * 3600 + 3;
    let answers = answers(spawn_all(&addr, start, (0..n).map(|_| Acquire::new(1.0)))).await;
    for (i, answer) in answers.iter().enumerate() {
        let ideal_nanos = (i as u64).saturating_sub(2) * 1_000_000_000 / 3;
        assert_granted(answer, 1.0, Duration::from_nanos(ideal_nanos));
    }
    assert_at(answers.last().unwrap().0, Duration::from_secs(3600));
}

#[actix_rt::test]
async fn fractional_amounts_and_capacity() {
    let (addr, start) = start_paused(BucketActor::new(config(2.5, ms(1000)))).await;
    // 2.5 per second: 0.5 and 2.0 fill the bucket; 1.25 needs 1.25 to leak: 500 ms;
    // 0.75 then needs 0.75 more: 300 ms later.
    let amounts = [0.5, 2.0, 1.25, 0.75];
    let answers = answers(spawn_all(&addr, start, amounts.map(Acquire::new))).await;
    assert_eq!(answers[0].0, Duration::ZERO);
    assert_eq!(answers[1].0, Duration::ZERO);
    assert_granted(&answers[2], 1.25, ms(500));
    assert_granted(&answers[3], 0.75, ms(800));
}

#[actix_rt::test]
async fn an_idle_bucket_refills_its_burst() {
    let (addr, start) = start_paused(BucketActor::new(config(5.0, ms(1000)))).await;
    let first = answers(spawn_all(&addr, start, (0..5).map(|_| Acquire::new(1.0)))).await;
    assert!(first.iter().all(|answer| answer.0 == Duration::ZERO));
    tokio::time::sleep(ms(1000)).await;
    let later = Instant::now();
    let second = answers(spawn_all(&addr, later, (0..6).map(|_| Acquire::new(1.0)))).await;
    assert!(second[..5].iter().all(|answer| answer.0 == Duration::ZERO));
    assert_granted(&second[5], 1.0, ms(200));
}

use actix_rt::time::Instant;

#[actix_rt::test]
async fn without_precise_timing_grants_come_within_a_tick_and_do_not_drift() {
    // The timer alone: a grant comes on the first tick after its due instant (on the
    // paused clock, a whole tick late unless the test started exactly on a tick), and the
    // level, computed from the clock, absorbs the lateness: no drift over 200 grants.
    let bucket = BucketActor::new(config(10.0, ms(1000))).precise_timing(false);
    let (addr, start) = start_paused(bucket).await;
    let answers = answers(spawn_all(&addr, start, (0..210).map(|_| Acquire::new(1.0)))).await;
    for (i, answer) in answers.iter().enumerate() {
        let due = ms(100 * (i as u64).saturating_sub(9));
        assert!(answer.1.is_ok());
        assert!(
            answer.0 >= due && answer.0 <= due + TICK,
            "grant {i} at {:?}, due {due:?}",
            answer.0
        );
    }
}

#[actix_rt::test]
async fn the_fit_tolerance_is_rounding_and_no_more() {
    // A period of a nanosecond: the burst at t = 0 is the capacity, not twice it.
    let (addr, start) = start_paused(BucketActor::new(config(5.0, Duration::from_nanos(1)))).await;
    let mut at_once = 0;
    while addr
        .send(Acquire::new(1.0).with_timeout(Duration::ZERO))
        .await
        .unwrap()
        .is_ok()
    {
        at_once += 1;
    }
    assert_eq!((at_once, start.elapsed()), (5, Duration::ZERO));

    // 1e12 per 1e12 s leaks 1 per second: after a burst of 1e12, one more unit comes
    // after a second, not at once.
    let (addr, start) = start_paused_again(BucketActor::new(config(
        1e12,
        Duration::from_secs(1_000_000_000_000),
    )))
    .await;
    let burst = spawn_acquire(&addr, start, Acquire::new(1e12));
    let one = spawn_acquire(&addr, start, Acquire::new(1.0));
    assert_granted(&burst.await.unwrap(), 1e12, Duration::ZERO);
    assert_granted(&one.await.unwrap(), 1.0, ms(1000));
}

/// `start_paused` for a second bucket in the same test: the clock is already paused.
async fn start_paused_again(bucket: BucketActor) -> (actix::Addr<BucketActor>, Instant) {
    let addr = actix::Actor::start(bucket);
    addr.send(actix_leaky_bucket::CapacityInfo::default())
        .await
        .unwrap();
    (addr, Instant::now())
}
