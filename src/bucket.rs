use std::time::{Duration, Instant};

use crate::{AcquireError, BucketConfig};

/// The arithmetic of one leaky bucket: its level and when it last leaked.
///
/// It holds no clock and no actor: every method that depends on time takes `now`, so the
/// same arithmetic serves the [`BucketActor`](crate::BucketActor), a test with a fake
/// clock, or a store shared between processes.
///
/// The level drains continuously at [`BucketConfig::leak_rate`]. A request of `amount`
/// fits when `level + amount <= capacity`; granting it raises the level by `amount`.
/// Times are computed to the nanosecond: a request that would fit within a nanosecond
/// (or within a trillionth of the capacity, to absorb floating-point rounding) fits now.
///
/// ```
/// use std::time::{Duration, Instant};
/// use actix_leaky_bucket::{BucketConfig, LeakyBucket};
///
/// let start = Instant::now();
/// let mut bucket = LeakyBucket::new(BucketConfig::default(), start); // 10 per second
/// bucket.fill(10.0);
/// assert!(!bucket.fits(1.0));
/// assert_eq!(bucket.time_until_fits(1.0), Duration::from_millis(100));
///
/// bucket.leak(start + Duration::from_millis(100));
/// assert!(bucket.fits(1.0));
/// ```
#[derive(Debug, Clone)]
pub struct LeakyBucket {
    config: BucketConfig,
    level: f64,
    last_leak: Instant,
}

impl LeakyBucket {
    /// An empty bucket whose leak clock starts at `now`.
    pub fn new(config: BucketConfig, now: Instant) -> Self {
        Self {
            config,
            level: 0.0,
            last_leak: now,
        }
    }

    /// The bucket's configuration.
    pub fn config(&self) -> BucketConfig {
        self.config
    }

    /// The level as of the last [`leak`](Self::leak).
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Drains what leaked between the last call and `now` (a `now` in the past is ignored).
    pub fn leak(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_leak);
        if elapsed.is_zero() {
            return;
        }
        self.level = (self.level - elapsed.as_secs_f64() * self.config.leak_rate()).max(0.0);
        self.last_leak = now;
    }

    /// Checks that `amount` can ever be granted: a number from 0 to the capacity.
    pub fn check_amount(&self, amount: f64) -> Result<(), AcquireError> {
        if (0.0..=self.config.capacity()).contains(&amount) {
            Ok(())
        } else {
            Err(AcquireError::InvalidAmount {
                amount,
                capacity: self.config.capacity(),
            })
        }
    }

    /// `level + amount - capacity`: how much must leak before `amount` fits (limitor's
    /// `needed_capacity`; zero or less means it fits).
    pub fn needed(&self, amount: f64) -> f64 {
        // In this order no capacity up to f64::MAX overflows: level - capacity <= debt.
        (self.level - self.config.capacity()) + amount
    }

    /// Whether `amount` fits now.
    pub fn fits(&self, amount: f64) -> bool {
        self.needed(amount) <= self.rounding_slack()
    }

    /// How long until `amount` fits, if nothing else is granted meanwhile; zero if it
    /// fits now. `amount` may exceed the capacity: the wait for the last of several
    /// queued requests is `time_until_fits` of their sum.
    pub fn time_until_fits(&self, amount: f64) -> Duration {
        let needed = self.needed(amount);
        if needed <= self.rounding_slack() {
            return Duration::ZERO;
        }
        let nanos = (needed / self.config.leak_rate() * 1e9).round();
        if nanos < u64::MAX as f64 {
            Duration::from_nanos(nanos as u64)
        } else {
            Duration::MAX
        }
    }

    /// Raises the level by `amount`: the grant of a request. An amount that is not a
    /// positive number (NaN, negative) changes nothing.
    pub fn fill(&mut self, amount: f64) {
        if amount > 0.0 {
            self.level += amount;
        }
    }

    /// Lowers the level by `amount`, never below zero: a refund. An amount that is not a
    /// positive number (NaN, negative) changes nothing.
    pub fn drain(&mut self, amount: f64) {
        if amount > 0.0 {
            self.level = (self.level - amount).max(0.0);
        }
    }

    /// Switches to `config` from `now` on. The level is kept (leaked at the old rate up
    /// to `now`), so a smaller capacity can leave the bucket above it, in debt.
    pub fn reconfigure(&mut self, config: BucketConfig, now: Instant) {
        self.leak(now);
        self.config = config;
    }

    /// What a request may exceed the capacity by and still fit: one nanosecond of leak,
    /// plus a trillionth of the capacity to absorb floating-point rounding. Waits are
    /// rounded to the nearest nanosecond, so after waiting `time_until_fits` a request
    /// is within this slack and fits.
    fn rounding_slack(&self) -> f64 {
        self.config.leak_rate() * 1e-9 + self.config.capacity() * 1e-12
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn bucket(capacity: f64, period: Duration) -> (LeakyBucket, Instant) {
        let start = Instant::now();
        let config = BucketConfig::new(capacity, period).unwrap();
        (LeakyBucket::new(config, start), start)
    }

    #[test]
    fn starts_empty_and_grants_a_full_burst() {
        let (mut bucket, _) = bucket(10.0, ms(1000));
        for _ in 0..10 {
            assert!(bucket.fits(1.0));
            bucket.fill(1.0);
        }
        assert!(!bucket.fits(1.0));
        assert_eq!(bucket.needed(1.0), 1.0);
    }

    #[test]
    fn leaks_at_the_configured_rate() {
        let (mut bucket, start) = bucket(10.0, ms(1000));
        bucket.fill(10.0);
        bucket.leak(start + ms(250));
        assert_eq!(bucket.level(), 7.5);
        bucket.leak(start + ms(100)); // the past is ignored
        assert_eq!(bucket.level(), 7.5);
        bucket.leak(start + ms(5000));
        assert_eq!(bucket.level(), 0.0);
    }

    #[test]
    fn waits_are_exact_to_the_nanosecond() {
        let (mut bucket, start) = bucket(3.0, ms(1000));
        bucket.fill(3.0);
        assert_eq!(
            bucket.time_until_fits(1.0),
            Duration::from_nanos(333_333_333)
        );
        assert_eq!(bucket.time_until_fits(0.0), Duration::ZERO);
        bucket.leak(start + Duration::from_nanos(333_333_333));
        assert!(bucket.fits(1.0));
        bucket.fill(1.0);
        assert_eq!(
            bucket.time_until_fits(2.0),
            Duration::from_nanos(666_666_667)
        );
    }

    #[test]
    fn the_wait_for_a_queue_is_the_wait_for_its_sum() {
        let (mut bucket, start) = bucket(10.0, ms(1000));
        bucket.fill(10.0);
        // Five requests of 4 queue behind a full bucket: the last fits once 20 leaked.
        assert_eq!(bucket.time_until_fits(20.0), ms(2000));
        bucket.leak(start + ms(2000));
        assert!(bucket.fits(10.0));
    }

    #[test]
    fn fractional_amounts_add_up_without_drift() {
        let (mut bucket, start) = bucket(1.0, ms(1000));
        let mut now = start;
        for _ in 0..1_000_000 {
            let wait = bucket.time_until_fits(0.1);
            now += wait;
            bucket.leak(now);
            assert!(bucket.fits(0.1));
            bucket.fill(0.1);
        }
        // A million grants of 0.1 at 1 per second, after a burst of 1: 99_999 s.
        let elapsed = now - start;
        assert!(
            elapsed.abs_diff(Duration::from_secs(99_999)) < Duration::from_micros(1),
            "{elapsed:?}"
        );
    }

    #[test]
    fn an_impossible_wait_saturates() {
        let (mut bucket, _) = bucket(1.0, Duration::MAX);
        bucket.fill(1.0);
        assert_eq!(bucket.time_until_fits(1.0), Duration::MAX);
    }

    #[test]
    fn reconfigure_keeps_the_level_leaked_at_the_old_rate() {
        let (mut bucket, start) = bucket(10.0, ms(1000));
        bucket.fill(10.0);
        let slower = BucketConfig::new(4.0, ms(1000)).unwrap();
        bucket.reconfigure(slower, start + ms(500));
        assert_eq!(bucket.level(), 5.0);
        assert_eq!(bucket.needed(1.0), 2.0);
        assert_eq!(bucket.time_until_fits(1.0), ms(500));
    }

    #[test]
    fn debt_takes_the_level_above_capacity() {
        let (mut bucket, _) = bucket(10.0, ms(1000));
        bucket.fill(10.0);
        bucket.fill(5.0);
        assert_eq!(bucket.time_until_fits(1.0), ms(600));
    }

    #[test]
    fn fill_and_drain_ignore_what_is_not_a_positive_amount() {
        let (mut bucket, _) = bucket(10.0, ms(1000));
        bucket.fill(4.0);
        for amount in [f64::NAN, -1.0, f64::NEG_INFINITY, -0.0] {
            bucket.fill(amount);
            bucket.drain(amount);
            assert_eq!(bucket.level(), 4.0, "{amount}");
        }
    }

    #[test]
    fn a_bucket_near_f64_max_does_not_overflow() {
        let (mut bucket, start) = bucket(1e308, ms(1000));
        bucket.fill(1e308);
        assert_eq!(bucket.needed(1e308), 1e308);
        assert_eq!(bucket.time_until_fits(1e308), ms(1000));
        bucket.leak(start + ms(1000));
        assert!(bucket.fits(1e308));
    }

    #[test]
    fn drain_never_goes_below_zero() {
        let (mut bucket, _) = bucket(10.0, ms(1000));
        bucket.fill(3.0);
        bucket.drain(5.0);
        assert_eq!(bucket.level(), 0.0);
    }

    #[test]
    fn check_amount_accepts_zero_to_capacity() {
        let (bucket, _) = bucket(10.0, ms(1000));
        for amount in [0.0, -0.0, f64::MIN_POSITIVE, 5e-324, 0.5, 10.0] {
            assert_eq!(bucket.check_amount(amount), Ok(()), "{amount}");
        }
        for amount in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -5e-324,
            10.000001,
        ] {
            assert!(
                matches!(
                    bucket.check_amount(amount),
                    Err(AcquireError::InvalidAmount { capacity, .. }) if capacity == 10.0
                ),
                "{amount}"
            );
        }
    }
}
