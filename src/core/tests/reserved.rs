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
        self.apply_reaching(now, answers, Duration::ZERO);
    }

    /// As [`apply`](Self::apply), the store's schedule reaching `reach` past its answer.
    fn apply_reaching(&mut self, now: Time, answers: &[Reservation], reach: Duration) {
        let (lane, mut env) = self.env(now);
        lane.apply(&mut env, answers, reach);
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
fn the_store_decides_timeouts_and_its_round_trip_comes_on_top() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(50))), Err(None));
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(200))), Err(None));
    bench.run_until(at(5));
    let batch = bench.batch(at(5)).unwrap();
    assert_eq!(
        batch
            .iter()
            .map(|request| request.timeout)
            .collect::<Vec<_>>(),
        [Some(ms(45)), Some(ms(195))],
        "what is left of each timeout"
    );
    // The first is refused by the store. The second is reserved 190 ms after an answer
    // that took 35 ms: granted at 230 ms, past its deadline by the call's round trip.
    bench.apply(
        at(40),
        &[
            Reservation::Refused {
                retry_after: ms(700),
            },
            reserved(190, 9),
        ],
    );
    let timeout = |timeout, retry_after| Refusal::Timeout {
        amount: 1.0,
        timeout,
        retry_after,
    };
    assert_eq!(bench.answers(), [(0, Err(timeout(ms(50), ms(700))))]);
    bench.run_until(at(10_000));
    assert_eq!(bench.answers(), [(1, Ok(at(230)))]);
    assert_eq!(bench.stats.timed_out, 1);

    // A timeout of zero that the store met (it fitted when the store looked) is granted
    // when the answer comes, however long the call took; nothing expires while waiting
    // to be sent or answered.
    let mut bench = SharedBench::new(1.0, ms(1000));
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(0))), Err(None));
    bench.run_until(at(30));
    assert_eq!(bench.batch(at(30)).unwrap()[0].timeout, Some(ms(0)));
    bench.run_until(at(60));
    bench.apply(at(60), &[reserved(0, 1)]);
    assert_eq!(bench.answers(), [(0, Ok(at(60)))]);
}

#[test]
fn a_slot_pushed_past_its_deadline_behind_an_earlier_one_is_a_timeout() {
    let mut bench = SharedBench::new(1.0, ms(1000));
    assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    bench.batch(at(0)).unwrap();
    assert_eq!(bench.acquire(at(0), 1.0, Some(ms(390))), Err(None));
    // The first answer takes 100 ms: its slot is at 400 ms on this clock.
    bench.apply(at(100), &[reserved(300, 1)]);
    // The second's answer is quick, and its slot on the store's clock is at 390 ms:
    // in order, it comes after the first, past its deadline.
    assert_eq!(bench.batch(at(100)).unwrap()[0].timeout, Some(ms(290)));
    bench.apply(at(105), &[reserved(285, 2)]);
    let refused = Refusal::Timeout {
        amount: 1.0,
        timeout: ms(390),
        retry_after: ms(295),
    };
    assert_eq!(bench.answers(), [(1, Err(refused))]);
    assert_eq!(
        bench.lane.take_give_backs(),
        [GiveBack {
            amount: 1.0,
            token: 2
        }]
    );
    bench.run_until(at(10_000));
    assert_eq!(bench.answers(), [(0, Ok(at(400)))]);
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

#[test]
fn grants_report_the_level_of_the_schedule_the_store_last_answered() {
    let mut bench = SharedBench::new(10.0, ms(1000));
    for _ in 0..2 {
        assert_eq!(bench.acquire(at(0), 1.0, None), Err(None));
    }
    bench.batch(at(0)).unwrap();
    // Both fit at once; with them the store's schedule reaches 800 ms past its answer
    // (other processes hold 6 of it). The first is granted with the second still behind.
    let answers = [reserved(0, 1), reserved(0, 2)];
    bench.apply_reaching(at(10), &answers, ms(800));
    let backlogs: Vec<_> = std::mem::take(&mut *bench.replies.answers.borrow_mut())
        .into_iter()
        .map(|(_, answer)| answer.expect("a grant").backlog)
        .collect();
    assert_eq!(backlogs, [9.0, 8.0]);
    // While the store is away and the rule is to grant, nothing is counted.
    bench.rules.store_reachable = false;
    bench.rules.outage = Outage::Grant;
    let (lane, mut env) = bench.env(at(20));
    let Admission::Granted(open) = lane.admit(&mut env, &(), 1.0, None) else {
        panic!("granted at once");
    };
    assert_eq!(open.backlog, 0.0);
}
