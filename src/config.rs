use std::time::Duration;

use crate::core::Limits;
use crate::error::ConfigError;

/// How much a bucket holds and how fast it drains: `capacity` units per `period`.
///
/// The bucket leaks at `capacity / period` units per second and starts empty, so a
/// burst of `capacity` is granted at once and later requests follow the leak.
///
/// ```
/// use std::time::Duration;
/// use actix_leaky_bucket::BucketConfig;
///
/// let config = BucketConfig::new(100.0, Duration::from_secs(10)).unwrap();
/// assert_eq!(config.capacity(), 100.0);
/// assert_eq!(config.period(), Duration::from_secs(10));
/// assert_eq!(config.leak_rate(), 10.0);
///
/// let err = BucketConfig::new(0.5, Duration::from_secs(1)).unwrap_err();
/// assert!(err.to_string().contains("at least 1"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketConfig {
    capacity: f64,
    period: Duration,
    leak_rate: f64,
    limits: Limits,
}

impl BucketConfig {
    /// A bucket of `capacity` units that drains completely in `period`.
    ///
    /// `capacity` must be finite and at least 1, `period` must not be zero, and
    /// `capacity / period` must be a finite rate. Any longer period is a bucket: with
    /// `Duration::MAX` it is a budget of `capacity` that refills only over 584 billion
    /// years, which is to say never.
    pub fn new(capacity: f64, period: Duration) -> Result<Self, ConfigError> {
        check_capacity(capacity)?;
        if period.is_zero() {
            return Err(ConfigError::ZeroPeriod);
        }
        let leak_rate = capacity / period.as_secs_f64();
        if !leak_rate.is_finite() {
            return Err(ConfigError::RateNotFinite { capacity, period });
        }
        Ok(Self {
            capacity,
            period,
            leak_rate,
            limits: Limits::per_period(capacity, period),
        })
    }

    /// A bucket that leaks `rate` units per second and holds at most `burst`: "10 per
    /// second with a burst of 5" is `from_rate(10.0, 5.0)`.
    ///
    /// `burst` follows the rules of a capacity in [`new`](Self::new); `rate` must be a
    /// positive, finite number, and `burst / rate` a period from a nanosecond to the
    /// largest `Duration`. The leak rate is exactly `rate`; the
    /// [`period`](Self::period), `burst / rate`, is rounded to the nanosecond.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_leaky_bucket::{BucketConfig, ConfigError};
    ///
    /// let config = BucketConfig::from_rate(10.0, 5.0).unwrap();
    /// assert_eq!(config, BucketConfig::new(5.0, Duration::from_millis(500)).unwrap());
    /// assert_eq!(config.leak_rate(), 10.0);
    ///
    /// assert_eq!(
    ///     BucketConfig::from_rate(0.0, 5.0),
    ///     Err(ConfigError::RateNotPositive { rate: 0.0 })
    /// );
    /// assert_eq!(
    ///     BucketConfig::from_rate(10.0, 0.5),
    ///     Err(ConfigError::CapacityBelowOne { capacity: 0.5 })
    /// );
    /// ```
    pub fn from_rate(rate: f64, burst: f64) -> Result<Self, ConfigError> {
        check_capacity(burst)?;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ConfigError::RateNotPositive { rate });
        }
        let period = Duration::try_from_secs_f64(burst / rate)
            .ok()
            .filter(|period| !period.is_zero())
            .ok_or(ConfigError::PeriodOutOfRange { rate, burst })?;
        Ok(Self {
            capacity: burst,
            period,
            leak_rate: rate,
            limits: Limits::per_second(rate, burst),
        })
    }

    /// The most the bucket holds: the largest burst and the largest single request.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// The time a full bucket takes to drain.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Units leaked per second: `capacity / period`.
    pub fn leak_rate(&self) -> f64 {
        self.leak_rate
    }

    /// The numbers the core's arithmetic runs on.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }
}

fn check_capacity(capacity: f64) -> Result<(), ConfigError> {
    if !capacity.is_finite() {
        return Err(ConfigError::CapacityNotFinite { capacity });
    }
    if capacity < 1.0 {
        return Err(ConfigError::CapacityBelowOne { capacity });
    }
    Ok(())
}

impl Default for BucketConfig {
    /// 10 units per second, with a burst of 10.
    fn default() -> Self {
        Self::new(10.0, Duration::from_secs(1)).expect("10 per second is a valid bucket")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_ten_per_second() {
        let config = BucketConfig::default();
        assert_eq!(
            config,
            BucketConfig::new(10.0, Duration::from_secs(1)).unwrap()
        );
        assert_eq!(config.leak_rate(), 10.0);
    }

    #[test]
    fn fractional_capacity_and_period() {
        let config = BucketConfig::new(2.5, Duration::from_millis(500)).unwrap();
        assert_eq!(config.leak_rate(), 5.0);
    }

    #[test]
    fn rejects_what_can_never_work() {
        let second = Duration::from_secs(1);
        for capacity in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                BucketConfig::new(capacity, second),
                Err(ConfigError::CapacityNotFinite { .. })
            ));
        }
        for capacity in [0.999, 0.0, -0.0, -1.0, f64::MIN_POSITIVE] {
            assert_eq!(
                BucketConfig::new(capacity, second),
                Err(ConfigError::CapacityBelowOne { capacity })
            );
        }
        assert_eq!(
            BucketConfig::new(1.0, Duration::ZERO),
            Err(ConfigError::ZeroPeriod)
        );
        assert!(matches!(
            BucketConfig::new(f64::MAX, Duration::from_nanos(1)),
            Err(ConfigError::RateNotFinite { .. })
        ));
        let slow = BucketConfig::new(1.0, Duration::MAX).unwrap();
        assert!(slow.leak_rate() > 0.0);
    }

    #[test]
    fn a_rate_and_a_burst_are_checked_as_new_checks_them() {
        for burst in [f64::NAN, f64::INFINITY, 0.5, -1.0] {
            let expected = BucketConfig::new(burst, Duration::from_secs(1)).unwrap_err();
            let error = BucketConfig::from_rate(10.0, burst).unwrap_err();
            assert_eq!(error.to_string(), expected.to_string());
        }
        for rate in [0.0, -0.0, -3.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                matches!(
                    BucketConfig::from_rate(rate, 5.0),
                    Err(ConfigError::RateNotPositive { .. })
                ),
                "{rate}"
            );
        }
        // A period too long for a Duration, or too short for a nanosecond.
        assert_eq!(
            BucketConfig::from_rate(1e-300, 1e10),
            Err(ConfigError::PeriodOutOfRange {
                rate: 1e-300,
                burst: 1e10
            })
        );
        assert_eq!(
            BucketConfig::from_rate(1e12, 1.0),
            Err(ConfigError::PeriodOutOfRange {
                rate: 1e12,
                burst: 1.0
            })
        );
        let thirds = BucketConfig::from_rate(3.0, 1.0).unwrap();
        assert_eq!(thirds.leak_rate(), 3.0);
        assert_eq!(thirds.period(), Duration::from_nanos(333_333_333));
    }
}
