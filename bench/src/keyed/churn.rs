//! `churn`: a stream of distinct u64 keys at 100k new keys per second (`KEYED_CHURN_KEYS`
//! keys in all, default 10 million: 100 s), each acquiring once from a bucket of 10 per
//! second with capacity 10 (it leaks back to zero 100 ms later), through a
//! `KeyedBucketHandle` on its own thread. RSS (`/proc/self/statm`) every second: the most
//! after the first 10 s (half the run, if it is shorter) over the level then.

use std::time::{Duration, Instant};

use actix::System;
use actix_leaky_bucket::{BucketConfig, KeyedBucketHandle, KeyedBucketStats};

use super::{acquire_each_through, mib, BATCH};
use crate::alloc::heap;
use crate::procfs::{cpu_seconds, rss};
use crate::table::{verdict, Outcome};

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    let keys = std::env::var("KEYED_CHURN_KEYS")
        .ok()
        .and_then(|keys| keys.parse().ok())
        .unwrap_or(10_000_000);
    eprintln!("churn: {keys} keys at 100k/s...");
    let result = churn(keys);
    let ((rss_then, heap_then), (rss_max, heap_max)) = (result.baseline(), result.max_after());
    let ratio = rss_max as f64 / rss_then as f64;
    outcome.row(
        &format!(
            "Key churn: {} distinct keys at 100k new keys/s, each acquiring once \
             (10/s, capacity 10)",
            result.keys
        ),
        format!(
            "RSS, most after {:.0} s: {}<br>heap: {} then, most after {}<br>\
             at the end (`KeyedStats`): {} keys held, {} evicted<br>{:.1} s \
             ({:.0} k keys/s), process CPU {:.0} %",
            result.baseline_at,
            mib(rss_max as f64),
            mib(heap_then as f64),
            mib(heap_max as f64),
            result.end.keys,
            result.end.evicted,
            result.seconds,
            result.keys as f64 / result.seconds / 1e3,
            100.0 * result.cpu
        ),
        format!(
            "RSS at {:.0} s: {}",
            result.baseline_at,
            mib(rss_then as f64)
        ),
        format!("{ratio:.3}"),
        "<= 1.10",
        verdict(ratio <= 1.1),
    );
    let series: Vec<String> = result
        .samples
        .iter()
        .map(|&(_, rss, _)| format!("{:.1}", rss as f64 / (1024.0 * 1024.0)))
        .collect();
    outcome.note(format!(
        "Churn RSS each second (MiB): {}",
        series.join(", ")
    ));
    outcome
}

/// New keys per second in the churn.
const CHURN_RATE: f64 = 100_000.0;

/// What the churn did to memory.
struct ChurnResult {
    /// Distinct keys sent.
    keys: u64,
    /// How long sending them took.
    seconds: f64,
    /// Seconds after the start at which the baseline is taken.
    baseline_at: f64,
    /// (seconds after the start, RSS, heap), once a second.
    samples: Vec<(f64, u64, isize)>,
    /// The actor's counters at the end.
    end: KeyedBucketStats,
    /// Process CPU seconds per wall second over the run.
    cpu: f64,
}

impl ChurnResult {
    /// The RSS and heap of the first sample at or after the baseline's time.
    fn baseline(&self) -> (u64, isize) {
        self.samples
            .iter()
            .find(|sample| sample.0 >= self.baseline_at)
            .map_or((0, 0), |&(_, rss, heap)| (rss, heap))
    }

    /// The most RSS and heap sampled from the baseline's time on.
    fn max_after(&self) -> (u64, isize) {
        self.samples
            .iter()
            .filter(|sample| sample.0 >= self.baseline_at)
            .fold((0, 0), |(rss, heap), sample| {
                (rss.max(sample.1), heap.max(sample.2))
            })
    }
}

/// `keys` distinct keys at [`CHURN_RATE`] new keys per second, each acquiring once, through
/// a handle on its own thread; RSS and heap sampled once a second.
fn churn(keys: u64) -> ChurnResult {
    let handle = KeyedBucketHandle::<u64>::spawn(BucketConfig::from_rate(10.0, 10.0).unwrap());
    let run_for = keys as f64 / CHURN_RATE;
    let baseline_at = run_for.min(20.0) / 2.0;
    System::new().block_on(async move {
        handle.keyed_stats().await.unwrap(); // started
        let (start, cpu_start) = (Instant::now(), cpu_seconds());
        let mut samples = Vec::new();
        let mut sent = 0;
        while sent < keys {
            let due = ((start.elapsed().as_secs_f64() * CHURN_RATE) as u64).min(keys);
            acquire_each_through(&handle, sent..due, BATCH).await;
            sent = due;
            let elapsed = start.elapsed().as_secs_f64();
            if elapsed >= (samples.len() + 1) as f64 {
                let rss = rss();
                samples.push((elapsed, rss, heap()));
                if samples.len() % 10 == 0 {
                    eprintln!("  {elapsed:.0} s: {sent} keys, RSS {}", mib(rss as f64));
                }
            }
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
        let seconds = start.elapsed().as_secs_f64();
        let cpu = (cpu_seconds() - cpu_start) / seconds;
        ChurnResult {
            keys,
            seconds,
            baseline_at,
            samples,
            end: handle.keyed_stats().await.unwrap(),
            cpu,
        }
    })
}
