//! Memory follows the keys in use with nothing to call: after a flood of keys whose
//! buckets then leak to zero, the actor's own timer drops them and gives the memory back,
//! with no message sent to it meanwhile. Measured with a counting allocator, on paused
//! time.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use actix::Actor;
use actix_leaky_bucket::{Acquire, Keyed, KeyedBucketActor, KeyedStats};
use common::*;

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

#[actix_rt::test]
async fn a_flood_of_keys_is_given_back_by_the_timer_alone() {
    tokio::time::pause();
    // Each key's unit leaks in a second.
    let addr = KeyedBucketActor::<u64>::new(config(1.0, ms(1000))).start();
    addr.send(KeyedStats).await.unwrap();
    let before = heap();
    for key in 0..20_000u64 {
        addr.send(Keyed::new(key, Acquire::new(1.0)))
            .await
            .unwrap()
            .unwrap();
    }
    let flooded = heap() - before;
    assert!(flooded > 20_000 * 40, "{flooded} B for 20k keys");
    // Nothing is sent now: the paused clock moves on to the actor's own sweeps.
    tokio::time::sleep(ms(2_000)).await;
    settle().await;
    let held = heap() - before;
    assert!(
        held < 4096,
        "{held} B still held of the {flooded} B of the flood"
    );
    let stats = addr.send(KeyedStats).await.unwrap();
    assert_eq!((stats.keys, stats.evicted), (0, 20_000));
}
