//! `Reconcile` refunds an overestimate at once, waking the queue, and charges an
//! underestimate at once as debt that the waiters behind wait out.

mod common;

use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, CapacityInfo, Reconcile};
use common::*;
use std::time::Duration;

#[actix_rt::test]
async fn a_refund_grants_the_waiter_that_now_fits_at_once() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let estimate = spawn_acquire(&addr, start, Acquire::new(10.0));
    let waiter = spawn_acquire(&addr, start, Acquire::new(5.0)); // due at 500 ms
    assert_granted(&estimate.await.unwrap(), 10.0, Duration::ZERO);
    sleep_to(start, ms(100)).await;
    // The call estimated at 10 cost 2: 8 come back, so at 100 ms the level is
    // 10 - 1 (leaked) - 8 = 1, and 5 fits.
    addr.send(Reconcile::new(2.0, 10.0)).await.unwrap().unwrap();
    assert_granted(&waiter.await.unwrap(), 5.0, ms(100));
    let capacity = addr.send(CapacityInfo::new(0.0)).await.unwrap();
    assert_eq!(capacity.level, 6.0);
}

#[actix_rt::test]
async fn a_refund_never_takes_the_level_below_zero() {
    let (addr, _) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    addr.send(Acquire::new(3.0)).await.unwrap().unwrap();
    addr.send(Reconcile::new(0.0, 8.0)).await.unwrap().unwrap();
    let capacity = addr.send(CapacityInfo::new(10.0)).await.unwrap();
    assert_eq!((capacity.level, capacity.has_capacity), (0.0, true));
}

#[actix_rt::test]
async fn debt_delays_the_next_waiter_by_debt_over_rate() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let full = spawn_acquire(&addr, start, Acquire::new(10.0));
    let next = spawn_acquire(&addr, start, Acquire::new(1.0)); // due at 100 ms
    settle().await;
    // The 10 really cost 15: 5 of debt at 10 per second is 500 ms more.
    addr.send(Reconcile::new(15.0, 10.0))
        .await
        .unwrap()
        .unwrap();
    let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
    assert_eq!((capacity.level, capacity.needed_capacity), (15.0, 6.0));
    assert_granted(&next.await.unwrap(), 1.0, ms(600));
    assert_granted(&full.await.unwrap(), 10.0, Duration::ZERO);
}

#[actix_rt::test]
async fn debt_times_out_a_waiter_a_tick_after_its_deadline() {
    let (addr, start) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    let full = spawn_acquire(&addr, start, Acquire::new(10.0)).await;
    assert_granted(&full.unwrap(), 10.0, Duration::ZERO);
    let hasty = spawn_acquire(&addr, start, Acquire::new(1.0).with_timeout(ms(200)));
    let patient = spawn_acquire(&addr, start, Acquire::new(1.0));
    settle().await;
    addr.send(Reconcile::new(15.0, 10.0))
        .await
        .unwrap()
        .unwrap();
    // Due at 600 ms now, past its 200 ms deadline: answered one timer tick after the
    // deadline (the grace for a grant the timer makes late), not before.
    let (at, answer) = hasty.await.unwrap();
    assert_at(at, ms(201));
    assert_eq!(
        answer,
        Err(AcquireError::Timeout {
            amount: 1.0,
            timeout: ms(200),
            // At 201 ms the level is 12.99; the patient 1 and a retried 1 fit at
            // 12.99 + 2 - 10 = 4.99 leaked.
            retry_after: ms(499),
        })
    );
    // The expired waiter leaves the queue: the one behind takes its 600 ms slot.
    assert_granted(&patient.await.unwrap(), 1.0, ms(600));
}

#[actix_rt::test]
async fn bad_costs_are_refused_and_change_nothing() {
    let (addr, _) = start_paused(BucketActor::new(config(10.0, ms(1000)))).await;
    addr.send(Acquire::new(4.0)).await.unwrap().unwrap();
    for (actual, estimated) in [
        (f64::NAN, 1.0),
        (1.0, f64::NAN),
        (f64::INFINITY, 1.0),
        (1.0, f64::NEG_INFINITY),
        (-1.0, 1.0),
        (1.0, -0.5),
    ] {
        let answer = addr.send(Reconcile::new(actual, estimated)).await.unwrap();
        assert!(
            matches!(answer, Err(AcquireError::InvalidAmount { capacity, .. }) if capacity == 10.0),
            "{actual} {estimated}: {answer:?}"
        );
    }
    // Costs above the capacity are fine: a call may cost more than the bucket holds.
    addr.send(Reconcile::new(-0.0, 0.0)).await.unwrap().unwrap();
    let capacity = addr.send(CapacityInfo::new(0.0)).await.unwrap();
    assert_eq!(capacity.level, 4.0);
    addr.send(Reconcile::new(30.0, 4.0)).await.unwrap().unwrap();
    let capacity = addr.send(CapacityInfo::new(0.0)).await.unwrap();
    assert_eq!(capacity.level, 30.0);
    // Debt that would overflow is refused; a huge finite one can be refunded in full.
    addr.send(Reconcile::new(f64::MAX, 0.0))
        .await
        .unwrap()
        .unwrap();
    let overflow = addr.send(Reconcile::new(f64::MAX, 0.0)).await.unwrap();
    assert!(
        matches!(overflow, Err(AcquireError::InvalidAmount { amount, .. }) if amount == f64::MAX)
    );
    addr.send(Reconcile::new(0.0, f64::MAX))
        .await
        .unwrap()
        .unwrap();
    // Refunded in full: back to the 30 it held before, which a float would have rounded
    // away (30 + f64::MAX is f64::MAX), but the level is kept exactly.
    let capacity = addr.send(CapacityInfo::new(10.0)).await.unwrap();
    assert_eq!((capacity.level, capacity.has_capacity), (30.0, false));
}
