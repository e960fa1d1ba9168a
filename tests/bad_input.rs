//! Bad input gets a clear error and disturbs nothing: the bucket's level, queue and
//! timing are exactly as if the bad request had never been sent.

mod common;

use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, CapacityInfo};
use common::*;
use std::time::Duration;

const INVALID: [f64; 7] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
    -5e-324,
    10.000_000_1,
    f64::MAX,
];

#[actix_rt::test]
async fn invalid_amounts_are_refused_at_once_and_change_nothing() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let queue = spawn_all(&addr, start, (0..12).map(|_| Acquire::new(1.0)));
    for amount in INVALID {
        for timeout in [None, Some(Duration::ZERO), Some(Duration::MAX)] {
            let request = Acquire { amount, timeout };
            let (at, answer) = spawn_acquire(&addr, start, request).await.unwrap();
            assert_eq!(at, Duration::ZERO);
            match answer {
                Err(AcquireError::InvalidAmount {
                    amount: refused,
                    capacity,
                }) => {
                    assert!(refused.total_cmp(&amount).is_eq());
                    assert_eq!(capacity, 10.0);
                }
                other => panic!("{amount}: expected InvalidAmount, got {other:?}"),
            }
        }
    }
    let answers = answers(queue).await;
    assert_granted(&answers[10], 1.0, ms(100));
    assert_granted(&answers[11], 1.0, ms(200));
}

#[actix_rt::test]
async fn zero_negative_zero_and_subnormal_amounts_are_granted() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let amounts = [0.0, -0.0, 5e-324, f64::MIN_POSITIVE, 1.0 - 5e-324];
    let at_once = answers(spawn_all(&addr, start, amounts.map(Acquire::new))).await;
    for answer in &at_once {
        assert_eq!(answer.0, Duration::ZERO);
        assert!(answer.1.is_ok());
    }
    // A zero amount waits its turn behind the queue, and is then granted at once.
    let queue = spawn_all(&addr, start, [Acquire::new(1.0), Acquire::new(0.0)]);
    let queued = answers(queue).await;
    assert_granted(&queued[0], 1.0, ms(1000));
    assert_granted(&queued[1], 0.0, ms(1000));
}

#[actix_rt::test]
async fn capacity_info_reports_never_for_invalid_amounts() {
    let (addr, _) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    for amount in INVALID {
        let capacity = addr.send(CapacityInfo::new(amount)).await.unwrap();
        assert_eq!(capacity.wait, None, "{amount}");
        assert!(!capacity.has_capacity || amount < 0.0, "{amount}");
        assert_eq!(capacity.level, 0.0);
    }
    let capacity = addr.send(CapacityInfo::new(10.0)).await.unwrap();
    assert_eq!(capacity.wait, Some(Duration::ZERO));
    assert!(capacity.has_capacity);
}

#[actix_rt::test]
async fn extreme_configs_never_panic() {
    // A bucket that leaks one unit in 5.8e11 years, and one that leaks 1e12 per second.
    let (slow, start) = start_paused(BucketActor::new(config(1.0, Duration::MAX))).await;
    assert!(spawn_acquire(&slow, start, Acquire::new(1.0))
        .await
        .unwrap()
        .1
        .is_ok());
    let a_century = Duration::from_secs(100 * 365 * 86_400);
    let refused = spawn_acquire(&slow, start, Acquire::new(1.0).with_timeout(a_century))
        .await
        .unwrap();
    assert_eq!(refused.0, Duration::ZERO);
    // The wait is one period, Duration::MAX, to a few units in the last place of a float.
    let retry_after = refused.1.unwrap_err().retry_after().unwrap();
    let relative = retry_after.as_secs_f64() / Duration::MAX.as_secs_f64();
    assert!(
        (1.0 - relative).abs() < 4.0 * f64::EPSILON,
        "{retry_after:?}"
    );
    // Duration::MAX is no timeout: the request waits, and a century passes quietly.
    let waiting = spawn_acquire(&slow, start, Acquire::new(1.0).with_timeout(Duration::MAX));
    tokio::time::sleep(a_century).await;
    let capacity = slow.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!(capacity.waiters, 1);
    assert!(!waiting.is_finished());
    waiting.abort();

    let fast = actix::Actor::start(BucketActor::new(config(1e6, Duration::from_nanos(1000))));
    let answers = answers(spawn_all(&fast, start, (0..3).map(|_| Acquire::new(1e6)))).await;
    assert!(answers.iter().all(|answer| answer.1.is_ok()));
}
