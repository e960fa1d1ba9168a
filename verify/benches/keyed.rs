//! The per-key front end (`KeyedBucketActor`, `KeyedBucketHandle`) against its targets, as
//! one markdown table (no harness). Every ratio is measured in the same run, side by side.
//!
//! - `memory`: heap bytes per active key, from a counting global allocator. N keys each
//!   acquire once from buckets that leak one unit an hour (none empties, none is evicted);
//!   the actor's heap growth over N, minus that of a plain `HashMap<K, ()>` of the same
//!   keys measured the same way (the map's own entry). Beside it, governor's keyed limiter
//!   (its default `DashMap` store), each key checked once. u64 keys and 17-character
//!   `String` keys, N = 100k and 1M.
//! - `churn`: a stream of distinct u64 keys at 100k new keys per second (`KEYED_CHURN_KEYS`
//!   keys in all, default 10 million: 100 s), each acquiring once from a bucket of 10 per
//!   second with capacity 10 (it leaks back to zero 100 ms later), through a
//!   `KeyedBucketHandle` on its own thread. RSS (`/proc/self/statm`) every second: the most
//!   after the first 10 s (half the run, if it is shorter) over the level then.
//! - `flood`: RSS and heap before; a million distinct keys acquiring once as fast as they
//!   can (batches of 256 in flight) from buckets whose unit leaks in 10 s, through a
//!   `KeyedBucketHandle`; then no traffic until every bucket has leaked to zero plus the
//!   sweep's slack (100 ms, and 50 ms more). Heap and RSS then, with no message sent during
//!   the wait (has the actor freed the idle keys by itself?); then `KeyedStats` (keys must
//!   be 0), heap and RSS again. RSS is back near its start when at least 95 % of the
//!   flood's rise is given back. Last, for information, what glibc holds free
//!   (`mallinfo2`) and the RSS after a `malloc_trim(0)` called by the bench.
//! - `cost`: `Keyed<u64, Acquire>` round trips granted at once from a keyed actor holding
//!   100k live keys, against a single `BucketActor`'s `Acquire` with the same
//!   configuration (a level that never empties, so both do the same arithmetic per
//!   request), all on the caller's thread; sequential and pipelined (batches of 64), 7
//!   interleaved rounds whose order turns: medians of per-round ratios. The requests go to
//!   keys in three patterns: cycling over 1k of the keys (their entries stay in the
//!   cache); drawn from a Zipf distribution over all 100k (exponent 1: a few busy keys and
//!   a long tail, as real clients send); cycling over all 100k (every request finds its
//!   key's entry out of the cache). Beside them, in the same rounds: a keyed actor with
//!   one key only (the keyed path without a large map), and governor's keyed limiter in an
//!   actor of its own, with one key and cycling over 100k: what a keyed store pays for a
//!   cold entry on this machine.
//! - `map`: no actor: what a cold entry costs by its size. A bare `HashMap<u64, [u64; W]>`
//!   of 100k keys, cycled, each lookup followed by work that stands for the rest of an
//!   actor's turn, for entries of 24 to 48 bytes, against one key.
//! - `accuracy`: 1,000 keys at 100/s each, capacity 10, through a `KeyedBucketHandle` (its
//!   own thread); two caller tasks per key loop on acquire for 2 s. Per key, the achieved
//!   rate (grants after the burst over the span of the bucket's grant instants,
//!   `Granted::granted_at`) and the conformance bound (granted in any window of length
//!   t <= capacity + rate t) at those instants; process CPU over the run.
//! - `shards`: two client threads, each on a current-thread tokio runtime, acquiring over
//!   50k live keys of their own through `KeyedBucketHandle::spawn_sharded` with 1 and with
//!   2 shards, sequential and pipelined (batches of 64); 5 interleaved rounds.
//!
//! Run with `cargo bench -p actix-leaky-bucket-verify --bench keyed`; name sections to run
//! only those: `cargo bench -p actix-leaky-bucket-verify --bench keyed -- flood cost`.
//! `churn` and `flood` measure the whole process's RSS: run each alone.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::num::{NonZeroU32, NonZeroUsize};
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use actix::{Actor, Addr, System};
use actix_leaky_bucket::{
    Acquire, BucketActor, BucketConfig, Keyed, KeyedBucketActor, KeyedBucketHandle,
    KeyedBucketStats, KeyedStats,
};
use common::{cpu_seconds, excess_over, heap, median, turn, verdict, wanted};
use futures::future::join_all;

// ---------------------------------------------------------------------------------------
// Counting allocator

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

// ---------------------------------------------------------------------------------------
// Helpers

/// The resident set of this process and its anonymous part (resident less file-backed
/// pages, such as the program's own code), in bytes, from `/proc/self/statm`; zeros where
/// it is missing.
fn resident() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: Vec<u64> = statm
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    match pages[..] {
        [_, resident, shared, ..] => (resident * page_size(), (resident - shared) * page_size()),
        _ => (0, 0),
    }
}

/// The resident set of this process, in bytes.
fn rss() -> u64 {
    resident().0
}

#[cfg(unix)]
fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

#[cfg(not(unix))]
fn page_size() -> u64 {
    0
}

/// What glibc's allocator holds free (`mallinfo2().fordblks`), then the RSS after it has
/// been asked to give every free page back (`malloc_trim(0)`); `None` off glibc.
#[cfg(target_env = "gnu")]
fn glibc_free_then_trim() -> Option<(u64, u64)> {
    // SAFETY: both only read and adjust the allocator's own state.
    let free = unsafe { libc::mallinfo2() }.fordblks as u64;
    unsafe { libc::malloc_trim(0) };
    Some((free, rss()))
}

#[cfg(not(target_env = "gnu"))]
fn glibc_free_then_trim() -> Option<(u64, u64)> {
    None
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// Requests in flight per batch when pipelined.
const BATCH: usize = 64;

/// Buckets under which nobody waits and none empties during a run: a capacity of a
/// million (more than any section acquires from one bucket), leaking one unit an hour.
fn lasting() -> BucketConfig {
    BucketConfig::new(1e6, Duration::from_secs(3_600 * 1_000_000)).unwrap()
}

/// Acquires 1 from each key's bucket at `addr`, `batch` requests in flight at a time.
async fn acquire_each<K>(
    addr: &Addr<KeyedBucketActor<K>>,
    keys: impl Iterator<Item = K>,
    batch: usize,
) where
    K: Hash + Eq + Clone + Send + Unpin + 'static,
{
    let mut keys = keys.peekable();
    while keys.peek().is_some() {
        let requests = keys
            .by_ref()
            .take(batch)
            .map(|key| addr.send(Keyed::new(key, Acquire::new(1.0))));
        for answer in join_all(requests).await {
            answer.unwrap().unwrap();
        }
    }
}

/// The same through a handle, which may have several shards.
async fn acquire_each_through(
    handle: &KeyedBucketHandle<u64>,
    keys: impl Iterator<Item = u64>,
    batch: usize,
) {
    let mut keys = keys.peekable();
    while keys.peek().is_some() {
        let requests = keys
            .by_ref()
            .take(batch)
            .map(|key| handle.acquire(key, 1.0));
        for answer in join_all(requests).await {
            answer.unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Memory

/// Heap bytes per key of each store, with `count` keys in it.
struct MemoryResult {
    actor: f64,
    map: f64,
    governor: f64,
}

/// The 17-character string key of `i`.
fn string_key(i: usize) -> String {
    format!("user-{i:012}")
}

fn memory<K>(count: usize, key: impl Fn(usize) -> K + Copy) -> MemoryResult
where
    K: Hash + Eq + Clone + Send + Unpin + 'static,
{
    MemoryResult {
        map: map_heap_per_key(count, key),
        governor: governor_heap_per_key(count, key),
        actor: actor_heap_per_key(count, key),
    }
}

/// The map's own entry: heap per key of a `HashMap<K, ()>` grown by inserting the keys.
fn map_heap_per_key<K: Hash + Eq>(count: usize, key: impl Fn(usize) -> K) -> f64 {
    let before = heap();
    let mut map = HashMap::new();
    for i in 0..count {
        map.insert(key(i), ());
    }
    let held = heap() - before;
    assert_eq!(map.len(), count);
    held as f64 / count as f64
}

/// Governor's default keyed store, each key checked once (and conforming).
fn governor_heap_per_key<K: Hash + Eq + Clone>(count: usize, key: impl Fn(usize) -> K) -> f64 {
    let limiter = governor::RateLimiter::<K, _, _>::keyed(governor::Quota::per_hour(
        NonZeroU32::new(1).unwrap(),
    ));
    let before = heap();
    for i in 0..count {
        limiter.check_key(&key(i)).unwrap();
    }
    let held = heap() - before;
    assert_eq!(limiter.len(), count);
    held as f64 / count as f64
}

/// The keyed actor, on this thread, each key acquired once.
fn actor_heap_per_key<K>(count: usize, key: impl Fn(usize) -> K) -> f64
where
    K: Hash + Eq + Clone + Send + Unpin + 'static,
{
    System::new().block_on(async move {
        let addr = KeyedBucketActor::<K>::new(lasting()).start();
        addr.send(KeyedStats).await.unwrap(); // started
        let before = heap();
        acquire_each(&addr, (0..count).map(key), BATCH).await;
        let held = heap() - before;
        assert_eq!(addr.send(KeyedStats).await.unwrap().keys, count);
        held as f64 / count as f64
    })
}

// ---------------------------------------------------------------------------------------
// Churn

/// New keys per second in the churn.
const CHURN_RATE: f64 = 100_000.0;

struct ChurnResult {
    keys: u64,
    seconds: f64,
    /// Seconds after the start at which the baseline is taken.
    baseline_at: f64,
    /// (seconds after the start, RSS, heap), once a second.
    samples: Vec<(f64, u64, isize)>,
    end: KeyedBucketStats,
    cpu: f64,
}

impl ChurnResult {
    fn baseline(&self) -> (u64, isize) {
        self.samples
            .iter()
            .find(|sample| sample.0 >= self.baseline_at)
            .map_or((0, 0), |&(_, rss, heap)| (rss, heap))
    }

    fn max_after(&self) -> (u64, isize) {
        self.samples
            .iter()
            .filter(|sample| sample.0 >= self.baseline_at)
            .fold((0, 0), |(rss, heap), sample| {
                (rss.max(sample.1), heap.max(sample.2))
            })
    }
}

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

// ---------------------------------------------------------------------------------------
// Flood

/// How long one unit takes to leak from a key's bucket in the flood: longer than the
/// flood lasts, so that every key is held at its end.
const FLOOD_LEAK: Duration = Duration::from_secs(10);
/// The sweep may come this late (`SWEEP_SLACK` in src/core/keyed.rs), and a little more.
const SWEEP_WAIT: Duration = Duration::from_millis(150);
const FLOOD_BATCH: usize = 256;

/// Process RSS, its anonymous part, and heap at one moment.
#[derive(Clone, Copy)]
struct Footprint {
    rss: u64,
    anon: u64,
    heap: isize,
}

impl Footprint {
    fn now() -> Self {
        let (rss, anon) = resident();
        Self {
            rss,
            anon,
            heap: heap(),
        }
    }
}

struct FloodResult {
    keys: u64,
    seconds: f64,
    start: Footprint,
    /// The most seen during and right after the flood.
    peak: Footprint,
    /// Keys held right after the flood (`KeyedStats`).
    held: usize,
    /// Once every bucket has leaked to zero, no message sent during the wait.
    waited: Footprint,
    /// After `KeyedStats` answered.
    swept: Footprint,
    stats: KeyedBucketStats,
    /// What glibc held free, and the RSS after `malloc_trim(0)`.
    trimmed: Option<(u64, u64)>,
}

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

// ---------------------------------------------------------------------------------------
// Cost

/// Live keys in the `cost` and `shards` sections.
const LIVE_KEYS: u64 = 100_000;

async fn time_sequential<F: Future>(count: usize, mut make: impl FnMut() -> F) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        make().await;
    }
    start.elapsed().as_secs_f64()
}

async fn time_pipelined<F: Future>(count: usize, mut make: impl FnMut() -> F) -> f64 {
    let start = Instant::now();
    for _ in 0..count / BATCH {
        join_all((0..BATCH).map(|_| make())).await;
    }
    start.elapsed().as_secs_f64()
}

/// Keys that take every request in the "hot" variants, out of the live ones.
const HOT_KEYS: u64 = 1_000;

/// What one timed request goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A single `BucketActor`: the reference.
    Single,
    /// A keyed actor that holds one key only: the keyed path without a large map.
    OneKey,
    /// The keyed actor holding `LIVE_KEYS` keys, requests cycling over `HOT_KEYS` of them.
    Hot,
    /// The same actor, requests to keys drawn from a Zipf distribution over all its keys
    /// (see [`zipf_keys`]): traffic as real clients send it, a few keys busy and a long
    /// tail.
    Zipf,
    /// The same actor, requests cycling over all its keys: each finds its key's entry
    /// out of the cache.
    Cold,
    /// governor's keyed limiter in an actor, one key.
    GovernorOneKey,
    /// The same over `LIVE_KEYS` keys, cycling over all: what any keyed store pays.
    GovernorCold,
}

const TARGETS: [Target; 7] = [
    Target::Single,
    Target::OneKey,
    Target::Hot,
    Target::Zipf,
    Target::Cold,
    Target::GovernorOneKey,
    Target::GovernorCold,
];

/// governor's keyed limiter, checked through actix messages like the bucket.
struct GovernorActor(governor::DefaultKeyedRateLimiter<u64>);

impl GovernorActor {
    fn start() -> Addr<Self> {
        let unlimited = governor::Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX);
        Self(governor::RateLimiter::keyed(unlimited)).start()
    }
}

impl Actor for GovernorActor {
    type Context = actix::Context<Self>;
}

struct Check(u64);

impl actix::Message for Check {
    type Result = bool;
}

impl actix::Handler<Check> for GovernorActor {
    type Result = bool;

    fn handle(&mut self, Check(key): Check, _: &mut Self::Context) -> bool {
        self.0.check_key(&key).is_ok()
    }
}

struct CostResult {
    /// Median ns per request, per target, in `TARGETS` order.
    ns: [f64; TARGETS.len()],
    /// Medians over rounds of each target's cost over the single bucket's, back to back.
    ratio: [f64; TARGETS.len()],
}

impl CostResult {
    fn of(&self, target: Target) -> (f64, f64) {
        let i = TARGETS.iter().position(|&t| t == target).unwrap();
        (self.ns[i], self.ratio[i])
    }
}

fn cost() -> [CostResult; 2] {
    const COUNT: usize = 50_000;
    const ROUNDS: usize = 7;
    System::new().block_on(async {
        let keyed = KeyedBucketActor::<u64>::new(lasting()).start();
        let one_key = KeyedBucketActor::<u64>::new(lasting()).start();
        let single = BucketActor::new(lasting()).start();
        let governor_one_key = GovernorActor::start();
        let governor = GovernorActor::start();
        acquire_each(&keyed, 0..LIVE_KEYS, BATCH).await;
        for key in 0..LIVE_KEYS {
            assert!(governor.send(Check(key)).await.unwrap());
        }
        let (hot, cold) = (Cell::new(0), Cell::new(0));
        let (zipf, drawn) = (zipf_keys(), Cell::new(0));
        let next = |cell: &Cell<u64>, keys: u64| {
            let key = cell.get();
            cell.set((key + 1) % keys);
            key
        };
        let request = |target: Target| {
            let key = match target {
                Target::Hot => next(&hot, HOT_KEYS),
                Target::Zipf => zipf[next(&drawn, zipf.len() as u64) as usize],
                Target::Cold | Target::GovernorCold => next(&cold, LIVE_KEYS),
                _ => 0,
            };
            let (keyed, one_key, single) = (&keyed, &one_key, &single);
            let (governor, governor_one_key) = (&governor, &governor_one_key);
            async move {
                let granted = match target {
                    Target::Single => single.send(Acquire::new(1.0)).await.unwrap().is_ok(),
                    Target::OneKey | Target::Hot | Target::Zipf | Target::Cold => {
                        let actor = if target == Target::OneKey {
                            one_key
                        } else {
                            keyed
                        };
                        let request = Keyed::new(key, Acquire::new(1.0));
                        actor.send(request).await.unwrap().is_ok()
                    }
                    Target::GovernorOneKey | Target::GovernorCold => {
                        let actor = if target == Target::GovernorOneKey {
                            governor_one_key
                        } else {
                            governor
                        };
                        actor.send(Check(key)).await.unwrap()
                    }
                };
                assert!(granted);
            }
        };
        for target in TARGETS {
            time_sequential(COUNT, || request(target)).await; // warm up
        }
        let mut results = [false, true].map(|_| <[Vec<f64>; TARGETS.len()]>::default());
        for round in 0..ROUNDS {
            for (&pipelined, times) in [false, true].iter().zip(&mut results) {
                for k in 0..TARGETS.len() {
                    let which = turn(round, k, TARGETS.len());
                    let make = || request(TARGETS[which]);
                    let seconds = if pipelined {
                        time_pipelined(COUNT, make).await
                    } else {
                        time_sequential(COUNT, make).await
                    };
                    times[which].push(seconds * 1e9 / COUNT as f64);
                }
            }
        }
        assert_eq!(
            keyed.send(KeyedStats).await.unwrap().keys,
            LIVE_KEYS as usize
        );
        results.map(|times| {
            let single = times[0].clone();
            CostResult {
                ns: times.clone().map(median),
                ratio: times.map(|ns| median(ns.iter().zip(&single).map(|(t, s)| t / s).collect())),
            }
        })
    })
}

/// How many Zipf-drawn keys the `Zipf` target cycles through: enough that the cycle is no
/// pattern a cache could learn.
const ZIPF_DRAWS: usize = 1 << 20;

/// [`ZIPF_DRAWS`] keys drawn from a Zipf distribution of exponent 1 over the `LIVE_KEYS`
/// keys (the `k`-th most requested key is asked `1/k` as often as the first), from a fixed
/// seed. About four requests in five go to the 10k busiest keys. Ranks are spread over the
/// keys by a multiplier prime to their count, so that the busiest are not the `Hot`
/// target's keys, which that target has just brought into the cache.
fn zipf_keys() -> Vec<u64> {
    use rand::SeedableRng;
    use rand_distr::Distribution;

    const SPREAD: u64 = 7_919; // prime, and not a factor of LIVE_KEYS
    let zipf = rand_distr::Zipf::new(LIVE_KEYS as f64, 1.0).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    (0..ZIPF_DRAWS)
        .map(|_| ((zipf.sample(&mut rng) as u64 - 1) * SPREAD + LIVE_KEYS / 2) % LIVE_KEYS)
        .collect()
}

/// ns per request-like step over a bare `HashMap<u64, [u64; W]>` of `keys` keys, cycling:
/// look up and update the key's entry, then do work that stands for the rest of an actor's
/// turn (64 writes spread over a 200 KB buffer). The next key depends on the entry read, as
/// in the actor, where a request's lookup does not start before the previous one is done.
/// Entries of `8 + 8 W` bytes.
fn map_step_ns<const W: usize>(keys: u64) -> f64 {
    const STEPS: u64 = 2_000_000;
    let map: HashMap<u64, [u64; W]> = (0..keys).map(|key| (key, [key; W])).collect();
    let mut map = std::hint::black_box(map);
    let mut work = vec![0_u64; 200_000 / 8];
    let (mut key, mut sum, mut at) = (0, 0_u64, 0);
    let start = Instant::now();
    for _ in 0..STEPS {
        let entry = map.get_mut(&key).unwrap();
        entry[0] = entry[0].wrapping_add(1);
        sum = sum.wrapping_add(entry[0]);
        for _ in 0..64 {
            at = (at + 8) % work.len();
            work[at] = work[at].wrapping_add(sum);
        }
        // Always 0, but only known once the entry is read.
        let carry = entry[W - 1] >> 63;
        key = (key + 1 + carry) % keys;
    }
    std::hint::black_box((sum, &work));
    start.elapsed().as_nanos() as f64 / STEPS as f64
}

/// Medians over 5 interleaved rounds: one key, then 100k keys with entries of 24, 32, 40
/// and 48 bytes.
fn map_steps() -> [f64; 5] {
    let mut times: [Vec<f64>; 5] = Default::default();
    for _ in 0..5 {
        times[0].push(map_step_ns::<5>(1));
        times[1].push(map_step_ns::<2>(LIVE_KEYS));
        times[2].push(map_step_ns::<3>(LIVE_KEYS));
        times[3].push(map_step_ns::<4>(LIVE_KEYS));
        times[4].push(map_step_ns::<5>(LIVE_KEYS));
    }
    times.map(median)
}

// ---------------------------------------------------------------------------------------
// Accuracy

const ACCURACY_KEYS: usize = 1_000;
const ACCURACY_RATE: f64 = 100.0;
const ACCURACY_CAPACITY: f64 = 10.0;
const CALLERS_PER_KEY: usize = 2;
const ACCURACY_FOR: Duration = Duration::from_secs(2);

struct AccuracyResult {
    /// Per key, the achieved rate over the configured one.
    rates: Vec<f64>,
    /// The largest excess over the conformance bound of any key, in grants.
    worst_excess: f64,
    grants: usize,
    cpu: f64,
}

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

// ---------------------------------------------------------------------------------------
// Shards

const CLIENTS: usize = 2;
const SHARD_ROUNDS: usize = 5;

/// Acquires per second from [`CLIENTS`] threads, each on a current-thread tokio runtime of
/// its own, `per_client` each, cycling over live keys of its own, `batch` in flight.
fn clients_throughput(handle: &KeyedBucketHandle<u64>, per_client: usize, batch: usize) -> f64 {
    let keys_per_client = LIVE_KEYS / CLIENTS as u64;
    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|client| {
            let (handle, barrier) = (handle.clone(), barrier.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let keys = (0..per_client as u64)
                    .map(move |i| client * keys_per_client + i % keys_per_client);
                barrier.wait();
                runtime.block_on(acquire_each_through(&handle, keys, batch));
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for client in clients {
        client.join().unwrap();
    }
    (CLIENTS * per_client) as f64 / start.elapsed().as_secs_f64()
}

struct ShardsResult {
    /// Acquires per second with 1 shard and with 2.
    one: f64,
    two: f64,
    /// Median over rounds of the rate with 2 shards over the rate with 1, back to back.
    ratio: f64,
}

fn shards() -> [ShardsResult; 2] {
    let shards = |count| {
        let count = NonZeroUsize::new(count).unwrap();
        let handle =
            KeyedBucketHandle::<u64>::spawn_sharded(count, || KeyedBucketActor::new(lasting()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(acquire_each_through(&handle, 0..LIVE_KEYS, BATCH));
        handle
    };
    let handles = [shards(1), shards(2)];
    [(1, 20_000), (BATCH, 200_000)].map(|(batch, per_client)| {
        let mut rates = [Vec::new(), Vec::new()];
        let mut ratios = Vec::new();
        for round in 0..SHARD_ROUNDS {
            let mut rate = [0.0; 2];
            for k in 0..2 {
                let which = (round + k) % 2;
                rate[which] = clients_throughput(&handles[which], per_client, batch);
            }
            ratios.push(rate[1] / rate[0]);
            rates[0].push(rate[0]);
            rates[1].push(rate[1]);
        }
        let [one, two] = rates.map(median);
        ShardsResult {
            one,
            two,
            ratio: median(ratios),
        }
    })
}

// ---------------------------------------------------------------------------------------

fn main() {
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
    let mut notes = Vec::new();

    if wanted("memory") {
        for count in [100_000, 1_000_000] {
            for strings in [false, true] {
                let began = Instant::now();
                let (kind, result) = if strings {
                    ("17-character `String`", memory(count, string_key))
                } else {
                    ("u64", memory(count, |i| i as u64))
                };
                eprintln!(
                    "memory: {count} {kind} keys in each store, {:.1} s",
                    began.elapsed().as_secs_f64()
                );
                let extra = result.actor - result.map;
                row(
                    &format!(
                        "Memory per active key, {kind} keys, {}k keys",
                        count / 1_000
                    ),
                    format!("{:.1} B per key", result.actor),
                    format!(
                        "`HashMap<_, ()>`, the map's own entry: {:.1} B<br>governor keyed \
                         (`DashMap`): {:.1} B ({:+.1} B over the map's)",
                        result.map,
                        result.governor,
                        result.governor - result.map
                    ),
                    format!("{extra:+.1} B"),
                    "<= +96 B over the map's entry",
                    verdict(extra <= 96.0),
                );
            }
        }
    }

    if wanted("churn") {
        let keys = std::env::var("KEYED_CHURN_KEYS")
            .ok()
            .and_then(|keys| keys.parse().ok())
            .unwrap_or(10_000_000);
        eprintln!("churn: {keys} keys at 100k/s...");
        let result = churn(keys);
        let ((rss_then, heap_then), (rss_max, heap_max)) = (result.baseline(), result.max_after());
        let ratio = rss_max as f64 / rss_then as f64;
        row(
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
        notes.push(format!(
            "Churn RSS each second (MiB): {}",
            series.join(", ")
        ));
    }

    if wanted("flood") {
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
        row(
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
        row(
            "(extra) The same flood, once every bucket is empty and the sweep's slack has \
             passed, no message during the wait: freed by the actor's own sweep?",
            over_start(result.waited),
            before,
            compared(result.waited),
            "RSS back near the start with nothing sent (\"nothing to call\")",
            verdict(given_back(result.waited) >= 0.95),
        );
    }

    if wanted("cost") {
        eprintln!("cost...");
        let [sequential, pipelined] = cost();
        for (what, result) in [
            ("sequential", sequential),
            ("pipelined (batches of 64)", pipelined),
        ] {
            let (single_ns, _) = result.of(Target::Single);
            let (one_key_ns, one_key_ratio) = result.of(Target::OneKey);
            let (hot_ns, hot_ratio) = result.of(Target::Hot);
            let (zipf_ns, zipf_ratio) = result.of(Target::Zipf);
            let (cold_ns, cold_ratio) = result.of(Target::Cold);
            let (governor_one_ns, governor_one_ratio) = result.of(Target::GovernorOneKey);
            let (governor_cold_ns, governor_cold_ratio) = result.of(Target::GovernorCold);
            row(
                &format!("Per-acquire cost, 100k live keys, requests over 1k of them, {what}"),
                format!(
                    "`Keyed<u64, Acquire>`: {hot_ns:.0} ns<br>(the same actor type with one key: \
                     {one_key_ns:.0} ns, {one_key_ratio:.2} of the single bucket)"
                ),
                format!("single `BucketActor` `Acquire`: {single_ns:.0} ns"),
                format!("{hot_ratio:.2}"),
                "<= 1.30",
                verdict(hot_ratio <= 1.3),
            );
            row(
                &format!(
                    "Per-acquire cost, 100k live keys, requests to keys drawn from a Zipf \
                     distribution (exponent 1) over all of them, {what}"
                ),
                format!("`Keyed<u64, Acquire>`: {zipf_ns:.0} ns"),
                format!("single: {single_ns:.0} ns"),
                format!("{zipf_ratio:.2}"),
                "<= 1.30",
                verdict(zipf_ratio <= 1.3),
            );
            row(
                &format!(
                    "(extra) Per-acquire cost, 100k live keys, the worst case: requests cycling \
                     over all (each key's entry out of the cache), {what}"
                ),
                format!(
                    "`Keyed<u64, Acquire>`: {cold_ns:.0} ns, {:+.0} ns over one key",
                    cold_ns - one_key_ns
                ),
                format!(
                    "single: {single_ns:.0} ns<br>governor keyed in an actor: one key \
                     {governor_one_ns:.0} ns ({governor_one_ratio:.2}), 100k keys cycled \
                     {governor_cold_ns:.0} ns ({governor_cold_ratio:.2}), {:+.0} ns over one key",
                    governor_cold_ns - governor_one_ns
                ),
                format!("{cold_ratio:.2}"),
                "none (what a miss to memory costs any keyed store here)",
                "",
            );
        }
    }

    if wanted("map") {
        eprintln!("map...");
        let [one, e24, e32, e40, e48] = map_steps();
        row(
            "(extra) A cold entry by its size: a bare `HashMap<u64, _>` of 100k keys, cycled, \
             each lookup followed by an actor's worth of other work",
            format!(
                "per step, entries of 24 B: {e24:.0} ns, 32 B: {e32:.0} ns, 40 B: {e40:.0} ns, \
                 48 B (the keyed actor's, with u64 keys): {e48:.0} ns"
            ),
            format!("one key: {one:.0} ns"),
            format!("48 B over 24 B: {:.2}", e48 / e24),
            "none (whether a smaller entry would buy the miss back)",
            "",
        );
    }

    if wanted("accuracy") {
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
        row(
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
    }

    if wanted("shards") {
        eprintln!("shards...");
        let [sequential, pipelined] = shards();
        let cores = std::thread::available_parallelism().map_or(0, NonZeroUsize::get);
        for (what, result) in [
            ("sequential", sequential),
            ("pipelined (batches of 64)", pipelined),
        ] {
            row(
                &format!(
                    "Shards: {CLIENTS} client threads over 100k live keys, {what}, on \
                     {cores} cores"
                ),
                format!("2 shards: {:.0} k/s", result.two / 1e3),
                format!("1 shard: {:.0} k/s", result.one / 1e3),
                format!("{:.2}", result.ratio),
                "none (shows what sharding gives)",
                "",
            );
        }
    }

    println!();
    println!("| measure | actix-leaky-bucket | reference | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    for [what, bucket, reference, ratio, target, met] in &rows {
        println!("| {what} | {bucket} | {reference} | {ratio} | {target} | {met} |");
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    println!(
        "Machine: {} cores (`available_parallelism`)",
        std::thread::available_parallelism().map_or(0, NonZeroUsize::get)
    );
}
