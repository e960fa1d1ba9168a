//! What a shared bucket does while Redis cannot be reached.

use std::time::Duration;

use crate::core::{Limits, Outage};
use crate::{BucketConfig, ConfigError};

/// What a [`RedisBucketActor`](crate::RedisBucketActor) does while Redis cannot be
/// reached: it learns so within a response timeout (100 ms) of a call, answers every
/// request by this rule from then on, and tries Redis again every 100 ms until it answers.
///
/// ```
/// use actix_leaky_bucket::OnOutage;
///
/// let shared = OnOutage::local(0.25).unwrap(); // one process of four
/// assert_eq!(shared, OnOutage::Local(shared.share().unwrap()));
/// assert!(OnOutage::local(1.5).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum OnOutage {
    /// Refuses every request with [`AcquireError::Unavailable`](crate::AcquireError::Unavailable):
    /// nothing is granted that Redis has not reserved. The default.
    #[default]
    FailClosed,
    /// Grants every request, in its turn, and counts it in
    /// [`BucketStats::failed_open`](crate::BucketStats::failed_open): the service stays up,
    /// and the limit is not kept while Redis is away.
    FailOpen,
    /// Grants from a bucket of this process's own, at its share of the rate: with `n`
    /// processes each given `1/n`, together they keep about the limit. The local bucket
    /// has the shared bucket's capacity and starts full, so an outage grants no burst of
    /// its own; its grants are counted in
    /// [`BucketStats::granted_locally`](crate::BucketStats::granted_locally). Build it with
    /// [`OnOutage::local`].
    Local(Share),
}

/// A process's share of a shared bucket's rate: more than 0, at most 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(f64);

impl Share {
    /// The share as a fraction of the rate.
    pub fn get(&self) -> f64 {
        self.0
    }
}

impl OnOutage {
    /// [`OnOutage::Local`] at `share` of the rate: a number above 0 and at most 1.
    pub fn local(share: f64) -> Result<Self, ConfigError> {
        if share > 0.0 && share <= 1.0 {
            Ok(Self::Local(Share(share)))
        } else {
            Err(ConfigError::ShareOutOfRange { share })
        }
    }

    /// The share of [`OnOutage::Local`]; `None` for the other rules.
    pub fn share(&self) -> Option<Share> {
        match self {
            Self::Local(share) => Some(*share),
            Self::FailClosed | Self::FailOpen => None,
        }
    }

    /// The core's rule, for a bucket of `config` that tries Redis again `retry_after`
    /// after a failure.
    pub(super) fn rule(&self, config: &BucketConfig, retry_after: Duration) -> Outage {
        match self {
            Self::FailClosed => Outage::Refuse { retry_after },
            Self::FailOpen => Outage::Grant,
            Self::Local(share) => Outage::Local(Limits::per_second(
                config.leak_rate() * share.get(),
                config.capacity(),
            )),
        }
    }
}
