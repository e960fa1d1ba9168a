//! A bucket under `Supervisor`, shared by three worker actors that acquire from inside
//! their own handlers, then shut down gracefully.
//!
//! Run with `cargo run --example supervised`.

use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, Message, ResponseFuture, Supervisor, System};
use actix_leaky_bucket::{Acquire, AcquireError, BucketActor, BucketConfig, Shutdown};
use actix_rt::time::Instant;

/// Calls a rate-limited service: each job first acquires one unit from the shared bucket.
struct Worker {
    name: &'static str,
    bucket: Addr<BucketActor>,
    start: Instant,
}

impl Actor for Worker {
    type Context = Context<Self>;
}

struct Job(u32);

impl Message for Job {
    type Result = Result<(), AcquireError>;
}

impl Handler<Job> for Worker {
    type Result = ResponseFuture<Result<(), AcquireError>>;

    fn handle(&mut self, Job(n): Job, _: &mut Context<Self>) -> Self::Result {
        let (name, bucket, start) = (self.name, self.bucket.clone(), self.start);
        Box::pin(async move {
            // A mailbox error (the bucket's actor is gone) converts into `Stopped`.
            let granted = bucket
                .send(Acquire::new(1.0).with_timeout(Duration::from_secs(5)))
                .await??;
            println!(
                "[{:>7.4}s] {name} runs job {n} (waited {:?})",
                start.elapsed().as_secs_f64(),
                granted.waited
            );
            Ok(())
        })
    }
}

#[actix_rt::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let config = BucketConfig::new(2.0, Duration::from_millis(500)).expect("a valid config");
    let bucket = Supervisor::start(move |_| BucketActor::new(config));
    let start = Instant::now();
    println!("a supervised bucket of 2 per 500 ms, shared by three workers\n");

    let workers: Vec<_> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| {
            let bucket = bucket.clone();
            Worker {
                name,
                bucket,
                start,
            }
            .start()
        })
        .collect();
    let jobs: Vec<_> = (1..=3)
        .flat_map(|n| workers.iter().map(move |worker| worker.send(Job(n))))
        .collect();
    for job in jobs {
        job.await.expect("worker running").expect("job granted");
    }

    bucket
        .send(Shutdown::graceful())
        .await
        .expect("bucket running");
    println!(
        "\n[{:>7.4}s] bucket shut down",
        start.elapsed().as_secs_f64()
    );
    // The supervisor restarts a stopped actor while addresses exist, so the bucket stays
    // up, closed: it answers, and grants nothing.
    let late = workers[0].send(Job(4)).await.expect("worker running");
    println!(
        "[{:>7.4}s] a job after shutdown: {late:?}",
        start.elapsed().as_secs_f64()
    );
    System::current().stop();
}
