//! The single bucket as an actix actor: its messages, the actor that answers them, a handle
//! for code that is not an actor, and paced streams.

mod bucket;
mod handle;
mod messages;
mod throttle;

pub use bucket::BucketActor;
pub use handle::BucketHandle;
pub use messages::{Acquire, CapacityInfo, Granted, Reconcile, Reconfigure, Shutdown, Stats};
pub use throttle::Throttled;
