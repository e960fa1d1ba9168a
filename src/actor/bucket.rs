use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::{Actor, ActorContext, ActorFuture, AsyncContext, Context, Handler, Supervised};
use log::{debug, info};

use super::reply::{poll_gone, watch_departure, AcquireResult, Courier, Inbox, Reply, Waiting};
use crate::core::{
    Admission, BucketStats, Env, Event, Lane, Lifecycle, Rules, ShutdownStep, Ticket, Time,
};
use crate::wake::{Alarm, Clock};
use crate::{
    Acquire, AcquireError, BucketConfig, Capacity, CapacityInfo, Granted, Reconcile, Reconfigure,
    Shutdown, Stats,
};

/// A leaky-bucket rate limiter as an actix actor.
///
/// It handles its messages one at a time, in the order its mailbox delivers them:
/// [`Acquire`] requests are granted strictly first come, first served, at the bucket's
/// leak rate; [`CapacityInfo`] and [`Stats`] report; [`Reconcile`] and [`Reconfigure`]
/// adjust; [`Shutdown`] stops it. It is [`Supervised`]: a restart keeps its level, its
/// queue and every pending reply.
///
/// ```
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};
///
/// #[actix_rt::main]
/// async fn main() {
///     tokio::time::pause(); // this doctest runs on paused time: waits take no wall time
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
///
/// # Delayed replies and `run_later`
///
/// A request that must wait is answered later, when the bucket's timer finds it due.
/// Actix's own tool for a delayed action is `ctx.run_later`, one timer per call; the
/// bucket instead keeps a single timer, spawned on its context while anyone waits and
/// re-aimed at the next wake-up its core plans (the head of the queue becoming due, or
/// a deadline passing). Actix polls every future spawned on a context at each of the
/// actor's wake-ups, so a `run_later` per waiter would make every message cost a pass
/// over all the waiters' timers; and cancelling one is lazy, so a queue whose head keeps
/// changing would pile them up. One timer costs the same whether 1 or 100,000 wait, and
/// an idle bucket has none.
///
/// That timer is finer than `run_later`'s: tokio's timer, which `run_later` uses, fires
/// on whole milliseconds and up to 2 ms late, while the bucket wakes within the window
/// its core allows; see [`precise_timing`](Self::precise_timing).
pub struct BucketActor {
    rules: Rules,
    lane: Lane<Waiting>,
    lifecycle: Lifecycle<Inbox<()>>,
    stats: BucketStats,
    courier: Courier,
    alarm: Alarm,
    timer_running: bool,
    /// A request admitted to wait, whose reply sender actix delivers into `inbox` right
    /// after the handler returns.
    admitted: Option<Ticket>,
    inbox: Inbox<AcquireResult>,
    /// `Acquire` messages handled since the bucket last let the runtime run other tasks.
    acquires_this_turn: u32,
}

/// Actix handles a whole mailbox in one poll. After this many requests the bucket yields
/// to the runtime, so callers on its thread see their grants when they are made, not all
/// at once at the end of a long drain.
const ACQUIRES_PER_TURN: u32 = 64;

impl BucketActor {
    /// An empty bucket with an unbounded queue.
    pub fn new(config: BucketConfig) -> Self {
        let clock = Clock::new();
        Self {
            rules: Rules {
                config,
                max_queue: 0,
            },
            lane: Lane::new(clock.now().1),
            lifecycle: Lifecycle::Open,
            stats: BucketStats::default(),
            courier: Courier { clock },
            alarm: Alarm::new(true),
            timer_running: false,
            admitted: None,
            inbox: Inbox::default(),
            acquires_this_turn: 0,
        }
    }

    /// Bounds the queue to `max_queue` waiters (0, the default, is unbounded): a request
    /// that would wait beyond it is answered [`AcquireError::QueueFull`] at once.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.rules.max_queue = max_queue;
        self
    }

    /// Whether grants come within microseconds of the instant they fit (`true`, the
    /// default) or on tokio's timer alone (`false`).
    ///
    /// Tokio's timer fires on whole milliseconds and can be 2 ms late. A grant that late
    /// is lost to the rate whenever the bucket would have run dry meanwhile: when
    /// `leak_rate × 2 ms > capacity − amount`. By default the bucket therefore wakes on a
    /// finer source where the platform has one (a `timerfd` on Linux), aiming so that it
    /// wakes at most about once per millisecond when grants are dense and never so late
    /// that the bucket runs dry; elsewhere it yields to the runtime through the last 2 ms
    /// before a grant whose window is that short. Neither spins on Linux, and an idle
    /// bucket is woken by nothing. With `false` it sleeps on tokio's timer alone: the
    /// long-run rate stays exact as long as the capacity absorbs the timer's lateness.
    pub fn precise_timing(mut self, precise: bool) -> Self {
        self.alarm = Alarm::new(precise);
        self
    }

    /// The lane and everything its methods need, at `now`.
    fn split(&mut self, now: Time) -> (&mut Lane<Waiting>, Env<'_, Courier>) {
        let env = Env {
            rules: &self.rules,
            replies: &self.courier,
            stats: &mut self.stats,
            now,
        };
        (&mut self.lane, env)
    }

    /// Queues the request admitted by the last `Acquire`, now that actix has delivered
    /// its reply sender; skips it if nobody will listen (`do_send`).
    fn receive(&mut self) {
        let Some(ticket) = self.admitted.take() else {
            return;
        };
        let Some(delivery) = self.inbox.take() else {
            self.admitted = Some(ticket); // not delivered yet; never seen, but harmless
            return;
        };
        let now = self.courier.clock.now().1;
        let (lane, mut env) = self.split(now);
        match delivery {
            Some(sender) => {
                lane.enqueue(&mut env, ticket, Some(sender));
                debug!("{} waits, {} in the queue", ticket.amount(), lane.waiting());
                if let (Some(departures), Some(Some(sender))) =
                    (lane.departures().cloned(), lane.last_caller_mut())
                {
                    watch_departure(sender, departures);
                }
            }
            None => {
                env.stats.record(Event::Cancelled, false);
                debug!("a request sent with do_send did not fit at once: skipped");
            }
        }
    }

    fn acquire(&mut self, request: Acquire, ctx: &mut Context<Self>) -> Reply<AcquireResult> {
        if !self.lifecycle.is_open() {
            return self.refuse(AcquireError::ShuttingDown);
        }
        let (now, time) = self.courier.clock.now();
        let (lane, mut env) = self.split(time);
        match lane.admit(&mut env, request.amount, request.timeout) {
            Admission::Granted(grant) => {
                debug!("granted {} at once", grant.amount);
                Reply::now(Ok(Granted {
                    amount: grant.amount,
                    waited: grant.waited,
                    granted_at: now,
                }))
            }
            Admission::Refused(error) => {
                debug!("{error}");
                Reply::now(Err(error))
            }
            Admission::Wait(ticket) => {
                self.admitted = Some(ticket);
                self.start_timer(ctx);
                self.inbox.reply()
            }
        }
    }

    #[cold]
    fn refuse<T>(&mut self, error: AcquireError) -> Reply<Result<T, AcquireError>> {
        debug!("{error}");
        self.stats.record(Event::Refused(&error), false);
        Reply::now(Err(error))
    }

    /// Serves the queue at `now`, and closes the bucket if that ends a graceful shutdown.
    fn serve(&mut self, now: Time, ctx: &mut Context<Self>) {
        let (lane, mut env) = self.split(now);
        lane.serve(&mut env);
        self.settle(ctx);
    }

    /// After the queue may have changed: closes the bucket if a graceful shutdown has
    /// drained it, and otherwise makes sure the timer runs while anyone waits.
    fn settle(&mut self, ctx: &mut Context<Self>) {
        if self.lifecycle.drained(self.lane.waiting() == 0) {
            info!("graceful shutdown: queue served, stopping");
            self.close(ctx);
        } else if self.lane.plan().is_some() {
            self.start_timer(ctx);
        }
    }

    fn start_timer(&mut self, ctx: &mut Context<Self>) {
        if !self.timer_running {
            self.timer_running = true;
            self.alarm.start();
            ctx.spawn(Timer);
        }
    }

    /// The timer's turn: serves whenever the alarm fires or the head's caller gives up;
    /// ends when nobody waits.
    fn run_timer(&mut self, ctx: &mut Context<Self>, task: &mut TaskContext<'_>) -> Poll<()> {
        loop {
            self.receive();
            let Some(wake) = self.lane.plan() else {
                self.alarm.disarm();
                self.timer_running = false;
                return Poll::Ready(());
            };
            let head_left = self
                .lane
                .head_caller_mut()
                .is_some_and(|caller| poll_gone(caller, task));
            if !head_left
                && self
                    .alarm
                    .poll(&self.courier.clock, wake, task)
                    .is_pending()
            {
                return Poll::Pending;
            }
            self.serve(self.courier.clock.now().1, ctx);
        }
    }

    fn capacity(&mut self, amount: f64) -> Capacity {
        let open = self.lifecycle.is_open();
        let (lane, mut env) = self.split(self.courier.clock.now().1);
        lane.capacity(&mut env, amount, open)
    }

    fn shutdown(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        if self.lifecycle.is_open() && shutdown.is_graceful() {
            // Grant what is due first: only the rest waits for the drain.
            let (lane, mut env) = self.split(self.courier.clock.now().1);
            lane.catch_up(&mut env);
        }
        let inbox = Inbox::default();
        let reply = inbox.reply();
        let waiting = self.lane.waiting();
        match self
            .lifecycle
            .shutdown(shutdown.is_graceful(), waiting == 0, inbox)
        {
            ShutdownStep::Done(_) => Reply::now(()),
            ShutdownStep::CloseNow(_) => {
                info!("shutdown: answering {waiting} waiters, stopping");
                self.close(ctx);
                Reply::now(())
            }
            ShutdownStep::Draining => {
                info!("graceful shutdown: serving {waiting} waiters first");
                reply
            }
        }
    }

    /// Answers everyone still waiting and stops for good.
    fn close(&mut self, ctx: &mut Context<Self>) {
        self.answer_everyone();
        self.alarm.disarm();
        ctx.stop();
    }

    fn answer_everyone(&mut self) {
        self.receive();
        self.lane.close(&self.courier, &mut self.stats);
        for inbox in self.lifecycle.close() {
            inbox.send(());
        }
    }
}

/// The bucket's one timer, on its context while anyone waits.
struct Timer;

impl ActorFuture<BucketActor> for Timer {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        bucket: &mut BucketActor,
        ctx: &mut Context<BucketActor>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        bucket.run_timer(ctx, task)
    }
}

impl std::fmt::Debug for BucketActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketActor")
            .field("config", &self.rules.config)
            .field("max_queue", &self.rules.max_queue)
            .field("waiters", &self.lane.waiting())
            .field("plan", &self.lane.plan())
            .finish_non_exhaustive()
    }
}

impl Actor for BucketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The queue, bounded by `max_queue`, is the only backpressure: senders never park
        // in the mailbox.
        ctx.set_mailbox_capacity(0);
        if !self.lifecycle.is_closed() {
            // After a restart: re-arm the timer that actix dropped, granting what is due.
            self.serve(self.courier.clock.now().1, ctx);
        }
    }
}

impl Supervised for BucketActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        if self.lifecycle.is_closed() {
            info!("restarted by its supervisor after shutdown: staying closed");
        } else {
            info!("restarting with {} waiters", self.lane.waiting());
        }
        self.timer_running = false; // actix dropped it with the context's other futures
        self.alarm.disarm();
    }
}

impl Drop for BucketActor {
    /// No waiter is left without an answer, however the actor ends.
    fn drop(&mut self) {
        self.answer_everyone();
    }
}

/// Grants the request in its turn, or refuses it at once; see [`Acquire`].
impl Handler<Acquire> for BucketActor {
    type Result = Reply<AcquireResult>;

    fn handle(&mut self, request: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        self.receive();
        self.acquires_this_turn += 1;
        if self.acquires_this_turn == ACQUIRES_PER_TURN {
            self.acquires_this_turn = 0;
            // Stops the mailbox loop after this message for one turn of the scheduler.
            ctx.wait(actix::fut::wrap_future(actix_rt::task::yield_now()));
        }
        self.acquire(request, ctx)
    }
}

/// Answers at once, after granting what is due; see [`CapacityInfo`].
impl Handler<CapacityInfo> for BucketActor {
    type Result = Reply<Capacity>;

    fn handle(&mut self, query: CapacityInfo, ctx: &mut Context<Self>) -> Self::Result {
        self.receive();
        let capacity = self.capacity(query.amount);
        self.settle(ctx);
        Reply::now(capacity)
    }
}

/// Refunds or charges the difference at once; see [`Reconcile`].
impl Handler<Reconcile> for BucketActor {
    type Result = Reply<Result<(), AcquireError>>;

    fn handle(&mut self, costs: Reconcile, ctx: &mut Context<Self>) -> Self::Result {
        self.receive();
        if self.lifecycle.is_closed() {
            return self.refuse(AcquireError::ShuttingDown);
        }
        let (lane, mut env) = self.split(self.courier.clock.now().1);
        let settled = lane.reconcile(&mut env, costs.actual, costs.estimated);
        match &settled {
            Ok(()) => debug!("settled {} against {}", costs.actual, costs.estimated),
            Err(error) => debug!("{error}"),
        }
        self.settle(ctx);
        Reply::now(settled)
    }
}

/// Applies the new capacity and rate from now on; see [`Reconfigure`].
impl Handler<Reconfigure> for BucketActor {
    type Result = Reply<()>;

    fn handle(&mut self, Reconfigure(config): Reconfigure, ctx: &mut Context<Self>) -> Reply<()> {
        self.receive();
        let old = *self.rules.config.limits();
        self.rules.config = config;
        info!(
            "reconfigured to {} per {:?}",
            config.capacity(),
            config.period()
        );
        let (lane, mut env) = self.split(self.courier.clock.now().1);
        lane.reconfigure(&mut env, &old);
        self.settle(ctx);
        Reply::now(())
    }
}

/// Answers the counters at once, after granting what is due; see [`Stats`].
impl Handler<Stats> for BucketActor {
    type Result = Reply<BucketStats>;

    fn handle(&mut self, _: Stats, ctx: &mut Context<Self>) -> Self::Result {
        self.receive();
        let (lane, mut env) = self.split(self.courier.clock.now().1);
        lane.catch_up(&mut env);
        self.settle(ctx);
        Reply::now(self.stats)
    }
}

/// Stops gracefully or at once; see [`Shutdown`].
impl Handler<Shutdown> for BucketActor {
    type Result = Reply<()>;

    fn handle(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        self.receive();
        self.shutdown(shutdown, ctx)
    }
}
