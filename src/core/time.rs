//! The clock the core computes on: a plain time value, with no clock behind it.

use std::time::Duration;

/// A point on the limiter's clock: how long after an epoch that the front end chooses
/// (the start of a monotonic clock, or the zero of a remote clock such as Redis `TIME`).
///
/// It has nanosecond resolution and the range of [`Duration`] (about 584 billion
/// years), so that no wait a bucket can compute saturates before `Duration` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Time(Duration);

impl Time {
    /// The epoch itself.
    #[cfg(test)]
    pub(crate) const ZERO: Self = Self(Duration::ZERO);

    /// The instant `since_epoch` after the epoch.
    pub(crate) const fn since_epoch(since_epoch: Duration) -> Self {
        Self(since_epoch)
    }

    /// How long after the epoch this instant is.
    pub(crate) const fn elapsed(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this instant is; zero if it is not later.
    pub(crate) fn since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// The instant `wait` after this one; the end of the clock if that is beyond it.
    pub(crate) fn after(self, wait: Duration) -> Time {
        Self(self.0.saturating_add(wait))
    }

    /// This instant in nanoseconds, as a float: exact up to 2^53 ns (104 days), and
    /// within a part in 2^53 beyond.
    pub(crate) fn nanos_f64(duration: Duration) -> f64 {
        duration.as_secs() as f64 * 1e9 + f64::from(duration.subsec_nanos())
    }
}
