//! Under `Supervisor`, a restart keeps the level, the queue and the pending replies and
//! re-arms the timer; after `Shutdown` the bucket stays closed without a restart loop.

mod common;

use actix::{Actor, Supervisor};
use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, CapacityInfo, Shutdown};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn a_restart_loses_no_waiter_and_grants_no_extra_burst() {
    tokio::time::pause();
    let addr = Supervisor::start(|_| BucketActor::new(config(2.0, ms(1000))));
    addr.send(CapacityInfo::default()).await.unwrap();
    let start = actix_rt::time::Instant::now();
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
    tokio::time::pause();
    let addr = Supervisor::start(|_| BucketActor::new(config(1.0, ms(100))));
    addr.send(CapacityInfo::default()).await.unwrap();
    let start = actix_rt::time::Instant::now();
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
