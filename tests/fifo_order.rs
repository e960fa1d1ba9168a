//! Requests are granted strictly in the order the bucket received them, whatever their
//! amounts, and every grant keeps the conformance bound.

mod common;

use actix_leaky_bucket::{Acquire, BucketActor};
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
