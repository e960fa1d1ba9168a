//! `throughput`: `Acquire` round trips on an unconstrained bucket (capacity 1e12 per
//! second) per second, over a trivial actix actor's `send` round trips, measured
//! interleaved in the same run: sequential (one caller awaits each) and pipelined (batches
//! of 64). Beside them, the floor: what any exact bucket must pay on top of a trivial
//! round trip.

use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, Message, System};
use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, BucketConfig, Granted};

use crate::peers::{Echo, Ping};
use crate::rounds::{median, time_pipelined, time_sequential, turn};
use crate::table::{verdict, Outcome};

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    eprintln!("throughput...");
    let (sequential, pipelined) = throughput();
    for (what, result) in [
        ("Throughput, sequential", &sequential),
        ("Throughput, pipelined (batches of 64)", &pipelined),
    ] {
        outcome.row(
            what,
            format!("{:.0} k/s", result.bucket_per_s / 1e3),
            format!(
                "raw actix send: {:.0} k/s<br>floor (same message and answer sizes, one clock read): {:.0} k/s ({:.2} of raw)",
                result.raw_per_s / 1e3,
                result.floor_per_s / 1e3,
                result.floor_ratio
            ),
            format!("{:.2}", result.ratio),
            ">= 0.90",
            verdict(result.ratio >= 0.9),
        );
    }
    outcome
}

/// The rates of one way of sending (sequential or pipelined), medians over the rounds.
struct ThroughputResult {
    /// `Acquire` round trips per second.
    bucket_per_s: f64,
    /// Raw actix round trips per second.
    raw_per_s: f64,
    /// Round trips to the floor per second.
    floor_per_s: f64,
    /// Median over rounds of bucket rate / raw rate, measured back to back.
    ratio: f64,
    /// The floor's rate over the raw rate, likewise: the best any exact bucket can reach.
    floor_ratio: f64,
}

/// What any exact bucket must pay on top of a trivial round trip: a message of the size of
/// [`Acquire`], a handler that reads tokio's clock once (a bucket leaks up to the present
/// before it decides), and an answer of the size of the bucket's.
struct PingClock {
    /// Where [`Acquire`] has its amount.
    _amount: f64,
    /// Where [`Acquire`] has its timeout.
    _timeout: Option<Duration>,
}

/// The floor's answer, of the size of the bucket's.
type ClockAnswer = Result<[u64; 7], ()>;

const _: () = assert!(std::mem::size_of::<PingClock>() == std::mem::size_of::<Acquire>());
const _: () = assert!(
    std::mem::size_of::<ClockAnswer>() == std::mem::size_of::<Result<Granted, AcquireError>>()
);

impl Message for PingClock {
    type Result = ClockAnswer;
}

impl Handler<PingClock> for Echo {
    type Result = ClockAnswer;

    fn handle(&mut self, _: PingClock, _: &mut Context<Self>) -> ClockAnswer {
        std::hint::black_box(actix_rt::time::Instant::now());
        Ok([0; 7])
    }
}

/// Requests per batch when pipelined.
const BATCH: usize = 64;

/// One `Acquire` round trip to an unconstrained bucket.
async fn acquire_one(bucket: &Addr<BucketActor>) {
    bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
}

/// One round trip to the throughput floor.
async fn ping_clock(echo: &Addr<Echo>) {
    let ping = PingClock {
        _amount: 1.0,
        _timeout: None,
    };
    echo.send(ping).await.unwrap().unwrap();
}

/// A bucket that never makes anyone wait.
fn unconstrained_bucket() -> Addr<BucketActor> {
    BucketActor::new(BucketConfig::new(1e12, Duration::from_secs(1)).unwrap()).start()
}

/// The sequential and the pipelined rates: 9 rounds of 50k requests to each of the bucket,
/// raw actix and the floor after a warm-up, in an order that turns with each round.
fn throughput() -> (ThroughputResult, ThroughputResult) {
    const COUNT: usize = 50_000;
    const ROUNDS: usize = 9;
    System::new().block_on(async {
        let bucket = unconstrained_bucket();
        let echo = Echo.start();
        let acquire = || acquire_one(&bucket);
        let ping = || async { echo.send(Ping).await.unwrap() };
        let floor = || ping_clock(&echo);
        // Warm up.
        time_sequential(COUNT, acquire).await;
        time_sequential(COUNT, ping).await;
        time_sequential(COUNT, floor).await;
        let mut results = Vec::new();
        for pipelined in [false, true] {
            let mut times: [Vec<f64>; 3] = Default::default();
            let (mut ratios, mut floor_ratios) = (vec![], vec![]);
            for round in 0..ROUNDS {
                let mut time = [0.0; 3];
                for k in 0..3 {
                    let which = turn(round, k, 3);
                    time[which] = match (pipelined, which) {
                        (false, 0) => time_sequential(COUNT, acquire).await,
                        (false, 1) => time_sequential(COUNT, ping).await,
                        (false, _) => time_sequential(COUNT, floor).await,
                        (true, 0) => time_pipelined(COUNT, BATCH, acquire).await,
                        (true, 1) => time_pipelined(COUNT, BATCH, ping).await,
                        (true, _) => time_pipelined(COUNT, BATCH, floor).await,
                    };
                }
                ratios.push(time[1] / time[0]);
                floor_ratios.push(time[1] / time[2]);
                for k in 0..3 {
                    times[k].push(COUNT as f64 / time[k]);
                }
            }
            let [bucket, raw, clock] = times;
            results.push(ThroughputResult {
                bucket_per_s: median(bucket),
                raw_per_s: median(raw),
                floor_per_s: median(clock),
                ratio: median(ratios),
                floor_ratio: median(floor_ratios),
            });
        }
        let pipelined = results.pop().unwrap();
        let sequential = results.pop().unwrap();
        (sequential, pipelined)
    })
}

/// `count` pipelined requests through the bucket, or through the floor, and nothing else:
/// for a profiler. Nanoseconds per request.
pub(crate) fn pipelined(through_bucket: bool, count: usize) -> f64 {
    System::new().block_on(async move {
        let (bucket, echo) = (unconstrained_bucket(), Echo.start());
        let seconds = if through_bucket {
            time_pipelined(count, BATCH, || acquire_one(&bucket)).await
        } else {
            time_pipelined(count, BATCH, || ping_clock(&echo)).await
        };
        seconds * 1e9 / count as f64
    })
}
