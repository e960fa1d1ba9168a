//! `BucketHandle::throttle` paces a stream's items at the bucket's rate, in order, ends
//! with the inner stream, and turns a stopped bucket into error items instead of a hang.

mod common;

use actix_leaky_bucket::{AcquireError, BucketActor, BucketHandle};
use common::*;
use futures::{Stream, StreamExt};

#[actix_rt::test]
async fn items_come_through_at_the_rate_in_order() {
    let (addr, start) = start_paused(BucketActor::new(config(2.0, ms(1000)))).await;
    let bucket = BucketHandle::new(addr);
    let items = futures::stream::iter(0..6u32);
    let mut paced = bucket.throttle(items, |_| 1.0);
    assert_eq!(paced.size_hint(), (6, Some(6)));
    let mut seen = Vec::new();
    while let Some(item) = paced.next().await {
        seen.push((item.unwrap(), start.elapsed()));
    }
    let expected: Vec<_> = [0, 0, 500, 1000, 1500, 2000]
        .into_iter()
        .enumerate()
        .map(|(i, at)| (i as u32, ms(at)))
        .collect();
    assert_eq!(seen, expected);
    assert!(paced.next().await.is_none(), "ended with the inner stream");
}

#[actix_rt::test]
async fn each_item_costs_what_the_closure_says() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let bucket = BucketHandle::new(addr);
    let batches = futures::stream::iter([vec![1; 10], vec![1; 5], vec![1; 1], vec![]]);
    let times: Vec<_> = bucket
        .throttle(batches, |batch| batch.len() as f64)
        .map(|batch| (batch.unwrap().len(), start.elapsed()))
        .collect()
        .await;
    assert_eq!(
        times,
        [(10, ms(0)), (5, ms(500)), (1, ms(600)), (0, ms(600))]
    );
}

#[actix_rt::test]
async fn a_stopped_bucket_gives_error_items() {
    let (addr, _) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    let bucket = BucketHandle::new(addr);
    let mut paced = bucket.throttle(futures::stream::iter(["a", "b", "c"]), |_| 1.0);
    assert_eq!(paced.next().await, Some(Ok("a")));
    bucket.shutdown_immediate().await.unwrap();
    settle().await;
    assert_eq!(paced.next().await, Some(Err(AcquireError::Stopped)));
    assert_eq!(paced.next().await, Some(Err(AcquireError::Stopped)));
    assert_eq!(paced.next().await, None);
}
