use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use actix_rt::time::Instant;

use crate::blocks::Blocks;
use crate::pacer::TICK;
use crate::reply::{Inbox, Reply, ReplySlot};
use crate::{AcquireError, Granted};

/// A request that could not be granted at once.
pub(crate) struct Waiter {
    /// Rises by one with each waiter, so the queue is sorted by it.
    id: u64,
    pub(crate) amount: f64,
    pub(crate) received: Instant,
    pub(crate) deadline: Option<Instant>,
    pub(crate) reply: ReplySlot<Result<Granted, AcquireError>>,
    /// Already answered out of turn (timed out): skipped when it reaches the head.
    answered: bool,
}

impl Waiter {
    /// Whether this waiter still expects a grant but its caller has given up.
    pub(crate) fn is_abandoned(&self) -> bool {
        !self.answered && self.reply.is_abandoned()
    }

    pub(crate) fn is_answered(&self) -> bool {
        self.answered
    }
}

/// The waiters in arrival order, with the sum of their amounts and their deadlines.
///
/// A waiter answered out of turn (at its deadline) stays in place, marked, until it
/// reaches the head: removing it from the middle would cost a pass over the queue.
///
/// A waiter expires one timer tick after its deadline: a grant that the timer's resolution
/// (or the leak it loses when the bucket runs empty) makes a little late is still a grant.
#[derive(Default)]
pub(crate) struct WaitQueue {
    waiters: Blocks<Waiter>,
    /// The sum of the amounts of waiters not yet answered.
    amount: f64,
    answered: usize,
    next_id: u64,
    /// When waiters expire, earliest first; entries of waiters already gone are dropped
    /// when they come to the top, or all at once when they outnumber the waiters.
    expiries: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Where actix delivers the reply sender of the waiter pushed last, after the handler
    /// that pushed it returns; every method that reads a waiter's reply first moves it
    /// into that waiter's slot.
    inbox: Inbox<Result<Granted, AcquireError>>,
    /// The waiter whose reply sender has not arrived yet.
    reply_due_for: Cell<Option<u64>>,
}

impl WaitQueue {
    /// The number of waiters not yet answered.
    pub(crate) fn len(&self) -> usize {
        self.waiters.len() - self.answered
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sum of the amounts of waiters not yet answered.
    pub(crate) fn amount(&self) -> f64 {
        self.amount
    }

    pub(crate) fn head(&self) -> Option<&Waiter> {
        self.collect_reply();
        self.waiters.front()
    }

    /// Queues a waiter; its reply sender arrives through the returned answer, once the
    /// handler has returned it.
    pub(crate) fn push(
        &mut self,
        amount: f64,
        received: Instant,
        deadline: Option<Instant>,
    ) -> Reply<Result<Granted, AcquireError>> {
        self.collect_reply();
        let id = self.next_id;
        self.next_id += 1;
        if let Some(expires_at) = deadline.and_then(expiry) {
            self.expiries.push(Reverse((expires_at, id)));
        }
        self.amount += amount;
        self.waiters.push_back(Waiter {
            id,
            amount,
            received,
            deadline,
            reply: ReplySlot::empty(),
            answered: false,
        });
        self.reply_due_for.set(Some(id));
        self.inbox.reply()
    }

    pub(crate) fn pop(&mut self) -> Option<Waiter> {
        self.collect_reply();
        let waiter = self.waiters.pop_front()?;
        if waiter.answered {
            self.answered -= 1;
        } else {
            self.amount -= waiter.amount;
        }
        if self.is_empty() {
            self.amount = 0.0; // no rounding residue survives an empty queue
        }
        self.forget_stale_expiries();
        Some(waiter)
    }

    /// When the first waiter not yet answered expires.
    pub(crate) fn next_expiry(&mut self) -> Option<Instant> {
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            if self.find(id).is_some_and(|waiter| !waiter.answered) {
                return Some(expires_at);
            }
            self.expiries.pop();
        }
        None
    }

    /// Marks as answered every waiter that expired at or before `now`, handing each to
    /// `answer`, in the order of their deadlines, with the amount still queued.
    pub(crate) fn expire(&mut self, now: Instant, mut answer: impl FnMut(&Waiter, f64)) {
        self.collect_reply();
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            if expires_at > now {
                break;
            }
            self.expiries.pop();
            let Some(waiter) = self.waiters.find_mut(id, |waiter| waiter.id) else {
                continue;
            };
            if waiter.answered {
                continue;
            }
            waiter.answered = true;
            self.answered += 1;
            self.amount -= waiter.amount;
            answer(waiter, self.amount);
        }
        if self.is_empty() {
            self.amount = 0.0;
        }
    }

    /// Removes, in one pass and in place, the waiters for which `remove` is true (it may
    /// answer them), and the waiters already answered; returns how many of the former.
    pub(crate) fn remove_where(&mut self, mut remove: impl FnMut(&Waiter) -> bool) -> usize {
        self.collect_reply();
        let mut removed = 0;
        let mut amount = -0.0; // as `Iterator::sum` starts, so that -0.0 amounts add up alike
        self.waiters.retain(|waiter| {
            if waiter.answered {
                return false;
            }
            if remove(waiter) {
                removed += 1;
                return false;
            }
            amount += waiter.amount;
            true
        });
        self.answered = 0;
        self.amount = if self.waiters.is_empty() { 0.0 } else { amount };
        self.forget_stale_expiries();
        removed
    }

    /// Empties the queue, in order, leaving out waiters already answered.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = Waiter> {
        self.collect_reply();
        self.amount = 0.0;
        self.answered = 0;
        self.expiries.clear();
        self.waiters.take_all().filter(|waiter| !waiter.answered)
    }

    /// Moves the reply sender delivered for the waiter pushed last into its slot.
    fn collect_reply(&self) {
        let Some(id) = self.reply_due_for.get() else {
            return;
        };
        // Nothing removes a waiter within the handler that pushed it, before its sender
        // arrives; were one removed, its sender would be dropped, not given to another.
        let last = self.waiters.back().filter(|last| last.id == id);
        debug_assert!(last.is_some(), "a waiter left before its reply sender came");
        let nobody = ReplySlot::empty();
        if self
            .inbox
            .collect_into(last.map_or(&nobody, |last| &last.reply))
        {
            self.reply_due_for.set(None);
        }
    }

    fn find(&self, id: u64) -> Option<&Waiter> {
        self.waiters.find(id, |waiter| waiter.id)
    }

    /// Keeps the expiry heap in proportion to the queue: granted waiters leave their
    /// entries behind, which would otherwise pile up under a long timeout.
    ///
    /// The heap keeps its largest size until the bucket is dropped: rebuilding it into a
    /// new one would free a large block, which after a flood stalls glibc (see
    /// [`Blocks`]).
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

/// When a waiter with this deadline expires.
fn expiry(deadline: Instant) -> Option<Instant> {
    deadline.checked_add(TICK)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn granted_waiters_leave_no_pile_of_expiries_and_the_rest_still_expire() {
        let mut queue = WaitQueue::default();
        let now = Instant::now();
        let deadline = |i: u64| now + Duration::from_millis(1000 - i);
        for i in 0..300 {
            let _ = queue.push(1.0, now, Some(deadline(i)));
        }
        for _ in 0..200 {
            queue.pop();
            assert!(queue.expiries.len() <= 2 * queue.len() + 64);
        }
        assert_eq!(queue.len(), 100);

        let mut expired = Vec::new();
        queue.expire(now + Duration::from_secs(2), |waiter, _| {
            expired.push(waiter.deadline);
        });
        // Every waiter still queued, once, earliest deadline first.
        let expected: Vec<_> = (200..300).rev().map(|i| Some(deadline(i))).collect();
        assert_eq!(expired, expected);
        assert!(queue.is_empty());
    }
}
