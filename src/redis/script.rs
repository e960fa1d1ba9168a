//! The Rust side of `gcra.lua`, the arithmetic of a shared bucket: the arguments of each
//! operation, and what its answers mean.

use std::time::Duration;

use redis::{RedisResult, Script};

use super::store::Store;
use crate::core::{GiveBack, Request, Reservation};
use crate::BucketConfig;

/// The script, and the numbers of the bucket it runs for.
#[derive(Debug)]
pub(super) struct Gcra {
    script: Script,
    /// Microseconds of schedule per unit.
    micros_per_unit: f64,
    /// The same, exactly as the float prints.
    per_unit: String,
    /// The burst tolerance in whole microseconds: the period, rounded down.
    tolerance: u64,
}

impl Gcra {
    pub(super) fn new(config: &BucketConfig) -> Self {
        let per_unit = config.period().as_secs_f64() * 1e6 / config.capacity();
        Self {
            script: Script::new(include_str!("gcra.lua")),
            micros_per_unit: per_unit,
            per_unit: per_unit.to_string(),
            tolerance: u64::try_from(config.period().as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// Microseconds of schedule per unit of amount.
    pub(super) fn micros_per_unit(&self) -> f64 {
        self.micros_per_unit
    }

    /// Reserves `batch`, in order, on the bucket at `key`: the answer to each request,
    /// and how far the schedule reaches past the answer once they are reserved.
    pub(super) async fn reserve(
        &self,
        store: &mut Store,
        key: &str,
        batch: &[Request],
    ) -> RedisResult<(Vec<Reservation>, Duration)> {
        let mut call = self.script.key(key);
        call.arg("reserve").arg(&self.per_unit).arg(self.tolerance);
        for request in batch {
            let timeout = request.timeout.map_or(-1, |timeout| {
                i64::try_from(timeout.as_micros()).unwrap_or(i64::MAX)
            });
            call.arg(request.amount).arg(timeout);
        }
        let answers: Vec<i64> = store.invoke(&call).await?;
        let pairs = answers.chunks_exact(2);
        let reach = pairs
            .remainder()
            .first()
            .copied()
            .map_or(Duration::ZERO, micros);
        let reservations = pairs
            .map(|pair| match (pair[0], pair[1]) {
                (-1, wait) => Reservation::Refused {
                    retry_after: micros(wait),
                },
                (wait, token) => Reservation::Reserved {
                    wait: micros(wait),
                    token: u64::try_from(token).unwrap_or_default(),
                },
            })
            .collect();
        Ok((reservations, reach))
    }

    /// Offers `give_back` back to the bucket at `key`; true if it was taken back.
    pub(super) async fn give_back(
        &self,
        store: &mut Store,
        key: &str,
        give_back: GiveBack,
    ) -> RedisResult<bool> {
        let mut call = self.script.key(key);
        call.arg("give_back")
            .arg(&self.per_unit)
            .arg(self.tolerance)
            .arg(give_back.amount)
            .arg(give_back.token);
        store.invoke::<i64>(&call).await.map(|taken| taken == 1)
    }

    /// Settles `difference` (actual less estimated cost) on the bucket at `key`: false if
    /// a refund had to be kept.
    pub(super) async fn settle(
        &self,
        store: &mut Store,
        key: &str,
        difference: f64,
    ) -> RedisResult<bool> {
        let mut call = self.script.key(key);
        call.arg("settle")
            .arg(&self.per_unit)
            .arg(self.tolerance)
            .arg(difference);
        store.invoke::<i64>(&call).await.map(|applied| applied == 1)
    }

    /// How far the schedule of the bucket at `key` reaches past now.
    pub(super) async fn peek(&self, store: &mut Store, key: &str) -> RedisResult<Duration> {
        let mut call = self.script.key(key);
        call.arg("peek").arg(&self.per_unit).arg(self.tolerance);
        store.invoke::<i64>(&call).await.map(micros)
    }
}

/// A count of microseconds from the script (never negative).
fn micros(count: i64) -> Duration {
    Duration::from_micros(u64::try_from(count).unwrap_or_default())
}
