//! `flood`: RSS and heap before; a million distinct keys acquiring once as fast as they
//! can (batches of 256 in flight) from buckets whose unit leaks in 10 s, through a
//! `KeyedBucketHandle`; then no traffic until every bucket has leaked to zero plus the
//! sweep's slack (100 ms, and 50 ms more). Heap and RSS then, with no message sent during
//! the wait (has the actor freed the idle keys by itself?); then `KeyedStats` (keys must
//! be 0), heap and RSS again. RSS is back near its start when at least 95 % of the
//! flood's rise is given back. Last, for information, what glibc holds free
//! (`mallinfo2`) and the RSS after a `malloc_trim(0)` called by the bench.

use std::time::{Duration, Instant};

use actix::System;
use actix_leaky_bucket::{BucketConfig, KeyedBucketHandle, KeyedBucketStats};

use super::{acquire_each_through, mib};
use crate::alloc::{glibc_free_then_trim, heap};
use crate::procfs::resident;
use crate::table::{verdict, Outcome};

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    eprintln!("flood: 1M keys...");
    let result = flood(1_000_000);
    let over_start = |footprint: Footprint| {
        format!(
            "RSS {} (anonymous {}), heap {} over the start",
            mib(footprint.rss as f64),
            mib(footprint.anon as f64),
            mib((footprint.heap - result.start.heap) as f64)
        )
    };
    let (start, peak) = (result.start.rss as f64, result.peak.rss as f64);
    // The share of the flood's rise in RSS given back by `footprint`.
    let given_back = |footprint: Footprint| (peak - footprint.rss as f64) / (peak - start);
    let before = format!(
        "before: RSS {} (anonymous {})<br>peak: {}",
        mib(start),
        mib(result.start.anon as f64),
        over_start(result.peak)
    );
    let compared = |footprint: Footprint| {
        let rss = footprint.rss as f64;
        format!(
            "RSS {:.2} of the start, {:.3} of the peak: {:.1} % of the rise given back",
            rss / start,
            rss / peak,
            100.0 * given_back(footprint)
        )
    };
    let trimmed = result.trimmed.map_or(String::new(), |(free, trimmed)| {
        format!(
            "<br>(information) glibc then holds {} free; after `malloc_trim(0)` from \
             the bench, RSS {}",
            mib(free as f64),
            mib(trimmed as f64)
        )
    });
    outcome.row(
        &format!(
            "After a flood: {}k distinct keys acquiring once ({:.1} s, {} keys held \
             after it), then {} s of no traffic, then `KeyedStats`",
            result.keys / 1_000,
            result.seconds,
            result.held,
            (FLOOD_LEAK + SWEEP_WAIT).as_secs_f64()
        ),
        format!(
            "after `KeyedStats` ({} keys, {} evicted): {}{trimmed}",
            result.stats.keys,
            result.stats.evicted,
            over_start(result.swept)
        ),
        before.clone(),
        compared(result.swept),
        "keys = 0; RSS back near the start: >= 95 % of the rise given back",
        verdict(result.stats.keys == 0 && given_back(result.swept) >= 0.95),
    );
    outcome.row(
        "(extra) The same flood, once every bucket is empty and the sweep's slack has \
         passed, no message during the wait: freed by the actor's own sweep?",
        over_start(result.waited),
        before,
        compared(result.waited),
        "RSS back near the start with nothing sent (\"nothing to call\")",
        verdict(given_back(result.waited) >= 0.95),
    );
    outcome
}

/// How long one unit takes to leak from a key's bucket in the flood: longer than the
/// flood lasts, so that every key is held at its end.
const FLOOD_LEAK: Duration = Duration::from_secs(10);
/// The sweep may come this late (`SWEEP_SLACK` in src/core/keyed.rs), and a little more.
const SWEEP_WAIT: Duration = Duration::from_millis(150);
/// Requests in flight at a time during the flood.
const FLOOD_BATCH: usize = 256;

/// Process RSS, its anonymous part, and heap at one moment.
#[derive(Clone, Copy)]
struct Footprint {
    /// Resident set, in bytes.
    rss: u64,
    /// Its anonymous part, in bytes.
    anon: u64,
    /// Heap bytes held.
    heap: isize,
}

impl Footprint {
    /// The footprint now.
    fn now() -> Self {
        let (rss, anon) = resident();
        Self {
            rss,
            anon,
            heap: heap(),
        }
    }
}

/// The footprints of a flood and after it.
struct FloodResult {
    /// Distinct keys sent.
    keys: u64,
    /// How long sending them took.
    seconds: f64,
    /// Before the flood.
    start: Footprint,
    /// The most seen during and right after the flood.
    peak: Footprint,
    /// Keys held right after the flood (`KeyedStats`).
    held: usize,
    /// Once every bucket has leaked to zero, no message sent during the wait.
    waited: Footprint,
    /// After `KeyedStats` answered.
    swept: Footprint,
    /// The actor's counters then.
    stats: KeyedBucketStats,
    /// What glibc held free, and the RSS after `malloc_trim(0)`.
    trimmed: Option<(u64, u64)>,
}

/// `keys` distinct keys acquiring once, as fast as they can, then no traffic until every
/// bucket has leaked to zero and the sweep's slack has passed.
fn flood(keys: u64) -> FloodResult {
    let per_second = 1.0 / FLOOD_LEAK.as_secs_f64();
    let handle =
        KeyedBucketHandle::<u64>::spawn(BucketConfig::from_rate(per_second, 10.0).unwrap());
    System::new().block_on(async move {
        handle.keyed_stats().await.unwrap(); // started
        let start = Footprint::now();
        let mut peak = start;
        let began = Instant::now();
        for first in (0..keys).step_by(FLOOD_BATCH) {
            let last = (first + FLOOD_BATCH as u64).min(keys);
            acquire_each_through(&handle, first..last, FLOOD_BATCH).await;
            let now = Footprint::now();
            peak.rss = peak.rss.max(now.rss);
            peak.anon = peak.anon.max(now.anon);
            peak.heap = peak.heap.max(now.heap);
        }
        let ended = Instant::now();
        let held = handle.keyed_stats().await.unwrap().keys;
        actix_rt::time::sleep_until((ended + FLOOD_LEAK + SWEEP_WAIT).into()).await;
        let waited = Footprint::now();
        let stats = handle.keyed_stats().await.unwrap();
        let swept = Footprint::now();
        FloodResult {
            keys,
            seconds: (ended - began).as_secs_f64(),
            start,
            peak,
            held,
            waited,
            swept,
            stats,
            trimmed: glibc_free_then_trim(),
        }
    })
}
