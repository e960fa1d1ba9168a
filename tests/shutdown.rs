//! `Shutdown::graceful()` serves the requests received before it, in order and at the
//! normal rate, and replies once they are served; `Shutdown::immediate()` answers every
//! waiter at once. However the bucket ends (a shutdown of either kind, a stop, or its
//! arbiter stopping), every waiter gets an answer, and a later caller a clean error.

mod common;

use actix::{Actor, Arbiter, MailboxError, Supervisor};
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketHandle, CapacityInfo, Granted, Shutdown,
};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn graceful_serves_the_queue_at_the_rate_then_stops() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let queue = spawn_all(&addr, start, (0..4).map(|_| Acquire::new(1.0)));
    let shutdown = {
        let reply = addr.send(Shutdown::graceful());
        actix_rt::spawn(async move { reply.await.map(|()| start.elapsed()) })
    };
    let late = spawn_acquire(&addr, start, Acquire::new(1.0))
        .await
        .unwrap();
    assert_eq!(late, (Duration::ZERO, Err(AcquireError::ShuttingDown)));

    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(1000 * i as u64));
    }
    assert_eq!(shutdown.await.unwrap(), Ok(ms(3000)));
    settle().await;
    assert!(!addr.connected(), "the actor stopped");
    assert_eq!(
        addr.send(Acquire::new(1.0)).await,
        Err(MailboxError::Closed)
    );
}

#[actix_rt::test]
async fn graceful_on_an_idle_bucket_replies_at_once() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    addr.send(Shutdown::graceful()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[actix_rt::test]
async fn immediate_answers_every_waiter_and_pending_graceful_shutdown() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let queue = spawn_all(&addr, start, (0..100).map(|_| Acquire::new(1.0)));
    let graceful = {
        let reply = addr.send(Shutdown::graceful());
        actix_rt::spawn(async move { reply.await.map(|()| start.elapsed()) })
    };
    sleep_to(start, ms(2500)).await;
    addr.send(Shutdown::immediate()).await.unwrap();
    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        if i < 3 {
            assert_granted(answer, 1.0, ms(1000 * i as u64));
        } else {
            assert_eq!(*answer, (ms(2500), Err(AcquireError::ShuttingDown)), "{i}");
        }
    }
    assert_eq!(graceful.await.unwrap(), Ok(ms(2500)));
}

#[actix_rt::test]
async fn repeated_and_crossed_shutdowns_each_get_an_answer() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let queue = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    let graceful: Vec<_> = (0..3)
        .map(|_| {
            let reply = addr.send(Shutdown::graceful());
            actix_rt::spawn(async move { reply.await.map(|()| start.elapsed()) })
        })
        .collect();
    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(1000 * i as u64));
    }
    for reply in graceful {
        assert_eq!(reply.await.unwrap(), Ok(ms(2000)));
    }
    settle().await;
    // Gone: every later message, of either kind, gets a clean mailbox error.
    assert_eq!(
        addr.send(Shutdown::immediate()).await,
        Err(MailboxError::Closed)
    );
    assert_eq!(
        addr.send(Shutdown::graceful()).await,
        Err(MailboxError::Closed)
    );
}

#[actix_rt::test]
async fn dropping_every_address_still_serves_the_waiters() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let queue = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    drop(addr);
    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 1.0, ms(1000 * i as u64));
    }
}

#[actix_rt::test]
async fn a_stopped_actor_answers_its_waiters() {
    // However the actor ends, it answers the waiters it holds.
    let addr = BucketActor::new(config(1.0, ms(1000))).start();
    tokio::time::pause();
    let start = actix_rt::time::Instant::now();
    let queue = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    settle().await;
    addr.send(common::Crash).await.unwrap();
    let answers = answers(queue).await;
    assert!(answers[0].1.is_ok());
    for answer in &answers[1..] {
        assert_eq!(*answer, (Duration::ZERO, Err(AcquireError::ShuttingDown)));
    }
}

#[actix_rt::test]
async fn callers_of_a_stopped_actor_get_mailbox_closed() {
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let queue = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    settle().await;
    addr.send(Crash).await.unwrap(); // unsupervised: it stops for good
    let answers = answers(queue).await;
    assert_granted(&answers[0], 1.0, Duration::ZERO);
    for answer in &answers[1..] {
        assert_eq!(*answer, (Duration::ZERO, Err(AcquireError::ShuttingDown)));
    }
    settle().await;
    assert!(!addr.connected());
    assert_eq!(
        addr.send(Acquire::new(1.0)).await,
        Err(MailboxError::Closed)
    );
    assert_eq!(
        addr.send(CapacityInfo::new(1.0)).await,
        Err(MailboxError::Closed)
    );
    assert_eq!(
        addr.send(Shutdown::immediate()).await,
        Err(MailboxError::Closed)
    );
    addr.do_send(Acquire::new(1.0)); // nobody to tell, and no panic
}

#[actix_rt::test]
async fn stopping_the_arbiter_answers_every_waiter() {
    // A bucket on an arbiter of its own (real clock) that leaks one unit in 1000 s.
    let arbiter = Arbiter::new();
    let addr = BucketActor::start_in_arbiter(&arbiter.handle(), |_| {
        BucketActor::new(config(1.0, Duration::from_secs(1000)))
    });
    let requests: Vec<_> = (0..5).map(|_| addr.send(Acquire::new(1.0))).collect();
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!(capacity.waiters, 4);
    assert!(arbiter.stop());
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await);
    }
    assert!(matches!(answers[0], Ok(Ok(ref granted)) if granted.waited == Duration::ZERO));
    for answer in &answers[1..] {
        assert_eq!(*answer, Ok(Err(AcquireError::ShuttingDown)));
    }
    arbiter.join().unwrap();
    assert_eq!(
        addr.send(Acquire::new(1.0)).await,
        Err(MailboxError::Closed)
    );
}

/// After a shutdown, a request gets `ShuttingDown` while the actor still runs and
/// `Stopped` once it has stopped: for a plain bucket, `ShuttingDown` during a graceful
/// drain and `Stopped` after it; under a `Supervisor`, which keeps a closed bucket alive,
/// `ShuttingDown` for good. Waiters answered by an immediate shutdown get `ShuttingDown`
/// in both.
#[actix_rt::test]
async fn after_a_shutdown_both_kinds_of_bucket_answer_as_documented() {
    tokio::time::pause();
    let [plain, supervised] = both_kinds();
    for bucket in [&plain, &supervised] {
        let waiter = fill_then_wait(bucket).await;
        let draining = {
            let bucket = bucket.clone();
            actix_rt::spawn(async move { bucket.shutdown_graceful().await })
        };
        settle().await;
        assert_eq!(bucket.acquire(1.0).await, Err(AcquireError::ShuttingDown));
        assert!(waiter.await.unwrap().is_ok(), "the drain serves the waiter");
        draining.await.unwrap().unwrap();
        settle().await;
    }
    assert_eq!(plain.acquire(1.0).await, Err(AcquireError::Stopped));
    assert_eq!(plain.shutdown_immediate().await, Err(AcquireError::Stopped));
    assert_eq!(
        supervised.acquire(1.0).await,
        Err(AcquireError::ShuttingDown)
    );
    supervised.shutdown_immediate().await.unwrap();

    // Waiters answered by an immediate shutdown: `ShuttingDown`, for both kinds.
    let [plain, supervised] = both_kinds();
    for bucket in [&plain, &supervised] {
        let waiter = fill_then_wait(bucket).await;
        bucket.shutdown_immediate().await.unwrap();
        assert_eq!(waiter.await.unwrap(), Err(AcquireError::ShuttingDown));
    }
    settle().await;
    assert_eq!(plain.acquire(1.0).await, Err(AcquireError::Stopped));
    assert_eq!(
        supervised.acquire(1.0).await,
        Err(AcquireError::ShuttingDown)
    );
}

/// A plain bucket and a supervised one, of 1 per second.
fn both_kinds() -> [BucketHandle; 2] {
    let plain = BucketHandle::from(BucketActor::new(config(1.0, ms(1000))).start());
    let supervised = Supervisor::start(|_| BucketActor::new(config(1.0, ms(1000))));
    [plain, BucketHandle::from(supervised)]
}

/// Takes the whole of `bucket`, then sends a request that has to wait, from a task.
async fn fill_then_wait(
    bucket: &BucketHandle,
) -> actix_rt::task::JoinHandle<Result<Granted, AcquireError>> {
    bucket.acquire(1.0).await.unwrap();
    let waiter = {
        let bucket = bucket.clone();
        actix_rt::spawn(async move { bucket.acquire(1.0).await })
    };
    settle().await;
    waiter
}
