//! `throughput`: acquires per second from one process with 64 in flight, through the
//! shared bucket, which sends the requests that arrive together in one script call,
//! against the same script called once per acquire with 64 in flight over one
//! multiplexed connection. Rounds take turns; medians of the ratio.

use std::time::Instant;

use actix::System;
use actix_leaky_bucket::{Acquire, OnOutage};
use futures::future::join_all;
use redis::aio::ConnectionManager;

use super::{server, start, unconstrained};
use crate::rounds::{median, turn};
use crate::table::{verdict, Outcome};

const ROUNDS: usize = 7;
const IN_FLIGHT: usize = 64;
const ACQUIRES: usize = 32_000;

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    let Some(server) = server() else {
        return outcome;
    };
    eprintln!("shared throughput...");
    let (batched, single, ratio) = System::new().block_on(async {
        let bucket = start(&server, "batched", unconstrained(), OnOutage::FailClosed).await;
        let client = redis::Client::open(server.url()).unwrap();
        let connection = ConnectionManager::new(client).await.unwrap();
        // The same script, one call per acquire: what a limiter without batching pays.
        let script = redis::Script::new(include_str!("../../../src/redis/gcra.lua"));
        let (mut batched, mut single, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let mut rates = [0.0; 2];
            for k in 0..2 {
                let which = turn(round, k, 2);
                let started = Instant::now();
                for _ in 0..ACQUIRES / IN_FLIGHT {
                    if which == 0 {
                        let sends = (0..IN_FLIGHT).map(|_| bucket.send(Acquire::new(1.0)));
                        for granted in join_all(sends).await {
                            granted.unwrap().unwrap();
                        }
                    } else {
                        let calls = (0..IN_FLIGHT).map(|_| {
                            let (script, mut connection) = (&script, connection.clone());
                            async move {
                                let answer: Vec<i64> = script
                                    .key("{single}")
                                    .arg("reserve")
                                    .arg(0.001)
                                    .arg(1_000_000)
                                    .arg(1.0)
                                    .arg(-1)
                                    .invoke_async(&mut connection)
                                    .await
                                    .unwrap();
                                answer
                            }
                        });
                        join_all(calls).await;
                    }
                }
                rates[which] = ACQUIRES as f64 / started.elapsed().as_secs_f64();
            }
            batched.push(rates[0]);
            single.push(rates[1]);
            ratios.push(rates[0] / rates[1]);
        }
        (median(batched), median(single), median(ratios))
    });
    outcome.row(
        "Shared bucket, acquires from one process, 64 in flight",
        format!("{:.0} k/s", batched / 1e3),
        format!(
            "the same script, one call per acquire: {:.0} k/s",
            single / 1e3
        ),
        format!("{ratio:.2}"),
        ">= 3",
        verdict(ratio >= 3.0),
    );
    outcome
}
