//! The policy of one bucket and the callers who wait on it: admitting or refusing a
//! request, granting everything that fits in order, expiring deadlines, reconciling and
//! reconfiguring, and closing, as plain methods that take the time and say what to
//! answer to whom and when to wake next.

use std::sync::Arc;
use std::time::Duration;

use super::queue::{Departures, Queue, Waiter};
use super::{
    Admission, Bucket, BucketStats, Capacity, Env, Event, Grant, KeyedLane, Lanes, Limits,
    OwnLevels, Refusal, Replies, Rules, Ticket, Time, Window,
};

/// One bucket and the callers who wait on it.
///
/// Its decisions are the methods of [`Lanes`], under the key `()`; the inherent methods
/// are what [`KeyedLanes`](super::KeyedLanes) needs besides, to hold many lanes.
#[derive(Debug)]
pub(crate) struct Lane<C> {
    bucket: Bucket,
    /// Allocated while anyone waits (and kept by a lane that asks to).
    queue: Option<Box<Queue<C>>>,
}

impl<C> Lane<C> {
    /// An empty bucket with nobody waiting, as of `now`.
    pub(crate) fn new(now: Time) -> Self {
        Self {
            bucket: Bucket::new(now),
            queue: None,
        }
    }

    /// How many wait.
    pub(crate) fn waiting(&self) -> usize {
        self.queue.as_ref().map_or(0, |queue| queue.len())
    }

    /// The flag that the front end raises when a caller of this lane gives up, and those
    /// callers; `None` while nobody waits.
    pub(crate) fn callers_mut(
        &mut self,
    ) -> Option<(&Arc<Departures>, impl Iterator<Item = &mut C>)> {
        let queue = self
            .queue
            .as_deref_mut()
            .filter(|queue| !queue.is_empty())?;
        Some(queue.callers_mut())
    }

    fn queue_is_empty(&self) -> bool {
        self.queue.as_ref().is_none_or(|queue| queue.is_empty())
    }

    /// Brings the lane up to `now` on the way through a message: serves it if its window
    /// has opened, and otherwise only leaks.
    fn catch_up<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) {
        match self.next_wake() {
            Some(window) if window.earliest <= env.now => self.serve(env),
            _ => self.bucket.leak(&env.rules.limits, env.now),
        }
    }

    /// [`Lanes::admit`], for an amount already found valid. The lane is brought up to now
    /// first.
    pub(crate) fn admit_valid<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Admission {
        self.catch_up(env);
        let limits = &env.rules.limits;
        if self.queue_is_empty() && self.bucket.fits(limits, limits.scaled(amount)) {
            self.bucket.fill(limits.scaled(amount));
            let grant = Grant {
                amount,
                waited: Duration::ZERO,
                at: env.now,
                backlog: self.bucket.backlog(limits, 0.0),
            };
            env.stats.record(
                Event::Granted {
                    amount,
                    waited: Duration::ZERO,
                },
                false,
            );
            return Admission::Granted(grant);
        }
        self.admit_to_wait(env, amount, timeout)
    }

    /// The rest of [`admit_valid`](Self::admit_valid), for a request that does not fit at
    /// once: kept apart so that the path of a request that fits stays short.
    #[inline(never)]
    fn admit_to_wait<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Admission {
        if let Some(refusal) = self.refusal(env.rules, amount, timeout) {
            if self.forget_departed(env) {
                // Without the callers who left, the request may fit at once, or wait.
                return self.admit_valid(env, amount, timeout);
            }
            env.stats.record(Event::Refused(&refusal), false);
            return Admission::Refused(refusal);
        }
        Admission::Wait(Ticket {
            amount,
            received: env.now,
            // A timeout too long to represent is no timeout.
            deadline: timeout
                .and_then(|timeout| env.now.elapsed().checked_add(timeout))
                .map(Time::since_epoch),
        })
    }

    /// Why a request that cannot be granted at once may not wait, if it may not.
    fn refusal(&self, rules: &Rules, amount: f64, timeout: Option<Duration>) -> Option<Refusal> {
        let limits = &rules.limits;
        if let Some(timeout) = timeout {
            let queued = self.queue.as_ref().map_or(0.0, |queue| queue.queued());
            let wait = self.bucket.wait(limits, queued + limits.scaled(amount));
            if wait > timeout {
                return Some(Refusal::Timeout {
                    amount,
                    timeout,
                    retry_after: wait,
                });
            }
        }
        if rules.max_queue != 0 && self.waiting() >= rules.max_queue {
            return Some(Refusal::QueueFull {
                max_queue: rules.max_queue,
                retry_after: self.head_wait(limits),
            });
        }
        None
    }

    /// How long until the head of the queue fits (zero if nobody waits).
    fn head_wait(&self, limits: &Limits) -> Duration {
        self.queue
            .as_ref()
            .and_then(|queue| queue.front())
            .map_or(Duration::ZERO, |head| {
                self.bucket.wait(limits, limits.scaled(head.amount))
            })
    }

    fn replan(&mut self, limits: &Limits, now: Time) {
        let Some(queue) = self.queue.as_deref_mut() else {
            return;
        };
        queue.drop_answered_front(limits);
        let head = queue.front().map(|head| limits.scaled(head.amount));
        let grant = head.map(|head| {
            let due = now.after(self.bucket.wait(limits, head));
            // Once the head fits, the level is the capacity less its amount: that long
            // the bucket can stand without running dry.
            Window::within(due, limits.time_to_leak(limits.scaled_capacity() - head))
        });
        let expiry = queue.next_expiry().map(Window::at);
        queue.plan = match (grant, expiry) {
            (Some(grant), Some(expiry)) => Some(grant.and(expiry)),
            (grant, expiry) => grant.or(expiry),
        };
    }

    /// Removes the waiters whose callers have left since the last look; true if any
    /// was, and then the lane has been served again.
    pub(crate) fn forget_departed<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) -> bool {
        let removed = self
            .queue
            .as_deref_mut()
            .is_some_and(|queue| remove_departed(queue, env));
        if removed {
            self.serve(env);
        }
        removed
    }
}

/// One lane among many, one per key.
impl<C> KeyedLane for Lane<C> {
    fn new(now: Time) -> Self {
        Lane::new(now)
    }

    fn is_idle_at(&self, limits: &Limits, now: Time) -> bool {
        self.waiting() == 0 && self.bucket.empty_at(limits) <= now
    }

    fn empty_at(&self, limits: &Limits) -> Time {
        self.bucket.empty_at(limits)
    }

    fn is_busy(&self) -> bool {
        self.waiting() > 0
    }

    fn release_queue(&mut self) {
        if self.queue.as_ref().is_some_and(|queue| queue.is_empty()) {
            self.queue = None;
        }
    }
}

/// A single bucket: one lane, under the key `()`.
impl<C> Lanes for Lane<C> {
    type Key = ();
    type Caller = C;
    const WATCHES_HEADS: bool = true;

    fn admit<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        amount: f64,
        timeout: Option<Duration>,
    ) -> Admission {
        match refuse_invalid(env, amount) {
            Some(refused) => refused,
            None => self.admit_valid(env, amount, timeout),
        }
    }

    fn enqueue<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        ticket: Ticket,
        caller: C,
        watch: impl FnOnce(&mut C, &Arc<Departures>),
    ) {
        let limits = &env.rules.limits;
        let expires_at = ticket
            .deadline
            .map(|deadline| deadline.after(env.rules.expiry_grace));
        env.stats.record(Event::Queued, false);
        let queue = self.queue.get_or_insert_with(Box::default);
        queue.push(
            limits,
            ticket.amount,
            ticket.received,
            ticket.deadline,
            expires_at,
            caller,
        );
        if let Some((caller, departures)) = queue.last_queued() {
            watch(caller, departures);
        }
        if queue.len() == 1 {
            self.replan(limits, env.now);
        } else if let (Some(plan), Some(expires_at)) = (queue.plan, expires_at) {
            // The head's window stands; the new waiter's expiry may only close it sooner.
            queue.plan = Some(plan.and(Window::at(expires_at)));
        }
    }

    fn next_wake(&self) -> Option<Window> {
        self.queue.as_ref().and_then(|queue| queue.plan)
    }

    fn serve<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) {
        let limits = &env.rules.limits;
        self.bucket.leak(limits, env.now);
        let Some(queue) = self.queue.as_deref_mut() else {
            return;
        };
        grant_fitting(queue, &mut self.bucket, env);
        // A timeout's `retry_after` counts only the callers still waiting.
        let expiring = queue.next_expiry().is_some_and(|expiry| expiry <= env.now);
        let removed = expiring && remove_departed(queue, env);
        if expire(queue, &self.bucket, env) | removed {
            // Those behind a waiter that expired or left may fit now.
            grant_fitting(queue, &mut self.bucket, env);
        }
        self.replan(limits, env.now);
    }

    fn close<R: Replies<Caller = C>>(&mut self, replies: &R, stats: &mut BucketStats) {
        if let Some(queue) = self.queue.as_deref_mut() {
            for mut waiter in queue.take_all() {
                answer_out_of_turn(replies, stats, &mut waiter, Refusal::ShuttingDown);
            }
        }
    }

    fn head_caller_mut(&mut self) -> Option<&mut C> {
        self.queue.as_mut()?.front_caller_mut()
    }

    fn callers(&mut self, mut watch: impl FnMut(&(), &Arc<Departures>, &mut C)) {
        if let Some((departures, callers)) = self.callers_mut() {
            for caller in callers {
                watch(&(), departures, caller);
            }
        }
    }

    fn notice_departures<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>, (): &()) {
        self.forget_departed(env);
    }
}

/// A single bucket keeps its level.
impl<C> OwnLevels for Lane<C> {
    fn capacity<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        amount: f64,
        open: bool,
    ) -> Capacity {
        self.catch_up(env);
        self.forget_departed(env);
        let limits = &env.rules.limits;
        let queued = self.queue.as_ref().map_or(0.0, |queue| queue.queued());
        let valid = limits.check(amount).is_ok();
        Capacity {
            has_capacity: self.bucket.fits(limits, limits.scaled(amount)),
            needed_capacity: self.bucket.needed(limits, amount),
            level: self.bucket.level(limits),
            waiters: self.waiting(),
            queued_amount: limits.unscaled(queued),
            wait: (open && valid).then(|| self.bucket.wait(limits, queued + limits.scaled(amount))),
        }
    }

    fn reconcile<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        actual: f64,
        estimated: f64,
    ) -> Result<(), Refusal> {
        let limits = &env.rules.limits;
        let result = check_costs(limits, actual, estimated).and_then(|()| {
            self.bucket.leak(limits, env.now);
            let difference = actual - estimated;
            if (self.bucket.level(limits) + difference).is_finite() {
                if difference < 0.0 {
                    self.bucket.drain(limits.scaled(-difference));
                } else {
                    self.bucket.fill(limits.scaled(difference));
                }
                self.serve(env);
                Ok(())
            } else {
                // A debt beyond any number could never be repaid, nor refunded.
                Err(Refusal::InvalidAmount {
                    amount: actual,
                    capacity: limits.capacity(),
                })
            }
        });
        if let Err(refusal) = &result {
            env.stats.record(Event::Refused(refusal), false);
        }
        result
    }

    fn reconfigure<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>, old: &Limits) {
        let limits = &env.rules.limits;
        self.bucket.leak(old, env.now);
        self.bucket.rescale(old, limits);
        if let Some(queue) = self.queue.as_deref_mut() {
            let capacity = limits.capacity();
            let (replies, stats) = (env.replies, &mut *env.stats);
            queue.remove_where(limits, |waiter| {
                let too_big = waiter.amount > capacity;
                if too_big {
                    let refusal = Refusal::InvalidAmount {
                        amount: waiter.amount,
                        capacity,
                    };
                    answer_out_of_turn(replies, stats, waiter, refusal);
                }
                too_big
            });
        }
        self.serve(env);
    }
}

/// Whether `actual` and `estimated` are costs that can be settled: finite and not
/// negative.
pub(crate) fn check_costs(limits: &Limits, actual: f64, estimated: f64) -> Result<(), Refusal> {
    match [actual, estimated]
        .into_iter()
        .find(|cost| !(cost.is_finite() && *cost >= 0.0))
    {
        Some(amount) => Err(Refusal::InvalidAmount {
            amount,
            capacity: limits.capacity(),
        }),
        None => Ok(()),
    }
}

/// The refusal of an amount that can never be granted, counted; `None` for a valid one.
pub(super) fn refuse_invalid<R>(env: &mut Env<'_, R>, amount: f64) -> Option<Admission> {
    let refusal = env.rules.limits.check(amount).err()?;
    env.stats.record(Event::Refused(&refusal), false);
    Some(Admission::Refused(refusal))
}

/// Removes the waiters whose callers have left, if any may have since the last look (the
/// head is looked at, the rest only when the departure flag says so); true if any was.
fn remove_departed<R: Replies>(queue: &mut Queue<R::Caller>, env: &mut Env<'_, R>) -> bool {
    let head_left = queue
        .front()
        .is_some_and(|head| !head.is_answered() && env.replies.is_gone(&head.caller));
    if !(queue.someone_left() || head_left) {
        return false;
    }
    let mut removed = false;
    let stats = &mut *env.stats;
    queue.remove_where(&env.rules.limits, |waiter| {
        let gone = env.replies.is_gone(&waiter.caller);
        if gone {
            stats.record(Event::Cancelled, true);
            removed = true;
        }
        gone
    });
    removed
}

/// Grants, in order, every waiter at the head of the queue that fits, skipping those
/// already answered or whose callers have given up.
fn grant_fitting<R: Replies>(
    queue: &mut Queue<R::Caller>,
    bucket: &mut Bucket,
    env: &mut Env<'_, R>,
) {
    let limits = &env.rules.limits;
    while let Some(head) = queue.front() {
        let answered = head.is_answered();
        let fits = !answered && bucket.fits(limits, limits.scaled(head.amount));
        if !(answered || fits || env.replies.is_gone(&head.caller)) {
            break;
        }
        let Some(mut waiter) = queue.pop_front(limits) else {
            break;
        };
        if answered {
            continue; // answered out of turn, and counted then
        }
        let scaled = limits.scaled(waiter.amount);
        let grant = Grant {
            amount: waiter.amount,
            waited: env.now.since(waiter.received),
            at: env.now,
            backlog: bucket.backlog(limits, scaled + queue.queued()),
        };
        // A caller who gave up, even just now, consumes nothing.
        if fits && env.replies.send(&mut waiter.caller, Ok(grant)) {
            bucket.fill(scaled);
            let event = Event::Granted {
                amount: grant.amount,
                waited: grant.waited,
            };
            env.stats.record(event, true);
        } else {
            env.stats.record(Event::Cancelled, true);
        }
    }
}

/// Answers `Timeout` to the waiters that have expired (their deadline and the front end's
/// grace have passed); true if any. This happens only after a debt or a slower
/// reconfiguration: a request is admitted only when its projected grant meets its
/// deadline.
fn expire<R: Replies>(queue: &mut Queue<R::Caller>, bucket: &Bucket, env: &mut Env<'_, R>) -> bool {
    let mut expired = false;
    let limits = &env.rules.limits;
    let (replies, stats) = (env.replies, &mut *env.stats);
    queue.expire(limits, env.now, |waiter, queued| {
        let refusal = Refusal::Timeout {
            amount: waiter.amount,
            timeout: waiter
                .deadline
                .map_or(Duration::ZERO, |deadline| deadline.since(waiter.received)),
            retry_after: bucket.wait(limits, queued + limits.scaled(waiter.amount)),
        };
        answer_out_of_turn(replies, stats, waiter, refusal);
        expired = true;
    });
    expired
}

/// Answers `waiter` out of turn with `refusal`: counted as that refusal, or as cancelled
/// if its caller has gone.
pub(super) fn answer_out_of_turn<R: Replies, M>(
    replies: &R,
    stats: &mut BucketStats,
    waiter: &mut Waiter<R::Caller, M>,
    refusal: Refusal,
) {
    let counted = refusal.clone();
    if replies.send(&mut waiter.caller, Err(refusal)) {
        stats.record(Event::Refused(&counted), true);
    } else {
        stats.record(Event::Cancelled, true);
    }
}
