use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;

use super::{Keyed, KeyedBucketActor, KeyedBucketStats, KeyedStats};
use crate::shell::spawn_standalone;
use crate::{
    Acquire, AcquireError, BucketConfig, BucketStats, Capacity, CapacityInfo, Granted, Reconcile,
    Reconfigure, Shutdown, Stats,
};

/// A handle to per-key buckets for code that is not an actor, on one actor or on several
/// shards: cheap to clone, `Send`, and every method answers `Result<_, AcquireError>`,
/// with a stopped actor reported as [`AcquireError::Stopped`].
///
/// With shards, each key always goes to the same shard (by a hash of the key), so every
/// per-key promise holds; messages about the whole bucket go to every shard and their
/// answers are summed.
///
/// ```
/// use std::time::Duration;
/// use actix_leaky_bucket::{BucketConfig, KeyedBucketHandle};
///
/// #[tokio::main]
/// async fn main() {
///     let per_user = BucketConfig::from_rate(10.0, 2.0).unwrap(); // 10 per second, burst 2
///     let limits = KeyedBucketHandle::<String>::spawn(per_user);
///
///     limits.acquire("alice", 2.0).await.unwrap();
///     assert!(limits.try_acquire("alice", 1.0).await.is_err()); // alice waits ~100 ms
///     limits.try_acquire("bob", 1.0).await.unwrap(); // bob does not
///     let stats = limits.keyed_stats().await.unwrap();
///     assert_eq!((stats.keys, stats.totals.granted), (2, 2));
/// }
/// ```
#[derive(Debug)]
pub struct KeyedBucketHandle<K: Hash + Eq + Clone + Send + Unpin + 'static> {
    shards: Arc<[Addr<KeyedBucketActor<K>>]>,
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> Clone for KeyedBucketHandle<K> {
    fn clone(&self) -> Self {
        Self {
            shards: Arc::clone(&self.shards),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> KeyedBucketHandle<K> {
    /// Starts per-key buckets of `config` on a thread of their own, with an actix system
    /// of their own, for use from any async runtime; see
    /// [`BucketHandle::spawn`](crate::BucketHandle::spawn).
    ///
    /// # Panics
    ///
    /// If the operating system cannot create a thread.
    pub fn spawn(config: BucketConfig) -> Self {
        Self::spawn_with(move || KeyedBucketActor::new(config))
    }

    /// As [`spawn`](Self::spawn), for buckets that `make` builds with options.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create a thread.
    pub fn spawn_with(make: impl FnOnce() -> KeyedBucketActor<K> + Send + 'static) -> Self {
        Self::new(spawn_standalone("leaky-bucket-keyed", make))
    }

    /// Starts `shards` actors that `make` builds, each on a thread of its own: the keys
    /// are spread over them by a hash, so that per-key buckets use several cores.
    ///
    /// A key's bucket lives on one shard only, so it keeps every promise it would on one
    /// actor. `std::thread::available_parallelism()` is a natural count.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create the threads.
    pub fn spawn_sharded(
        shards: NonZeroUsize,
        make: impl Fn() -> KeyedBucketActor<K> + Send + Sync + 'static,
    ) -> Self {
        let make = Arc::new(make);
        let shards = (0..shards.get())
            .map(|i| {
                let make = Arc::clone(&make);
                spawn_standalone(&format!("leaky-bucket-shard-{i}"), move || make())
            })
            .collect();
        Self { shards }
    }

    /// A handle to the per-key buckets at `addr`.
    pub fn new(addr: Addr<KeyedBucketActor<K>>) -> Self {
        Self {
            shards: Arc::from([addr]),
        }
    }

    /// The address of each shard (one without sharding).
    pub fn shards(&self) -> &[Addr<KeyedBucketActor<K>>] {
        &self.shards
    }

    /// The shard that holds `key`'s bucket.
    pub fn shard(&self, key: &K) -> &Addr<KeyedBucketActor<K>> {
        // A fixed hash, the same in every process, independent of the maps' own.
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.shards[(hash % self.shards.len() as u64) as usize]
    }

    /// Waits, in FIFO order within `key`, until `amount` is granted from `key`'s bucket.
    pub async fn acquire(&self, key: impl Into<K>, amount: f64) -> Result<Granted, AcquireError> {
        let key = key.into();
        self.shard(&key)
            .send(Keyed::new(key, Acquire::new(amount)))
            .await?
    }

    /// Waits until `amount` is granted from `key`'s bucket, or answers
    /// [`AcquireError::Timeout`] (at once if `key`'s queue makes `timeout` impossible).
    pub async fn acquire_with_timeout(
        &self,
        key: impl Into<K>,
        amount: f64,
        timeout: Duration,
    ) -> Result<Granted, AcquireError> {
        let (key, request) = (key.into(), Acquire::new(amount).with_timeout(timeout));
        self.shard(&key).send(Keyed::new(key, request)).await?
    }

    /// Takes `amount` from `key`'s bucket only if it is granted at once; otherwise
    /// answers [`AcquireError::Timeout`] with the wait as `retry_after`.
    pub async fn try_acquire(
        &self,
        key: impl Into<K>,
        amount: f64,
    ) -> Result<Granted, AcquireError> {
        self.acquire_with_timeout(key, amount, Duration::ZERO).await
    }

    /// The level and queue of `key`'s bucket, and whether `amount` fits now.
    pub async fn capacity(&self, key: impl Into<K>, amount: f64) -> Result<Capacity, AcquireError> {
        let key = key.into();
        let query = Keyed::new(key.clone(), CapacityInfo::new(amount));
        Ok(self.shard(&key).send(query).await?)
    }

    /// Settles a request acquired from `key`'s bucket as `estimated` that really cost
    /// `actual`: see [`Reconcile`].
    pub async fn reconcile(
        &self,
        key: impl Into<K>,
        actual: f64,
        estimated: f64,
    ) -> Result<(), AcquireError> {
        let key = key.into();
        let costs = Keyed::new(key.clone(), Reconcile::new(actual, estimated));
        self.shard(&key).send(costs).await?
    }

    /// Changes every key's capacity and rate from now on: see [`Reconfigure`].
    pub async fn reconfigure(&self, config: BucketConfig) -> Result<(), AcquireError> {
        for shard in self.shards.iter() {
            shard.send(Reconfigure(config)).await?;
        }
        Ok(())
    }

    /// The counters of every key, summed over the shards (`max_queue_len` is then the sum
    /// of each shard's most).
    pub async fn stats(&self) -> Result<BucketStats, AcquireError> {
        let mut total = BucketStats::default();
        for shard in self.shards.iter() {
            total.add(&shard.send(Stats).await?);
        }
        Ok(total)
    }

    /// The keys held, the keys evicted, and the counters, summed over the shards.
    pub async fn keyed_stats(&self) -> Result<KeyedBucketStats, AcquireError> {
        let mut total = KeyedBucketStats::default();
        for shard in self.shards.iter() {
            total.add(&shard.send(KeyedStats).await?);
        }
        Ok(total)
    }

    /// Serves every key's waiters, then stops; answers once they are served.
    pub async fn shutdown_graceful(&self) -> Result<(), AcquireError> {
        self.shut_down(Shutdown::graceful()).await
    }

    /// Answers every waiter of every key [`AcquireError::ShuttingDown`] now and stops.
    pub async fn shutdown_immediate(&self) -> Result<(), AcquireError> {
        self.shut_down(Shutdown::immediate()).await
    }

    /// Sends `shutdown` to every shard at once, so that they drain side by side.
    async fn shut_down(&self, shutdown: Shutdown) -> Result<(), AcquireError> {
        let replies = self.shards.iter().map(|shard| shard.send(shutdown));
        for reply in futures::future::join_all(replies).await {
            reply?;
        }
        Ok(())
    }
}

impl<K: Hash + Eq + Clone + Send + Unpin + 'static> From<Addr<KeyedBucketActor<K>>>
    for KeyedBucketHandle<K>
{
    fn from(addr: Addr<KeyedBucketActor<K>>) -> Self {
        Self::new(addr)
    }
}
