//! `cost`: `Keyed<u64, Acquire>` round trips granted at once from a keyed actor holding
//! 100k live keys, against a single `BucketActor`'s `Acquire` with the same
//! configuration (a level that never empties, so both do the same arithmetic per
//! request), all on the caller's thread; sequential and pipelined (batches of 64), 7
//! interleaved rounds whose order turns: medians of per-round ratios. The requests go to
//! keys in three patterns: cycling over 1k of the keys (their entries stay in the
//! cache); drawn from a Zipf distribution over all 100k (exponent 1: a few busy keys and
//! a long tail, as real clients send); cycling over all 100k (every request finds its
//! key's entry out of the cache). Beside them, in the same rounds: a keyed actor with
//! one key only (the keyed path without a large map), and governor's keyed limiter in an
//! actor of its own, with one key and cycling over 100k: what a keyed store pays for a
//! cold entry on this machine.

use std::cell::Cell;
use std::num::NonZeroU32;

use actix::{Actor, Addr, System};
use actix_leaky_bucket::{Acquire, BucketActor, Keyed, KeyedBucketActor, KeyedStats};

use super::{acquire_each, lasting, BATCH, LIVE_KEYS};
use crate::rounds::{median, time_pipelined, time_sequential, turn};
use crate::table::{verdict, Outcome};

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
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
        outcome.row(
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
        outcome.row(
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
        outcome.row(
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
    outcome
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

/// Every target, in the order of the results.
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
    /// Starts a limiter that never refuses.
    fn start() -> Addr<Self> {
        let unlimited = governor::Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX);
        Self(governor::RateLimiter::keyed(unlimited)).start()
    }
}

impl Actor for GovernorActor {
    type Context = actix::Context<Self>;
}

/// Checks one key; answers whether it conforms.
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

/// The costs of one way of sending (sequential or pipelined).
struct CostResult {
    /// Median ns per request, per target, in `TARGETS` order.
    ns: [f64; TARGETS.len()],
    /// Medians over rounds of each target's cost over the single bucket's, back to back.
    ratio: [f64; TARGETS.len()],
}

impl CostResult {
    /// `target`'s median ns per request and its ratio to the single bucket.
    fn of(&self, target: Target) -> (f64, f64) {
        let i = TARGETS.iter().position(|&t| t == target).unwrap();
        (self.ns[i], self.ratio[i])
    }
}

/// The sequential and the pipelined costs of every target.
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
                        time_pipelined(COUNT, BATCH, make).await
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
