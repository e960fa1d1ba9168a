//! The shared bucket as an actor: the shell around reserved lanes, and the calls to Redis
//! that it starts and whose answers it applies.

use std::rc::Rc;
use std::time::Duration;

use actix::fut::{ready, ActorFutureExt, WrapFuture};
use actix::{Actor, AsyncContext, Context, Handler, ResponseActFuture, Supervised};
use log::{debug, info, warn};
use redis::RedisError;

use super::error::{without_password, ConnectError};
use super::script::Gcra;
use super::store::Store;
use super::OnOutage;
use crate::core::{
    check_costs, BucketStats, KeyedLanes, Outage, Refusal, Reservation, ReservedLane,
};
use crate::shell::{AcquireResult, Reply, Shell, Shelled, Waiting};
use crate::{
    Acquire, AcquireError, BucketConfig, Capacity, CapacityInfo, Keyed, KeyedBucketStats,
    KeyedStats, Reconcile, Shutdown, Stats,
};

/// How often a bucket whose store is away tries it again, and the `retry_after` of its
/// refusals meanwhile.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// The lanes of a shared bucket: `None` for the bucket itself, a key for each bucket of
/// [`Keyed`] messages.
type SharedLanes = KeyedLanes<Option<String>, ReservedLane<Waiting>>;

/// A leaky bucket shared by every process that uses the same name on the same Redis: over
/// any window of length `t` on Redis's clock, the slots it reserves for all of them
/// together hold at most `capacity + rate × t`, and each grant comes at its slot or after.
///
/// Each request reserves its slot on Redis, in one atomic script call for all the requests
/// that arrived together, and waits here, in this process's queue, until its slot comes;
/// this process's clock counts the wait from when Redis's answer arrived, so a grant is
/// never early. Every promise of [`BucketActor`](crate::BucketActor) holds within a
/// process: FIFO, timeouts counted from receipt (refused at once, by Redis, when the slot
/// would come too late), free cancellation, `max_queue`, shutdowns, supervised restarts.
/// A timeout bounds the wait for a slot; the call to Redis comes on top of it (at most
/// its response timeout, 100 ms), so that a timeout of zero is granted whenever the
/// request fitted when Redis looked, however far away Redis is.
/// Across processes there is no common queue: requests of different processes are
/// granted in the order Redis reserved them.
///
/// It answers [`Acquire`], [`CapacityInfo`], [`Reconcile`], [`Stats`] and [`Shutdown`],
/// and the same wrapped in [`Keyed`] with a `String` key, one shared bucket per key under
/// the bucket's name, plus [`KeyedStats`]. A caller that leaves gives its slot back when
/// that is safe: when no later reservation depends on it (otherwise the slot is kept,
/// which errs on the side of the limit). A debt ([`Reconcile`] of a cost above the
/// estimate) is charged at once; a refund only when every reservation is due, else kept.
///
/// When Redis cannot be reached the bucket learns so within 100 ms of a call, and follows
/// its [`OnOutage`] rule until Redis answers again, trying every 100 ms. A cluster counts
/// as one store: while any of its nodes cannot be reached, every key follows the rule until
/// a try succeeds.
///
/// Every process must use the same [`BucketConfig`] for a name: the script keeps the
/// schedule, but each process tells it the rate.
///
/// ```no_run
/// use std::time::Duration;
/// use actix::Actor;
/// use actix_leaky_bucket::{Acquire, BucketConfig, OnOutage, RedisBucketActor};
///
/// #[actix_rt::main]
/// async fn main() {
///     let config = BucketConfig::from_rate(100.0, 10.0).unwrap(); // for all processes
///     let bucket = RedisBucketActor::connect("redis://127.0.0.1:6379", "api", config)
///         .await
///         .unwrap()
///         .on_outage(OnOutage::local(0.25).unwrap()) // one of four processes
///         .max_queue(1_000)
///         .start();
///     bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
/// }
/// ```
pub struct RedisBucketActor {
    shell: Shell<SharedLanes>,
    store: Store,
    gcra: Rc<Gcra>,
    config: BucketConfig,
    name: String,
    on_outage: OnOutage,
    /// A try of the store is planned or out.
    retrying: bool,
}

impl RedisBucketActor {
    /// Connects to the Redis server at `url` for the shared bucket `name`, of `config`.
    pub async fn connect(
        url: &str,
        name: &str,
        config: BucketConfig,
    ) -> Result<Self, ConnectError> {
        check_name(name)?;
        let store = Store::single(url)
            .await
            .map_err(|error| connect_error(url, &error))?;
        Self::with_store(store, name, config)
    }

    /// Connects to the Redis Cluster that `nodes` (one or more of its addresses) belong to,
    /// for the shared bucket `name`, of `config`. Each key's bucket lives on the node of
    /// its own hash slot.
    pub async fn connect_cluster(
        nodes: &[&str],
        name: &str,
        config: BucketConfig,
    ) -> Result<Self, ConnectError> {
        check_name(name)?;
        let store = Store::cluster(nodes)
            .await
            .map_err(|error| connect_error(&nodes.join(","), &error))?;
        Self::with_store(store, name, config)
    }

    fn with_store(store: Store, name: &str, config: BucketConfig) -> Result<Self, ConnectError> {
        let mut actor = Self {
            shell: Shell::new(config, |_| KeyedLanes::default()),
            store,
            gcra: Rc::new(Gcra::new(&config)),
            config,
            name: name.to_owned(),
            on_outage: OnOutage::default(),
            retrying: false,
        };
        actor.set_rule();
        Ok(actor)
    }

    /// What to do while Redis cannot be reached: see [`OnOutage`]. The default is
    /// [`OnOutage::FailClosed`].
    pub fn on_outage(mut self, on_outage: OnOutage) -> Self {
        self.on_outage = on_outage;
        self.set_rule();
        self
    }

    /// Bounds each bucket's queue in this process to `max_queue` waiters (0, the default,
    /// is unbounded): a request that would wait beyond it is answered
    /// [`AcquireError::QueueFull`] at once.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.shell.set_max_queue(max_queue);
        self
    }

    fn set_rule(&mut self) {
        let rule = self.on_outage.rule(&self.config, RETRY_EVERY);
        self.shell.receive().rules_mut().outage = rule;
    }

    /// The Redis key of a bucket: hash-tagged, so that all of it lives on one node of a
    /// cluster, and, for a key's bucket, the tag holds the key, so that the keys spread over
    /// the nodes. The name's length comes first, so that no name and key can make the key
    /// of another name's bucket.
    fn redis_key(&self, key: &Option<String>) -> String {
        let name = &self.name;
        match key {
            None => format!("{{{}:{name}}}", name.len()),
            Some(key) => format!("{{{}:{name}:{key}}}", name.len()),
        }
    }

    /// Sends what the lanes need sent: the batches of requests that have just queued, and
    /// the slots to offer back.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let work = self.shell.receive().with_lanes(ctx, |lanes, env| {
            let mut work = Vec::new();
            for key in lanes.take_for_front_end() {
                let (give_backs, batch) = lanes.on_lane(env, &key, |lane, env| {
                    (lane.take_give_backs(), lane.take_batch(env))
                });
                if !give_backs.is_empty() || batch.is_some() {
                    work.push((key, give_backs, batch));
                }
            }
            work
        });
        for (key, give_backs, batch) in work {
            let redis_key = self.redis_key(&key);
            for give_back in give_backs {
                let (mut store, gcra, redis_key) =
                    (self.store.clone(), self.gcra.clone(), redis_key.clone());
                let call = async move { gcra.give_back(&mut store, &redis_key, give_back).await };
                ctx.spawn(call.into_actor(self).map(|taken, _, _| match taken {
                    Ok(true) => debug!("a slot whose caller left was given back"),
                    Ok(false) => {
                        debug!("a slot whose caller left is kept: later reservations depend on it")
                    }
                    Err(error) => debug!("a slot whose caller left is kept: {error}"),
                }));
            }
            if let Some(batch) = batch {
                let (mut store, gcra) = (self.store.clone(), self.gcra.clone());
                let call = async move { gcra.reserve(&mut store, &redis_key, &batch).await };
                ctx.spawn(
                    call.into_actor(self)
                        .map(move |answers, actor, ctx| actor.reserved(key, answers, ctx)),
                );
            }
        }
    }

    /// Applies Redis's answer to a batch of `key`'s requests.
    fn reserved(
        &mut self,
        key: Option<String>,
        answers: Result<(Vec<Reservation>, Duration), RedisError>,
        ctx: &mut Context<Self>,
    ) {
        match answers {
            Ok((answers, reach)) => {
                self.shell.receive().with_lanes(ctx, |lanes, env| {
                    lanes.on_lane(env, &key, |lane, env| lane.apply(env, &answers, reach));
                });
            }
            Err(error) => {
                self.failed(&error, ctx);
                self.shell.receive().with_lanes(ctx, |lanes, env| {
                    lanes.on_lane(env, &key, |lane, env| lane.store_failed(env));
                });
            }
        }
        self.dispatch(ctx);
    }

    /// A call failed: if Redis could not be reached, every request follows the outage rule
    /// until it answers again; any other failure (Redis answered with an error) is the
    /// call's alone.
    fn failed(&mut self, error: &RedisError, ctx: &mut Context<Self>) {
        if is_outage(error) {
            self.unreachable(error, ctx);
        } else {
            warn!(
                "shared bucket {}: Redis refused a call ({error})",
                self.name
            );
        }
    }

    /// Redis cannot be reached: until it answers again, every request follows the outage
    /// rule, those not yet sent too.
    fn unreachable(&mut self, error: &RedisError, ctx: &mut Context<Self>) {
        let rules = self.shell.receive().rules_mut();
        if rules.store_reachable {
            rules.store_reachable = false;
            self.shell.receive().with_lanes(ctx, |lanes, env| {
                lanes.on_every_lane(env, |lane, env| lane.store_unreachable(env));
            });
            warn!(
                "shared bucket {}: Redis cannot be reached ({error}); {} until it answers",
                self.name,
                match self.on_outage {
                    OnOutage::FailClosed => "refusing",
                    OnOutage::FailOpen => "granting",
                    OnOutage::Local(_) => "granting at this process's share",
                }
            );
        }
        self.retry_later(ctx);
    }

    fn retry_later(&mut self, ctx: &mut Context<Self>) {
        if !self.retrying {
            self.retrying = true;
            ctx.run_later(RETRY_EVERY, |actor, ctx| actor.retry(ctx));
        }
    }

    /// Tries Redis again.
    fn retry(&mut self, ctx: &mut Context<Self>) {
        let mut store = self.store.clone();
        let ping = async move { store.ping().await };
        ctx.spawn(ping.into_actor(self).map(|answered, actor, ctx| {
            actor.retrying = false;
            match answered {
                Ok(()) => {
                    info!("shared bucket {}: Redis answers again", actor.name);
                    let front = actor.shell.receive();
                    front.rules_mut().store_reachable = true;
                    // Every lane with requests to send says so again.
                    front.with_lanes(ctx, |lanes, env| lanes.on_every_lane(env, |_, _| {}));
                    actor.dispatch(ctx);
                }
                Err(_) => actor.retry_later(ctx),
            }
        }));
    }

    fn capacity(
        &mut self,
        key: Option<String>,
        amount: f64,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Capacity> {
        let front = self.shell.receive();
        if !front.rules().store_reachable {
            let open = front.is_open();
            let capacity = front.with_lanes(ctx, |lanes, env| {
                lanes.on_lane(env, &key, |lane, env| {
                    lane.capacity(env, amount, open, None)
                })
            });
            return Box::pin(ready(capacity));
        }
        let (mut store, gcra, redis_key) =
            (self.store.clone(), self.gcra.clone(), self.redis_key(&key));
        let peek = async move { gcra.peek(&mut store, &redis_key).await };
        Box::pin(peek.into_actor(self).map(move |ahead, actor, ctx| {
            let ahead = match ahead {
                Ok(ahead) => Some(ahead),
                Err(error) => {
                    actor.unreachable(&error, ctx);
                    None
                }
            };
            let front = actor.shell.receive();
            let open = front.is_open();
            front.with_lanes(ctx, |lanes, env| {
                lanes.on_lane(env, &key, |lane, env| {
                    lane.capacity(env, amount, open, ahead)
                })
            })
        }))
    }

    fn reconcile(
        &mut self,
        key: Option<String>,
        actual: f64,
        estimated: f64,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), AcquireError>> {
        let front = self.shell.receive();
        let refused = if front.is_closed() {
            Err(Refusal::ShuttingDown)
        } else {
            check_costs(&front.rules().limits, actual, estimated).and_then(|()| {
                // A debt the schedule cannot hold (its microseconds beyond what Redis
                // writes exactly) could never be repaid.
                let length = (actual - estimated) * self.gcra.micros_per_unit();
                if length < MAX_SCHEDULE_MICROS {
                    Ok(())
                } else {
                    Err(Refusal::InvalidAmount {
                        amount: actual,
                        capacity: self.config.capacity(),
                    })
                }
            })
        };
        if let Err(refusal) = refused {
            return Box::pin(ready(Err(front.count_refusal(refusal))));
        }
        if !front.rules().store_reachable {
            return Box::pin(ready(
                self.settle_without_store(key, actual, estimated, ctx),
            ));
        }
        let (mut store, gcra, redis_key) =
            (self.store.clone(), self.gcra.clone(), self.redis_key(&key));
        let settle = async move {
            gcra.settle(&mut store, &redis_key, actual - estimated)
                .await
        };
        Box::pin(
            settle
                .into_actor(self)
                .map(move |applied, actor, ctx| match applied {
                    Ok(true) => Ok(()),
                    Ok(false) => {
                        debug!(
                            "a refund of {} is kept: later reservations depend on it",
                            estimated - actual
                        );
                        Ok(())
                    }
                    Err(error) => {
                        actor.unreachable(&error, ctx);
                        actor.settle_without_store(key, actual, estimated, ctx)
                    }
                }),
        )
    }

    /// Settles a cost while Redis cannot be reached, by the outage rule.
    fn settle_without_store(
        &mut self,
        key: Option<String>,
        actual: f64,
        estimated: f64,
        ctx: &mut Context<Self>,
    ) -> Result<(), AcquireError> {
        let front = self.shell.receive();
        let settled = match front.rules().outage {
            Outage::Refuse { retry_after } => Err(Refusal::Unavailable { retry_after }),
            Outage::Grant => Ok(()),
            Outage::Local(local) => {
                front.with_lanes(ctx, |lanes, env| {
                    lanes.on_lane(env, &key, |lane, env| {
                        lane.settle_locally(env, &local, actual, estimated);
                    });
                });
                Ok(())
            }
        };
        settled.map_err(|refusal| front.count_refusal(refusal))
    }
}

/// The most microseconds of schedule a debt may add: Redis keeps a schedule exactly as long
/// as its instants stay under 2^53 µs.
const MAX_SCHEDULE_MICROS: f64 = 1e15;

/// Whether `error` means that Redis cannot be reached now, rather than that it answered
/// with an error.
fn is_outage(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || matches!(
            error.kind(),
            redis::ErrorKind::ClusterConnectionNotFound
                | redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown)
        )
}

fn check_name(name: &str) -> Result<(), ConnectError> {
    if name.is_empty() {
        Err(ConnectError::EmptyName)
    } else {
        Ok(())
    }
}

/// What went wrong while connecting to `url`.
fn connect_error(url: &str, error: &RedisError) -> ConnectError {
    let url = without_password(url);
    let reason = error.to_string();
    if error.kind() == redis::ErrorKind::InvalidClientConfig {
        ConnectError::InvalidUrl { url, reason }
    } else {
        ConnectError::Unreachable { url, reason }
    }
}

impl Shelled for RedisBucketActor {
    type Lanes = SharedLanes;

    fn shell(&mut self) -> &mut Shell<SharedLanes> {
        &mut self.shell
    }

    fn after_timer(&mut self, ctx: &mut Context<Self>) {
        self.dispatch(ctx);
    }
}

impl std::fmt::Debug for RedisBucketActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBucketActor")
            .field("name", &self.name)
            .field("on_outage", &self.on_outage)
            .field("bucket", &self.shell)
            .finish_non_exhaustive()
    }
}

impl Actor for RedisBucketActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let front = self.shell.receive();
        front.started(ctx);
        if !front.rules().store_reachable && !front.is_closed() {
            self.retry_later(ctx); // actix dropped the planned try with the context
        }
        self.dispatch(ctx);
    }
}

impl Supervised for RedisBucketActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Only a shutdown stops the actor, and with it every lane is answered and closed.
        self.shell.receive().restarting();
        self.retrying = false;
    }
}

impl Drop for RedisBucketActor {
    /// No waiter is left without an answer, however the actor ends.
    fn drop(&mut self) {
        self.shell.receive().answer_everyone();
    }
}

/// Reserves a slot on Redis and grants it in its turn, or refuses at once; see [`Acquire`].
impl Handler<Acquire> for RedisBucketActor {
    type Result = Reply<AcquireResult>;

    fn handle(&mut self, request: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        self.shell
            .acquire(None, request.amount, request.timeout, ctx)
    }
}

/// As [`Acquire`], for the shared bucket of the key.
impl Handler<Keyed<String, Acquire>> for RedisBucketActor {
    type Result = Reply<AcquireResult>;

    fn handle(&mut self, request: Keyed<String, Acquire>, ctx: &mut Context<Self>) -> Self::Result {
        let Keyed { key, message } = request;
        self.shell
            .acquire(Some(key), message.amount, message.timeout, ctx)
    }
}

/// Reads the shared level from Redis (writing nothing) with this process's queue; see
/// [`CapacityInfo`].
impl Handler<CapacityInfo> for RedisBucketActor {
    type Result = ResponseActFuture<Self, Capacity>;

    fn handle(&mut self, query: CapacityInfo, ctx: &mut Context<Self>) -> Self::Result {
        self.capacity(None, query.amount, ctx)
    }
}

/// As [`CapacityInfo`], for the shared bucket of the key.
impl Handler<Keyed<String, CapacityInfo>> for RedisBucketActor {
    type Result = ResponseActFuture<Self, Capacity>;

    fn handle(
        &mut self,
        query: Keyed<String, CapacityInfo>,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        self.capacity(Some(query.key), query.message.amount, ctx)
    }
}

/// Charges a debt on Redis at once, or refunds when that is safe; see [`Reconcile`].
impl Handler<Reconcile> for RedisBucketActor {
    type Result = ResponseActFuture<Self, Result<(), AcquireError>>;

    fn handle(&mut self, costs: Reconcile, ctx: &mut Context<Self>) -> Self::Result {
        self.reconcile(None, costs.actual, costs.estimated, ctx)
    }
}

/// As [`Reconcile`], for the shared bucket of the key.
impl Handler<Keyed<String, Reconcile>> for RedisBucketActor {
    type Result = ResponseActFuture<Self, Result<(), AcquireError>>;

    fn handle(&mut self, costs: Keyed<String, Reconcile>, ctx: &mut Context<Self>) -> Self::Result {
        let Keyed { key, message } = costs;
        self.reconcile(Some(key), message.actual, message.estimated, ctx)
    }
}

/// Answers this process's counters, after granting what is due; see [`Stats`].
impl Handler<Stats> for RedisBucketActor {
    type Result = Reply<BucketStats>;

    fn handle(&mut self, _: Stats, ctx: &mut Context<Self>) -> Self::Result {
        let bucket = self.shell.receive();
        bucket.catch_up(ctx);
        let stats = *bucket.stats();
        self.dispatch(ctx);
        Reply::now(stats)
    }
}

/// Answers the buckets held in this process (those with callers waiting here), the ones
/// dropped, and the counters; see [`KeyedStats`].
impl Handler<KeyedStats> for RedisBucketActor {
    type Result = Reply<KeyedBucketStats>;

    fn handle(&mut self, _: KeyedStats, ctx: &mut Context<Self>) -> Self::Result {
        let buckets = self.shell.receive();
        buckets.catch_up(ctx);
        let (limits, now) = (buckets.rules().limits, buckets.now());
        let lanes = buckets.lanes();
        lanes.sweep(&limits, now);
        let (keys, evicted) = (lanes.len(), lanes.evicted());
        Reply::now(KeyedBucketStats {
            keys,
            evicted,
            totals: *buckets.stats(),
        })
    }
}

/// Stops gracefully or at once; see [`Shutdown`].
impl Handler<Shutdown> for RedisBucketActor {
    type Result = Reply<()>;

    fn handle(&mut self, shutdown: Shutdown, ctx: &mut Context<Self>) -> Reply<()> {
        let reply = self.shell.receive().shutdown(shutdown, ctx);
        self.dispatch(ctx);
        reply
    }
}
