//! Accuracy, scale, memory and throughput ratios of the bucket, as one table (no harness).
//!
//! - Throughput: `Acquire` round trips on an unconstrained bucket (capacity 1e12 per second)
//!   per second, over a trivial actix actor's `send` round trips, measured interleaved in the
//!   same run: sequential (one caller awaits each) and pipelined (batches of 64).
//! - Accuracy: one second of real time at 1k/s, 10k/s, 100k/s with capacity 10, and 100k/s
//!   with capacity 100; one independent task (`actix_rt::spawn`) per request, `capacity +
//!   rate` requests in all. The achieved rate is `(grants - capacity) / (last - first grant)`
//!   as the callers observe them; the conformance bound (granted in any window of length t <=
//!   capacity + rate * t) is checked over every pair of recorded grant times in O(n).
//!   Peers at the same rates and bursts: governor (`until_ready`) and leaky-bucket
//!   (`acquire_one`, refilling every millisecond, its shortest interval).
//! - Scale: per-grant cost with 100k waiters queued in the bucket (independent tasks) over
//!   the cost with 1k, and over a raw actix round trip at the same mailbox depth.
//! - Memory: heap bytes per queued waiter (a counting global allocator), bucket minus raw
//!   actix with the same number of callers waiting in its mailbox.
//! - Timing: steady demand (32 callers that acquire again as soon as they are granted, for
//!   2 s) at 1k/s and 10k/s with capacity 10 and at 100k/s with capacity 100, precise
//!   timing (the default) against tokio's timer alone, alternating: the rate achieved and
//!   the conformance bound at the bucket's grant instants, the process's CPU while it runs,
//!   and its CPU in the 300 ms after, with nobody waiting. Beside each run, one witness
//!   thread pinned to each CPU sleeps 1 ms at a time and notes when its CPU ran nothing for
//!   over 1 ms while it was due (its lateness less twice its wait for other threads, which
//!   may have come before or after): the rate is also given over the time the bucket's CPU
//!   ran, the run less the time the bucket stood empty within such a freeze of the CPU its
//!   thread ran on before and after, past the `capacity / rate` that a bucket served
//!   without delay would have stood. The witnesses' own CPU is left out of the process's.
//!   Before the runs, how late this machine wakes a thread sleeping on a `timerfd` for
//!   150 us and for 450 us at a time, or yielding until 450 us ahead: what any sleeping
//!   timer suffers here, and how the length of a halt changes it on a virtual machine.
//!
//! It also writes `BENCHMARKS-100k.svg`: cumulative grants against the ideal line for the
//! 100k/s run. Run with `cargo bench -p actix-leaky-bucket-verify --bench report`; takes
//! about two minutes. `... --bench report -- throughput scale` runs only the sections named
//! (`throughput`, `accuracy`, `scale`, `timing`). `profile-bucket` or `profile-floor` instead runs one
//! depth run of 100k waiters through the bucket or through the floor, and nothing else:
//! the pair to compare under a profiler such as `valgrind --tool=callgrind`;
//! `profile-bucket-pipelined` and `profile-floor-pipelined` do the same with 128k pipelined
//! requests to an unconstrained bucket and to the throughput floor.

mod common;

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::future::Future;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Addr, Arbiter, Context, Handler, Message, System};
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketConfig, CapacityInfo, Granted, Reconcile,
};
use common::{
    cpu_seconds, excess_over, heap, median, threads_cpu_seconds, turn, verdict, wanted, Echo, Ping,
};
use futures::future::join_all;

// ---------------------------------------------------------------------------------------
// Counting allocator

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

// ---------------------------------------------------------------------------------------
// Helpers

/// Minor page faults of this process so far (`/proc/self/stat`); 0 where it does not exist.
fn page_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After the command name: state, ppid, pgrp, session, tty, tpgid, flags, minflt.
    rest.split_whitespace()
        .nth(7)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0)
}

/// Sleeps on tokio's timer until `done` or `deadline`.
async fn wait_until(done: impl Fn() -> bool, deadline: Instant) {
    while !done() && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Blocks the arbiter's thread, so that messages pile up in a mailbox.
struct Block(Duration);

impl Message for Block {
    type Result = ();
}

impl Handler<Block> for Echo {
    type Result = ();

    fn handle(&mut self, Block(duration): Block, _: &mut Context<Self>) {
        std::thread::sleep(duration);
    }
}

// ---------------------------------------------------------------------------------------
// Throughput

struct ThroughputResult {
    bucket_per_s: f64,
    raw_per_s: f64,
    floor_per_s: f64,
    /// Median over rounds of bucket rate / raw rate, measured back to back.
    ratio: f64,
    /// The floor's rate over the raw rate, likewise: the best any exact bucket can reach.
    floor_ratio: f64,
}

/// What any exact bucket must pay on top of a trivial round trip: a message of the size of
/// [`Acquire`], a handler that reads tokio's clock once (a bucket leaks up to the present
/// before it decides), and an answer of the size of the bucket's.
struct PingClock {
    _amount: f64,
    _timeout: Option<Duration>,
}

type ClockAnswer = Result<[u64; 5], ()>;

const _: () = assert!(std::mem::size_of::<PingClock>() == std::mem::size_of::<Acquire>());
const _: () = assert!(
    std::mem::size_of::<ClockAnswer>() == std::mem::size_of::<Result<Granted, AcquireError>>()
);

impl Message for PingClock {
    type Result = ClockAnswer;
}

impl Handler<PingClock> for Echo {
    type Result = ClockAnswer;

    fn handle(&mut self, _: PingClock, _: &mut Context<Self>) -> ClockAnswer {
        std::hint::black_box(actix_rt::time::Instant::now());
        Ok([0; 5])
    }
}

async fn time_sequential<F: Future>(count: usize, make: impl Fn() -> F) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        make().await;
    }
    start.elapsed().as_secs_f64()
}

async fn time_pipelined<F: Future>(count: usize, batch: usize, make: impl Fn() -> F) -> f64 {
    let start = Instant::now();
    for _ in 0..count / batch {
        join_all((0..batch).map(|_| make())).await;
    }
    start.elapsed().as_secs_f64()
}

/// Requests per batch when pipelined.
const BATCH: usize = 64;

/// One `Acquire` round trip to an unconstrained bucket.
async fn acquire_one(bucket: &Addr<BucketActor>) {
    bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
}

/// One round trip to the throughput floor.
async fn ping_clock(echo: &Addr<Echo>) {
    let ping = PingClock {
        _amount: 1.0,
        _timeout: None,
    };
    echo.send(ping).await.unwrap().unwrap();
}

/// A bucket that never makes anyone wait.
fn unconstrained_bucket() -> Addr<BucketActor> {
    BucketActor::new(BucketConfig::new(1e12, Duration::from_secs(1)).unwrap()).start()
}

fn throughput() -> (ThroughputResult, ThroughputResult) {
    const COUNT: usize = 50_000;
    const ROUNDS: usize = 9;
    System::new().block_on(async {
        let bucket = unconstrained_bucket();
        let echo = Echo.start();
        let acquire = || acquire_one(&bucket);
        let ping = || async { echo.send(Ping).await.unwrap() };
        let floor = || ping_clock(&echo);
        // Warm up.
        time_sequential(COUNT, acquire).await;
        time_sequential(COUNT, ping).await;
        time_sequential(COUNT, floor).await;
        let mut results = Vec::new();
        for pipelined in [false, true] {
            let mut times: [Vec<f64>; 3] = Default::default();
            let (mut ratios, mut floor_ratios) = (vec![], vec![]);
            for round in 0..ROUNDS {
                let mut time = [0.0; 3];
                for k in 0..3 {
                    let which = turn(round, k, 3);
                    time[which] = match (pipelined, which) {
                        (false, 0) => time_sequential(COUNT, acquire).await,
                        (false, 1) => time_sequential(COUNT, ping).await,
                        (false, _) => time_sequential(COUNT, floor).await,
                        (true, 0) => time_pipelined(COUNT, BATCH, acquire).await,
                        (true, 1) => time_pipelined(COUNT, BATCH, ping).await,
                        (true, _) => time_pipelined(COUNT, BATCH, floor).await,
                    };
                }
                ratios.push(time[1] / time[0]);
                floor_ratios.push(time[1] / time[2]);
                for k in 0..3 {
                    times[k].push(COUNT as f64 / time[k]);
                }
            }
            let [bucket, raw, clock] = times;
            results.push(ThroughputResult {
                bucket_per_s: median(bucket),
                raw_per_s: median(raw),
                floor_per_s: median(clock),
                ratio: median(ratios),
                floor_ratio: median(floor_ratios),
            });
        }
        let pipelined = results.pop().unwrap();
        let sequential = results.pop().unwrap();
        (sequential, pipelined)
    })
}

/// `count` pipelined requests through the bucket, or through the floor, and nothing else:
/// for a profiler. Nanoseconds per request.
fn pipelined(through_bucket: bool, count: usize) -> f64 {
    System::new().block_on(async move {
        let (bucket, echo) = (unconstrained_bucket(), Echo.start());
        let seconds = if through_bucket {
            time_pipelined(count, BATCH, || acquire_one(&bucket)).await
        } else {
            time_pipelined(count, BATCH, || ping_clock(&echo)).await
        };
        seconds * 1e9 / count as f64
    })
}

// ---------------------------------------------------------------------------------------
// Accuracy

#[derive(Clone, Copy, PartialEq, Eq)]
enum Limiter {
    Bucket,
    /// The bucket with `precise_timing(false)`: tokio's timer alone.
    BucketTimerOnly,
    Governor,
    LeakyBucket,
}

impl Limiter {
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

struct AccuracyRun {
    /// Grant times as the callers observed them, in seconds after the first, sorted.
    grants: Vec<f64>,
    /// The bucket only: its own grant instants (`Granted::granted_at`), likewise.
    grant_instants: Vec<f64>,
    requests: usize,
    rate: f64,
    capacity: f64,
    /// CPU seconds per wall second while the requests were served.
    cpu: f64,
    /// CPU seconds per wall second in the 300 ms after the last grant (bucket only).
    idle_cpu: Option<f64>,
}

impl AccuracyRun {
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

// ---------------------------------------------------------------------------------------
// Timing modes under steady demand

/// Callers that each acquire again as soon as they are granted: demand always above the
/// rate, as in a service that is being limited.
const STEADY_CALLERS: usize = 32;
/// Runs of each mode per configuration, alternating.
const TIMING_ROUNDS: usize = 3;
const STEADY_FOR: Duration = Duration::from_secs(2);

/// The process's CPU seconds per wall second over the next 300 ms, in which nobody asks
/// anything of the bucket.
async fn idle_cpu() -> f64 {
    let (cpu_start, wall_start) = (threads_cpu_seconds(), Instant::now());
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    (threads_cpu_seconds() - cpu_start) / wall_start.elapsed().as_secs_f64()
}

/// One run of steady demand on one bucket.
struct SteadyRun {
    /// The bucket's grant instants (`Granted::granted_at`) while the callers asked, in
    /// seconds after the first, each with the CPU the bucket's thread ran on when the
    /// caller resumed, on the same thread ([`NO_CPU`] where it is not known).
    grants: Vec<(f64, i32)>,
    /// When the callers stopped asking, in seconds after the first grant.
    end: f64,
    rate: f64,
    capacity: f64,
    /// The largest excess over the conformance bound at the grant instants, those after
    /// [`end`](Self::end) included, in grants.
    excess: f64,
    /// Process CPU seconds per wall second over the run, the witnesses' own left out.
    cpu: f64,
    /// Process CPU seconds per wall second in the 300 ms after the run, nobody waiting.
    idle_cpu: f64,
    /// The spans in which a CPU ran nothing: see [`Witness`].
    frozen: Vec<Span>,
}

/// A CPU that is not known, or not the same on both sides of a dry spell.
const NO_CPU: i32 = -1;

/// A span of time on one CPU, in seconds after the first grant.
#[derive(Clone, Copy)]
struct Span {
    cpu: i32,
    start: f64,
    length: f64,
}

impl Span {
    fn end(&self) -> f64 {
        self.start + self.length
    }

    /// How long this span and `other` share on the same, known CPU.
    fn overlap(&self, other: &Span) -> f64 {
        if self.cpu == NO_CPU || self.cpu != other.cpu {
            return 0.0;
        }
        (self.end().min(other.end()) - self.start.max(other.start)).max(0.0)
    }
}

impl SteadyRun {
    /// Units granted after the burst per second of the run, over the configured rate. The
    /// run lasts until the last grant, and on to `end` where the bucket ran dry before it.
    fn achieved(&self) -> f64 {
        self.achieved_less(0.0)
    }

    /// [`achieved`](Self::achieved) over the time the bucket's CPU ran: the run's length
    /// less [`dry_while_frozen`](Self::dry_while_frozen).
    fn achieved_while_running(&self) -> f64 {
        self.achieved_less(self.dry_while_frozen())
    }

    fn achieved_less(&self, excused: f64) -> f64 {
        if self.grants.len() as f64 <= self.capacity {
            return f64::NAN; // nothing granted beyond the burst: no rate to speak of
        }
        let last = self.grants.last().map_or(0.0, |&(at, _)| at);
        let dry_at_the_end: f64 = self
            .dry_spells()
            .iter()
            .filter(|spell| spell.start >= last)
            .map(|spell| spell.length)
            .sum();
        (self.grants.len() as f64 - self.capacity) / (last + dry_at_the_end - excused) / self.rate
    }

    /// The spells in which the bucket stood empty while callers waited (its leak lost to
    /// the rate), in order, the last running to `end` if the bucket was dry then. A spell's
    /// CPU is the one the bucket's thread ran on at the grants on both sides of it (where
    /// its timer was armed and where it woke); [`NO_CPU`] if they differ.
    fn dry_spells(&self) -> Vec<Span> {
        let mut level = 0.0;
        let mut previous = (0.0, NO_CPU);
        let mut spells = Vec::new();
        let callers_stop = std::iter::once((self.end, NO_CPU));
        for (at, cpu) in self.grants.iter().copied().chain(callers_stop) {
            let leaked = self.rate * (at - previous.0);
            if leaked > level {
                spells.push(Span {
                    cpu: if cpu == previous.1 { cpu } else { NO_CPU },
                    start: previous.0 + level / self.rate,
                    length: (leaked - level) / self.rate,
                });
            }
            level = (level - leaked).max(0.0) + 1.0;
            previous = (at, cpu);
        }
        spells
    }

    /// How long the bucket stood empty while the CPU its thread ran on was frozen, beyond
    /// what a bucket served without delay would have stood through: such a bucket is at
    /// most full when a freeze begins and runs dry `capacity / rate` into it, so only the
    /// part of a freeze after that counts.
    fn dry_while_frozen(&self) -> f64 {
        let full_for = self.capacity / self.rate;
        let beyond_a_full_bucket: Vec<Span> = self
            .frozen
            .iter()
            .filter(|freeze| freeze.length > full_for)
            .map(|freeze| Span {
                cpu: freeze.cpu,
                start: freeze.start + full_for,
                length: freeze.length - full_for,
            })
            .collect();
        self.dry_spells()
            .iter()
            .flat_map(|spell| {
                beyond_a_full_bucket
                    .iter()
                    .map(|freeze| spell.overlap(freeze))
            })
            .sum()
    }

    fn describe(&self) -> String {
        let bound = if self.excess <= 1e-6 {
            "bound holds".to_string()
        } else {
            format!("bound **exceeded by {:.6}**", self.excess)
        };
        format!(
            "{:.2} % at CPU {:.0} % ({bound}; idle CPU {:.2} %; {:.3} % of the time its CPU ran)",
            100.0 * self.achieved(),
            100.0 * self.cpu,
            100.0 * self.idle_cpu,
            100.0 * self.achieved_while_running()
        )
    }
}

/// One thread per CPU, pinned to it, beside a run: each sleeps [`WITNESS_STEP`] at a time
/// and notes when it woke more than [`FROZEN_AFTER`] late, less twice the time it waited for
/// another thread: spans in which the host ran nothing on that vCPU, whether it stopped it
/// while it ran or was late to wake it from idle. A thread that never sleeps is spared
/// the second (the probe's "yielding" row), at the cost of a CPU.
struct Witness {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Stall>>>,
}

/// A span in which a witness's CPU ran nothing.
struct Stall {
    cpu: i32,
    from: Instant,
    length: Duration,
}

const WITNESS_STEP: Duration = Duration::from_millis(1);
const FROZEN_AFTER: Duration = Duration::from_millis(1);

impl Witness {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = allowed_cpus()
            .into_iter()
            .map(|cpu| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let Some(cpu) = pin_to(cpu) else {
                        eprintln!("  (the witness for CPU {cpu} could not be pinned to it)");
                        return Vec::new();
                    };
                    let Some(mut waited) = thread_waited() else {
                        eprintln!("  (the witness for CPU {cpu} cannot see its run-queue wait)");
                        return Vec::new();
                    };
                    let mut stalls = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let due = Instant::now() + WITNESS_STEP;
                        std::thread::sleep(WITNESS_STEP);
                        let late = Instant::now().saturating_duration_since(due);
                        let waited_before = waited;
                        waited = thread_waited().unwrap_or(waited);
                        // The wait may have come before the stall or after it: only what
                        // is frozen either way counts.
                        let queued = waited.saturating_sub(waited_before);
                        let frozen = late.saturating_sub(2 * queued);
                        if frozen > FROZEN_AFTER {
                            stalls.push(Stall {
                                cpu,
                                from: due + queued,
                                length: frozen,
                            });
                        }
                    }
                    stalls
                })
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops the witnesses; what they saw.
    fn finish(self) -> Vec<Stall> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect()
    }
}

/// The CPUs this process may run on.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set owned by this frame, passed with its own size, and
    // read only within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to `cpu`; the CPU it is pinned to, as [`current_cpu`] names it.
#[cfg(target_os = "linux")]
fn pin_to(cpu: usize) -> Option<i32> {
    // SAFETY: `set` is a plain bit set owned by this frame, passed with its own size.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    (pinned == 0).then_some(cpu as i32)
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_: usize) -> Option<i32> {
    None
}

/// The CPU the calling thread runs on now.
#[cfg(target_os = "linux")]
fn current_cpu() -> i32 {
    // SAFETY: no arguments, no memory: it reads the CPU number the kernel exposes.
    unsafe { libc::sched_getcpu() }
}

#[cfg(not(target_os = "linux"))]
fn current_cpu() -> i32 {
    NO_CPU
}

/// How long the calling thread has waited, runnable, for a CPU (the second field of
/// `/proc/thread-self/schedstat`); `None` where the kernel does not say.
fn thread_waited() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = schedstat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// [`STEADY_CALLERS`] tasks on the bucket's own arbiter acquire 1 unit in a loop for
/// [`STEADY_FOR`], with a [`Witness`] beside them.
fn steady(precise: bool, rate: u32, capacity: u32) -> SteadyRun {
    let system = System::new();
    let run = system.block_on(async move {
        let config = BucketConfig::from_rate(f64::from(rate), f64::from(capacity)).unwrap();
        let bucket = BucketActor::new(config).precise_timing(precise).start();
        actix_rt::time::sleep(Duration::from_millis(20)).await; // the actor has started
        let grants = Rc::new(RefCell::new(Vec::with_capacity(2 * rate as usize + 64)));
        // Read before the witnesses start and after they end, so without their CPU.
        let cpu_start = threads_cpu_seconds();
        let witness = Witness::start();
        let wall_start = Instant::now();
        let end = wall_start + STEADY_FOR;
        let callers: Vec<_> = (0..STEADY_CALLERS)
            .map(|_| {
                let (bucket, grants) = (bucket.clone(), grants.clone());
                actix_rt::spawn(async move {
                    while Instant::now() < end {
                        let granted = bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
                        grants
                            .borrow_mut()
                            .push((granted.granted_at.into_std(), current_cpu()));
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        let stalls = witness.finish();
        let cpu = (threads_cpu_seconds() - cpu_start) / wall_start.elapsed().as_secs_f64();
        let idle_cpu = idle_cpu().await;
        let mut grants = grants.borrow().clone();
        grants.sort();
        let first = grants[0].0;
        let since_first = |at: Instant| match at.checked_duration_since(first) {
            Some(since) => since.as_secs_f64(),
            None => -first.duration_since(at).as_secs_f64(),
        };
        let all: Vec<f64> = grants.iter().map(|&(at, _)| since_first(at)).collect();
        let capacity = f64::from(capacity);
        // Demand is steady until the callers stop asking, at `end`: after it, the last
        // waiters may be granted as late as their window allows, rate or not.
        grants.retain(|&(at, _)| at <= end);
        SteadyRun {
            grants: grants
                .iter()
                .map(|&(at, cpu)| (since_first(at), cpu))
                .collect(),
            end: since_first(end),
            rate: f64::from(rate),
            capacity,
            excess: excess_over(&all, f64::from(rate), capacity, 0.0),
            cpu,
            idle_cpu,
            frozen: stalls
                .iter()
                .map(|stall| Span {
                    cpu: stall.cpu,
                    start: since_first(stall.from),
                    length: stall.length.as_secs_f64(),
                })
                .collect(),
        }
    });
    drop(system);
    run
}

// ---------------------------------------------------------------------------------------
// How punctually this machine wakes a thread

/// Lateness of wake-ups, in microseconds, sorted: `WAKE_PROBES` waits of `wait`, each on a
/// `timerfd` registered with tokio's reactor (the thread sleeps, as the bucket's does) or
/// yielding to the runtime until the instant (it never sleeps). What the machine's
/// scheduler, and the host's under a virtual machine, add to any timer.
#[cfg(target_os = "linux")]
fn wake_lateness(wait: Duration, sleep: bool) -> Vec<u64> {
    use timerfd::{ClockId, SetTimeFlags, TimerFd, TimerState};
    use tokio::io::unix::AsyncFd;

    System::new().block_on(async {
        #[allow(deprecated)] // AsyncFd::new: a TimerFd always gives the fd it owns
        let mut fd =
            AsyncFd::new(TimerFd::new_custom(ClockId::Monotonic, true, true).unwrap()).unwrap();
        let mut late = Vec::with_capacity(WAKE_PROBES);
        for _ in 0..WAKE_PROBES {
            let target = Instant::now() + wait;
            if sleep {
                fd.get_mut()
                    .set_state(TimerState::Oneshot(wait), SetTimeFlags::Default);
                loop {
                    let mut ready = fd.readable().await.unwrap();
                    let expirations = ready.get_inner().read();
                    ready.clear_ready();
                    if expirations > 0 {
                        break;
                    }
                }
            } else {
                while Instant::now() < target {
                    actix_rt::task::yield_now().await;
                }
            }
            late.push(Instant::now().saturating_duration_since(target).as_micros() as u64);
        }
        late.sort_unstable();
        late
    })
}

const WAKE_PROBES: usize = 4_000;

fn describe_lateness(late: &[u64]) -> String {
    let at = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
    format!(
        "p50 {} us, p99 {} us, p99.9 {} us, max {} us; {} of {} over 450 us",
        at(0.5),
        at(0.99),
        at(0.999),
        late[late.len() - 1],
        late.iter().filter(|&&l| l > 450).count(),
        late.len()
    )
}

// ---------------------------------------------------------------------------------------
// Scale and memory

struct DepthResult {
    /// Wall time per request, in nanoseconds.
    per_request_ns: f64,
    /// Heap bytes per request while all of them wait.
    heap_per_waiter: f64,
}

/// `waiters` independent tasks each send one `Acquire` of 1 to a full bucket that leaks
/// next to nothing (a million units per million hours), so all of them queue. Once every
/// one is queued, a `Reconcile` refunds the whole capacity, and the bucket grants them all
/// in one go. Nothing waits on a timer, so the whole run is work: per grant, `(last answer
/// - start) / waiters`, as for raw actix.
fn bucket_depth(waiters: usize) -> DepthResult {
    const CAPACITY: f64 = 1e6;
    System::new().block_on(async move {
        let period = Duration::from_secs(3_600 * 1_000_000);
        let bucket = BucketActor::new(BucketConfig::new(CAPACITY, period).unwrap()).start();
        bucket.send(Acquire::new(CAPACITY)).await.unwrap().unwrap();
        let replies = Rc::new(RefCell::new(Vec::with_capacity(waiters)));
        let (heap_before, faults_before) = (heap(), page_faults());
        let start = Instant::now();
        for _ in 0..waiters {
            let bucket = bucket.clone();
            let replies = replies.clone();
            actix_rt::spawn(async move {
                bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
                replies.borrow_mut().push(Instant::now());
            });
        }
        // Each query lets the runtime run the tasks that have not sent yet.
        let deadline = start + Duration::from_secs(10);
        while bucket.send(CapacityInfo::new(1.0)).await.unwrap().waiters < waiters {
            assert!(Instant::now() < deadline, "not every request was queued");
        }
        let (queued, heap_queued) = (Instant::now(), heap());
        let refund = bucket.send(Reconcile::new(0.0, CAPACITY));
        refund.await.unwrap().unwrap();
        wait_until(
            || replies.borrow().len() >= waiters,
            start + Duration::from_secs(10),
        )
        .await;
        let last = replies.borrow().iter().max().copied().unwrap();
        // What the drained queue still holds, and the first round trip after the flood
        // (a stall there would be the allocator tidying up after it).
        let after = Instant::now();
        bucket.send(CapacityInfo::new(1.0)).await.unwrap();
        let next_round_trip = after.elapsed();
        let held_after = heap() - heap_before;
        if std::env::var_os("REPORT_PHASES").is_some() {
            eprintln!(
                "bucket, {waiters}: queued in {:?}, granted in {:?}, {:.3} page faults per request, \
                 {} B still held after the drain, next round trip {:?}",
                queued - start,
                last - queued,
                (page_faults() - faults_before) as f64 / waiters as f64,
                held_after,
                next_round_trip
            );
        }
        DepthResult {
            per_request_ns: (last - start).as_nanos() as f64 / waiters as f64,
            heap_per_waiter: (heap_queued - heap_before) as f64 / waiters as f64,
        }
    })
}

/// The floor for any actor that makes its callers wait: it keeps each caller's reply sender
/// (as the bucket does, through its own `MessageResponse`) in a list allocated up front,
/// and answers them all when told to, with nothing else to decide.
struct Holder {
    held: Rc<RefCell<Vec<OneshotSender<u64>>>>,
}

impl Actor for Holder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(0);
    }
}

/// Asks the [`Holder`] for an answer, which comes when it releases everyone.
struct Hold;

impl Message for Hold {
    type Result = u64;
}

/// The answer to [`Hold`]: actix hands the reply sender to it, and it keeps the sender.
struct Held(Rc<RefCell<Vec<OneshotSender<u64>>>>);

impl<A: Actor, M: Message<Result = u64>> MessageResponse<A, M> for Held {
    fn handle(self, _: &mut A::Context, tx: Option<OneshotSender<u64>>) {
        self.0.borrow_mut().extend(tx);
    }
}

impl Handler<Hold> for Holder {
    type Result = Held;

    fn handle(&mut self, _: Hold, _: &mut Context<Self>) -> Held {
        Held(self.held.clone())
    }
}

/// Has the [`Holder`] answer everyone it holds.
struct ReleaseAll;

impl Message for ReleaseAll {
    type Result = ();
}

impl Handler<ReleaseAll> for Holder {
    type Result = ();

    fn handle(&mut self, _: ReleaseAll, _: &mut Context<Self>) {
        for tx in self.held.borrow_mut().drain(..) {
            let _ = tx.send(1);
        }
    }
}

/// The bucket's depth run through the [`Holder`]: `count` tasks each send a `Hold`; once all
/// are held, one `ReleaseAll` answers them. Per request: (last answer - start) / count.
fn held_depth(count: usize) -> f64 {
    System::new().block_on(async move {
        let held = Rc::new(RefCell::new(Vec::with_capacity(count)));
        let holder = Holder { held: held.clone() }.start();
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let replies = Rc::new(RefCell::new(Vec::with_capacity(count)));
        let start = Instant::now();
        for _ in 0..count {
            let holder = holder.clone();
            let replies = replies.clone();
            actix_rt::spawn(async move {
                holder.send(Hold).await.unwrap();
                replies.borrow_mut().push(Instant::now());
            });
        }
        let deadline = start + Duration::from_secs(10);
        while held.borrow().len() < count {
            assert!(Instant::now() < deadline, "not every request was held");
            actix_rt::task::yield_now().await;
        }
        holder.send(ReleaseAll).await.unwrap();
        wait_until(
            || replies.borrow().len() >= count,
            start + Duration::from_secs(10),
        )
        .await;
        let last = replies.borrow().iter().max().copied().unwrap();
        (last - start).as_nanos() as f64 / count as f64
    })
}

/// The same depth through a trivial actor: `count` independent tasks each send a `Ping`; on
/// one thread, every task sends (and then waits) before the actor runs, so all of them are in
/// the mailbox at once. Per request: (last answer - start) / count.
fn raw_depth(count: usize) -> f64 {
    System::new().block_on(async move {
        let echo = Echo.start();
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let replies = Rc::new(RefCell::new(Vec::with_capacity(count)));
        let faults_before = page_faults();
        let start = Instant::now();
        for _ in 0..count {
            let echo = echo.clone();
            let replies = replies.clone();
            actix_rt::spawn(async move {
                echo.send(Ping).await.unwrap();
                replies.borrow_mut().push(Instant::now());
            });
        }
        wait_until(
            || replies.borrow().len() >= count,
            start + Duration::from_secs(10),
        )
        .await;
        let last = replies.borrow().iter().max().copied().unwrap();
        if std::env::var_os("REPORT_PHASES").is_some() {
            eprintln!(
                "raw, {count}: answered in {:?}, {:.3} page faults per request",
                last - start,
                (page_faults() - faults_before) as f64 / count as f64
            );
        }
        (last - start).as_nanos() as f64 / count as f64
    })
}

/// Heap bytes per caller waiting in a raw actix mailbox: the actor's thread is blocked while
/// `count` tasks send to it from this one.
fn raw_heap_per_waiter(count: usize) -> f64 {
    const GATE: Duration = Duration::from_millis(1000);
    let arbiter = Arbiter::new();
    let per_waiter = System::new().block_on(async move {
        let echo = Echo::start_in_arbiter(&arbiter.handle(), |_| Echo);
        echo.send(Ping).await.unwrap(); // started: its mailbox is unbounded
        echo.do_send(Block(GATE));
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let done = Rc::new(Cell::new(0));
        let heap_before = heap();
        let start = Instant::now();
        for _ in 0..count {
            let echo = echo.clone();
            let done = done.clone();
            actix_rt::spawn(async move {
                echo.send(Ping).await.unwrap();
                done.set(done.get() + 1);
            });
        }
        actix_rt::time::sleep_until((start + GATE - GATE / 5).into()).await;
        let heap_queued = heap();
        wait_until(|| done.get() >= count, start + Duration::from_secs(10)).await;
        arbiter.stop();
        (heap_queued - heap_before) as f64 / count as f64
    });
    per_waiter
}

// ---------------------------------------------------------------------------------------
// The plot

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * power)
}

fn svg(runs: &[&AccuracyRun]) -> String {
    const W: f64 = 900.0;
    const H1: f64 = 420.0;
    const H2: f64 = 220.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const GAP: f64 = 70.0;
    let colors = ["#1f77b4", "#d62728", "#2ca02c"];
    let bucket = runs[0];
    let (rate, capacity) = (bucket.rate, bucket.capacity);
    let total = bucket.requests as f64;
    let t_max = runs
        .iter()
        .filter_map(|run| run.grants.last().copied())
        .fold(1.0_f64, f64::max)
        .min(3.0);
    let pw = W - LEFT - RIGHT;
    let x = |t: f64| LEFT + pw * t / t_max;
    let y1 = |n: f64| TOP + H1 - H1 * n / total;
    let mut out = String::new();
    let height = TOP + H1 + GAP + H2 + 50.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="22" font-size="15">Cumulative grants, {} per second with a burst of {}: {} requests, one task each</text>"#,
        rate, capacity, bucket.requests
    );
    // Axes and grid of the top panel.
    let step = nice_step(total / 5.0);
    for i in 0..=(total / step).floor() as usize {
        let n = step * i as f64;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{:.0}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y1(n) + 4.0,
            n,
            y = y1(n)
        );
    }
    let ticks = (t_max / 0.25).floor() as usize;
    for i in 0..=ticks {
        let t = i as f64 * 0.25;
        let _ = writeln!(
            out,
            r##"<line x1="{xt:.1}" x2="{xt:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/><text x="{xt:.1}" y="{}" text-anchor="middle">{t:.2} s</text>"##,
            TOP + H1,
            TOP + H1 + 16.0,
            xt = x(t)
        );
    }
    // The ideal line: the burst at once, then the rate.
    let t_ideal = (total - capacity) / rate;
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#000" stroke-dasharray="6 4" stroke-width="1.5" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}"/>"##,
        x(0.0),
        y1(0.0),
        x(0.0),
        y1(capacity),
        x(t_ideal.min(t_max)),
        y1(capacity + rate * t_ideal.min(t_max))
    );
    for (run, color) in runs.iter().zip(colors) {
        let step = (run.grants.len() / 2000).max(1);
        let mut points = format!("{:.1},{:.1}", x(0.0), y1(0.0));
        for (i, &t) in run.grants.iter().enumerate() {
            if i % step == 0 || i + 1 == run.grants.len() {
                let _ = write!(points, " {:.1},{:.1}", x(t.min(t_max)), y1((i + 1) as f64));
            }
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>"#
        );
    }
    // Legend.
    let legend: Vec<(String, &str)> = std::iter::once(("ideal".to_string(), "#000"))
        .chain(
            runs.iter()
                .zip(colors)
                .zip([Limiter::Bucket, Limiter::Governor, Limiter::LeakyBucket])
                .map(|((run, color), limiter)| {
                    (
                        format!("{} ({:.1} %)", limiter.name(), 100.0 * run.achieved()),
                        color,
                    )
                }),
        )
        .collect();
    for (i, (label, color)) in legend.iter().enumerate() {
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{label}</text>"#,
            LEFT + 14.0,
            LEFT + 40.0,
            LEFT + 46.0,
            ly + 4.0
        );
    }
    // Bottom panel: the bucket's grants minus the ideal count at each grant.
    let top2 = TOP + H1 + GAP;
    let deviation: Vec<(f64, f64)> = bucket
        .grants
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, (i + 1) as f64 - (capacity + rate * t).min(total)))
        .collect();
    let (lo, hi) = deviation
        .iter()
        .fold((-1.0_f64, 1.0_f64), |(lo, hi), &(_, d)| {
            (lo.min(d), hi.max(d))
        });
    let y2 = |d: f64| top2 + H2 - H2 * (d - lo) / (hi - lo);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="13">actix-leaky-bucket: grants minus the ideal count at each grant (above 0: ahead; below: behind)</text>"#,
        top2 - 10.0
    );
    for i in 0..=4 {
        let d = lo + (hi - lo) * i as f64 / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{d:.1}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y2(d) + 4.0,
            y = y2(d)
        );
    }
    for i in 0..=ticks {
        let t = i as f64 * 0.25;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{t:.2} s</text>"#,
            x(t),
            top2 + H2 + 16.0
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#000" stroke-dasharray="6 4"/>"##,
        W - RIGHT,
        y = y2(0.0)
    );
    let step = (deviation.len() / 3000).max(1);
    let points: Vec<String> = deviation
        .iter()
        .step_by(step)
        .map(|&(t, d)| format!("{:.1},{:.1}", x(t.min(t_max)), y2(d)))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{}" stroke-width="1" points="{}"/>"#,
        colors[0],
        points.join(" ")
    );
    out.push_str("</svg>\n");
    out
}

// ---------------------------------------------------------------------------------------

fn main() {
    if let Some(profile) = std::env::args().find(|arg| arg.starts_with("profile-")) {
        let per_request_ns = match profile.as_str() {
            "profile-bucket" => bucket_depth(100_000).per_request_ns,
            "profile-floor" => held_depth(100_000),
            "profile-bucket-pipelined" => pipelined(true, 128_000),
            "profile-floor-pipelined" => pipelined(false, 128_000),
            _ => panic!(
                "{profile}: the profiles are profile-bucket, profile-floor, \
                 profile-bucket-pipelined and profile-floor-pipelined"
            ),
        };
        println!("{profile}: {per_request_ns:.0} ns per request");
        return;
    }
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut row =
        |what: &str, bucket: String, reference: String, ratio: String, target: &str, met: &str| {
            rows.push([
                what.to_string(),
                bucket,
                reference,
                ratio,
                target.to_string(),
                met.to_string(),
            ]);
        };

    if wanted("throughput") {
        eprintln!("throughput...");
        let (sequential, pipelined) = throughput();
        for (what, result) in [
            ("Throughput, sequential", &sequential),
            ("Throughput, pipelined (batches of 64)", &pipelined),
        ] {
            row(
                what,
                format!("{:.0} k/s", result.bucket_per_s / 1e3),
                format!(
                    "raw actix send: {:.0} k/s<br>floor (same message and answer sizes, one clock read): {:.0} k/s ({:.2} of raw)",
                    result.raw_per_s / 1e3,
                    result.floor_per_s / 1e3,
                    result.floor_ratio
                ),
                format!("{:.2}", result.ratio),
                ">= 0.90",
                verdict(result.ratio >= 0.9),
            );
        }
    }

    let mut idle_cpu = Vec::new();
    #[cfg(target_os = "linux")]
    if wanted("timing") {
        eprintln!("timing: wake-up lateness...");
        let (short, long) = (Duration::from_micros(150), Duration::from_micros(450));
        row(
            "(extra) Lateness of a wake-up, this machine, now",
            format!(
                "thread sleeping on a timerfd, 150 us: {}<br>450 us: {}",
                describe_lateness(&wake_lateness(short, true)),
                describe_lateness(&wake_lateness(long, true))
            ),
            format!(
                "yielding until the instant, 450 us: {}",
                describe_lateness(&wake_lateness(long, false))
            ),
            String::new(),
            "none (the platform's part in the timing rows below)",
            "",
        );
    }
    if wanted("timing") {
        for (rate, capacity) in [(1_000, 10), (10_000, 10), (100_000, 100)] {
            eprintln!("timing: {rate}/s, capacity {capacity}...");
            // Alternating, so that both modes meet the same moments of a noisy machine.
            let mut precise = Vec::new();
            let mut timer_only = Vec::new();
            for _ in 0..TIMING_ROUNDS {
                timer_only.push(steady(false, rate, capacity));
                precise.push(steady(true, rate, capacity));
            }
            let median_of =
                |runs: &[SteadyRun], f: fn(&SteadyRun) -> f64| median(runs.iter().map(f).collect());
            if std::env::var_os("REPORT_PHASES").is_some() {
                for run in &precise {
                    let mut spells = run.dry_spells();
                    spells.sort_by(|a, b| b.length.total_cmp(&a.length));
                    let total: f64 = spells.iter().map(|spell| spell.length).sum();
                    let longest: Vec<String> = spells
                        .iter()
                        .take(8)
                        .map(|spell| {
                            format!(
                                "{:.0} us at {:.3} s (CPU {})",
                                spell.length * 1e6,
                                spell.start,
                                spell.cpu
                            )
                        })
                        .collect();
                    eprintln!(
                        "  precise {:.2} %: {} dry spells, {:.2} ms in all, {:.2} ms of it with \
                         its CPU frozen beyond what a full bucket stands; longest {}",
                        100.0 * run.achieved(),
                        spells.len(),
                        total * 1e3,
                        run.dry_while_frozen() * 1e3,
                        longest.join(", ")
                    );
                }
            }
            let (achieved, while_running, cpu) = (
                median_of(&precise, SteadyRun::achieved),
                median_of(&precise, SteadyRun::achieved_while_running),
                median_of(&precise, |run| run.cpu),
            );
            let timer_cpu = median_of(&timer_only, |run| run.cpu);
            let worst_excess = precise
                .iter()
                .map(|run| run.excess)
                .fold(f64::MIN, f64::max);
            let cpu_allowed = (2.0 * timer_cpu).max(timer_cpu + 0.10);
            let met = while_running >= 0.995 && cpu <= cpu_allowed && worst_excess <= 1e-6;
            let list = |runs: &[SteadyRun]| {
                runs.iter()
                    .map(SteadyRun::describe)
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            row(
                &format!(
                    "Timing, steady demand ({STEADY_CALLERS} callers, {} s), {}k/s, capacity {capacity}",
                    STEADY_FOR.as_secs(),
                    f64::from(rate) / 1e3
                ),
                format!("precise (default), {TIMING_ROUNDS} runs:<br>{}", list(&precise)),
                format!("timer only, {TIMING_ROUNDS} runs:<br>{}", list(&timer_only)),
                format!(
                    "rate {:.2} % ({:.2} % while its CPU ran), CPU {:.0} % vs {:.0} %",
                    100.0 * achieved,
                    100.0 * while_running,
                    100.0 * cpu,
                    100.0 * timer_cpu
                ),
                "rate >= 99.5 % while its CPU ran, CPU <= max(2 x, +10 points) of timer only, \
                 bound holds",
                verdict(met),
            );
        }
    }

    if wanted("accuracy") {
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
            let met =
                bucket.achieved() >= 0.99 && bucket.grant_instants_excess() <= rounding + 1e-6;
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
            row(
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
            row(
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
        let runs: Vec<&AccuracyRun> = plot_runs.iter().collect();
        std::fs::write(path, svg(&runs)).expect("writing the SVG");
        eprintln!("plot of the 100k/s, capacity 10 runs: {path}");
    }

    if wanted("scale") {
        eprintln!("scale and memory...");
        // Rounds interleave the five measures, in an order that turns with each round, so
        // that a change in the machine's load, or in what the allocator holds after a
        // flood, falls on all of them; the ratios are medians of per-round ratios.
        let rounds = 7;
        let (mut small, mut large) = (Vec::new(), Vec::new());
        let (mut raw_small, mut raw_large, mut held) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            for k in 0..5 {
                match (round + k) % 5 {
                    0 => small.push(bucket_depth(1_000)),
                    1 => raw_small.push(raw_depth(1_000)),
                    2 => large.push(bucket_depth(100_000)),
                    3 => raw_large.push(raw_depth(100_000)),
                    _ => held.push(held_depth(100_000)),
                }
            }
        }
        let per_round = |ratio: &dyn Fn(usize) -> f64| median((0..rounds).map(ratio).collect());
        let flat = per_round(&|i| large[i].per_request_ns / small[i].per_request_ns);
        let vs_raw = per_round(&|i| large[i].per_request_ns / raw_large[i]);
        let raw_flat = per_round(&|i| raw_large[i] / raw_small[i]);
        let held_vs_raw = per_round(&|i| held[i] / raw_large[i]);
        let vs_held = per_round(&|i| large[i].per_request_ns / held[i]);
        let raw_heap = raw_heap_per_waiter(100_000);
        let bucket_small = median(small.iter().map(|r| r.per_request_ns).collect());
        let bucket_large = median(large.iter().map(|r| r.per_request_ns).collect());
        let bucket_heap = median(large.iter().map(|r| r.heap_per_waiter).collect());
        let (raw_small, raw_large, held) = (median(raw_small), median(raw_large), median(held));
        row(
            "Scale: per grant, 100k queued waiters vs 1k",
            format!("{bucket_large:.0} ns vs {bucket_small:.0} ns"),
            format!("raw actix: {raw_large:.0} ns vs {raw_small:.0} ns ({raw_flat:.2})"),
            format!("{flat:.2}"),
            "<= 1.20",
            verdict(flat <= 1.2),
        );
        row(
            "Scale: per grant at 100k vs raw actix at 100k",
            format!("{bucket_large:.0} ns ({vs_held:.2} of the floor)"),
            format!(
                "raw actix: {raw_large:.0} ns<br>floor (an actor that holds every reply and \
                 answers all at once): {held:.0} ns ({held_vs_raw:.2} of raw)"
            ),
            format!("{vs_raw:.2}"),
            "<= 1.20",
            verdict(vs_raw <= 1.2),
        );
        let extra = bucket_heap - raw_heap;
        row(
            "Memory: heap per queued waiter, 100k deep",
            format!("{bucket_heap:.0} B"),
            format!("raw actix: {raw_heap:.0} B"),
            format!("{extra:+.0} B"),
            "<= 128 B",
            verdict(extra <= 128.0),
        );
    }

    println!();
    println!("| measure | actix-leaky-bucket | reference | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    for [what, bucket, reference, ratio, target, met] in &rows {
        println!("| {what} | {bucket} | {reference} | {ratio} | {target} | {met} |");
    }
    println!();
    if !idle_cpu.is_empty() {
        println!(
            "Bucket CPU while idle after each accuracy run (300 ms, no waiters): {}",
            idle_cpu
                .iter()
                .map(|c| format!("{:.2} %", 100.0 * c))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let start = Instant::now();
    let clock_reads: u32 = 1_000_000;
    for _ in 0..clock_reads {
        std::hint::black_box(actix_rt::time::Instant::now());
    }
    println!(
        "One read of tokio's clock (`Instant::now`) here: {:.0} ns",
        start.elapsed().as_nanos() as f64 / f64::from(clock_reads)
    );
}
