//! `map`: no actor: what a cold entry costs by its size. A bare `HashMap<u64, [u64; W]>`
//! of 100k keys, cycled, each lookup followed by work that stands for the rest of an
//! actor's turn, for entries of 24 to 48 bytes, against one key.

use std::collections::HashMap;
use std::time::Instant;

use super::LIVE_KEYS;
use crate::rounds::median;
use crate::table::Outcome;

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    eprintln!("map...");
    let [one, e24, e32, e40, e48] = map_steps();
    outcome.row(
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
    outcome
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
