//! A float of twice the precision, so that a bucket's level does not drift.

/// `hi + lo`, a number with about 106 bits of mantissa, where `lo` holds what `hi` had
/// to round off ("double-double" arithmetic).
///
/// A bucket's level changes by a leak and a grant at every step; in plain floats each
/// step rounds by a unit in the last place of the level, and over the thousands of
/// grants of one busy period those errors add up until a wait computed to the
/// nanosecond comes out a nanosecond late (or early). In this form each step rounds by
/// a unit in the last place squared, so the level stays exact for all practical
/// purposes, and only the final comparison rounds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Wide {
    hi: f64,
    lo: f64,
}

impl Wide {
    pub(crate) const ZERO: Self = Self { hi: 0.0, lo: 0.0 };

    #[cfg(test)]
    pub(crate) fn new(value: f64) -> Self {
        Self { hi: value, lo: 0.0 }
    }

    /// `numerator / denominator`, to twice the precision of a float.
    pub(crate) fn quotient(numerator: f64, denominator: f64) -> Self {
        let hi = numerator / denominator;
        // The remainder of the rounded quotient, exact by the fused multiply-add.
        let remainder = (-hi).mul_add(denominator, numerator);
        Self {
            hi,
            lo: remainder / denominator,
        }
    }

    /// The nearest float.
    pub(crate) fn value(self) -> f64 {
        self.hi + self.lo
    }

    /// `self + x`.
    pub(crate) fn plus(self, x: f64) -> Self {
        let (sum, error) = two_sum(self.hi, x);
        normalized(sum, error + self.lo)
    }

    /// `self - x * by`.
    pub(crate) fn minus_product(self, x: f64, by: Wide) -> Self {
        let product = x * by.hi;
        // What the product rounded off, exact by the fused multiply-add, and the
        // product with `by`'s low part.
        let product_error = x.mul_add(by.hi, -product) + x * by.lo;
        let (difference, error) = two_sum(self.hi, -product);
        normalized(difference, error + self.lo - product_error)
    }

    /// `x / self`, rounded to a float.
    pub(crate) fn divide(x: f64, by: Wide) -> f64 {
        let quotient = x / by.hi;
        if !quotient.is_finite() {
            return quotient; // a correction of infinity would make it NaN
        }
        // The low part of the divisor, as a correction of the quotient.
        quotient - quotient * (by.lo / by.hi)
    }

    /// `self * factor`, for a power of two (exact).
    pub(crate) fn scaled(self, factor: f64) -> Self {
        Self {
            hi: self.hi * factor,
            lo: self.lo * factor,
        }
    }
}

/// `a + b` as the rounded sum and what it rounded off (Knuth's TwoSum, exact).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let sum = a + b;
    let b_part = sum - a;
    let error = (a - (sum - b_part)) + (b - b_part);
    (sum, error)
}

/// `hi + lo` with `lo` brought below half a unit in the last place of `hi`. An infinite
/// or NaN `hi` stands alone: its rounding error means nothing.
fn normalized(hi: f64, lo: f64) -> Wide {
    if !hi.is_finite() {
        return Wide { hi, lo: 0.0 };
    }
    let sum = hi + lo;
    Wide {
        hi: sum,
        lo: lo - (sum - hi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_tenths_add_up_exactly() {
        let mut sum = Wide::ZERO;
        let mut plain = 0.0;
        for _ in 0..1_000_000 {
            sum = sum.plus(0.1);
            plain += 0.1;
        }
        assert_eq!(sum.value(), 100_000.0);
        assert_ne!(plain, 100_000.0, "plain floats drift");
    }

    #[test]
    fn infinities_and_nan_come_out_as_plain_floats_would() {
        assert_eq!(Wide::new(3.0).plus(f64::INFINITY).value(), f64::INFINITY);
        assert_eq!(
            Wide::new(3.0).plus(f64::NEG_INFINITY).value(),
            f64::NEG_INFINITY
        );
        assert!(Wide::new(3.0).plus(f64::NAN).value().is_nan());
        let huge = Wide::new(f64::MAX).plus(f64::MAX);
        assert_eq!(huge.value(), f64::INFINITY);
    }

    #[test]
    fn a_rate_of_seven_per_three_seconds_leaks_exactly() {
        let per_nano = Wide::quotient(7.0, 3e9);
        // 20 units, less the leak of 6 s, is 6, whatever the steps of the leak.
        let mut level = Wide::new(20.0);
        for step in [428_571_429.0, 571_428_571.0, 1e9, 4e9] {
            level = level.minus_product(step, per_nano);
        }
        assert_eq!(level.value(), 6.0);
    }
}
