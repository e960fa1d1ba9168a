//! Many lanes under one timer, at exact instants: the schedule of their windows, the
//! sweep that drops idle keys, and the keys that a message never adds.

use std::time::Duration;

use super::{at, ms, rules, Recorder};
use crate::core::{
    Admission, BucketStats, Env, KeyedLanes, Lane, Lanes, OwnLevels, Refusal, Rules, Time, Window,
};

/// Per-key lanes and what they need, driven as a front end would drive them.
struct KeyedBench {
    rules: Rules,
    replies: Recorder,
    stats: BucketStats,
    lanes: KeyedLanes<&'static str, Lane<usize>>,
    callers: usize,
}

impl KeyedBench {
    fn new(capacity: f64, period: Duration) -> Self {
        Self {
            rules: rules(capacity, period),
            replies: Recorder::default(),
            stats: BucketStats::default(),
            lanes: KeyedLanes::default(),
            callers: 0,
        }
    }

    fn env(
        &mut self,
        now: Time,
    ) -> (
        &mut KeyedLanes<&'static str, Lane<usize>>,
        Env<'_, Recorder>,
    ) {
        let env = Env {
            rules: &self.rules,
            replies: &self.replies,
            stats: &mut self.stats,
            now,
        };
        (&mut self.lanes, env)
    }

    /// Sends a request for `key` at `now`: true if granted at once; a waiter gets the next
    /// caller's number.
    fn acquire(&mut self, now: Time, key: &'static str, amount: f64) -> bool {
        let caller = self.callers;
        self.callers += 1;
        let (lanes, mut env) = self.env(now);
        match lanes.admit(&mut env, &key, amount, None) {
            Admission::Granted(_) => true,
            Admission::Refused(refusal) => panic!("{key} refused: {refusal:?}"),
            Admission::Wait(ticket) => {
                lanes.enqueue(&mut env, &key, ticket, caller, |_, _| {});
                false
            }
        }
    }

    /// Serves at the start of every window the lanes plan, up to `until`; the instants it
    /// woke at.
    fn run_until(&mut self, until: Time) -> Vec<Time> {
        let mut woke = Vec::new();
        while let Some(window) = self.lanes.next_wake() {
            if window.earliest > until {
                break;
            }
            woke.push(window.earliest);
            let (lanes, mut env) = self.env(window.earliest);
            lanes.serve(&mut env);
        }
        woke
    }

    /// The callers granted so far, with their instants, taken.
    fn granted(&self) -> Vec<(usize, Time)> {
        std::mem::take(&mut *self.replies.answers.borrow_mut())
            .into_iter()
            .map(|(caller, answer)| (caller, answer.expect("a grant").at))
            .collect()
    }
}

#[test]
fn one_timer_serves_the_earliest_window_of_any_key_and_then_the_next() {
    let mut bench = KeyedBench::new(10.0, ms(1000));
    // "a" is full with one waiter due at 100 ms; "b" is full with one due at 500 ms.
    assert!(bench.acquire(at(0), "a", 10.0));
    assert!(!bench.acquire(at(0), "a", 1.0));
    assert!(bench.acquire(at(0), "b", 10.0));
    assert!(!bench.acquire(at(0), "b", 5.0));
    // The window opens with "a"'s head and closes when "b" would run dry: 500 ms later
    // it may stand for 500 ms; "a"'s for 900.
    assert_eq!(
        bench.lanes.next_wake(),
        Some(Window {
            earliest: at(100),
            latest: at(1000)
        })
    );
    let woke = bench.run_until(at(600));
    assert_eq!(woke, [at(100), at(500)]);
    assert_eq!(bench.granted(), [(1, at(100)), (3, at(500))]);
    // Nobody waits: what remains is the sweep, planned when "a" was first granted (it
    // was to be empty at 1 s), with the sweep's slack of 100 ms. It finds both keys still
    // held ("a" refilled at 100 ms, "b" at 500 ms) and plans the next for when both
    // have leaked to zero.
    assert_eq!(
        bench.lanes.next_wake(),
        Some(Window::within(at(1000), ms(100)))
    );
    assert_eq!(bench.run_until(at(1000)), [at(1000)]);
    assert_eq!((bench.lanes.len(), bench.lanes.evicted()), (2, 0));
    assert_eq!(
        bench.lanes.next_wake(),
        Some(Window::within(at(1500), ms(100)))
    );
}

#[test]
fn the_sweep_drops_every_key_that_has_leaked_to_zero_and_plans_the_next() {
    let mut bench = KeyedBench::new(10.0, ms(1000));
    assert!(bench.acquire(at(0), "a", 3.0)); // empty at 300 ms
    assert!(bench.acquire(at(0), "b", 8.0)); // empty at 800 ms
                                             // The first sweep is planned when the first key held empties.
    assert_eq!(bench.lanes.next_wake().unwrap().earliest, at(300));
    assert_eq!(bench.run_until(at(300)), [at(300)]);
    assert_eq!((bench.lanes.len(), bench.lanes.evicted()), (1, 1));
    // The next, when every key held at the last one has emptied.
    assert_eq!(bench.lanes.next_wake().unwrap().earliest, at(800));
    assert_eq!(bench.run_until(at(800)), [at(800)]);
    assert_eq!((bench.lanes.len(), bench.lanes.evicted()), (0, 2));
    assert_eq!(bench.lanes.next_wake(), None, "nothing held: no wake-up");
}

#[test]
fn a_message_that_leaves_a_new_key_as_a_new_one_would_be_adds_no_key() {
    let mut bench = KeyedBench::new(10.0, ms(1000));
    let (lanes, mut env) = bench.env(at(0));
    for amount in [f64::NAN, f64::INFINITY, -1.0] {
        let invalid = lanes.reconcile(&mut env, &"reconcile", amount, 1.0);
        assert!(matches!(invalid, Err(Refusal::InvalidAmount { .. })));
        let invalid = lanes.admit(&mut env, &"acquire", amount, None);
        assert!(matches!(invalid, Admission::Refused(_)));
    }
    // A refund to a key not held, a grant of nothing, and a query.
    assert_eq!(lanes.reconcile(&mut env, &"refund", 1.0, 3.0), Ok(()));
    assert!(matches!(
        lanes.admit(&mut env, &"zero", 0.0, None),
        Admission::Granted(_)
    ));
    assert_eq!(lanes.capacity(&mut env, &"query", 4.0, true).level, 0.0);
    assert_eq!(lanes.len(), 0);
    assert_eq!(lanes.next_wake(), None, "no key: no sweep");
    lanes.sweep(&env.rules.limits.clone(), at(10_000));
    assert_eq!(
        (lanes.len(), lanes.evicted()),
        (0, 0),
        "nothing was evicted"
    );
    // A debt to a key not held is a key that differs from a new one.
    assert_eq!(lanes.reconcile(&mut env, &"debt", 3.0, 1.0), Ok(()));
    assert_eq!(lanes.len(), 1);
}

#[test]
fn a_map_that_doubles_since_the_last_sweep_is_swept_by_the_next_new_key() {
    let mut bench = KeyedBench::new(1.0, ms(1));
    let keys: Vec<&'static str> = (0..1025)
        .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
        .collect();
    // 1,024 keys at 0 ms, each empty at 1 ms: nothing has been swept, nothing kept.
    for &key in &keys[..1024] {
        assert!(bench.acquire(at(0), key, 1.0));
    }
    assert_eq!(bench.lanes.len(), 1024);
    // A new key at 2 ms finds the map at 2 × 0 + 1,024 and sweeps it first.
    assert!(bench.acquire(at(2), keys[1024], 1.0));
    assert_eq!((bench.lanes.len(), bench.lanes.evicted()), (1, 1024));
}

#[test]
fn departures_that_the_front_end_notices_are_removed_and_those_behind_served() {
    let mut bench = KeyedBench::new(1.0, Duration::from_secs(3600));
    assert!(bench.acquire(at(0), "a", 1.0));
    assert!(!bench.acquire(at(0), "a", 1.0)); // caller 1, due in an hour
    assert!(!bench.acquire(at(0), "a", 1.0)); // caller 2
    assert!(bench.acquire(at(0), "b", 1.0));
    assert!(!bench.acquire(at(0), "b", 1.0)); // caller 4
    bench.replies.gone.borrow_mut().extend([1, 2]);
    // The front end's watch raises the flag of the queue whose callers left.
    let mut flags = Vec::new();
    bench.lanes.callers(|key, departures, _| {
        if *key == "a" {
            flags.push(std::sync::Arc::clone(departures));
        }
    });
    flags[0].raise();
    let (lanes, mut env) = bench.env(at(5));
    lanes.notice_departures(&mut env, &"a");
    assert_eq!(bench.stats.cancelled, 2);
    assert_eq!(bench.stats.queue_len, 1, "b's waiter still waits");
    // Only "b"'s waiter is planned now, an hour on.
    assert_eq!(
        bench.lanes.next_wake().unwrap().earliest,
        Time::since_epoch(Duration::from_secs(3600))
    );
}
