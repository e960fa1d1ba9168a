//! Per-key buckets on paused time: each key keeps every promise of a single bucket, keys
//! never delay one another, a key is held only while its bucket differs from a new one,
//! and a graceful shutdown waits only for the callers still there.

mod common;

use std::time::Duration;

use actix::{Actor, ActorContext, Addr, Context, Handler, Message, Supervisor};
use actix_leaky_bucket::{
    Acquire, AcquireError, CapacityInfo, Keyed, KeyedBucketActor, KeyedStats, Reconcile,
    Reconfigure, Shutdown, Stats,
};
use actix_rt::task::JoinHandle;
use actix_rt::time::Instant;
use common::*;

type Buckets = Addr<KeyedBucketActor<&'static str>>;

/// Stops the actor's context as a crash would.
struct Crash;

impl Message for Crash {
    type Result = ();
}

impl Handler<Crash> for KeyedBucketActor<&'static str> {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

async fn start(actor: KeyedBucketActor<&'static str>) -> (Buckets, Instant) {
    tokio::time::pause();
    let addr = actor.start();
    addr.send(KeyedStats).await.unwrap();
    (addr, Instant::now())
}

fn acquire(
    addr: &Buckets,
    start: Instant,
    key: &'static str,
    request: Acquire,
) -> JoinHandle<Answer> {
    let reply = addr.send(Keyed::new(key, request));
    actix_rt::spawn(async move {
        let answer = reply.await.expect("answered");
        (start.elapsed(), answer)
    })
}

fn acquire_all(
    addr: &Buckets,
    start: Instant,
    requests: &[(&'static str, f64)],
) -> Vec<JoinHandle<Answer>> {
    requests
        .iter()
        .map(|&(key, amount)| acquire(addr, start, key, Acquire::new(amount)))
        .collect()
}

#[actix_rt::test]
async fn each_key_has_its_own_burst_and_leak_and_none_delays_another() {
    let (addr, start) = start(KeyedBucketActor::new(config(2.0, ms(1000)))).await;
    // Alice asks for 5, Bob for 3, Carol for 1, interleaved.
    let requests = [
        ("alice", 1.0),
        ("bob", 1.0),
        ("alice", 1.0),
        ("alice", 1.0),
        ("carol", 1.0),
        ("bob", 1.0),
        ("alice", 1.0),
        ("bob", 1.0),
        ("alice", 1.0),
    ];
    let answers = answers(acquire_all(&addr, start, &requests)).await;
    let expected = [0, 0, 0, 500, 0, 0, 1000, 500, 1500];
    for (answer, at) in answers.iter().zip(expected) {
        assert_granted(answer, 1.0, ms(at));
    }
}

#[actix_rt::test]
async fn a_long_queue_on_one_key_never_slows_another() {
    let (addr, start) = start(KeyedBucketActor::new(config(1.0, ms(1000)))).await;
    let busy = acquire_all(&addr, start, &[("busy", 1.0); 1000]);
    settle().await;
    for k in 0..10 {
        sleep_to(start, ms(100 * k + 50)).await;
        let other = acquire(
            &addr,
            start,
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"][k as usize],
            Acquire::new(1.0),
        );
        assert_granted(&other.await.unwrap(), 1.0, ms(100 * k + 50));
    }
    addr.send(Shutdown::immediate()).await.unwrap();
    let answers = answers(busy).await;
    assert_eq!(
        answers.iter().filter(|a| a.1.is_ok()).count(),
        1,
        "at 0 s; the next was due at 1 s"
    );
}

#[actix_rt::test]
async fn fifo_holds_within_a_key_whatever_the_amounts() {
    let (addr, start) = start(KeyedBucketActor::new(config(10.0, ms(1000)))).await;
    let answers = answers(acquire_all(
        &addr,
        start,
        &[("k", 10.0), ("k", 8.0), ("k", 1.0)],
    ))
    .await;
    assert_granted(&answers[0], 10.0, ms(0));
    assert_granted(&answers[1], 8.0, ms(800));
    assert_granted(&answers[2], 1.0, ms(900));
}

#[actix_rt::test]
async fn timeouts_queue_bounds_and_bad_amounts_are_per_key() {
    let (addr, start) = start(KeyedBucketActor::new(config(10.0, ms(1000))).max_queue(2)).await;
    let queued = acquire_all(&addr, start, &[("k", 10.0), ("k", 1.0), ("k", 1.0)]);
    settle().await;
    // k's third waiter would wait 300 ms: a timeout of 299 ms is refused at once.
    let refused = acquire(&addr, start, "k", Acquire::new(1.0).with_timeout(ms(299)))
        .await
        .unwrap();
    let timeout = AcquireError::Timeout {
        amount: 1.0,
        timeout: ms(299),
        retry_after: ms(300),
    };
    assert_eq!(refused, (ms(0), Err(timeout)));
    // k's queue is full; another key's is not.
    let full = acquire(&addr, start, "k", Acquire::new(1.0)).await.unwrap();
    let queue_full = AcquireError::QueueFull {
        max_queue: 2,
        retry_after: ms(100),
    };
    assert_eq!(full, (ms(0), Err(queue_full)));
    let other = acquire_all(&addr, start, &[("j", 10.0), ("j", 1.0), ("j", 1.0)]);
    // An invalid amount is refused, and leaves no trace of its key.
    let invalid = acquire(&addr, start, "never", Acquire::new(11.0))
        .await
        .unwrap();
    assert!(
        matches!(invalid.1, Err(AcquireError::InvalidAmount { amount, capacity }) if amount == 11.0 && capacity == 10.0)
    );
    assert_eq!(addr.send(KeyedStats).await.unwrap().keys, 2);
    for answers in [answers(queued).await, answers(other).await] {
        assert_granted(&answers[2], 1.0, ms(200));
    }
}

#[actix_rt::test]
async fn a_caller_who_leaves_costs_its_key_nothing() {
    let (addr, start) = start(KeyedBucketActor::new(config(1.0, ms(1000)))).await;
    let mut queue = acquire_all(&addr, start, &[("k", 1.0); 4]);
    settle().await;
    queue.remove(2).abort(); // due at 2 s
    settle().await;
    // The prediction leaves it out, and so does the queue: the last is due at 2 s.
    let query = Keyed::new("k", CapacityInfo::new(1.0));
    assert_eq!(addr.send(query).await.unwrap().wait, Some(ms(3000)));
    let answers = answers(queue).await;
    for (answer, at) in answers.iter().zip([0, 1000, 2000]) {
        assert_granted(answer, 1.0, ms(at));
    }
    let stats = addr.send(Stats).await.unwrap();
    assert_eq!((stats.granted, stats.cancelled), (3, 1));
}

#[actix_rt::test]
async fn refunds_and_debts_are_per_key() {
    let (addr, start) = start(KeyedBucketActor::new(config(10.0, ms(1000)))).await;
    let answers_ = answers(acquire_all(&addr, start, &[("a", 10.0), ("b", 10.0)])).await;
    assert!(answers_.iter().all(|a| a.0 == ms(0)));
    let waiting = acquire_all(&addr, start, &[("a", 5.0), ("b", 1.0)]);
    settle().await;
    // a's call cost 2 of its 10: 8 come back, and a's waiter fits at once.
    addr.send(Keyed::new("a", Reconcile::new(2.0, 10.0)))
        .await
        .unwrap()
        .unwrap();
    // b's cost 15: 5 of debt, 500 ms more for b's waiter.
    addr.send(Keyed::new("b", Reconcile::new(15.0, 10.0)))
        .await
        .unwrap()
        .unwrap();
    let answers = answers(waiting).await;
    assert_granted(&answers[0], 5.0, ms(0));
    assert_granted(&answers[1], 1.0, ms(600));
    let bad = addr
        .send(Keyed::new("c", Reconcile::new(f64::NAN, 1.0)))
        .await
        .unwrap();
    assert!(matches!(bad, Err(AcquireError::InvalidAmount { .. })));
}

#[actix_rt::test]
async fn a_key_is_dropped_exactly_when_its_bucket_is_empty_and_nobody_waits() {
    let (addr, start) = start(KeyedBucketActor::new(config(10.0, ms(1000)))).await;
    answers(acquire_all(
        &addr,
        start,
        &[("a", 3.0), ("b", 10.0), ("b", 1.0)],
    ))
    .await;
    // a empties at 300 ms; b's waiter was granted at 100 ms, and b empties at 1.1 s.
    let keys = |addr: Buckets| async move { addr.send(KeyedStats).await.unwrap() };
    sleep_to(start, ms(299)).await;
    assert_eq!(keys(addr.clone()).await.keys, 2);
    sleep_to(start, ms(300)).await;
    let stats = keys(addr.clone()).await;
    assert_eq!((stats.keys, stats.evicted), (1, 1));
    sleep_to(start, ms(1099)).await;
    assert_eq!(keys(addr.clone()).await.keys, 1);
    sleep_to(start, ms(1100)).await;
    let stats = keys(addr.clone()).await;
    assert_eq!((stats.keys, stats.evicted, stats.totals.granted), (0, 2, 3));
}

#[actix_rt::test]
async fn a_key_that_comes_back_starts_with_a_full_burst_as_a_new_one_would() {
    let (addr, start) = start(KeyedBucketActor::new(config(4.0, ms(1000)))).await;
    answers(acquire_all(&addr, start, &[("a", 4.0)])).await;
    sleep_to(start, ms(1000)).await;
    assert_eq!(addr.send(KeyedStats).await.unwrap().keys, 0);
    let again = answers(acquire_all(&addr, start, &[("a", 1.0); 5])).await;
    for (answer, at) in again.iter().zip([1000, 1000, 1000, 1000, 1250]) {
        assert_granted(answer, 1.0, ms(at));
    }
}

#[actix_rt::test]
async fn the_timer_drops_idle_keys_by_itself_and_then_sleeps() {
    let (addr, start) = start(KeyedBucketActor::new(config(10.0, ms(1000)))).await;
    let keys: Vec<&'static str> = (0..100)
        .map(|i| &*Box::leak(format!("user-{i}").into_boxed_str()))
        .collect();
    let requests: Vec<_> = keys.iter().map(|&key| (key, 5.0)).collect();
    answers(acquire_all(&addr, start, &requests)).await;
    // Every bucket empties at 500 ms, and the timer's sweep drops them: KeyedStats would
    // too, but keyed_memory.rs shows, by the heap, that the timer needs no message.
    tokio::time::sleep(ms(700)).await;
    let keyed = addr.send(KeyedStats).await.unwrap();
    assert_eq!((keyed.keys, keyed.evicted), (0, 100));
}

#[actix_rt::test]
async fn a_graceful_shutdown_serves_every_key_then_stops() {
    tokio::time::pause();
    let addr = Supervisor::start(|_| KeyedBucketActor::<&'static str>::new(config(1.0, ms(1000))));
    addr.send(KeyedStats).await.unwrap();
    let start = Instant::now();
    let queue = acquire_all(
        &addr,
        start,
        &[("a", 1.0), ("a", 1.0), ("b", 1.0), ("b", 1.0), ("b", 1.0)],
    );
    settle().await;
    let shutdown = addr.send(Shutdown::graceful());
    let late = acquire(&addr, start, "c", Acquire::new(1.0));
    shutdown.await.unwrap();
    assert_eq!(start.elapsed(), ms(2000));
    assert_eq!(
        late.await.unwrap(),
        (ms(0), Err(AcquireError::ShuttingDown))
    );
    let answers = answers(queue).await;
    for (answer, at) in answers.iter().zip([0, 1000, 0, 1000, 2000]) {
        assert_granted(answer, 1.0, ms(at));
    }
    // Under a supervisor it stays up, closed.
    let after = addr.send(Keyed::new("d", Acquire::new(1.0))).await.unwrap();
    assert_eq!(after, Err(AcquireError::ShuttingDown));
}

#[actix_rt::test]
async fn an_immediate_shutdown_answers_every_waiter_of_every_key() {
    let (addr, start) = start(KeyedBucketActor::new(config(1.0, ms(1000)))).await;
    let queue = acquire_all(
        &addr,
        start,
        &[("a", 1.0), ("a", 1.0), ("b", 1.0), ("b", 1.0)],
    );
    settle().await;
    addr.send(Shutdown::immediate()).await.unwrap();
    let answers = answers(queue).await;
    assert_eq!(answers.iter().filter(|a| a.1.is_ok()).count(), 2);
    assert!(answers
        .iter()
        .filter(|a| a.1.is_err())
        .all(|a| a == &(ms(0), Err(AcquireError::ShuttingDown))));
}

#[actix_rt::test]
async fn a_supervised_restart_keeps_every_key() {
    tokio::time::pause();
    let addr = Supervisor::start(|_| KeyedBucketActor::<&'static str>::new(config(2.0, ms(1000))));
    addr.send(KeyedStats).await.unwrap();
    let start = Instant::now();
    let queue = acquire_all(
        &addr,
        start,
        &[("a", 1.0), ("a", 1.0), ("a", 1.0), ("b", 2.0), ("b", 1.0)],
    );
    sleep_to(start, ms(250)).await;
    addr.send(Crash).await.unwrap();
    let a = addr
        .send(Keyed::new("a", CapacityInfo::new(1.0)))
        .await
        .unwrap();
    assert_eq!((a.level, a.waiters), (1.5, 1));
    let answers = answers(queue).await;
    for (answer, at) in answers.iter().zip([0, 0, 500, 0, 500]) {
        assert!(answer.1.is_ok());
        assert_at(answer.0, ms(at));
    }
}

#[actix_rt::test]
async fn reconfiguring_applies_to_every_key() {
    let (addr, start) = start(KeyedBucketActor::new(config(10.0, ms(1000)))).await;
    let queue = acquire_all(
        &addr,
        start,
        &[("a", 10.0), ("a", 1.0), ("b", 10.0), ("b", 8.0)],
    );
    settle().await;
    addr.send(Reconfigure(config(4.0, ms(1000)))).await.unwrap();
    let answers = answers(queue).await;
    // a: level 10 leaks at 4 per second: 1 fits at level 3, 1.75 s later.
    assert_granted(&answers[1], 1.0, ms(1750));
    assert!(
        matches!(answers[3].1, Err(AcquireError::InvalidAmount { amount, capacity }) if amount == 8.0 && capacity == 4.0)
    );
}

#[actix_rt::test]
async fn a_do_send_takes_what_fits_at_once_and_is_otherwise_skipped() {
    let (addr, _) = start(KeyedBucketActor::new(config(2.0, ms(1000)))).await;
    for _ in 0..5 {
        addr.do_send(Keyed::new("k", Acquire::new(1.0)));
    }
    let capacity = addr
        .send(Keyed::new("k", CapacityInfo::new(1.0)))
        .await
        .unwrap();
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
}

#[actix_rt::test]
async fn an_unknown_key_is_an_empty_bucket_and_a_query_adds_no_key() {
    let (addr, _) = start(KeyedBucketActor::new(config(2.0, ms(1000)))).await;
    let capacity = addr
        .send(Keyed::new("nobody", CapacityInfo::new(1.0)))
        .await
        .unwrap();
    assert_eq!(
        (capacity.level, capacity.has_capacity, capacity.wait),
        (0.0, true, Some(Duration::ZERO))
    );
    assert_eq!(addr.send(KeyedStats).await.unwrap().keys, 0);
}

#[actix_rt::test]
async fn bad_reconciles_to_keys_never_seen_leave_no_trace() {
    let (addr, _) = start(KeyedBucketActor::new(config(10.0, ms(1000)))).await;
    for (key, amount) in [("nan", f64::NAN), ("inf", f64::INFINITY), ("neg", -1.0)] {
        let refused = addr
            .send(Keyed::new(key, Reconcile::new(amount, 1.0)))
            .await
            .unwrap();
        assert!(
            matches!(refused, Err(AcquireError::InvalidAmount { .. })),
            "{key}"
        );
    }
    tokio::time::sleep(ms(2000)).await;
    let stats = addr.send(KeyedStats).await.unwrap();
    assert_eq!((stats.keys, stats.evicted, stats.totals.invalid), (0, 0, 3));
}

/// Fills key "a" of `addr` for a period, and queues `waiters` behind it, each due a period
/// after the one before; returns the waiters' tasks.
async fn queue_behind_a_full_key(addr: &Buckets, waiters: usize) -> Vec<JoinHandle<()>> {
    addr.send(Keyed::new("a", Acquire::new(1.0)))
        .await
        .unwrap()
        .unwrap();
    let handles = (0..waiters)
        .map(|_| {
            let reply = addr.send(Keyed::new("a", Acquire::new(1.0)));
            actix_rt::spawn(async move {
                let _ = reply.await;
            })
        })
        .collect();
    settle().await;
    handles
}

#[actix_rt::test]
async fn a_graceful_shutdown_does_not_wait_for_callers_who_left_before_it() {
    let hour = Duration::from_secs(3600);
    let (addr, start) = start(KeyedBucketActor::new(config(1.0, hour))).await;
    for waiter in queue_behind_a_full_key(&addr, 2).await {
        waiter.abort();
    }
    settle().await;
    addr.send(Shutdown::graceful()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "nobody was left to serve");
    let stopped = addr.send(KeyedStats).await;
    assert!(stopped.is_err(), "the actor stopped once drained");
}

#[actix_rt::test]
async fn a_graceful_shutdown_ends_when_the_last_caller_it_waits_for_leaves() {
    let hour = Duration::from_secs(3600);
    let (addr, start) = start(KeyedBucketActor::new(config(1.0, hour))).await;
    let waiters = queue_behind_a_full_key(&addr, 2).await;
    let shutdown = {
        let reply = addr.send(Shutdown::graceful());
        actix_rt::spawn(async move {
            reply.await.unwrap();
            start.elapsed()
        })
    };
    sleep_to(start, ms(1500)).await;
    let mut waiters = waiters.into_iter();
    waiters.next().unwrap().abort();
    settle().await;
    assert!(!shutdown.is_finished(), "one caller still waits");
    waiters.next().unwrap().abort();
    assert_eq!(
        shutdown.await.unwrap(),
        ms(1500),
        "answered as the last one left"
    );
}
