//! An exact, fair, asynchronous leaky-bucket rate limiter that runs as an [actix] actor.
//!
//! A bucket holds up to a capacity `C` and leaks `C` per period `P`. A request for an
//! amount is granted as soon as it fits, strictly in the order requests arrive; so a
//! burst of `C` is granted at once, and after it grants follow the leak exactly. In every
//! window of length `t`, the bucket grants at most `C + C/P × t`.
//!
//! - **Exact.** Grant instants are computed to the nanosecond and kept without drift; the
//!   bucket wakes within microseconds of them (on Linux) without spinning, and is woken by
//!   nothing while nobody waits.
//! - **Fair.** Strict first come, first served: a small request never overtakes a large
//!   one ahead of it.
//! - **Honest answers.** A timeout that cannot be met is refused at once with the wait it
//!   would have had ([`AcquireError::retry_after`]); a caller who gives up costs nothing;
//!   a full queue answers instead of blocking; bad input is an error, never a panic.
//! - **Per key.** [`KeyedBucketActor`] keeps one bucket per user, tenant or address under
//!   one timer, and holds only the keys whose buckets are in use.
//! - **Shared by many processes.** With the cargo feature `redis`, `RedisBucketActor`
//!   keeps one budget for every process that uses the same name on a Redis server or
//!   cluster, and says what it does while Redis is away (`OnOutage`).
//! - **In actix-web.** With the cargo feature `web`, `RateLimit` holds or refuses requests
//!   per client, with honest `Retry-After` and IETF `RateLimit` fields.
//!
//! # From any async runtime
//!
//! [`BucketHandle::spawn`] runs a bucket on a thread of its own:
//!
//! ```
//! use std::time::Duration;
//! use actix_leaky_bucket::{BucketConfig, BucketHandle};
//!
//! #[tokio::main]
//! async fn main() {
//!     // 5 requests per second, with a burst of 5.
//!     let bucket = BucketHandle::spawn(BucketConfig::from_rate(5.0, 5.0).unwrap());
//!     for _ in 0..6 {
//!         bucket.acquire(1.0).await.unwrap(); // the sixth waits about 200 ms
//!     }
//! }
//! ```
//!
//! # In an actix system
//!
//! [`BucketActor`] is an actor like any other: start it (under a `Supervisor` if you
//! like), share its address, and send it [`Acquire`] from actors and tasks.
//!
//! ```
//! use std::time::Duration;
//! use actix::Actor;
//! use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, BucketConfig, Shutdown};
//!
//! #[actix_rt::main]
//! async fn main() {
//!     let config = BucketConfig::new(10.0, Duration::from_secs(1)).unwrap();
//!     let bucket = BucketActor::new(config).max_queue(100).start();
//!
//!     let granted = bucket.send(Acquire { amount: 4.0, timeout: None }).await.unwrap().unwrap();
//!     assert_eq!(granted.waited, Duration::ZERO);
//!
//!     // 6 are left and 8 do not fit; within 50 ms they cannot leak either.
//!     let hasty = Acquire::new(8.0).with_timeout(Duration::from_millis(50));
//!     match bucket.send(hasty).await.unwrap() {
//!         Err(AcquireError::Timeout { retry_after, .. }) => {
//!             assert!(retry_after > Duration::from_millis(150));
//!         }
//!         other => panic!("{other:?}"),
//!     }
//!     bucket.send(Shutdown::graceful()).await.unwrap();
//! }
//! ```
//!
//! # Per key
//!
//! ```
//! use std::time::Duration;
//! use actix_leaky_bucket::{BucketConfig, KeyedBucketHandle};
//!
//! #[tokio::main]
//! async fn main() {
//!     let per_user = KeyedBucketHandle::<String>::spawn(BucketConfig::from_rate(2.0, 1.0).unwrap());
//!     per_user.acquire("alice", 1.0).await.unwrap();
//!     per_user.acquire("bob", 1.0).await.unwrap(); // Bob does not wait for Alice
//!     assert!(per_user.try_acquire("alice", 1.0).await.is_err()); // Alice waits 500 ms
//! }
//! ```
//!
//! # The API
//!
//! | item | what it is |
//! |---|---|
//! | [`BucketConfig`] | capacity per period ([`new`](BucketConfig::new)), or rate and burst ([`from_rate`](BucketConfig::from_rate)) |
//! | [`BucketActor`] | the bucket, an actor ([`max_queue`](BucketActor::max_queue), [`precise_timing`](BucketActor::precise_timing)) |
//! | [`Acquire`] → [`Granted`] | wait in FIFO order until an amount is granted, with an optional timeout |
//! | [`CapacityInfo`] → [`Capacity`] | the level, the queue, and the wait a request would have now |
//! | [`Reconcile`], [`Reconfigure`] | settle a cost known only afterwards; change capacity and rate |
//! | [`Stats`] → [`BucketStats`] | what the bucket has done |
//! | [`Shutdown`] | stop, gracefully or at once |
//! | [`AcquireError`], [`ConfigError`] | why not, and what to do |
//! | [`BucketHandle`], [`Throttled`] | the bucket from plain async code: methods, `metered` calls, paced streams |
//! | [`KeyedBucketActor`], [`Keyed`], [`KeyedStats`], [`KeyedBucketHandle`] | one bucket per key |
//! | `RedisBucketActor`, `OnOutage`, `ConnectError` (feature `redis`) | one bucket shared by many processes through Redis |
//! | `RateLimit`, `PeerIp`, `ClientIp`, `HeaderKey`, `GlobalKey`, `RequestKey` (feature `web`) | an actix-web middleware, and the keys it counts requests by |
//!
//! The [`guide`] says what every answer means, how the timing works, how to test code that
//! uses a bucket on paused time ([`TIMER_TICK`]), and how this design compares with the
//! queue-based limiter it started from.
//!
//! [actix]: https://docs.rs/actix

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
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
pub mod guide;
mod keyed;
#[cfg(feature = "redis")]
mod redis;
mod shell;
mod wake;
#[cfg(feature = "web")]
mod web;

pub use crate::actor::{
    Acquire, BucketActor, BucketHandle, CapacityInfo, Granted, Reconcile, Reconfigure, Shutdown,
    Stats, Throttled,
};
pub use crate::config::BucketConfig;
pub use crate::core::{BucketStats, Capacity};
pub use crate::error::{AcquireError, ConfigError};
pub use crate::keyed::{Keyed, KeyedBucketActor, KeyedBucketHandle, KeyedBucketStats, KeyedStats};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::redis::{ConnectError, OnOutage, RedisBucketActor, Share};
pub use crate::wake::TIMER_TICK;
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub use crate::web::{
    ClientIp, GlobalKey, HeaderKey, KeyConfigError, PeerIp, RateLimit, RateLimitMiddleware,
    RequestKey,
};

/// The examples of the repository's README, run as doctests (in real time), with every
/// feature, as the README's test command runs them: they need `redis` and `web`.
#[cfg(all(doctest, feature = "redis", feature = "web"))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
