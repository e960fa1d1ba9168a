use std::time::Duration;

/// Why a [`BucketConfig`](crate::BucketConfig) could not be built.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The capacity was NaN or infinite.
    #[error("capacity must be a finite number, got {capacity}: pass a capacity of at least 1")]
    CapacityNotFinite {
        /// The capacity that was passed.
        capacity: f64,
    },
    /// The capacity was below 1 (limitor's rule).
    #[error(
        "capacity must be at least 1, got {capacity}: for fewer than one unit per period, \
         keep capacity 1 and lengthen the period"
    )]
    CapacityBelowOne {
        /// The capacity that was passed.
        capacity: f64,
    },
    /// The period was zero.
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
}

/// Why a request was not granted.
///
/// [`InvalidAmount`](Self::InvalidAmount) can never succeed, whatever the caller waits;
/// [`Timeout`](Self::Timeout) and [`QueueFull`](Self::QueueFull) are "not yet" and carry a
/// `retry_after` hint.
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
    #[error(
        "acquiring {amount} would take {retry_after:?}, longer than the timeout of {timeout:?}: \
         retry in {retry_after:?} or allow a longer timeout"
    )]
    Timeout {
        /// The amount that was asked for.
        amount: f64,
        /// The timeout the request carried.
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
    /// The bucket received a `Shutdown` before this request and grants nothing more.
    #[error(
        "the bucket is shutting down and grants nothing more: send requests to a running bucket"
    )]
    ShuttingDown,
    /// The bucket's actor has stopped, so its mailbox is closed (what actix reports as a
    /// `MailboxError`, for callers that go through a [`BucketHandle`](crate::BucketHandle)).
    #[error("the bucket's actor has stopped and can no longer answer: start a new bucket")]
    Stopped,
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
    }
}
