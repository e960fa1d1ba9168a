//! Model-based tests of the actor on paused time: random scripts of acquires (random
//! amounts, valid and invalid, random timeouts), cancellations at random moments,
//! capacity queries, reconciliations of costs (refunds, debts, invalid costs), run-time
//! reconfigurations, statistics queries and (under `Supervisor`) restarts, ending in a
//! graceful or an immediate shutdown and a few requests after it (acquires, reconciles,
//! statistics). Every answer (its value and the paused-clock instant it arrives), every
//! `Capacity` and every `BucketStats` is compared with a small reference model of the
//! README's semantics, and independent invariants are checked on the answers alone:
//!
//! - every request gets exactly one answer (a cancelled one: none, or the one it had before);
//! - granted requests come in arrival order;
//! - the conformance bound holds over every run of grants, with refunds credited: for the
//!   grants from the i-th to the j-th, `sum <= capacity(t_j) + ∫ rate + refunds`, where the
//!   integral runs over `[t_i, t_j]` at the rates in force (reconfigurations change them),
//!   `refunds` sums `estimated - actual` of the successful refunding reconciles in
//!   `[t_i, t_j]`, and each grant may exceed by the bucket's rounding slack. (The level
//!   before the i-th grant is at least 0 and after the j-th at most the capacity then in
//!   force; in between it only falls by leaking or by a refund. Debts only tighten it.)
//! - a `Timeout` is answered at receipt with `retry_after > timeout`, or, for an admitted
//!   request made late by a debt or a slower rate, at the first tick at or after its
//!   deadline plus one tick; an admitted request with a timeout is granted by its deadline
//!   plus one tick;
//! - `InvalidAmount` is answered at receipt, or to a waiter at a reconfiguration to a
//!   capacity below its amount;
//! - nothing is granted after an immediate shutdown, nor to a request sent after a shutdown;
//! - each `BucketStats` agrees with the answers seen before it: `granted`, `queue_full`,
//!   `shutting_down`, `total_wait` exactly, `granted_amount` to rounding; `timed_out` and
//!   `invalid` at least the answers seen, and what they and `cancelled` count beyond them
//!   at most the requests whose callers gave up (a waiter answered out of turn, at its
//!   expiry, a reconfiguration or a shutdown, whose caller has gone, counts as cancelled);
//!   `queue_len` between the unanswered
//!   requests not cancelled and all the unanswered ones; `max_queue_len` never falls.
//!
//! The model keeps the queue (with each waiter's deadline, expired one tick after it, in
//! the order of deadlines), the running sum of the queued amounts as the actor keeps it,
//! the shutdown states, the timer and the counters; it knows when the bucket notices a
//! cancellation (at the head of the grant loop, or when an admission would be refused), so
//! it predicts `cancelled` exactly, as every other counter. For the arithmetic it uses
//! `LeakyBucket` (property-tested on its own in `bucket_arithmetic_properties.rs`), fed at
//! the same instants as the actor's (every message that serves the queue leaks it, as does
//! `Reconcile` even when the debt is refused), so that its decisions agree to the last bit.
//!
//! Script events happen on whole milliseconds, after everything due at that instant has run
//! (the timer's grants and expiries, and the callers' records), so the order of events at
//! one instant is fixed; the timer's grants land on the first tick at or after their due
//! instant. A script whose reconciles may leave a debt of `f64::MAX` ends with a refund of
//! it, so that a graceful shutdown can drain the queue. New message kinds are new `Action`
//! variants with a model method each.
//!
//! Cases: `RELIABILITY_CASES` (see `common::proptest_config`).

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use actix::{Actor, Addr, MailboxError};
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketConfig, BucketStats, Capacity, CapacityInfo, Granted,
    LeakyBucket, Reconcile, Reconfigure, Shutdown, SimulateRestart, Stats,
};
use actix_rt::task::JoinHandle;
use actix_rt::time::Instant;
use common::{settle, TICK};
use proptest::prelude::*;

/// `at`, rounded up to a whole tick (for any span).
fn next_tick(at: Duration) -> Duration {
    let ticks = at.as_nanos().div_ceil(TICK.as_nanos());
    Duration::from_nanos(u64::try_from(ticks * TICK.as_nanos()).unwrap_or(u64::MAX))
}

/// How far the model looks for the end of a script: no script waits longer.
const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);
/// The longest the actor's timer sleeps at once (as tokio caps its sleeps).
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);
/// How long the test waits (on the paused clock) for an answer before calling it wedged.
const WEDGED: Duration = Duration::from_secs(86_400);

// ---------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Action {
    Acquire {
        amount: f64,
        timeout: Option<Duration>,
    },
    /// Cancels the `n % count`-th acquire sent so far (if any): its caller drops the request.
    Cancel(usize),
    Query(f64),
    /// Under `Supervisor`, a restart of the actor (`SimulateRestart`); ignored otherwise.
    Restart,
    Reconcile {
        actual: f64,
        estimated: f64,
    },
    Reconfigure {
        capacity: f64,
        period: Duration,
    },
    Stats,
}

/// A request sent right after the shutdown.
#[derive(Debug, Clone)]
enum Late {
    Acquire,
    Reconcile { actual: f64, estimated: f64 },
    Stats,
}

#[derive(Debug, Clone)]
struct Script {
    capacity: f64,
    period: Duration,
    max_queue: usize,
    /// Under `Supervisor` (restarts keep everything), or started plainly.
    supervised: bool,
    /// Each step: whole milliseconds after the previous one (0: the same instant), and what.
    steps: Vec<(u64, Action)>,
    /// Milliseconds after the last step, then the shutdown.
    shutdown_after: u64,
    graceful: bool,
    /// Requests sent after the shutdown.
    late_requests: Vec<Late>,
}

impl Script {
    /// Whether a reconcile may leave a debt that never leaks away: then the script refunds
    /// it all just before the shutdown.
    fn needs_final_refund(&self) -> bool {
        self.steps.iter().any(
            |(_, action)| matches!(action, Action::Reconcile { actual, .. } if *actual > 1e300),
        )
    }
}

fn amount(capacity: f64) -> impl Strategy<Value = f64> {
    let quarters = (capacity * 4.0) as u32;
    prop_oneof![
        8 => (0..=quarters).prop_map(|q| f64::from(q) / 4.0),
        2 => Just(1.0),
        1 => Just(capacity),
        1 => Just(-0.0),
        1 => Just(5e-324),
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.25),
            Just(-5e-324),
            Just(capacity + 0.25),
            Just(f64::MAX),
        ],
    ]
}

/// A cost for `Reconcile`: like an amount, or up to four times the capacity.
fn cost(capacity: f64) -> impl Strategy<Value = f64> {
    let quarters = (capacity * 16.0) as u32;
    prop_oneof![
        6 => amount(capacity),
        4 => (0..=quarters).prop_map(|q| f64::from(q) / 4.0),
        1 => Just(f64::MAX),
    ]
}

/// A cost for a late `Reconcile`: finite and modest (a debt that never leaks would keep a
/// graceful shutdown from ending), or NaN.
fn modest_cost(capacity: f64) -> impl Strategy<Value = f64> {
    let quarters = (capacity * 16.0) as u32;
    prop_oneof![
        6 => (0..=quarters).prop_map(|q| f64::from(q) / 4.0),
        1 => Just(f64::NAN),
    ]
}

fn timeout(period: Duration) -> impl Strategy<Value = Option<Duration>> {
    let span = period.as_millis() as u64 * 3 + 10;
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(Duration::ZERO)),
        1 => Just(Some(Duration::MAX)),
        3 => (0..span).prop_map(|ms| Some(Duration::from_millis(ms))),
        2 => (0..span * 1_000_000).prop_map(|ns| Some(Duration::from_nanos(ns))),
    ]
}

fn capacities() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        Just(1.0),
        Just(2.0),
        Just(2.5),
        Just(3.0),
        Just(5.0),
        Just(10.0)
    ]
}

fn periods_ms() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![
        Just(10u64),
        Just(50),
        Just(100),
        Just(250),
        Just(1000),
        Just(3000)
    ]
}

fn script() -> impl Strategy<Value = Script> {
    let max_queue = prop_oneof![3 => Just(0usize), 1 => 1usize..6];
    let supervised = any::<bool>();
    (capacities(), periods_ms(), max_queue, supervised).prop_flat_map(
        |(capacity, period_ms, max_queue, supervised)| {
            let period = Duration::from_millis(period_ms);
            let gap = prop_oneof![2 => Just(0u64), 3 => 0..=period_ms / 2 + 2];
            let action = prop_oneof![
                12 => (amount(capacity), timeout(period))
                    .prop_map(|(amount, timeout)| Action::Acquire { amount, timeout }),
                4 => any::<usize>().prop_map(Action::Cancel),
                2 => amount(capacity).prop_map(Action::Query),
                2 => Just(Action::Restart),
                3 => (cost(capacity), cost(capacity))
                    .prop_map(|(actual, estimated)| Action::Reconcile { actual, estimated }),
                2 => (capacities(), periods_ms()).prop_map(|(capacity, period_ms)| {
                    Action::Reconfigure {
                        capacity,
                        period: Duration::from_millis(period_ms),
                    }
                }),
                2 => Just(Action::Stats),
            ];
            let late = prop_oneof![
                2 => Just(Late::Acquire),
                1 => (modest_cost(capacity), modest_cost(capacity))
                    .prop_map(|(actual, estimated)| Late::Reconcile { actual, estimated }),
                1 => Just(Late::Stats),
            ];
            (
                prop::collection::vec((gap, action), 1..25),
                0..=period_ms,
                any::<bool>(),
                prop::collection::vec(late, 0..4),
            )
                .prop_map(move |(steps, shutdown_after, graceful, late_requests)| {
                    Script {
                        capacity,
                        period,
                        max_queue,
                        supervised,
                        steps,
                        shutdown_after,
                        graceful,
                        late_requests,
                    }
                })
        },
    )
}

/// The instant of each step, as an offset from the start: whole milliseconds.
fn schedule(script: &Script) -> Vec<Duration> {
    let mut k = 0u64;
    script
        .steps
        .iter()
        .map(|(gap, _)| {
            k += gap;
            Duration::from_millis(k)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

type AcquireAnswer = Result<Granted, AcquireError>;

/// What the model expects: a grant of (amount, waited), or an error.
type ModelAnswer = Result<(f64, Duration), AcquireError>;

#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// Answered with this, at this offset from the start.
    Answered(Duration, ModelAnswer),
    /// Cancelled by its caller before any answer.
    Cancelled,
}

struct ModelWaiter {
    id: usize,
    amount: f64,
    received: Duration,
    timeout: Duration,
    /// When it expires: one tick after its deadline (`None`: no deadline).
    expires: Option<Duration>,
    cancelled: bool,
}

#[derive(PartialEq)]
enum ModelState {
    Open,
    Draining,
    Closed,
}

struct Model {
    base: std::time::Instant,
    /// A `Capacity` from the actor (the type is non-exhaustive), to fill in.
    template: Capacity,
    bucket: LeakyBucket,
    max_queue: usize,
    /// The waiters not yet answered (the actor keeps expired ones in place, marked,
    /// until they reach the head: they count nowhere).
    queue: VecDeque<ModelWaiter>,
    /// The sum of the queued amounts, kept as the actor keeps it (a running sum, reset
    /// when the queue empties, recomputed when waiters are removed from the middle).
    queued: f64,
    state: ModelState,
    /// When the timer is due: the earlier of the head's due instant as last planned and
    /// the first expiry.
    wake_at: Option<Duration>,
    /// The answer each acquire got, by id (`None`: none yet).
    answers: Vec<Option<Expected>>,
    /// When graceful shutdowns were answered.
    shutdown_answered: Option<Duration>,
    stats: BucketStats,
}

impl Model {
    fn new(config: BucketConfig, max_queue: usize, template: Capacity) -> Self {
        let base = std::time::Instant::now();
        Self {
            base,
            template,
            bucket: LeakyBucket::new(config, base),
            max_queue,
            queue: VecDeque::new(),
            queued: 0.0,
            state: ModelState::Open,
            wake_at: None,
            answers: Vec::new(),
            shutdown_answered: None,
            stats: BucketStats::default(),
        }
    }

    fn answer(&mut self, id: usize, at: Duration, answer: ModelAnswer) {
        assert!(self.answers[id].is_none(), "the model answers once");
        self.answers[id] = Some(Expected::Answered(at, answer));
    }

    fn refuse(&mut self, id: usize, at: Duration, error: AcquireError) {
        self.count_refusal(&error);
        self.answer(id, at, Err(error));
    }

    fn count_refusal(&mut self, error: &AcquireError) {
        match error {
            AcquireError::InvalidAmount { .. } => self.stats.invalid += 1,
            AcquireError::Timeout { .. } => self.stats.timed_out += 1,
            AcquireError::QueueFull { .. } => self.stats.queue_full += 1,
            AcquireError::ShuttingDown => self.stats.shutting_down += 1,
            _ => {}
        }
    }

    fn record_queue_len(&mut self) {
        self.stats.queue_len = self.queue.len();
        self.stats.max_queue_len = self.stats.max_queue_len.max(self.queue.len());
    }

    fn head_wait(&self) -> Duration {
        self.queue.front().map_or(Duration::ZERO, |head| {
            self.bucket.time_until_fits(head.amount)
        })
    }

    /// Removes the waiters for which `remove` is true; the sum is recomputed.
    fn remove_where(&mut self, remove: impl Fn(&ModelWaiter) -> bool) -> Vec<ModelWaiter> {
        let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(remove);
        self.queue = kept.into();
        self.queued = self.queue.iter().map(|w| w.amount).sum();
        removed
    }

    /// Runs the timer up to `until`: every wake-up at the first tick at or after the due
    /// instant.
    fn run_until(&mut self, until: Duration) {
        while let Some(due) = self.wake_at {
            let fire = next_tick(due.min(FAR));
            if fire > until {
                break;
            }
            self.serve(fire);
        }
    }

    /// Brings the bucket up to `now`: grants what fits, expires the waiters whose deadline
    /// passed a tick ago, grants again if any did, and plans the next wake-up.
    fn serve(&mut self, now: Duration) {
        self.bucket.leak(self.base + now);
        self.grant_fitting(now);
        if self.expire(now) {
            self.grant_fitting(now);
        }
        self.record_queue_len();
        if self.queue.is_empty() && self.state == ModelState::Draining {
            self.close(now);
        } else {
            self.plan_wake(now);
        }
    }

    fn grant_fitting(&mut self, now: Duration) {
        while let Some(head) = self.queue.front() {
            if !head.cancelled && !self.bucket.fits(head.amount) {
                break;
            }
            let waiter = self.queue.pop_front().unwrap();
            self.queued -= waiter.amount;
            if self.queue.is_empty() {
                self.queued = 0.0;
            }
            if waiter.cancelled {
                self.stats.cancelled += 1;
                continue;
            }
            self.bucket.fill(waiter.amount);
            let waited = now - waiter.received;
            self.stats.granted += 1;
            self.stats.granted_amount += waiter.amount;
            self.stats.total_wait = self.stats.total_wait.saturating_add(waited);
            self.stats.max_wait = self.stats.max_wait.max(waited);
            self.answer(waiter.id, now, Ok((waiter.amount, waited)));
        }
    }

    /// Answers `Timeout` to every waiter expired by `now`, in the order of expiry (then of
    /// arrival); true if any. A cancelled one is counted, though nobody hears it.
    fn expire(&mut self, now: Duration) -> bool {
        let mut due: Vec<(Duration, usize)> = self
            .queue
            .iter()
            .filter_map(|w| w.expires.filter(|&e| e <= now).map(|e| (e, w.id)))
            .collect();
        due.sort();
        for &(_, id) in &due {
            let index = self.queue.iter().position(|w| w.id == id).unwrap();
            let waiter = self.queue.remove(index).unwrap();
            self.queued -= waiter.amount;
            let error = AcquireError::Timeout {
                amount: waiter.amount,
                timeout: waiter.timeout,
                retry_after: self.bucket.time_until_fits(self.queued + waiter.amount),
            };
            self.refuse_waiter(&waiter, now, error);
        }
        if self.queue.is_empty() {
            self.queued = 0.0;
        }
        !due.is_empty()
    }

    fn plan_wake(&mut self, now: Duration) {
        let head_due = self
            .queue
            .front()
            .map(|_| now + self.head_wait().min(FAR_FUTURE));
        let expiry = self.queue.iter().filter_map(|w| w.expires).min();
        self.wake_at = match (head_due, expiry) {
            (Some(due), Some(expiry)) => Some(due.min(expiry)),
            (due, expiry) => due.or(expiry),
        };
    }

    fn close(&mut self, now: Duration) {
        for waiter in std::mem::take(&mut self.queue) {
            self.refuse_waiter(&waiter, now, AcquireError::ShuttingDown);
        }
        self.queued = 0.0;
        self.record_queue_len();
        if self.state == ModelState::Draining {
            self.shutdown_answered = Some(now);
        }
        self.state = ModelState::Closed;
        self.wake_at = None;
    }

    fn refusal(&self, amount: f64, timeout: Option<Duration>) -> Option<AcquireError> {
        let wait = self.bucket.time_until_fits(self.queued + amount);
        if let Some(timeout) = timeout.filter(|&timeout| wait > timeout) {
            return Some(AcquireError::Timeout {
                amount,
                timeout,
                retry_after: wait,
            });
        }
        if self.max_queue != 0 && self.queue.len() >= self.max_queue {
            return Some(AcquireError::QueueFull {
                max_queue: self.max_queue,
                retry_after: self.head_wait(),
            });
        }
        None
    }

    fn acquire(&mut self, now: Duration, amount: f64, timeout: Option<Duration>) -> usize {
        let id = self.answers.len();
        self.answers.push(None);
        if self.state != ModelState::Open {
            self.refuse(id, now, AcquireError::ShuttingDown);
            return id;
        }
        if let Err(error) = self.bucket.check_amount(amount) {
            self.refuse(id, now, error);
            return id;
        }
        loop {
            self.serve(now);
            if self.queue.is_empty() && self.bucket.fits(amount) {
                self.bucket.fill(amount);
                self.stats.granted += 1;
                self.stats.granted_amount += amount;
                self.answer(id, now, Ok((amount, Duration::ZERO)));
                return id;
            }
            let Some(error) = self.refusal(amount, timeout) else {
                break;
            };
            // Without the waiters whose callers left, it may fit or be admitted.
            let removed = self.remove_where(|w| w.cancelled).len();
            if removed == 0 {
                self.refuse(id, now, error);
                return id;
            }
            self.stats.cancelled += removed as u64;
        }
        // As the actor's `Instant::checked_add`: a timeout too long to represent is none.
        let deadline = timeout.filter(|&t| t < FAR).map(|t| now + t);
        self.queue.push_back(ModelWaiter {
            id,
            amount,
            received: now,
            timeout: timeout.unwrap_or_default(),
            expires: deadline.map(|d| d + TICK),
            cancelled: false,
        });
        self.queued += amount;
        self.record_queue_len();
        if self.queue.len() == 1 {
            self.plan_wake(now);
        }
        id
    }

    fn cancel(&mut self, now: Duration, id: usize) {
        if self.answers[id].is_some() {
            return; // answered before its caller gave up
        }
        self.answers[id] = Some(Expected::Cancelled);
        let position = self.queue.iter().position(|w| w.id == id);
        let waiter = &mut self.queue[position.expect("an unanswered acquire waits")];
        waiter.cancelled = true;
        if position == Some(0) {
            // The timer watches the head's caller and wakes at once.
            self.serve(now);
        }
    }

    fn capacity(&mut self, now: Duration, amount: f64) -> Capacity {
        self.serve(now);
        let open = self.state == ModelState::Open;
        let wait = (open && self.bucket.check_amount(amount).is_ok())
            .then(|| self.bucket.time_until_fits(self.queued + amount));
        let mut capacity = self.template;
        capacity.has_capacity = self.bucket.fits(amount);
        capacity.needed_capacity = self.bucket.needed(amount);
        capacity.level = self.bucket.level();
        capacity.waiters = self.queue.len();
        capacity.queued_amount = self.queued;
        capacity.wait = wait;
        capacity
    }

    /// `Reconcile`: refused if closed or if a cost is not a finite number from 0 up, or if
    /// the debt would make the level infinite (after leaking up to now); otherwise the
    /// difference is refunded (never below zero) or charged, and the queue served.
    fn reconcile(
        &mut self,
        now: Duration,
        actual: f64,
        estimated: f64,
    ) -> Result<(), AcquireError> {
        let refuse = |model: &mut Self, error: AcquireError| {
            model.count_refusal(&error);
            Err(error)
        };
        if self.state == ModelState::Closed {
            return refuse(self, AcquireError::ShuttingDown);
        }
        let capacity = self.bucket.config().capacity();
        if let Some(amount) = [actual, estimated]
            .into_iter()
            .find(|cost| !(cost.is_finite() && *cost >= 0.0))
        {
            return refuse(self, AcquireError::InvalidAmount { amount, capacity });
        }
        self.bucket.leak(self.base + now);
        let difference = actual - estimated;
        if !(self.bucket.level() + difference).is_finite() {
            let error = AcquireError::InvalidAmount {
                amount: actual,
                capacity,
            };
            return refuse(self, error);
        }
        if difference < 0.0 {
            self.bucket.drain(-difference);
        } else {
            self.bucket.fill(difference);
        }
        self.serve(now);
        Ok(())
    }

    /// `Reconfigure`: the level leaked at the old rate is kept, the waiters above the new
    /// capacity are refused at once, and the queue is served at the new rate.
    fn reconfigure(&mut self, now: Duration, config: BucketConfig) {
        self.bucket.reconfigure(config, self.base + now);
        let capacity = config.capacity();
        for waiter in self.remove_where(|w| w.amount > capacity) {
            let error = AcquireError::InvalidAmount {
                amount: waiter.amount,
                capacity,
            };
            self.refuse_waiter(&waiter, now, error);
        }
        self.serve(now);
    }

    /// A waiter answered out of turn: counted as the refusal, or as cancelled if its caller
    /// has gone (nobody hears the answer).
    fn refuse_waiter(&mut self, waiter: &ModelWaiter, now: Duration, error: AcquireError) {
        if waiter.cancelled {
            self.stats.cancelled += 1;
        } else {
            self.count_refusal(&error);
            self.answer(waiter.id, now, Err(error));
        }
    }

    fn stats(&mut self, now: Duration) -> BucketStats {
        self.serve(now);
        self.stats
    }

    /// A restart under `Supervisor`: `started` grants what is due and re-arms the timer,
    /// unless the bucket is closed.
    fn restart(&mut self, now: Duration) {
        if self.state != ModelState::Closed {
            self.serve(now);
        }
    }

    /// A graceful shutdown: `Some(at)` if it is answered now, `None` if once served.
    fn shutdown(&mut self, now: Duration, graceful: bool) -> Option<Duration> {
        if !graceful {
            self.close(now);
            return Some(now);
        }
        match self.state {
            ModelState::Closed => Some(now),
            ModelState::Draining => None,
            ModelState::Open => {
                self.serve(now);
                if self.queue.is_empty() {
                    self.close(now);
                    Some(now)
                } else {
                    self.state = ModelState::Draining;
                    None
                }
            }
        }
    }
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_error(a: &AcquireError, e: &AcquireError) -> bool {
    match (a, e) {
        (
            AcquireError::InvalidAmount {
                amount: a,
                capacity: c,
            },
            AcquireError::InvalidAmount {
                amount: ea,
                capacity: ec,
            },
        ) => same_f64(*a, *ea) && c == ec,
        (a, e) => a == e,
    }
}

fn same_answer(actual: &AcquireAnswer, expected: &ModelAnswer) -> bool {
    match (actual, expected) {
        (Ok(a), Ok((amount, waited))) => same_f64(a.amount, *amount) && a.waited == *waited,
        (Err(a), Err(e)) => same_error(a, e),
        _ => false,
    }
}

fn same_capacity(a: &Capacity, e: &Capacity) -> bool {
    a.has_capacity == e.has_capacity
        && same_f64(a.needed_capacity, e.needed_capacity)
        && same_f64(a.level, e.level)
        && a.waiters == e.waiters
        && same_f64(a.queued_amount, e.queued_amount)
        && a.wait == e.wait
}

// ---------------------------------------------------------------------------------------
// Running a script against the actor
// ---------------------------------------------------------------------------------------

type Recorded = (Duration, Result<AcquireAnswer, MailboxError>);

/// Moves the paused clock to exactly `at` after `start` (a whole millisecond) and lets
/// everything due then run (the timer's grants, the callers recording their answers).
async fn step_to(start: Instant, at: Duration) {
    let now = start.elapsed();
    assert!(now <= at, "the clock at {now:?}, past the step at {at:?}");
    if at - now > TICK {
        // A sleep on the paused clock ends on the first tick after its deadline.
        tokio::time::sleep_until(start + at - TICK).await;
    }
    let now = start.elapsed();
    if now < at {
        tokio::time::advance(at - now).await;
    }
    settle().await;
    assert_eq!(start.elapsed(), at, "the clock moved while settling");
}

struct SentAcquire {
    /// The order of this request among all the script's events.
    seq: usize,
    at: Duration,
    request: Acquire,
    /// When its caller gave up, if it did before its answer.
    cancelled: Option<usize>,
    /// By when its answer had arrived, as `mark_answered` counts (the clock alone cannot
    /// tell the order of answers and queries at one instant).
    answered_by: Option<usize>,
    recorded: Option<Recorded>,
}

/// Sends `request` as script event `(seq, at)`, from a task that records its answer.
fn send_acquire(
    addr: &Addr<BucketActor>,
    start: Instant,
    (seq, at): (usize, Duration),
    request: Acquire,
    handles: &mut Vec<JoinHandle<Recorded>>,
    acquires: &mut Vec<SentAcquire>,
) {
    let reply = addr.send(request);
    handles.push(actix_rt::spawn(async move {
        let answer = reply.await;
        (start.elapsed(), answer)
    }));
    acquires.push(SentAcquire {
        seq,
        at,
        request,
        cancelled: None,
        answered_by: None,
        recorded: None,
    });
}

/// Marks the answers that arrived by `mark`: `2 * seq` while event `seq` ran, `2 * seq + 1`
/// after it, before the next one.
fn mark_answered(handles: &[JoinHandle<Recorded>], acquires: &mut [SentAcquire], mark: usize) {
    for (handle, sent) in handles.iter().zip(acquires) {
        if sent.answered_by.is_none() && handle.is_finished() {
            sent.answered_by = Some(mark);
        }
    }
}

struct SentReconcile {
    seq: usize,
    at: Duration,
    costs: Reconcile,
    actual: Result<Result<(), AcquireError>, MailboxError>,
    expected: Result<(), AcquireError>,
}

struct StatsQuery {
    seq: usize,
    at: Duration,
    actual: Result<BucketStats, MailboxError>,
    expected: BucketStats,
    /// Whether the actor may be gone (stopped for good, unsupervised).
    may_be_gone: bool,
}

struct Outcome {
    acquires: Vec<SentAcquire>,
    reconciles: Vec<SentReconcile>,
    reconfigures: Vec<(Duration, BucketConfig)>,
    stats: Vec<StatsQuery>,
    queries: Vec<(Capacity, Capacity)>,
    shutdown_at: Duration,
    shutdown_answered: Option<Duration>,
    expected_shutdown_answer: Option<Duration>,
    model_answers: Vec<Option<Expected>>,
}

async fn run(script: Script) -> Outcome {
    let config = BucketConfig::new(script.capacity, script.period).unwrap();
    let max_queue = script.max_queue;
    tokio::time::pause();
    let addr = if script.supervised {
        actix::Supervisor::start(move |_| BucketActor::new(config).max_queue(max_queue))
    } else {
        BucketActor::new(config).max_queue(max_queue).start()
    };
    // Templates for the non-exhaustive answer types, and the actor started.
    let template = addr.send(CapacityInfo::new(0.0)).await.unwrap();
    let start = Instant::now();
    let mut model = Model::new(config, script.max_queue, template);

    let mut handles = Vec::new();
    let mut acquires: Vec<SentAcquire> = Vec::new();
    let mut reconciles = Vec::new();
    let mut reconfigures = Vec::new();
    let mut stats = Vec::new();
    let mut queries = Vec::new();
    let mut seq = 0;
    let times = schedule(&script);
    let last = times.last().copied().unwrap_or_default();
    let shutdown_at = last + Duration::from_millis(script.shutdown_after.max(1));
    let mut steps: Vec<(Duration, Action)> = times
        .iter()
        .copied()
        .zip(script.steps.iter().map(|(_, action)| action.clone()))
        .collect();
    if script.needs_final_refund() {
        let refund = Action::Reconcile {
            actual: 0.0,
            estimated: f64::MAX,
        };
        steps.push((shutdown_at, refund));
    }
    for (at, action) in steps {
        step_to(start, at).await;
        mark_answered(&handles, &mut acquires, 2 * seq + 1);
        model.run_until(at);
        seq += 1;
        match action {
            Action::Acquire { amount, timeout } => {
                let request = Acquire { amount, timeout };
                send_acquire(
                    &addr,
                    start,
                    (seq, at),
                    request,
                    &mut handles,
                    &mut acquires,
                );
                model.acquire(at, amount, timeout);
            }
            Action::Cancel(n) => {
                if !handles.is_empty() {
                    let id = n % handles.len();
                    let answered = handles[id].is_finished();
                    handles[id].abort();
                    settle().await;
                    if !answered && acquires[id].cancelled.is_none() {
                        acquires[id].cancelled = Some(seq);
                    }
                    model.cancel(at, id);
                }
            }
            Action::Query(amount) => {
                let actual = addr.send(CapacityInfo::new(amount)).await.unwrap();
                queries.push((actual, model.capacity(at, amount)));
            }
            Action::Restart => {
                if script.supervised {
                    addr.send(SimulateRestart).await.unwrap();
                    settle().await;
                    model.restart(at);
                }
            }
            Action::Reconcile { actual, estimated } => {
                let costs = Reconcile::new(actual, estimated);
                let answer = addr.send(costs).await;
                reconciles.push(SentReconcile {
                    seq,
                    at,
                    costs,
                    actual: answer,
                    expected: model.reconcile(at, actual, estimated),
                });
            }
            Action::Reconfigure { capacity, period } => {
                let config = BucketConfig::new(capacity, period).unwrap();
                addr.send(Reconfigure(config)).await.unwrap();
                reconfigures.push((at, config));
                model.reconfigure(at, config);
            }
            Action::Stats => {
                let actual = addr.send(Stats).await;
                stats.push(StatsQuery {
                    seq,
                    at,
                    actual,
                    expected: model.stats(at),
                    may_be_gone: false,
                });
            }
        }
        assert_eq!(start.elapsed(), at, "answered at once");
        settle().await;
        mark_answered(&handles, &mut acquires, 2 * seq);
    }

    // The shutdown, then requests after it.
    step_to(start, shutdown_at).await;
    mark_answered(&handles, &mut acquires, 2 * seq + 1);
    model.run_until(shutdown_at);
    seq += 1;
    let shutdown = if script.graceful {
        Shutdown::graceful()
    } else {
        Shutdown::immediate()
    };
    let reply = addr.send(shutdown);
    let shutdown_handle = actix_rt::spawn(async move {
        reply.await.ok()?;
        Some(start.elapsed())
    });
    let mut expected_shutdown_answer = model.shutdown(shutdown_at, script.graceful);
    settle().await;
    for late in &script.late_requests {
        seq += 1;
        let gone = model.state == ModelState::Closed && !script.supervised;
        match *late {
            Late::Acquire => {
                let request = Acquire::new(0.0);
                let event = (seq, shutdown_at);
                send_acquire(&addr, start, event, request, &mut handles, &mut acquires);
                model.acquire(shutdown_at, 0.0, None);
            }
            Late::Reconcile { actual, estimated } => {
                let costs = Reconcile::new(actual, estimated);
                let answer = addr.send(costs).await;
                reconciles.push(SentReconcile {
                    seq,
                    at: shutdown_at,
                    costs,
                    actual: answer,
                    expected: model.reconcile(shutdown_at, actual, estimated),
                });
            }
            Late::Stats => {
                let actual = addr.send(Stats).await;
                stats.push(StatsQuery {
                    seq,
                    at: shutdown_at,
                    actual,
                    expected: model.stats(shutdown_at),
                    may_be_gone: gone,
                });
            }
        }
        settle().await;
        mark_answered(&handles, &mut acquires, 2 * seq);
    }
    model.run_until(FAR);
    if expected_shutdown_answer.is_none() {
        expected_shutdown_answer = model.shutdown_answered;
    }

    // Collect, with a guard against a wedged bucket (the paused clock makes it instant).
    let shutdown_answered = tokio::time::timeout(WEDGED, shutdown_handle)
        .await
        .expect("the shutdown is answered")
        .unwrap();
    seq += 1;
    for (sent, handle) in acquires.iter_mut().zip(handles) {
        sent.answered_by.get_or_insert(2 * seq);
        sent.recorded = tokio::time::timeout(WEDGED, handle)
            .await
            .expect("every request is answered")
            .ok();
    }

    // Under `Supervisor` the closed bucket still answers: its final counters.
    if script.supervised {
        let last_answer = model
            .answers
            .iter()
            .filter_map(|answer| match answer {
                Some(Expected::Answered(at, _)) => Some(*at),
                _ => None,
            })
            .chain(expected_shutdown_answer)
            .chain([start.elapsed(), shutdown_at])
            .max()
            .unwrap();
        let at = next_tick(last_answer) + TICK;
        step_to(start, at).await;
        model.run_until(at);
        seq += 1;
        let actual = addr.send(Stats).await;
        stats.push(StatsQuery {
            seq,
            at,
            actual,
            expected: model.stats(at),
            may_be_gone: false,
        });
    }
    Outcome {
        acquires,
        reconciles,
        reconfigures,
        stats,
        queries,
        shutdown_at,
        shutdown_answered,
        expected_shutdown_answer,
        model_answers: model.answers,
    }
}

/// The configurations in force over time: `(from, capacity, rate)`, in order.
fn config_timeline(script: &Script, outcome: &Outcome) -> Vec<(Duration, f64, f64)> {
    let first = BucketConfig::new(script.capacity, script.period).unwrap();
    let mut timeline = vec![(Duration::ZERO, first.capacity(), first.leak_rate())];
    for (at, config) in &outcome.reconfigures {
        timeline.push((*at, config.capacity(), config.leak_rate()));
    }
    timeline
}

/// What can leak between `from` and `to` at the rates in force.
fn leak_between(timeline: &[(Duration, f64, f64)], from: Duration, to: Duration) -> f64 {
    let mut leaked = 0.0;
    for (k, &(since, _, rate)) in timeline.iter().enumerate() {
        let until = timeline.get(k + 1).map_or(to, |next| next.0.min(to));
        let since = since.max(from);
        if until > since {
            leaked += rate * (until - since).as_secs_f64();
        }
    }
    leaked
}

fn check(script: &Script, outcome: &Outcome) -> Result<(), TestCaseError> {
    // The model's answers, one by one.
    for (id, (sent, expected)) in outcome
        .acquires
        .iter()
        .zip(&outcome.model_answers)
        .enumerate()
    {
        let (at, request) = (sent.at, sent.request);
        let expected = expected
            .clone()
            .unwrap_or_else(|| panic!("the model answered #{id}"));
        match (&sent.recorded, &expected) {
            (None, Expected::Cancelled) => {}
            (Some((when, Ok(answer))), Expected::Answered(e_when, e_answer)) => {
                prop_assert!(
                    when == e_when && same_answer(answer, e_answer),
                    "#{id} {request:?} sent at {at:?}: got {answer:?} at {when:?}, the model \
                     says {e_answer:?} at {e_when:?}"
                );
            }
            // A request after a finished shutdown may find the actor gone.
            (
                Some((_, Err(MailboxError::Closed))),
                Expected::Answered(_, Err(AcquireError::ShuttingDown)),
            ) if at >= outcome.shutdown_at => {}
            (recorded, expected) => prop_assert!(
                false,
                "#{id} {request:?} sent at {at:?}: got {recorded:?}, the model says {expected:?}"
            ),
        }
    }
    for sent in &outcome.reconciles {
        let ok = match (&sent.actual, &sent.expected) {
            (Ok(Ok(())), Ok(())) => true,
            (Ok(Err(a)), Err(e)) => same_error(a, e),
            (Err(MailboxError::Closed), Err(AcquireError::ShuttingDown)) => {
                sent.at >= outcome.shutdown_at
            }
            _ => false,
        };
        prop_assert!(
            ok,
            "{:?} at {:?}: got {:?}, the model says {:?}",
            sent.costs,
            sent.at,
            sent.actual,
            sent.expected
        );
    }
    for query in &outcome.stats {
        match &query.actual {
            Ok(actual) => prop_assert!(
                *actual == query.expected,
                "stats at {:?}: got {actual:?}, the model says {:?}",
                query.at,
                query.expected
            ),
            Err(error) => prop_assert!(query.may_be_gone, "stats at {:?}: {error}", query.at),
        }
    }
    for (actual, expected) in &outcome.queries {
        prop_assert!(
            same_capacity(actual, expected),
            "capacity: got {actual:?}, the model says {expected:?}"
        );
    }
    prop_assert_eq!(outcome.shutdown_answered, outcome.expected_shutdown_answer);

    // Independent invariants, on the answers alone.
    let timeline = config_timeline(script, outcome);
    let max_capacity = timeline.iter().map(|c| c.1).fold(0.0, f64::max);
    let max_rate = timeline.iter().map(|c| c.2).fold(0.0, f64::max);
    // What one grant may exceed the capacity by (`LeakyBucket::rounding_slack`).
    let slack = max_rate * 1e-9 + max_capacity * 1e-12;
    let capacity_at = |at: Duration| {
        // Any configuration in force at `at` (before or after a change at that instant).
        timeline
            .iter()
            .enumerate()
            .filter(|(k, c)| c.0 <= at && timeline.get(k + 1).map_or(true, |next| next.0 >= at))
            .map(|(_, c)| c.1)
            .fold(0.0, f64::max)
    };
    let refunds: Vec<(Duration, f64)> = outcome
        .reconciles
        .iter()
        .filter(|sent| matches!(sent.actual, Ok(Ok(()))))
        .map(|sent| (sent.at, sent.costs.estimated - sent.costs.actual))
        .filter(|&(_, refund)| refund > 0.0)
        .collect();
    let grants: Vec<(usize, Duration, f64)> = outcome
        .acquires
        .iter()
        .enumerate()
        .filter_map(|(id, sent)| match &sent.recorded {
            Some((when, Ok(Ok(granted)))) => Some((id, *when, granted.amount)),
            _ => None,
        })
        .collect();
    for pair in grants.windows(2) {
        prop_assert!(pair[0].1 <= pair[1].1, "FIFO: {pair:?}");
    }
    for i in 0..grants.len() {
        let mut sum = 0.0;
        for (n, grant) in grants[i..].iter().enumerate() {
            sum += grant.2;
            let (from, to) = (grants[i].1, grant.1);
            let refunded: f64 = refunds
                .iter()
                .filter(|(at, _)| (from..=to).contains(at))
                .map(|(_, refund)| refund)
                .sum();
            let bound = capacity_at(to) + leak_between(&timeline, from, to) + refunded;
            prop_assert!(
                sum <= bound + 1e-9 * bound + (n + 1) as f64 * slack,
                "conformance: {sum} from {from:?} to {to:?}, bound {bound} ({refunded} refunded)"
            );
        }
    }
    for sent in &outcome.acquires {
        let (at, request) = (sent.at, sent.request);
        let Some((when, Ok(answer))) = &sent.recorded else {
            continue;
        };
        match answer {
            Err(AcquireError::Timeout {
                timeout,
                retry_after,
                ..
            }) => {
                if *when == at {
                    prop_assert!(retry_after > timeout);
                } else {
                    // Admitted, then made late: one tick after its deadline.
                    prop_assert_eq!(*when, next_tick(at + *timeout + TICK));
                }
            }
            Ok(granted) => {
                if !script.graceful {
                    prop_assert!(*when <= outcome.shutdown_at, "granted after the shutdown");
                }
                prop_assert!(
                    at < outcome.shutdown_at,
                    "a request after the shutdown granted"
                );
                if let Some(timeout) = request.timeout.filter(|t| *t < FAR) {
                    prop_assert!(
                        *when <= next_tick(at + timeout) + TICK,
                        "granted at {when:?}, after its deadline {:?}",
                        at + timeout
                    );
                }
                prop_assert_eq!(*when - at, granted.waited);
            }
            Err(AcquireError::ShuttingDown) => {
                prop_assert!(
                    *when == at || *when == outcome.shutdown_at,
                    "refused at {when:?}"
                );
            }
            Err(AcquireError::InvalidAmount { amount, capacity }) if *when != at => {
                prop_assert!(
                    outcome
                        .reconfigures
                        .iter()
                        .any(|(t, c)| t == when && c.capacity() == *capacity),
                    "invalid at {when:?}, not at a reconfiguration"
                );
                prop_assert!(amount > capacity);
            }
            Err(_) => prop_assert_eq!(*when, at, "a refusal is answered at receipt"),
        }
    }

    // The counters against the answers seen before each query.
    let mut max_queue_len = 0;
    for query in &outcome.stats {
        let Ok(stats) = &query.actual else { continue };
        let before = |seq: usize| seq < query.seq;
        let mut seen = BucketStats::default();
        let (mut pending, mut pending_cancelled, mut gave_up) = (0, 0, 0u64);
        for sent in outcome.acquires.iter().filter(|sent| before(sent.seq)) {
            let cancelled = sent.cancelled.is_some_and(before);
            gave_up += u64::from(cancelled);
            match &sent.recorded {
                Some((_, Ok(answer))) if sent.answered_by.is_some_and(|s| s <= 2 * query.seq) => {
                    match answer {
                        Ok(granted) => {
                            seen.granted += 1;
                            seen.granted_amount += granted.amount;
                            seen.total_wait += granted.waited;
                        }
                        Err(AcquireError::Timeout { .. }) => seen.timed_out += 1,
                        Err(AcquireError::QueueFull { .. }) => seen.queue_full += 1,
                        Err(AcquireError::InvalidAmount { .. }) => seen.invalid += 1,
                        Err(AcquireError::ShuttingDown) => seen.shutting_down += 1,
                        Err(error) => prop_assert!(false, "{error}"),
                    }
                }
                Some((_, Err(_))) => {}
                _ => {
                    pending += 1;
                    pending_cancelled += usize::from(cancelled);
                }
            }
        }
        for sent in outcome.reconciles.iter().filter(|sent| before(sent.seq)) {
            match &sent.actual {
                Ok(Err(AcquireError::InvalidAmount { .. })) => seen.invalid += 1,
                Ok(Err(AcquireError::ShuttingDown)) => seen.shutting_down += 1,
                _ => {}
            }
        }
        let context = format!("stats at {:?}: {stats:?}, seen {seen:?}", query.at);
        prop_assert_eq!(stats.granted, seen.granted, "{}", context);
        prop_assert!(
            (stats.granted_amount - seen.granted_amount).abs() <= 1e-9 * seen.granted_amount,
            "{}",
            context
        );
        prop_assert_eq!(stats.total_wait, seen.total_wait, "{}", context);
        prop_assert_eq!(stats.queue_full, seen.queue_full, "{}", context);
        prop_assert_eq!(stats.shutting_down, seen.shutting_down, "{}", context);
        prop_assert!(stats.timed_out >= seen.timed_out, "{}", context);
        prop_assert!(stats.invalid >= seen.invalid, "{}", context);
        let unheard =
            stats.cancelled + (stats.timed_out - seen.timed_out) + (stats.invalid - seen.invalid);
        prop_assert!(unheard <= gave_up, "{} ({} gave up)", context, gave_up);
        prop_assert!(
            (pending - pending_cancelled..=pending).contains(&stats.queue_len),
            "{} ({} pending, {} of them cancelled)",
            context,
            pending,
            pending_cancelled
        );
        prop_assert!(stats.max_queue_len >= max_queue_len.max(stats.queue_len));
        max_queue_len = stats.max_queue_len;
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(2500))]

    #[test]
    fn the_actor_answers_as_the_reference_model_on_random_scripts(script in script()) {
        let outcome = actix_rt::System::new().block_on(run(script.clone()));
        check(&script, &outcome)?;
    }
}
