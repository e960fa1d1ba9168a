//! `memory`: heap bytes per active key, from a counting global allocator. N keys each
//! acquire once from buckets that leak one unit an hour (none empties, none is evicted);
//! the actor's heap growth over N, minus that of a plain `HashMap<K, ()>` of the same
//! keys measured the same way (the map's own entry). Beside it, governor's keyed limiter
//! (its default `DashMap` store), each key checked once. u64 keys and 17-character
//! `String` keys, N = 100k and 1M.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Instant;

use actix::{Actor, System};
use actix_leaky_bucket::{KeyedBucketActor, KeyedStats};

use super::{acquire_each, lasting, BATCH};
use crate::alloc::heap;
use crate::table::{verdict, Outcome};

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
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
            outcome.row(
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
    outcome
}

/// Heap bytes per key of each store, with `count` keys in it.
struct MemoryResult {
    /// The keyed actor.
    actor: f64,
    /// A `HashMap<K, ()>` of the same keys.
    map: f64,
    /// governor's keyed limiter.
    governor: f64,
}

/// The 17-character string key of `i`.
fn string_key(i: usize) -> String {
    format!("user-{i:012}")
}

/// Heap bytes per key of each store with `count` keys made by `key`.
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
