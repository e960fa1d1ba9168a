//! Under `Supervisor`, a restart at any moment (mid-queue, with mixed amounts and callers
//! who gave up, during a graceful shutdown, on an idle full bucket) keeps the level, the
//! queue and the pending replies and re-arms the timer, so no waiter is lost and no extra
//! burst is granted; after `Shutdown` the bucket stays closed without a restart loop.

mod common;

use actix::Supervisor;
use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, CapacityInfo, Shutdown};
use common::*;
use std::time::Duration;

async fn start_supervised(
    capacity: f64,
    period: Duration,
) -> (actix::Addr<BucketActor>, actix_rt::time::Instant) {
    tokio::time::pause();
    let addr = Supervisor::start(move |_| BucketActor::new(config(capacity, period)));
    addr.send(CapacityInfo::default()).await.unwrap();
    (addr, actix_rt::time::Instant::now())
}

#[actix_rt::test]
async fn a_restart_loses_no_waiter_and_grants_no_extra_burst() {
    let (addr, start) = start_supervised(2.0, ms(1000)).await;
    let queue = spawn_all(&addr, start, (0..6).map(|_| Acquire::new(1.0)));
    sleep_to(start, ms(750)).await;
    addr.send(Crash).await.unwrap();
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    // Four waited; one was granted at 500 ms; the level is 2 - 0.25 * 2 = 1.5.
    assert_eq!((capacity.waiters, capacity.level), (3, 1.5));
    let answers = answers(queue).await;
    let expected = [0, 0, 500, 1000, 1500, 2000];
    for (answer, at) in answers.iter().zip(expected) {
        assert_granted(answer, 1.0, ms(at));
    }
}

#[actix_rt::test]
async fn many_restarts_keep_the_schedule() {
    let (addr, start) = start_supervised(1.0, ms(100)).await;
    let queue = spawn_all(&addr, start, (0..20).map(|_| Acquire::new(1.0)));
    for k in 0..19 {
        sleep_to(start, ms(100 * k + 50)).await;
        addr.send(Crash).await.unwrap();
    }
    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(100 * i as u64));
    }
}

#[actix_rt::test]
async fn restarts_amid_mixed_amounts_and_a_cancellation_keep_the_schedule() {
    let (addr, start) = start_supervised(10.0, ms(1000)).await;
    // Without faults: 10 at 0, 5 at 500 ms, 1 at 600, 3 at 900, 2 at 1100, 4 at 1500.
    let mut handles = spawn_all(
        &addr,
        start,
        [10.0, 5.0, 1.0, 3.0, 2.0, 4.0].map(Acquire::new),
    );
    sleep_to(start, ms(550)).await;
    addr.send(Crash).await.unwrap();
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    // 10 - 5 leaked + 5 granted - 0.5 leaked since: the level survived the restart.
    assert_eq!(capacity.waiters, 4);
    assert!((capacity.level - 9.5).abs() < 1e-9, "{capacity:?}");
    assert_eq!(capacity.queued_amount, 10.0);
    sleep_to(start, ms(700)).await;
    handles.remove(4).abort(); // the 2 gives up: the 4 moves into its place
    sleep_to(start, ms(1000)).await;
    addr.send(Crash).await.unwrap();
    let answers = answers(handles).await;
    let expected = [(10.0, 0), (5.0, 500), (1.0, 600), (3.0, 900), (4.0, 1300)];
    for (answer, (amount, at)) in answers.iter().zip(expected) {
        assert_granted(answer, amount, ms(at));
    }
}

#[actix_rt::test]
async fn restarting_a_full_idle_bucket_grants_no_extra_burst() {
    let (addr, start) = start_supervised(10.0, ms(1000)).await;
    let burst = answers(spawn_all(&addr, start, [Acquire::new(10.0)])).await;
    assert_granted(&burst[0], 10.0, Duration::ZERO);
    for _ in 0..5 {
        addr.send(Crash).await.unwrap();
    }
    sleep_to(start, ms(30)).await;
    addr.send(Crash).await.unwrap();
    // Still 9.7 full: one more unit waits until 100 ms, two more until 200 ms.
    let after = answers(spawn_all(&addr, start, [1.0, 1.0].map(Acquire::new))).await;
    assert_granted(&after[0], 1.0, ms(100));
    assert_granted(&after[1], 1.0, ms(200));
}

#[actix_rt::test]
async fn a_restart_during_a_graceful_shutdown_still_serves_the_queue_then_answers_it() {
    let (addr, start) = start_supervised(1.0, ms(1000)).await;
    let queue = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    let shutdown = {
        let reply = addr.send(Shutdown::graceful());
        actix_rt::spawn(async move { reply.await.map(|()| start.elapsed()) })
    };
    sleep_to(start, ms(1500)).await;
    addr.send(Crash).await.unwrap();
    let late = spawn_acquire(&addr, start, Acquire::new(1.0))
        .await
        .unwrap();
    assert_eq!(late, (ms(1500), Err(AcquireError::ShuttingDown)));
    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(1000 * i as u64));
    }
    assert_eq!(shutdown.await.unwrap(), Ok(ms(2000)));
}

#[actix_rt::test]
async fn after_shutdown_a_supervised_bucket_stays_closed() {
    tokio::time::pause();
    let addr = Supervisor::start(|_| BucketActor::new(config(1.0, ms(1000))));
    let start = actix_rt::time::Instant::now();
    let queue = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    addr.send(Shutdown::graceful()).await.unwrap();
    assert_eq!(start.elapsed(), ms(2000));
    answers(queue).await;
    // Actix restarted the actor, since an address is alive; it stays closed, answers
    // every request, and (were it restarting in a loop) this test would never end.
    for _ in 0..100 {
        let answer = addr.send(Acquire::new(1.0)).await.unwrap();
        assert_eq!(answer, Err(AcquireError::ShuttingDown));
    }
    addr.send(Crash).await.unwrap();
    assert_eq!(
        addr.send(Acquire::new(0.0)).await.unwrap(),
        Err(AcquireError::ShuttingDown)
    );
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!((capacity.waiters, capacity.wait), (0, None));
    addr.send(Shutdown::immediate()).await.unwrap();
    assert_eq!(start.elapsed(), ms(2000));
}
