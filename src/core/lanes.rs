//! What a front end drives: one lane, or one lane per key under one timer.

use std::time::Duration;

use super::{Admission, BucketStats, Capacity, Env, Lane, Limits, Replies, Ticket, Wake};
use crate::AcquireError;

/// The lanes of a front end, as its shell drives them: requests come in with a key (`()`
/// for a single bucket), the lanes decide, and the timer serves them when their window
/// opens.
pub(crate) trait Lanes {
    /// What selects a lane.
    type Key;
    /// Whatever carries an answer back to a waiting caller.
    type Caller;

    /// Decides on a request for `amount` under `key`: see [`Lane::admit`].
    fn admit<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Admission;

    /// Queues the request `ticket`, admitted under `key`, whose answer goes to `caller`.
    fn enqueue<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        ticket: Ticket,
        caller: Self::Caller,
    );

    /// The caller at the head of the queue, for a front end that watches it; `None` where
    /// there are too many heads to watch.
    fn head_caller_mut(&mut self) -> Option<&mut Self::Caller>;

    /// When the timer next needs to serve.
    fn next_wake(&mut self) -> Option<Wake>;

    /// Serves what is due at `env.now` (the timer fired, or a head's caller left).
    fn serve_due<R: Replies<Caller = Self::Caller>>(&mut self, env: &mut Env<'_, R>);

    /// The capacity of `key`'s bucket: see [`Lane::capacity`].
    fn capacity<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        amount: f64,
        open: bool,
    ) -> Capacity;

    /// Settles a cost under `key`: see [`Lane::reconcile`].
    fn reconcile<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &Self::Key,
        actual: f64,
        estimated: f64,
    ) -> Result<(), AcquireError>;

    /// Switches every lane from the limits `old` to `env.rules`.
    fn reconfigure<R: Replies<Caller = Self::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        old: &Limits,
    );

    /// Answers every waiter [`AcquireError::ShuttingDown`].
    fn close<R: Replies<Caller = Self::Caller>>(&mut self, replies: &R, stats: &mut BucketStats);
}

/// A single bucket: one lane, under the key `()`.
impl<C> Lanes for Lane<C> {
    type Key = ();
    type Caller = C;

    fn admit<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        amount: f64,
        timeout: Option<Duration>,
    ) -> Admission {
        Lane::admit(self, env, amount, timeout)
    }

    fn enqueue<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        ticket: Ticket,
        caller: C,
    ) {
        Lane::enqueue(self, env, ticket, caller);
    }

    fn head_caller_mut(&mut self) -> Option<&mut C> {
        Lane::head_caller_mut(self)
    }

    fn next_wake(&mut self) -> Option<Wake> {
        self.plan()
    }

    fn serve_due<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) {
        self.serve(env);
    }

    fn capacity<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        amount: f64,
        open: bool,
    ) -> Capacity {
        Lane::capacity(self, env, amount, open)
    }

    fn reconcile<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        actual: f64,
        estimated: f64,
    ) -> Result<(), AcquireError> {
        Lane::reconcile(self, env, actual, estimated)
    }

    fn reconfigure<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>, old: &Limits) {
        Lane::reconfigure(self, env, old);
    }

    fn close<R: Replies<Caller = C>>(&mut self, replies: &R, stats: &mut BucketStats) {
        Lane::close(self, replies, stats);
    }
}
