use std::time::Duration;

use actix::Message;
use actix_rt::time::Instant;

use crate::{AcquireError, BucketConfig, BucketStats, Capacity};

/// Asks the bucket for `amount` units and waits, in FIFO order, until they are granted.
///
/// The answer is [`Granted`], or an [`AcquireError`] saying why not. `timeout` counts from
/// the moment the bucket receives the request; `None` (or a timeout too long to represent,
/// such as `Duration::MAX`) waits as long as it takes.
///
/// Send it with `send` and await the answer. Dropping that future cancels the request: it
/// loses its place and consumes nothing. A request sent with `do_send` has nobody to
/// answer: it takes its amount if it fits at once, and is otherwise skipped (counted as
/// [`cancelled`](crate::BucketStats::cancelled), and never seen by
/// [`CapacityInfo`] or [`Stats`] as waiting).
///
/// ```
/// use std::time::Duration;
/// use actix_leaky_bucket::Acquire;
///
/// assert_eq!(Acquire::default(), Acquire { amount: 1.0, timeout: None });
/// let request = Acquire::new(2.5).with_timeout(Duration::from_millis(300));
/// assert_eq!(request.timeout, Some(Duration::from_millis(300)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acquire {
    /// How much to take: a number from 0 to the bucket's capacity.
    pub amount: f64,
    /// The longest the caller is willing to wait, counted from the bucket's receipt.
    pub timeout: Option<Duration>,
}

impl Acquire {
    /// A request for `amount` with no timeout.
    pub fn new(amount: f64) -> Self {
        Self {
            amount,
            timeout: None,
        }
    }

    /// The same request, answered [`AcquireError::Timeout`] if it cannot be granted within
    /// `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self
        }
    }
}

impl Default for Acquire {
    /// One unit, no timeout.
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl Message for Acquire {
    type Result = Result<Granted, AcquireError>;
}

/// A granted [`Acquire`], and the bucket's state just after it: what a response's
/// rate-limit headers are made of.
///
/// ```
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};
///
/// #[actix_rt::main]
/// async fn main() {
///     let config = BucketConfig::new(10.0, Duration::from_secs(1)).unwrap();
///     let bucket = BucketActor::new(config).start();
///     let granted = bucket.send(Acquire::new(4.0)).await.unwrap().unwrap();
///     assert_eq!((granted.capacity, granted.leak_rate), (10.0, 10.0));
///     assert!(granted.remaining() <= 6.0 && granted.remaining() > 5.9);
///     assert!(granted.empty_in() <= Duration::from_millis(400));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Granted {
    /// The amount granted.
    pub amount: f64,
    /// How long the request waited in the bucket, from receipt to grant.
    pub waited: Duration,
    /// When the bucket granted it, on tokio's clock. The conformance bound holds over these
    /// instants; a caller runs a little later, when its task is scheduled.
    pub granted_at: Instant,
    /// The bucket's level just after this grant, plus every amount still waiting in its
    /// queue: what must leak before the bucket is empty.
    ///
    /// For a bucket shared through Redis, the level is that of Redis's schedule as it last
    /// answered this process, plus every request of this process still waiting (some of
    /// which that schedule may count already): it errs high. While Redis is away and the
    /// rule is to grant, nothing is counted, and it is 0.
    pub backlog: f64,
    /// The bucket's capacity.
    pub capacity: f64,
    /// The bucket's leak rate, in units per second.
    pub leak_rate: f64,
}

impl Granted {
    /// What a request sent just after this grant could take at once: the room left in the
    /// bucket, less what waits in its queue (0 while the queue is longer than the room).
    pub fn remaining(&self) -> f64 {
        (self.capacity - self.backlog).max(0.0)
    }

    /// How long until the bucket has leaked empty, everything in its queue served, if
    /// nothing more comes: when the whole capacity fits again.
    pub fn empty_in(&self) -> Duration {
        Duration::try_from_secs_f64(self.backlog.max(0.0) / self.leak_rate).unwrap_or(Duration::MAX)
    }
}

/// Asks how full the bucket is, and whether `amount` would fit now. Reserves nothing: it only
/// brings the bucket up to date first, granting what is due.
///
/// A question, not a request, so it never fails: for an amount that an [`Acquire`] would
/// be refused as [`InvalidAmount`](AcquireError::InvalidAmount) (NaN, infinite, negative,
/// or above the capacity), [`Capacity::wait`] is `None`, as it is once the bucket is shut
/// down.
///
/// ```
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_leaky_bucket::{BucketActor, BucketConfig, CapacityInfo};
///
/// #[actix_rt::main]
/// async fn main() {
///     let bucket = BucketActor::new(BucketConfig::new(10.0, Duration::from_secs(1)).unwrap()).start();
///     let four = bucket.send(CapacityInfo::new(4.0)).await.unwrap();
///     assert!(four.has_capacity);
///     assert_eq!(four.wait, Some(Duration::ZERO));
///     let never = bucket.send(CapacityInfo::new(f64::NAN)).await.unwrap();
///     assert_eq!(never.wait, None);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityInfo {
    /// The amount to check for.
    pub amount: f64,
}

impl CapacityInfo {
    /// A query for `amount`.
    pub fn new(amount: f64) -> Self {
        Self { amount }
    }
}

impl Default for CapacityInfo {
    /// A query for one unit.
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl Message for CapacityInfo {
    type Result = Capacity;
}

/// Stops the bucket: gracefully, serving the queue first, or immediately.
///
/// Requests received after a `Shutdown` are answered [`AcquireError::ShuttingDown`]. The
/// reply to a graceful shutdown comes once every earlier request has been answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    graceful: bool,
}

impl Shutdown {
    /// Serves the requests already received, in order and at the normal rate, then stops.
    pub fn graceful() -> Self {
        Self { graceful: true }
    }

    /// Answers every waiting request [`AcquireError::ShuttingDown`] now and stops.
    pub fn immediate() -> Self {
        Self { graceful: false }
    }

    /// Whether this shutdown serves the queue first.
    pub fn is_graceful(&self) -> bool {
        self.graceful
    }
}

impl Message for Shutdown {
    type Result = ();
}

/// Settles the difference between a request's estimated and actual cost, once the
/// actual cost is known (for costs such as the tokens of a call to a language model).
///
/// Answered at once. A cost lower than estimated is refunded: the level drops (never below
/// zero) and waiters that now fit are granted at once. A cost higher than estimated is
/// charged at once as debt, since a cost already spent cannot wait: the level may rise
/// above the capacity, and the waiters behind wait for it to leak.
///
/// ```
/// use actix_leaky_bucket::Reconcile;
///
/// let settle = Reconcile::new(740.0, 1000.0); // 260 units come back
/// assert_eq!(settle, Reconcile { actual: 740.0, estimated: 1000.0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconcile {
    /// What the request really cost.
    pub actual: f64,
    /// What was acquired for it.
    pub estimated: f64,
}

impl Reconcile {
    /// Settles a request acquired as `estimated` that really cost `actual`.
    pub fn new(actual: f64, estimated: f64) -> Self {
        Self { actual, estimated }
    }
}

impl Message for Reconcile {
    type Result = Result<(), AcquireError>;
}

/// Changes the bucket's capacity and rate from now on.
///
/// The current level is kept, so reconfiguring grants no extra burst. The head of the queue
/// is re-planned at the new rate. A waiter whose amount exceeds the new capacity is
/// answered [`AcquireError::InvalidAmount`] at once; a waiter whose timeout can no longer
/// be met is answered [`AcquireError::Timeout`] one [`TIMER_TICK`](crate::TIMER_TICK)
/// after its deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconfigure(pub BucketConfig);

impl Message for Reconfigure {
    type Result = ();
}

/// Asks for the bucket's counters: answered with [`BucketStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats;

impl Message for Stats {
    type Result = BucketStats;
}
