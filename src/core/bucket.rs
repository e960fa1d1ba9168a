//! The arithmetic of one leaky bucket: its level, and when it last leaked.

use std::time::Duration;

use super::{Refusal, Time, Wide};

/// How far above the capacity a request may reach and still fit, as a fraction of the
/// capacity: what floating-point rounding needs, and no more.
///
/// The level is kept to twice the precision of a float ([`Wide`]), so it does not drift;
/// what rounds is the test itself, `level - capacity + amount` brought back to a float,
/// by a unit in the last place of the capacity, and the wait computed from it. The
/// tolerance, 2^-50 of the capacity, is between 4 and 8 units in the last place of the
/// capacity (exactly 4 when the capacity is a power of two): it absorbs both.
pub(crate) const ROUNDING: f64 = 4.0 * f64::EPSILON;

/// Capacities above 2^CEILING are computed in units scaled down by a power of two (an
/// exact operation), so that sums of many full requests stay finite.
const CEILING: i32 = 900;

/// The numbers the arithmetic of a bucket needs: its capacity and its leak.
///
/// Every amount inside the core is in scaled units: the caller's amount times `scale`, a
/// power of two that is 1 for every capacity up to 2^900 (about 8.5e270).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// In the caller's units, against which amounts are checked.
    capacity: f64,
    /// Scaled.
    scaled_capacity: f64,
    /// Scaled units leaked per nanosecond.
    per_nano: Wide,
    /// [`ROUNDING`] of the capacity, scaled.
    tolerance: f64,
    scale: f64,
}

impl Limits {
    /// A bucket of `capacity` that leaks all of it in `period`.
    pub(crate) fn per_period(capacity: f64, period: Duration) -> Self {
        Self::new(capacity, capacity, Time::nanos_f64(period))
    }

    /// A bucket that leaks `rate` units per second and holds at most `burst`.
    pub(crate) fn per_second(rate: f64, burst: f64) -> Self {
        Self::new(burst, rate, 1e9)
    }

    /// A bucket of `capacity` that leaks `amount` units every `nanos` nanoseconds.
    fn new(capacity: f64, amount: f64, nanos: f64) -> Self {
        let exponent = capacity.log2().floor() as i32;
        let scale = if exponent > CEILING {
            2f64.powi(CEILING - exponent)
        } else {
            1.0
        };
        Self {
            capacity,
            scaled_capacity: capacity * scale,
            per_nano: Wide::quotient(amount, nanos).scaled(scale),
            tolerance: capacity * scale * ROUNDING,
            scale,
        }
    }

    /// The capacity, in the caller's units.
    pub(crate) fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Whether `amount` can ever be granted: a number from 0 to the capacity.
    pub(crate) fn check(&self, amount: f64) -> Result<(), Refusal> {
        let capacity = self.capacity();
        if (0.0..=capacity).contains(&amount) {
            Ok(())
        } else {
            Err(Refusal::InvalidAmount { amount, capacity })
        }
    }

    /// `amount` in the core's scaled units.
    pub(crate) fn scaled(&self, amount: f64) -> f64 {
        amount * self.scale
    }

    /// The capacity, scaled.
    pub(crate) fn scaled_capacity(&self) -> f64 {
        self.scaled_capacity
    }

    /// `scaled` in the caller's units.
    pub(crate) fn unscaled(&self, scaled: f64) -> f64 {
        scaled / self.scale
    }

    /// How long the bucket takes to leak `scaled` units, rounded down.
    pub(crate) fn time_to_leak(&self, scaled: f64) -> Duration {
        duration_from_nanos(self.nanos_to_leak(scaled), f64::floor)
    }

    /// How long the bucket takes to leak `amount` (in the caller's units), rounded up: the
    /// time a reservation of `amount` takes on a schedule of reservations.
    pub(crate) fn reservation_time(&self, amount: f64) -> Duration {
        duration_from_nanos(self.nanos_to_leak(self.scaled(amount)), f64::ceil)
    }

    /// How long a full bucket takes to leak, rounded down: how far ahead of now a schedule
    /// of reservations may reach and still grant at once.
    pub(crate) fn burst_time(&self) -> Duration {
        self.time_to_leak(self.scaled_capacity)
    }

    /// How much (in the caller's units) leaks in `time`.
    pub(crate) fn leaked_in(&self, time: Duration) -> f64 {
        self.unscaled(Time::nanos_f64(time) * self.per_nano.value())
    }

    /// How many nanoseconds the bucket takes to leak `scaled` units.
    fn nanos_to_leak(&self, scaled: f64) -> f64 {
        Wide::divide(scaled, self.per_nano)
    }
}

/// The level of one bucket and the instant it was computed for.
///
/// It holds no clock and no configuration: every method takes the [`Limits`] and, where
/// time matters, `now`, so that one set of limits serves any number of buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    /// Scaled.
    level: Wide,
    at: Time,
}

impl Bucket {
    /// An empty bucket whose leak clock starts at `now`.
    pub(crate) fn new(now: Time) -> Self {
        Self {
            level: Wide::ZERO,
            at: now,
        }
    }

    /// The level as of the last [`leak`](Self::leak), in the caller's units.
    pub(crate) fn level(&self, limits: &Limits) -> f64 {
        limits.unscaled(self.level.value())
    }

    /// Drains what leaked between the last call and `now` (a `now` in the past is ignored).
    pub(crate) fn leak(&mut self, limits: &Limits, now: Time) {
        if now <= self.at {
            return;
        }
        if self.level.value() > 0.0 {
            let elapsed = Time::nanos_f64(now.since(self.at));
            self.level = self.level.minus_product(elapsed, limits.per_nano);
            if self.level.value() <= 0.0 {
                self.level = Wide::ZERO;
            }
        }
        self.at = now;
    }

    /// `level + scaled - capacity`, scaled: how much must leak before `scaled` fits. In
    /// this order no capacity up to `f64::MAX`
    /// overflows: `level - capacity` is at most the debt.
    fn excess(&self, limits: &Limits, scaled: f64) -> f64 {
        self.level
            .plus(-limits.scaled_capacity)
            .plus(scaled)
            .value()
    }

    /// How much must leak before `amount` fits, in the caller's units (negative if it
    /// fits with room to spare).
    pub(crate) fn needed(&self, limits: &Limits, amount: f64) -> f64 {
        limits.unscaled(self.excess(limits, limits.scaled(amount)))
    }

    /// Whether `scaled` fits now, to the rounding [`ROUNDING`] allows.
    pub(crate) fn fits(&self, limits: &Limits, scaled: f64) -> bool {
        self.excess(limits, scaled) <= limits.tolerance
    }

    /// How long until `scaled` fits, if nothing else is granted meanwhile; zero if it fits
    /// now, and never early. `scaled` may exceed the capacity: the wait for the last of
    /// several queued requests is the wait for their sum.
    ///
    /// The wait is rounded up to the nanosecond, aiming half the tolerance below the exact
    /// fit (or, for the long wait of a queue or a debt, a few units in the last place of
    /// the excess), so that a wait that is a whole number of nanoseconds comes out
    /// exactly, and after waiting it the request fits.
    pub(crate) fn wait(&self, limits: &Limits, scaled: f64) -> Duration {
        let excess = self.excess(limits, scaled);
        if excess <= limits.tolerance {
            return Duration::ZERO;
        }
        let margin = (limits.tolerance / 2.0).max(excess * ROUNDING / 2.0);
        duration_from_nanos(limits.nanos_to_leak(excess - margin), f64::ceil)
    }

    /// The level plus `behind` (scaled), in the caller's units: the backlog a grant
    /// reports. A float's precision is enough for what it is for, a response's headers.
    pub(crate) fn backlog(&self, limits: &Limits, behind: f64) -> f64 {
        limits.unscaled(self.level.value() + behind)
    }

    /// Raises the level by `scaled`: the grant of a request.
    pub(crate) fn fill(&mut self, scaled: f64) {
        self.level = self.level.plus(scaled);
    }

    /// Lowers the level by `scaled`, never below zero: a refund.
    pub(crate) fn drain(&mut self, scaled: f64) {
        self.level = self.level.plus(-scaled);
        if self.level.value() <= 0.0 {
            self.level = Wide::ZERO;
        }
    }

    /// When the level reaches zero if nothing more is granted.
    pub(crate) fn empty_at(&self, limits: &Limits) -> Time {
        self.at.after(duration_from_nanos(
            limits.nanos_to_leak(self.level.value()),
            f64::ceil,
        ))
    }

    /// Carries the level over from `from` to `to`: the same amount, in the new scale.
    pub(crate) fn rescale(&mut self, from: &Limits, to: &Limits) {
        self.level = self.level.scaled(to.scale / from.scale);
    }
}

/// `nanos`, rounded by `round`, as a `Duration`; `Duration::MAX` (never) beyond its range,
/// and for NaN, which only a wait beyond every range can produce.
fn duration_from_nanos(nanos: f64, round: fn(f64) -> f64) -> Duration {
    const EXACT_BELOW: f64 = 9.2e18; // under 2^63: a u64 of nanoseconds holds it exactly
    let nanos = round(nanos);
    if nanos <= 0.0 {
        Duration::ZERO
    } else if nanos < EXACT_BELOW {
        Duration::from_nanos(nanos as u64)
    } else {
        Duration::try_from_secs_f64(nanos / 1e9).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(d: Duration) -> Time {
        Time::since_epoch(d)
    }

    fn limits(capacity: f64, period: Duration) -> Limits {
        Limits::per_period(capacity, period)
    }

    #[test]
    fn starts_empty_and_grants_a_full_burst() {
        let limits = limits(10.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        for _ in 0..10 {
            assert!(bucket.fits(&limits, 1.0));
            bucket.fill(1.0);
        }
        assert!(!bucket.fits(&limits, 1.0));
        assert_eq!(bucket.needed(&limits, 1.0), 1.0);
    }

    #[test]
    fn leaks_at_the_configured_rate() {
        let limits = limits(10.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(10.0);
        bucket.leak(&limits, at(ms(250)));
        assert_eq!(bucket.level(&limits), 7.5);
        bucket.leak(&limits, at(ms(100))); // the past is ignored
        assert_eq!(bucket.level(&limits), 7.5);
        bucket.leak(&limits, at(ms(5000)));
        assert_eq!(bucket.level(&limits), 0.0);
    }

    #[test]
    fn waits_are_rounded_up_to_the_nanosecond_and_whole_ones_are_exact() {
        let limits = limits(3.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(3.0);
        assert_eq!(bucket.wait(&limits, 1.0), Duration::from_nanos(333_333_334));
        assert_eq!(bucket.wait(&limits, 0.0), Duration::ZERO);
        bucket.leak(&limits, at(Duration::from_nanos(333_333_333)));
        assert!(!bucket.fits(&limits, 1.0), "a nanosecond early");
        bucket.leak(&limits, at(Duration::from_nanos(333_333_334)));
        assert!(bucket.fits(&limits, 1.0));

        let tenths = self::limits(10.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(10.0);
        assert_eq!(bucket.wait(&tenths, 1.0), ms(100));
        assert_eq!(bucket.wait(&tenths, 6.0), ms(600));
        bucket.leak(&tenths, at(ms(100)));
        assert!(bucket.fits(&tenths, 1.0));
    }

    #[test]
    fn the_wait_for_a_queue_is_the_wait_for_its_sum() {
        let limits = limits(10.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(10.0);
        // Five requests of 4 queue behind a full bucket: the last fits once 20 leaked.
        assert_eq!(bucket.wait(&limits, 20.0), ms(2000));
        bucket.leak(&limits, at(ms(2000)));
        assert!(bucket.fits(&limits, 10.0));
    }

    #[test]
    fn fractional_amounts_add_up_without_drift() {
        let limits = limits(1.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        let mut now = Time::ZERO;
        for _ in 0..1_000_000 {
            now = now.after(bucket.wait(&limits, 0.1));
            bucket.leak(&limits, now);
            assert!(bucket.fits(&limits, 0.1));
            bucket.fill(0.1);
        }
        // A million grants of 0.1 at 1 per second, after a burst of 1: 99_999 s.
        let elapsed = now.elapsed();
        assert!(
            elapsed.abs_diff(Duration::from_secs(99_999)) < Duration::from_micros(1),
            "{elapsed:?}"
        );
    }

    #[test]
    fn waits_beyond_u64_nanoseconds_use_the_range_of_duration() {
        let period = Duration::from_secs(1 << 35);
        let limits = limits(1.0, period);
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(1.0);
        let wait = bucket.wait(&limits, 1.0);
        // Early by no more than the tolerance allows: 2^-50 of the period (30 us of 1089
        // years).
        let rounding = period.mul_f64(ROUNDING);
        assert!(wait <= period && period - wait < rounding, "{wait:?}");
        bucket.leak(&limits, at(wait));
        assert!(bucket.fits(&limits, 1.0));
        // Only a wait beyond Duration itself is "never".
        let slowest = self::limits(1.0, Duration::MAX);
        assert_eq!(bucket.wait(&slowest, 3.0), Duration::MAX);
    }

    #[test]
    fn the_tolerance_is_rounding_and_no_more() {
        // A period of a nanosecond: the burst at t = 0 is the capacity, not twice it.
        let fast = limits(5.0, Duration::from_nanos(1));
        let mut bucket = Bucket::new(Time::ZERO);
        let mut burst = 0;
        while bucket.fits(&fast, 1.0) {
            bucket.fill(1.0);
            burst += 1;
        }
        assert_eq!(burst, 5);
        assert_eq!(bucket.wait(&fast, 1.0), Duration::from_nanos(1));

        // 1e12 per 1e12 s leaks 1 per second: one unit more fits after a second, within
        // what rounding of a level of 1e12 needs (its last place is 1.2e-4 units).
        let huge = limits(1e12, Duration::from_secs(1_000_000_000_000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(1e12);
        assert!(!bucket.fits(&huge, 1.0));
        let wait = bucket.wait(&huge, 1.0);
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_micros(999_000),
            "{wait:?}"
        );
    }

    #[test]
    fn reconfigure_keeps_the_level_and_rescales_it() {
        let small = limits(10.0, ms(1000));
        let huge = limits(f64::MAX, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(10.0);
        bucket.leak(&small, at(ms(500)));
        bucket.rescale(&small, &huge);
        assert_eq!(bucket.level(&huge), 5.0);
        bucket.rescale(&huge, &small);
        assert_eq!(bucket.level(&small), 5.0);
    }

    #[test]
    fn debt_takes_the_level_above_capacity() {
        let limits = limits(10.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(15.0);
        assert_eq!(bucket.wait(&limits, 1.0), ms(600));
        assert_eq!(bucket.empty_at(&limits), at(ms(1500)));
    }

    #[test]
    fn sums_of_full_requests_near_f64_max_stay_finite() {
        for capacity in [1e308, f64::MAX] {
            let limits = limits(capacity, ms(1000));
            let full = limits.scaled(capacity);
            let mut bucket = Bucket::new(Time::ZERO);
            bucket.fill(full);
            assert_eq!(bucket.needed(&limits, capacity), capacity);
            assert_eq!(bucket.wait(&limits, full), ms(1000));
            // Two more full requests behind it: the last is due after 2 s.
            assert_eq!(bucket.wait(&limits, full + full), ms(2000));
            bucket.leak(&limits, at(ms(1000)));
            assert!(bucket.fits(&limits, full));
        }
    }

    #[test]
    fn a_debt_of_f64_max_waits_for_ever_rather_than_not_at_all() {
        for (capacity, period) in [(1.0, ms(10)), (3.0, ms(7)), (1e9, ms(1))] {
            let limits = limits(capacity, period);
            let mut bucket = Bucket::new(Time::ZERO);
            bucket.fill(f64::MAX);
            assert!(!bucket.fits(&limits, 1.0));
            assert_eq!(
                bucket.wait(&limits, 1.0),
                Duration::MAX,
                "{capacity} per {period:?}"
            );
            assert_eq!(bucket.empty_at(&limits), Time::since_epoch(Duration::MAX));
        }
    }

    #[test]
    fn drain_never_goes_below_zero() {
        let limits = limits(10.0, ms(1000));
        let mut bucket = Bucket::new(Time::ZERO);
        bucket.fill(3.0);
        bucket.drain(5.0);
        assert_eq!(bucket.level(&limits), 0.0);
    }
}
