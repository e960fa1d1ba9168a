//! An admitted request is granted by its deadline: the projection made on receipt holds
//! however the queue ahead is made up. On the paused clock the timer's grants land on whole
//! milliseconds, so "by its deadline" means by the first tick at or after it, plus one tick.

mod common;

use actix_leaky_bucket::{Acquire, BucketActor, CapacityInfo};
use common::*;

#[actix_rt::test]
async fn a_timeout_admitted_behind_whole_millisecond_grants_is_met_exactly() {
    // 3 per 10 ms: with a full bucket, each 3.0 is due on a whole millisecond.
    let (addr, start) = start_paused(BucketActor::new(config(3.0, ms(10)))).await;
    let queue = spawn_all(&addr, start, [3.0, 3.0, 3.0, 3.0].map(Acquire::new));
    settle().await;
    let wait = addr
        .send(CapacityInfo::new(0.3))
        .await
        .unwrap()
        .wait
        .unwrap();
    assert_eq!(wait, ms(31));
    let last = spawn_acquire(&addr, start, Acquire::new(0.3).with_timeout(wait));
    assert_granted(&last.await.unwrap(), 0.3, ms(31));
    let answers = answers(queue).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_granted(answer, 3.0, ms(10 * i as u64));
    }
}

#[actix_rt::test]
#[ignore = "known limitation of the paused clock: a grant due between ticks lands on the \
            next tick, and when the bucket would have run empty meanwhile the leak is lost \
            (granting earlier would break the conformance bound), so each such grant \
            slips later by up to a tick; an admitted timeout set to exactly its projected \
            wait then expires a tick after its deadline. On a real clock the slip is \
            what the precise timer's wake-up is late by: microseconds on a quiet machine"]
async fn a_timeout_admitted_behind_grants_due_between_ticks_is_met() {
    // 3 per 10 ms (0.3 per ms). After 2.5 at once, each 3.0 is due when the bucket is
    // empty, at a fraction of a millisecond, and each 0.1 between them shifts the next.
    let (addr, start) = start_paused(BucketActor::new(config(3.0, ms(10)))).await;
    let amounts = [2.5, 3.0, 0.1, 3.0, 0.1, 3.0, 0.1, 3.0];
    let queue = spawn_all(&addr, start, amounts.map(Acquire::new));
    settle().await;
    let wait = addr
        .send(CapacityInfo::new(0.1))
        .await
        .unwrap()
        .wait
        .unwrap();
    let last = spawn_acquire(&addr, start, Acquire::new(0.1).with_timeout(wait));
    let (at, answer) = last.await.unwrap();
    assert!(answer.is_ok(), "admitted, then {answer:?}");
    assert!(
        at <= next_tick(wait) + TICK,
        "projected {wait:?} on receipt, granted at {at:?}"
    );
    answers(queue).await;
}
