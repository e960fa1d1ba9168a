//! A small actix-web service limited per client: `/held` holds a request up to a second
//! for its turn, `/now` refuses at once what does not fit. Each route has its own limit
//! of 10 requests per second per client, with a burst of 10.
//!
//! ```sh
//! cargo run --example web --features web
//! curl -i http://127.0.0.1:8080/now
//! ```
//!
//! Options, for the load script (`scripts/web-load.sh`): `--port N` (0 picks a free one, and
//! the line `listening on ...` says which), `--rate R` and `--burst B` for both routes, and
//! `--behind-proxy`, which trusts loopback as a proxy and counts each client by its
//! `X-Forwarded-For` address instead of by the peer.

use std::time::Duration;

use actix::Actor;
use actix_leaky_bucket::{BucketConfig, ClientIp, KeyedBucketActor, PeerIp, RateLimit};
use actix_web::{web, App, HttpServer};

struct Options {
    port: u16,
    rate: f64,
    burst: f64,
    behind_proxy: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 8080,
        rate: 10.0,
        burst: 10.0,
        behind_proxy: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                options.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--rate" => {
                options.rate = value("--rate")?
                    .parse()
                    .map_err(|e| format!("--rate: {e}"))?
            }
            "--burst" => {
                options.burst = value("--burst")?
                    .parse()
                    .map_err(|e| format!("--burst: {e}"))?
            }
            "--behind-proxy" => options.behind_proxy = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let options = options()?;
    let config = BucketConfig::from_rate(options.rate, options.burst)?;

    // The limiters start once, here, and every worker shares them. Started inside the
    // factory below, each worker would have its own, and grant the whole limit.
    let held = KeyedBucketActor::<String>::new(config).start();
    let now = KeyedBucketActor::<String>::new(config).start();
    let limit = |limiter: actix::Addr<KeyedBucketActor<String>>| {
        let limit = RateLimit::new(limiter.recipient());
        if options.behind_proxy {
            let client = ClientIp::x_forwarded_for(["127.0.0.1", "::1"])?;
            Ok::<_, actix_leaky_bucket::KeyConfigError>(limit.key(client))
        } else {
            Ok(limit.key(PeerIp::new()))
        }
    };
    let hold = limit(held)?.max_wait(Duration::from_secs(1));
    let refuse = limit(now)?;

    let server = HttpServer::new(move || {
        App::new()
            .service(
                web::resource("/held")
                    .wrap(hold.clone())
                    .to(|| async { "served in turn\n" }),
            )
            .service(
                web::resource("/now")
                    .wrap(refuse.clone())
                    .to(|| async { "served at once\n" }),
            )
    })
    // A held request whose client hangs up gives up its place only if the server drops
    // it at the client's end of stream.
    .h1_allow_half_closed(false)
    .bind(("127.0.0.1", options.port))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    server.run().await?;
    Ok(())
}
