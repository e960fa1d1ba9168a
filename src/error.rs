use std::fmt;
use std::time::Duration;

/// Why a [`BucketConfig`](crate::BucketConfig) could not be built.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The capacity (or burst) was NaN or infinite.
    #[error("capacity must be a finite number, got {capacity}: pass a capacity of at least 1")]
    CapacityNotFinite {
        /// The capacity that was passed.
        capacity: f64,
    },
    /// The capacity (or burst) was below 1 (limitor's rule).
    #[error(
        "capacity must be at least 1, got {capacity}: for fewer than one unit per period, \
         keep capacity 1 and lengthen the period"
    )]
    CapacityBelowOne {
        /// The capacity that was passed.
        capacity: f64,
    },
    /// The period was zero, or a rate and burst made it shorter than a nanosecond.
    #[error("period must be positive and non-zero: pass the time a full bucket takes to drain")]
    ZeroPeriod,
    /// `capacity / period` overflows.
    #[error(
        "capacity {capacity} per {period:?} is not a finite rate: \
         use a smaller capacity or a longer period"
    )]
    RateNotFinite {
        /// The capacity that was passed.
        capacity: f64,
        /// The period that was passed.
        period: Duration,
    },
    /// The rate given to [`BucketConfig::from_rate`](crate::BucketConfig::from_rate) was
    /// not a positive, finite number, or so small that the period overflows a `Duration`.
    #[error(
        "rate must be a positive, finite number of units per second, got {rate}: \
         for a slower bucket, use BucketConfig::new with a longer period"
    )]
    RateNotPositive {
        /// The rate that was passed.
        rate: f64,
    },
}

/// Why a request was not granted.
///
/// [`InvalidAmount`](Self::InvalidAmount) can never succeed, whatever the caller waits;
/// [`Timeout`](Self::Timeout) and [`QueueFull`](Self::QueueFull) are "not yet" and carry a
/// hint, [`retry_after`](Self::retry_after). After a shutdown, a request is answered
/// [`ShuttingDown`](Self::ShuttingDown) while the bucket's actor still runs and
/// [`Stopped`](Self::Stopped) once it has stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// The amount is NaN, infinite, negative, or larger than the bucket's capacity.
    #[error("invalid amount {amount}: {}", invalid_amount_advice(*.amount, *.capacity))]
    InvalidAmount {
        /// The amount that was asked for.
        amount: f64,
        /// The bucket's capacity, the largest amount it can ever grant at once.
        capacity: f64,
    },
    /// The request could not be granted within its timeout.
    #[error("{}", TimeoutMessage { amount: *.amount, timeout: *.timeout, retry_after: *.retry_after })]
    Timeout {
        /// The amount that was asked for.
        amount: f64,
        /// The timeout the request carried (zero for a try-acquire).
        timeout: Duration,
        /// How long the request would have waited with the queue as it stood: when a
        /// retry has a fair chance.
        retry_after: Duration,
    },
    /// The bucket already holds `max_queue` waiters.
    #[error(
        "the bucket's queue is full ({max_queue} waiters): retry in {retry_after:?}, \
         when the head of the queue is due, or configure a larger max_queue"
    )]
    QueueFull {
        /// The bucket's bound on waiters.
        max_queue: usize,
        /// When the head of the queue is due to leave it.
        retry_after: Duration,
    },
    /// The bucket has been shut down and grants nothing more.
    ///
    /// The answer to a request that arrives after a [`Shutdown`](crate::Shutdown) while
    /// the actor still runs (during a graceful shutdown's drain, or for good under a
    /// `Supervisor`, which keeps a closed bucket alive), and to every waiter still queued
    /// when an immediate shutdown comes or the actor ends.
    #[error(
        "the bucket has been shut down and grants nothing more: send requests to a running bucket"
    )]
    ShuttingDown,
    /// The bucket's actor has stopped, so its mailbox is closed: what actix reports as
    /// a `MailboxError`, which converts into this.
    ///
    /// A bucket started without a `Supervisor` stops once a shutdown is complete; a
    /// request sent after that gets this answer.
    #[error("the bucket's actor has stopped and can no longer answer: start a new bucket")]
    Stopped,
}

impl AcquireError {
    /// When a retry has a fair chance: `Some` for the "not yet" answers,
    /// [`Timeout`](Self::Timeout) and [`QueueFull`](Self::QueueFull); `None` for those
    /// that no wait can change.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_leaky_bucket::AcquireError;
    ///
    /// let full = AcquireError::QueueFull { max_queue: 8, retry_after: Duration::from_millis(40) };
    /// assert_eq!(full.retry_after(), Some(Duration::from_millis(40)));
    /// assert_eq!(AcquireError::ShuttingDown.retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Timeout { retry_after, .. } | Self::QueueFull { retry_after, .. } => {
                Some(*retry_after)
            }
            Self::InvalidAmount { .. } | Self::ShuttingDown | Self::Stopped => None,
        }
    }
}

impl From<actix::MailboxError> for AcquireError {
    fn from(_: actix::MailboxError) -> Self {
        Self::Stopped
    }
}

fn invalid_amount_advice(amount: f64, capacity: f64) -> String {
    if amount > capacity && amount.is_finite() {
        format!(
            "it exceeds the bucket's capacity {capacity} and can never be granted; \
             split the request or configure a larger capacity"
        )
    } else {
        format!("pass a finite amount from 0 to the bucket's capacity {capacity}")
    }
}

/// The message of [`AcquireError::Timeout`], worded for a try-acquire when the timeout is
/// zero.
struct TimeoutMessage {
    amount: f64,
    timeout: Duration,
    retry_after: Duration,
}

impl fmt::Display for TimeoutMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            amount,
            timeout,
            retry_after,
        } = self;
        if timeout.is_zero() {
            write!(
                f,
                "{amount} is not available now: it would be granted in {retry_after:?}; \
                 retry then, or acquire with a timeout to wait for it"
            )
        } else {
            write!(
                f,
                "acquiring {amount} would take {retry_after:?}, longer than the timeout of \
                 {timeout:?}: retry in {retry_after:?} or allow a longer timeout"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let too_big = AcquireError::InvalidAmount {
            amount: 12.0,
            capacity: 10.0,
        };
        assert_eq!(
            too_big.to_string(),
            "invalid amount 12: it exceeds the bucket's capacity 10 and can never be granted; \
             split the request or configure a larger capacity"
        );
        let nan = AcquireError::InvalidAmount {
            amount: f64::NAN,
            capacity: 10.0,
        };
        assert_eq!(
            nan.to_string(),
            "invalid amount NaN: pass a finite amount from 0 to the bucket's capacity 10"
        );
        let timeout = AcquireError::Timeout {
            amount: 2.0,
            timeout: Duration::from_millis(50),
            retry_after: Duration::from_millis(200),
        };
        assert_eq!(
            timeout.to_string(),
            "acquiring 2 would take 200ms, longer than the timeout of 50ms: \
             retry in 200ms or allow a longer timeout"
        );
        let try_acquire = AcquireError::Timeout {
            amount: 1.0,
            timeout: Duration::ZERO,
            retry_after: Duration::from_micros(499_900),
        };
        assert_eq!(
            try_acquire.to_string(),
            "1 is not available now: it would be granted in 499.9ms; \
             retry then, or acquire with a timeout to wait for it"
        );
    }

    #[test]
    fn only_not_yet_answers_have_a_retry_hint() {
        let wait = Duration::from_millis(7);
        let timeout = AcquireError::Timeout {
            amount: 1.0,
            timeout: Duration::ZERO,
            retry_after: wait,
        };
        assert_eq!(timeout.retry_after(), Some(wait));
        let invalid = AcquireError::InvalidAmount {
            amount: -1.0,
            capacity: 1.0,
        };
        for never in [invalid, AcquireError::ShuttingDown, AcquireError::Stopped] {
            assert_eq!(never.retry_after(), None, "{never:?}");
        }
    }
}
