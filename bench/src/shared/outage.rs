//! `outage`: how long a request waits for its answer while Redis is away, under each
//! outage rule: the server killed (connections refused) and frozen (SIGSTOP: it answers
//! nothing). The first request after the server went away is the slowest (it learns of the
//! outage by its call's failure); the rest are answered by the rule at once.

use std::time::{Duration, Instant};

use actix::System;
use actix_leaky_bucket::{Acquire, BucketConfig, OnOutage};

use super::{micros, server, start};
use crate::table::{verdict, Outcome};

const REQUESTS: usize = 200;

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    let Some(mut server) = server() else {
        return outcome;
    };
    eprintln!("shared outage...");
    for (rule, name) in [
        (OnOutage::FailClosed, "fail closed"),
        (OnOutage::FailOpen, "fail open"),
        (
            OnOutage::local(0.5).expect("a valid share"),
            "local, half the rate",
        ),
    ] {
        for how in ["killed", "frozen"] {
            let (first, rest) = System::new().block_on(async {
                let config = BucketConfig::from_rate(1e6, 1e6).expect("a valid config");
                let bucket = start(&server, name, config, rule).await;
                bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
                if how == "killed" {
                    server.kill();
                } else {
                    server.freeze();
                }
                let mut times = Vec::with_capacity(REQUESTS);
                for _ in 0..REQUESTS {
                    let sent = Instant::now();
                    let _ = bucket.send(Acquire::new(1.0)).await.unwrap();
                    times.push(sent.elapsed());
                }
                if how == "killed" {
                    server.restart();
                } else {
                    server.thaw();
                }
                let first = times[0];
                let rest = times[1..].iter().max().copied().unwrap_or_default();
                (first, rest)
            });
            outcome.row(
                &format!(
                    "Shared bucket, server {how}, {name}: the first answer / the slowest after it"
                ),
                format!("{} / {}", micros(first), micros(rest)),
                "the bound on any answer during an outage: 200 ms".to_owned(),
                format!("{:.2}", first.max(rest).as_secs_f64() / 0.2),
                "<= 1",
                verdict(first.max(rest) <= Duration::from_millis(200)),
            );
        }
    }
    outcome
}
