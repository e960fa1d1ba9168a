//! Bad input never panics: NaN, both infinities, negative zero, subnormals, huge values,
//! `Duration::ZERO` and `Duration::MAX`, in every constructor and message, get the
//! documented error or result, and leave the bucket's level, queue and timing exactly as
//! if the bad request had never been sent.

mod common;

use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketConfig, CapacityInfo, ConfigError,
};
use actix_rt::time::Instant;
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

const SUBNORMAL: f64 = 5e-324;

const AMOUNTS: [f64; 12] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    SUBNORMAL,
    -SUBNORMAL,
    f64::MIN_POSITIVE,
    f64::EPSILON,
    1e308,
    f64::MAX,
    f64::MIN,
];

const PERIODS: [Duration; 6] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_secs(1),
    Duration::from_secs(u64::MAX),
    Duration::MAX,
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

#[test]
fn bucket_config_new_gives_the_documented_answer_for_every_extreme() {
    let capacities = [AMOUNTS.as_slice(), &[0.999_999_999_999, 1.0, 1.5, 1e15]].concat();
    for &capacity in &capacities {
        for period in PERIODS {
            let got = BucketConfig::new(capacity, period);
            let rate = capacity / period.as_secs_f64();
            // The documented rules, in their documented order.
            let expected = if !capacity.is_finite() {
                Err(ConfigError::CapacityNotFinite { capacity })
            } else if capacity < 1.0 {
                Err(ConfigError::CapacityBelowOne { capacity })
            } else if period.is_zero() {
                Err(ConfigError::ZeroPeriod)
            } else if !rate.is_finite() {
                Err(ConfigError::RateNotFinite { capacity, period })
            } else {
                Ok((capacity, period, rate))
            };
            match (got, expected) {
                (Ok(config), Ok((c, p, r))) => {
                    assert_eq!(
                        (config.capacity(), config.period(), config.leak_rate()),
                        (c, p, r)
                    );
                    assert!(config.leak_rate() > 0.0, "{capacity} per {period:?}");
                }
                (Err(ConfigError::CapacityNotFinite { capacity: got }), Err(_)) => {
                    assert!(!capacity.is_finite());
                    assert_eq!(got.to_bits(), capacity.to_bits());
                }
                (got, expected) => assert_eq!(got.map(|_| ()), expected.map(|_| ())),
            }
        }
    }
}

#[actix_rt::test]
async fn an_empty_bucket_answers_capacity_info_for_every_extreme_amount() {
    let (addr, _) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    for amount in AMOUNTS {
        let valid = amount.is_finite() && (0.0..=10.0).contains(&amount);
        let capacity = addr.send(CapacityInfo::new(amount)).await.unwrap();
        // What can be granted fits now and waits nothing; what never can has no wait.
        assert_eq!(capacity.wait, valid.then_some(Duration::ZERO), "{amount}");
        assert_eq!(capacity.has_capacity, amount <= 10.0, "{amount}");
        assert_eq!((capacity.level, capacity.waiters), (0.0, 0), "{amount}");
    }
}

#[actix_rt::test]
async fn every_message_with_extreme_input_gets_its_documented_answer_and_changes_nothing() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    // A full bucket with two waiters: due at 100 and 200 ms.
    let queue = spawn_all(&addr, start, (0..12).map(|_| Acquire::new(1.0)));
    settle().await;
    let timeouts = [
        None,
        Some(Duration::ZERO),
        Some(Duration::from_nanos(1)),
        Some(Duration::from_secs(u64::MAX)),
        Some(Duration::MAX),
    ];
    for amount in AMOUNTS {
        let valid = amount.is_finite() && (0.0..=10.0).contains(&amount);
        for timeout in timeouts {
            // Valid amounts only with timeouts that must refuse them (a wait of 200 ms
            // or more): admitted ones would change the queue, and are tested below.
            if valid && !matches!(timeout, Some(t) if t < ms(200)) {
                continue;
            }
            let (at, answer) = spawn_acquire(&addr, start, Acquire { amount, timeout })
                .await
                .unwrap();
            assert_eq!(at, Duration::ZERO);
            match answer {
                Err(AcquireError::InvalidAmount {
                    amount: refused,
                    capacity: 10.0,
                }) if !valid => assert_eq!(refused.to_bits(), amount.to_bits()),
                Err(AcquireError::Timeout {
                    amount: refused,
                    timeout: t,
                    retry_after,
                }) if valid => {
                    assert_eq!(refused.to_bits(), amount.to_bits());
                    assert_eq!(Some(t), timeout);
                    assert_eq!(retry_after, ms(200), "{amount}");
                }
                other => panic!("{amount} {timeout:?}: got {other:?}"),
            }
        }
        let capacity = addr.send(CapacityInfo::new(amount)).await.unwrap();
        let needed = (10.0 - 10.0) + amount; // level - capacity first: no overflow
        assert_eq!(capacity.level, 10.0);
        assert_eq!(
            capacity.needed_capacity.to_bits(),
            needed.to_bits(),
            "{amount}"
        );
        // The tolerance of a fit: 8 units in the last place of the capacity.
        assert_eq!(
            capacity.has_capacity,
            needed <= 10.0 * 4.0 * f64::EPSILON,
            "{amount}"
        );
        assert_eq!((capacity.waiters, capacity.queued_amount), (2, 2.0));
        assert_eq!(capacity.wait, valid.then_some(ms(200)), "{amount}");
    }
    // Admitted extremes: zero-sized requests with the longest timeouts wait their turn.
    let tiny = spawn_all(
        &addr,
        start,
        [
            Acquire::new(-0.0).with_timeout(Duration::MAX),
            Acquire::new(SUBNORMAL).with_timeout(Duration::from_secs(u64::MAX)),
            Acquire::new(f64::MIN_POSITIVE),
        ],
    );
    let answers = answers(queue).await;
    assert_granted(&answers[10], 1.0, ms(100));
    assert_granted(&answers[11], 1.0, ms(200));
    let tiny = common::answers(tiny).await;
    assert_granted(&tiny[0], -0.0, ms(200));
    assert_granted(&tiny[1], SUBNORMAL, ms(200));
    assert_granted(&tiny[2], f64::MIN_POSITIVE, ms(200));
    // And the bucket goes on exactly: the next unit at 300 ms.
    let next = spawn_acquire(&addr, start, Acquire::new(1.0));
    assert_granted(&next.await.unwrap(), 1.0, ms(300));
}

#[actix_rt::test]
async fn max_queue_extremes_bound_as_documented() {
    // usize::MAX is a bound never reached; 1 keeps one waiter.
    let (unbounded, start) =
        start_paused(BucketActor::new(config(1.0, ms(1000))).max_queue(usize::MAX)).await;
    let answers = answers(spawn_all(
        &unbounded,
        start,
        (0..4).map(|_| Acquire::new(1.0)),
    ))
    .await;
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(1000 * i as u64));
    }
    let one = actix::Actor::start(BucketActor::new(config(1.0, ms(1000))).max_queue(1));
    let start = actix_rt::time::Instant::now();
    let answers = common::answers(spawn_all(&one, start, (0..3).map(|_| Acquire::new(1.0)))).await;
    assert_granted(&answers[0], 1.0, Duration::ZERO);
    assert_granted(&answers[1], 1.0, ms(1000));
    assert_eq!(
        answers[2],
        (
            Duration::ZERO,
            Err(AcquireError::QueueFull {
                max_queue: 1,
                retry_after: ms(1000)
            })
        )
    );
}

#[actix_rt::test]
async fn a_huge_bucket_waits_one_period_for_a_second_full_request() {
    // Capacity 1e307 per second: a full request at once, another one second later.
    let (addr, start) = start_paused(BucketActor::new(config(1e307, ms(1000)))).await;
    let answers = answers(spawn_all(&addr, start, [1e307, 1e307].map(Acquire::new))).await;
    assert_granted(&answers[0], 1e307, Duration::ZERO);
    assert_granted(&answers[1], 1e307, ms(1000));
}

#[actix_rt::test]
async fn a_bucket_above_half_f64_max_waits_one_period_for_a_second_full_request() {
    let (addr, start) = start_paused(BucketActor::new(config(1e308, ms(1000)))).await;
    let first = spawn_acquire(&addr, start, Acquire::new(1e308));
    assert_granted(&first.await.unwrap(), 1e308, Duration::ZERO);
    let capacity = addr.send(CapacityInfo::new(1e308)).await.unwrap();
    assert_eq!(capacity.wait, Some(ms(1000)), "{capacity:?}");
    let second = spawn_acquire(&addr, start, Acquire::new(1e308));
    assert_granted(&second.await.unwrap(), 1e308, ms(1000));
}

#[actix_rt::test]
async fn the_queue_of_full_requests_near_f64_max_is_summed_without_overflow() {
    // Capacity f64::MAX per second: one full request at once, one due at 1 s, and one with
    // a timeout of 5 s, due at 2 s. The sum of the queued amounts exceeds f64::MAX.
    let (addr, start) = start_paused(BucketActor::new(config(f64::MAX, ms(1000)))).await;
    let first = spawn_acquire(&addr, start, Acquire::new(f64::MAX));
    let second = spawn_acquire(&addr, start, Acquire::new(f64::MAX));
    let third = spawn_acquire(&addr, start, Acquire::new(f64::MAX).with_timeout(ms(5000)));
    settle().await;
    let capacity = addr.send(CapacityInfo::new(f64::MAX)).await.unwrap();
    assert_eq!(capacity.wait, Some(ms(3000)));
    assert_granted(&first.await.unwrap(), f64::MAX, Duration::ZERO);
    assert_granted(&second.await.unwrap(), f64::MAX, ms(1000));
    assert_granted(&third.await.unwrap(), f64::MAX, ms(2000));

    // Capacity 1e308: two full requests queued behind a full bucket.
    let bucket = BucketActor::new(config(1e308, ms(1000)));
    let addr = actix::Actor::start(bucket);
    let start = Instant::now();
    let queue = spawn_all(&addr, start, [1e308; 3].map(Acquire::new));
    let timed = spawn_acquire(&addr, start, Acquire::new(1e308).with_timeout(ms(3000)));
    let answers = answers(queue).await;
    assert_granted(&answers[2], 1e308, ms(2000));
    assert_granted(&timed.await.unwrap(), 1e308, ms(3000));
}
