//! What a front end gives the core: how to answer a waiting caller, the rules every lane
//! obeys, and the time.

use std::time::Duration;

use super::{BucketStats, Grant, Limits, Refusal, Time};

/// How a front end answers the callers who wait in its lanes.
pub(crate) trait Replies {
    /// Whatever carries the answer back to one waiting caller.
    type Caller;

    /// Whether the caller has given up: nobody would hear an answer.
    fn is_gone(&self, caller: &Self::Caller) -> bool;

    /// Answers the caller; false if nobody heard it, in which case a grant is not made.
    fn send(&self, caller: &mut Self::Caller, answer: Result<Grant, Refusal>) -> bool;
}

/// What every lane of a front end obeys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rules {
    pub(crate) limits: Limits,
    /// The most waiters a lane holds; 0 is unbounded.
    pub(crate) max_queue: usize,
    /// How long after its deadline a waiter is answered `Timeout`: the lateness of the
    /// front end's timer, within which a grant is still a grant.
    pub(crate) expiry_grace: Duration,
}

/// What a lane's methods need besides the lane: the rules, how to answer, the counters to
/// keep, and the time.
pub(crate) struct Env<'a, R> {
    pub(crate) rules: &'a Rules,
    pub(crate) replies: &'a R,
    pub(crate) stats: &'a mut BucketStats,
    pub(crate) now: Time,
}
