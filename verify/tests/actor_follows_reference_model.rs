//! Model-based test of `BucketActor` on tokio's paused clock: random scripts of acquires
//! (valid and invalid amounts, random timeouts), cancellations, capacity queries,
//! reconciliations (refunds, debts, invalid costs), reconfigurations, statistics queries
//! and (under `Supervisor`) crashes, ending in a graceful or an immediate shutdown and a
//! few requests after it. Every answer (its value and the paused-clock instant it
//! arrives), every `Capacity`, every `BucketStats` and the shutdown's reply are compared
//! with a reference model, and independent invariants are checked on the answers alone.
//!
//! # The model
//!
//! The model states the semantics on its own, with none of the crate's arithmetic: the
//! level of one bucket and a FIFO queue of waiters, each with its amount and deadline.
//!
//! - Numbers are exact integers. Amounts are counted in grains, 1/84,000 of a unit: every
//!   amount in a script is a multiple of 1/4 and every period divides 21,000 ms, so the
//!   level at any whole millisecond is a whole number of grains. (The subnormal amount
//!   `5e-324` counts as 0 grains, far below the bucket's tolerance of 2^-50 of the
//!   capacity.) Instants are whole milliseconds from the start; waits are whole
//!   nanoseconds, the exact quotient rounded up.
//! - The level starts at 0 and leaks continuously at the rate in force, never below 0. A
//!   request fits when `level + amount <= capacity`; it is granted at once if it fits and
//!   nobody waits, and otherwise joins the queue.
//! - The head's ideal grant instant is the first instant at which it fits. The paused
//!   clock moves in whole milliseconds, so the head is granted on the first millisecond at
//!   or after that instant, with the level leaked (and clamped at 0) up to it; the next
//!   head's instant follows from the level then. So the model states the tick rounding
//!   explicitly (rather than keeping to scripts whose instants are whole milliseconds): a
//!   head due between ticks and granted late while the bucket would have run empty loses
//!   that fraction of leak, as the bucket does. Periods of 7 and 10 ms make that common.
//! - A request that cannot be granted at once is refused `Timeout` (checked first) if its
//!   projected wait exceeds its timeout: the wait behind the queue as it stands, every
//!   waiter granted at its ideal instant, `(level + queued + amount - capacity) / rate`.
//!   It is refused `QueueFull` if `max_queue` waiters wait, with the wait until the head
//!   fits. A timeout of `Duration::MAX` (too long to represent) is none.
//! - A waiter whose deadline passes is answered `Timeout` on the first tick at or after
//!   `deadline + TIMER_TICK`, after the grants due then, in the order of deadlines (then of
//!   arrival), with the wait behind the waiters still queued.
//! - A caller who drops its request leaves a departed waiter. The bucket notices it when it
//!   reaches the head (at once if it is the head) and, with every other departed waiter,
//!   when a request would be refused on the queue as it stands (the request is then judged
//!   again), before a `CapacityInfo` answer, and before a waiter is answered at its
//!   deadline. Each is counted `cancelled` then (and in `queue_len` until then); an answer
//!   to a departed waiter (at a reconfiguration or a shutdown) counts as `cancelled` too. So the model predicts every
//!   counter exactly, `cancelled` included.
//! - `CapacityInfo` answers the level, `level + amount - capacity`, the waiters and the sum
//!   of their amounts, and the projected wait of a request for the amount (none for an
//!   invalid amount or once shut down).
//! - `Reconcile` adds `actual - estimated`, a float as the API takes costs, at once (never
//!   below 0) and serves the queue. A debt too large to leak in any run (`HUGE_DEBT`,
//!   2^980) is kept apart from the grains as a float (sums of such debts are exact): while
//!   one is owed nothing fits and every wait is `Duration::MAX`. Scripts clear it only by a
//!   refund of everything (`estimated: f64::MAX`); one that charges it refunds everything
//!   just before its shutdown, so that a graceful one can end.
//! - `Reconfigure` keeps the level; waiters above the new capacity are answered
//!   `InvalidAmount` at once. A crash under `Supervisor` changes nothing. A graceful
//!   shutdown refuses new requests and is answered when the queue is empty; an immediate
//!   one answers every waiter `ShuttingDown`.
//!
//! The floats the bucket reports (`level`, `needed_capacity`, `queued_amount`,
//! `granted_amount`) are compared with the exact values to 2^-40 of the capacity plus the
//! value; everything else (instants, waits, counts, booleans, the amounts answered)
//! exactly.
//!
//! # Independent invariants, on the answers alone
//!
//! - every request whose caller did not give up gets an answer;
//! - granted requests come in arrival order;
//! - the conformance bound holds over every run of grants, in grains (so within the
//!   tolerance of 2^-50 of the capacity), with refunds credited: for the grants from the
//!   i-th to the j-th, `sum <= capacity(t_j) + leak over [t_i, t_j] + refunds in [t_i,
//!   t_j]` (the capacity before or after a reconfiguration at `t_j`, the leak at the rates
//!   in force; debts only tighten it);
//! - a `Timeout` comes at receipt with `retry_after > timeout`, or on the first tick at or
//!   after `deadline + TIMER_TICK`; a request with a deadline is granted by then if at all;
//! - `InvalidAmount` comes at receipt, or at a reconfiguration to a capacity below it;
//! - nothing is granted after an immediate shutdown, nor to a request sent after a
//!   shutdown; `ShuttingDown` comes at receipt or at an immediate shutdown.
//!
//! # A known limit
//!
//! While a debt that dwarfs the capacity is owed (2^980, say), the rest of the level is
//! kept only to the precision of the debt (the debt takes the high half of the bucket's
//! double-float), so refunded in part, the level is off by a few units in its last place:
//! a wait comes out 1 ns long, and a grant due on a whole millisecond comes a tick late.
//! Example: capacity 3 per 100 ms; acquire 3 at 0 ms; at 1 ms a debt of 2^980; a
//! `CapacityInfo` every ms from 2 to 10 (each leaks); at 10 ms a refund of 2^980:
//! `CapacityInfo(3)` then answers level 2.700000000000002 and wait 90.000001 ms (exact:
//! 2.7 and 90 ms). Scripts therefore charge huge debts of 2^980 (`HUGE_DEBT`; a debt of `f64::MAX` has
//! its own test below) and clear them only by a refund of everything.
//!
//! Cases: 2,500, or `RELIABILITY_CASES`.

use std::collections::VecDeque;
use std::time::Duration;

use actix::{Actor, Addr, MailboxError};
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketConfig, BucketStats, Capacity, CapacityInfo, Granted,
    Reconcile, Reconfigure, Shutdown, Stats,
};
use actix_leaky_bucket_verify::{settle, Crash, TICK};
use actix_rt::task::JoinHandle;
use actix_rt::time::Instant;
use proptest::prelude::*;

/// The configuration of a property or model test: `default_cases` random cases in a normal
/// `cargo test`, or `RELIABILITY_CASES` when set (for long runs, e.g.
/// `RELIABILITY_CASES=100000`); failures are reported, not written to files in the tree.
fn proptest_config(default_cases: u32) -> proptest::test_runner::Config {
    let cases = match std::env::var("RELIABILITY_CASES") {
        Ok(value) => value
            .parse()
            .expect("RELIABILITY_CASES must be a whole number"),
        Err(_) => default_cases,
    };
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// Exact numbers
// ---------------------------------------------------------------------------------------

/// Grains per unit: 4 (amounts are quarters) times 21,000 (every period divides it, in ms).
const GRAINS: i128 = 4 * 21_000;
const NANOS_PER_MS: i128 = 1_000_000;
/// A debt that never leaks away in a run, 2^980, whose waits are still finite floats (see
/// the known bug and the second known difference in the module doc).
const HUGE_DEBT: f64 = f64::from_bits((1023 + 980) << 52);
const SUBNORMAL: f64 = 5e-324;
/// How far the model looks for the end of a script, in ms: no script waits longer.
const FAR: u64 = 100 * 365 * 86_400 * 1000;
/// How long the test waits (on the paused clock) for an answer before calling it wedged.
const WEDGED: Duration = Duration::from_secs(86_400);

/// `amount` in grains, to the nearest (exact for quarters; a subnormal is 0).
fn grains(amount: f64) -> i128 {
    (amount * GRAINS as f64).round() as i128
}

/// `n / d` rounded up, for `n >= 0` and `d > 0`.
fn ceil_div(n: i128, d: i128) -> i128 {
    (n + d - 1) / d
}

/// `grains` in units, rounded to the nearest float.
fn units(grains: i128) -> f64 {
    grains as f64 / GRAINS as f64
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The first whole millisecond at or after `at`.
fn tick_at_or_after(at: Duration) -> u128 {
    at.as_nanos().div_ceil(NANOS_PER_MS as u128)
}

/// Whether the bucket's float `got` is the exact `expected`, to 2^-40 of `capacity`
/// plus the value.
fn close(got: f64, expected: f64, capacity: f64) -> bool {
    got.to_bits() == expected.to_bits()
        || (got.is_nan() && expected.is_nan())
        || (got - expected).abs() <= (capacity + expected.abs()) * 2f64.powi(-40)
}

// ---------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Action {
    Acquire {
        amount: f64,
        timeout: Option<Duration>,
    },
    /// Cancels one of the last three acquires sent (if any), the `n % 3`-th from the
    /// newest: its caller drops the request.
    Cancel(usize),
    Query(f64),
    /// Under `Supervisor`, a crash and restart of the actor; ignored otherwise.
    Crash,
    Reconcile {
        actual: f64,
        estimated: f64,
    },
    Reconfigure {
        capacity: f64,
        period_ms: u64,
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
    period_ms: u64,
    max_queue: usize,
    /// Under `Supervisor` (restarts keep everything), or started plainly.
    supervised: bool,
    /// Each step: whole milliseconds after the previous one (0: the same instant), and what.
    steps: Vec<(u64, Action)>,
    /// Milliseconds after the last step, then the shutdown.
    shutdown_after: u64,
    graceful: bool,
    late_requests: Vec<Late>,
}

impl Script {
    /// The steps with their instants, in ms, and, if a huge debt may be owed, a refund of
    /// everything at `shutdown_at`, so that a graceful shutdown can drain the queue.
    fn timed_steps(&self, shutdown_at: u64) -> Vec<(u64, Action)> {
        let mut at = 0;
        let mut steps: Vec<(u64, Action)> = self
            .steps
            .iter()
            .map(|(gap, action)| {
                at += gap;
                (at, action.clone())
            })
            .collect();
        let may_owe_huge_debt = self.steps.iter().any(|(_, action)| {
            matches!(action, Action::Reconcile { actual, .. } if *actual == HUGE_DEBT)
        });
        if may_owe_huge_debt {
            let refund = Action::Reconcile {
                actual: 0.0,
                estimated: f64::MAX,
            };
            steps.push((shutdown_at, refund));
        }
        steps
    }

    fn shutdown_at(&self) -> u64 {
        let last: u64 = self.steps.iter().map(|(gap, _)| gap).sum();
        last + self.shutdown_after.max(1)
    }
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

/// Periods that divide 21,000 ms; 7 and 10 ms put grant instants between ticks.
fn periods_ms() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![
        Just(7u64),
        Just(10),
        Just(50),
        Just(100),
        Just(250),
        Just(1000),
        Just(3000)
    ]
}

fn quarters_up_to(most: f64) -> impl Strategy<Value = f64> {
    (0..=(most * 4.0) as u32).prop_map(|q| f64::from(q) / 4.0)
}

fn amount(capacity: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => quarters_up_to(capacity),
        2 => Just(1.0),
        1 => Just(capacity),
        1 => Just(-0.0),
        1 => Just(SUBNORMAL),
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.25),
            Just(-SUBNORMAL),
            Just(capacity + 0.25),
            Just(f64::MAX),
        ],
    ]
}

/// A cost for `Reconcile` short of a huge one: up to four times the capacity, or invalid.
fn cost(capacity: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => quarters_up_to(4.0 * capacity),
        1 => Just(-0.0),
        1 => Just(SUBNORMAL),
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.25),
            Just(-SUBNORMAL),
        ],
    ]
}

fn reconcile(capacity: f64) -> impl Strategy<Value = Action> {
    // A huge debt is charged whole, and cleared only by a refund of everything (see the
    // known differences in the module doc).
    let actual = prop_oneof![10 => cost(capacity), 1 => Just(HUGE_DEBT)];
    let estimated = prop_oneof![10 => cost(capacity), 1 => Just(f64::MAX)];
    (actual, estimated).prop_map(|(actual, estimated)| Action::Reconcile { actual, estimated })
}

/// A cost for a late `Reconcile`: finite and modest (a debt that never leaks would keep a
/// graceful shutdown from ending), or NaN.
fn modest_cost(capacity: f64) -> impl Strategy<Value = f64> {
    prop_oneof![6 => quarters_up_to(4.0 * capacity), 1 => Just(f64::NAN)]
}

fn timeout(period_ms: u64) -> impl Strategy<Value = Option<Duration>> {
    let span = period_ms * 3 + 10;
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(Duration::ZERO)),
        1 => Just(Some(Duration::MAX)),
        3 => (0..span).prop_map(|n| Some(ms(n))),
        2 => (0..span * 1_000_000).prop_map(|ns| Some(Duration::from_nanos(ns))),
    ]
}

fn action(capacity: f64, period_ms: u64) -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => (amount(capacity), timeout(period_ms))
            .prop_map(|(amount, timeout)| Action::Acquire { amount, timeout }),
        4 => any::<usize>().prop_map(Action::Cancel),
        3 => amount(capacity).prop_map(Action::Query),
        2 => Just(Action::Crash),
        4 => reconcile(capacity),
        2 => (capacities(), periods_ms())
            .prop_map(|(capacity, period_ms)| Action::Reconfigure { capacity, period_ms }),
        2 => Just(Action::Stats),
    ]
}

fn late(capacity: f64) -> impl Strategy<Value = Late> {
    prop_oneof![
        2 => Just(Late::Acquire),
        1 => (modest_cost(capacity), modest_cost(capacity))
            .prop_map(|(actual, estimated)| Late::Reconcile { actual, estimated }),
        1 => Just(Late::Stats),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    let max_queue = prop_oneof![3 => Just(0usize), 1 => 1usize..6];
    (capacities(), periods_ms(), max_queue, any::<bool>()).prop_flat_map(
        |(capacity, period_ms, max_queue, supervised)| {
            let gap = prop_oneof![2 => Just(0u64), 3 => 0..=period_ms / 2 + 2];
            (
                prop::collection::vec((gap, action(capacity, period_ms)), 1..30),
                0..=period_ms,
                any::<bool>(),
                prop::collection::vec(late(capacity), 0..4),
            )
                .prop_map(move |(steps, shutdown_after, graceful, late_requests)| {
                    Script {
                        capacity,
                        period_ms,
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

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// A capacity and a rate, in grains.
#[derive(Debug, Clone, Copy)]
struct Limits {
    capacity: f64,
    period_ms: u64,
    capacity_grains: i128,
    /// Grains leaked per millisecond (a whole number: the period divides 21,000 ms).
    per_ms: i128,
}

impl Limits {
    fn new(capacity: f64, period_ms: u64) -> Self {
        let capacity_grains = grains(capacity);
        let period = i128::from(period_ms);
        assert_eq!(
            capacity_grains % period,
            0,
            "{period_ms} ms must divide 21 s"
        );
        Self {
            capacity,
            period_ms,
            capacity_grains,
            per_ms: capacity_grains / period,
        }
    }

    fn config(&self) -> BucketConfig {
        BucketConfig::new(self.capacity, ms(self.period_ms)).unwrap()
    }
}

/// The level: `huge + grains / GRAINS` units. `huge` sums the huge debts and refunds
/// (exact: multiples of 2^971); while it is positive nothing fits.
#[derive(Debug, Clone, Copy, Default)]
struct Level {
    huge: f64,
    grains: i128,
}

impl Level {
    fn as_f64(&self) -> f64 {
        self.huge + units(self.grains)
    }

    /// Leaks `grains`: never below 0 (a huge debt absorbs any leak).
    fn leak(&mut self, grains: i128) {
        self.grains -= grains;
        if self.huge == 0.0 {
            self.grains = self.grains.max(0);
        }
    }

    /// Adds `difference` (a debt, or a refund if negative), never below 0.
    fn add(&mut self, difference: f64) {
        if difference.abs() >= HUGE_DEBT / 2.0 {
            self.huge += difference;
        } else {
            self.grains += grains(difference);
        }
        if self.huge < 0.0 {
            *self = Self::default();
        } else if self.huge == 0.0 {
            self.grains = self.grains.max(0);
        }
    }
}

type ModelAnswer = Result<(f64, Duration), AcquireError>;

#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// Answered with this, at this millisecond.
    Answered(u64, ModelAnswer),
    /// Its caller gave up before any answer.
    Cancelled,
}

#[derive(Debug)]
struct Waiter {
    id: usize,
    amount: f64,
    grains: i128,
    received: u64,
    timeout: Duration,
    /// When it expires, in ns from the start: a tick after its deadline.
    expires: Option<u128>,
    departed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Open,
    Draining,
    Closed,
}

struct Model {
    limits: Limits,
    max_queue: usize,
    /// Milliseconds from the start; the level is as of now.
    now: u64,
    level: Level,
    queue: VecDeque<Waiter>,
    state: State,
    /// The answer of each acquire, by id.
    answers: Vec<Option<Expected>>,
    /// When a graceful shutdown was answered.
    shutdown_answered: Option<u64>,
    stats: BucketStats,
    /// A `Capacity` from the actor (the type is non-exhaustive), to fill in.
    template: Capacity,
}

impl Model {
    fn new(limits: Limits, max_queue: usize, template: Capacity) -> Self {
        Self {
            limits,
            max_queue,
            now: 0,
            level: Level::default(),
            queue: VecDeque::new(),
            state: State::Open,
            answers: Vec::new(),
            shutdown_answered: None,
            stats: BucketStats::default(),
            template,
        }
    }

    // --- Arithmetic ---

    fn fits(&self, grains: i128) -> bool {
        self.level.huge == 0.0 && self.level.grains + grains <= self.limits.capacity_grains
    }

    /// The wait until `grains` (a sum behind the queue, or one amount) fits, if nothing
    /// else is granted: rounded up to the nanosecond; `Duration::MAX` behind a huge debt.
    fn wait(&self, grains: i128) -> Duration {
        if self.level.huge > 0.0 {
            return Duration::MAX;
        }
        let excess = self.level.grains + grains - self.limits.capacity_grains;
        let nanos = ceil_div(excess.max(0) * NANOS_PER_MS, self.limits.per_ms);
        Duration::from_nanos(nanos as u64)
    }

    /// The queued grains, of departed waiters too or not.
    fn queued(&self, with_departed: bool) -> i128 {
        let counted = |w: &&Waiter| with_departed || !w.departed;
        self.queue.iter().filter(counted).map(|w| w.grains).sum()
    }

    fn leak_to(&mut self, at: u64) {
        self.level
            .leak(self.limits.per_ms * i128::from(at - self.now));
        self.now = at;
    }

    // --- Time ---

    /// The next millisecond at which the bucket acts by itself: the head fits, or a
    /// waiter expires.
    fn next_event(&self) -> Option<u64> {
        let head = self.queue.front().and_then(|head| {
            (self.level.huge == 0.0).then(|| {
                let excess = self.level.grains + head.grains - self.limits.capacity_grains;
                self.now + ceil_div(excess.max(0), self.limits.per_ms) as u64
            })
        });
        let expiry = self.queue.iter().filter_map(|w| w.expires).min();
        let expiry = expiry
            .map(|nanos| nanos.div_ceil(NANOS_PER_MS as u128))
            .filter(|&tick| tick <= u128::from(FAR))
            .map(|tick| tick as u64);
        head.into_iter().chain(expiry).min()
    }

    /// Runs the bucket up to `at`: every grant and expiry due by then.
    fn advance_to(&mut self, at: u64) {
        self.run_until(at);
        self.leak_to(at);
    }

    /// Runs the bucket through every grant and expiry due by `until`, and stops at the
    /// last.
    fn run_until(&mut self, until: u64) {
        while let Some(tick) = self.next_event().filter(|&tick| tick <= until) {
            self.leak_to(tick);
            self.serve();
        }
    }

    /// Grants what fits, expires the waiters due, grants what then fits, and closes a
    /// drained bucket.
    fn serve(&mut self) {
        self.grant_fitting();
        // Before a timeout is answered, the departed waiters leave: its `retry_after`
        // counts only those still waiting.
        let now = u128::from(self.now) * NANOS_PER_MS as u128;
        let expiring = self
            .queue
            .iter()
            .any(|w| w.expires.is_some_and(|e| e <= now));
        let removed = expiring && self.forget_departed();
        if self.expire() | removed {
            self.grant_fitting();
        }
        self.stats.queue_len = self.queue.len();
        if self.state == State::Draining && self.queue.is_empty() {
            self.shutdown_answered = Some(self.now);
            self.close();
        }
    }

    fn grant_fitting(&mut self) {
        while let Some(head) = self.queue.front() {
            if !head.departed && !self.fits(head.grains) {
                break;
            }
            let waiter = self.queue.pop_front().unwrap();
            if waiter.departed {
                self.stats.cancelled += 1;
                continue;
            }
            let waited = ms(self.now - waiter.received);
            self.grant(waiter.id, waiter.amount, waited);
        }
        self.stats.queue_len = self.queue.len();
    }

    fn grant(&mut self, id: usize, amount: f64, waited: Duration) {
        self.level.grains += grains(amount);
        self.stats.granted += 1;
        self.stats.granted_amount += amount;
        self.stats.total_wait = self.stats.total_wait.saturating_add(waited);
        self.stats.max_wait = self.stats.max_wait.max(waited);
        self.answer(id, Ok((amount, waited)));
    }

    /// Answers `Timeout` to the waiters expired by now, in the order of expiry (then of
    /// arrival), each behind the waiters still queued; true if any.
    fn expire(&mut self) -> bool {
        let now = u128::from(self.now) * NANOS_PER_MS as u128;
        let mut due: Vec<(u128, usize)> = self
            .queue
            .iter()
            .filter_map(|w| w.expires.filter(|&e| e <= now).map(|e| (e, w.id)))
            .collect();
        due.sort_unstable();
        for &(_, id) in &due {
            let index = self.queue.iter().position(|w| w.id == id).unwrap();
            let waiter = self.queue.remove(index).unwrap();
            let error = AcquireError::Timeout {
                amount: waiter.amount,
                timeout: waiter.timeout,
                retry_after: self.wait(self.queued(true) + waiter.grains),
            };
            self.answer_out_of_turn(&waiter, error);
        }
        !due.is_empty()
    }

    // --- Answers and counters ---

    fn answer(&mut self, id: usize, answer: ModelAnswer) {
        assert!(self.answers[id].is_none(), "the model answers once");
        self.answers[id] = Some(Expected::Answered(self.now, answer));
    }

    fn refuse(&mut self, id: usize, error: AcquireError) {
        self.count_refusal(&error);
        self.answer(id, Err(error));
    }

    fn count_refusal(&mut self, error: &AcquireError) {
        let counter = match error {
            AcquireError::InvalidAmount { .. } => &mut self.stats.invalid,
            AcquireError::Timeout { .. } => &mut self.stats.timed_out,
            AcquireError::QueueFull { .. } => &mut self.stats.queue_full,
            AcquireError::ShuttingDown => &mut self.stats.shutting_down,
            other => panic!("the model never answers {other}"),
        };
        *counter += 1;
    }

    /// A waiter answered before its turn: counted as the refusal, or as cancelled if its
    /// caller has gone.
    fn answer_out_of_turn(&mut self, waiter: &Waiter, error: AcquireError) {
        if waiter.departed {
            self.stats.cancelled += 1;
        } else {
            self.refuse(waiter.id, error);
        }
    }

    /// Removes the departed waiters, counted as cancelled; true if there were any.
    fn forget_departed(&mut self) -> bool {
        let before = self.queue.len();
        self.queue.retain(|w| !w.departed);
        let removed = before - self.queue.len();
        self.stats.cancelled += removed as u64;
        self.stats.queue_len = self.queue.len();
        removed > 0
    }

    fn check_amount(&self, amount: f64) -> Result<i128, AcquireError> {
        if (0.0..=self.limits.capacity).contains(&amount) {
            Ok(grains(amount))
        } else {
            Err(AcquireError::InvalidAmount {
                amount,
                capacity: self.limits.capacity,
            })
        }
    }

    // --- Messages ---

    /// An `Acquire` received now; returns its id.
    fn acquire(&mut self, amount: f64, timeout: Option<Duration>) -> usize {
        let id = self.answers.len();
        self.answers.push(None);
        if self.state != State::Open {
            self.refuse(id, AcquireError::ShuttingDown);
            return id;
        }
        let grains = match self.check_amount(amount) {
            Ok(grains) => grains,
            Err(error) => {
                self.refuse(id, error);
                return id;
            }
        };
        loop {
            if self.queue.is_empty() && self.fits(grains) {
                self.grant(id, amount, Duration::ZERO);
                return id;
            }
            let Some(error) = self.refusal(grains, amount, timeout) else {
                break;
            };
            // Without the callers who left, it may fit, or wait.
            if !self.forget_departed() {
                self.refuse(id, error);
                return id;
            }
        }
        // A timeout too long to represent is none.
        let deadline = timeout.and_then(|t| ms(self.now).checked_add(t));
        self.queue.push_back(Waiter {
            id,
            amount,
            grains,
            received: self.now,
            timeout: timeout.unwrap_or_default(),
            expires: deadline.map(|d| d.saturating_add(TICK).as_nanos()),
            departed: false,
        });
        self.stats.queue_len = self.queue.len();
        self.stats.max_queue_len = self.stats.max_queue_len.max(self.queue.len());
        id
    }

    /// Why a request that cannot be granted at once may not wait, judged on the queue as
    /// it stands (departed waiters included).
    fn refusal(
        &self,
        grains: i128,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Option<AcquireError> {
        let wait = self.wait(self.queued(true) + grains);
        if let Some(timeout) = timeout.filter(|&timeout| wait > timeout) {
            return Some(AcquireError::Timeout {
                amount,
                timeout,
                retry_after: wait,
            });
        }
        if self.max_queue != 0 && self.queue.len() >= self.max_queue {
            let head = self.queue.front().map_or(0, |head| head.grains);
            return Some(AcquireError::QueueFull {
                max_queue: self.max_queue,
                retry_after: self.wait(head),
            });
        }
        None
    }

    /// The caller of acquire `id` drops its request now.
    fn cancel(&mut self, id: usize) {
        if self.answers[id].is_some() {
            return; // answered before its caller gave up
        }
        self.answers[id] = Some(Expected::Cancelled);
        let waiter = self.queue.iter_mut().find(|w| w.id == id);
        waiter.expect("an unanswered acquire waits").departed = true;
        if self.queue.front().is_some_and(|head| head.departed) {
            self.serve(); // the bucket watches the head's caller
        }
    }

    fn capacity(&mut self, amount: f64) -> Capacity {
        if self.forget_departed() {
            self.serve();
        }
        let needed = self.needed(amount);
        let valid = self.check_amount(amount).is_ok();
        let mut capacity = self.template;
        capacity.has_capacity = needed <= self.limits.capacity * 2f64.powi(-50);
        capacity.needed_capacity = needed;
        capacity.level = self.level.as_f64();
        capacity.waiters = self.queue.len();
        capacity.queued_amount = units(self.queued(false));
        capacity.wait = (self.state == State::Open && valid)
            .then(|| self.wait(self.queued(false) + grains(amount)));
        capacity
    }

    /// `level + amount - capacity`: exact for an amount of grains, else as floats add.
    fn needed(&self, amount: f64) -> f64 {
        let exact = amount.is_finite() && amount.abs() <= 1e6;
        if self.level.huge > 0.0 {
            self.level.huge + amount
        } else if exact {
            units(self.level.grains + grains(amount) - self.limits.capacity_grains)
        } else {
            (units(self.level.grains) - self.limits.capacity) + amount
        }
    }

    fn reconcile(&mut self, actual: f64, estimated: f64) -> Result<(), AcquireError> {
        let result = self.settle_costs(actual, estimated);
        if let Err(error) = &result {
            self.count_refusal(error);
        }
        result
    }

    fn settle_costs(&mut self, actual: f64, estimated: f64) -> Result<(), AcquireError> {
        if self.state == State::Closed {
            return Err(AcquireError::ShuttingDown);
        }
        let capacity = self.limits.capacity;
        let invalid = |amount| AcquireError::InvalidAmount { amount, capacity };
        if let Some(cost) = [actual, estimated]
            .into_iter()
            .find(|cost| !(cost.is_finite() && *cost >= 0.0))
        {
            return Err(invalid(cost));
        }
        let difference = actual - estimated;
        if !(self.level.as_f64() + difference).is_finite() {
            return Err(invalid(actual));
        }
        self.level.add(difference);
        self.serve();
        Ok(())
    }

    /// New limits from now on; waiters above the new capacity are refused at once.
    fn reconfigure(&mut self, limits: Limits) {
        self.limits = limits;
        let (too_big, kept): (VecDeque<_>, _) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|w| w.amount > limits.capacity);
        self.queue = kept;
        for waiter in too_big {
            let error = AcquireError::InvalidAmount {
                amount: waiter.amount,
                capacity: limits.capacity,
            };
            self.answer_out_of_turn(&waiter, error);
        }
        self.serve();
    }

    /// A shutdown received now: `Some(now)` if it is answered now, `None` if once the queue
    /// is served.
    fn shutdown(&mut self, graceful: bool) -> Option<u64> {
        match self.state {
            State::Closed => {}
            _ if !graceful || self.queue.is_empty() => self.close(),
            _ => {
                self.state = State::Draining;
                return None;
            }
        }
        Some(self.now)
    }

    /// Answers every waiter `ShuttingDown` and grants nothing more.
    fn close(&mut self) {
        for waiter in std::mem::take(&mut self.queue) {
            self.answer_out_of_turn(&waiter, AcquireError::ShuttingDown);
        }
        self.stats.queue_len = 0;
        self.state = State::Closed;
    }
}

// ---------------------------------------------------------------------------------------
// Running a script against the actor and the model side by side
// ---------------------------------------------------------------------------------------

type AcquireAnswer = Result<Granted, AcquireError>;
type Recorded = (Duration, Result<AcquireAnswer, MailboxError>);

struct SentAcquire {
    at: u64,
    request: Acquire,
    /// Its caller gave up before the answer.
    cancelled: bool,
    handle: Option<JoinHandle<Recorded>>,
    recorded: Option<Recorded>,
}

struct SentReconcile {
    at: u64,
    costs: Reconcile,
    actual: Result<Result<(), AcquireError>, MailboxError>,
    expected: Result<(), AcquireError>,
}

struct StatsQuery {
    at: u64,
    actual: Result<BucketStats, MailboxError>,
    expected: BucketStats,
    /// Whether the actor may be gone (stopped for good, unsupervised).
    may_be_gone: bool,
}

struct CapacityQuery {
    at: u64,
    amount: f64,
    actual: Capacity,
    expected: Capacity,
}

/// The actor, the model, and what was sent and answered.
struct Run {
    addr: Addr<BucketActor>,
    start: Instant,
    supervised: bool,
    model: Model,
    acquires: Vec<SentAcquire>,
    reconciles: Vec<SentReconcile>,
    /// When each configuration came into force (the first at 0).
    configs: Vec<(u64, Limits)>,
    stats: Vec<StatsQuery>,
    queries: Vec<CapacityQuery>,
    shutdown_at: u64,
    /// When the shutdown was answered, and when the model says.
    shutdown_answered: Option<Duration>,
    expected_shutdown: Option<u64>,
}

impl Run {
    async fn start(script: &Script) -> Self {
        let limits = Limits::new(script.capacity, script.period_ms);
        let (config, max_queue) = (limits.config(), script.max_queue);
        tokio::time::pause();
        let addr = if script.supervised {
            actix::Supervisor::start(move |_| BucketActor::new(config).max_queue(max_queue))
        } else {
            BucketActor::new(config).max_queue(max_queue).start()
        };
        // The actor started, and a template of the non-exhaustive answer.
        let template = addr.send(CapacityInfo::new(0.0)).await.unwrap();
        Self {
            addr,
            start: Instant::now(),
            supervised: script.supervised,
            model: Model::new(limits, max_queue, template),
            acquires: Vec::new(),
            reconciles: Vec::new(),
            configs: vec![(0, limits)],
            stats: Vec::new(),
            queries: Vec::new(),
            shutdown_at: script.shutdown_at(),
            shutdown_answered: None,
            expected_shutdown: None,
        }
    }

    /// Moves the paused clock to exactly `at` ms and lets everything due then run (the
    /// timer's grants, the callers recording their answers); the model likewise.
    async fn step_to(&mut self, at: u64) {
        let at_duration = ms(at);
        let now = self.start.elapsed();
        assert!(now <= at_duration, "the clock at {now:?}, past {at} ms");
        if at_duration - now > TICK {
            // A sleep on the paused clock ends on the first tick after its deadline.
            tokio::time::sleep_until(self.start + at_duration - TICK).await;
        }
        let now = self.start.elapsed();
        if now < at_duration {
            tokio::time::advance(at_duration - now).await;
        }
        settle().await;
        assert_eq!(self.start.elapsed(), at_duration, "the clock moved");
        self.model.advance_to(at);
    }

    async fn act(&mut self, action: &Action) {
        match *action {
            Action::Acquire { amount, timeout } => self.acquire(Acquire { amount, timeout }),
            Action::Cancel(n) => self.cancel(n).await,
            Action::Query(amount) => self.query(amount).await,
            Action::Crash => self.crash().await,
            Action::Reconcile { actual, estimated } => self.reconcile(actual, estimated).await,
            Action::Reconfigure {
                capacity,
                period_ms,
            } => self.reconfigure(Limits::new(capacity, period_ms)).await,
            Action::Stats => self.query_stats().await,
        }
        settle().await;
        assert_eq!(self.start.elapsed(), ms(self.model.now), "answered at once");
    }

    /// Sends `request` from a task of its own that records its answer and when it came.
    fn acquire(&mut self, request: Acquire) {
        let reply = self.addr.send(request);
        let start = self.start;
        let handle = actix_rt::spawn(async move {
            let answer = reply.await;
            (start.elapsed(), answer)
        });
        self.acquires.push(SentAcquire {
            at: self.model.now,
            request,
            cancelled: false,
            handle: Some(handle),
            recorded: None,
        });
        self.model.acquire(request.amount, request.timeout);
    }

    async fn cancel(&mut self, n: usize) {
        if self.acquires.is_empty() {
            return;
        }
        let id = self.acquires.len() - 1 - n % self.acquires.len().min(3);
        let sent = &mut self.acquires[id];
        let handle = sent.handle.as_ref().unwrap();
        sent.cancelled |= !handle.is_finished();
        handle.abort();
        settle().await;
        self.model.cancel(id);
    }

    async fn query(&mut self, amount: f64) {
        let actual = self.addr.send(CapacityInfo::new(amount)).await.unwrap();
        let expected = self.model.capacity(amount);
        let at = self.model.now;
        self.queries.push(CapacityQuery {
            at,
            amount,
            actual,
            expected,
        });
    }

    async fn crash(&mut self) {
        if self.supervised {
            self.addr.send(Crash).await.unwrap();
        }
    }

    async fn reconcile(&mut self, actual: f64, estimated: f64) {
        let costs = Reconcile::new(actual, estimated);
        let answer = self.addr.send(costs).await;
        self.reconciles.push(SentReconcile {
            at: self.model.now,
            costs,
            actual: answer,
            expected: self.model.reconcile(actual, estimated),
        });
    }

    async fn reconfigure(&mut self, limits: Limits) {
        self.addr.send(Reconfigure(limits.config())).await.unwrap();
        self.configs.push((self.model.now, limits));
        self.model.reconfigure(limits);
    }

    async fn query_stats(&mut self) {
        let may_be_gone = self.model.state == State::Closed && !self.supervised;
        let actual = self.addr.send(Stats).await;
        self.stats.push(StatsQuery {
            at: self.model.now,
            actual,
            expected: self.model.stats,
            may_be_gone,
        });
    }

    /// Sends the shutdown now, from a task that records when it is answered.
    fn shutdown(&mut self, graceful: bool) -> JoinHandle<Option<Duration>> {
        let shutdown = if graceful {
            Shutdown::graceful()
        } else {
            Shutdown::immediate()
        };
        let reply = self.addr.send(shutdown);
        let start = self.start;
        self.expected_shutdown = self.model.shutdown(graceful);
        actix_rt::spawn(async move {
            reply.await.ok()?;
            Some(start.elapsed())
        })
    }

    async fn late(&mut self, late: &Late) {
        match *late {
            Late::Acquire => self.acquire(Acquire::new(0.0)),
            Late::Reconcile { actual, estimated } => self.reconcile(actual, estimated).await,
            Late::Stats => self.query_stats().await,
        }
        settle().await;
    }

    /// Waits for every answer (the paused clock makes it instant), with a guard against a
    /// wedged bucket; then, under `Supervisor`, asks the closed bucket for its counters.
    async fn finish(&mut self, shutdown: JoinHandle<Option<Duration>>) {
        self.model.run_until(FAR);
        self.expected_shutdown = self.expected_shutdown.or(self.model.shutdown_answered);
        self.shutdown_answered = tokio::time::timeout(WEDGED, shutdown)
            .await
            .expect("the shutdown is answered")
            .unwrap();
        for sent in &mut self.acquires {
            let handle = sent.handle.take().unwrap();
            sent.recorded = tokio::time::timeout(WEDGED, handle)
                .await
                .expect("every request is answered")
                .ok();
        }
        if self.supervised {
            let last = self.start.elapsed().as_millis() as u64;
            self.step_to(last.max(self.model.now) + 1).await;
            self.query_stats().await;
        }
    }
}

async fn run(script: &Script) -> Run {
    let mut run = Run::start(script).await;
    for (at, action) in script.timed_steps(run.shutdown_at) {
        run.step_to(at).await;
        run.act(&action).await;
    }
    run.step_to(run.shutdown_at).await;
    let shutdown = run.shutdown(script.graceful);
    settle().await;
    for late in &script.late_requests {
        run.late(late).await;
    }
    run.finish(shutdown).await;
    run
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

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

fn same_capacity(a: &Capacity, e: &Capacity, capacity: f64) -> bool {
    a.has_capacity == e.has_capacity
        && close(a.needed_capacity, e.needed_capacity, capacity)
        && close(a.level, e.level, capacity)
        && a.waiters == e.waiters
        && close(a.queued_amount, e.queued_amount, capacity)
        && a.wait == e.wait
}

fn same_stats(a: &BucketStats, e: &BucketStats) -> bool {
    let exact = |s: &BucketStats| {
        let mut s = *s;
        s.granted_amount = 0.0;
        s
    };
    exact(a) == exact(e) && close(a.granted_amount, e.granted_amount, 0.0)
}

/// Whether the actor's answer to acquire `sent` is the model's.
fn agrees(run: &Run, sent: &SentAcquire, expected: &Expected) -> bool {
    match (&sent.recorded, expected) {
        (None, Expected::Cancelled) => sent.cancelled,
        (Some((when, Ok(Ok(granted)))), Expected::Answered(at, Ok((amount, waited)))) => {
            *when == ms(*at)
                && same_f64(granted.amount, *amount)
                && granted.waited == *waited
                && granted.granted_at == run.start + ms(*at)
        }
        (Some((when, Ok(Err(error)))), Expected::Answered(at, Err(e))) => {
            *when == ms(*at) && same_error(error, e)
        }
        // A request after a finished shutdown may find the actor gone.
        (Some((_, Err(MailboxError::Closed))), Expected::Answered(_, Err(e))) => {
            *e == AcquireError::ShuttingDown && !run.supervised && sent.at >= run.shutdown_at
        }
        _ => false,
    }
}

fn check_against_model(run: &Run) -> Result<(), TestCaseError> {
    let capacity = run.configs.iter().map(|c| c.1.capacity).fold(0.0, f64::max);
    for (id, (sent, expected)) in run.acquires.iter().zip(&run.model.answers).enumerate() {
        let expected = expected.as_ref().expect("the model answers every request");
        prop_assert!(
            agrees(run, sent, expected),
            "#{id} {:?} sent at {} ms: got {:?}, the model says {expected:?}",
            sent.request,
            sent.at,
            sent.recorded
        );
    }
    for sent in &run.reconciles {
        let agree = match (&sent.actual, &sent.expected) {
            (Ok(Ok(())), Ok(())) => true,
            (Ok(Err(a)), Err(e)) => same_error(a, e),
            (Err(MailboxError::Closed), Err(AcquireError::ShuttingDown)) => {
                !run.supervised && sent.at >= run.shutdown_at
            }
            _ => false,
        };
        prop_assert!(
            agree,
            "{:?} at {} ms: got {:?}, the model says {:?}",
            sent.costs,
            sent.at,
            sent.actual,
            sent.expected
        );
    }
    for query in &run.stats {
        match &query.actual {
            Ok(actual) => prop_assert!(
                same_stats(actual, &query.expected),
                "stats at {} ms: got {actual:?}, the model says {:?}",
                query.at,
                query.expected
            ),
            Err(error) => prop_assert!(query.may_be_gone, "stats at {} ms: {error}", query.at),
        }
    }
    for query in &run.queries {
        prop_assert!(
            same_capacity(&query.actual, &query.expected, capacity),
            "capacity of {} at {} ms: got {:?}, the model says {:?}",
            query.amount,
            query.at,
            query.actual,
            query.expected
        );
    }
    prop_assert_eq!(run.shutdown_answered, run.expected_shutdown.map(ms));
    Ok(())
}

/// The grants, in arrival order: (id, ms, grains).
fn grants(run: &Run) -> Vec<(usize, u64, i128)> {
    run.acquires
        .iter()
        .enumerate()
        .filter_map(|(id, sent)| match &sent.recorded {
            Some((when, Ok(Ok(granted)))) => {
                Some((id, when.as_millis() as u64, grains(granted.amount)))
            }
            _ => None,
        })
        .collect()
}

/// The conformance bound, in grains: for every run of grants, their sum is at most the
/// capacity at the last one, plus the leak over the run, plus the refunds in it.
fn check_conformance(run: &Run) -> Result<(), TestCaseError> {
    let configs = &run.configs;
    let capacity_at = |at: u64| {
        // Any configuration in force at `at` (before or after a change at that instant).
        (0..configs.len())
            .filter(|&k| configs[k].0 <= at && configs.get(k + 1).is_none_or(|c| c.0 >= at))
            .map(|k| configs[k].1.capacity_grains)
            .max()
            .unwrap()
    };
    let leak_between = |from: u64, to: u64| -> i128 {
        (0..configs.len())
            .map(|k| {
                let since = configs[k].0.max(from);
                let until = configs.get(k + 1).map_or(to, |c| c.0.min(to));
                configs[k].1.per_ms * i128::from(until.saturating_sub(since))
            })
            .sum()
    };
    let refunds: Vec<(u64, i128)> = run
        .reconciles
        .iter()
        .filter(|sent| matches!(sent.actual, Ok(Ok(()))))
        .map(|sent| {
            let refund = sent.costs.estimated - sent.costs.actual;
            let huge = refund >= HUGE_DEBT / 2.0;
            (sent.at, if huge { i128::MAX } else { grains(refund) })
        })
        .filter(|&(_, refund)| refund > 0)
        .collect();
    let grants = grants(run);
    for pair in grants.windows(2) {
        prop_assert!(pair[0].1 <= pair[1].1, "FIFO: {pair:?}");
    }
    for i in 0..grants.len() {
        let mut sum = 0;
        for grant in &grants[i..] {
            sum += grant.2;
            let (from, to) = (grants[i].1, grant.1);
            let refunded = refunds
                .iter()
                .filter(|(at, _)| (from..=to).contains(at))
                .fold(0, |sum, (_, refund)| refund.saturating_add(sum));
            let bound = refunded.saturating_add(capacity_at(to) + leak_between(from, to));
            prop_assert!(
                sum <= bound,
                "conformance: {} from {from} to {to} ms, bound {} ({} refunded)",
                units(sum),
                units(bound),
                units(refunded)
            );
        }
    }
    Ok(())
}

/// When each kind of answer may come.
fn check_answer_timing(script: &Script, run: &Run) -> Result<(), TestCaseError> {
    for (id, sent) in run.acquires.iter().enumerate() {
        let (at, request) = (ms(sent.at), sent.request);
        let Some((when, answer)) = &sent.recorded else {
            prop_assert!(sent.cancelled, "#{id} {request:?} got no answer");
            continue;
        };
        let Ok(answer) = answer else { continue };
        // The tick it expires on, in ms.
        let expires = request
            .timeout
            .and_then(|timeout| at.checked_add(timeout))
            .map(|deadline| tick_at_or_after(deadline.saturating_add(TICK)));
        match answer {
            Err(AcquireError::Timeout {
                timeout,
                retry_after,
                ..
            }) => {
                if *when == at {
                    prop_assert!(retry_after > timeout, "#{id}: {answer:?}");
                } else {
                    prop_assert_eq!(Some(when.as_millis()), expires, "#{}: {:?}", id, answer);
                }
            }
            Ok(granted) => {
                let shutdown = ms(run.shutdown_at);
                prop_assert!(
                    at < shutdown,
                    "#{id}: granted though sent after the shutdown"
                );
                prop_assert!(
                    script.graceful || *when <= shutdown,
                    "#{id}: granted at {when:?}, after an immediate shutdown"
                );
                prop_assert!(expires.is_none_or(|expires| when.as_millis() <= expires));
                prop_assert_eq!(*when - at, granted.waited);
            }
            Err(AcquireError::ShuttingDown) => prop_assert!(
                *when == at || (!script.graceful && *when == ms(run.shutdown_at)),
                "#{id}: refused at {when:?}"
            ),
            Err(AcquireError::InvalidAmount { amount, capacity }) if *when != at => {
                let reconfigured = run.configs.iter().any(|(t, limits)| {
                    ms(*t) == *when && limits.capacity == *capacity && amount > capacity
                });
                prop_assert!(reconfigured, "#{id}: {answer:?} at {when:?}");
            }
            Err(error) => prop_assert_eq!(*when, at, "#{}: {} comes at receipt", id, error),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(2500))]

    #[test]
    fn the_actor_answers_as_the_reference_model_on_random_scripts(script in script()) {
        let run = actix_rt::System::new().block_on(run(&script));
        check_against_model(&run)?;
        check_conformance(&run)?;
        check_answer_timing(&script, &run)?;
    }
}

/// The known bug of the module doc, in its smallest form. The bucket runs on a thread of its
/// own, watched from here: it wedges.
#[test]
fn a_debt_of_f64_max_leaves_waits_of_duration_max() {
    let (report, reports) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            tokio::time::pause();
            let config = BucketConfig::new(1.0, ms(10)).unwrap();
            let addr = BucketActor::new(config).start();
            addr.send(Reconcile::new(f64::MAX, 0.0))
                .await
                .unwrap()
                .unwrap();
            let capacity = addr.send(CapacityInfo::new(1.0)).await.unwrap();
            report.send(format!("wait {:?}", capacity.wait)).unwrap();
            // A request waits behind the debt (the timer runs), until a refund of everything.
            let waiting = addr.send(Acquire::new(1.0));
            settle().await;
            addr.send(Reconcile::new(0.0, f64::MAX))
                .await
                .unwrap()
                .unwrap();
            let answer = waiting.await.unwrap().map(|granted| granted.waited);
            report.send(format!("answer {answer:?}")).unwrap();
        });
    });
    let next = || {
        let report = reports.recv_timeout(Duration::from_secs(5));
        report.unwrap_or_else(|_| "nothing: the bucket is wedged".to_owned())
    };
    assert_eq!(next(), format!("wait {:?}", Some(Duration::MAX)));
    let granted_at_once: Result<Duration, AcquireError> = Ok(Duration::ZERO);
    assert_eq!(next(), format!("answer {granted_at_once:?}"));
}
