//! Model-based tests of the actor on paused time: random scripts of acquires (random
//! amounts, valid and invalid, random timeouts), cancellations at random moments,
//! capacity queries and (under `Supervisor`) restarts, ending in a graceful or an immediate shutdown and a few requests after
//! it. Every answer (its value and the paused-clock instant it arrives) is compared with a
//! small reference model of the README's semantics, and independent invariants are checked
//! on the answers alone:
//!
//! - every request gets exactly one answer (a cancelled one: none, or the one it had before);
//! - granted requests come in arrival order;
//! - the conformance bound holds over every run of grants;
//! - a `Timeout` is answered at receipt, with `retry_after > timeout`, and an admitted
//!   request with a timeout is granted by its deadline plus one tick (on the paused clock
//!   a queue can drift further: see the ignored test in admitted_timeouts_are_met.rs);
//! - nothing is granted after an immediate shutdown, nor to a request sent after a shutdown.
//!
//! The model keeps the queue, the shutdown states and the timer; for the arithmetic it uses
//! `LeakyBucket` (property-tested on its own in `bucket_arithmetic_properties.rs`), fed at
//! the same instants as the actor's, so that its decisions agree to the last bit.
//!
//! Script events happen on whole milliseconds, after everything due at that instant has run
//! (the timer's grants and the callers' records), so the order of events at one instant is
//! fixed; the timer's grants land on the first tick at or after their due instant. New message kinds
//! (reconcile, reconfigure, statistics) are new `Action` variants with a model method each.
//!
//! Cases: `RELIABILITY_CASES` (see `common::cases`).

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use actix::{Actor, MailboxError};
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketConfig, Capacity, CapacityInfo, Granted, LeakyBucket,
    Shutdown, SimulateRestart,
};
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
    late_requests: usize,
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

fn script() -> impl Strategy<Value = Script> {
    let capacity = prop_oneof![
        Just(1.0),
        Just(2.0),
        Just(2.5),
        Just(3.0),
        Just(5.0),
        Just(10.0)
    ];
    let period_ms = prop_oneof![
        Just(10u64),
        Just(50),
        Just(100),
        Just(250),
        Just(1000),
        Just(3000)
    ];
    let max_queue = prop_oneof![3 => Just(0usize), 1 => 1usize..6];
    let supervised = any::<bool>();
    (capacity, period_ms, max_queue, supervised).prop_flat_map(
        |(capacity, period_ms, max_queue, supervised)| {
            let period = Duration::from_millis(period_ms);
            let gap = prop_oneof![2 => Just(0u64), 3 => 0..=period_ms / 2 + 2];
            let action = prop_oneof![
                6 => (amount(capacity), timeout(period))
                    .prop_map(|(amount, timeout)| Action::Acquire { amount, timeout }),
                2 => any::<usize>().prop_map(Action::Cancel),
                1 => amount(capacity).prop_map(Action::Query),
                1 => Just(Action::Restart),
            ];
            (
                prop::collection::vec((gap, action), 1..25),
                0..=period_ms,
                any::<bool>(),
                0usize..3,
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
    queue: VecDeque<ModelWaiter>,
    state: ModelState,
    /// When the timer is due: the head's due instant as last planned.
    wake_at: Option<Duration>,
    /// The answer each acquire got, by id (`None`: none yet).
    answers: Vec<Option<Expected>>,
    /// When graceful shutdowns were answered.
    shutdown_answered: Option<Duration>,
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
            state: ModelState::Open,
            wake_at: None,
            answers: Vec::new(),
            shutdown_answered: None,
        }
    }

    fn answer(&mut self, id: usize, at: Duration, answer: ModelAnswer) {
        assert!(self.answers[id].is_none(), "the model answers once");
        self.answers[id] = Some(Expected::Answered(at, answer));
    }

    fn queued_amount(&self) -> f64 {
        self.queue.iter().map(|w| w.amount).sum()
    }

    fn head_wait(&self) -> Duration {
        self.queue.front().map_or(Duration::ZERO, |head| {
            self.bucket.time_until_fits(head.amount)
        })
    }

    /// Runs the timer up to `until`: every wake-up at the first tick at or after the due
    /// instant.
    fn run_until(&mut self, until: Duration) {
        while let Some(due) = self.wake_at {
            let fire = next_tick(due.min(FAR));
            if fire > until {
                break;
            }
            self.grant_due(fire);
        }
    }

    fn grant_due(&mut self, now: Duration) {
        self.bucket.leak(self.base + now);
        while let Some(head) = self.queue.front() {
            if !head.cancelled && !self.bucket.fits(head.amount) {
                break;
            }
            let waiter = self.queue.pop_front().unwrap();
            if waiter.cancelled {
                continue;
            }
            self.bucket.fill(waiter.amount);
            self.answer(waiter.id, now, Ok((waiter.amount, now - waiter.received)));
        }
        if self.queue.is_empty() && self.state == ModelState::Draining {
            self.close(now);
        } else {
            self.plan_wake(now);
        }
    }

    fn plan_wake(&mut self, now: Duration) {
        self.wake_at = (!self.queue.is_empty()).then(|| now + self.head_wait().min(FAR));
    }

    fn close(&mut self, now: Duration) {
        for waiter in std::mem::take(&mut self.queue) {
            if !waiter.cancelled {
                self.answer(waiter.id, now, Err(AcquireError::ShuttingDown));
            }
        }
        if self.state == ModelState::Draining {
            self.shutdown_answered = Some(now);
        }
        self.state = ModelState::Closed;
        self.wake_at = None;
    }

    fn refusal(&self, amount: f64, timeout: Option<Duration>) -> Option<AcquireError> {
        let wait = self.bucket.time_until_fits(self.queued_amount() + amount);
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
            self.answer(id, now, Err(AcquireError::ShuttingDown));
            return id;
        }
        if let Err(error) = self.bucket.check_amount(amount) {
            self.answer(id, now, Err(error));
            return id;
        }
        self.grant_due(now);
        let mut refusal = self.refusal(amount, timeout);
        if refusal.is_some() && self.queue.iter().any(|w| w.cancelled) {
            self.queue.retain(|w| !w.cancelled);
            self.grant_due(now);
            refusal = self.refusal(amount, timeout);
        }
        if let Some(error) = refusal {
            self.answer(id, now, Err(error));
            return id;
        }
        if self.queue.is_empty() && self.bucket.fits(amount) {
            self.bucket.fill(amount);
            self.answer(id, now, Ok((amount, Duration::ZERO)));
            return id;
        }
        self.queue.push_back(ModelWaiter {
            id,
            amount,
            received: now,
            cancelled: false,
        });
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
            self.grant_due(now);
        }
    }

    fn capacity(&mut self, now: Duration, amount: f64) -> Capacity {
        self.grant_due(now);
        let open = self.state == ModelState::Open;
        let queued_amount = self.queued_amount();
        let wait = (open && self.bucket.check_amount(amount).is_ok())
            .then(|| self.bucket.time_until_fits(queued_amount + amount));
        let mut capacity = self.template;
        capacity.has_capacity = self.bucket.fits(amount);
        capacity.needed_capacity = self.bucket.needed(amount);
        capacity.level = self.bucket.level();
        capacity.waiters = self.queue.len();
        capacity.queued_amount = queued_amount;
        capacity.wait = wait;
        capacity
    }

    /// A restart under `Supervisor`: `started` grants what is due and re-arms the timer,
    /// unless the bucket is closed.
    fn restart(&mut self, now: Duration) {
        if self.state != ModelState::Closed {
            self.grant_due(now);
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
                self.grant_due(now);
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

fn same_answer(actual: &AcquireAnswer, expected: &ModelAnswer) -> bool {
    match (actual, expected) {
        (Ok(a), Ok((amount, waited))) => same_f64(a.amount, *amount) && a.waited == *waited,
        (
            Err(AcquireError::InvalidAmount {
                amount: a,
                capacity: c,
            }),
            Err(AcquireError::InvalidAmount {
                amount: ea,
                capacity: ec,
            }),
        ) => same_f64(*a, *ea) && c == ec,
        (Err(a), Err(e)) => a == e,
        _ => false,
    }
}

fn same_capacity(a: &Capacity, e: &Capacity) -> bool {
    a.has_capacity == e.has_capacity
        && same_f64(a.needed_capacity, e.needed_capacity)
        && same_f64(a.level, e.level)
        && a.waiters == e.waiters
        // The actor keeps a running sum, the model sums afresh: they may differ in the
        // sign of a zero or by a subnormal.
        && (a.queued_amount - e.queued_amount).abs() <= 1e-300
        && match (a.wait, e.wait) {
            (Some(a), Some(e)) => a.max(e) - a.min(e) <= Duration::from_nanos(1),
            (a, e) => a == e,
        }
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

struct Outcome {
    acquires: Vec<(Duration, Acquire, Option<Recorded>)>,
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
    let mut sent: Vec<(Duration, Acquire)> = Vec::new();
    let mut queries = Vec::new();
    let times = schedule(&script);
    for ((_, action), &at) in script.steps.iter().zip(&times) {
        step_to(start, at).await;
        model.run_until(at);
        match action {
            Action::Acquire { amount, timeout } => {
                let request = Acquire {
                    amount: *amount,
                    timeout: *timeout,
                };
                let reply = addr.send(request);
                handles.push(actix_rt::spawn(async move {
                    let answer = reply.await;
                    (start.elapsed(), answer)
                }));
                sent.push((at, request));
                model.acquire(at, *amount, *timeout);
            }
            Action::Cancel(n) => {
                if !handles.is_empty() {
                    let id = n % handles.len();
                    handles[id].abort();
                    settle().await;
                    model.cancel(at, id);
                }
            }
            Action::Query(amount) => {
                let actual = addr.send(CapacityInfo::new(*amount)).await.unwrap();
                queries.push((actual, model.capacity(at, *amount)));
            }
            Action::Restart => {
                if script.supervised {
                    addr.send(SimulateRestart).await.unwrap();
                    settle().await;
                    model.restart(at);
                }
            }
        }
        settle().await;
    }

    // The shutdown, then requests after it.
    let last = times.last().copied().unwrap_or_default();
    let shutdown_at = last + Duration::from_millis(script.shutdown_after.max(1));
    step_to(start, shutdown_at).await;
    model.run_until(shutdown_at);
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
    for _ in 0..script.late_requests {
        let request = Acquire::new(0.0);
        let reply = addr.send(request);
        handles.push(actix_rt::spawn(async move {
            let answer = reply.await;
            (start.elapsed(), answer)
        }));
        sent.push((shutdown_at, request));
        model.acquire(shutdown_at, 0.0, None);
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
    let mut acquires = Vec::new();
    for ((at, request), handle) in sent.into_iter().zip(handles) {
        let recorded = tokio::time::timeout(WEDGED, handle)
            .await
            .expect("every request is answered")
            .ok();
        acquires.push((at, request, recorded));
    }
    Outcome {
        acquires,
        queries,
        shutdown_at,
        shutdown_answered,
        expected_shutdown_answer,
        model_answers: model.answers,
    }
}

fn check(script: &Script, outcome: &Outcome) -> Result<(), TestCaseError> {
    let rate = script.capacity / script.period.as_secs_f64();
    // The model's answers, one by one.
    for (id, ((at, request, recorded), expected)) in outcome
        .acquires
        .iter()
        .zip(&outcome.model_answers)
        .enumerate()
    {
        let expected = expected
            .clone()
            .unwrap_or_else(|| panic!("the model answered #{id}"));
        match (recorded, &expected) {
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
            ) if *at >= outcome.shutdown_at => {}
            (recorded, expected) => prop_assert!(
                false,
                "#{id} {request:?} sent at {at:?}: got {recorded:?}, the model says {expected:?}"
            ),
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
    let grants: Vec<(usize, Duration, f64)> = outcome
        .acquires
        .iter()
        .enumerate()
        .filter_map(|(id, (_, _, recorded))| match recorded {
            Some((when, Ok(Ok(granted)))) => Some((id, *when, granted.amount)),
            _ => None,
        })
        .collect();
    for pair in grants.windows(2) {
        prop_assert!(pair[0].1 <= pair[1].1, "FIFO: {pair:?}");
    }
    for i in 0..grants.len() {
        let mut sum = 0.0;
        for grant in &grants[i..] {
            sum += grant.2;
            let window = (grant.1 - grants[i].1).as_secs_f64();
            let bound = script.capacity + rate * window;
            prop_assert!(
                sum <= bound + 1e-9 * bound,
                "conformance: {sum} in {window} s"
            );
        }
    }
    for (at, request, recorded) in &outcome.acquires {
        let Some((when, Ok(answer))) = recorded else {
            continue;
        };
        match answer {
            Err(AcquireError::Timeout {
                timeout,
                retry_after,
                ..
            }) => {
                prop_assert_eq!(when, at, "a timeout is answered at receipt");
                prop_assert!(retry_after > timeout);
            }
            Ok(granted) => {
                if !script.graceful {
                    prop_assert!(*when <= outcome.shutdown_at, "granted after the shutdown");
                }
                prop_assert!(
                    *at < outcome.shutdown_at,
                    "a request after the shutdown granted"
                );
                if let Some(timeout) = request.timeout.filter(|t| *t < FAR) {
                    // By the deadline plus one tick (see admitted_timeouts_are_met.rs for a
                    // queue that drifts further on the paused clock).
                    prop_assert!(
                        *when <= next_tick(*at + timeout) + TICK,
                        "granted at {when:?}, after its deadline {:?}",
                        *at + timeout
                    );
                }
                prop_assert_eq!(*when - *at, granted.waited);
            }
            Err(AcquireError::ShuttingDown) => {
                prop_assert!(
                    when == at || *when == outcome.shutdown_at,
                    "refused at {when:?}"
                );
            }
            Err(_) => prop_assert_eq!(when, at, "a refusal is answered at receipt"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: common::cases(1500),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_actor_answers_as_the_reference_model_on_random_scripts(script in script()) {
        let outcome = actix_rt::System::new().block_on(run(script.clone()));
        check(&script, &outcome)?;
    }
}
