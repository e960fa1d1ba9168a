//! The connection to Redis, a single server or a cluster, set up to fail fast: an outage
//! is answered within a response timeout, and a call that fails is never retried in the
//! request's path (a reconnect runs in the background).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisResult, ScriptInvocation};

/// How long a call may wait for its answer before it counts as an outage: the bound on
/// every answer while the server is gone or frozen.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_millis(100);

/// How long connecting may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(100);

/// A connection that multiplexes any number of calls.
#[derive(Clone)]
pub(super) enum Store {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Store::Single",
            Self::Cluster(_) => "Store::Cluster",
        })
    }
}

impl Store {
    /// Connects to the server at `url`.
    pub(super) async fn single(url: &str) -> RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(50));
        let manager = client.get_connection_manager_with_config(config).await?;
        Ok(Self::Single(manager))
    }

    /// Connects to the cluster that `nodes` belong to.
    pub(super) async fn cluster(nodes: &[&str]) -> RedisResult<Self> {
        let client = ClusterClientBuilder::new(nodes.to_vec())
            .response_timeout(RESPONSE_TIMEOUT)
            .connection_timeout(CONNECTION_TIMEOUT)
            .retries(0)
            .build()?;
        Ok(Self::Cluster(client.get_async_connection().await?))
    }

    /// Runs `call` (a script, loaded first if the server lost it).
    pub(super) async fn invoke<T: FromRedisValue>(
        &mut self,
        call: &ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        match self {
            Self::Single(connection) => call.invoke_async(connection).await,
            Self::Cluster(connection) => call.invoke_async(connection).await,
        }
    }

    /// Asks the server whether it answers.
    pub(super) async fn ping(&mut self) -> RedisResult<()> {
        let ping = redis::cmd("PING");
        match self {
            Self::Single(connection) => ping.query_async(connection).await,
            Self::Cluster(connection) => ping.query_async(connection).await,
        }
    }
}
