#![doc = "actix-leaky-bucket (crate docs to come)"]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod actor;
mod config;
mod core;
mod error;
mod keyed;
mod wake;

pub use crate::actor::{
    Acquire, BucketActor, BucketHandle, CapacityInfo, Granted, Reconcile, Reconfigure, Shutdown,
    Stats, Throttled,
};
pub use crate::config::BucketConfig;
pub use crate::core::{BucketStats, Capacity, TIMER_TICK};
pub use crate::error::{AcquireError, ConfigError};
pub use crate::keyed::{Keyed, KeyedBucketActor, KeyedBucketHandle, KeyedBucketStats, KeyedStats};
