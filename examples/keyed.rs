//! Per-user limits in a small actix program: an API front actor handles requests from
//! three users, each limited to 4 requests per second with a burst of 2, by one
//! `KeyedBucketActor`. A heavy user waits for their own bucket; the others never wait
//! for theirs. Once everyone's bucket has leaked to zero, no user is held in memory.
//!
//! Run with `cargo run --example keyed`.

use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, Message, ResponseFuture};
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketConfig, Keyed, KeyedBucketActor, KeyedStats, Shutdown,
};
use actix_rt::time::{sleep, Instant};

/// Serves API requests, each first acquiring one unit from its user's bucket.
struct Api {
    limits: Addr<KeyedBucketActor<String>>,
    start: Instant,
}

impl Actor for Api {
    type Context = Context<Self>;
}

/// A request from `user`.
struct Request {
    user: &'static str,
    n: u32,
}

impl Message for Request {
    type Result = Result<(), AcquireError>;
}

impl Handler<Request> for Api {
    type Result = ResponseFuture<Result<(), AcquireError>>;

    fn handle(&mut self, Request { user, n }: Request, _: &mut Context<Self>) -> Self::Result {
        let (limits, start) = (self.limits.clone(), self.start);
        Box::pin(async move {
            // Wait at most 2 s for this user's bucket; a mailbox error means it is gone.
            let acquire = Acquire::new(1.0).with_timeout(Duration::from_secs(2));
            let granted = limits.send(Keyed::new(user.to_string(), acquire)).await??;
            println!(
                "[{:>7.4}s] {user:<6} request {n} served (waited {:?})",
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

    let per_user = BucketConfig::from_rate(4.0, 2.0).expect("a valid config");
    let limits = KeyedBucketActor::<String>::new(per_user)
        .max_queue(10)
        .start();
    let start = Instant::now();
    let api = Api {
        limits: limits.clone(),
        start,
    }
    .start();
    println!("each user: 4 requests per second, a burst of 2\n");

    // Mallory sends 6 requests at once, Alice and Bob 2 each.
    let mut requests = Vec::new();
    for (user, count) in [("mallory", 6), ("alice", 2), ("bob", 2)] {
        for n in 1..=count {
            requests.push(api.send(Request { user, n }));
        }
    }
    for request in requests {
        request.await.expect("api running").expect("served");
    }

    let stats = limits.send(KeyedStats).await.expect("limits running");
    println!(
        "\n[{:>7.4}s] users held: {} (granted {})",
        start.elapsed().as_secs_f64(),
        stats.keys,
        stats.totals.granted
    );
    sleep(Duration::from_millis(600)).await;
    let stats = limits.send(KeyedStats).await.expect("limits running");
    println!(
        "[{:>7.4}s] every bucket has leaked to zero: users held {}, dropped {}",
        start.elapsed().as_secs_f64(),
        stats.keys,
        stats.evicted
    );
    limits
        .send(Shutdown::graceful())
        .await
        .expect("limits running");
}
