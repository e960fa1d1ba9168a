use std::fmt;
use std::time::Duration;

use crate::core::Refusal;

/// Why a [`BucketConfig`](crate::BucketConfig) could not be built.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The capacity (or burst) was NaN or infinite.
    #[error(
        "capacity must be a finite number, got {}: pass a capacity of at least 1",
        Number(*.capacity)
    )]
    CapacityNotFinite {
        /// The capacity that was passed.
        capacity: f64,
    },
    /// The capacity (or burst) was below 1: a bucket must hold at least one unit.
    #[error(
        "capacity must be at least 1, got {}: for fewer than one unit per period, \
         keep capacity 1 and lengthen the period",
        Number(*.capacity)
    )]
    CapacityBelowOne {
        /// The capacity that was passed.
        capacity: f64,
    },
    /// The period given to [`BucketConfig::new`](crate::BucketConfig::new) was zero.
    #[error("period must not be zero: pass the time a full bucket takes to drain")]
    ZeroPeriod,
    /// `capacity / period` overflows.
    #[error(
        "capacity {} per {period:?} is not a finite rate: \
         use a smaller capacity or a longer period",
        Number(*.capacity)
    )]
    RateNotFinite {
        /// The capacity that was passed.
        capacity: f64,
        /// The period that was passed.
        period: Duration,
    },
    /// The rate given to [`BucketConfig::from_rate`](crate::BucketConfig::from_rate) was
    /// not a positive, finite number.
    #[error(
        "rate must be a positive, finite number of units per second, got {}: \
         for a bucket that never refills, use BucketConfig::new with a long period",
        Number(*.rate)
    )]
    RateNotPositive {
        /// The rate that was passed.
        rate: f64,
    },
    /// The rate and burst given to
    /// [`BucketConfig::from_rate`](crate::BucketConfig::from_rate) make a period, `burst /
    /// rate`, shorter than a nanosecond or longer than a `Duration` holds.
    #[error("{}", PeriodOutOfRange { rate: *.rate, burst: *.burst })]
    PeriodOutOfRange {
        /// The rate that was passed.
        rate: f64,
        /// The burst that was passed.
        burst: f64,
    },
    /// The share of the rate given to a process while a shared bucket's store is away was
    /// not above 0 and at most 1.
    #[error(
        "a process's share of the rate must be above 0 and at most 1, got {}: with n \
         processes, a share of 1/n each keeps about the limit",
        Number(*.share)
    )]
    ShareOutOfRange {
        /// The share that was passed.
        share: f64,
    },
}

/// Why a request was not granted.
///
/// [`InvalidAmount`](Self::InvalidAmount) can never succeed, whatever the caller waits;
/// [`Timeout`](Self::Timeout), [`QueueFull`](Self::QueueFull) and
/// [`Unavailable`](Self::Unavailable) are "not yet" and carry a hint,
/// [`retry_after`](Self::retry_after). After a shutdown, a request is answered
/// [`ShuttingDown`](Self::ShuttingDown) while the bucket's actor still runs and
/// [`Stopped`](Self::Stopped) once it has stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// The amount is NaN, infinite, negative, or larger than the bucket's capacity.
    #[error(
        "invalid amount {}: {}",
        Number(*.amount),
        invalid_amount_advice(*.amount, *.capacity)
    )]
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
        "the bucket's queue is full ({max_queue} {}): retry in {retry_after:?}, \
         when the head of the queue is due, or configure a larger max_queue",
        if *.max_queue == 1 { "waiter" } else { "waiters" }
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
    /// The bucket's actor has stopped, so its mailbox is closed.
    ///
    /// A bucket started without a `Supervisor` stops once a shutdown is complete. A
    /// request sent after that through [`BucketHandle`](crate::BucketHandle) or
    /// [`KeyedBucketHandle`](crate::KeyedBucketHandle) gets this answer. Sent with
    /// `addr.send(..)`, it gets actix's `Err(MailboxError::Closed)` ("Mailbox has
    /// closed") around the answer instead; `MailboxError` converts into this variant, so
    /// `addr.send(request).await?` in a function that returns `AcquireError` turns it into
    /// `Stopped`.
    #[error("the bucket's actor has stopped and can no longer answer: start a new bucket")]
    Stopped,
    /// The store that holds a shared bucket's level cannot be reached, and the bucket fails
    /// closed (`OnOutage::FailClosed`, feature `redis`): nothing is granted
    /// until it can be again.
    #[error(
        "the shared bucket's store cannot be reached: retry in {retry_after:?}, or choose \
         another outage policy (OnOutage) to grant while it is away"
    )]
    Unavailable {
        /// When the bucket next tries the store.
        retry_after: Duration,
    },
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
            Self::Timeout { retry_after, .. }
            | Self::QueueFull { retry_after, .. }
            | Self::Unavailable { retry_after } => Some(*retry_after),
            Self::InvalidAmount { .. } | Self::ShuttingDown | Self::Stopped => None,
        }
    }
}

impl From<actix::MailboxError> for AcquireError {
    fn from(_: actix::MailboxError) -> Self {
        Self::Stopped
    }
}

impl From<Refusal> for AcquireError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::InvalidAmount { amount, capacity } => Self::InvalidAmount { amount, capacity },
            Refusal::Timeout {
                amount,
                timeout,
                retry_after,
            } => Self::Timeout {
                amount,
                timeout,
                retry_after,
            },
            Refusal::QueueFull {
                max_queue,
                retry_after,
            } => Self::QueueFull {
                max_queue,
                retry_after,
            },
            Refusal::ShuttingDown => Self::ShuttingDown,
            Refusal::Unavailable { retry_after } => Self::Unavailable { retry_after },
        }
    }
}

fn invalid_amount_advice(amount: f64, capacity: f64) -> String {
    let capacity = Number(capacity);
    if amount > capacity.0 && amount.is_finite() {
        format!(
            "it exceeds the bucket's capacity {capacity} and can never be granted; \
             split the request or configure a larger capacity"
        )
    } else {
        format!("pass a finite amount from 0 to the bucket's capacity {capacity}")
    }
}

/// A number as a person reads it: plain where that is short, in scientific notation where
/// plain would run to dozens of digits (`1e300`, not three hundred of them).
struct Number(f64);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self.0 == 0.0 || !self.0.is_finite() || (1e-4..1e16).contains(&self.0.abs());
        if plain {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

/// The message of [`ConfigError::PeriodOutOfRange`], which says which end was passed.
struct PeriodOutOfRange {
    rate: f64,
    burst: f64,
}

impl fmt::Display for PeriodOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rate, burst) = (Number(self.rate), Number(self.burst));
        if self.burst / self.rate < 1e-9 {
            write!(
                f,
                "a burst of {burst} at {rate} per second drains in under a nanosecond: \
                 use a larger burst or a lower rate"
            )
        } else {
            write!(
                f,
                "a burst of {burst} at {rate} per second takes longer to drain than a \
                 Duration can hold (584 billion years): use a higher rate or a smaller burst"
            )
        }
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
        let amount = Number(*amount);
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
    fn numbers_far_from_one_are_printed_short_and_a_single_waiter_is_singular() {
        let huge = crate::BucketConfig::new(1e300, Duration::from_nanos(1)).unwrap_err();
        assert_eq!(
            huge.to_string(),
            "capacity 1e300 per 1ns is not a finite rate: \
             use a smaller capacity or a longer period"
        );
        let tiny = AcquireError::InvalidAmount {
            amount: 5e-324,
            capacity: 1e-300,
        };
        assert!(
            tiny.to_string().starts_with("invalid amount 5e-324: "),
            "{tiny}"
        );
        let one = AcquireError::QueueFull {
            max_queue: 1,
            retry_after: Duration::from_millis(5),
        };
        assert!(one.to_string().contains("(1 waiter)"), "{one}");
        let two = AcquireError::QueueFull {
            max_queue: 2,
            retry_after: Duration::from_millis(5),
        };
        assert!(two.to_string().contains("(2 waiters)"), "{two}");
    }

    #[test]
    fn a_rate_and_burst_out_of_range_say_which_end_and_what_to_do() {
        let fast = crate::BucketConfig::from_rate(1e12, 1.0).unwrap_err();
        assert_eq!(
            fast.to_string(),
            "a burst of 1 at 1000000000000 per second drains in under a nanosecond: \
             use a larger burst or a lower rate"
        );
        let slow = crate::BucketConfig::from_rate(1e-300, 1e10).unwrap_err();
        assert_eq!(
            slow.to_string(),
            "a burst of 10000000000 at 1e-300 per second takes longer to drain than a \
             Duration can hold (584 billion years): use a higher rate or a smaller burst"
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
