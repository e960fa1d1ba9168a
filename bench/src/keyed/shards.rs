//! `shards`: two client threads, each on a current-thread tokio runtime, acquiring over
//! 50k live keys of their own through `KeyedBucketHandle::spawn_sharded` with 1 and with
//! 2 shards, sequential and pipelined (batches of 64); 5 interleaved rounds.

use std::num::NonZeroUsize;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use actix_leaky_bucket::{KeyedBucketActor, KeyedBucketHandle};

use super::{acquire_each_through, lasting, BATCH, LIVE_KEYS};
use crate::rounds::median;
use crate::table::Outcome;

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    eprintln!("shards...");
    let [sequential, pipelined] = shards();
    let cores = std::thread::available_parallelism().map_or(0, NonZeroUsize::get);
    for (what, result) in [
        ("sequential", sequential),
        ("pipelined (batches of 64)", pipelined),
    ] {
        outcome.row(
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
    outcome
}

/// Client threads.
const CLIENTS: usize = 2;
/// Interleaved rounds of each shard count.
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

/// The rates of one way of sending (sequential or pipelined).
struct ShardsResult {
    /// Acquires per second with 1 shard.
    one: f64,
    /// Acquires per second with 2 shards.
    two: f64,
    /// Median over rounds of the rate with 2 shards over the rate with 1, back to back.
    ratio: f64,
}

/// The sequential and the pipelined rates with 1 and with 2 shards, over the same live
/// keys.
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
