use std::hash::Hash;

use actix::{Actor, Context, Handler, Supervised};

use super::{Keyed, KeyedBucketStats, KeyedStats};
use crate::core::{BucketStats, KeyedLanes, Lane};
use crate::shell::{AcquireResult, Reply, Shell, Shelled, Waiting};
use crate::{
    Acquire, AcquireError, BucketConfig, Capacity, CapacityInfo, Reconcile, Reconfigure, Shutdown,
    Stats,
};

/// One leaky bucket per key (per user, tenant, IP address), in one actor, under one
/// timer.
///
/// Each key's bucket keeps every promise of [`BucketActor`](crate::BucketActor): a burst
/// of the capacity then the exact leak, strict FIFO within the key, timeouts counted from
/// receipt, `QueueFull`, `InvalidAmount`, refunds and debts, graceful and immediate
/// shutdown with every waiter answered, and supervised restarts that keep every key's
/// state. One key never delays another beyond the actor's own cost per message.
///
/// Memory follows the active keys only: a key whose bucket has leaked to zero with nobody
/// waiting cannot be told apart from a key never seen, so the actor drops it (a key that
/// comes back starts with a full burst, as a new one would). Nothing to configure, and
/// nothing to call. An idle actor holds no keys and is woken by nothing.
///
/// ```
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_leaky_bucket::{Acquire, BucketConfig, Keyed, KeyedBucketActor, KeyedStats};
///
/// #[actix_rt::main]
/// async fn main() {
///     tokio::time::pause(); // this doctest runs on paused time: waits take no wall time
///     let start = tokio::time::Instant::now();
///     let per_user = BucketConfig::new(2.0, Duration::from_secs(1)).unwrap();
///     let buckets = KeyedBucketActor::<String>::new(per_user).start();
///
///     for user in ["alice", "alice", "bob", "alice"] {
///         let request = Keyed::new(user.to_string(), Acquire::new(1.0));
///         buckets.send(request).await.unwrap().unwrap();
///     }
///     // Alice's third unit waited half a second; Bob's did not wait for hers.
///     assert_eq!(start.elapsed(), Duration::from_millis(500));
///
///     // A second later both buckets have leaked to zero: nothing is held.
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     assert_eq!(buckets.send(KeyedStats).await.unwrap().keys, 0);
/// }
/// ```
///
/// Per-key FIFO holds because one actor handles its messages in order. To use more than
/// one core, [`KeyedBucketHandle::spawn_sharded`](crate::KeyedBucketHandle::spawn_sharded)
/// runs several such actors and sends each key always to the same one.
///
/// It runs in an actix system, as [`BucketActor`](crate::BucketActor) does; from any
/// other runtime, [`KeyedBucketHandle::spawn`](crate::KeyedBucketHandle::spawn) runs it
/// on a thread of its own.
pub struct KeyedBucketActor<K: Hash + Eq + Clone + Send + Unpin + 'static> {
    shell: Shell<KeyedLanes<K, Lane<Waiting>>>,
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> KeyedBucketActor<K> {
    /// No keys yet; every key's bucket will have `config`, and an unbounded queue.
    pub fn new(config: BucketConfig) -> Self {
        Self {
            shell: Shell::new(config, |_| KeyedLanes::default()),
        }
    }

    /// Bounds each key's queue to `max_queue` waiters (0, the default, is unbounded): a
    /// request that would wait beyond it is answered [`AcquireError::QueueFull`] at once.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.shell.set_max_queue(max_queue);
        self
    }

    /// As [`BucketActor::precise_timing`](crate::BucketActor::precise_timing): wake
    /// within microseconds of what is due (`true`, the default), or on tokio's timer
    /// alone.
    pub fn precise_timing(mut self, precise: bool) -> Self {
        self.shell.set_precise_timing(precise);
        self
    }

    fn keyed_stats(&mut self) -> KeyedBucketStats {
        let buckets = self.shell.receive();
        let (limits, now) = (buckets.rules().limits, buckets.now());
        let lanes = buckets.lanes();
        lanes.sweep(&limits, now);
        let (keys, evicted) = (lanes.len(), lanes.evicted());
        KeyedBucketStats {
            keys,
            evicted,
            totals: *buckets.stats(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Shelled for KeyedBucketActor<K> {
    type Lanes = KeyedLanes<K, Lane<Waiting>>;

    fn shell(&mut self) -> &mut Shell<Self::Lanes> {
        &mut self.shell
    }
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> std::fmt::Debug for KeyedBucketActor<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyedBucketActor")
            .field(&self.shell)
            .finish()
    }
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Actor for KeyedBucketActor<K> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shell.receive().started(ctx);
    }
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Supervised for KeyedBucketActor<K> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.shell.receive().restarting();
    }
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Drop for KeyedBucketActor<K> {
    /// No waiter of any key is left without an answer, however the actor ends.
    fn drop(&mut self) {
        self.shell.receive().answer_everyone();
    }
}

/// Grants the request in its turn in its key's bucket, or refuses it at once; see
/// [`Acquire`].
impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Handler<Keyed<K, Acquire>>
    for KeyedBucketActor<K>
{
    type Result = Reply<AcquireResult>;

    fn handle(&mut self, request: Keyed<K, Acquire>, ctx: &mut Context<Self>) -> Self::Result {
        let Keyed { key, message } = request;
        self.shell
            .acquire(key, message.amount, message.timeout, ctx)
    }
}

/// Answers at once for the key's bucket (a key not held is an empty bucket); see
/// [`CapacityInfo`].
impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Handler<Keyed<K, CapacityInfo>>
    for KeyedBucketActor<K>
{
    type Result = Reply<Capacity>;

    fn handle(&mut self, query: Keyed<K, CapacityInfo>, ctx: &mut Context<Self>) -> Self::Result {
        Reply::now(
            self.shell
                .receive()
                .capacity(query.key, query.message.amount, ctx),
        )
    }
}

/// Refunds or charges the difference in the key's bucket at once; see [`Reconcile`].
impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Handler<Keyed<K, Reconcile>>
    for KeyedBucketActor<K>
{
    type Result = Reply<Result<(), AcquireError>>;

    fn handle(&mut self, costs: Keyed<K, Reconcile>, ctx: &mut Context<Self>) -> Self::Result {
        let Keyed { key, message } = costs;
        self.shell
            .receive()
            .reconcile(key, message.actual, message.estimated, ctx)
    }
}

/// Applies the new capacity and rate to every key from now on; see [`Reconfigure`].
impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Handler<Reconfigure> for KeyedBucketActor<K> {
    type Result = Reply<()>;

    fn handle(&mut self, Reconfigure(config): Reconfigure, ctx: &mut Context<Self>) -> Reply<()> {
        self.shell.receive().reconfigure(config, ctx);
        Reply::now(())
    }
}

/// Answers the counters of every key, summed; see [`Stats`].
impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Handler<Stats> for KeyedBucketActor<K> {
    type Result = Reply<BucketStats>;

    fn handle(&mut self, _: Stats, ctx: &mut Context<Self>) -> Self::Result {
        let buckets = self.shell.receive();
        buckets.catch_up(ctx);
        Reply::now(*buckets.stats())
    }
}

/// Answers the keys held, the keys evicted and the summed counters, after dropping the
/// keys that have become idle; see [`KeyedStats`].
impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Handler<KeyedStats> for KeyedBucketActor<K> {
    type Result = Reply<KeyedBucketStats>;

    fn handle(&mut self, _: KeyedStats, ctx: &mut Context<Self>) -> Self::Result {
        self.shell.receive().catch_up(ctx);
        Reply::now(self.keyed_stats())
    }
}

/// Stops every key's bucket gracefully or at once; see [`Shutdown`].
impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Handler<Shutdown> for KeyedBucketActor<K> {
    type Result = Reply<()>;

    fn handle(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        self.shell.receive().shutdown(shutdown, ctx)
    }
}
