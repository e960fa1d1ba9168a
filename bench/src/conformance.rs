//! The conformance bound of a leaky bucket, checked over recorded grant times: granted in
//! any window of length `t` <= `capacity + rate * t`.

/// The largest excess over the conformance bound of the sorted grant `times` (seconds), in
/// grants of one unit, over the windows that start `from` seconds after the first or later
/// (<= 0: it holds).
///
/// For grants i <= j, `j - i + 1 <= capacity + rate (t_j - t_i)` is
/// `(j + 1 - rate t_j) - (i - rate t_i) <= capacity`: one pass, keeping the minimum of
/// `i - rate t_i` so far, checks every window that starts and ends on a grant.
pub fn excess_over(times: &[f64], rate: f64, capacity: f64, from: f64) -> f64 {
    let mut min_start = f64::INFINITY;
    let mut worst = f64::NEG_INFINITY;
    let skip = times.partition_point(|&t| t < from);
    for (i, &t) in times.iter().enumerate().skip(skip) {
        min_start = min_start.min(i as f64 - rate * t);
        worst = worst.max((i + 1) as f64 - rate * t - min_start - capacity);
    }
    worst
}
