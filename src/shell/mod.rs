//! What every bucket actor is made of around its core: the state and the timer that answer
//! messages through the core's lanes (`actor.rs`), replies sent after a handler returns
//! (`reply.rs`), the watch on callers who give up (`departures.rs`), and an actor on a
//! thread of its own (`standalone.rs`). The front ends (`actor/`, `keyed/`) are this shell
//! with their messages and handles.

mod actor;
mod departures;
mod reply;
mod standalone;

pub(crate) use actor::{Shell, Shelled};
pub(crate) use reply::{AcquireResult, Reply, Waiting};
pub(crate) use standalone::spawn as spawn_standalone;
