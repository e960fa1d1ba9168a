use actix::Message;

use crate::{Acquire, AcquireError, BucketStats, Capacity, CapacityInfo, Granted, Reconcile};

/// A message for the bucket of one key: `Keyed::new(key, message)` is answered with
/// exactly what `message` is answered by a single bucket.
///
/// It wraps [`Acquire`], [`CapacityInfo`] and [`Reconcile`]. The messages about the
/// whole actor ([`Shutdown`](crate::Shutdown), [`Reconfigure`](crate::Reconfigure),
/// [`Stats`](crate::Stats), [`KeyedStats`]) are sent as they are.
///
/// ```
/// use actix_leaky_bucket::{Acquire, Keyed};
///
/// let request = Keyed::new("alice", Acquire::new(2.0));
/// assert_eq!((request.key, request.message), ("alice", Acquire::new(2.0)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keyed<K, M> {
    /// Whose bucket: a user, a tenant, an address.
    pub key: K,
    /// What to ask of it.
    pub message: M,
}

impl<K, M> Keyed<K, M> {
    /// `message`, for the bucket of `key`.
    pub fn new(key: K, message: M) -> Self {
        Self { key, message }
    }
}

impl<K: 'static> Message for Keyed<K, Acquire> {
    type Result = Result<Granted, AcquireError>;
}

impl<K: 'static> Message for Keyed<K, CapacityInfo> {
    type Result = Capacity;
}

impl<K: 'static> Message for Keyed<K, Reconcile> {
    type Result = Result<(), AcquireError>;
}

/// Asks a per-key bucket for its keys and its counters: answered with
/// [`KeyedBucketStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyedStats;

impl Message for KeyedStats {
    type Result = KeyedBucketStats;
}

/// The answer to [`KeyedStats`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct KeyedBucketStats {
    /// The keys held now: those whose buckets are not empty or have someone waiting. A
    /// key whose bucket has leaked to zero with nobody waiting is indistinguishable from
    /// one never seen, and is not held.
    pub keys: usize,
    /// Keys dropped since the start because their buckets had emptied.
    pub evicted: u64,
    /// The counters of every key's bucket, summed (as [`Stats`](crate::Stats) answers).
    pub totals: BucketStats,
}

impl KeyedBucketStats {
    /// Adds `other`'s figures to these: the totals of several shards.
    pub(crate) fn add(&mut self, other: &KeyedBucketStats) {
        self.keys += other.keys;
        self.evicted += other.evicted;
        self.totals.add(&other.totals);
    }
}
