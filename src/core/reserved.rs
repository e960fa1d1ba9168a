//! The policy of one bucket whose level lives in a store that other processes share.
//!
//! The store keeps the schedule: each request reserves its slot there, in arrival order,
//! in batches, and the store answers how long after its answer the slot comes, or that it
//! would come too late for the request's timeout. This lane keeps the callers: it decides
//! what to send, grants each caller at its slot, in order, on this process's clock counted
//! from when the answer came (which errs late, never early), offers back the slots of
//! callers who left, and, while the store cannot be reached, follows the outage rule:
//! refuse, grant, or reserve on a bucket of the process's own.

use std::sync::Arc;
use std::time::Duration;

pub(crate) use super::lane::check_costs;
use super::lane::{answer_out_of_turn, refuse_invalid};
use super::queue::{Departures, Queue, Waiter};
use super::{
    Admission, Bucket, BucketStats, Capacity, Env, Event, Grant, KeyedLane, Lanes, Limits, Outage,
    Refusal, Replies, Rules, Ticket, Time, Window,
};

/// How late a grant may come: a reservation's slot is the store's, so a grant made late
/// costs nobody any rate, only its caller some latency. This much lets one wake-up serve
/// the grants due close together.
const GRANT_SLACK: Duration = Duration::from_millis(4);

/// The most requests in one call to the store.
const MAX_BATCH: usize = 512;

/// Where a waiter stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) enum Slot {
    /// Not yet sent to the store.
    #[default]
    Pending,
    /// Sent, and the store has not answered.
    InFlight,
    /// To be granted at `due`.
    Reserved { due: Time, by: ReservedBy },
}

/// Who reserved a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ReservedBy {
    /// The store, whose schedule this reservation ends at `token`.
    Store { token: u64 },
    /// Nobody: the store could not be reached, and the rule is to grant.
    Open,
    /// The process's own bucket, while the store could not be reached.
    Local,
}

/// One request of a batch, as the store reserves it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Request {
    pub(crate) amount: f64,
    /// How much longer the request may wait; `None` waits as long as it takes.
    pub(crate) timeout: Option<Duration>,
}

/// The store's answer to one request of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reservation {
    /// Reserved: the slot comes `wait` after the answer; `token` names the reservation.
    Reserved { wait: Duration, token: u64 },
    /// Not reserved: the slot would come `retry_after` after the answer, past the timeout.
    Refused { retry_after: Duration },
}

/// A reservation that nobody will be granted, for the front end to offer back to the
/// store, which takes it back only if no later reservation depends on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GiveBack {
    pub(crate) amount: f64,
    pub(crate) token: u64,
}

/// One bucket whose level lives in a store, and the callers of this process who wait on
/// it. Its waiters stand in order: reserved, then in flight, then pending.
#[derive(Debug)]
pub(crate) struct ReservedLane<C> {
    queue: Option<Box<Queue<C, Slot>>>,
    /// The waiters sent to the store and not yet answered by it, in order, with their
    /// amounts (some may have been answered out of turn since, or have left the queue).
    in_flight: Vec<(u64, f64)>,
    /// Waiters not yet sent.
    pending: usize,
    /// The latest slot given so far: no later waiter gets an earlier one (FIFO).
    last_due: Time,
    /// Where the store's schedule ended when it last answered, on this process's clock:
    /// what grants report of the level.
    store_schedule: Time,
    /// While the store is away and the rule is a bucket of the process's own: where that
    /// bucket's schedule of reservations ends. `None` until an outage needs it.
    local_schedule: Option<Time>,
    give_back: Vec<GiveBack>,
}

impl<C> Default for ReservedLane<C> {
    fn default() -> Self {
        Self {
            queue: None,
            in_flight: Vec::new(),
            pending: 0,
            last_due: Time::default(),
            store_schedule: Time::default(),
            local_schedule: None,
            give_back: Vec::new(),
        }
    }
}

impl<C> ReservedLane<C> {
    /// How many wait.
    fn waiting(&self) -> usize {
        self.queue.as_ref().map_or(0, |queue| queue.len())
    }

    /// The reservations to offer back to the store, taken, the latest first: the store
    /// takes one back only if nothing reserved after it remains on its schedule.
    pub(crate) fn take_give_backs(&mut self) -> Vec<GiveBack> {
        let mut give_back = std::mem::take(&mut self.give_back);
        give_back.sort_by_key(|give_back| std::cmp::Reverse(give_back.token));
        give_back
    }

    /// The requests to send to the store now, in order, marked as sent: the pending ones,
    /// up to [`MAX_BATCH`], if the store can be reached and no call is out already.
    /// Callers who left before their turn to be sent are not sent.
    pub(crate) fn take_batch<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
    ) -> Option<Vec<Request>> {
        if !env.rules.store_reachable || !self.in_flight.is_empty() || self.pending == 0 {
            return None;
        }
        let queue = self.queue.as_deref_mut()?;
        let mut batch = Vec::with_capacity(self.pending.min(MAX_BATCH));
        let mut left = Vec::new();
        for waiter in queue.waiters_mut() {
            if batch.len() == MAX_BATCH {
                break;
            }
            if waiter.is_answered() || waiter.mark != Slot::Pending {
                continue;
            }
            self.pending -= 1;
            if env.replies.is_gone(&waiter.caller) {
                left.push(waiter.id());
                continue;
            }
            waiter.mark = Slot::InFlight;
            self.in_flight.push((waiter.id(), waiter.amount));
            batch.push(Request {
                amount: waiter.amount,
                timeout: waiter.deadline.map(|deadline| deadline.since(env.now)),
            });
        }
        let stats = &mut *env.stats;
        for id in left {
            queue.answer_out_of_turn(&env.rules.limits, id, |_, _| {
                stats.record(Event::Cancelled, true);
            });
        }
        self.replan(&env.rules.limits);
        (!batch.is_empty()).then_some(batch)
    }

    /// Applies the store's answers to the batch in flight, in order, received at
    /// `env.now`, with how far the store's schedule reached past its answer. Answers
    /// missing at the end count as a failed call for those requests.
    pub(crate) fn apply<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        answers: &[Reservation],
        reach: Duration,
    ) {
        let sent = std::mem::take(&mut self.in_flight);
        self.store_schedule = env.now.after(reach);
        if env.rules.store_reachable {
            self.local_schedule = None; // a next outage starts afresh
        }
        for (&(id, amount), answer) in sent.iter().zip(answers) {
            let retry_after = match *answer {
                Reservation::Refused { retry_after } => retry_after,
                Reservation::Reserved { wait, token } => {
                    let slot = env.now.after(wait);
                    let due = slot.max(self.last_due);
                    let replies = env.replies;
                    let waiter = self
                        .queue
                        .as_deref_mut()
                        .and_then(|queue| queue.find_mut(id))
                        .filter(|waiter| !waiter.is_answered());
                    let Some(waiter) = waiter.filter(|waiter| !replies.is_gone(&waiter.caller))
                    else {
                        // Answered, or its caller gone, meanwhile: nobody will be granted it,
                        // and now it is likely still the last reservation, which the store
                        // takes back.
                        self.give_back.push(GiveBack { amount, token });
                        self.cancel(env, id);
                        continue;
                    };
                    // The store reserved the slot within what was left of the timeout when
                    // the call went out; the call's round trip comes on top of it. Only a
                    // slot that an earlier answer pushes later is held to the deadline.
                    let expires = waiter
                        .deadline
                        .map(|deadline| deadline.after(env.rules.expiry_grace));
                    if due == slot || expires.is_none_or(|expires| due <= expires) {
                        waiter.mark = Slot::Reserved {
                            due,
                            by: ReservedBy::Store { token },
                        };
                        self.last_due = due;
                        continue;
                    }
                    // Pushed past its timeout behind an earlier slot.
                    self.give_back.push(GiveBack { amount, token });
                    due.since(env.now)
                }
            };
            self.answer_timeout(env, id, retry_after);
        }
        if answers.len() < sent.len() {
            self.in_flight = sent[answers.len()..].to_vec();
            self.store_failed(env);
            return;
        }
        if !env.rules.store_reachable {
            // The store went away for another call meanwhile: those not sent cannot be.
            self.decide_without_store(env, false);
        }
        self.grant_due(env);
        self.replan(&env.rules.limits);
    }

    /// Counts the waiter `id`, whose caller left, as cancelled, if it still waits.
    fn cancel<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>, id: u64) {
        if let Some(queue) = self.queue.as_deref_mut() {
            let stats = &mut *env.stats;
            queue.answer_out_of_turn(&env.rules.limits, id, |_, _| {
                stats.record(Event::Cancelled, true);
            });
        }
    }

    /// Answers the waiter `id` `Timeout` out of turn, if it still waits.
    fn answer_timeout<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        id: u64,
        retry_after: Duration,
    ) {
        let Some(queue) = self.queue.as_deref_mut() else {
            return;
        };
        let (replies, stats) = (env.replies, &mut *env.stats);
        queue.answer_out_of_turn(&env.rules.limits, id, |waiter, _| {
            let refusal = Refusal::Timeout {
                amount: waiter.amount,
                timeout: timeout_of(waiter),
                retry_after,
            };
            answer_out_of_turn(replies, stats, waiter, refusal);
        });
    }

    /// The store could not be reached for the batch in flight: its requests may have been
    /// reserved or not, so they are never offered back nor granted twice; they, and every
    /// request not yet sent, follow the outage rule now.
    pub(crate) fn store_failed<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) {
        self.in_flight.clear();
        self.decide_without_store(env, true);
    }

    /// The store cannot be reached (another call found so): the requests not yet sent
    /// follow the outage rule now; a call out for this lane ends as it ends.
    pub(crate) fn store_unreachable<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) {
        self.decide_without_store(env, false);
    }

    /// Decides by the outage rule, in order, the requests not yet sent and, if
    /// `in_flight_too`, those sent without an answer.
    fn decide_without_store<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        in_flight_too: bool,
    ) {
        let Some(queue) = self.queue.as_deref() else {
            return;
        };
        let undecided: Vec<(u64, f64, Option<Duration>)> = queue
            .waiters()
            .filter(|waiter| !waiter.is_answered())
            .filter(|waiter| match waiter.mark {
                Slot::Pending => true,
                Slot::InFlight => in_flight_too,
                Slot::Reserved { .. } => false,
            })
            .map(|waiter| {
                let left = waiter
                    .deadline
                    .map(|deadline| deadline.after(env.rules.expiry_grace).since(env.now));
                (waiter.id(), waiter.amount, left)
            })
            .collect();
        for (id, amount, left) in undecided {
            let decision = self.decide_without_store_one(env.rules, amount, left, env.now);
            let Some(queue) = self.queue.as_deref_mut() else {
                return;
            };
            if let Some(waiter) = queue.find_mut(id) {
                if waiter.mark == Slot::Pending {
                    self.pending -= 1;
                }
            }
            match decision {
                Ok(due) => {
                    self.commit_without_store(env.rules, amount, env.now, due);
                    let by = reserved_by(env.rules);
                    if let Some(waiter) = self.queue.as_deref_mut().and_then(|q| q.find_mut(id)) {
                        waiter.mark = Slot::Reserved { due, by };
                    }
                }
                Err(Refusal::Timeout { retry_after, .. }) => {
                    self.answer_timeout(env, id, retry_after);
                }
                Err(refusal) => {
                    if let Some(queue) = self.queue.as_deref_mut() {
                        let (replies, stats) = (env.replies, &mut *env.stats);
                        queue.answer_out_of_turn(&env.rules.limits, id, |waiter, _| {
                            answer_out_of_turn(replies, stats, waiter, refusal);
                        });
                    }
                }
            }
        }
        self.grant_due(env);
        self.replan(&env.rules.limits);
    }

    /// The report of the capacity for `amount`: the store's part is `ahead`, how far its
    /// schedule reaches past now (`None` while the store cannot be reached), and this
    /// process's part its queue.
    pub(crate) fn capacity<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        amount: f64,
        open: bool,
        ahead: Option<Duration>,
    ) -> Capacity {
        self.notice_departures(env, &());
        let limits = &env.rules.limits;
        let valid = limits.check(amount).is_ok();
        let (waiters, queued) = self.queue.as_ref().map_or((0, 0.0), |queue| {
            (queue.len(), limits.unscaled(queue.queued()))
        });
        let behind = self.last_due.since(env.now);
        let (bucket, limits_used, unreserved) = match (ahead, env.rules.outage) {
            (Some(ahead), _) => (
                level_bucket(limits, ahead, env.now),
                *limits,
                self.unreserved(limits),
            ),
            (None, Outage::Local(local)) => {
                let schedule = self
                    .local_schedule
                    .unwrap_or_else(|| env.now.after(local.burst_time()));
                (
                    level_bucket(&local, schedule.since(env.now), env.now),
                    local,
                    0.0,
                )
            }
            (None, Outage::Grant) => (Bucket::new(env.now), *limits, 0.0),
            (None, Outage::Refuse { .. }) => {
                let mut full = Bucket::new(env.now);
                full.fill(limits.scaled_capacity());
                return Capacity {
                    has_capacity: false,
                    needed_capacity: full.needed(limits, amount),
                    level: full.level(limits),
                    waiters,
                    queued_amount: queued,
                    wait: None,
                };
            }
        };
        let scaled = limits_used.scaled(amount);
        Capacity {
            has_capacity: bucket.fits(&limits_used, scaled),
            needed_capacity: bucket.needed(&limits_used, amount),
            level: bucket.level(&limits_used),
            waiters,
            queued_amount: queued,
            wait: (open && valid).then(|| {
                bucket
                    .wait(&limits_used, limits_used.scaled(unreserved) + scaled)
                    .max(behind)
            }),
        }
    }

    /// Settles a cost found valid ([`check_costs`]) on the process's own bucket, while the
    /// store is away and the rule is to use it: a debt at once, a refund only if no
    /// reservation on it comes later than now.
    pub(crate) fn settle_locally<R>(
        &mut self,
        env: &mut Env<'_, R>,
        local: &Limits,
        actual: f64,
        estimated: f64,
    ) {
        let now = env.now;
        let schedule = self
            .local_schedule
            .get_or_insert_with(|| now.after(local.burst_time()));
        let start = (*schedule).max(now);
        if actual >= estimated {
            *schedule = start.after(local.reservation_time(actual - estimated));
        } else if schedule.since(now) <= local.burst_time() {
            let refund = local.reservation_time(estimated - actual);
            *schedule = Time::since_epoch(schedule.elapsed().saturating_sub(refund)).max(now);
        }
    }

    /// The sum of the amounts of the waiters not yet reserved on the store (in the
    /// caller's units).
    fn unreserved(&self, limits: &Limits) -> f64 {
        self.queue.as_ref().map_or(0.0, |queue| {
            let scaled: f64 = queue
                .waiters()
                .filter(|waiter| !waiter.is_answered())
                .filter(|waiter| matches!(waiter.mark, Slot::Pending | Slot::InFlight))
                .map(|waiter| limits.scaled(waiter.amount))
                .sum();
            limits.unscaled(scaled)
        })
    }

    /// Grants, in order, every waiter at the head whose slot has come, skipping those
    /// answered out of turn and those whose callers left (their slots are offered back).
    fn grant_due<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) {
        let limits = &env.rules.limits;
        let Some(queue) = self.queue.as_deref_mut() else {
            return;
        };
        while let Some(head) = queue.front() {
            if head.is_answered() {
                queue.pop_front(limits);
                continue;
            }
            let gone = env.replies.is_gone(&head.caller);
            let due = match head.mark {
                Slot::Reserved { due, .. } => Some(due),
                Slot::Pending | Slot::InFlight => None,
            };
            let ready = due.is_some_and(|due| due <= env.now);
            if !(ready || gone) {
                break;
            }
            let Some(mut waiter) = queue.pop_front(limits) else {
                break;
            };
            if let Slot::Pending = waiter.mark {
                self.pending -= 1;
            }
            let by = match waiter.mark {
                Slot::Reserved { by, .. } => by,
                Slot::Pending | Slot::InFlight => ReservedBy::Open, // not granted
            };
            let schedules = (self.store_schedule, self.local_schedule);
            let grant = Grant {
                amount: waiter.amount,
                waited: env.now.since(waiter.received),
                at: env.now,
                backlog: backlog(env.rules, by, schedules, queue.queued(), env.now),
            };
            if ready && !gone && env.replies.send(&mut waiter.caller, Ok(grant)) {
                let event = Event::Granted {
                    amount: grant.amount,
                    waited: grant.waited,
                };
                env.stats.record(event, true);
                match waiter.mark {
                    Slot::Reserved {
                        by: ReservedBy::Open,
                        ..
                    } => env.stats.record(Event::FailedOpen, false),
                    Slot::Reserved {
                        by: ReservedBy::Local,
                        ..
                    } => env.stats.record(Event::GrantedLocally, false),
                    _ => {}
                }
            } else {
                env.stats.record(Event::Cancelled, true);
                if let Slot::Reserved {
                    by: ReservedBy::Store { token },
                    ..
                } = waiter.mark
                {
                    self.give_back.push(GiveBack {
                        amount: waiter.amount,
                        token,
                    });
                }
            }
        }
    }

    /// Plans the next wake-up: the head's slot. Nothing else is due at a given time: a
    /// waiter is decided by the store's answer (or, if the store is away, at once), and
    /// its slot meets its deadline from then on.
    fn replan(&mut self, limits: &Limits) {
        let Some(queue) = self.queue.as_deref_mut() else {
            return;
        };
        queue.drop_answered_front(limits);
        queue.plan = match queue.front().map(|head| head.mark) {
            Some(Slot::Reserved { due, .. }) => Some(Window::within(due, GRANT_SLACK)),
            _ => None,
        };
    }

    /// Where a request for `amount` that may wait `timeout` would stand if it were
    /// decided now without the store, by the outage rule: its slot, or its refusal.
    fn decide_without_store_one(
        &self,
        rules: &Rules,
        amount: f64,
        timeout: Option<Duration>,
        now: Time,
    ) -> Result<Time, Refusal> {
        let due = match rules.outage {
            Outage::Refuse { retry_after } => return Err(Refusal::Unavailable { retry_after }),
            Outage::Grant => now,
            Outage::Local(local) => {
                let mut schedule = self.local_schedule;
                reserve_locally(&mut schedule, &local, amount, now)
            }
        }
        .max(self.last_due);
        match timeout {
            Some(timeout) if due.since(now) > timeout => Err(Refusal::Timeout {
                amount,
                timeout,
                retry_after: due.since(now),
            }),
            _ => Ok(due),
        }
    }

    /// Takes the slot at `due` that
    /// [`decide_without_store_one`](Self::decide_without_store_one) gave `amount`.
    fn commit_without_store(&mut self, rules: &Rules, amount: f64, now: Time, due: Time) {
        if let Outage::Local(local) = rules.outage {
            reserve_locally(&mut self.local_schedule, &local, amount, now);
        }
        self.last_due = due;
    }
}

/// The backlog a grant of a slot reserved `by` reports: the level of the schedule that slot
/// is on (the store's as it last answered, or the process's own), plus `behind` (scaled):
/// every request of this process still waiting, some of which the store's schedule may
/// count already, so that it errs high.
fn backlog(
    rules: &Rules,
    by: ReservedBy,
    (store_schedule, local_schedule): (Time, Option<Time>),
    behind: f64,
    now: Time,
) -> f64 {
    let behind = rules.limits.unscaled(behind);
    match (by, &rules.outage) {
        (ReservedBy::Store { .. }, _) => rules.limits.leaked_in(store_schedule.since(now)) + behind,
        (ReservedBy::Local, Outage::Local(local)) => {
            local.leaked_in(local_schedule.unwrap_or(now).since(now)) + behind
        }
        // Nothing is counted while the store is away and the rule is to grant.
        _ => 0.0,
    }
}

/// Who takes a slot without the store, by the outage rule.
fn reserved_by(rules: &Rules) -> ReservedBy {
    match rules.outage {
        Outage::Local(_) => ReservedBy::Local,
        _ => ReservedBy::Open,
    }
}

/// Reserves `amount` on a schedule of `limits` (the process's own bucket) that ends at
/// `schedule`, starting full when there is none yet; returns the reservation's slot.
fn reserve_locally(schedule: &mut Option<Time>, limits: &Limits, amount: f64, now: Time) -> Time {
    let burst = limits.burst_time();
    let start = schedule.unwrap_or_else(|| now.after(burst)).max(now);
    let end = start.after(limits.reservation_time(amount));
    *schedule = Some(end);
    Time::since_epoch(end.elapsed().saturating_sub(burst)).max(now)
}

/// A bucket whose level is what `limits` leaks in `ahead`: the level of a schedule of
/// reservations that reaches `ahead` past now.
fn level_bucket(limits: &Limits, ahead: Duration, now: Time) -> Bucket {
    let mut bucket = Bucket::new(now);
    bucket.fill(limits.scaled(limits.leaked_in(ahead)));
    bucket
}

/// The timeout a waiter came with.
fn timeout_of<C, M>(waiter: &Waiter<C, M>) -> Duration {
    waiter
        .deadline
        .map_or(Duration::ZERO, |deadline| deadline.since(waiter.received))
}

impl<C> Lanes for ReservedLane<C> {
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
        if let Some(refused) = refuse_invalid(env, amount) {
            return refused;
        }
        if self
            .next_wake()
            .is_some_and(|window| window.earliest <= env.now)
        {
            self.serve(env);
        }
        if !env.rules.store_reachable {
            match self.decide_without_store_one(env.rules, amount, timeout, env.now) {
                Err(refusal) => {
                    env.stats.record(Event::Refused(&refusal), false);
                    return Admission::Refused(refusal);
                }
                Ok(due) if due <= env.now && self.waiting() == 0 => {
                    self.commit_without_store(env.rules, amount, env.now, due);
                    let event = Event::Granted {
                        amount,
                        waited: Duration::ZERO,
                    };
                    env.stats.record(event, false);
                    env.stats.record(
                        match reserved_by(env.rules) {
                            ReservedBy::Local => Event::GrantedLocally,
                            _ => Event::FailedOpen,
                        },
                        false,
                    );
                    return Admission::Granted(Grant {
                        amount,
                        waited: Duration::ZERO,
                        at: env.now,
                        backlog: backlog(
                            env.rules,
                            reserved_by(env.rules),
                            (self.store_schedule, self.local_schedule),
                            0.0,
                            env.now,
                        ),
                    });
                }
                Ok(_) => {}
            }
        }
        if env.rules.max_queue != 0 && self.waiting() >= env.rules.max_queue {
            self.notice_departures(env, &());
            if self.waiting() >= env.rules.max_queue {
                let head_due = self
                    .queue
                    .as_ref()
                    .and_then(|queue| match queue.front()?.mark {
                        Slot::Reserved { due, .. } => Some(due),
                        _ => None,
                    });
                let refusal = Refusal::QueueFull {
                    max_queue: env.rules.max_queue,
                    retry_after: head_due.map_or(Duration::ZERO, |due| due.since(env.now)),
                };
                env.stats.record(Event::Refused(&refusal), false);
                return Admission::Refused(refusal);
            }
        }
        Admission::Wait(Ticket {
            amount,
            received: env.now,
            deadline: timeout
                .and_then(|timeout| env.now.elapsed().checked_add(timeout))
                .map(Time::since_epoch),
        })
    }

    fn enqueue<R: Replies<Caller = C>>(
        &mut self,
        env: &mut Env<'_, R>,
        (): &(),
        ticket: Ticket,
        caller: C,
        watch: impl FnOnce(&mut C, &Arc<Departures>),
    ) {
        let limits = env.rules.limits;
        env.stats.record(Event::Queued, false);
        // Decided now, without the store, if it cannot be reached: as on admission.
        let timeout = ticket.deadline.map(|deadline| deadline.since(env.now));
        let slot = (!env.rules.store_reachable)
            .then(|| self.decide_without_store_one(env.rules, ticket.amount, timeout, env.now))
            .and_then(Result::ok);
        if let Some(due) = slot {
            self.commit_without_store(env.rules, ticket.amount, env.now, due);
        }
        let queue = self.queue.get_or_insert_with(Box::default);
        let id = queue.push(
            &limits,
            ticket.amount,
            ticket.received,
            ticket.deadline,
            None, // never expires: see `replan`
            caller,
        );
        match slot {
            Some(due) => {
                if let Some(waiter) = queue.find_mut(id) {
                    waiter.mark = Slot::Reserved {
                        due,
                        by: reserved_by(env.rules),
                    };
                }
            }
            None => self.pending += 1,
        }
        if let Some((caller, departures)) = queue.last_queued() {
            watch(caller, departures);
        }
        self.grant_due(env);
        self.replan(&limits);
    }

    fn next_wake(&self) -> Option<Window> {
        self.queue.as_ref().and_then(|queue| queue.plan)
    }

    fn serve<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>) {
        self.grant_due(env);
        self.replan(&env.rules.limits);
    }

    fn close<R: Replies<Caller = C>>(&mut self, replies: &R, stats: &mut BucketStats) {
        self.in_flight.clear();
        self.pending = 0;
        if let Some(queue) = self.queue.as_deref_mut() {
            for mut waiter in queue.take_all() {
                if let Slot::Reserved {
                    by: ReservedBy::Store { token },
                    ..
                } = waiter.mark
                {
                    self.give_back.push(GiveBack {
                        amount: waiter.amount,
                        token,
                    });
                }
                answer_out_of_turn(replies, stats, &mut waiter, Refusal::ShuttingDown);
            }
        }
    }

    fn head_caller_mut(&mut self) -> Option<&mut C> {
        self.queue.as_mut()?.front_caller_mut()
    }

    fn callers(&mut self, mut watch: impl FnMut(&(), &Arc<Departures>, &mut C)) {
        if let Some(queue) = self.queue.as_deref_mut().filter(|queue| !queue.is_empty()) {
            let (departures, callers) = queue.callers_mut();
            for caller in callers {
                watch(&(), departures, caller);
            }
        }
    }

    fn notice_departures<R: Replies<Caller = C>>(&mut self, env: &mut Env<'_, R>, (): &()) {
        let Some(queue) = self.queue.as_deref_mut() else {
            return;
        };
        if !queue.someone_left() {
            return;
        }
        let limits = env.rules.limits;
        let (replies, stats) = (env.replies, &mut *env.stats);
        let (pending, give_back) = (&mut self.pending, &mut self.give_back);
        queue.remove_where(&limits, |waiter| {
            let gone = replies.is_gone(&waiter.caller);
            if gone {
                stats.record(Event::Cancelled, true);
                match waiter.mark {
                    Slot::Pending => *pending -= 1,
                    Slot::Reserved {
                        by: ReservedBy::Store { token },
                        ..
                    } => give_back.push(GiveBack {
                        amount: waiter.amount,
                        token,
                    }),
                    // In flight: offered back when its answer comes; reserved without the
                    // store: nothing to give back.
                    Slot::InFlight | Slot::Reserved { .. } => {}
                }
            }
            gone
        });
        self.grant_due(env);
        self.replan(&limits);
    }
}

/// One lane among many, one per key.
impl<C> KeyedLane for ReservedLane<C> {
    fn new(_: Time) -> Self {
        Self::default()
    }

    fn is_idle_at(&self, _: &Limits, now: Time) -> bool {
        !self.is_busy() && self.local_schedule.is_none_or(|schedule| schedule <= now)
    }

    fn is_busy(&self) -> bool {
        self.waiting() > 0 || !self.in_flight.is_empty() || !self.give_back.is_empty()
    }

    fn empty_at(&self, _: &Limits) -> Time {
        self.local_schedule.unwrap_or_default()
    }

    fn release_queue(&mut self) {
        if self.queue.as_ref().is_some_and(|queue| queue.is_empty()) {
            self.queue = None;
        }
    }

    fn needs_front_end(&self) -> bool {
        (self.pending > 0 && self.in_flight.is_empty()) || !self.give_back.is_empty()
    }
}
