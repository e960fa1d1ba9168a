use std::time::Duration;

use crate::AcquireError;

/// What a bucket has done since it started: the answer to [`Stats`](crate::Stats).
///
/// Every request is counted once, by its answer: granted, refused for one reason, or
/// cancelled when its caller had gone before the answer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct BucketStats {
    /// Requests granted, at once or after waiting.
    pub granted: u64,
    /// The sum of the amounts granted.
    pub granted_amount: f64,
    /// Waiters whose callers gave up, counted when the bucket noticed (or when it answered
    /// one out of turn and nobody was listening).
    pub cancelled: u64,
    /// [`AcquireError::Timeout`] answers, given at once or after a waiter's deadline.
    pub timed_out: u64,
    /// [`AcquireError::QueueFull`] answers.
    pub queue_full: u64,
    /// [`AcquireError::InvalidAmount`] answers, to `Acquire` and to `Reconcile`.
    pub invalid: u64,
    /// [`AcquireError::ShuttingDown`] answers, to `Acquire` and to `Reconcile`.
    pub shutting_down: u64,
    /// Waiters now.
    pub queue_len: usize,
    /// The most waiters at any one time.
    pub max_queue_len: usize,
    /// The sum of the waits of granted requests, from receipt to grant.
    pub total_wait: Duration,
    /// The longest wait of a granted request.
    pub max_wait: Duration,
}

impl BucketStats {
    /// The mean wait of granted requests (zero before the first grant).
    pub fn mean_wait(&self) -> Duration {
        match u32::try_from(self.granted) {
            Ok(0) => Duration::ZERO,
            Ok(granted) => self.total_wait / granted,
            Err(_) => Duration::from_secs_f64(self.total_wait.as_secs_f64() / self.granted as f64),
        }
    }

    pub(crate) fn record_grant(&mut self, amount: f64, waited: Duration) {
        self.granted += 1;
        self.granted_amount += amount;
        if !waited.is_zero() {
            self.total_wait = self.total_wait.saturating_add(waited);
            self.max_wait = self.max_wait.max(waited);
        }
    }

    pub(crate) fn record_refusal(&mut self, error: &AcquireError) {
        let counter = match error {
            AcquireError::InvalidAmount { .. } => &mut self.invalid,
            AcquireError::Timeout { .. } => &mut self.timed_out,
            AcquireError::QueueFull { .. } => &mut self.queue_full,
            AcquireError::ShuttingDown => &mut self.shutting_down,
            AcquireError::Stopped => return,
        };
        *counter += 1;
    }

    pub(crate) fn record_queue_len(&mut self, queue_len: usize) {
        self.queue_len = queue_len;
        self.max_queue_len = self.max_queue_len.max(queue_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_wait_of_nothing_is_zero() {
        assert_eq!(BucketStats::default().mean_wait(), Duration::ZERO);
        let mut stats = BucketStats::default();
        stats.record_grant(1.0, Duration::from_millis(100));
        stats.record_grant(2.0, Duration::from_millis(300));
        assert_eq!(stats.mean_wait(), Duration::from_millis(200));
        assert_eq!((stats.granted, stats.granted_amount), (2, 3.0));
        assert_eq!(stats.max_wait, Duration::from_millis(300));
    }
}
