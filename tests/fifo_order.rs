//! Requests are granted strictly in the order the bucket received them, whatever their
//! amounts and whether they come from tasks or from actors' handlers, and every grant
//! keeps the conformance bound.

mod common;

use actix::{Actor, Supervisor};
use actix_leaky_bucket::{Acquire, AcquireError, BucketActor};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn a_small_request_never_overtakes_a_large_one() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    // 10 fills the bucket; then 5 must wait 500 ms, and 1 (which would fit after 100 ms)
    // waits behind it; 3 follows 300 ms later.
    let amounts = [10.0, 5.0, 1.0, 3.0];
    let answers = answers(spawn_all(&addr, start, amounts.map(Acquire::new))).await;
    assert_eq!(answers[0].0, Duration::ZERO);
    assert_granted(&answers[1], 5.0, ms(500));
    assert_granted(&answers[2], 1.0, ms(600));
    assert_granted(&answers[3], 3.0, ms(900));
}

#[actix_rt::test]
async fn mixed_amounts_follow_the_model_and_the_conformance_bound() {
    let capacity = 7.0;
    let rate = 7.0; // per second
    let (addr, start) = start_paused(BucketActor::new(config(capacity, ms(1000)))).await;
    let amounts: Vec<f64> = (0..500u64).map(|i| ((i * 37 % 23) as f64) * 0.3).collect();
    let answers = answers(spawn_all(
        &addr,
        start,
        amounts.iter().map(|&a| Acquire::new(a)),
    ))
    .await;

    // The model: the k-th grant comes once the sum of amounts up to k, less the capacity,
    // has leaked.
    let mut prefix = 0.0;
    for (answer, &amount) in answers.iter().zip(&amounts) {
        prefix += amount;
        let ideal = Duration::from_secs_f64(((prefix - capacity) / rate).max(0.0));
        let at = answer.0;
        assert!(answer.1.is_ok());
        // The model's float sum may be off by a few ulps: allow a nanosecond.
        assert!(
            at == next_tick(ideal.saturating_sub(Duration::from_nanos(1))),
            "granted {amount} at {at:?}, model says {ideal:?}"
        );
    }
    // Grants come in arrival order, so their times never decrease.
    assert!(answers.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    // In every window [t_i, t_j], the amount granted is at most capacity + rate * window.
    for i in 0..answers.len() {
        let mut granted = 0.0;
        for j in i..answers.len() {
            granted += amounts[j];
            let window = (answers[j].0 - answers[i].0).as_secs_f64();
            assert!(
                granted <= capacity + rate * window + 1e-9,
                "{granted} granted in {window} s"
            );
        }
    }
}

#[actix_rt::test]
async fn a_supervised_bucket_serves_actors_sending_from_their_handlers() {
    use actix::{Addr, Context, Handler, Message, ResponseFuture};

    struct Worker(Addr<BucketActor>);
    impl Actor for Worker {
        type Context = Context<Self>;
    }
    struct Work;
    impl Message for Work {
        type Result = Result<Duration, AcquireError>;
    }
    impl Handler<Work> for Worker {
        type Result = ResponseFuture<Result<Duration, AcquireError>>;
        fn handle(&mut self, _: Work, _: &mut Context<Self>) -> Self::Result {
            let bucket = self.0.clone();
            let start = actix_rt::time::Instant::now();
            Box::pin(async move {
                bucket.send(Acquire::new(1.0)).await.unwrap()?;
                Ok(start.elapsed())
            })
        }
    }

    tokio::time::pause();
    let bucket = Supervisor::start(|_| BucketActor::new(config(2.0, ms(1000))));
    let workers: Vec<_> = (0..3).map(|_| Worker(bucket.clone()).start()).collect();
    let mut replies = Vec::new();
    for _ in 0..2 {
        for worker in &workers {
            replies.push(worker.send(Work));
        }
    }
    let mut waits = Vec::new();
    for reply in replies {
        waits.push(reply.await.unwrap().unwrap());
    }
    // Each worker handles both its messages in one turn, so the bucket receives worker
    // 1's two requests, then worker 2's, then worker 3's.
    assert_eq!(waits, [0, 500, 1500, 0, 1000, 2000].map(ms));
}
