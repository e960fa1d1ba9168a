//! One bucket shared by many processes, through Redis: the actor (`actor.rs`), the
//! arithmetic of the shared bucket as a Lua script (`gcra.lua`) and its Rust side
//! (`script.rs`), the connection (`store.rs`), what to do while Redis is away
//! (`outage.rs`), and why connecting failed (`error.rs`).

mod actor;
mod error;
mod outage;
mod script;
mod store;

pub use actor::RedisBucketActor;
pub use error::ConnectError;
pub use outage::{OnOutage, Share};
