#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod actor;
mod blocks;
mod bucket;
mod config;
mod error;
mod handle;
mod messages;
mod pacer;
mod queue;
mod reply;
mod stats;
mod throttle;

pub use actor::BucketActor;
pub use bucket::LeakyBucket;
pub use config::BucketConfig;
pub use error::{AcquireError, ConfigError};
pub use handle::BucketHandle;
pub use messages::{
    Acquire, Capacity, CapacityInfo, Granted, Reconcile, Reconfigure, Shutdown, SimulateRestart,
    Stats,
};
pub use reply::Reply;
pub use stats::BucketStats;
pub use throttle::Throttled;
