//! The limiter itself: the arithmetic of a bucket on a plain time value, the queue of
//! callers who wait, and the policy that decides whom to answer what and when to wake,
//! for one bucket or for any number of them under one timer.
//!
//! It knows nothing of how requests arrive, how answers travel or what keeps time: a
//! front end hands it each request with the time, tells it how to answer a caller and
//! how late its timer may be ([`Rules`]), and carries out what it decides. Everything
//! here is synchronous and deterministic, so it is tested on exact instants with no
//! runtime (`tests/`).
//!
//! - `time.rs`, `wide.rs`, `bucket.rs`: the time value, and the arithmetic of a level;
//! - `queue.rs`, `blocks.rs`: the waiters in order, with their deadlines;
//! - `lane.rs`: the policy of one bucket; `reserved.rs`: the policy of one bucket whose
//!   level lives in a store shared with other processes; `keyed.rs` and `schedule.rs`: one
//!   lane per key under one timer, with exact eviction; `lanes.rs`: what a front end
//!   drives;
//! - `lifecycle.rs`: open, draining after a graceful shutdown, closed; it is the core's
//!   because every front end drains the same way;
//! - `stats.rs`: what a bucket did;
//! - the seam: `front_end.rs` (what comes in: how to answer, the rules, the time) and
//!   `answer.rs` (what goes out: grants, refusals, reports).

// The reserved lanes (and the parts of the queue and the arithmetic they use) serve the
// shared bucket of the `redis` feature. Without it they are built and tested all the same,
// unused.
#![cfg_attr(not(feature = "redis"), allow(dead_code, unused_imports))]

mod answer;
mod blocks;
mod bucket;
mod front_end;
mod keyed;
mod lane;
mod lanes;
mod lifecycle;
mod queue;
mod reserved;
mod schedule;
mod stats;
#[cfg(test)]
mod tests;
mod time;
mod wide;

pub use answer::Capacity;
pub(crate) use answer::{Admission, Grant, Refusal, Ticket};
pub(crate) use bucket::{Bucket, Limits};
pub(crate) use front_end::{Env, Outage, Replies, Rules};
pub(crate) use keyed::KeyedLanes;
pub(crate) use lane::Lane;
pub(crate) use lanes::{KeyedLane, Lanes, OwnLevels};
pub(crate) use lifecycle::{Lifecycle, ShutdownStep};
pub(crate) use queue::Departures;
pub(crate) use reserved::{check_costs, GiveBack, Request, Reservation, ReservedLane};
pub(crate) use schedule::{Schedule, Window};
pub use stats::BucketStats;
pub(crate) use stats::Event;
pub(crate) use time::Time;
pub(crate) use wide::Wide;
