//! The counters of what a bucket did, changed through one path.

use std::time::Duration;

use super::Refusal;

/// What a bucket has done since it started: the answer to [`Stats`](crate::Stats).
///
/// Every request the bucket handles is counted once, by its answer: granted, refused for
/// one reason, or cancelled when nobody was left to hear the answer. Two kinds of request
/// are never handled, so never counted: one whose caller gave up before the bucket
/// received it (its message is discarded unseen), and one sent after the bucket stopped.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct BucketStats {
    /// Requests granted, at once or after waiting.
    pub granted: u64,
    /// The sum of the amounts granted.
    pub granted_amount: f64,
    /// Requests nobody was left to answer: waiters whose callers gave up (counted when
    /// the bucket noticed), waiters answered out of turn when nobody listened, and
    /// requests sent with `do_send` that did not fit at once.
    pub cancelled: u64,
    /// [`Timeout`](crate::AcquireError::Timeout) answers, given at once or after a
    /// waiter's deadline.
    pub timed_out: u64,
    /// [`QueueFull`](crate::AcquireError::QueueFull) answers.
    pub queue_full: u64,
    /// [`InvalidAmount`](crate::AcquireError::InvalidAmount) answers, to `Acquire` and to
    /// `Reconcile`.
    pub invalid: u64,
    /// [`ShuttingDown`](crate::AcquireError::ShuttingDown) answers, to `Acquire` and to
    /// `Reconcile`.
    pub shutting_down: u64,
    /// [`Unavailable`](crate::AcquireError::Unavailable) answers of a shared bucket whose
    /// store could not be reached.
    pub unavailable: u64,
    /// Grants a shared bucket made without its store, failing open; counted in `granted`
    /// too.
    pub failed_open: u64,
    /// Grants a shared bucket made from the bucket of its own process while its store
    /// could not be reached; counted in `granted` too.
    pub granted_locally: u64,
    /// Waiters now.
    pub queue_len: usize,
    /// The most waiters at any one time.
    pub max_queue_len: usize,
    /// The sum of the waits of granted requests, from receipt to grant.
    pub total_wait: Duration,
    /// The longest wait of a granted request.
    pub max_wait: Duration,
}

/// What happened to a request, for the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event<'a> {
    /// It joined the queue.
    Queued,
    /// It was granted.
    Granted { amount: f64, waited: Duration },
    /// It was refused.
    Refused(&'a Refusal),
    /// Nobody was left to answer it.
    Cancelled,
    /// The grant just counted was made without the store, failing open.
    FailedOpen,
    /// The grant just counted was made by the process's own bucket, the store away.
    GrantedLocally,
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

    /// Counts `event`; `left_queue` says whether the request was a waiter that has now
    /// left the queue.
    pub(crate) fn record(&mut self, event: Event<'_>, left_queue: bool) {
        if left_queue {
            self.queue_len -= 1;
        }
        match event {
            Event::Queued => {
                self.queue_len += 1;
                self.max_queue_len = self.max_queue_len.max(self.queue_len);
            }
            Event::Granted { amount, waited } => {
                self.granted += 1;
                self.granted_amount += amount;
                self.total_wait = self.total_wait.saturating_add(waited);
                self.max_wait = self.max_wait.max(waited);
            }
            Event::Refused(error) => {
                let counter = match error {
                    Refusal::InvalidAmount { .. } => &mut self.invalid,
                    Refusal::Timeout { .. } => &mut self.timed_out,
                    Refusal::QueueFull { .. } => &mut self.queue_full,
                    Refusal::ShuttingDown => &mut self.shutting_down,
                    Refusal::Unavailable { .. } => &mut self.unavailable,
                };
                *counter += 1;
            }
            Event::Cancelled => self.cancelled += 1,
            Event::FailedOpen => self.failed_open += 1,
            Event::GrantedLocally => self.granted_locally += 1,
        }
    }

    /// Adds `other`'s counters to these: the totals of several buckets.
    pub(crate) fn add(&mut self, other: &BucketStats) {
        self.granted += other.granted;
        self.granted_amount += other.granted_amount;
        self.cancelled += other.cancelled;
        self.timed_out += other.timed_out;
        self.queue_full += other.queue_full;
        self.invalid += other.invalid;
        self.shutting_down += other.shutting_down;
        self.unavailable += other.unavailable;
        self.failed_open += other.failed_open;
        self.granted_locally += other.granted_locally;
        self.queue_len += other.queue_len;
        self.max_queue_len += other.max_queue_len;
        self.total_wait = self.total_wait.saturating_add(other.total_wait);
        self.max_wait = self.max_wait.max(other.max_wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_wait_of_nothing_is_zero() {
        assert_eq!(BucketStats::default().mean_wait(), Duration::ZERO);
        let mut stats = BucketStats::default();
        let grant = |amount, ms| Event::Granted {
            amount,
            waited: Duration::from_millis(ms),
        };
        stats.record(grant(1.0, 100), false);
        stats.record(Event::Queued, false);
        stats.record(grant(2.0, 300), true);
        assert_eq!(stats.mean_wait(), Duration::from_millis(200));
        assert_eq!((stats.granted, stats.granted_amount), (2, 3.0));
        assert_eq!(stats.max_wait, Duration::from_millis(300));
        assert_eq!((stats.queue_len, stats.max_queue_len), (0, 1));
    }
}
