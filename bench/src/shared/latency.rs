//! `latency`: one `Acquire` at a time on a shared bucket that never makes anyone wait,
//! against the floor of any bucket that keeps its level in Redis: a plain `GET` round trip
//! to the same server over the same kind of connection. Rounds take turns; medians.

use std::time::{Duration, Instant};

use actix::System;
use actix_leaky_bucket::{Acquire, OnOutage};
use redis::aio::ConnectionManager;

use super::{micros, server, start, unconstrained};
use crate::rounds::{median, turn};
use crate::table::{verdict, Outcome};

const ROUNDS: usize = 9;
const CALLS: u32 = 2_000;

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    let Some(server) = server() else {
        return outcome;
    };
    eprintln!("shared latency...");
    let (acquire, get, ratios) = System::new().block_on(async {
        let bucket = start(&server, "latency", unconstrained(), OnOutage::FailClosed).await;
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = ConnectionManager::new(client).await.unwrap();
        let (mut acquires, mut gets, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let mut times = [Duration::ZERO; 2];
            for k in 0..2 {
                let which = turn(round, k, 2);
                let started = Instant::now();
                for _ in 0..CALLS {
                    if which == 0 {
                        bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
                    } else {
                        let _: Option<String> = redis::cmd("GET")
                            .arg("{latency}:floor")
                            .query_async(&mut connection)
                            .await
                            .unwrap();
                    }
                }
                times[which] = started.elapsed() / CALLS;
            }
            acquires.push(times[0].as_secs_f64());
            gets.push(times[1].as_secs_f64());
            ratios.push(times[0].as_secs_f64() / times[1].as_secs_f64());
        }
        (median(acquires), median(gets), median(ratios))
    });
    outcome.row(
        "Shared bucket, one sequential `Acquire` round trip",
        micros(Duration::from_secs_f64(acquire)),
        format!(
            "a `GET` round trip to the same server: {}",
            micros(Duration::from_secs_f64(get))
        ),
        format!("{ratios:.2}"),
        "<= 1.5",
        verdict(ratios <= 1.5),
    );
    outcome
}
