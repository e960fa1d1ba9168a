use std::collections::VecDeque;

use actix_rt::time::Instant;

use crate::reply::ReplySlot;
use crate::{AcquireError, Granted};

/// A request that could not be granted at once.
pub(crate) struct Waiter {
    pub(crate) amount: f64,
    pub(crate) received: Instant,
    pub(crate) reply: ReplySlot<Result<Granted, AcquireError>>,
}

/// The waiters in arrival order, with the sum of their amounts.
#[derive(Default)]
pub(crate) struct WaitQueue {
    waiters: VecDeque<Waiter>,
    amount: f64,
}

impl WaitQueue {
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// The sum of the waiters' amounts.
    pub(crate) fn amount(&self) -> f64 {
        self.amount
    }

    pub(crate) fn head(&self) -> Option<&Waiter> {
        self.waiters.front()
    }

    pub(crate) fn push(&mut self, waiter: Waiter) {
        self.amount += waiter.amount;
        self.waiters.push_back(waiter);
    }

    pub(crate) fn pop(&mut self) -> Option<Waiter> {
        let waiter = self.waiters.pop_front()?;
        self.amount = if self.waiters.is_empty() {
            0.0 // no rounding residue survives an empty queue
        } else {
            self.amount - waiter.amount
        };
        Some(waiter)
    }

    /// Drops every waiter whose caller has given up; returns how many.
    pub(crate) fn remove_abandoned(&mut self) -> usize {
        let before = self.waiters.len();
        self.waiters.retain(|waiter| !waiter.reply.is_abandoned());
        self.amount = self.waiters.iter().map(|waiter| waiter.amount).sum();
        before - self.waiters.len()
    }

    /// Empties the queue, in order.
    pub(crate) fn take_all(&mut self) -> VecDeque<Waiter> {
        self.amount = 0.0;
        std::mem::take(&mut self.waiters)
    }
}
