//! Helpers shared by the integration tests: a bucket on paused time, and requests whose
//! answers are recorded with the paused clock's time.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use actix::{Actor, ActorContext, Addr, Context, Handler, Message};
use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, BucketConfig, CapacityInfo, Granted};
use actix_rt::task::JoinHandle;
use actix_rt::time::Instant;

/// Tokio's timer resolution. The paused clock moves in whole ticks from the test's start.
pub const TICK: Duration = actix_leaky_bucket::TIMER_TICK;

/// Stops the bucket's context as a crash would, so that a test can show that a supervised
/// bucket keeps its level and queue across a restart.
#[derive(Debug, Clone, Copy)]
pub struct Crash;

impl Message for Crash {
    type Result = ();
}

impl Handler<Crash> for BucketActor {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// `at`, rounded up to a whole tick.
pub fn next_tick(at: Duration) -> Duration {
    let nanos = at.as_nanos().div_ceil(TICK.as_nanos());
    TICK * u32::try_from(nanos).expect("test times fit in u32 ticks")
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn config(capacity: f64, period: Duration) -> BucketConfig {
    BucketConfig::new(capacity, period).unwrap()
}

/// Pauses tokio's clock and starts `bucket` on this arbiter; returns its address and the
/// instant all test times count from.
pub async fn start_paused(bucket: BucketActor) -> (Addr<BucketActor>, Instant) {
    tokio::time::pause();
    let addr = bucket.start();
    // One round trip: the actor has started, so its mailbox no longer parks senders.
    addr.send(CapacityInfo::default()).await.unwrap();
    (addr, Instant::now())
}

pub type Answer = (Duration, Result<Granted, AcquireError>);

/// Sends `request` now, from a task of its own that records when the answer arrives.
pub fn spawn_acquire(
    addr: &Addr<BucketActor>,
    start: Instant,
    request: Acquire,
) -> JoinHandle<Answer> {
    let reply = addr.send(request);
    actix_rt::spawn(async move {
        let answer = reply.await.expect("the bucket answers every request");
        (start.elapsed(), answer)
    })
}

/// Sends each request now, in order.
pub fn spawn_all(
    addr: &Addr<BucketActor>,
    start: Instant,
    requests: impl IntoIterator<Item = Acquire>,
) -> Vec<JoinHandle<Answer>> {
    requests
        .into_iter()
        .map(|request| spawn_acquire(addr, start, request))
        .collect()
}

pub async fn answers(handles: Vec<JoinHandle<Answer>>) -> Vec<Answer> {
    let mut answers = Vec::with_capacity(handles.len());
    for handle in handles {
        answers.push(handle.await.unwrap());
    }
    answers
}

/// Sleeps until exactly `at` after `start`. (A plain `sleep` on the paused clock ends on
/// the tick after its deadline, as the timer rounds up.)
pub async fn sleep_to(start: Instant, at: Duration) {
    let target = start + at;
    tokio::time::sleep_until(target - TICK).await;
    if let Some(rest) = target.checked_duration_since(Instant::now()) {
        tokio::time::advance(rest).await;
    }
    assert_eq!(start.elapsed(), at);
}

/// Lets every task that can run, run, without moving the paused clock.
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Asserts that `at` is the first instant the paused clock can show at or after
/// `expected`: exactly `expected` when it is a whole number of milliseconds.
#[track_caller]
pub fn assert_at(at: Duration, expected: Duration) {
    assert_eq!(
        at,
        next_tick(expected),
        "answered at {at:?}, expected {expected:?}, on the paused clock {:?}",
        next_tick(expected)
    );
}

/// Asserts a grant of `amount` at `expected`, as `assert_at`.
#[track_caller]
pub fn assert_granted(answer: &Answer, amount: f64, expected: Duration) {
    match &answer.1 {
        Ok(granted) => assert_eq!(granted.amount, amount),
        Err(error) => panic!("expected a grant of {amount} at {expected:?}, got {error}"),
    }
    assert_at(answer.0, expected);
}
