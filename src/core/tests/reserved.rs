//! The lane of a shared bucket, at exact instants, with the store's answers written by
//! hand: what it sends, when it grants, what it gives back, and what it does while the
//! store is away.

use std::time::Duration;

use super::{at, ms, rules, Recorder};
use crate::core::{
    Admission, BucketStats, Env, GiveBack, Lanes, Limits, Outage, Refusal, Request, Reservation,
    ReservedLane, Rules, Time,
};

/// One shared lane and what it needs, driven as the Redis front end drives it.
struct SharedBench {
    rules: Rules,
    replies: Recorder,
    stats: BucketStats,
    lane: ReservedLane<usize>,
    callers: usize,
}

impl SharedBench {
    fn new(capacity: f64, period: Duration) -> Self {
        Self {
            rules: rules(capacity, period),
            replies: Recorder::default(),
            stats: BucketStats::default(),
            lane: ReservedLane::default(),
            callers: 0,
        }
    }

    fn env(&mut self, now: Time) -> (&mut ReservedLane<usize>, Env<'_, Recorder>) {
        let env = Env {
            rules: &self.rules,
            replies: &self.replies,
            stats: &mut self.stats,
            now,
        };
        (&mut self.lane, env)
    }

    /// Sends a request at `now`: its answer now, or `Err(None)` if it waits.
    fn acquire(
        &mut self,
        now: Time,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Result<(), Option<Refusal>> {
        let caller = self.callers;
        self.callers += 1;
        let (lane, mut env) = self.env(now);
        match lane.admit(&mut env, &(), amount, timeout) {
            Admission::Granted(_) => Ok(()),
            Admission::Refused(refusal) => Err(Some(refusal)),
            Admission::Wait(ticket) => {
                lane.enqueue(&mut env, &(), ticket, caller, |_, _| {});
                Err(None)
            }
        }
    }

    fn batch(&mut self, now: Time) -> Option<Vec<Request>> {
        let (lane, mut env) = self.env(now);
        lane.take_batch(&mut env)
    }

    fn apply(&mut self, now: Time, answers: &[Reservation]) {
        let (lane, mut env) = self.env(now);
        lane.apply(&mut env, answers);
    }

    /// Serves at the start of every window the lane plans, up to `until`.
    fn run_until(&mut self, until: Time) {
        while let Some(window) = self.lane.next_wake() {
            if window.earliest > until {
                break;
            }
            let (lane, mut env) = self.env(window.earliest);
            lane.serve(&mut env);
        }
    }

    /// The answers sent so far, taken: the caller, and the instant of a grant or the
    /// refusal.
    fn answers(&self) -> Vec<(usize, Result<Time, Refusal>)> {
        std::mem::take(&mut *self.replies.answers.borrow_mut())
            .into_iter()
            .map(|(caller, answer)| (caller, answer.map(|grant| grant.at)))
            .collect()
    }
}

fn reserved(wait_ms: u64, token: u64) -> Reservation {
    Reservation::Reserved {
        wait: ms(wait_ms),
        token,
    }
}

#[test]
fn requests_go_out_in_one_batch_in_order_and_are_granted_at_their_slots() {
    let mut bench = SharedBench::new(2.0, ms(1000));
    for _ in 0..3 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    let batch = bench.batch(at(0)).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(bench.batch(at(0)), None, "one call at a time");
    // The answer comes at 10 ms: two at once, the third 500 ms after the answer.
    bench.apply(at(10), &[reserved(0, 1), reserved(0, 2), reserved(500, 3)]);
    assert_eq!(bench.answers(), [(0, Ok(at(10))), (1, Ok(at(10)))]);
    bench.run_until(at(10_000));
    assert_eq!(bench.answers(), [(2, Ok(at(510)))]);
    assert_eq!((bench.stats.granted, bench.stats.queue_len), (3, 0));
}

#[test]
fn a_later_answer_never_grants_before_an_earlier_slot() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    bench.batch(at(0));
    bench.apply(at(0), &[reserved(300, 1)]); // due at 300
    assert_eq!(bench.acquire(at(1), 1.0, None), Err(None));
    bench.batch(at(1));
    // Another process's answer skews: the store says 100 ms, but FIFO holds at 300.
    bench.apply(at(2), &[reserved(100, 2)]);
    bench.run_until(at(10_000));
    assert_eq!(bench.answers(), [(0, Ok(at(300))), (1, Ok(at(300)))]);
}

#[test]
fn a_refusal_by_the_store_and_a_slot_too_late_for_the_timeout_are_timeouts() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(50))), Err(None));
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(200))), Err(None));
    let batch = bench.batch(at(5)).unwrap();
    assert_eq!(
        batch
            .iter()
            .map(|request| request.timeout)
            .collect::<Vec<_>>(),
        [Some(ms(45)), Some(ms(195))],
        "what is left of each timeout"
    );
    // The first is refused by the store; the second reserved, but the answer came so
    // late that its slot (at 40 + 199 ms) is past its deadline (200 ms, and a tick).
    bench.apply(
        at(40),
        &[
            Reservation::Refused {
                retry_after: ms(700),
            },
            reserved(199, 9),
        ],
    );
    let timeout = |timeout, retry_after| Refusal::Timeout {
        amount: 1.0,
        timeout,
        retry_after,
    };
    assert_eq!(
        bench.answers(),
        [
            (0, Err(timeout(ms(50), ms(700)))),
            (1, Err(timeout(ms(200), ms(199))))
        ]
    );
    assert_eq!(
        bench.lane.take_give_backs(),
        [GiveBack {
            amount: 1.0,
            token: 9
        }]
    );
    assert_eq!(bench.stats.timed_out, 2);
}

#[test]
fn callers_who_leave_are_not_sent_and_their_slots_are_offered_back() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    for _ in 0..3 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    bench.replies.gone.borrow_mut().insert(1);
    let batch = bench.batch(at(0)).unwrap();
    assert_eq!(batch.len(), 2, "the caller who left is not sent");
    bench.replies.gone.borrow_mut().insert(2); // leaves while its request is out
    bench.apply(at(10), &[reserved(0, 1), reserved(1000, 2)]);
    assert_eq!(bench.answers(), [(0, Ok(at(10)))]);
    bench.run_until(at(10_000));
    assert_eq!(bench.answers(), []);
    assert_eq!(
        bench.lane.take_give_backs(),
        [GiveBack {
            amount: 1.0,
            token: 2
        }]
    );
    assert_eq!((bench.stats.cancelled, bench.stats.queue_len), (2, 0));
}

#[test]
fn a_failed_call_follows_the_outage_rule_and_never_grants_twice() {
    for (outage, expected) in [
        (
            Outage::Refuse {
                retry_after: ms(100),
            },
            vec![
                (
                    0,
                    Err(Refusal::Unavailable {
                        retry_after: ms(100),
                    }),
                ),
                (
                    1,
                    Err(Refusal::Unavailable {
                        retry_after: ms(100),
                    }),
                ),
            ],
        ),
        (Outage::Grant, vec![(0, Ok(at(100))), (1, Ok(at(100)))]),
        // Half the rate of 1 per second, starting full: a slot every 2 s.
        (
            Outage::Local(Limits::per_second(0.5, 1.0)),
            vec![(0, Ok(at(2100))), (1, Ok(at(4100)))],
        ),
    ] {
        let mut bench = SharedBench::new(1.0, ms(1000));
        bench.rules.outage = outage;
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
        bench.batch(at(0)).unwrap();
        assert_eq!(bench.acquire(at(50), 1.0, None), Err(None)); // pending behind it
                                                                 // The call fails at 100 ms: the store may have reserved it (a ghost).
        bench.rules.store_reachable = false;
        let (lane, mut env) = bench.env(at(100));
        lane.store_failed(&mut env);
        bench.run_until(at(10_000));
        assert_eq!(bench.answers(), expected, "{outage:?}");
        assert!(
            bench.lane.take_give_backs().is_empty(),
            "a ghost is never offered back"
        );
        assert_eq!(
            bench.stats.granted,
            bench.stats.failed_open + bench.stats.granted_locally
        );
    }
}

#[test]
fn without_the_store_a_request_is_decided_at_once_by_the_outage_rule() {
    let mut bench = SharedBench::new(2.0, ms(1000));
    bench.rules.store_reachable = false;
    bench.rules.outage = Outage::Grant;
    assert_eq!(bench.acquire(at(0), 2.0, None), Ok(()));
    assert_eq!(bench.stats.failed_open, 1);
    // The process's own bucket at half the rate starts full: no burst of its own.
    bench.rules.outage = Outage::Local(Limits::per_second(1.0, 2.0));
    assert_eq!(
        bench.acquire(at(0), 1.0, Some(ms(999))),
        Err(Some(Refusal::Timeout {
            amount: 1.0,
            timeout: ms(999),
            retry_after: ms(1000),
        }))
    );
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    assert_eq!(
        bench.batch(at(0)),
        None,
        "nothing goes to the store while it is away"
    );
    bench.run_until(at(10_000));
    assert_eq!(bench.answers(), [(2, Ok(at(1000)))]);
    assert_eq!(bench.stats.granted_locally, 1);
    bench.rules.outage = Outage::Refuse {
        retry_after: ms(100),
    };
    assert_eq!(
        bench.acquire(at(2000), 1.0, None),
        Err(Some(Refusal::Unavailable {
            retry_after: ms(100)
        }))
    );
}

#[test]
fn invalid_amounts_and_a_full_queue_are_refused_without_the_store() {
    let mut bench = SharedBench::new(2.0, ms(1000));
    bench.rules.max_queue = 1;
    for amount in [f64::NAN, -1.0, 2.5] {
        assert!(matches!(
            bench.acquire(at(0), amount, None),
            Err(Some(Refusal::InvalidAmount { .. }))
        ));
    }
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    assert_eq!(
        bench.acquire(at(0), 1.0, None),
        Err(Some(Refusal::QueueFull {
            max_queue: 1,
            retry_after: Duration::ZERO
        }))
    );
    assert_eq!((bench.stats.invalid, bench.stats.queue_full), (3, 1));
}

#[test]
fn the_capacity_combines_the_stores_schedule_with_the_requests_not_yet_sent() {
    let mut bench = SharedBench::new(10.0, ms(1000));
    assert_eq!(bench.acquire(at(0), 3.0, None), Err(None));
    let (lane, mut env) = bench.env(at(0));
    // The store's schedule reaches 800 ms past now: a level of 8.
    let capacity = lane.capacity(&mut env, 1.0, true, Some(ms(800)));
    assert_eq!((capacity.level, capacity.waiters), (8.0, 1));
    assert!(capacity.has_capacity);
    // 8 + 3 not yet sent + 1 is 2 over the capacity: 200 ms.
    assert_eq!(capacity.wait, Some(ms(200)));
    assert_eq!(
        lane.capacity(&mut env, 11.0, true, Some(ms(800))).wait,
        None
    );
}

#[test]
fn slots_to_give_back_come_out_the_latest_first() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    for _ in 0..3 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    bench.batch(at(0));
    bench.replies.gone.borrow_mut().extend([0, 1, 2]); // all leave while the call is out
    bench.apply(
        at(10),
        &[reserved(0, 1), reserved(1000, 2), reserved(2000, 3)],
    );
    let tokens: Vec<u64> = bench
        .lane
        .take_give_backs()
        .iter()
        .map(|give_back| give_back.token)
        .collect();
    assert_eq!(tokens, [3, 2, 1]);
    assert_eq!((bench.stats.cancelled, bench.stats.queue_len), (3, 0));
}

#[test]
fn requests_not_yet_sent_follow_the_outage_rule_when_another_call_fails() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    bench.rules.outage = Outage::Grant;
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    bench.batch(at(0)); // out
    assert_eq!(bench.acquire(at(5), 1.0, None), Err(None)); // pending behind it
                                                            // Another call of the front end finds the store gone.
    bench.rules.store_reachable = false;
    let (lane, mut env) = bench.env(at(10));
    lane.store_unreachable(&mut env);
    // This lane's own call still comes back, reserved: nothing is left undecided.
    bench.apply(at(20), &[reserved(0, 1)]);
    bench.run_until(at(10_000));
    assert_eq!(bench.answers(), [(0, Ok(at(20))), (1, Ok(at(20)))]);
    assert_eq!((bench.stats.failed_open, bench.stats.queue_len), (1, 0));
}

#[test]
fn an_answer_that_comes_while_the_store_is_away_decides_the_rest_by_the_rule() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    bench.rules.outage = Outage::Refuse {
        retry_after: ms(100),
    };
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    bench.batch(at(0));
    assert_eq!(bench.acquire(at(5), 1.0, None), Err(None));
    bench.rules.store_reachable = false; // and nothing told this lane yet
    bench.apply(at(20), &[reserved(0, 1)]);
    assert_eq!(
        bench.answers(),
        [
            (
                1,
                Err(Refusal::Unavailable {
                    retry_after: ms(100)
                })
            ),
            (0, Ok(at(20)))
        ]
    );
}
