//! `scale`: per-grant cost with 100k waiters queued in the bucket (independent tasks) over
//! the cost with 1k, and over a raw actix round trip at the same mailbox depth; and memory:
//! heap bytes per queued waiter (a counting global allocator), bucket minus raw actix with
//! the same number of callers waiting in its mailbox.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Arbiter, Context, Handler, Message, System};
use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig, CapacityInfo, Reconcile};

use super::wait_until;
use crate::alloc::heap;
use crate::peers::{Echo, Ping};
use crate::procfs::page_faults;
use crate::rounds::median;
use crate::table::{verdict, Outcome};

/// The rows of the section.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    eprintln!("scale and memory...");
    // Rounds interleave the five measures, in an order that turns with each round, so
    // that a change in the machine's load, or in what the allocator holds after a
    // flood, falls on all of them; the ratios are medians of per-round ratios.
    let rounds = 7;
    let (mut small, mut large) = (Vec::new(), Vec::new());
    let (mut raw_small, mut raw_large, mut held) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for k in 0..5 {
            match (round + k) % 5 {
                0 => small.push(bucket_depth(1_000)),
                1 => raw_small.push(raw_depth(1_000)),
                2 => large.push(bucket_depth(100_000)),
                3 => raw_large.push(raw_depth(100_000)),
                _ => held.push(held_depth(100_000)),
            }
        }
    }
    let per_round = |ratio: &dyn Fn(usize) -> f64| median((0..rounds).map(ratio).collect());
    let flat = per_round(&|i| large[i].per_request_ns / small[i].per_request_ns);
    let vs_raw = per_round(&|i| large[i].per_request_ns / raw_large[i]);
    let raw_flat = per_round(&|i| raw_large[i] / raw_small[i]);
    let held_vs_raw = per_round(&|i| held[i] / raw_large[i]);
    let vs_held = per_round(&|i| large[i].per_request_ns / held[i]);
    let raw_heap = raw_heap_per_waiter(100_000);
    let bucket_small = median(small.iter().map(|r| r.per_request_ns).collect());
    let bucket_large = median(large.iter().map(|r| r.per_request_ns).collect());
    let bucket_heap = median(large.iter().map(|r| r.heap_per_waiter).collect());
    let (raw_small, raw_large, held) = (median(raw_small), median(raw_large), median(held));
    outcome.row(
        "Scale: per grant, 100k queued waiters vs 1k",
        format!("{bucket_large:.0} ns vs {bucket_small:.0} ns"),
        format!("raw actix: {raw_large:.0} ns vs {raw_small:.0} ns ({raw_flat:.2})"),
        format!("{flat:.2}"),
        "<= 1.20",
        verdict(flat <= 1.2),
    );
    outcome.row(
        "Scale: per grant at 100k vs raw actix at 100k",
        format!("{bucket_large:.0} ns ({vs_held:.2} of the floor)"),
        format!(
            "raw actix: {raw_large:.0} ns<br>floor (an actor that holds every reply and \
             answers all at once): {held:.0} ns ({held_vs_raw:.2} of raw)"
        ),
        format!("{vs_raw:.2}"),
        "<= 1.20",
        verdict(vs_raw <= 1.2),
    );
    let extra = bucket_heap - raw_heap;
    outcome.row(
        "Memory: heap per queued waiter, 100k deep",
        format!("{bucket_heap:.0} B"),
        format!("raw actix: {raw_heap:.0} B"),
        format!("{extra:+.0} B"),
        "<= 128 B",
        verdict(extra <= 128.0),
    );
    outcome
}

/// One depth run through the bucket.
pub(crate) struct DepthResult {
    /// Wall time per request, in nanoseconds.
    pub(crate) per_request_ns: f64,
    /// Heap bytes per request while all of them wait.
    heap_per_waiter: f64,
}

/// `waiters` independent tasks each send one `Acquire` of 1 to a full bucket that leaks
/// next to nothing (a million units per million hours), so all of them queue. Once every
/// one is queued, a `Reconcile` refunds the whole capacity, and the bucket grants them all
/// in one go. Nothing waits on a timer, so the whole run is work: per grant, `(last answer
/// - start) / waiters`, as for raw actix.
pub(crate) fn bucket_depth(waiters: usize) -> DepthResult {
    const CAPACITY: f64 = 1e6;
    System::new().block_on(async move {
        let period = Duration::from_secs(3_600 * 1_000_000);
        let bucket = BucketActor::new(BucketConfig::new(CAPACITY, period).unwrap()).start();
        bucket.send(Acquire::new(CAPACITY)).await.unwrap().unwrap();
        let replies = Rc::new(RefCell::new(Vec::with_capacity(waiters)));
        let (heap_before, faults_before) = (heap(), page_faults());
        let start = Instant::now();
        for _ in 0..waiters {
            let bucket = bucket.clone();
            let replies = replies.clone();
            actix_rt::spawn(async move {
                bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
                replies.borrow_mut().push(Instant::now());
            });
        }
        // Each query lets the runtime run the tasks that have not sent yet.
        let deadline = start + Duration::from_secs(10);
        while bucket.send(CapacityInfo::new(1.0)).await.unwrap().waiters < waiters {
            assert!(Instant::now() < deadline, "not every request was queued");
        }
        let (queued, heap_queued) = (Instant::now(), heap());
        let refund = bucket.send(Reconcile::new(0.0, CAPACITY));
        refund.await.unwrap().unwrap();
        wait_until(
            || replies.borrow().len() >= waiters,
            start + Duration::from_secs(10),
        )
        .await;
        let last = replies.borrow().iter().max().copied().unwrap();
        // What the drained queue still holds, and the first round trip after the flood
        // (a stall there would be the allocator tidying up after it).
        let after = Instant::now();
        bucket.send(CapacityInfo::new(1.0)).await.unwrap();
        let next_round_trip = after.elapsed();
        let held_after = heap() - heap_before;
        if std::env::var_os("REPORT_PHASES").is_some() {
            eprintln!(
                "bucket, {waiters}: queued in {:?}, granted in {:?}, {:.3} page faults per request, \
                 {} B still held after the drain, next round trip {:?}",
                queued - start,
                last - queued,
                (page_faults() - faults_before) as f64 / waiters as f64,
                held_after,
                next_round_trip
            );
        }
        DepthResult {
            per_request_ns: (last - start).as_nanos() as f64 / waiters as f64,
            heap_per_waiter: (heap_queued - heap_before) as f64 / waiters as f64,
        }
    })
}

/// The floor for any actor that makes its callers wait: it keeps each caller's reply sender
/// (as the bucket does, through its own `MessageResponse`) in a list allocated up front,
/// and answers them all when told to, with nothing else to decide.
struct Holder {
    /// The reply senders held, in arrival order.
    held: Rc<RefCell<Vec<OneshotSender<u64>>>>,
}

impl Actor for Holder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(0);
    }
}

/// Asks the [`Holder`] for an answer, which comes when it releases everyone.
struct Hold;

impl Message for Hold {
    type Result = u64;
}

/// The answer to [`Hold`]: actix hands the reply sender to it, and it keeps the sender.
struct Held(Rc<RefCell<Vec<OneshotSender<u64>>>>);

impl<A: Actor, M: Message<Result = u64>> MessageResponse<A, M> for Held {
    fn handle(self, _: &mut A::Context, tx: Option<OneshotSender<u64>>) {
        self.0.borrow_mut().extend(tx);
    }
}

impl Handler<Hold> for Holder {
    type Result = Held;

    fn handle(&mut self, _: Hold, _: &mut Context<Self>) -> Held {
        Held(self.held.clone())
    }
}

/// Has the [`Holder`] answer everyone it holds.
struct ReleaseAll;

impl Message for ReleaseAll {
    type Result = ();
}

impl Handler<ReleaseAll> for Holder {
    type Result = ();

    fn handle(&mut self, _: ReleaseAll, _: &mut Context<Self>) {
        for tx in self.held.borrow_mut().drain(..) {
            let _ = tx.send(1);
        }
    }
}

/// The bucket's depth run through the [`Holder`]: `count` tasks each send a `Hold`; once all
/// are held, one `ReleaseAll` answers them. Per request: (last answer - start) / count.
pub(crate) fn held_depth(count: usize) -> f64 {
    System::new().block_on(async move {
        let held = Rc::new(RefCell::new(Vec::with_capacity(count)));
        let holder = Holder { held: held.clone() }.start();
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let replies = Rc::new(RefCell::new(Vec::with_capacity(count)));
        let start = Instant::now();
        for _ in 0..count {
            let holder = holder.clone();
            let replies = replies.clone();
            actix_rt::spawn(async move {
                holder.send(Hold).await.unwrap();
                replies.borrow_mut().push(Instant::now());
            });
        }
        let deadline = start + Duration::from_secs(10);
        while held.borrow().len() < count {
            assert!(Instant::now() < deadline, "not every request was held");
            actix_rt::task::yield_now().await;
        }
        holder.send(ReleaseAll).await.unwrap();
        wait_until(
            || replies.borrow().len() >= count,
            start + Duration::from_secs(10),
        )
        .await;
        let last = replies.borrow().iter().max().copied().unwrap();
        (last - start).as_nanos() as f64 / count as f64
    })
}

/// The same depth through a trivial actor: `count` independent tasks each send a `Ping`; on
/// one thread, every task sends (and then waits) before the actor runs, so all of them are in
/// the mailbox at once. Per request: (last answer - start) / count.
fn raw_depth(count: usize) -> f64 {
    System::new().block_on(async move {
        let echo = Echo.start();
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let replies = Rc::new(RefCell::new(Vec::with_capacity(count)));
        let faults_before = page_faults();
        let start = Instant::now();
        for _ in 0..count {
            let echo = echo.clone();
            let replies = replies.clone();
            actix_rt::spawn(async move {
                echo.send(Ping).await.unwrap();
                replies.borrow_mut().push(Instant::now());
            });
        }
        wait_until(
            || replies.borrow().len() >= count,
            start + Duration::from_secs(10),
        )
        .await;
        let last = replies.borrow().iter().max().copied().unwrap();
        if std::env::var_os("REPORT_PHASES").is_some() {
            eprintln!(
                "raw, {count}: answered in {:?}, {:.3} page faults per request",
                last - start,
                (page_faults() - faults_before) as f64 / count as f64
            );
        }
        (last - start).as_nanos() as f64 / count as f64
    })
}

/// Heap bytes per caller waiting in a raw actix mailbox: the actor's thread is blocked while
/// `count` tasks send to it from this one.
fn raw_heap_per_waiter(count: usize) -> f64 {
    const GATE: Duration = Duration::from_millis(1000);
    let arbiter = Arbiter::new();
    let per_waiter = System::new().block_on(async move {
        let echo = Echo::start_in_arbiter(&arbiter.handle(), |_| Echo);
        echo.send(Ping).await.unwrap(); // started: its mailbox is unbounded
        echo.do_send(Block(GATE));
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let done = Rc::new(Cell::new(0));
        let heap_before = heap();
        let start = Instant::now();
        for _ in 0..count {
            let echo = echo.clone();
            let done = done.clone();
            actix_rt::spawn(async move {
                echo.send(Ping).await.unwrap();
                done.set(done.get() + 1);
            });
        }
        actix_rt::time::sleep_until((start + GATE - GATE / 5).into()).await;
        let heap_queued = heap();
        wait_until(|| done.get() >= count, start + Duration::from_secs(10)).await;
        arbiter.stop();
        (heap_queued - heap_before) as f64 / count as f64
    });
    per_waiter
}

/// Blocks the arbiter's thread, so that messages pile up in a mailbox.
struct Block(Duration);

impl Message for Block {
    type Result = ();
}

impl Handler<Block> for Echo {
    type Result = ();

    fn handle(&mut self, Block(duration): Block, _: &mut Context<Self>) {
        std::thread::sleep(duration);
    }
}
