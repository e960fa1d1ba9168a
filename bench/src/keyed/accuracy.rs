//! `accuracy`: 1,000 keys at 100/s each, capacity 10, through a `KeyedBucketHandle` (its
//! own thread); two caller tasks per key loop on acquire for 2 s. Per key, the achieved
//! rate (grants after the burst over the span of the bucket's grant instants,
//! `Granted::granted_at`) and the conformance bound (granted in any window of length
//! t <= capacity + rate t) at those instants; process CPU over the run.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::System;
use actix_leaky_bucket::{BucketConfig, KeyedBucketHandle};

use crate::conformance::excess_over;
use crate::procfs::cpu_seconds;
use crate::rounds::median;
use crate::table::{verdict, Outcome};

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    eprintln!("accuracy...");
    let result = accuracy();
    let worst = result.rates.iter().copied().fold(f64::INFINITY, f64::min);
    let below = result.rates.iter().filter(|&&rate| rate < 0.99).count();
    // What the bucket may grant beyond the bound by its documented rounding.
    let rounding = ACCURACY_RATE * 1e-9 + ACCURACY_CAPACITY * 1e-12;
    let bound = if result.worst_excess <= rounding + 1e-6 {
        format!(
            "bound holds on every key (worst excess {:+.1e} grants; rounding allows \
             {rounding:.1e})",
            result.worst_excess
        )
    } else {
        format!("bound **exceeded by {:.6}**", result.worst_excess)
    };
    outcome.row(
        &format!(
            "Accuracy per key: {ACCURACY_KEYS} keys at {ACCURACY_RATE}/s, capacity \
             {ACCURACY_CAPACITY}, {CALLERS_PER_KEY} callers per key, {} s",
            ACCURACY_FOR.as_secs()
        ),
        format!(
            "worst key {:.2} %, median {:.2} %, {below} keys under 99 %<br>{bound} at \
             the grant instants<br>process CPU {:.0} %",
            100.0 * worst,
            100.0 * median(result.rates.clone()),
            100.0 * result.cpu
        ),
        format!(
            "{:.0}k/s in all asked; {} grants",
            ACCURACY_RATE * ACCURACY_KEYS as f64 / 1e3,
            result.grants
        ),
        format!("{worst:.3}"),
        ">= 0.99 on every key, bound holds at grant instants",
        verdict(below == 0 && result.worst_excess <= rounding + 1e-6),
    );
    outcome
}

/// Keys asked at once.
const ACCURACY_KEYS: usize = 1_000;
/// Each key's rate, per second.
const ACCURACY_RATE: f64 = 100.0;
/// Each key's capacity.
const ACCURACY_CAPACITY: f64 = 10.0;
/// Caller tasks per key, each acquiring in a loop.
const CALLERS_PER_KEY: usize = 2;
/// How long the callers keep asking.
const ACCURACY_FOR: Duration = Duration::from_secs(2);

/// What the run granted.
struct AccuracyResult {
    /// Per key, the achieved rate over the configured one.
    rates: Vec<f64>,
    /// The largest excess over the conformance bound of any key, in grants.
    worst_excess: f64,
    /// Grants to all keys.
    grants: usize,
    /// Process CPU seconds per wall second over the run.
    cpu: f64,
}

/// [`CALLERS_PER_KEY`] tasks per key acquire 1 unit in a loop for [`ACCURACY_FOR`],
/// through a handle on its own thread.
fn accuracy() -> AccuracyResult {
    let config = BucketConfig::from_rate(ACCURACY_RATE, ACCURACY_CAPACITY).unwrap();
    let handle = KeyedBucketHandle::<u64>::spawn(config);
    System::new().block_on(async move {
        handle.keyed_stats().await.unwrap(); // started
        let expected = (ACCURACY_CAPACITY + ACCURACY_RATE * 3.0) as usize;
        let instants: Vec<Vec<Instant>> = (0..ACCURACY_KEYS)
            .map(|_| Vec::with_capacity(expected))
            .collect();
        let instants = Rc::new(RefCell::new(instants));
        let (cpu_start, start) = (cpu_seconds(), Instant::now());
        let end = start + ACCURACY_FOR;
        let callers: Vec<_> = (0..ACCURACY_KEYS * CALLERS_PER_KEY)
            .map(|i| {
                let key = i % ACCURACY_KEYS;
                let (handle, instants) = (handle.clone(), instants.clone());
                actix_rt::spawn(async move {
                    while Instant::now() < end {
                        let granted = handle.acquire(key as u64, 1.0).await.unwrap();
                        instants.borrow_mut()[key].push(granted.granted_at.into_std());
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        let cpu = (cpu_seconds() - cpu_start) / start.elapsed().as_secs_f64();
        let mut rates = Vec::with_capacity(ACCURACY_KEYS);
        let mut worst_excess = f64::NEG_INFINITY;
        let mut grants = 0;
        for key_instants in instants.borrow_mut().iter_mut() {
            key_instants.sort();
            let first = key_instants[0];
            let times: Vec<f64> = key_instants
                .iter()
                .map(|t| (*t - first).as_secs_f64())
                .collect();
            let span = times.last().copied().unwrap_or(0.0);
            rates.push((times.len() as f64 - ACCURACY_CAPACITY) / span / ACCURACY_RATE);
            worst_excess =
                worst_excess.max(excess_over(&times, ACCURACY_RATE, ACCURACY_CAPACITY, 0.0));
            grants += times.len();
        }
        AccuracyResult {
            rates,
            worst_excess,
            grants,
            cpu,
        }
    })
}
