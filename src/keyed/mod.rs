//! One bucket per key (per user, tenant, IP address) under one timer, holding only the
//! keys whose buckets are in use.

mod actor;
mod handle;
mod messages;

pub use actor::KeyedBucketActor;
pub use handle::KeyedBucketHandle;
pub use messages::{Keyed, KeyedBucketStats, KeyedStats};
