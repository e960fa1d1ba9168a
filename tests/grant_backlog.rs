//! Every grant says the bucket's state just after it: its backlog (the level and what still
//! waits), from which the room left and when the bucket is empty again, and its capacity and
//! rate, the new ones after a `Reconfigure`. What a response's rate-limit headers are made
//! of.

mod common;

use actix::Actor;
use actix_leaky_bucket::{Acquire, BucketActor, Keyed, KeyedBucketActor, Reconfigure};
use common::*;

#[actix_rt::test]
async fn a_grant_reports_its_backlog_and_the_buckets_capacity_and_rate() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let (_, first) = spawn_acquire(&addr, start, Acquire::new(4.0))
        .await
        .unwrap();
    let first = first.unwrap();
    assert_eq!(
        (first.backlog, first.capacity, first.leak_rate),
        (4.0, 10.0, 10.0)
    );
    assert_eq!((first.remaining(), first.empty_in()), (6.0, ms(400)));

    // Two wait behind a full bucket: the first is granted with the second still behind.
    addr.send(Acquire::new(6.0)).await.unwrap().unwrap();
    let queue = spawn_all(&addr, start, [Acquire::new(2.0), Acquire::new(2.0)]);
    let answers = answers(queue).await;
    let reported: Vec<_> = answers
        .iter()
        .map(|(at, answer)| {
            let granted = answer.as_ref().unwrap();
            (
                *at,
                granted.backlog,
                granted.remaining(),
                granted.empty_in(),
            )
        })
        .collect();
    let expected = [
        (ms(200), 12.0, 0.0, ms(1200)),
        (ms(400), 10.0, 0.0, ms(1000)),
    ];
    assert_eq!(reported, expected);

    addr.send(Reconfigure(config(20.0, ms(1000))))
        .await
        .unwrap();
    let (_, after) = spawn_acquire(&addr, start, Acquire::new(1.0))
        .await
        .unwrap();
    let after = after.unwrap();
    assert_eq!((after.capacity, after.leak_rate), (20.0, 20.0));
    assert_eq!((after.backlog, after.remaining()), (11.0, 9.0));
}

#[actix_rt::test]
async fn a_keyed_grant_reports_its_own_keys_bucket() {
    tokio::time::pause();
    let buckets = KeyedBucketActor::<&str>::new(config(5.0, ms(1000))).start();
    buckets
        .send(Keyed::new("a", Acquire::new(4.0)))
        .await
        .unwrap()
        .unwrap();
    let b = buckets
        .send(Keyed::new("b", Acquire::new(1.0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b.backlog, b.remaining(), b.empty_in()),
        (1.0, 4.0, ms(200))
    );
}
