//! One lane's decisions, request by request, at exact instants.

use std::time::Duration;

use super::{at, ms, rules, Bench, TICK};
use crate::core::{Lanes, Limits, OwnLevels, Refusal, Rules, Time, Window};

fn granted_at(bench: &Bench) -> Vec<(usize, Time)> {
    bench
        .answers()
        .into_iter()
        .map(|(caller, answer)| (caller, answer.expect("a grant").at))
        .collect()
}

#[test]
fn a_burst_of_the_capacity_then_the_exact_leak_in_arrival_order() {
    let mut bench = Bench::new(10.0, ms(1000));
    for _ in 0..10 {
        assert!(bench.acquire(at(0), 1.0, None).is_ok());
    }
    // A large request, then a small one behind it: the small one never overtakes.
    assert_eq!(bench.acquire(at(0), 5.0, None), Err(None));
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    assert_eq!(
        bench.lane.next_wake(),
        Some(Window::within(at(500), ms(500)))
    );
    bench.run_until(at(10_000));
    assert_eq!(granted_at(&bench), [(10, at(500)), (11, at(600))]);
    assert_eq!(
        (bench.stats.granted, bench.stats.granted_amount),
        (12, 16.0)
    );
    assert_eq!((bench.stats.queue_len, bench.stats.max_queue_len), (0, 2));
    assert_eq!(bench.lane.next_wake(), None, "nobody waits: no wake-up");
}

#[test]
fn an_impossible_timeout_is_refused_at_once_and_a_possible_one_is_met() {
    let mut bench = Bench::new(10.0, ms(1000));
    assert!(bench.acquire(at(0), 10.0, None).is_ok());
    for _ in 0..5 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    let refused = bench.acquire(at(0), 1.0, Some(ms(599)));
    let expected = Refusal::Timeout {
        amount: 1.0,
        timeout: ms(599),
        retry_after: ms(600),
    };
    assert_eq!(refused, Err(Some((6, expected))));
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(600))), Err(None));
    bench.run_until(at(10_000));
    let answers = granted_at(&bench);
    assert_eq!(answers.last(), Some(&(7, at(600))));
    assert_eq!(bench.stats.timed_out, 1);
}

#[test]
fn a_full_queue_refuses_with_the_wait_of_its_head() {
    let mut bench = Bench::with_rules(Rules {
        max_queue: 2,
        ..rules(1.0, ms(1000))
    });
    assert!(bench.acquire(at(0), 1.0, None).is_ok());
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    let full = Refusal::QueueFull {
        max_queue: 2,
        retry_after: ms(750),
    };
    assert_eq!(bench.acquire(at(250), 1.0, None), Err(Some((3, full))));
    assert_eq!(bench.stats.queue_full, 1);
}

#[test]
fn callers_who_left_cost_nothing_and_are_not_counted_in_a_prediction() {
    // Capacity 1 per 100 ms: one grant, one waiter due at 100 ms, three that leave.
    let mut bench = Bench::new(1.0, ms(100));
    assert!(bench.acquire(at(0), 1.0, None).is_ok());
    for _ in 0..4 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    bench.replies.gone.borrow_mut().extend([2, 3, 4]);
    // The front end raises the departure flag, as a caller's reply channel would.
    let (departures, _) = bench.lane.callers_mut().unwrap();
    departures.raise();
    let (lane, mut env) = bench.env(at(0));
    let capacity = lane.capacity(&mut env, &(), 1.0, true);
    assert_eq!((capacity.waiters, capacity.wait), (1, Some(ms(200))));
    assert_eq!(bench.stats.cancelled, 3);
    // A request sent at that instant gets what was predicted.
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    bench.run_until(at(1000));
    assert_eq!(granted_at(&bench), [(1, at(100)), (5, at(200))]);
    assert_eq!(bench.stats.cancelled, 3, "each counted once");
}

#[test]
fn without_a_departure_signal_a_prediction_costs_no_pass_over_the_queue() {
    let mut bench = Bench::new(1.0, ms(100));
    assert!(bench.acquire(at(0), 1.0, None).is_ok());
    for _ in 0..3 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    // Marked gone, but unsignalled: the prediction keeps them (no pass was made), and
    // they are skipped when they reach the head.
    bench.replies.gone.borrow_mut().insert(2);
    let (lane, mut env) = bench.env(at(0));
    assert_eq!(lane.capacity(&mut env, &(), 1.0, true).waiters, 3);
    bench.run_until(at(1000));
    assert_eq!(granted_at(&bench), [(1, at(100)), (3, at(200))]);
    assert_eq!(bench.stats.cancelled, 1);
}

#[test]
fn sums_of_full_requests_near_f64_max_do_not_overflow() {
    for capacity in [f64::MAX, 1e308] {
        let mut bench = Bench::new(capacity, ms(1000));
        assert!(bench.acquire(at(0), capacity, None).is_ok());
        assert_eq!(bench.acquire(at(0), capacity, None), Err(None));
        // Due at 2 s, within its timeout of 5 s.
        assert_eq!(bench.acquire(at(0), capacity, Some(ms(5000))), Err(None));
        let (lane, mut env) = bench.env(at(0));
        assert_eq!(
            lane.capacity(&mut env, &(), capacity, true).wait,
            Some(ms(3000))
        );
        bench.run_until(at(10_000));
        assert_eq!(granted_at(&bench), [(1, at(1000)), (2, at(2000))]);
    }
}

#[test]
fn waits_beyond_584_years_are_predicted_and_met() {
    let period = Duration::from_secs(1 << 35);
    let mut bench = Bench::new(1.0, period);
    assert!(bench.acquire(at(0), 1.0, None).is_ok());
    assert_eq!(
        bench.acquire(at(0), 1.0, Some(Duration::from_secs(1 << 36))),
        Err(None),
        "admitted: the wait of 1089 years is within the timeout of 2178"
    );
    let due = bench.lane.next_wake().unwrap().earliest;
    assert!(due.since(Time::since_epoch(period)) < Duration::from_micros(31));
    bench.run_until(Time::since_epoch(period * 2));
    assert_eq!(granted_at(&bench), [(1, due)]);
}

#[test]
fn a_refund_grants_at_once_and_a_debt_delays_by_debt_over_rate() {
    let mut bench = Bench::new(10.0, ms(1000));
    assert!(bench.acquire(at(0), 10.0, None).is_ok());
    assert_eq!(bench.acquire(at(0), 5.0, None), Err(None)); // due at 500 ms
    let (lane, mut env) = bench.env(at(100));
    lane.reconcile(&mut env, &(), 2.0, 10.0).unwrap(); // 8 come back: 10 - 1 - 8 = 1
    assert_eq!(granted_at(&bench), [(1, at(100))]);

    let mut bench = Bench::new(10.0, ms(1000));
    assert!(bench.acquire(at(0), 10.0, None).is_ok());
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(200))), Err(None)); // due at 100 ms
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    let (lane, mut env) = bench.env(at(0));
    lane.reconcile(&mut env, &(), 15.0, 10.0).unwrap(); // 5 of debt: 500 ms more
    bench.run_until(at(10_000));
    let answers = bench.answers();
    // The timed waiter expires a tick after its deadline, with the wait it would have
    // behind the queue then (12.99 - 10 + 2 units at 10 per second); the one behind
    // takes its turn at 600 ms.
    let expired = Refusal::Timeout {
        amount: 1.0,
        timeout: ms(200),
        retry_after: ms(499),
    };
    assert_eq!(answers[0], (1, Err(expired)));
    assert_eq!(answers[1].0, 2);
    assert_eq!(answers[1].1.as_ref().unwrap().at, at(600));
    assert_eq!(at(201), Time::since_epoch(ms(200) + TICK));
    assert_eq!((bench.stats.timed_out, bench.stats.granted), (1, 2));
}

#[test]
fn a_smaller_capacity_refuses_the_waiters_above_it_and_keeps_the_level() {
    let mut bench = Bench::new(10.0, ms(1000));
    assert!(bench.acquire(at(0), 10.0, None).is_ok());
    assert_eq!(bench.acquire(at(0), 8.0, None), Err(None));
    assert_eq!(bench.acquire(at(0), 2.0, None), Err(None));
    let old = bench.rules.limits;
    bench.rules.limits = Limits::per_period(4.0, ms(1000));
    let (lane, mut env) = bench.env(at(500));
    lane.reconfigure(&mut env, &old);
    let too_big = Refusal::InvalidAmount {
        amount: 8.0,
        capacity: 4.0,
    };
    assert_eq!(bench.answers(), [(1, Err(too_big))]);
    // Level 5 at 500 ms (leaked at the old rate), now leaking 4 per second: 2 fits once
    // the level is 2, 750 ms later.
    bench.run_until(at(10_000));
    assert_eq!(granted_at(&bench), [(2, at(1250))]);
}

#[test]
fn closing_answers_every_waiter_once() {
    let mut bench = Bench::new(1.0, ms(1000));
    assert!(bench.acquire(at(0), 1.0, None).is_ok());
    for _ in 0..3 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    bench.replies.gone.borrow_mut().insert(2);
    bench.lane.close(&bench.replies, &mut bench.stats);
    let answers = bench.answers();
    assert_eq!(
        answers,
        [
            (1, Err(Refusal::ShuttingDown)),
            (3, Err(Refusal::ShuttingDown))
        ]
    );
    assert_eq!((bench.stats.shutting_down, bench.stats.cancelled), (2, 1));
    assert_eq!((bench.stats.queue_len, bench.lane.next_wake()), (0, None));
}

#[test]
fn the_wake_window_closes_when_the_bucket_would_run_dry() {
    // 10 per second, full: 1 unit is due at 100 ms; then the level is 9, which lasts
    // 900 ms. A request of the whole capacity has no slack at all.
    let mut bench = Bench::new(10.0, ms(1000));
    assert!(bench.acquire(at(0), 10.0, None).is_ok());
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    assert_eq!(
        bench.lane.next_wake(),
        Some(Window::within(at(100), ms(900)))
    );
    let mut bench = Bench::new(10.0, ms(1000));
    assert!(bench.acquire(at(0), 10.0, None).is_ok());
    assert_eq!(bench.acquire(at(0), 10.0, None), Err(None));
    assert_eq!(bench.lane.next_wake(), Some(Window::at(at(1000))));
    // A deadline closes the window sooner.
    assert_eq!(bench.acquire(at(0), 0.0, Some(ms(1000))), Err(None));
    assert_eq!(bench.lane.next_wake(), Some(Window::at(at(1000))));
}

#[test]
fn each_grant_reports_the_level_after_it_and_what_still_waits() {
    let mut bench = Bench::new(10.0, ms(1000));
    let first = bench.acquire(at(0), 4.0, None).expect("a grant");
    assert_eq!(first.backlog, 4.0);
    // 250 ms later 2.5 have leaked: the level is 1.5, then 7.5.
    let second = bench.acquire(at(250), 6.0, None).expect("a grant");
    assert_eq!(second.backlog, 7.5);
    // Three wait for 3 each; the first is granted at 300 ms, with two still behind it.
    for _ in 0..3 {
        assert_eq!(bench.acquire(at(250), 3.0, None), Err(None));
    }
    bench.run_until(at(10_000));
    let backlogs: Vec<_> = bench
        .answers()
        .into_iter()
        .map(|(_, answer)| {
            let grant = answer.expect("a grant");
            (grant.at, grant.backlog)
        })
        .collect();
    assert_eq!(
        backlogs,
        [(at(300), 16.0), (at(600), 13.0), (at(900), 10.0)]
    );
}
