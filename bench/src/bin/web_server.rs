//! The service the web bench loads (`scripts/web-bench.sh`), behind one of three limiters,
//! each per peer address: `ours` (`RateLimit` over a `KeyedBucketActor`, as a user would set
//! it up, fields on), `governor` (actix-governor 0.10, its defaults), or `none`.
//!
//! `/limited` allows `--rate` per second with a burst of `--burst`, refusing at once what
//! does not fit; `/open` has a limit it never reaches.
//!
//! `web_server --limiter ours|governor|none [--port N] [--rate R] [--burst B]`: prints
//! `listening on http://...` once it listens.

use actix::Actor;
use actix_governor::{Governor, GovernorConfigBuilder};
use actix_leaky_bucket::{BucketConfig, KeyedBucketActor, PeerIp, RateLimit};
use actix_web::{web, App, HttpServer};

async fn hello() -> &'static str {
    "hello\n"
}

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut limiter = String::from("ours");
    let (mut port, mut rate, mut burst) = (0u16, 100u64, 100u32);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--limiter" => limiter = value,
            "--port" => port = value.parse()?,
            "--rate" => rate = value.parse()?,
            "--burst" => burst = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    // Each limiter makes a server of its own type: bound, announced and run in its arm.
    macro_rules! serve {
        ($server:expr) => {{
            let server = $server.bind(("127.0.0.1", port))?;
            for addr in server.addrs() {
                println!("listening on http://{addr}");
            }
            server.run().await?;
        }};
    }
    match limiter.as_str() {
        "ours" => {
            let ours = |config: BucketConfig| {
                let buckets = KeyedBucketActor::<String>::new(config).start();
                RateLimit::new(buckets.recipient()).key(PeerIp::new())
            };
            let limited = ours(BucketConfig::from_rate(rate as f64, f64::from(burst))?);
            let open = ours(BucketConfig::from_rate(1e12, 1e12)?);
            serve!(HttpServer::new(move || {
                App::new()
                    .service(web::resource("/limited").wrap(limited.clone()).to(hello))
                    .service(web::resource("/open").wrap(open.clone()).to(hello))
            }))
        }
        "governor" => {
            let limited = GovernorConfigBuilder::default()
                .requests_per_second(rate)
                .burst_size(burst)
                .finish()
                .ok_or("a valid governor config")?;
            let open = GovernorConfigBuilder::default()
                .nanoseconds_per_request(1)
                .burst_size(u32::MAX)
                .finish()
                .ok_or("a valid governor config")?;
            serve!(HttpServer::new(move || {
                App::new()
                    .service(
                        web::resource("/limited")
                            .wrap(Governor::new(&limited))
                            .to(hello),
                    )
                    .service(web::resource("/open").wrap(Governor::new(&open)).to(hello))
            }))
        }
        "none" => serve!(HttpServer::new(|| {
            App::new()
                .route("/limited", web::get().to(hello))
                .route("/open", web::get().to(hello))
        })),
        other => return Err(format!("unknown limiter {other}").into()),
    }
    Ok(())
}
