//! Tests of the core on its own: no actor, no runtime, time as plain values.
//!
//! - `policy`: one lane's decisions, request by request, at exact instants;
//! - `keyed`: many lanes under one timer, and the eviction of idle keys;
//! - `properties`: random scenarios against an independent statement of the semantics;
//! - `reserved`: the lane of a shared bucket, with the store's answers written by hand.

mod keyed;
mod policy;
mod properties;
mod reserved;

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use super::{
    Admission, BucketStats, Env, Grant, Lane, Lanes, Limits, Refusal, Replies, Rules, Time,
};

/// The lateness of a timer that fires on whole milliseconds, as tokio's does: the grace
/// after a deadline that the tests' front end asks for.
const TICK: Duration = Duration::from_millis(1);

/// The answers a lane sent, by caller: a caller is a number, and may be marked gone.
#[derive(Debug, Default)]
struct Recorder {
    answers: RefCell<Vec<(usize, Result<Grant, Refusal>)>>,
    gone: RefCell<HashSet<usize>>,
}

impl Replies for Recorder {
    type Caller = usize;

    fn is_gone(&self, caller: &usize) -> bool {
        self.gone.borrow().contains(caller)
    }

    fn send(&self, caller: &mut usize, answer: Result<Grant, Refusal>) -> bool {
        if self.is_gone(caller) {
            return false;
        }
        self.answers.borrow_mut().push((*caller, answer));
        true
    }
}

/// The rules of a bucket of `capacity` per `period`, with an unbounded queue and a grace
/// of a tick.
fn rules(capacity: f64, period: Duration) -> Rules {
    Rules::new(Limits::per_period(capacity, period), TICK)
}

fn at(ms: u64) -> Time {
    Time::since_epoch(Duration::from_millis(ms))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One lane and what it needs, driven as a front end would drive it.
struct Bench {
    rules: Rules,
    replies: Recorder,
    stats: BucketStats,
    lane: Lane<usize>,
    callers: usize,
}

impl Bench {
    fn new(capacity: f64, period: Duration) -> Self {
        Self::with_rules(rules(capacity, period))
    }

    fn with_rules(rules: Rules) -> Self {
        Self {
            rules,
            replies: Recorder::default(),
            stats: BucketStats::default(),
            lane: Lane::new(Time::default()),
            callers: 0,
        }
    }

    fn env(&mut self, now: Time) -> (&mut Lane<usize>, Env<'_, Recorder>) {
        let env = Env {
            rules: &self.rules,
            replies: &self.replies,
            stats: &mut self.stats,
            now,
        };
        (&mut self.lane, env)
    }

    /// Sends a request at `now`: its answer now, or `None` and its caller's number if it
    /// waits.
    fn acquire(
        &mut self,
        now: Time,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Result<Grant, Option<(usize, Refusal)>> {
        let caller = self.callers;
        self.callers += 1;
        let (lane, mut env) = self.env(now);
        match lane.admit(&mut env, &(), amount, timeout) {
            Admission::Granted(grant) => Ok(grant),
            Admission::Refused(refusal) => Err(Some((caller, refusal))),
            Admission::Wait(ticket) => {
                lane.enqueue(&mut env, &(), ticket, caller, |_, _| {});
                Err(None)
            }
        }
    }

    /// Serves the lane at every wake-up it plans (at the start of each window) up to
    /// `until`, as an exact timer would.
    fn run_until(&mut self, until: Time) {
        while let Some(window) = self.lane.next_wake() {
            if window.earliest > until {
                break;
            }
            let (lane, mut env) = self.env(window.earliest);
            lane.serve(&mut env);
        }
    }

    /// The answers sent so far, taken.
    fn answers(&self) -> Vec<(usize, Result<Grant, Refusal>)> {
        std::mem::take(&mut *self.replies.answers.borrow_mut())
    }
}
