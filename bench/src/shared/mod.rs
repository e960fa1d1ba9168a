//! The sections of the shared bucket's bench (`cargo bench --bench shared`), against a
//! `redis-server` that the bench starts on a loopback port of its own: one module each.

use std::time::Duration;

use actix::{Actor, Addr};
use actix_leaky_bucket::{BucketConfig, OnOutage, RedisBucketActor};
use actix_leaky_bucket_verify::redis_server::RedisServer;

pub mod latency;
pub mod outage;
pub mod throughput;

/// Starts a server, or says why not.
fn server() -> Option<RedisServer> {
    let server = RedisServer::start();
    if server.is_none() {
        eprintln!("no redis-server here: the shared bucket's sections have nothing to measure");
    }
    server
}

/// A shared bucket that never makes anyone wait: 1e9 per second with a burst of 1e9.
fn unconstrained() -> BucketConfig {
    BucketConfig::from_rate(1e9, 1e9).expect("a valid config")
}

/// A shared bucket named `name` on `server`, with `on_outage`.
async fn start(
    server: &RedisServer,
    name: &str,
    config: BucketConfig,
    on_outage: OnOutage,
) -> Addr<RedisBucketActor> {
    RedisBucketActor::connect(&server.url(), name, config)
        .await
        .expect("connects")
        .on_outage(on_outage)
        .start()
}

/// Microseconds, as the table prints them.
fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}
