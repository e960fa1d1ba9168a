//! The limiter itself, with no actix and no tokio: the arithmetic of a bucket on a plain
//! time value, the queue of callers who wait, and the policy that decides whom to answer
//! what and when to wake, for one bucket or for any number of them under one timer. The
//! front ends (the actors) are shells around it: messages come in, the core decides,
//! replies go out.

mod blocks;
pub(crate) mod bucket;
mod keyed;
mod lane;
mod lanes;
mod lifecycle;
mod queue;
mod schedule;
mod stats;
#[cfg(test)]
mod tests;
mod time;
mod wide;

pub(crate) use bucket::{Bucket, Limits};
pub(crate) use keyed::KeyedLanes;
pub use lane::Capacity;
pub(crate) use lane::{Admission, Env, Grant, Lane, Replies, Rules, Ticket};
pub(crate) use lanes::Lanes;
pub(crate) use lifecycle::{Lifecycle, ShutdownStep};
pub(crate) use queue::Departures;
pub(crate) use schedule::{Schedule, Wake};
pub use stats::BucketStats;
pub(crate) use stats::Event;
pub(crate) use time::Time;
pub use time::TIMER_TICK;
pub(crate) use wide::Wide;
