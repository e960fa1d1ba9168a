//! What a front end drives: one lane, or one lane per key under one timer.

use std::sync::Arc;
use std::time::Duration;

use super::{
    Admission, BucketStats, Capacity, Departures, Env, Limits, Refusal, Replies, Ticket, Time,
    Window,
};

/// The lanes of a front end, as its shell drives them: requests come in with a key (`()`
/// for a single bucket), the lanes decide, and the timer serves them when their window
/// opens.
pub(crate) trait Lanes {
    /// What selects a lane.
    type Key;
    /// Whatever carries an answer back to a waiting caller.
    type Caller;
    /// Whether a front end can watch the head of every queue ([`head_caller_mut`]); where
    /// it cannot, it watches every caller while a shutdown drains.
    ///
    /// [`head_caller_mut`]: Self::head_caller_mut
    const WATCHES_HEADS: bool;

    /// Decides on a request for `amount` under `key` that may wait `timeout` (`None`: as
    /// long as it takes).
    fn admit<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Admission;

    /// Queues the request `ticket`, admitted under `key`, whose answer goes to `caller`,
    /// and hands the queued caller to `watch` with the flag of its queue: a front end
    /// that can notice a caller leave raises that flag then.
    fn enqueue<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        ticket: Ticket,
        caller: Self::Caller,
        watch: impl FnOnce(&mut Self::Caller, &Arc<Departures>),
    );

    /// When the timer next needs to serve; `None` while nothing is planned.
    fn next_wake(&self) -> Option<Window>;

    /// Serves what is due at `env.now`: grants, in order, every waiter that fits, answers
    /// those whose deadlines have passed, and plans the next wake-up.
    fn serve<R: Replies<Caller = Self::Caller>>(&mut self, env: &mut Env<'_, R>);

    /// Answers every waiter [`Refusal::ShuttingDown`] and forgets them.
    fn close<R: Replies<Caller = Self::Caller>>(&mut self, replies: &R, stats: &mut BucketStats);

    /// The caller at the head of the queue, for a front end that watches it; `None` where
    /// there are too many heads to watch.
    fn head_caller_mut(&mut self) -> Option<&mut Self::Caller>;

    /// Hands every waiting caller to `watch`, with its key and its queue's flag, the
    /// callers of one queue one after another: for a front end that must notice any of
    /// them leave.
    fn callers(&mut self, watch: impl FnMut(&Self::Key, &Arc<Departures>, &mut Self::Caller));

    /// A caller under `key` has left, the front end saw, and it has raised the flag of that
    /// caller's queue: the callers who left are removed, and those behind them served.
    fn notice_departures<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
    );
}

/// A lane that [`KeyedLanes`](super::KeyedLanes) holds, one per key.
pub(crate) trait KeyedLane: Lanes<Key = ()> {
    /// An empty lane with nobody waiting, as of `now`.
    fn new(now: Time) -> Self;

    /// Whether the lane is indistinguishable from a new one at `now`: nobody waits and
    /// the level has leaked to zero.
    fn is_idle_at(&self, limits: &Limits, now: Time) -> bool;

    /// When the level reaches zero if nothing more is granted.
    fn empty_at(&self, limits: &Limits) -> Time;

    /// Whether anyone waits on the lane, or it waits on its front end.
    fn is_busy(&self) -> bool;

    /// Frees the memory kept for waiters if nobody waits.
    fn release_queue(&mut self);

    /// Whether the lane has work that only its front end can do, such as a call to the
    /// store that holds its level; none for a bucket of its own.
    fn needs_front_end(&self) -> bool {
        false
    }
}

/// Lanes whose levels are kept in this process, so that a report of the capacity, a
/// settled cost and a new configuration are answered at once.
pub(crate) trait OwnLevels: Lanes {
    /// The level, the queue and the wait for `amount` under `key`, after granting what is
    /// due; `open` says whether the bucket still grants.
    fn capacity<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        amount: f64,
        open: bool,
    ) -> Capacity;

    /// Settles a request under `key` acquired as `estimated` that really cost `actual`:
    /// refunds or charges the difference at once, then serves.
    fn reconcile<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        actual: f64,
        estimated: f64,
    ) -> Result<(), Refusal>;

    /// Switches every lane from the limits `old` to `env.rules` from now on: the level is
    /// kept (leaked at the old rate up to now), waiters above the new capacity are refused
    /// as invalid, and the lanes are served at the new rate.
    fn reconfigure<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        old: &Limits,
    );
}
