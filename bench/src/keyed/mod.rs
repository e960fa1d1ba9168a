//! The sections of the per-key front end's report (`cargo bench --bench keyed`): one module
//! each, and what several of them use.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::time::Duration;

use actix::Addr;
use actix_leaky_bucket::{Acquire, BucketConfig, Keyed, KeyedBucketActor, KeyedBucketHandle};
use futures::future::join_all;

pub mod accuracy;
pub mod churn;
pub mod cost;
pub mod flood;
pub mod map;
pub mod memory;
pub mod shards;

/// Mebibytes, as the table shows them.
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

/// Live keys in the `cost`, `map` and `shards` sections.
const LIVE_KEYS: u64 = 100_000;

/// Prints how many cores this machine has: what the shards' figures depend on.
pub fn print_machine() {
    println!(
        "Machine: {} cores (`available_parallelism`)",
        std::thread::available_parallelism().map_or(0, NonZeroUsize::get)
    );
}
