//! `accuracy`: one second of real time at 1k/s, 10k/s, 100k/s with capacity 10, and
//! 100k/s with capacity 100; one independent task (`actix_rt::spawn`) per request,
//! `capacity + rate` requests in all. The achieved rate is `(grants - capacity) / (last -
//! first grant)` as the callers observe them; the conformance bound (granted in any window
//! of length t <= capacity + rate * t) is checked over every pair of recorded grant times in
//! O(n). Peers at the same rates and bursts: governor (`until_ready`) and leaky-bucket
//! (`acquire_one`, refilling every millisecond, its shortest interval).
//!
//! It also writes `BENCHMARKS-100k.svg`: cumulative grants against the ideal line for the
//! 100k/s run.

use std::cell::RefCell;
use std::future::Future;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, System};
use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};

use super::{idle_cpu, wait_until};
use crate::conformance::excess_over;
use crate::procfs::cpu_seconds;
use crate::svg::{cumulative_grants, Series};
use crate::table::{verdict, Outcome};

/// The rows of the section, and the bucket's CPU while idle after each run, as a note.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    let mut idle_cpu = Vec::new();
    let mut plot_runs = Vec::new();
    for (rate, capacity) in [
        (100, 10),
        (1_000, 10),
        (10_000, 10),
        (100_000, 10),
        (100_000, 100),
    ] {
        eprintln!("accuracy at {rate}/s, capacity {capacity}...");
        let bucket = accuracy(Limiter::Bucket, rate, capacity);
        let governor = accuracy(Limiter::Governor, rate, capacity);
        let leaky = accuracy(Limiter::LeakyBucket, rate, capacity);
        // The bound is the bucket's promise at its grant instants; what callers see adds
        // their own scheduling, shown beside it.
        let rounding = bucket_rounding(f64::from(capacity));
        let met = bucket.achieved() >= 0.99 && bucket.grant_instants_excess() <= rounding + 1e-6;
        let (what, target, met) = if rate < 1_000 {
            ("(extra) Accuracy", "none (shows CPU)", "")
        } else {
            (
                "Accuracy",
                ">= 0.99, bound holds at grant instants",
                verdict(met),
            )
        };
        idle_cpu.extend(bucket.idle_cpu);
        outcome.row(
            &format!("{what}, {}k/s, capacity {capacity}", f64::from(rate) / 1e3),
            bucket.describe(),
            format!(
                "governor: {}<br>leaky-bucket: {}",
                governor.describe(),
                leaky.describe()
            ),
            format!("{:.3}", bucket.achieved()),
            target,
            met,
        );
        if std::env::var_os("REPORT_PHASES").is_some() {
            let at_once = bucket.grants.partition_point(|&t| t < 100e-6);
            eprintln!(
                "{rate}/s, capacity {capacity}: {at_once} grants observed in the first 100 us"
            );
        }
        if rate == 100_000 && capacity == 10 {
            plot_runs = vec![bucket, governor, leaky];
        }
    }
    for (rate, capacity) in [(1_000, 10), (100_000, 1_000)] {
        eprintln!("accuracy at {rate}/s, capacity {capacity}, timer only...");
        let timer_only = accuracy(Limiter::BucketTimerOnly, rate, capacity);
        let precise = accuracy(Limiter::Bucket, rate, capacity);
        outcome.row(
            &format!(
            "(extra) Accuracy, timer only (`precise_timing(false)`), {}k/s, capacity {capacity}",
            f64::from(rate) / 1e3
        ),
            timer_only.describe(),
            format!("precise timing (default): {}", precise.describe()),
            format!("{:.3}", timer_only.achieved()),
            "none (shows the CPU trade)",
            "",
        );
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS-100k.svg");
    let labels: Vec<String> = plot_runs
        .iter()
        .zip([Limiter::Bucket, Limiter::Governor, Limiter::LeakyBucket])
        .map(|(run, limiter)| format!("{} ({:.1} %)", limiter.name(), 100.0 * run.achieved()))
        .collect();
    let series: Vec<Series<'_>> = plot_runs
        .iter()
        .zip(&labels)
        .map(|(run, label)| Series {
            label,
            grants: &run.grants,
        })
        .collect();
    let bucket = &plot_runs[0];
    let plot = cumulative_grants(bucket.rate, bucket.capacity, bucket.requests, &series);
    std::fs::write(path, plot).expect("writing the SVG");
    eprintln!("plot of the 100k/s, capacity 10 runs: {path}");
    if !idle_cpu.is_empty() {
        outcome.note(format!(
            "Bucket CPU while idle after each accuracy run (300 ms, no waiters): {}",
            idle_cpu
                .iter()
                .map(|c| format!("{:.2} %", 100.0 * c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    outcome
}

/// A limiter measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Limiter {
    /// The bucket, with precise timing (the default).
    Bucket,
    /// The bucket with `precise_timing(false)`: tokio's timer alone.
    BucketTimerOnly,
    /// governor's direct limiter.
    Governor,
    /// leaky-bucket's `RateLimiter`.
    LeakyBucket,
}

impl Limiter {
    /// Its name in the table.
    fn name(self) -> &'static str {
        match self {
            Limiter::Bucket => "actix-leaky-bucket",
            Limiter::BucketTimerOnly => "actix-leaky-bucket, timer only",
            Limiter::Governor => "governor",
            Limiter::LeakyBucket => "leaky-bucket",
        }
    }
}

/// Where the conformance bound is checked once more, past the handling of the arrival burst.
const STEADY_FROM: f64 = 0.05;

/// One second of demand on one limiter: what the callers saw.
struct AccuracyRun {
    /// Grant times as the callers observed them, in seconds after the first, sorted.
    grants: Vec<f64>,
    /// The bucket only: its own grant instants (`Granted::granted_at`), likewise.
    grant_instants: Vec<f64>,
    /// Requests sent.
    requests: usize,
    /// The configured rate, per second.
    rate: f64,
    /// The configured capacity.
    capacity: f64,
    /// CPU seconds per wall second while the requests were served.
    cpu: f64,
    /// CPU seconds per wall second in the 300 ms after the last grant (bucket only).
    idle_cpu: Option<f64>,
}

impl AccuracyRun {
    /// Units granted after the burst per second, over the configured rate.
    fn achieved(&self) -> f64 {
        let span = self.grants.last().copied().unwrap_or(0.0);
        let leaked = self.grants.len() as f64 - self.capacity;
        if span > 0.0 {
            leaked / span / self.rate
        } else {
            0.0
        }
    }

    /// The achieved rate over the grants from [`STEADY_FROM`] on, over the configured one.
    fn steady(&self) -> f64 {
        let skip = self.grants.partition_point(|&t| t < STEADY_FROM);
        let tail = &self.grants[skip.min(self.grants.len())..];
        match (tail.first(), tail.last()) {
            (Some(first), Some(last)) if last > first => {
                (tail.len() - 1) as f64 / (last - first) / self.rate
            }
            _ => 0.0,
        }
    }

    /// The largest excess over the conformance bound, in grants (<= 0: it holds).
    ///
    /// For grants i <= j, `j - i + 1 <= capacity + rate * (t_j - t_i)` is
    /// `(j + 1 - rate t_j) - (i - rate t_i) <= capacity`: one pass, keeping the minimum of
    /// `i - rate t_i` so far, checks every window that starts and ends on a grant.
    fn conformance_excess(&self) -> f64 {
        self.conformance_excess_from(0.0)
    }

    /// The largest excess at the bucket's own grant instants (none for the peers).
    fn grant_instants_excess(&self) -> f64 {
        excess_over(&self.grant_instants, self.rate, self.capacity, 0.0)
    }

    /// The same, over the windows that start `from` seconds after the first grant or later.
    fn conformance_excess_from(&self, from: f64) -> f64 {
        excess_over(&self.grants, self.rate, self.capacity, from)
    }

    /// Its cell of the table.
    fn describe(&self) -> String {
        const EPSILON: f64 = 1e-6;
        let excess = self.conformance_excess();
        let bound = if excess <= EPSILON {
            "bound holds".to_string()
        } else {
            format!(
                "bound **exceeded by {excess:.1}** ({:.0} us early)",
                1e6 * excess / self.rate
            )
        };
        let steady = self.conformance_excess_from(STEADY_FROM);
        let steady = if excess <= EPSILON {
            String::new()
        } else if steady <= EPSILON {
            " (holds from 50 ms on)".to_string()
        } else {
            format!(" ({steady:.1} from 50 ms on)")
        };
        let at_grants = if self.grant_instants.is_empty() {
            String::new()
        } else {
            let excess = self.grant_instants_excess();
            if excess <= EPSILON {
                "; at the bucket's grant instants: bound holds".to_string()
            } else if excess <= bucket_rounding(self.capacity) + EPSILON {
                format!(
                    "; at the bucket's grant instants: bound holds to its 2^-50 tolerance \
                     ({excess:.5} over)"
                )
            } else {
                format!("; at the bucket's grant instants: **exceeded by {excess:.5}**")
            }
        };
        let done = if self.grants.len() < self.requests {
            format!(
                ", only {} of {} granted in time",
                self.grants.len(),
                self.requests
            )
        } else {
            String::new()
        };
        format!(
            "{:.1} % ({:.1} % from 50 ms on), {bound}{steady}{at_grants}, CPU {:.0} %{done}",
            100.0 * self.achieved(),
            100.0 * self.steady(),
            100.0 * self.cpu
        )
    }
}

/// What the bucket may grant beyond the bound, by its documented tolerance: a request
/// fits when it exceeds the capacity by no more than 2^-50 of it.
fn bucket_rounding(capacity: f64) -> f64 {
    capacity * 4.0 * f64::EPSILON
}

/// Spawns one task per request, each recording when its acquisition completed.
fn spawn_requests<F, Fut>(count: usize, make: F, times: &Rc<RefCell<Vec<Instant>>>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    for _ in 0..count {
        let acquisition = make();
        let times = times.clone();
        actix_rt::spawn(async move {
            acquisition.await;
            times.borrow_mut().push(Instant::now());
        });
    }
}

/// `rate + capacity` requests, all sent at once, each from a task of its own, to `limiter`
/// at `rate` per second with a burst of `capacity`; given up after three seconds.
fn accuracy(limiter: Limiter, rate: u32, capacity: u32) -> AccuracyRun {
    let requests = (rate + capacity) as usize;
    let system = System::new();
    let run = system.block_on(async move {
        let times = Rc::new(RefCell::new(Vec::with_capacity(requests)));
        let grant_instants = Rc::new(RefCell::new(Vec::with_capacity(requests)));
        let period = Duration::from_secs_f64(f64::from(capacity) / f64::from(rate));
        let bucket = BucketActor::new(BucketConfig::new(f64::from(capacity), period).unwrap())
            .precise_timing(limiter != Limiter::BucketTimerOnly);
        let bucket = bucket.start();
        let governor = Rc::new(governor::RateLimiter::direct(
            governor::Quota::per_second(NonZeroU32::new(rate).unwrap())
                .allow_burst(NonZeroU32::new(capacity).unwrap()),
        ));
        let leaky = Rc::new(
            leaky_bucket::RateLimiter::builder()
                .initial(capacity as usize)
                .max(capacity as usize)
                .refill((rate / 1000).max(1) as usize)
                .interval(Duration::from_millis((1000 / u64::from(rate)).max(1)))
                .build(),
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await; // the actor has started
        let cpu_start = cpu_seconds();
        let wall_start = Instant::now();
        match limiter {
            Limiter::Bucket | Limiter::BucketTimerOnly => spawn_requests(
                requests,
                || {
                    let bucket = bucket.clone();
                    let instants = grant_instants.clone();
                    async move {
                        let granted = bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
                        instants.borrow_mut().push(granted.granted_at.into_std());
                    }
                },
                &times,
            ),
            Limiter::Governor => spawn_requests(
                requests,
                || {
                    let governor = governor.clone();
                    async move { governor.until_ready().await }
                },
                &times,
            ),
            Limiter::LeakyBucket => spawn_requests(
                requests,
                || {
                    let leaky = leaky.clone();
                    async move { leaky.acquire_one().await }
                },
                &times,
            ),
        }
        // The ideal run lasts one second after the first grant; give up after three.
        let deadline = wall_start + Duration::from_secs(3);
        wait_until(|| times.borrow().len() >= requests, deadline).await;
        let cpu = (cpu_seconds() - cpu_start) / wall_start.elapsed().as_secs_f64();
        let idle_cpu = if limiter != Limiter::Governor && limiter != Limiter::LeakyBucket {
            Some(idle_cpu().await)
        } else {
            None
        };
        let mut times = times.borrow().clone();
        times.sort();
        let first = times[0];
        let grants = times.iter().map(|t| (*t - first).as_secs_f64()).collect();
        let mut instants = grant_instants.borrow().clone();
        instants.sort();
        let grant_instants = instants
            .iter()
            .map(|t| t.saturating_duration_since(instants[0]).as_secs_f64())
            .collect();
        AccuracyRun {
            grants,
            grant_instants,
            requests,
            rate: f64::from(rate),
            capacity: f64::from(capacity),
            cpu,
            idle_cpu,
        }
    });
    drop(system); // drops whatever is still waiting
    run
}
