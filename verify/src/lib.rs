//! What the verification of `actix-leaky-bucket` needs beyond the library's public API: for
//! the model-based test (`tests/actor_follows_reference_model.rs`), a crash to restart a
//! supervised bucket with, the paused clock's tick, and a way to let every ready task run
//! without moving it; for the tests and benchmarks of the shared bucket, a real
//! `redis-server` of their own ([`redis_server`]).

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod redis_server;

use std::time::Duration;

use actix::{ActorContext, Context, Handler, Message};
use actix_leaky_bucket::BucketActor;

/// Tokio's timer resolution. The paused clock moves in whole ticks from the test's start.
pub const TICK: Duration = actix_leaky_bucket::TIMER_TICK;

/// Stops the bucket's context as a crash would, so that a test can show that a supervised
/// bucket keeps its level and queue across a restart.
#[derive(Debug, Clone, Copy)]
pub struct Crash;

impl Message for Crash {
    type Result = ();
}

impl Handler<Crash> for BucketActor {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Lets every task that can run, run, without moving the paused clock.
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}
