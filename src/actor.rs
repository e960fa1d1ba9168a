use std::mem;
use std::task::Context as TaskContext;
use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Supervised};
use actix_rt::time::Instant;
use log::{debug, info, warn};

use crate::pacer::Pacer;
use crate::queue::{WaitQueue, Waiter};
use crate::reply::{Reply, ReplySlot};
use crate::{
    Acquire, AcquireError, BucketConfig, Capacity, CapacityInfo, Granted, LeakyBucket, Shutdown,
    SimulateRestart,
};

/// A leaky-bucket rate limiter as an actix actor.
///
/// It handles its messages one at a time, in the order its mailbox delivers them:
/// [`Acquire`] requests are granted strictly first come, first served, at the bucket's
/// leak rate; [`CapacityInfo`] reports the level and the queue; [`Shutdown`] stops it.
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
    /// When the head of the queue is due; `None` while nobody waits.
    wake_at: Option<Instant>,
    pacer_running: bool,
}

enum State {
    Open,
    /// A graceful shutdown serves the queue; these wait for its end.
    Draining(Vec<ReplySlot<()>>),
    Closed,
}

impl BucketActor {
    /// An empty bucket with an unbounded queue.
    pub fn new(config: BucketConfig) -> Self {
        Self {
            bucket: LeakyBucket::new(config, Instant::now().into_std()),
            max_queue: 0,
            queue: WaitQueue::default(),
            state: State::Open,
            wake_at: None,
            pacer_running: false,
        }
    }

    /// Bounds the queue to `max_queue` waiters (0, the default, is unbounded): a request
    /// that would wait beyond it is answered [`AcquireError::QueueFull`] at once.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue;
        self
    }

    fn acquire(&mut self, request: Acquire, ctx: &mut Context<Self>) -> Reply<AcquireResult> {
        let Acquire { amount, timeout } = request;
        if !matches!(self.state, State::Open) {
            return reject(AcquireError::ShuttingDown);
        }
        if let Err(error) = self.bucket.check_amount(amount) {
            return reject(error);
        }
        let now = Instant::now();
        self.grant_due(now, ctx);
        let mut refusal = self.refusal(amount, timeout);
        if refusal.is_some() && self.remove_abandoned(now, ctx) {
            refusal = self.refusal(amount, timeout);
        }
        if let Some(error) = refusal {
            return reject(error);
        }
        if self.queue.is_empty() && self.bucket.fits(amount) {
            self.bucket.fill(amount);
            debug!("granted {amount} at once, level {}", self.bucket.level());
            return Reply::now(Ok(Granted {
                amount,
                waited: Duration::ZERO,
            }));
        }
        let reply = ReplySlot::empty();
        let answer = Reply::later(&reply);
        self.queue.push(Waiter {
            amount,
            received: now,
            reply,
        });
        debug!("{amount} waits, {} in the queue", self.queue.len());
        if self.queue.len() == 1 {
            self.plan_wake(now, ctx);
        }
        answer
    }

    /// Why a request that cannot be granted at once may not wait, if it may not.
    fn refusal(&self, amount: f64, timeout: Option<Duration>) -> Option<AcquireError> {
        let wait = self.bucket.time_until_fits(self.queue.amount() + amount);
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

    fn head_wait(&self) -> Duration {
        self.queue.head().map_or(Duration::ZERO, |head| {
            self.bucket.time_until_fits(head.amount)
        })
    }

    /// Grants, in order, every waiter at the head of the queue that fits now, skipping
    /// those whose callers have given up, and plans the next wake-up.
    pub(crate) fn grant_due(&mut self, now: Instant, ctx: &mut Context<Self>) {
        self.bucket.leak(now.into_std());
        while let Some(head) = self.queue.head() {
            let abandoned = head.reply.is_abandoned();
            if !abandoned && !self.bucket.fits(head.amount) {
                break;
            }
            let Some(waiter) = self.queue.pop() else {
                break;
            };
            if abandoned {
                debug!("skipped {}: its caller gave up", waiter.amount);
                continue;
            }
            self.bucket.fill(waiter.amount);
            let waited = now.saturating_duration_since(waiter.received);
            let granted = Granted {
                amount: waiter.amount,
                waited,
            };
            if waiter.reply.send(Ok(granted)).is_err() {
                self.bucket.drain(waiter.amount); // the caller left just now
                continue;
            }
            debug!("granted {} after {waited:?}", waiter.amount);
        }
        if self.queue.is_empty() && matches!(self.state, State::Draining(_)) {
            info!("graceful shutdown: queue served");
            self.close(ctx);
        } else {
            self.plan_wake(now, ctx);
        }
    }

    /// Drops every waiter whose caller has given up; true if any was.
    fn remove_abandoned(&mut self, now: Instant, ctx: &mut Context<Self>) -> bool {
        let removed = self.queue.remove_abandoned();
        if removed > 0 {
            debug!("removed {removed} waiters whose callers gave up");
            self.grant_due(now, ctx);
        }
        removed > 0
    }

    fn plan_wake(&mut self, now: Instant, ctx: &mut Context<Self>) {
        self.wake_at = (!self.queue.is_empty()).then(|| instant_after(now, self.head_wait()));
        if let Some(deadline) = self.wake_at {
            if !self.pacer_running {
                self.pacer_running = true;
                ctx.spawn(Pacer::new(deadline));
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
            .is_some_and(|head| head.reply.poll_abandoned(task))
    }

    fn capacity(&mut self, amount: f64, ctx: &mut Context<Self>) -> Capacity {
        self.grant_due(Instant::now(), ctx);
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

    fn shutdown(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        if !shutdown.is_graceful() {
            info!("immediate shutdown: answering {} waiters", self.queue.len());
            self.close(ctx);
            return Reply::now(());
        }
        match &mut self.state {
            State::Closed => Reply::now(()),
            State::Draining(waiting) => {
                let reply = ReplySlot::empty();
                let answer = Reply::later(&reply);
                waiting.push(reply);
                answer
            }
            State::Open => {
                self.grant_due(Instant::now(), ctx);
                if self.queue.is_empty() {
                    info!("graceful shutdown: nobody waits, stopping");
                    self.close(ctx);
                    return Reply::now(());
                }
                info!(
                    "graceful shutdown: serving {} waiters first",
                    self.queue.len()
                );
                let reply = ReplySlot::empty();
                let answer = Reply::later(&reply);
                self.state = State::Draining(vec![reply]);
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
            let _ = waiter.reply.send(Err(AcquireError::ShuttingDown));
        }
        if let State::Draining(waiting) = mem::replace(&mut self.state, State::Closed) {
            for reply in waiting {
                let _ = reply.send(());
            }
        }
    }
}

type AcquireResult = Result<Granted, AcquireError>;

fn reject(error: AcquireError) -> Reply<AcquireResult> {
    warn!("{error}");
    Reply::now(Err(error))
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
            self.grant_due(Instant::now(), ctx);
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
        self.acquire(request, ctx)
    }
}

impl Handler<CapacityInfo> for BucketActor {
    type Result = Reply<Capacity>;

    fn handle(&mut self, query: CapacityInfo, ctx: &mut Context<Self>) -> Self::Result {
        Reply::now(self.capacity(query.amount, ctx))
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
