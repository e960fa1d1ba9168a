use actix::{Actor, Context, Handler, Supervised};

use crate::core::{BucketStats, Lane};
use crate::shell::{AcquireResult, Reply, Shell, Shelled, Waiting};
use crate::{
    Acquire, AcquireError, BucketConfig, Capacity, CapacityInfo, Reconcile, Reconfigure, Shutdown,
    Stats,
};

/// A leaky-bucket rate limiter as an actix actor.
///
/// It handles its messages one at a time, in the order its mailbox delivers them:
/// [`Acquire`] requests are granted strictly first come, first served, at the bucket's
/// leak rate; [`CapacityInfo`] and [`Stats`] report; [`Reconcile`] and [`Reconfigure`]
/// adjust; [`Shutdown`] stops it. It is [`Supervised`]: a restart keeps its level, its
/// queue and every pending reply.
///
/// Like any actor, it runs in an actix system: start it inside `#[actix_rt::main]`,
/// `#[actix_rt::test]` or an `actix::System`. Started under a plain `#[tokio::main]`,
/// `start()` panics inside actix (it spawns onto a `LocalSet` that is not there). From
/// code that is not an actix system, [`BucketHandle::spawn`](crate::BucketHandle::spawn)
/// runs the bucket on a thread of its own.
///
/// `addr.send(Acquire { .. }).await` answers `Result<Result<Granted, AcquireError>,
/// MailboxError>`: the outer error is actix's, for a bucket whose actor has stopped, and
/// converts into [`AcquireError::Stopped`], so `addr.send(request).await?` in a function
/// that returns `Result<_, AcquireError>` flattens the two.
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
    shell: Shell<Lane<Waiting>>,
}

impl BucketActor {
    /// An empty bucket with an unbounded queue.
    pub fn new(config: BucketConfig) -> Self {
        Self {
            shell: Shell::new(config, Lane::new),
        }
    }

    /// Bounds the queue to `max_queue` waiters (0, the default, is unbounded): a request
    /// that would wait beyond it is answered [`AcquireError::QueueFull`] at once.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.shell.set_max_queue(max_queue);
        self
    }

    /// Whether grants come within microseconds of the instant they fit (`true`, the
    /// default) or on tokio's timer alone (`false`).
    ///
    /// Tokio's timer fires on whole milliseconds and can be 2 ms late. A grant that late
    /// is lost to the rate whenever the bucket would have run dry meanwhile: when
    /// `leak_rate × 2 ms > capacity − amount`. With `true` the bucket wakes on a finer
    /// source where the platform has one (a `timerfd` on Linux) and keeps the rate exact
    /// there; it costs more wake-ups, and so more CPU, where that slack is short (the
    /// [guide](crate::guide#timing) says how it aims). On other platforms it yields to the
    /// runtime through the last 2 ms before a grant whose slack is that short. It never
    /// spins on Linux, and an idle bucket is woken by nothing either way.
    ///
    /// With `false` it sleeps on tokio's timer alone, at the fewest wake-ups: the long-run
    /// rate stays exact as long as the capacity absorbs the timer's lateness.
    pub fn precise_timing(mut self, precise: bool) -> Self {
        self.shell.set_precise_timing(precise);
        self
    }
}

impl Shelled for BucketActor {
    type Lanes = Lane<Waiting>;

    fn shell(&mut self) -> &mut Shell<Lane<Waiting>> {
        &mut self.shell
    }
}

impl std::fmt::Debug for BucketActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BucketActor").field(&self.shell).finish()
    }
}

impl Actor for BucketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shell.receive().started(ctx);
    }
}

impl Supervised for BucketActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.shell.receive().restarting();
    }
}

impl Drop for BucketActor {
    /// No waiter is left without an answer, however the actor ends.
    fn drop(&mut self) {
        self.shell.receive().answer_everyone();
    }
}

/// Grants the request in its turn, or refuses it at once; see [`Acquire`].
impl Handler<Acquire> for BucketActor {
    type Result = Reply<AcquireResult>;

    fn handle(&mut self, request: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        self.shell.acquire((), request.amount, request.timeout, ctx)
    }
}

/// Answers at once, after granting what is due; see [`CapacityInfo`].
impl Handler<CapacityInfo> for BucketActor {
    type Result = Reply<Capacity>;

    fn handle(&mut self, query: CapacityInfo, ctx: &mut Context<Self>) -> Self::Result {
        Reply::now(self.shell.receive().capacity((), query.amount, ctx))
    }
}

/// Refunds or charges the difference at once; see [`Reconcile`].
impl Handler<Reconcile> for BucketActor {
    type Result = Reply<Result<(), AcquireError>>;

    fn handle(&mut self, costs: Reconcile, ctx: &mut Context<Self>) -> Self::Result {
        self.shell
            .receive()
            .reconcile((), costs.actual, costs.estimated, ctx)
    }
}

/// Applies the new capacity and rate from now on; see [`Reconfigure`].
impl Handler<Reconfigure> for BucketActor {
    type Result = Reply<()>;

    fn handle(&mut self, Reconfigure(config): Reconfigure, ctx: &mut Context<Self>) -> Reply<()> {
        self.shell.receive().reconfigure(config, ctx);
        Reply::now(())
    }
}

/// Answers the counters at once, after granting what is due; see [`Stats`].
impl Handler<Stats> for BucketActor {
    type Result = Reply<BucketStats>;

    fn handle(&mut self, _: Stats, ctx: &mut Context<Self>) -> Self::Result {
        let bucket = self.shell.receive();
        bucket.catch_up(ctx);
        Reply::now(*bucket.stats())
    }
}

/// Stops gracefully or at once; see [`Shutdown`].
impl Handler<Shutdown> for BucketActor {
    type Result = Reply<()>;

    fn handle(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        self.shell.receive().shutdown(shutdown, ctx)
    }
}
