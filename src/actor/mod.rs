//! The single bucket as an actix actor: its messages, the actor that answers them, and a
//! handle for code that is not an actor.

mod bucket;
mod departures;
mod handle;
mod messages;
mod reply;
mod shell;
mod standalone;
mod throttle;

pub use bucket::BucketActor;
pub use handle::BucketHandle;
pub use messages::{Acquire, CapacityInfo, Granted, Reconcile, Reconfigure, Shutdown, Stats};
pub(crate) use reply::{AcquireResult, Reply, Waiting};
pub(crate) use shell::{Shell, Shelled};
pub(crate) use standalone::spawn as spawn_standalone;
pub use throttle::Throttled;
