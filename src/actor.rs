use std::mem;
use std::task::Context as TaskContext;
use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Supervised};
use actix_rt::time::Instant;
use log::{debug, info, warn};

use crate::pacer::Pacer;
use crate::queue::{WaitQueue, Waiter};
use crate::reply::{Inbox, Reply};
use crate::{
    Acquire, AcquireError, BucketConfig, BucketStats, Capacity, CapacityInfo, Granted, LeakyBucket,
    Reconcile, Reconfigure, Shutdown, SimulateRestart, Stats,
};

/// A leaky-bucket rate limiter as an actix actor.
///
/// It handles its messages one at a time, in the order its mailbox delivers them:
/// [`Acquire`] requests are granted strictly first come, first served, at the bucket's
/// leak rate; [`CapacityInfo`] and [`Stats`] report; [`Reconcile`] and [`Reconfigure`]
/// adjust; [`Shutdown`] stops it.
///
/// ```
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};
///
/// #[actix_rt::main]
/// async fn main() {
///     tokio::time::pause(); // the doctest runs on paused time: waits take no wall time
///     let start = tokio::time::Instant::now();
///     let config = BucketConfig::new(2.0, Duration::from_secs(1)).unwrap();
///     let bucket = BucketActor::new(config).start();
///
///     for _ in 0..3 {
///         bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
///     }
///     // A burst of 2 at once, then the third after half a second.
///     assert_eq!(start.elapsed(), Duration::from_millis(500));
/// }
/// ```
pub struct BucketActor {
    bucket: LeakyBucket,
    max_queue: usize,
    queue: WaitQueue,
    state: State,
    stats: BucketStats,
    /// When the head of the queue is due or the first waiter expires; `None` while
    /// nobody waits.
    wake_at: Option<Instant>,
    pacer_running: bool,
    precise_timing: bool,
    /// `Acquire` messages handled since the bucket last let the runtime run other tasks.
    acquires_this_turn: u32,
}

/// Actix handles a whole mailbox in one poll. After this many requests the bucket yields
/// to the runtime, so callers on its thread see their grants when they are made, not all
/// at once at the end of a long drain.
const ACQUIRES_PER_TURN: u32 = 64;

enum State {
    Open,
    /// A graceful shutdown serves the queue; these wait for its end.
    Draining(Vec<Inbox<()>>),
    Closed,
}

type AcquireResult = Result<Granted, AcquireError>;

impl BucketActor {
    /// An empty bucket with an unbounded queue.
    pub fn new(config: BucketConfig) -> Self {
        Self {
            bucket: LeakyBucket::new(config, Instant::now().into_std()),
            max_queue: 0,
            queue: WaitQueue::default(),
            state: State::Open,
            stats: BucketStats::default(),
            wake_at: None,
            pacer_running: false,
            precise_timing: true,
            acquires_this_turn: 0,
        }
    }

    /// Bounds the queue to `max_queue` waiters (0, the default, is unbounded): a request
    /// that would wait beyond it is answered [`AcquireError::QueueFull`] at once.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Whether grants come at their due instant (`true`, the default) or on tokio's
    /// timer alone (`false`).
    ///
    /// Tokio's timer can fire up to 2 ms late, so by default the bucket sleeps until 2 ms
    /// before a grant is due and yields to the runtime until the due instant: exact, at the
    /// price of a busy thread from about 500 grants per second up. With `false` it only
    /// sleeps: each grant may come up to 2 ms late, and the long-run rate stays exact as
    /// long as the capacity absorbs that lateness (`leak_rate × 2 ms <= capacity −
    /// amount`); beyond that, the leak lost while the bucket stood empty lowers the rate.
    pub fn precise_timing(mut self, precise: bool) -> Self {
        self.precise_timing = precise;
        self
    }

    // Inlined into its handler: one call fewer on every request (22 of 2674 instructions
    // pipelined, BENCHMARKS.md).
    #[inline(always)]
    fn acquire(&mut self, request: Acquire, ctx: &mut Context<Self>) -> Reply<AcquireResult> {
        let amount = request.amount;
        if !matches!(self.state, State::Open) {
            return self.refuse(AcquireError::ShuttingDown);
        }
        if let Err(error) = self.bucket.check_amount(amount) {
            return self.refuse(error);
        }
        let now = Instant::now();
        self.catch_up(now, ctx);
        if self.queue.is_empty() && self.bucket.fits(amount) {
            self.bucket.fill(amount);
            self.stats.record_grant(amount, Duration::ZERO);
            debug!("granted {amount} at once, level {}", self.bucket.level());
            return Reply::now(Ok(Granted {
                amount,
                waited: Duration::ZERO,
                granted_at: now,
            }));
        }
        self.queue_or_refuse(request, now, ctx)
    }

    /// The rest of [`acquire`](Self::acquire), for a request that does not fit at once:
    /// kept apart so that the path of a request that fits stays short.
    #[inline(never)]
    fn queue_or_refuse(
        &mut self,
        request: Acquire,
        now: Instant,
        ctx: &mut Context<Self>,
    ) -> Reply<AcquireResult> {
        let Acquire { amount, timeout } = request;
        if let Some(error) = self.refusal(amount, timeout) {
            if self.remove_abandoned() {
                // Without the waiters that left, the head may be another, and the request
                // may fit at once or be admitted.
                self.serve(now, ctx);
                return self.acquire(request, ctx);
            }
            return self.refuse(error);
        }
        let deadline = timeout.and_then(|timeout| now.checked_add(timeout));
        let answer = self.queue.push(amount, now, deadline);
        self.stats.record_queue_len(self.queue.len());
        debug!("{amount} waits, {} in the queue", self.queue.len());
        if self.queue.len() == 1 {
            // Otherwise the wake-up planned for the head stands: an admitted request's
            // deadline is never earlier than the head's grant.
            self.plan_wake(now, ctx);
        }
        answer
    }

    #[cold]
    fn refuse<T>(&mut self, error: AcquireError) -> Reply<Result<T, AcquireError>> {
        warn!("{error}");
        self.stats.record_refusal(&error);
        Reply::now(Err(error))
    }

    /// Why a request that cannot be granted at once may not wait, if it may not.
    fn refusal(&self, amount: f64, timeout: Option<Duration>) -> Option<AcquireError> {
        if let Some(timeout) = timeout {
            let wait = self.bucket.time_until_fits(self.queue.amount() + amount);
            if wait > timeout {
                return Some(AcquireError::Timeout {
                    amount,
                    timeout,
                    retry_after: wait,
                });
            }
        }
        if self.max_queue != 0 && self.queue.len() >= self.max_queue {
            return Some(AcquireError::QueueFull {
                max_queue: self.max_queue,
                retry_after: self.head_wait(),
            });
        }
        None
    }

    /// How long until the head of the queue fits (zero if nobody waits).
    fn head_wait(&self) -> Duration {
        self.queue.head().map_or(Duration::ZERO, |head| {
            self.bucket.time_until_fits(head.amount)
        })
    }

    /// Brings the bucket up to `now` on the way through a message: serves the queue if
    /// something is due, and otherwise (nobody waits, or the planned wake-up stands) only
    /// leaks.
    fn catch_up(&mut self, now: Instant, ctx: &mut Context<Self>) {
        match self.wake_at {
            Some(wake_at) if wake_at <= now => self.serve(now, ctx),
            _ => self.bucket.leak(now.into_std()),
        }
    }

    /// Brings the bucket up to `now`: grants the waiters that fit, answers those whose
    /// deadlines have come, and plans the next wake-up.
    pub(crate) fn serve(&mut self, now: Instant, ctx: &mut Context<Self>) {
        self.bucket.leak(now.into_std());
        self.grant_fitting(now);
        if self.expire_deadlines(now) {
            self.grant_fitting(now); // those behind an expired head may fit
        }
        self.stats.record_queue_len(self.queue.len());
        if self.queue.is_empty() && matches!(self.state, State::Draining(_)) {
            info!("graceful shutdown: queue served");
            self.close(ctx);
        } else {
            self.plan_wake(now, ctx);
        }
    }

    /// Grants, in order, every waiter at the head of the queue that fits, skipping those
    /// already answered or whose callers have given up.
    fn grant_fitting(&mut self, now: Instant) {
        while let Some(head) = self.queue.head() {
            let fits = self.bucket.fits(head.amount);
            if !fits && !head.is_answered() && !head.is_abandoned() {
                break;
            }
            let Some(waiter) = self.queue.pop() else {
                break;
            };
            if waiter.is_answered() {
                continue; // answered out of turn, and counted then
            }
            let waited = now.saturating_duration_since(waiter.received);
            let granted = Granted {
                amount: waiter.amount,
                waited,
                granted_at: now,
            };
            // A caller who gave up, even just now, consumes nothing.
            if !fits || waiter.reply.send(Ok(granted)).is_err() {
                self.stats.cancelled += 1;
                debug!("skipped {}: its caller gave up", waiter.amount);
                continue;
            }
            self.bucket.fill(waiter.amount);
            self.stats.record_grant(waiter.amount, waited);
            debug!("granted {} after {waited:?}", waiter.amount);
        }
    }

    /// Answers `Timeout` to the waiters whose deadlines passed a tick ago; true if any.
    /// This happens only after a debt or a slower reconfiguration: a request is admitted
    /// only when its projected grant meets its deadline.
    fn expire_deadlines(&mut self, now: Instant) -> bool {
        let mut expired = false;
        let (stats, bucket) = (&mut self.stats, &self.bucket);
        self.queue.expire(now, |waiter, queued_amount| {
            let error = AcquireError::Timeout {
                amount: waiter.amount,
                timeout: waiter
                    .deadline
                    .map_or(Duration::ZERO, |deadline| deadline - waiter.received),
                retry_after: bucket.time_until_fits(queued_amount + waiter.amount),
            };
            warn!("{error}");
            refuse_waiter(stats, waiter, error);
            expired = true;
        });
        expired
    }

    /// Drops every waiter whose caller has given up; true if any was.
    fn remove_abandoned(&mut self) -> bool {
        let removed = self.queue.remove_where(Waiter::is_abandoned);
        if removed > 0 {
            self.stats.cancelled += removed as u64;
            debug!("removed {removed} waiters whose callers gave up");
        }
        removed > 0
    }

    fn plan_wake(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let head_due = self
            .queue
            .head()
            .map(|_| instant_after(now, self.head_wait()));
        let expiry = self.queue.next_expiry();
        self.wake_at = match (head_due, expiry) {
            (Some(due), Some(expiry)) => Some(due.min(expiry)),
            (due, expiry) => due.or(expiry),
        };
        if let Some(wake_at) = self.wake_at {
            if !self.pacer_running {
                self.pacer_running = true;
                ctx.spawn(Pacer::new(wake_at, self.precise_timing));
            }
        }
    }

    pub(crate) fn wake_at(&self) -> Option<Instant> {
        self.wake_at
    }

    pub(crate) fn pacer_ended(&mut self) {
        self.pacer_running = false;
    }

    /// Registers `task` to be woken when the head's caller gives up; true if it has.
    pub(crate) fn poll_head_abandoned(&self, task: &mut TaskContext<'_>) -> bool {
        self.queue
            .head()
            .is_some_and(|head| !head.is_answered() && head.reply.poll_abandoned(task))
    }

    fn capacity(&mut self, amount: f64, ctx: &mut Context<Self>) -> Capacity {
        self.catch_up(Instant::now(), ctx);
        let open = matches!(self.state, State::Open);
        let wait = (open && self.bucket.check_amount(amount).is_ok())
            .then(|| self.bucket.time_until_fits(self.queue.amount() + amount));
        Capacity {
            has_capacity: self.bucket.fits(amount),
            needed_capacity: self.bucket.needed(amount),
            level: self.bucket.level(),
            waiters: self.queue.len(),
            queued_amount: self.queue.amount(),
            wait,
        }
    }

    fn reconcile(
        &mut self,
        costs: Reconcile,
        ctx: &mut Context<Self>,
    ) -> Reply<Result<(), AcquireError>> {
        let Reconcile { actual, estimated } = costs;
        if matches!(self.state, State::Closed) {
            return self.refuse(AcquireError::ShuttingDown);
        }
        let capacity = self.bucket.config().capacity();
        if let Some(amount) = [actual, estimated]
            .into_iter()
            .find(|cost| !(cost.is_finite() && *cost >= 0.0))
        {
            return self.refuse(AcquireError::InvalidAmount { amount, capacity });
        }
        let now = Instant::now();
        self.bucket.leak(now.into_std());
        let difference = actual - estimated;
        if !(self.bucket.level() + difference).is_finite() {
            // A debt beyond any number could never be repaid, nor refunded.
            return self.refuse(AcquireError::InvalidAmount {
                amount: actual,
                capacity,
            });
        }
        if difference < 0.0 {
            self.bucket.drain(-difference);
            debug!("refunded {}, level {}", -difference, self.bucket.level());
        } else {
            self.bucket.fill(difference);
            debug!("charged {difference} more, level {}", self.bucket.level());
        }
        self.serve(now, ctx);
        Reply::now(Ok(()))
    }

    fn reconfigure(&mut self, config: BucketConfig, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.bucket.reconfigure(config, now.into_std());
        info!(
            "reconfigured to {} per {:?}, level {}",
            config.capacity(),
            config.period(),
            self.bucket.level()
        );
        let stats = &mut self.stats;
        self.queue.remove_where(|waiter| {
            let too_big = waiter.amount > config.capacity();
            if too_big {
                let error = AcquireError::InvalidAmount {
                    amount: waiter.amount,
                    capacity: config.capacity(),
                };
                warn!("{error}");
                refuse_waiter(stats, waiter, error);
            }
            too_big
        });
        self.serve(now, ctx);
    }

    fn shutdown(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        if matches!(self.state, State::Closed) {
            // Stopping again would only make a supervisor restart the closed bucket again.
            return Reply::now(());
        }
        if !shutdown.is_graceful() {
            info!("immediate shutdown: answering {} waiters", self.queue.len());
            self.close(ctx);
            return Reply::now(());
        }
        match &mut self.state {
            State::Closed => Reply::now(()), // answered above
            State::Draining(waiting) => {
                let inbox = Inbox::default();
                let answer = inbox.reply();
                waiting.push(inbox);
                answer
            }
            State::Open => {
                self.serve(Instant::now(), ctx);
                if self.queue.is_empty() {
                    info!("graceful shutdown: nobody waits, stopping");
                    self.close(ctx);
                    return Reply::now(());
                }
                info!(
                    "graceful shutdown: serving {} waiters first",
                    self.queue.len()
                );
                let inbox = Inbox::default();
                let answer = inbox.reply();
                self.state = State::Draining(vec![inbox]);
                answer
            }
        }
    }

    /// Answers everyone still waiting and stops for good.
    fn close(&mut self, ctx: &mut Context<Self>) {
        self.answer_everyone();
        self.wake_at = None;
        ctx.stop();
    }

    fn answer_everyone(&mut self) {
        for waiter in self.queue.take_all() {
            refuse_waiter(&mut self.stats, &waiter, AcquireError::ShuttingDown);
        }
        self.stats.record_queue_len(0);
        if let State::Draining(waiting) = mem::replace(&mut self.state, State::Closed) {
            for inbox in waiting {
                inbox.send(());
            }
        }
    }
}

/// Answers `waiter` out of turn with `error`: counted as that refusal, or as cancelled if
/// its caller has gone.
fn refuse_waiter(stats: &mut BucketStats, waiter: &Waiter, error: AcquireError) {
    let refusal = error.clone();
    if waiter.reply.send(Err(error)).is_ok() {
        stats.record_refusal(&refusal);
    } else {
        stats.cancelled += 1;
    }
}

/// `now + wait`, capped at 30 years (as tokio caps its sleeps): past that, the
/// bucket wakes, finds the head still not due and sleeps again.
fn instant_after(now: Instant, wait: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);
    now + wait.min(FAR_FUTURE)
}

impl std::fmt::Debug for BucketActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketActor")
            .field("bucket", &self.bucket)
            .field("max_queue", &self.max_queue)
            .field("waiters", &self.queue.len())
            .field("queued_amount", &self.queue.amount())
            .field("wake_at", &self.wake_at)
            .finish_non_exhaustive()
    }
}

impl Actor for BucketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The queue, bounded by `max_queue`, is the only backpressure: senders never park
        // in the mailbox.
        ctx.set_mailbox_capacity(0);
        if !matches!(self.state, State::Closed) {
            // After a restart: re-arm the timer that actix dropped, granting what is due.
            self.serve(Instant::now(), ctx);
        }
    }
}

impl Supervised for BucketActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        if matches!(self.state, State::Closed) {
            info!("restarted by its supervisor after shutdown: staying closed");
        } else {
            info!(
                "restarting with level {} and {} waiters",
                self.bucket.level(),
                self.queue.len()
            );
        }
        self.pacer_running = false; // actix dropped it with the context's other futures
    }
}

impl Drop for BucketActor {
    /// No waiter is left without an answer, however the actor ends.
    fn drop(&mut self) {
        self.answer_everyone();
    }
}

impl Handler<Acquire> for BucketActor {
    type Result = Reply<AcquireResult>;

    fn handle(&mut self, request: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        self.acquires_this_turn += 1;
        if self.acquires_this_turn == ACQUIRES_PER_TURN {
            self.acquires_this_turn = 0;
            // Stops the mailbox loop after this message for one turn of the scheduler.
            ctx.wait(actix::fut::wrap_future(actix_rt::task::yield_now()));
        }
        self.acquire(request, ctx)
    }
}

impl Handler<CapacityInfo> for BucketActor {
    type Result = Reply<Capacity>;

    fn handle(&mut self, query: CapacityInfo, ctx: &mut Context<Self>) -> Self::Result {
        Reply::now(self.capacity(query.amount, ctx))
    }
}

impl Handler<Reconcile> for BucketActor {
    type Result = Reply<Result<(), AcquireError>>;

    fn handle(&mut self, costs: Reconcile, ctx: &mut Context<Self>) -> Self::Result {
        self.reconcile(costs, ctx)
    }
}

impl Handler<Reconfigure> for BucketActor {
    type Result = Reply<()>;

    fn handle(&mut self, Reconfigure(config): Reconfigure, ctx: &mut Context<Self>) -> Reply<()> {
        self.reconfigure(config, ctx);
        Reply::now(())
    }
}

impl Handler<Stats> for BucketActor {
    type Result = Reply<BucketStats>;

    fn handle(&mut self, _: Stats, ctx: &mut Context<Self>) -> Self::Result {
        self.catch_up(Instant::now(), ctx);
        Reply::now(self.stats)
    }
}

impl Handler<Shutdown> for BucketActor {
    type Result = Reply<()>;

    fn handle(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        self.shutdown(shutdown, ctx)
    }
}

impl Handler<SimulateRestart> for BucketActor {
    type Result = ();

    fn handle(&mut self, _: SimulateRestart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
