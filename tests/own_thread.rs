//! `BucketHandle::spawn` and `KeyedBucketHandle::spawn` run a bucket on a thread of its
//! own, with its own actix system, for programs that are not actix systems: they work
//! under any tokio runtime, the thread sleeps with no wake-ups while nobody waits, and it
//! ends once the last handle is gone and every waiter has been answered.
//!
//! These run in real time (threads and a runtime's own clock), so they assert bounds, not
//! speeds; and since they look at the process's threads by name, they run as one test.

use std::time::{Duration, Instant};

use actix_leaky_bucket::{Acquire, AcquireError, BucketConfig, BucketHandle, KeyedBucketHandle};

/// The bucket threads of this process: (thread id, name).
fn bucket_threads() -> Vec<(String, String)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if name.starts_with("leaky-bucket") {
            let tid = task.file_name().unwrap().to_string_lossy().into_owned();
            threads.push((tid, name.trim().to_owned()));
        }
    }
    threads
}

/// How many times the thread `tid` has been switched in and out.
fn context_switches(tid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .filter(|line| line.contains("ctxt_switches"))
        .map(|line| {
            line.split_whitespace()
                .last()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

/// Waits (up to 3 s) until no bucket thread is left.
fn wait_for_no_bucket_thread() {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !bucket_threads().is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running: {:?}",
            bucket_threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The bucket's thread is not woken at all for `idle` while nobody waits.
fn assert_idle_thread_sleeps(idle: Duration) {
    let threads = bucket_threads();
    assert_eq!(threads.len(), 1, "{threads:?}");
    let tid = &threads[0].0;
    let before = context_switches(tid);
    std::thread::sleep(idle);
    assert_eq!(
        context_switches(tid),
        before,
        "the idle bucket's thread was woken"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_bucket_on_its_own_thread_serves_any_runtime_sleeps_when_idle_and_ends_with_its_last_handle() {
    let second = Duration::from_secs(1);

    // From a current-thread runtime, as `#[tokio::main(flavor = "current_thread")]` builds.
    let bucket = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let bucket = BucketHandle::spawn(BucketConfig::new(2.0, second).unwrap());
            bucket.acquire(2.0).await.unwrap();
            let refused = bucket.try_acquire(1.0).await.unwrap_err();
            let retry_after = refused.retry_after().unwrap();
            assert!(
                retry_after > Duration::from_millis(300)
                    && retry_after <= Duration::from_millis(500)
            );
            let granted = bucket.acquire_with_timeout(1.0, second).await.unwrap();
            assert!(granted.waited > Duration::from_millis(300) && granted.waited <= second);
            bucket
        });
    // The burst is used up and the leak has made up for the wait: the thread sleeps.
    std::thread::sleep(Duration::from_millis(600));
    assert_idle_thread_sleeps(Duration::from_millis(300));

    // From a multi-thread runtime, 8 tasks at once: 40 units at 100 per second after a
    // burst of 10 take at least 300 ms.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let elapsed = runtime.block_on(async {
        let fast =
            BucketHandle::spawn(BucketConfig::new(10.0, Duration::from_millis(100)).unwrap());
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let fast = fast.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        fast.acquire(1.0).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = fast.stats().await.unwrap();
        assert_eq!(stats.granted, 40);
        fast.shutdown_graceful().await.unwrap();
        assert_eq!(fast.acquire(1.0).await, Err(AcquireError::Stopped));
        start.elapsed()
    });
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );

    // The last handle goes while someone waits: the waiter is answered, then the thread
    // ends.
    runtime.block_on(bucket.acquire(2.0)).unwrap();
    let request = bucket.addr().send(Acquire::new(1.0));
    drop(bucket);
    let waiter = runtime.spawn(request);
    let granted = runtime.block_on(waiter).unwrap().unwrap().unwrap();
    assert!(granted.waited > Duration::from_millis(300));
    wait_for_no_bucket_thread();

    // Per-key buckets, likewise: once every key has leaked to zero and been dropped, the
    // thread sleeps; it ends with its last handle.
    let keyed = runtime.block_on(async {
        let keyed = KeyedBucketHandle::<u64>::spawn(
            BucketConfig::new(10.0, Duration::from_millis(100)).unwrap(),
        );
        for key in 0..100u64 {
            keyed.acquire(key, 5.0).await.unwrap();
        }
        keyed
    });
    std::thread::sleep(Duration::from_millis(300)); // empty after 50 ms, swept by 150 ms
    assert_idle_thread_sleeps(Duration::from_millis(300));
    let stats = runtime.block_on(keyed.keyed_stats()).unwrap();
    assert_eq!(
        (stats.keys, stats.evicted, stats.totals.granted),
        (0, 100, 100)
    );
    drop(keyed);
    wait_for_no_bucket_thread();
}
