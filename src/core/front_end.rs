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
    /// For lanes whose level lives in a store: whether the store can be reached now.
    pub(crate) store_reachable: bool,
    /// For lanes whose level lives in a store: what to do while it cannot be reached.
    pub(crate) outage: Outage,
}

impl Rules {
    /// The rules of lanes of `limits`, with an unbounded queue, whose front end's timer is
    /// late by `expiry_grace` at most.
    pub(crate) fn new(limits: Limits, expiry_grace: Duration) -> Self {
        Self {
            limits,
            max_queue: 0,
            expiry_grace,
            store_reachable: true,
            outage: Outage::Refuse {
                retry_after: Duration::ZERO,
            },
        }
    }
}

/// What a lane whose level lives in a store does while the store cannot be reached; a
/// lane that keeps its own level never looks at it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Outage {
    /// Refuses every request, with when to retry.
    Refuse { retry_after: Duration },
    /// Grants every request, in its turn.
    Grant,
    /// Grants from a bucket of this process's own with these limits (its share of the
    /// rate), which starts full.
    Local(Limits),
}

/// What a lane's methods need besides the lane: the rules, how to answer, the counters to
/// keep, and the time.
pub(crate) struct Env<'a, R> {
    pub(crate) rules: &'a Rules,
    pub(crate) replies: &'a R,
    pub(crate) stats: &'a mut BucketStats,
    pub(crate) now: Time,
}
