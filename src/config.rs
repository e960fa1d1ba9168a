use std::time::Duration;

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
}

impl BucketConfig {
    /// A bucket of `capacity` units that drains completely in `period`.
    ///
    /// `capacity` must be finite and at least 1, `period` must not be zero, and
    /// `capacity / period` must be a finite rate.
    pub fn new(capacity: f64, period: Duration) -> Result<Self, ConfigError> {
        if !capacity.is_finite() {
            return Err(ConfigError::CapacityNotFinite { capacity });
        }
        if capacity < 1.0 {
            return Err(ConfigError::CapacityBelowOne { capacity });
        }
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
}

impl Default for BucketConfig {
    /// 10 units per second, the default of limitor's `BucketConfig`.
    fn default() -> Self {
        Self {
            capacity: 10.0,
            period: Duration::from_secs(1),
            leak_rate: 10.0,
        }
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
}
