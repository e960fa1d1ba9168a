//! The actix-web middleware in a real `HttpServer` on a loopback port, called by a real
//! client (`awc`, or a raw TCP connection to hang up mid-wait): statuses, the rate-limit
//! fields and the problem body; held requests granted in order; a client that hangs up
//! while held, who delays nobody; `Retry-After` rounded up; every ready-made key, with the
//! trusted-proxy rule; invalid costs; the switches; and the middleware over a bucket shared
//! through Redis.
//!
//! These run in real time, so they assert bounds, not speeds.
#![cfg(feature = "web")]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use actix_leaky_bucket::{
    AcquireError, BucketConfig, ClientIp, GlobalKey, HeaderKey, KeyedBucketActor, KeyedStats,
    PeerIp, RateLimit,
};
use actix_web::dev::{ServerHandle, ServiceRequest};
use actix_web::http::header::HeaderName;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(capacity: f64, period: Duration) -> BucketConfig {
    BucketConfig::new(capacity, period).unwrap()
}

type Limiter = Addr<KeyedBucketActor<String>>;

fn limiter(config: BucketConfig) -> Limiter {
    KeyedBucketActor::<String>::new(config).start()
}

/// A service whose every route answers `200 ok`, behind `limit`, and records the query
/// string of each request its handler ran for.
struct Service {
    addr: SocketAddr,
    server: ServerHandle,
    handled: Arc<Mutex<Vec<String>>>,
}

impl Service {
    fn start(limit: RateLimit) -> Self {
        let handled = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&handled);
        let server = HttpServer::new(move || {
            let record = Arc::clone(&record);
            App::new()
                .wrap(limit.clone())
                .default_service(web::to(move |request: HttpRequest| {
                    let record = Arc::clone(&record);
                    async move {
                        record
                            .lock()
                            .unwrap()
                            .push(request.query_string().to_owned());
                        HttpResponse::Ok().body("ok")
                    }
                }))
        })
        .workers(2)
        .h1_allow_half_closed(false)
        .bind(("127.0.0.1", 0))
        .expect("a loopback port");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            addr,
            server: handle,
            handled,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    fn problem(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = awc::Client::default().get(url);
    for &(name, value) in headers {
        request = request.insert_header((name, value));
    }
    let mut response = request.send().await.expect("an answer");
    let body = response.body().await.expect("a body");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// Waits until the limiter has granted `granted` requests and `queued` wait in its queues.
async fn until_seen(limiter: &Limiter, granted: u64, queued: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let totals = limiter.send(KeyedStats).await.unwrap().totals;
        if (totals.granted, totals.queue_len) == (granted, queued) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {granted} granted and {queued} queued"
        );
        actix_rt::time::sleep(ms(1)).await;
    }
}

#[actix_rt::test]
async fn allowed_and_refused_responses_carry_the_policy_what_is_left_and_when() {
    // 3 per 30 s: what leaks during the test never reaches a whole unit.
    let limiter = limiter(config(3.0, Duration::from_secs(30)));
    let service = Service::start(RateLimit::new(limiter.recipient()));
    let mut fields = Vec::new();
    for _ in 0..3 {
        let answer = get(&service.url("/"), &[]).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "ok")
        );
        assert_eq!(
            answer.header("ratelimit-policy"),
            Some(r#""default";q=3;w=30"#)
        );
        assert_eq!(answer.header("retry-after"), None);
        fields.push(answer.header("ratelimit").unwrap().to_owned());
    }
    // What is left, and the seconds until the whole quota fits again (10 s a unit).
    let expected = [
        r#""default";r=2;t=10"#,
        r#""default";r=1;t=20"#,
        r#""default";r=0;t=30"#,
    ];
    assert_eq!(fields, expected);

    let refused = get(&service.url("/"), &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("10"));
    assert_eq!(refused.header("ratelimit"), Some(r#""default";r=0;t=10"#));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some(r#""default";q=3;w=30"#)
    );
    let problem = refused.problem();
    assert_eq!(
        problem["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["violated-policies"], serde_json::json!(["default"]));
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("this client's quota is used up: this request fits in 9."),
        "{detail}"
    );
    assert_eq!(service.handled().len(), 3, "the refused request never ran");
    service.stop().await;
}

#[actix_rt::test]
async fn held_requests_run_in_the_order_they_came_at_the_rate() {
    // One per 100 ms, held up to 2 s.
    let limiter = limiter(config(1.0, ms(100)));
    let limit = RateLimit::new(limiter.clone().recipient()).max_wait(Duration::from_secs(2));
    let service = Service::start(limit);
    let start = Instant::now();
    let mut requests = Vec::new();
    for n in 0..5 {
        let url = service.url(&format!("/?{n}"));
        requests.push(actix_rt::spawn(async move {
            let answer = get(&url, &[]).await;
            (answer.status, start.elapsed())
        }));
        // The first is granted at once; each other joins the queue before the next is sent.
        until_seen(&limiter, 1, n).await;
    }
    for (n, request) in requests.into_iter().enumerate() {
        let (status, at) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(at >= ms(100) * n as u32, "request {n} answered at {at:?}");
        assert!(
            at < ms(100) * n as u32 + ms(1000),
            "request {n} answered at {at:?}"
        );
    }
    assert_eq!(service.handled(), ["0", "1", "2", "3", "4"]);
    service.stop().await;
}

#[actix_rt::test]
async fn a_client_who_hangs_up_while_held_gives_up_its_place_and_costs_nothing() {
    // One per 300 ms, held up to 2 s.
    let limiter = limiter(config(1.0, ms(300)));
    let limit = RateLimit::new(limiter.clone().recipient()).max_wait(Duration::from_secs(2));
    let service = Service::start(limit);
    let start = Instant::now();
    assert_eq!(
        get(&service.url("/?first"), &[]).await.status,
        StatusCode::OK
    );

    // The second is held for the slot at 300 ms; its client hangs up.
    let mut leaving = std::net::TcpStream::connect(service.addr).unwrap();
    leaving
        .write_all(b"GET /?leaving HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    until_seen(&limiter, 1, 1).await;
    drop(leaving);
    actix_rt::time::sleep(ms(50)).await;

    // The third takes the slot the second gave up, not the one after it.
    let third = get(&service.url("/?third"), &[]).await;
    let at = start.elapsed();
    assert_eq!(third.status, StatusCode::OK);
    assert!(at >= ms(300) && at < ms(600), "the third ran at {at:?}");
    assert_eq!(service.handled(), ["first", "third"]);
    let stats = limiter.send(KeyedStats).await.unwrap();
    assert_eq!((stats.totals.cancelled, stats.totals.granted), (1, 2));
    service.stop().await;
}

#[actix_rt::test]
async fn a_request_that_cannot_be_held_long_enough_is_refused_at_once() {
    // One per 2.5 s, held up to 1 s: the second would wait 2.5 s.
    let limiter = limiter(config(1.0, ms(2500)));
    let limit = RateLimit::new(limiter.recipient()).max_wait(Duration::from_secs(1));
    let service = Service::start(limit);
    assert_eq!(get(&service.url("/"), &[]).await.status, StatusCode::OK);
    let start = Instant::now();
    let refused = get(&service.url("/"), &[]).await;
    assert!(
        start.elapsed() < ms(500),
        "refused after {:?}",
        start.elapsed()
    );
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // 2.5 s less the few milliseconds since, rounded up.
    assert_eq!(refused.header("retry-after"), Some("3"));
    assert_eq!(refused.header("ratelimit"), Some(r#""default";r=0;t=3"#));
    service.stop().await;
}

#[actix_rt::test]
async fn a_wait_under_a_second_is_sent_as_one_second_not_zero() {
    let limiter = limiter(config(1.0, ms(200)));
    let service = Service::start(RateLimit::new(limiter.recipient()));
    assert_eq!(get(&service.url("/"), &[]).await.status, StatusCode::OK);
    let refused = get(&service.url("/"), &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("ratelimit"), Some(r#""default";r=0;t=1"#));
    // A window is never under a second.
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some(r#""default";q=1;w=1"#)
    );
    service.stop().await;
}

/// Sends each request of `requests` (its headers) in turn; returns the statuses.
async fn statuses(service: &Service, requests: &[&[(&str, &str)]]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for headers in requests {
        statuses.push(get(&service.url("/"), headers).await.status.as_u16());
    }
    statuses
}

#[actix_rt::test]
async fn behind_a_trusted_proxy_the_client_is_the_first_untrusted_address_from_the_right() {
    // The client is 127.0.0.1's peer: trusted, a proxy. One request per client.
    let limiter = limiter(config(1.0, Duration::from_secs(60)));
    let key = ClientIp::x_forwarded_for(["127.0.0.1"]).unwrap();
    let service = Service::start(RateLimit::new(limiter.recipient()).key(key));
    let statuses = statuses(
        &service,
        &[
            &[("x-forwarded-for", "198.51.100.1, 192.0.2.7")],
            // The same client, behind a forged leftmost entry: refused.
            &[("x-forwarded-for", "203.0.113.9, 192.0.2.7")],
            // Another client.
            &[("x-forwarded-for", "192.0.2.8")],
            // No header: the proxy itself.
            &[],
        ],
    )
    .await;
    assert_eq!(statuses, [200, 429, 200, 200]);
    service.stop().await;
}

#[actix_rt::test]
async fn the_forwarded_header_of_an_untrusted_peer_is_ignored() {
    // Only 10.0.0.0/8 is trusted: the peer, 127.0.0.1, is the client, whatever it says.
    let limiter = limiter(config(1.0, Duration::from_secs(60)));
    let key = ClientIp::forwarded(["10.0.0.0/8"]).unwrap();
    let service = Service::start(RateLimit::new(limiter.recipient()).key(key));
    let statuses = statuses(
        &service,
        &[
            &[("forwarded", "for=192.0.2.7")],
            &[("forwarded", "for=192.0.2.8")],
        ],
    )
    .await;
    assert_eq!(statuses, [200, 429]);
    service.stop().await;
}

#[actix_rt::test]
async fn the_peer_a_header_and_one_global_key() {
    let peer = limiter(config(1.0, Duration::from_secs(60)));
    let service = Service::start(RateLimit::new(peer.recipient()).key(PeerIp::new()));
    assert_eq!(statuses(&service, &[&[], &[]]).await, [200, 429]);
    service.stop().await;

    let per_api_key = limiter(config(1.0, Duration::from_secs(60)));
    let key = HeaderKey::new(HeaderName::from_static("x-api-key"));
    let service = Service::start(RateLimit::new(per_api_key.recipient()).key(key));
    let statuses_by_key = statuses(
        &service,
        &[
            &[("x-api-key", "a")],
            &[("x-api-key", "b")],
            &[("x-api-key", "a")],
        ],
    )
    .await;
    assert_eq!(statuses_by_key, [200, 200, 429]);
    // Without the header there is no key: 400 by default, and a problem body.
    let missing = get(&service.url("/"), &[]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.problem()["status"], 400);
    service.stop().await;

    let global = limiter(config(1.0, Duration::from_secs(60)));
    let service = Service::start(RateLimit::new(global.recipient()).key(GlobalKey));
    let one_for_all = statuses(&service, &[&[("x-api-key", "a")], &[("x-api-key", "b")]]).await;
    assert_eq!(one_for_all, [200, 429]);
    service.stop().await;
}

#[actix_rt::test]
async fn an_invalid_cost_is_a_500_and_leaves_the_bucket_untouched() {
    let limiter = limiter(config(3.0, Duration::from_secs(60)));
    let cost = |request: &ServiceRequest| request.query_string().parse().unwrap_or(f64::NAN);
    let limit = RateLimit::new(limiter.clone().recipient()).cost(cost);
    let service = Service::start(limit);
    for invalid in ["/?nan", "/?-1", "/?4"] {
        let answer = get(&service.url(invalid), &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{invalid}"
        );
        let detail = answer.problem()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("invalid amount"), "{detail}");
    }
    assert!(service.handled().is_empty());
    assert_eq!(
        limiter.send(KeyedStats).await.unwrap().keys,
        0,
        "no trace of the key"
    );
    // The whole capacity is still there.
    let full = get(&service.url("/?3"), &[]).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.header("ratelimit"), Some(r#""default";r=0;t=60"#));
    service.stop().await;
}

#[actix_rt::test]
async fn the_fields_can_be_left_off_allowed_responses_and_the_responses_replaced() {
    let limiter = limiter(config(1.0, Duration::from_secs(60)));
    let limit = RateLimit::new(limiter.recipient())
        .key(HeaderKey::new(HeaderName::from_static("x-api-key")))
        .headers_when_allowed(false)
        .on_refused(|_, error: &AcquireError| {
            HttpResponse::ServiceUnavailable().body(format!("slow down: {:?}", error.retry_after()))
        })
        .on_missing_key(|_| HttpResponse::Unauthorized().body("an API key, please"));
    let service = Service::start(limit);
    let allowed = get(&service.url("/"), &[("x-api-key", "a")]).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.header("ratelimit"), None);
    assert_eq!(allowed.header("ratelimit-policy"), None);
    // A refusal still says when: the replaced response gets the fields.
    let refused = get(&service.url("/"), &[("x-api-key", "a")]).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.body.starts_with("slow down: Some("),
        "{}",
        refused.body
    );
    assert_eq!(refused.header("retry-after"), Some("60"));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some(r#""default";q=1;w=60"#)
    );
    let missing = get(&service.url("/"), &[]).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (StatusCode::UNAUTHORIZED, "an API key, please")
    );
    service.stop().await;
}

/// The middleware over a bucket shared through Redis.
#[cfg(feature = "redis")]
mod shared {
    use actix_leaky_bucket::{OnOutage, RedisBucketActor};
    use actix_leaky_bucket_verify::redis_server::RedisServer;

    use super::*;

    #[actix_rt::test]
    async fn over_redis_the_fields_are_the_shared_buckets_and_an_outage_is_a_503() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let bucket =
            RedisBucketActor::connect(&server.url(), "web", config(2.0, Duration::from_secs(60)))
                .await
                .expect("connects")
                .on_outage(OnOutage::FailClosed)
                .start();
        let service = Service::start(RateLimit::new(bucket.recipient()).key(GlobalKey));
        let first = get(&service.url("/"), &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{first:?}");
        assert_eq!(
            first.header("ratelimit-policy"),
            Some(r#""default";q=2;w=60"#)
        );
        assert_eq!(first.header("ratelimit"), Some(r#""default";r=1;t=30"#));
        assert_eq!(get(&service.url("/"), &[]).await.status, StatusCode::OK);
        let refused = get(&service.url("/"), &[]).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.header("retry-after"), Some("30"));

        server.kill();
        let unavailable = get(&service.url("/"), &[]).await;
        assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(unavailable.header("retry-after").is_some());
        assert_eq!(
            unavailable.problem()["type"],
            "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
        );
        service.stop().await;
    }
}
