//! Grants and waits are logged at debug, rejections at warn; the grant path logs nothing
//! above debug.

mod common;

use std::sync::Mutex;

use actix_leaky_bucket::{Acquire, BucketActor};
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

#[actix_rt::test]
async fn grants_at_debug_rejections_at_warn() {
    log::set_logger(&RECORDER).unwrap();
    log::set_max_level(LevelFilter::Trace);
    let (addr, start) = start_paused(BucketActor::new(config(1.0, ms(1000)))).await;
    take_records();

    answers(spawn_all(&addr, start, (0..3).map(|_| Acquire::new(1.0)))).await;
    let records = take_records();
    assert!(
        records.iter().all(|(level, _)| *level == Level::Debug),
        "{records:?}"
    );
    let messages: Vec<&str> = records
        .iter()
        .map(|(_, message)| message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "granted 1 at once, level 1",
            "1 waits, 1 in the queue",
            "1 waits, 2 in the queue",
            "granted 1 after 1s",
            "granted 1 after 2s",
        ]
    );

    addr.send(Acquire::new(f64::NAN))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        take_records(),
        [(
            Level::Warn,
            "invalid amount NaN: pass a finite amount from 0 to the bucket's capacity 1"
                .to_string()
        )]
    );
}
