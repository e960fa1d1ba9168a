use std::future::Future;
use std::time::Duration;

use actix::{Addr, Message};
use futures::Stream;
use log::warn;

use crate::{
    Acquire, AcquireError, BucketActor, BucketConfig, BucketStats, Capacity, CapacityInfo, Granted,
    Reconcile, Reconfigure, Shutdown, Stats, Throttled,
};

/// A handle to a bucket for code that is not an actor: cheap to clone, `Send`, and every
/// method answers `Result<_, AcquireError>`, with a stopped actor reported as
/// [`AcquireError::Stopped`].
///
/// [`spawn`](Self::spawn) runs a bucket on a thread of its own, for use from any async
/// runtime; [`BucketHandle::from`] wraps the address of a bucket started in an actix
/// system.
///
/// ```
/// use std::time::Duration;
/// use actix_leaky_bucket::{AcquireError, BucketConfig, BucketHandle};
///
/// #[tokio::main]
/// async fn main() {
///     let bucket = BucketHandle::spawn(BucketConfig::new(2.0, Duration::from_secs(1)).unwrap());
///
///     bucket.acquire(2.0).await.unwrap();
///     // Nothing left now: the next unit comes in about half a second.
///     let refused = bucket.try_acquire(1.0).await.unwrap_err();
///     let retry_after = refused.retry_after().unwrap();
///     assert!(retry_after > Duration::from_millis(400) && retry_after <= Duration::from_millis(500));
///
///     bucket.shutdown_immediate().await.unwrap();
///     assert!(bucket.acquire(1.0).await.is_err());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct BucketHandle {
    addr: Addr<BucketActor>,
}

impl BucketHandle {
    /// Starts a bucket of `config` on a thread of its own, with an actix system of its
    /// own, and returns a handle to it: for programs that are not actix systems, under any
    /// async runtime (tokio's current-thread or multi-thread, or another).
    ///
    /// The thread ends once the bucket has stopped: after a [`Shutdown`], or when the last
    /// handle (and every address taken from [`addr`](Self::addr)) is dropped and every
    /// waiter has been answered.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create a thread.
    pub fn spawn(config: BucketConfig) -> Self {
        Self::spawn_with(move || BucketActor::new(config))
    }

    /// As [`spawn`](Self::spawn), for a bucket that `make` builds with options:
    /// `BucketHandle::spawn_with(move || BucketActor::new(config).max_queue(100))`.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create a thread.
    pub fn spawn_with(make: impl FnOnce() -> BucketActor + Send + 'static) -> Self {
        Self::new(crate::shell::spawn_standalone("leaky-bucket", make))
    }

    /// A handle to the bucket at `addr`.
    pub fn new(addr: Addr<BucketActor>) -> Self {
        Self { addr }
    }

    /// The bucket's address, for sending messages directly.
    pub fn addr(&self) -> &Addr<BucketActor> {
        &self.addr
    }

    /// Waits, in FIFO order, until `amount` is granted.
    pub async fn acquire(&self, amount: f64) -> Result<Granted, AcquireError> {
        self.ask(Acquire::new(amount)).await?
    }

    /// Waits until `amount` is granted, or answers [`AcquireError::Timeout`] (at once if
    /// the queue ahead makes `timeout` impossible).
    pub async fn acquire_with_timeout(
        &self,
        amount: f64,
        timeout: Duration,
    ) -> Result<Granted, AcquireError> {
        self.ask(Acquire::new(amount).with_timeout(timeout)).await?
    }

    /// Takes `amount` only if it is granted at once: when it fits and nobody waits ahead.
    /// Otherwise answers [`AcquireError::Timeout`], whose `retry_after` says when it would
    /// be granted. Never jumps the queue.
    pub async fn try_acquire(&self, amount: f64) -> Result<Granted, AcquireError> {
        self.acquire_with_timeout(amount, Duration::ZERO).await
    }

    /// The bucket's level and queue, and whether `amount` fits now.
    pub async fn capacity(&self, amount: f64) -> Result<Capacity, AcquireError> {
        self.ask(CapacityInfo::new(amount)).await
    }

    /// Settles a request acquired as `estimated` that really cost `actual`: see
    /// [`Reconcile`].
    pub async fn reconcile(&self, actual: f64, estimated: f64) -> Result<(), AcquireError> {
        self.ask(Reconcile::new(actual, estimated)).await?
    }

    /// Changes the capacity and rate from now on: see [`Reconfigure`].
    pub async fn reconfigure(&self, config: BucketConfig) -> Result<(), AcquireError> {
        self.ask(Reconfigure(config)).await
    }

    /// The bucket's counters.
    pub async fn stats(&self) -> Result<BucketStats, AcquireError> {
        self.ask(Stats).await
    }

    /// Serves the requests already received, then stops; answers once they are served.
    pub async fn shutdown_graceful(&self) -> Result<(), AcquireError> {
        self.ask(Shutdown::graceful()).await
    }

    /// Answers every waiter [`AcquireError::ShuttingDown`] now and stops.
    pub async fn shutdown_immediate(&self) -> Result<(), AcquireError> {
        self.ask(Shutdown::immediate()).await
    }

    /// Runs `call` under the limit: acquires `estimated`, awaits `call`, then reconciles
    /// the cost `actual_cost` reads from its output. If the acquire fails, `call` is not
    /// run.
    ///
    /// The output is returned even if the reconcile fails (the call has happened): an
    /// invalid actual cost, such as NaN, is logged and the estimate stands.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_leaky_bucket::{BucketConfig, BucketHandle};
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let config = BucketConfig::new(1000.0, Duration::from_secs(60)).unwrap();
    ///     let tokens = BucketHandle::spawn(config);
    ///
    ///     // Estimate 300 tokens; the call reports that it used 120.
    ///     let answer = tokens
    ///         .metered(300.0, async { ("four", 120) }, |(_, used)| *used as f64)
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(answer.0, "four");
    ///     // The level is what was really used, less what leaked since (about 17 a second).
    ///     let level = tokens.capacity(0.0).await.unwrap().level;
    ///     assert!(level <= 120.0 && level > 110.0, "{level}");
    /// }
    /// ```
    pub async fn metered<T>(
        &self,
        estimated: f64,
        call: impl Future<Output = T>,
        actual_cost: impl FnOnce(&T) -> f64,
    ) -> Result<T, AcquireError> {
        self.acquire(estimated).await?;
        let output = call.await;
        let actual = actual_cost(&output);
        if let Err(error) = self.reconcile(actual, estimated).await {
            // Nobody else hears of this error: the caller gets the call's output.
            warn!("could not reconcile actual cost {actual} with estimate {estimated}: {error}");
        }
        Ok(output)
    }

    /// Lets each item of `stream` through only once its cost, `cost(&item)`, is acquired:
    /// see [`Throttled`].
    pub fn throttle<S, F>(&self, stream: S, cost: F) -> Throttled<S, F>
    where
        S: Stream,
        F: FnMut(&S::Item) -> f64,
    {
        Throttled::new(stream, self.clone(), cost)
    }

    async fn ask<M>(&self, message: M) -> Result<M::Result, AcquireError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        BucketActor: actix::Handler<M>,
    {
        Ok(self.addr.send(message).await?)
    }
}

impl From<Addr<BucketActor>> for BucketHandle {
    fn from(addr: Addr<BucketActor>) -> Self {
        Self::new(addr)
    }
}
