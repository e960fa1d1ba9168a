//! What every bucket actor does around its core: answers messages through its lanes,
//! keeps reply senders, runs the one timer, and lives through shutdowns and restarts.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::{Actor, ActorContext, ActorFuture, AsyncContext, Context};
use log::{debug, info};

use super::reply::{poll_gone, AcquireResult, Courier, Inbox, Reply, Waiting};
use crate::core::{
    Admission, BucketStats, Env, Event, Lanes, Lifecycle, Rules, ShutdownStep, Ticket, Time,
};
use crate::wake::{Alarm, Clock};
use crate::{AcquireError, BucketConfig, Capacity, Granted, Shutdown};

/// Actix handles a whole mailbox in one poll. After this many requests the bucket yields
/// to the runtime, so callers on its thread see their grants when they are made, not all
/// at once at the end of a long drain.
const ACQUIRES_PER_TURN: u32 = 64;

/// An actor built on a [`Shell`].
pub(crate) trait Shelled: Actor<Context = Context<Self>> {
    type Lanes: Lanes<Caller = Waiting>;

    fn shell(&mut self) -> &mut Shell<Self::Lanes>;
}

/// The state of a bucket actor besides its lanes' own: the rules, the lifecycle, the
/// counters, the timer, and the reply sender actix is about to deliver.
pub(crate) struct Shell<L: Lanes> {
    rules: Rules,
    lanes: L,
    lifecycle: Lifecycle<Inbox<()>>,
    stats: BucketStats,
    courier: Courier,
    alarm: Alarm,
    timer_running: bool,
    /// A request admitted to wait, whose reply sender actix delivers into `inbox` right
    /// after the handler returns.
    admitted: Option<(L::Key, Ticket)>,
    inbox: Inbox<AcquireResult>,
    /// `Acquire` messages handled since the bucket last let the runtime run other tasks.
    acquires_this_turn: u32,
}

impl<L: Lanes<Caller = Waiting>> Shell<L> {
    pub(crate) fn new(config: BucketConfig, lanes: impl FnOnce(Time) -> L) -> Self {
        let clock = Clock::new();
        Self {
            rules: Rules {
                config,
                max_queue: 0,
            },
            lanes: lanes(clock.now().1),
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

    pub(crate) fn set_max_queue(&mut self, max_queue: usize) {
        self.rules.max_queue = max_queue;
    }

    pub(crate) fn set_precise_timing(&mut self, precise: bool) {
        self.alarm = Alarm::new(precise);
    }

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

    /// The lanes and everything their methods need, at `now`.
    pub(crate) fn split(&mut self, now: Time) -> (&mut L, Env<'_, Courier>) {
        let env = Env {
            rules: &self.rules,
            replies: &self.courier,
            stats: &mut self.stats,
            now,
        };
        (&mut self.lanes, env)
    }

    /// Queues the request admitted by the last `Acquire`, now that actix has delivered
    /// its reply sender; skips it if nobody will listen (`do_send`). Every handler and
    /// the timer call this first.
    pub(crate) fn receive(&mut self) {
        let Some((key, ticket)) = self.admitted.take() else {
            return;
        };
        let Some(delivery) = self.inbox.take() else {
            self.admitted = Some((key, ticket)); // not delivered yet; never seen, but harmless
            return;
        };
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        let Some(sender) = delivery else {
            env.stats.record(Event::Cancelled, false);
            debug!("a request sent with do_send did not fit at once: skipped");
            return;
        };
        lanes.enqueue(&mut env, &key, ticket, Some(sender));
        debug!(
            "{} waits, {} in the queue",
            ticket.amount(),
            env.stats.queue_len
        );
    }

    /// Grants `amount` under `key` at once, refuses it, or queues it (its answer comes
    /// later).
    pub(crate) fn acquire<A: Shelled<Lanes = L>>(
        &mut self,
        key: L::Key,
        amount: f64,
        timeout: Option<std::time::Duration>,
        ctx: &mut Context<A>,
    ) -> Reply<AcquireResult> {
        self.receive();
        self.acquires_this_turn += 1;
        if self.acquires_this_turn == ACQUIRES_PER_TURN {
            self.acquires_this_turn = 0;
            // Stops the mailbox loop after this message for one turn of the scheduler.
            ctx.wait(actix::fut::wrap_future(actix_rt::task::yield_now()));
        }
        if !self.lifecycle.is_open() {
            return self.refuse(AcquireError::ShuttingDown);
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
                self.admitted = Some((key, ticket));
                self.start_timer(ctx);
                self.inbox.reply()
            }
        }
    }

    #[cold]
    pub(crate) fn refuse<T>(&mut self, error: AcquireError) -> Reply<Result<T, AcquireError>> {
        debug!("{error}");
        self.stats.record(Event::Refused(&error), false);
        Reply::now(Err(error))
    }

    pub(crate) fn capacity<A: Shelled<Lanes = L>>(
        &mut self,
        key: L::Key,
        amount: f64,
        ctx: &mut Context<A>,
    ) -> Capacity {
        self.receive();
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
        self.receive();
        if self.lifecycle.is_closed() {
            return self.refuse(AcquireError::ShuttingDown);
        }
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        let settled = lanes.reconcile(&mut env, &key, actual, estimated);
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
        self.receive();
        let old = *self.rules.config.limits();
        self.rules.config = config;
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

    /// Grants what is due, so that the counters and the queue are current.
    pub(crate) fn catch_up<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        self.receive();
        if self
            .lanes
            .next_wake()
            .is_some_and(|wake| wake.earliest <= self.now())
        {
            self.serve(ctx);
        }
    }

    pub(crate) fn shutdown<A: Shelled<Lanes = L>>(
        &mut self,
        shutdown: Shutdown,
        ctx: &mut Context<A>,
    ) -> Reply<()> {
        self.receive();
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
                return reply;
            }
        }
        Reply::now(())
    }

    /// Serves what is due now, and closes the bucket if that ends a graceful shutdown.
    fn serve<A: Shelled<Lanes = L>>(&mut self, ctx: &mut Context<A>) {
        let now = self.now();
        let (lanes, mut env) = self.split(now);
        lanes.serve_due(&mut env);
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

    /// The timer's turn: serves whenever the alarm fires (or the head's caller gives up);
    /// ends when nothing is planned.
    fn run_timer<A: Shelled<Lanes = L>>(
        &mut self,
        ctx: &mut Context<A>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        loop {
            self.receive();
            let Some(wake) = self.lanes.next_wake() else {
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
                    .poll(&self.courier.clock, wake, task)
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
        self.receive();
        self.lanes.close(&self.courier, &mut self.stats);
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

impl<L: Lanes> std::fmt::Debug for Shell<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("config", &self.rules.config)
            .field("max_queue", &self.rules.max_queue)
            .field("waiters", &self.stats.queue_len)
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
        actor.shell().run_timer(ctx, task)
    }
}
