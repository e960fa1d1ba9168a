//! The middleware: picks a request's key and cost, asks the limiter, and runs the request,
//! holds it, or answers for it.

use std::cell::Cell;
use std::future::{ready, Ready};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix::Recipient;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpResponse};
use futures::future::LocalBoxFuture;
use log::debug;

use super::fields::{self, Limit};
use super::{problem, PeerIp, RequestKey};
use crate::{Acquire, AcquireError, Granted, Keyed};

type CostFn = dyn Fn(&ServiceRequest) -> f64 + Send + Sync;
type MissingKeyFn = dyn Fn(&ServiceRequest) -> HttpResponse + Send + Sync;
type RefusedFn = dyn Fn(&ServiceRequest, &AcquireError) -> HttpResponse + Send + Sync;

/// An actix-web middleware that holds or refuses requests per client, with a leaky bucket
/// per key.
///
/// For each request it picks a key ([`key`](Self::key), the peer's address by default)
/// and a cost ([`cost`](Self::cost), 1 by default), and asks the limiter for the cost in
/// that key's bucket:
///
/// - **Allowed**: it fits now, and the request runs.
/// - **Held**: it fits within [`max_wait`](Self::max_wait); the request waits in its
///   key's queue, first come first served, then runs. A client that hangs up while it
///   waits gives up its place and costs nothing (with the server setting below).
/// - **Refused**: it does not fit within `max_wait` (zero by default), and is answered at
///   once, not after `max_wait`: `429 Too Many Requests`, with `Retry-After` and the
///   rate-limit fields, and a problem body of the type `quota-exceeded`.
///
/// Every allowed response carries the fields too ([`headers_when_allowed`] turns that
/// off): `RateLimit-Policy: "default";q=<quota>;w=<window>` and `RateLimit:
/// "default";r=<available>;t=<seconds>`, in the syntax of the IETF draft
/// draft-ietf-httpapi-ratelimit-headers-11. `q` is the capacity rounded down and `w` the
/// seconds the bucket takes to leak `q`, rounded up (at least 1), so that the policy never
/// promises more than the bucket grants; `r` is what fits now, rounded down; `t` the
/// seconds until the whole quota fits again, rounded up. On a refusal `r` is 0 and `t`
/// the seconds until the refused request would fit: the same instant as `Retry-After`,
/// which is whole seconds rounded up, never 0 for a wait above zero.
///
/// The other answers:
///
/// | the limiter says | the response |
/// |---|---|
/// | the cost is invalid (NaN, negative, above the capacity) | `500`, and the bucket is untouched |
/// | its store is away and the rule is to fail closed (a `RedisBucketActor`) | `503` with `Retry-After`, of the type `temporary-reduced-capacity` |
/// | it is shut down or stopped | `503` |
/// | the request has no key | [`on_missing_key`](Self::on_missing_key): `400` by default |
///
/// # The limiter
///
/// Anything that answers [`Keyed`]`<String, `[`Acquire`]`>`: a
/// [`KeyedBucketActor<String>`](crate::KeyedBucketActor), or a bucket shared by several
/// processes through Redis (feature `redis`). The middleware needs nothing else: each
/// grant carries the bucket's configuration and what remains. A refusal carries only its
/// wait, so its `RateLimit-Policy` is the configuration of the last grant the worker saw
/// (or, before any, another worker sharing this middleware's clones); before any at all,
/// it is left out.
///
/// Start the limiter **once**, before `HttpServer::new`, and move its address into the
/// factory: actix-web runs the factory once per worker, and a limiter started inside it
/// would be one limiter per worker, each granting the whole limit. Build the middleware
/// there too and clone it into each worker, so that every worker shares what it learns
/// of the limiter.
///
/// # Held requests and clients that leave
///
/// A held request gives up its place when its future is dropped. By default actix-web
/// keeps serving an HTTP/1 request after its client has closed the connection (it cannot
/// tell a client that closed from one that only closed its sending side); with
/// `HttpServer::h1_allow_half_closed(false)` it drops the request at the client's end of
/// stream. Set it on a server that holds requests, or a client that left keeps its place
/// (and its cost) until its turn.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_web::{web, App, HttpServer};
/// use actix_leaky_bucket::{BucketConfig, KeyedBucketActor, PeerIp, RateLimit};
///
/// #[actix_rt::main]
/// async fn main() -> std::io::Result<()> {
///     // 10 requests per second per client, with a burst of 20: started once.
///     let config = BucketConfig::from_rate(10.0, 20.0).unwrap();
///     let per_client = KeyedBucketActor::<String>::new(config).start();
///     let limit = RateLimit::new(per_client.recipient())
///         .key(PeerIp::new())
///         .max_wait(Duration::from_millis(500));
///
///     HttpServer::new(move || {
///         App::new()
///             .wrap(limit.clone())
///             .route("/", web::get().to(|| async { "hello" }))
///     })
///     .h1_allow_half_closed(false) // a held request whose client leaves gives up its place
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await
/// }
/// ```
///
/// [`headers_when_allowed`]: Self::headers_when_allowed
#[derive(Clone)]
pub struct RateLimit {
    settings: Arc<Settings>,
}

#[derive(Clone)]
struct Settings {
    limiter: Recipient<Keyed<String, Acquire>>,
    key: Arc<dyn RequestKey>,
    cost: Arc<CostFn>,
    max_wait: Duration,
    headers_when_allowed: bool,
    on_missing_key: Arc<MissingKeyFn>,
    on_refused: Option<Arc<RefusedFn>>,
    /// The limit the last grant carried, for the policy of refusals, as the workers learn
    /// it.
    last_limit: Arc<Mutex<Option<Limit>>>,
}

impl RateLimit {
    /// Limits requests with `limiter`, keyed by the peer's address, at a cost of 1, and
    /// refusing at once what does not fit now.
    pub fn new(limiter: Recipient<Keyed<String, Acquire>>) -> Self {
        Self {
            settings: Arc::new(Settings {
                limiter,
                key: Arc::new(PeerIp::new()),
                cost: Arc::new(|_| 1.0),
                max_wait: Duration::ZERO,
                headers_when_allowed: true,
                on_missing_key: Arc::new(missing_key),
                on_refused: None,
                last_limit: Arc::default(),
            }),
        }
    }

    fn settings(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    /// Picks each request's key: a [`RequestKey`] such as [`PeerIp`],
    /// [`ClientIp`](crate::ClientIp), [`HeaderKey`](crate::HeaderKey),
    /// [`GlobalKey`](crate::GlobalKey), or any `Fn(&ServiceRequest) -> Option<String>`.
    pub fn key(mut self, key: impl RequestKey) -> Self {
        self.settings().key = Arc::new(key);
        self
    }

    /// Sets each request's cost, in the bucket's units: 1 by default.
    pub fn cost(mut self, cost: impl Fn(&ServiceRequest) -> f64 + Send + Sync + 'static) -> Self {
        self.settings().cost = Arc::new(cost);
        self
    }

    /// How long a request may be held for its turn. Zero, the default, refuses at once
    /// what does not fit now.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.settings().max_wait = max_wait;
        self
    }

    /// Whether allowed responses carry `RateLimit-Policy` and `RateLimit` (refusals always
    /// do): `true` by default.
    pub fn headers_when_allowed(mut self, send: bool) -> Self {
        self.settings().headers_when_allowed = send;
        self
    }

    /// The response to a request that has no key. By default `400 Bad Request`, with a
    /// problem body saying so.
    pub fn on_missing_key(
        mut self,
        respond: impl Fn(&ServiceRequest) -> HttpResponse + Send + Sync + 'static,
    ) -> Self {
        self.settings().on_missing_key = Arc::new(respond);
        self
    }

    /// The response to a refused request, instead of the `quota-exceeded` problem: made
    /// from the request and the refusal ([`AcquireError::Timeout`] or
    /// [`AcquireError::QueueFull`], with its wait). `Retry-After` and the rate-limit fields
    /// are added to it, unless it has them.
    pub fn on_refused(
        mut self,
        respond: impl Fn(&ServiceRequest, &AcquireError) -> HttpResponse + Send + Sync + 'static,
    ) -> Self {
        self.settings().on_refused = Some(Arc::new(respond));
        self
    }
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("max_wait", &self.settings.max_wait)
            .field("headers_when_allowed", &self.settings.headers_when_allowed)
            .finish_non_exhaustive()
    }
}

impl<S, B> Transform<S, ServiceRequest> for RateLimit
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RateLimitMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let worker = Worker {
            settings: Settings::clone(&self.settings),
            last_limit: Cell::new(None),
        };
        ready(Ok(RateLimitMiddleware {
            service: Rc::new(service),
            worker: Rc::new(worker),
        }))
    }
}

/// The service a [`RateLimit`] wraps around the routes it limits; actix-web builds it.
pub struct RateLimitMiddleware<S> {
    service: Rc<S>,
    worker: Rc<Worker>,
}

/// The settings as one worker holds them: its own copy, so that a request touches nothing
/// that another worker's thread writes.
struct Worker {
    settings: Settings,
    /// The limit of the last grant this worker saw.
    last_limit: Cell<Option<Limit>>,
}

impl<S> std::fmt::Debug for RateLimitMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitMiddleware")
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for RateLimitMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let (service, worker) = (Rc::clone(&self.service), Rc::clone(&self.worker));
        Box::pin(async move { worker.serve(request, &service).await })
    }
}

impl Worker {
    async fn serve<S, B>(
        &self,
        request: ServiceRequest,
        service: &S,
    ) -> Result<ServiceResponse<EitherBody<B>>, Error>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    {
        let settings = &self.settings;
        let Some(key) = settings.key.key(&request) else {
            debug!("no rate-limit key for a request to {}", request.path());
            let response = (settings.on_missing_key)(&request);
            return Ok(request.into_response(response).map_into_right_body());
        };
        let acquire = Acquire {
            amount: (settings.cost)(&request),
            timeout: Some(settings.max_wait),
        };
        let answer = match settings.limiter.send(Keyed::new(key, acquire)).await {
            Ok(answer) => answer,
            Err(stopped) => Err(AcquireError::from(stopped)),
        };
        match answer {
            Ok(granted) => {
                self.remember(&granted);
                let mut response = service.call(request).await?;
                if settings.headers_when_allowed {
                    insert_all(response.headers_mut(), fields::granted(&granted), true);
                }
                Ok(response.map_into_left_body())
            }
            Err(error) => {
                debug!("refused: {error}");
                let response = self.refusal(&request, &error);
                Ok(request.into_response(response).map_into_right_body())
            }
        }
    }

    /// Keeps the limit a grant carried: in this worker, and, when it changes, for every
    /// worker.
    fn remember(&self, granted: &Granted) {
        let limit = Limit::of(granted);
        if self.last_limit.get() != Some(limit) {
            self.last_limit.set(Some(limit));
            *self.shared_limit() = Some(limit);
        }
    }

    /// The limit of the last grant this worker saw, or, before any, another's.
    fn last_limit(&self) -> Option<Limit> {
        self.last_limit.get().or_else(|| *self.shared_limit())
    }

    fn shared_limit(&self) -> MutexGuard<'_, Option<Limit>> {
        let shared = &self.settings.last_limit;
        shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The response to a request the limiter did not grant.
    fn refusal(&self, request: &ServiceRequest, error: &AcquireError) -> HttpResponse {
        match *error {
            AcquireError::Timeout { retry_after, .. }
            | AcquireError::QueueFull { retry_after, .. } => {
                let mut response = match &self.settings.on_refused {
                    Some(respond) => respond(request, error),
                    None => problem::quota_exceeded(refusal_detail(error, retry_after)),
                };
                let fields = fields::refused(self.last_limit().as_ref(), retry_after);
                insert_all(response.headers_mut(), fields, false);
                response
            }
            AcquireError::Unavailable { retry_after } => {
                let mut response = problem::reduced_capacity(format!(
                    "the rate limiter cannot count requests now: {error}"
                ));
                let (name, value) = fields::retry_after_field(retry_after);
                response.headers_mut().insert(name, value);
                response
            }
            AcquireError::InvalidAmount { .. } => problem::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("this request's rate-limit cost is not one the limiter can grant: {error}"),
            ),
            _ => problem::plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the rate limiter grants nothing more: {error}"),
            ),
        }
    }
}

/// The detail of a `quota-exceeded` problem.
fn refusal_detail(error: &AcquireError, retry_after: Duration) -> String {
    let wait = retry_after.as_secs_f64();
    match error {
        AcquireError::QueueFull { max_queue, .. } => format!(
            "{max_queue} requests of this client already wait their turn: retry in {wait:.3} s"
        ),
        _ => format!("this client's quota is used up: this request fits in {wait:.3} s"),
    }
}

/// The default response to a request without a key.
fn missing_key(_: &ServiceRequest) -> HttpResponse {
    problem::plain(
        StatusCode::BAD_REQUEST,
        "this request carries nothing to count it by (its client's address, or the header \
         the rate limit is keyed by)"
            .to_owned(),
    )
}

/// Inserts `fields` into `headers`: replacing what is there, or only where nothing is.
fn insert_all(headers: &mut HeaderMap, fields: Vec<(HeaderName, HeaderValue)>, replace: bool) {
    for (name, value) in fields {
        if replace || !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
}
