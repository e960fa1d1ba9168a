//! The callers who wait, in order, with the sum of their amounts and their deadlines.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::blocks::Blocks;
use super::{Limits, Time, Window};

/// A request that could not be granted at once, whoever waits for its answer, and what
/// the lane notes of it (`M`; nothing for a local bucket).
#[derive(Debug)]
pub(crate) struct Waiter<C, M = ()> {
    /// Rises by one with each waiter, so the queue is sorted by it.
    id: u64,
    pub(crate) amount: f64,
    pub(crate) received: Time,
    pub(crate) deadline: Option<Time>,
    pub(crate) caller: C,
    /// Already answered out of turn (timed out): skipped when it reaches the head.
    answered: bool,
    pub(crate) mark: M,
}

impl<C, M> Waiter<C, M> {
    pub(crate) fn is_answered(&self) -> bool {
        self.answered
    }

    /// What the queue knows it by.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

/// A flag that the front end raises when a caller waiting in a queue may have given up,
/// from whatever thread notices it.
///
/// A decision that depends on who still waits (a refusal, a report of the capacity)
/// passes over the queue only when the flag has been raised since the last pass.
#[derive(Debug, Default)]
pub(crate) struct Departures(AtomicBool);

impl Departures {
    /// Notes that a caller of the queue may have given up.
    pub(crate) fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the flag was raised since the last call.
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// The waiters in arrival order, with the sum of their amounts and their deadlines.
///
/// A waiter answered out of turn (when it expired) stays in place, marked, until it
/// reaches the head: removing it from the middle would cost a pass over the queue.
#[derive(Debug)]
pub(crate) struct Queue<C, M = ()> {
    waiters: Blocks<Waiter<C, M>>,
    /// The sum of the amounts of waiters not yet answered, scaled.
    queued: f64,
    answered: usize,
    next_id: u64,
    /// When waiters expire, earliest first; entries of waiters already gone are dropped
    /// when they come to the top, or all at once when they outnumber the waiters.
    expiries: BinaryHeap<Reverse<(Time, u64)>>,
    departures: Arc<Departures>,
    /// When the queue next needs its lane served, as last planned.
    pub(crate) plan: Option<Window>,
}

impl<C, M> Default for Queue<C, M> {
    fn default() -> Self {
        Self {
            waiters: Blocks::default(),
            queued: 0.0,
            answered: 0,
            next_id: 0,
            expiries: BinaryHeap::new(),
            departures: Arc::default(),
            plan: None,
        }
    }
}

impl<C, M: Default> Queue<C, M> {
    /// The number of waiters not yet answered.
    pub(crate) fn len(&self) -> usize {
        self.waiters.len() - self.answered
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sum of the amounts of waiters not yet answered, scaled.
    pub(crate) fn queued(&self) -> f64 {
        self.queued
    }

    pub(crate) fn front(&self) -> Option<&Waiter<C, M>> {
        self.waiters.front()
    }

    /// Every waiter, answered or not, in order.
    pub(crate) fn waiters(&self) -> impl Iterator<Item = &Waiter<C, M>> {
        self.waiters.iter()
    }

    /// Every waiter, answered or not, in order, to change their marks.
    pub(crate) fn waiters_mut(&mut self) -> impl Iterator<Item = &mut Waiter<C, M>> {
        self.waiters.iter_mut()
    }

    /// The caller of the first waiter, if it has not been answered.
    pub(crate) fn front_caller_mut(&mut self) -> Option<&mut C> {
        let front = self.waiters.front_mut()?;
        (!front.answered).then_some(&mut front.caller)
    }

    /// The caller of the waiter queued last, and the flag raised when a caller leaves.
    pub(crate) fn last_queued(&mut self) -> Option<(&mut C, &Arc<Departures>)> {
        let waiter = self.waiters.back_mut()?;
        Some((&mut waiter.caller, &self.departures))
    }

    /// The flag raised when a caller leaves, and the callers of the waiters not yet
    /// answered, in order.
    pub(crate) fn callers_mut(&mut self) -> (&Arc<Departures>, impl Iterator<Item = &mut C>) {
        let callers = self
            .waiters
            .iter_mut()
            .filter(|waiter| !waiter.answered)
            .map(|waiter| &mut waiter.caller);
        (&self.departures, callers)
    }

    #[cfg(test)]
    pub(crate) fn departures(&self) -> &Arc<Departures> {
        &self.departures
    }

    /// Queues a waiter whose timeout runs out at `deadline` and who is answered `Timeout`
    /// at `expires_at`, if it still waits then; returns its id.
    pub(crate) fn push(
        &mut self,
        limits: &Limits,
        amount: f64,
        received: Time,
        deadline: Option<Time>,
        expires_at: Option<Time>,
        caller: C,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(expires_at) = expires_at {
            self.expiries.push(Reverse((expires_at, id)));
        }
        self.queued += limits.scaled(amount);
        self.waiters.push_back(Waiter {
            id,
            amount,
            received,
            deadline,
            caller,
            answered: false,
            mark: M::default(),
        });
        id
    }

    pub(crate) fn pop_front(&mut self, limits: &Limits) -> Option<Waiter<C, M>> {
        let waiter = self.waiters.pop_front()?;
        self.forget(limits, &waiter);
        self.forget_stale_expiries();
        Some(waiter)
    }

    /// Drops the waiters at the head that were answered out of turn (and counted then).
    pub(crate) fn drop_answered_front(&mut self, limits: &Limits) {
        while self.front().is_some_and(Waiter::is_answered) {
            self.pop_front(limits);
        }
    }

    /// Takes a waiter that has left the queue out of the count and the sum.
    fn forget(&mut self, limits: &Limits, waiter: &Waiter<C, M>) {
        if waiter.answered {
            self.answered -= 1;
        } else {
            self.queued -= limits.scaled(waiter.amount);
        }
        if self.is_empty() {
            self.queued = 0.0; // no rounding residue survives an empty queue
        }
    }

    /// When the first waiter not yet answered expires.
    pub(crate) fn next_expiry(&mut self) -> Option<Time> {
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            if self.find(id).is_some_and(|waiter| !waiter.answered) {
                return Some(expires_at);
            }
            self.expiries.pop();
        }
        None
    }

    /// Marks as answered every waiter that expired at or before `now`, handing each to
    /// `answer`, in the order of their deadlines, with the amount still queued (scaled).
    pub(crate) fn expire(
        &mut self,
        limits: &Limits,
        now: Time,
        mut answer: impl FnMut(&mut Waiter<C, M>, f64),
    ) {
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            if expires_at > now {
                break;
            }
            self.expiries.pop();
            self.answer_out_of_turn(limits, id, &mut answer);
        }
    }

    /// Marks the waiter `id` as answered, out of turn, and hands it to `answer` with the
    /// amount still queued (scaled); false if it is not queued or was answered already.
    pub(crate) fn answer_out_of_turn(
        &mut self,
        limits: &Limits,
        id: u64,
        answer: impl FnOnce(&mut Waiter<C, M>, f64),
    ) -> bool {
        let total = self.waiters.len();
        let Some(waiter) = self.waiters.find_mut(id, |waiter| waiter.id) else {
            return false;
        };
        if waiter.answered {
            return false;
        }
        waiter.answered = true;
        self.answered += 1;
        self.queued -= limits.scaled(waiter.amount);
        if total == self.answered {
            self.queued = 0.0; // no rounding residue survives an empty queue
        }
        answer(waiter, self.queued);
        true
    }

    /// The waiter `id`, if it is queued.
    pub(crate) fn find_mut(&mut self, id: u64) -> Option<&mut Waiter<C, M>> {
        self.waiters.find_mut(id, |waiter| waiter.id)
    }

    /// Removes, in one pass and in place, the waiters for which `remove` is true (it may
    /// answer them), and the waiters already answered; recounts the sum in `limits`.
    pub(crate) fn remove_where(
        &mut self,
        limits: &Limits,
        mut remove: impl FnMut(&mut Waiter<C, M>) -> bool,
    ) {
        let mut queued = -0.0; // as `Iterator::sum` starts, so that -0.0 amounts add up alike
        self.waiters.retain(|waiter| {
            if waiter.answered || remove(waiter) {
                return false;
            }
            queued += limits.scaled(waiter.amount);
            true
        });
        self.answered = 0;
        self.queued = if self.waiters.is_empty() { 0.0 } else { queued };
        self.forget_stale_expiries();
    }

    /// Whether a caller deep in the queue may have left since the last call.
    pub(crate) fn someone_left(&self) -> bool {
        self.departures.take()
    }

    /// Empties the queue, in order, leaving out waiters already answered.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = Waiter<C, M>> {
        self.queued = 0.0;
        self.answered = 0;
        self.expiries.clear();
        self.plan = None;
        self.waiters.take_all().filter(|waiter| !waiter.answered)
    }

    fn find(&self, id: u64) -> Option<&Waiter<C, M>> {
        self.waiters.find(id, |waiter| waiter.id)
    }

    /// Keeps the expiry heap in proportion to the queue: granted waiters leave their
    /// entries behind, which would otherwise pile up under a long timeout.
    fn forget_stale_expiries(&mut self) {
        if self.expiries.len() > 2 * self.len() + 64 {
            self.drop_stale_expiries();
        }
    }

    #[cold]
    fn drop_stale_expiries(&mut self) {
        let mut expiries = std::mem::take(&mut self.expiries);
        expiries.retain(|&Reverse((_, id))| self.find(id).is_some_and(|waiter| !waiter.answered));
        self.expiries = expiries;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn granted_waiters_leave_no_pile_of_expiries_and_the_rest_still_expire() {
        let limits = Limits::per_period(10.0, Duration::from_secs(1));
        let mut queue: Queue<()> = Queue::default();
        let deadline = |i: u64| Time::since_epoch(Duration::from_millis(1000 - i));
        for i in 0..300 {
            queue.push(
                &limits,
                1.0,
                Time::ZERO,
                Some(deadline(i)),
                Some(deadline(i)),
                (),
            );
        }
        for _ in 0..200 {
            queue.pop_front(&limits);
            assert!(queue.expiries.len() <= 2 * queue.len() + 64);
        }
        assert_eq!((queue.len(), queue.queued()), (100, 100.0));

        let mut expired = Vec::new();
        queue.expire(
            &limits,
            Time::since_epoch(Duration::from_secs(2)),
            |waiter, _| {
                expired.push(waiter.deadline);
            },
        );
        // Every waiter still queued, once, earliest deadline first.
        let expected: Vec<_> = (200..300).rev().map(|i| Some(deadline(i))).collect();
        assert_eq!(expired, expected);
        assert!(queue.is_empty());
        assert_eq!(queue.queued(), 0.0);
    }

    #[test]
    fn departures_are_reported_once() {
        let queue: Queue<()> = Queue::default();
        assert!(!queue.someone_left());
        queue.departures().raise();
        queue.departures().raise();
        assert!(queue.someone_left());
        assert!(!queue.someone_left());
    }
}
