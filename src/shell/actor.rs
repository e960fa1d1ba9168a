//! What every bucket actor does around its core: answers messages through its lanes,
//! keeps reply senders, runs the one timer, and lives through shutdowns and restarts.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFuture, AsyncContext, Context};
use log::{debug, info};

use super::departures::{poll_gone, watch, DrainWatch};
use super::reply::{AcquireResult, Courier, Delivery, Inbox, Reply, Waiting};
use crate::core::{
    Admission, BucketStats, Env, Event, Lanes, Lifecycle, OwnLevels, Refusal, Rules, ShutdownStep,
    Ticket, Time,
};
use crate::wake::{Alarm, Clock, TIMER_TICK};
use crate::{AcquireError, BucketConfig, Capacity, Shutdown};

/// Actix handles a whole mailbox in one poll. After this many requests the bucket yields
/// to the runtime, so callers on its thread see their grants when they are made, not all
/// at once at the end of a long drain.
const ACQUIRES_PER_TURN: u32 = 64;

/// An actor built on a [`Shell`].
pub(crate) trait Shelled: Actor<Context = Context<Self>> {
    type Lanes: Lanes<Caller = Waiting, Key: Clone + Send + 'static>;

    fn shell(&mut self) -> &mut Shell<Self::Lanes>;

    /// After each turn of the timer: for a front end with work of its own to start, such
    /// as a call to a store for the requests that have just joined the queue.
    fn after_timer(&mut self, _ctx: &mut Context<Self>) {}
}

/// A bucket actor's state: the request whose reply sender actix is about to deliver, and
/// everything else, which only [`receive`](Self::receive) reaches.
pub(crate) struct Shell<L: Lanes> {
    /// A request admitted to wait, whose reply sender actix delivers into `inbox` right
    /// after the handler returns.
    admitted: Option<(L::Key, Ticket)>,
    inbox: Inbox<AcquireResult>,
    front: Front<L>,
}

/// The rules, the lanes, the lifecycle, the counters and the timer of a bucket actor, with
/// every request received so far in its queue: reached only through
/// [`Shell::receive`].
pub(crate) struct Front<L: Lanes> {
    rules: Rules,
    lanes: L,
    lifecycle: Lifecycle<Inbox<()>>,
    stats: BucketStats,
    courier: Courier,
    alarm: Alarm,
    timer_running: bool,
    /// While a bucket that cannot watch each head drains: who left, by key.
    drain_watch: Option<Arc<DrainWatch<L::Key>>>,
    /// Wakes the timer's task: for a change made outside a message and outside the timer
    /// (an answer from a store), which the timer would otherwise see only when it next
    /// wakes.
    timer_waker: Option<std::task::Waker>,
    /// `Acquire` messages handled since the bucket last let the runtime run other tasks.
    acquires_this_turn: u32,
}

/// What a front end decided on an `Acquire`.
enum Decision<K> {
    /// The answer, now.
    Now(Reply<AcquireResult>),
    /// It waits: its reply sender is needed.
    Wait(K, Ticket),
}

impl<L: Lanes<Caller = Waiting>> Shell<L>
where
    L::Key: Clone + Send + 'static,
{
    pub(crate) fn new(config: BucketConfig, lanes: impl FnOnce(Time) -> L) -> Self {
        let clock = Clock::new();
        Self {
            admitted: None,
            inbox: Inbox::default(),
            front: Front {
                rules: Rules::new(*config.limits(), TIMER_TICK),
                lanes: lanes(clock.now().1),
                lifecycle: Lifecycle::Open,
                stats: BucketStats::default(),
                courier: Courier { clock, config },
                alarm: Alarm::new(true),
                timer_running: false,
                drain_watch: None,
                timer_waker: None,
                acquires_this_turn: 0,
            },
        }
    }

    pub(crate) fn set_max_queue(&mut self, max_queue: usize) {
        self.front.rules.max_queue = max_queue;
    }

    pub(crate) fn set_precise_timing(&mut self, precise: bool) {
        self.front.alarm = Alarm::new(precise);
    }

    /// The bucket, once the request admitted by the last `Acquire` has joined its queue:
    /// actix delivers that request's reply sender after the handler returns, so whatever
    /// comes next (a message, the timer, the end) takes it in first. A request sent with
    /// `do_send` has no sender, and is skipped.
    pub(crate) fn receive(&mut self) -> &mut Front<L> {
        if let Some((key, ticket)) = self.admitted.take() {
            match self.inbox.take() {
                Delivery::Sender(sender) => self.front.enqueue(&key, ticket, Some(sender)),
                Delivery::Unheard => {
                    self.front.stats.record(Event::Cancelled, false);
                    debug!("a request sent with do_send did not fit at once: skipped");
                }
                // Actix delivers before anything else runs on the actor.
                Delivery::Pending => self.admitted = Some((key, ticket)),
            }
        }
        &mut self.front
    }

    /// Grants `amount` under `key` at once, refuses it, or queues it (its answer comes
    /// later).
    pub(crate) fn acquire<A: Shelled<Lanes = L>>(
        &mut self,
        key: L::Key,
        amount: f64,
        timeout: Option<Duration>,
        ctx: &mut Context<A>,
    ) -> Reply<AcquireResult> {
        match self.receive().acquire(key, amount, timeout, ctx) {
            Decision::Now(reply) => reply,
            Decision::Wait(key, ticket) => {
                self.admitted = Some((key, ticket));
                self.inbox.reply()
            }
        }
    }
}

impl<L: Lanes<Caller = Waiting>> Front<L>
where
    L::Key: Clone + Send + 'static,
{
    pub(crate) fn rules(&self) -> &Rules {
        &self.rules
    }

    pub(crate) fn lanes(&mut self) -> &mut L {
        &mut self.lanes
    }

    pub(crate) fn stats(&self) -> &BucketStats {
        &self.stats
    }

    pub(crate) fn now(&self) -> Time {
        self.courier.clock.now().1
    }

    /// Whether the bucket still grants: no shutdown has come.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn is_open(&self) -> bool {
        self.lifecycle.is_open()
    }

    /// Whether the bucket has closed for good.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn rules_mut(&mut self) -> &mut Rules {
        &mut self.rules
    }

    /// Runs `change` on the lanes, now, for what a front end does with them besides the
    /// messages every bucket answers; then closes the bucket if that ends a drain, or
    /// keeps the timer running while it is needed.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn with_lanes<A: Shelled<Lanes = L>, T>(
        &mut self,
        ctx: &mut Context<A>,
        change: impl FnOnce(&mut L, &mut Env<'_, Courier>) -> T,
    ) -> T {
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        let answer = change(lanes, &mut env);
        self.settle(ctx);
        if let Some(timer) = self.timer_waker.as_ref().filter(|_| self.timer_running) {
            timer.wake_by_ref(); // to look at the windows that changed
        }
        answer
    }

    /// The lanes and everything their methods need, at `now`.
    fn split(&mut self, now: Time) -> (&mut L, Env<'_, Courier>) {
        let env = Env {
            rules: &self.rules,
            replies: &self.courier,
            stats: &mut self.stats,
            now,
        };
        (&mut self.lanes, env)
    }

    /// Queues a request admitted to wait, now that its reply sender has come.
    fn enqueue(&mut self, key: &L::Key, ticket: Ticket, sender: Waiting) {
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        lanes.enqueue(&mut env, key, ticket, sender, |caller, departures| {
            watch(caller, Arc::clone(departures).into());
        });
        debug!(
            "{} waits, {} in the queue",
            ticket.amount(),
            env.stats.queue_len
        );
    }

    fn acquire<A: Shelled<Lanes = L>>(
        &mut self,
        key: L::Key,
        amount: f64,
        timeout: Option<Duration>,
        ctx: &mut Context<A>,
    ) -> Decision<L::Key> {
        self.acquires_this_turn += 1;
        if self.acquires_this_turn == ACQUIRES_PER_TURN {
            self.acquires_this_turn = 0;
            // Stops the mailbox loop after this message for one turn of the scheduler.
            ctx.wait(actix::fut::wrap_future(actix_rt::task::yield_now()));
        }
        if !self.lifecycle.is_open() {
            return Decision::Now(self.refuse(Refusal::ShuttingDown));
        }
        let (now, time) = self.courier.clock.now();
        let (lanes, mut env) = self.split(time);
        match lanes.admit(&mut env, &key, amount, timeout) {
            Admission::Granted(grant) => {
                debug!("granted {} at once", grant.amount);
                if !self.timer_running && self.lanes.next_wake().is_some() {
                    // Nobody waits, but a key is held: the timer sweeps it when idle.
                    self.start_timer(ctx);
                }
                Decision::Now(Reply::now(Ok(self.courier.granted(&grant, now))))
            }
            Admission::Refused(refusal) => {
                let error = AcquireError::from(refusal);
                debug!("{error}");
                Decision::Now(Reply::now(Err(error)))
            }
            Admission::Wait(ticket) => {
                self.start_timer(ctx);
                Decision::Wait(key, ticket)
            }
        }
    }

    /// Refuses a request the core never saw, and counts it.
    #[cold]
    pub(crate) fn refuse<T>(&mut self, refusal: Refusal) -> Reply<Result<T, AcquireError>> {
        Reply::now(Err(self.count_refusal(refusal)))
    }

    /// Counts a refusal that the front end decided, and makes it the caller's error.
    pub(crate) fn count_refusal(&mut self, refusal: Refusal) -> AcquireError {
        self.stats.record(Event::Refused(&refusal), false);
        let error = AcquireError::from(refusal);
        debug!("{error}");
        error
    }

    /// Grants what is due, so that the counters and the queue are current.
    pub(crate) fn catch_up<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        if self
            .lanes
            .next_wake()
            .is_some_and(|window| window.earliest <= self.now())
        {
            self.serve(ctx);
        }
    }

    pub(crate) fn shutdown<A: Shelled<Lanes = L>>(
        &mut self,
        shutdown: Shutdown,
        ctx: &mut Context<A>,
    ) -> Reply<()> {
        if self.lifecycle.is_open() && shutdown.is_graceful() {
            // Grant what is due first: only the rest waits for the drain.
            self.catch_up(ctx);
        }
        let inbox = Inbox::default();
        let reply = inbox.reply();
        let waiting = self.stats.queue_len;
        match self
            .lifecycle
            .shutdown(shutdown.is_graceful(), waiting == 0, inbox)
        {
            ShutdownStep::Done(_) => {}
            ShutdownStep::CloseNow(_) => {
                if waiting == 0 {
                    info!("shutdown: nobody waits, stopping");
                } else {
                    info!("immediate shutdown: answering {waiting} waiters, stopping");
                }
                self.close(ctx);
            }
            ShutdownStep::Draining => {
                info!("graceful shutdown: serving {waiting} waiters first");
                self.watch_while_draining();
                return reply;
            }
        }
        Reply::now(())
    }

    /// Where the bucket cannot watch each head of its queues, watches every waiter for
    /// the drain, so that callers who left never hold it up.
    fn watch_while_draining(&mut self) {
        if self.drain_watch.is_some() || L::WATCHES_HEADS {
            return;
        }
        let drain = Arc::new(DrainWatch::default());
        let mut watcher = drain.watcher();
        self.lanes
            .callers(|key, departures, caller| watcher.watch(key, departures, caller));
        // Those who left before the drain began were noted as their watch was set; the
        // timer, which runs while anyone waits, removes them on its next turn, right after
        // this message (the reply to this shutdown must be delivered first).
        self.drain_watch = Some(drain);
    }

    /// Removes the callers that the drain's watch saw leave, and serves those behind them.
    fn notice_departures<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        let Some(drain) = self.drain_watch.clone() else {
            return;
        };
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        for key in drain.take() {
            lanes.notice_departures(&mut env, &key);
        }
        self.settle(ctx);
    }

    /// Serves what is due now, and closes the bucket if that ends a graceful shutdown.
    fn serve<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        lanes.serve(&mut env);
        self.settle(ctx);
    }

    /// After the queues may have changed: closes the bucket if a graceful shutdown has
    /// drained them, and otherwise makes sure the timer runs while it is needed.
    fn settle<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        if self.lifecycle.drained(self.stats.queue_len == 0) {
            info!("graceful shutdown: every waiter served, stopping");
            self.close(ctx);
        } else if self.lanes.next_wake().is_some() {
            self.start_timer(ctx);
        }
    }

    fn start_timer<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        if !self.timer_running {
            self.timer_running = true;
            self.alarm.start();
            ctx.spawn(Timer);
        }
    }

    /// The timer's turn: serves whenever the alarm fires (or a caller it watches gives
    /// up); ends when nothing is planned.
    fn run_timer<A: Shelled<Lanes = L>>(
        &mut self,
        ctx: &mut Context<A>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        if !self
            .timer_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(task.waker()))
        {
            self.timer_waker = Some(task.waker().clone());
        }
        if let Some(drain) = &self.drain_watch {
            drain.wake_on_departure(task.waker());
            self.notice_departures(ctx);
        }
        loop {
            let Some(window) = self.lanes.next_wake() else {
                self.alarm.disarm();
                self.timer_running = false;
                return Poll::Ready(());
            };
            let head_left = self
                .lanes
                .head_caller_mut()
                .is_some_and(|caller| poll_gone(caller, task));
            if !head_left
                && self
                    .alarm
                    .poll(&self.courier.clock, window, task)
                    .is_pending()
            {
                return Poll::Pending;
            }
            self.serve(ctx);
        }
    }

    /// Answers everyone still waiting and stops for good.
    fn close<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        self.answer_everyone();
        self.alarm.disarm();
        ctx.stop();
    }

    /// Answers every waiter and every shutdown that waits; the bucket is closed after.
    pub(crate) fn answer_everyone(&mut self) {
        self.lanes.close(&self.courier, &mut self.stats);
        self.drain_watch = None;
        for inbox in self.lifecycle.close() {
            inbox.send(());
        }
    }

    /// `Actor::started`, also after a restart.
    pub(crate) fn started<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        // The queue, bounded by `max_queue`, is the only backpressure: senders never park
        // in the mailbox.
        ctx.set_mailbox_capacity(0);
        if !self.lifecycle.is_closed() {
            // After a restart: re-arm the timer that actix dropped, granting what is due.
            self.serve(ctx);
        }
    }

    /// `Supervised::restarting`.
    pub(crate) fn restarting(&mut self) {
        if self.lifecycle.is_closed() {
            info!("restarted by its supervisor after shutdown: staying closed");
        } else {
            info!("restarting with {} waiters", self.stats.queue_len);
        }
        self.timer_running = false; // actix dropped it with the context's other futures
        self.alarm.disarm();
    }
}

/// The answers of buckets that keep their levels here: given at once.
impl<L: Lanes<Caller = Waiting> + OwnLevels> Front<L>
where
    L::Key: Clone + Send + 'static,
{
    pub(crate) fn capacity<A: Shelled<Lanes = L>>(
        &mut self,
        key: L::Key,
        amount: f64,
        ctx: &mut Context<A>,
    ) -> Capacity {
        let open = self.lifecycle.is_open();
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        let capacity = lanes.capacity(&mut env, &key, amount, open);
        self.settle(ctx);
        capacity
    }

    pub(crate) fn reconcile<A: Shelled<Lanes = L>>(
        &mut self,
        key: L::Key,
        actual: f64,
        estimated: f64,
        ctx: &mut Context<A>,
    ) -> Reply<Result<(), AcquireError>> {
        if self.lifecycle.is_closed() {
            return self.refuse(Refusal::ShuttingDown);
        }
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        let settled = lanes
            .reconcile(&mut env, &key, actual, estimated)
            .map_err(AcquireError::from);
        match &settled {
            Ok(()) => debug!("settled {actual} against {estimated}"),
            Err(error) => debug!("{error}"),
        }
        self.settle(ctx);
        Reply::now(settled)
    }

    pub(crate) fn reconfigure<A: Shelled<Lanes = L>>(
        &mut self,
        config: BucketConfig,
        ctx: &mut Context<A>,
    ) {
        let old = self.rules.limits;
        self.courier.config = config;
        self.rules.limits = *config.limits();
        info!(
            "reconfigured to {} per {:?}",
            config.capacity(),
            config.period()
        );
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        lanes.reconfigure(&mut env, &old);
        self.settle(ctx);
    }
}

impl<L: Lanes> std::fmt::Debug for Shell<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("config", &self.front.courier.config)
            .field("max_queue", &self.front.rules.max_queue)
            .field("waiters", &self.front.stats.queue_len)
            .finish_non_exhaustive()
    }
}

/// The bucket's one timer, on its context while anything is planned.
struct Timer;

impl<A: Shelled> ActorFuture<A> for Timer {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        actor: &mut A,
        ctx: &mut Context<A>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let poll = actor.shell().receive().run_timer(ctx, task);
        actor.after_timer(ctx);
        poll
    }
}
