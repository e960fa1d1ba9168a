//! Interleaved rounds of measurements, their medians, and timed runs of requests.

use std::future::Future;
use std::time::Instant;

use futures::future::join_all;

/// The `k`-th of `n` measurements to take in round `round`: rotated every round and reversed
/// every other, so that none always goes first or always follows the same one.
pub fn turn(round: usize, k: usize, n: usize) -> usize {
    if round.is_multiple_of(2) {
        (round + k) % n
    } else {
        (round + n - k) % n
    }
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds to run `count` requests made by `make`, each awaited before the next starts.
pub async fn time_sequential<F: Future>(count: usize, mut make: impl FnMut() -> F) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        make().await;
    }
    start.elapsed().as_secs_f64()
}

/// Seconds to run `count` requests made by `make`, `batch` at once, each batch awaited
/// before the next starts.
pub async fn time_pipelined<F: Future>(
    count: usize,
    batch: usize,
    mut make: impl FnMut() -> F,
) -> f64 {
    let start = Instant::now();
    for _ in 0..count / batch {
        join_all((0..batch).map(|_| make())).await;
    }
    start.elapsed().as_secs_f64()
}
