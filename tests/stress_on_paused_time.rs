//! Stress on paused time: 100k waiters answered by an immediate shutdown, 100k waiters
//! served by a graceful shutdown at the exact rate, and a storm in which half of 20k
//! waiters give up at random moments while the survivors finish exactly on schedule.

mod common;

use std::time::Duration;

use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, CapacityInfo, Shutdown};
use common::*;

const WAITERS: usize = 100_000;

#[actix_rt::test]
async fn an_immediate_shutdown_answers_every_one_of_100k_waiters() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let handles = spawn_all(&addr, start, (0..WAITERS).map(|_| Acquire::new(1.0)));
    sleep_to(start, ms(1050)).await;
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!(capacity.waiters, WAITERS - 20);
    addr.send(Shutdown::immediate()).await.unwrap();
    let answers = answers(handles).await;
    assert_eq!(answers.len(), WAITERS);
    for (i, answer) in answers.iter().enumerate() {
        match i {
            0..=9 => assert_granted(answer, 1.0, Duration::ZERO),
            10..=19 => assert_granted(answer, 1.0, ms(100 * (i as u64 - 9))),
            _ => assert_eq!(*answer, (ms(1050), Err(AcquireError::ShuttingDown)), "#{i}"),
        }
    }
}

#[actix_rt::test]
async fn a_graceful_shutdown_serves_100k_waiters_in_order_at_the_exact_rate() {
    // 7 per 3 s: grants fall between ticks, so each lands on the tick after it is due.
    let (addr, start) = start_paused(BucketActor::new(config(7.0, ms(3000)))).await;
    let handles = spawn_all(&addr, start, (0..WAITERS).map(|_| Acquire::new(1.0)));
    let shutdown = {
        let reply = addr.send(Shutdown::graceful());
        actix_rt::spawn(async move { reply.await.map(|()| start.elapsed()) })
    };
    let refused = spawn_acquire(&addr, start, Acquire::new(0.0));
    assert_eq!(
        refused.await.unwrap(),
        (Duration::ZERO, Err(AcquireError::ShuttingDown))
    );
    let answers = answers(handles).await;
    let due = |i: usize| Duration::from_nanos(((i as u128 * 3_000_000_000).div_ceil(7)) as u64);
    let mut previous = Duration::ZERO;
    for (i, answer) in answers.iter().enumerate() {
        let expected = if i < 7 { Duration::ZERO } else { due(i - 6) };
        assert_granted(answer, 1.0, expected);
        assert!(answer.0 >= previous, "in order");
        previous = answer.0;
    }
    // The last of 100k, 99_993 units after the burst of 7: at 42_854.142857 s, on the tick.
    assert_eq!(answers[WAITERS - 1].0, ms(42_854_143));
    assert_eq!(shutdown.await.unwrap(), Ok(ms(42_854_143)));
}

#[actix_rt::test]
async fn a_cancellation_storm_spends_nothing_and_survivors_finish_on_schedule() {
    const STORM: usize = 20_000;
    // 5 per 10 ms: a burst of 5, then one grant every 2 ms, on even milliseconds.
    let (addr, start) = start_paused(BucketActor::new(config(5.0, ms(10)))).await;
    let mut handles: Vec<_> = spawn_all(&addr, start, (0..STORM).map(|_| Acquire::new(1.0)))
        .into_iter()
        .map(Some)
        .collect();
    // Half the waiters give up, each at a random odd millisecond (never on a grant).
    let mut rng = fastrand::Rng::with_seed(42);
    let mut cancels: Vec<(u64, usize)> = Vec::new();
    for i in 0..STORM {
        if rng.bool() {
            cancels.push((2 * rng.u64(..STORM as u64) + 1, i));
        }
    }
    cancels.sort_unstable();
    assert!((9_000..11_000).contains(&cancels.len()));

    // The model: every 2 ms the next waiter that has not given up is granted.
    let mut cancel_at = vec![u64::MAX; STORM];
    for &(at, i) in &cancels {
        cancel_at[i] = at;
    }
    let mut expected = vec![None; STORM];
    let mut granted = 0u64;
    for (i, &gives_up) in cancel_at.iter().enumerate() {
        let at = 2 * granted.saturating_sub(4);
        if gives_up > at {
            expected[i] = Some(ms(at));
            granted += 1;
        }
    }

    let mut outcomes = vec![None; STORM];
    for (at, i) in cancels {
        sleep_to(start, ms(at)).await;
        let handle = handles[i].take().unwrap();
        if handle.is_finished() {
            outcomes[i] = Some(handle.await.unwrap());
        } else {
            handle.abort();
        }
    }
    for (i, handle) in handles.into_iter().enumerate() {
        if let Some(handle) = handle {
            outcomes[i] = Some(handle.await.unwrap());
        }
    }
    let mut survivors = 0;
    for (i, (outcome, expected)) in outcomes.iter().zip(&expected).enumerate() {
        match (outcome, expected) {
            (Some(answer), Some(at)) => {
                assert_granted(answer, 1.0, *at);
                survivors += 1;
            }
            (None, None) => {}
            (outcome, expected) => panic!("#{i}: got {outcome:?}, the model says {expected:?}"),
        }
    }
    assert_eq!(survivors, granted);
    // Nothing spent on those who left: the bucket holds exactly the last burst's worth.
    let last = ms(2 * (granted - 5));
    sleep_to(start, last.max(start.elapsed())).await;
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    let leaked = (start.elapsed() - last).as_secs_f64() * 500.0;
    assert_eq!(capacity.waiters, 0);
    assert!(
        (capacity.level - (5.0 - leaked).max(0.0)).abs() < 1e-9,
        "{capacity:?}"
    );
}
