//! What the bucket logs: grants and waits at debug; every refusal at debug too, since each
//! is an expected answer that the caller receives (a timeout, a try-acquire that finds
//! nothing, a full queue, a bucket shut down, an invalid amount); its lifecycle at info;
//! and a warning only for what nobody else hears of: a cost that `metered` could not
//! settle.

mod common;

use std::sync::Mutex;

use actix_leaky_bucket::{
    Acquire, BucketActor, BucketHandle, CapacityInfo, Reconcile, Shutdown, Stats,
};
use common::*;
use log::{Level, LevelFilter, Log, Metadata, Record};

struct Recorder(Mutex<Vec<(Level, String)>>);

impl Log for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        if record.target().starts_with("actix_leaky_bucket") {
            let entry = (record.level(), record.args().to_string());
            self.0.lock().unwrap().push(entry);
        }
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

fn take_records() -> Vec<(Level, String)> {
    std::mem::take(&mut *RECORDER.0.lock().unwrap())
}

fn messages_at(records: &[(Level, String)], wanted: Level) -> Vec<&str> {
    records
        .iter()
        .filter(|(level, _)| *level == wanted)
        .map(|(_, message)| message.as_str())
        .collect()
}

#[actix_rt::test]
async fn expected_answers_are_debug_and_only_what_nobody_hears_of_is_a_warning() {
    log::set_logger(&RECORDER).unwrap();
    log::set_max_level(LevelFilter::Trace);
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000))).max_queue(2)).await;
    take_records();

    answers(spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)))).await;
    let records = take_records();
    assert_eq!(
        messages_at(&records, Level::Debug),
        [
            "granted 1 at once",
            "1 waits, 1 in the queue",
            "1 waits, 2 in the queue",
            "granted 1 after 1s",
            "granted 1 after 2s",
        ]
    );
    assert_eq!(records.len(), 5, "{records:?}");

    // Five try-acquires on an empty bucket, a full queue, an invalid amount, a bad cost.
    let bucket = BucketHandle::from(addr.clone());
    for _ in 0..5 {
        bucket.try_acquire(1.0).await.unwrap_err();
    }
    let waiting = spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)));
    settle().await;
    addr.send(Acquire::new(f64::NAN))
        .await
        .unwrap()
        .unwrap_err();
    addr.send(Reconcile::new(-1.0, 1.0))
        .await
        .unwrap()
        .unwrap_err();
    let records = take_records();
    assert!(
        records.iter().all(|(level, _)| *level == Level::Debug),
        "{records:?}"
    );
    let debug = messages_at(&records, Level::Debug);
    assert_eq!(
        debug[0],
        "1 is not available now: it would be granted in 1s; retry then, or acquire with \
         a timeout to wait for it"
    );
    assert!(debug
        .iter()
        .any(|m| m.starts_with("the bucket's queue is full (2 waiters)")));
    assert!(debug.iter().any(|m| m.starts_with("invalid amount NaN")));
    assert!(debug.iter().any(|m| m.starts_with("invalid amount -1")));

    // A shutdown is news for the operator; the requests refused after it are not.
    addr.send(Shutdown::immediate()).await.unwrap();
    answers(waiting).await;
    let records = take_records();
    assert_eq!(
        messages_at(&records, Level::Info),
        ["immediate shutdown: answering 2 waiters, stopping"]
    );
    assert!(
        records.iter().all(|(level, _)| *level > Level::Warn),
        "{records:?}"
    );

    // A bucket that is gone cannot log; a new one refuses a cost after its shutdown at
    // debug, and `metered` warns of the cost it could not settle, since its caller gets
    // the call's output and never sees the error.
    let addr = actix::Actor::start(BucketActor::new(config(10.0, ms(1000))));
    let tokens = BucketHandle::from(addr.clone());
    take_records();
    tokens.metered(2.0, async {}, |_| f64::NAN).await.unwrap();
    let records = take_records();
    assert_eq!(
        messages_at(&records, Level::Warn),
        [
            "could not reconcile actual cost NaN with estimate 2: invalid amount NaN: pass a \
          finite amount from 0 to the bucket's capacity 10"
        ]
    );
    addr.send(CapacityInfo::default()).await.unwrap();
    addr.send(Stats).await.unwrap();
    assert!(take_records().is_empty(), "queries log nothing");
}
