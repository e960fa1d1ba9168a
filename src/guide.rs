//! The long-form guide: what every answer means, how the timing works, how to test code
//! that uses a bucket, and how this crate differs from limitor.
//!
//! # Semantics
//!
//! **Rate.** A bucket of capacity `C` per period `P` leaks `C / P` per second. Its level
//! starts at 0, so a burst of `C` is granted at once; afterwards grants follow the leak.
//! In every window of length `t`, the amount granted is at most `C + C/P × t`, net of what
//! [`Reconcile`](crate::Reconcile) refunds or charges. The level is kept to twice the
//! precision of a float, so no rounding accumulates over any number of grants; a request
//! fits when `level + amount <= C` to within 2^-50 of `C` (between 4 and 8 units in the
//! last place of `C`, exactly 4 when `C` is a power of two: what the final comparison in
//! floats needs), and the bound above holds to that tolerance. Waits are rounded up to the nanosecond; fractional amounts and
//! capacities work.
//!
//! **Strict FIFO.** Requests are granted in the order the actor received them, whatever
//! their amounts: a small request never overtakes a large one ahead of it.
//!
//! **Timeouts count from receipt.** When the queue ahead makes a timeout impossible, the
//! bucket answers [`AcquireError::Timeout`](crate::AcquireError::Timeout) at once, with the
//! projected wait as `retry_after`, rather than holding the caller until the timeout runs
//! out. A timeout that can be met is admitted, and the grant comes at the projected
//! instant, unless a later debt or a slower reconfiguration delays it past its deadline:
//! then it is answered `Timeout` one [`TIMER_TICK`](crate::TIMER_TICK) after the deadline.
//! `Duration::MAX` (or any timeout too long to represent) is no timeout; a zero timeout is
//! a try-acquire ([`BucketHandle::try_acquire`](crate::BucketHandle::try_acquire)). Waits
//! are computed over the whole range of a `Duration`.
//!
//! **Cancellation costs nothing.** A caller that drops its `send` future (or wraps it in
//! its own timeout) loses its place: no capacity is consumed for it, and those behind move
//! up. A single bucket notices at once when the caller at the head of its queue leaves;
//! callers deeper in the queue are skipped when their turn comes, and the bucket removes
//! them before any answer that depends on who waits (a `Timeout` or `QueueFull` refusal, a
//! [`Capacity`](crate::Capacity)), so nobody is refused or misinformed on their account.
//! Finding them costs a pass over the queue only when someone has actually left since the
//! last look.
//!
//! **Bounded queue.** With [`max_queue(n)`](crate::BucketActor::max_queue), a request that
//! would be the n+1-th waiter is answered `QueueFull` at once, with the time until the head
//! leaves as `retry_after`. Requests granted at once never count.
//!
//! **Bad input.** An amount that is NaN, infinite, negative or above the capacity is
//! `InvalidAmount` and changes nothing; 0 (and −0) is granted in its turn.
//! [`BucketConfig`](crate::BucketConfig) rejects a capacity that is not finite or below 1,
//! a zero period, a rate that overflows, a rate that is not positive, and a rate and burst
//! whose period is shorter than a nanosecond or longer than a `Duration`. Any longer period
//! is a bucket: with `Duration::MAX` it is a budget that, in practice, never refills.
//! `CapacityInfo` is a question, not a request, and never fails: for an amount that can
//! never be granted its `wait` is `None` (its `has_capacity` is the arithmetic alone, so a
//! negative amount "fits").
//!
//! **Costs known only afterwards.** [`Reconcile`](crate::Reconcile) refunds a lower actual
//! cost at once (the level drops, never below zero, and every waiter that now fits is
//! granted in the same instant) and charges a higher one at once as debt (the level may
//! rise above the capacity; the waiters behind wait for it to leak: a debt of `d` delays
//! them by `d / rate`). limitor instead makes the caller wait to acquire the difference; a
//! cost already spent cannot wait. [`BucketHandle::metered`](crate::BucketHandle::metered)
//! acquires an estimate, runs a call and reconciles what it really cost.
//!
//! **Reconfiguring.** [`Reconfigure`](crate::Reconfigure) applies a new capacity and rate
//! from that instant. The level is kept (leaked at the old rate up to then), so
//! reconfiguring never grants an extra burst; a smaller capacity can leave the level above
//! it, as a debt. A waiter whose amount exceeds the new capacity is answered
//! `InvalidAmount` at once.
//!
//! **Shutdown.** [`Shutdown::graceful`](crate::Shutdown::graceful) serves the requests
//! received before it, in order and at the normal rate, refuses later ones, and replies
//! once the queue is served; then the actor stops.
//! [`Shutdown::immediate`](crate::Shutdown::immediate) answers every waiter at once. After a
//! shutdown a request is answered [`ShuttingDown`](crate::AcquireError::ShuttingDown) while
//! the actor still runs (during a drain, or for good under a `Supervisor`, which restarts a
//! stopped actor as long as an address exists; the bucket then stays closed), and gets
//! [`Stopped`](crate::AcquireError::Stopped) once the actor has stopped (a plain bucket
//! after its shutdown; through `send`, actix's `MailboxError`, which converts into it).
//! Waiters still queued when an immediate shutdown comes, or when the actor ends for any
//! reason, are answered `ShuttingDown`: no waiter is ever left without an answer.
//!
//! **Supervision.** Under `Supervisor`, a restart keeps everything: the level, the queue
//! and the pending replies stay in the actor, and the timer that actix dropped is armed
//! again, so a restart never grants an extra burst and never loses a waiter. Supervision
//! does not cover panics (actix does not catch them); the bucket's handlers do not panic
//! on any input.
//!
//! **Statistics.** [`Stats`](crate::Stats) counts every request the bucket handles once,
//! by its answer. A request whose caller drops it before the bucket receives it is
//! discarded by actix unseen, and counted nowhere.
//!
//! **`do_send`.** A request sent with `do_send` has nobody to answer: it takes its amount
//! if it fits at once, and is otherwise skipped (counted as cancelled, never waiting).
//!
//! **Logging**, through `log`: grants, waits and every refusal at debug (each is an answer
//! the caller receives); the lifecycle (shutdowns, restarts, reconfigurations) at info; a
//! warning only for what nobody else hears of: a cost that `metered` could not settle.
//!
//! # Per-key buckets
//!
//! [`KeyedBucketActor`](crate::KeyedBucketActor) holds one bucket per key, each keeping
//! every promise above, in one actor under one timer. A key whose bucket has leaked to zero
//! with nobody waiting cannot be told apart from a key never seen, so it is dropped: by a
//! sweep when the timer finds every key idle, when the map has doubled since the last
//! sweep, and before [`KeyedStats`](crate::KeyedStats) counts the keys. Memory follows the
//! keys in use, with nothing to configure or call; an idle actor holds no keys and is woken
//! by nothing.
//!
//! One difference from a single bucket: with a head per key, the actor does not watch each
//! head's caller, so a waiter behind a head whose caller left moves up when that head would
//! have been due (or at the next refusal or query for its key), not at once. Nothing is
//! consumed for the departed caller either way. During a graceful shutdown it does watch
//! every waiter, so a drain never waits for callers who have left: it ends as soon as
//! the last caller still there is served or leaves.
//!
//! Per-key FIFO holds because one actor handles its messages in order.
//! [`KeyedBucketHandle::spawn_sharded`](crate::KeyedBucketHandle::spawn_sharded) runs
//! several actors on threads of their own and sends each key always to the same one.
//!
//! # Timing
//!
//! The core plans each wake-up as a window: from the instant the head of a queue fits (or a
//! deadline passes) to the instant its bucket would run dry, after which the leak of the
//! time it stood empty would be lost to the rate. The bucket keeps a single timer for all
//! its waiters (see [`BucketActor`](crate::BucketActor) on `run_later`), re-aimed at that
//! window, and grants everything that fits whenever it wakes, computing the level from the
//! actual clock; it also grants what is due on the way through any message.
//!
//! Tokio's timer, which `run_later` uses, fires on whole milliseconds and can be 2 ms late:
//! a bucket whose window is shorter than that (`rate × 2 ms > capacity − amount`) would
//! lose rate on it. So by default, on Linux, the bucket wakes on a `timerfd` registered
//! with tokio's reactor, which fires within microseconds, and aims no sooner than a
//! millisecond after its last wake-up (180 µs where the window is short, below) and no
//! later than halfway through the window: dense grants are served in batches, with no
//! rate lost. It never spins there.
//!
//! A sleeping thread is only as punctual as the machine wakes it. On a virtual machine, a
//! CPU that halts for longer than about 200 µs is handed back to the host, and can wake
//! milliseconds after its timer fired. So where half the window is shorter than 2 ms,
//! the bucket never halts for longer than 180 µs within 2 ms of its aim, and when grants
//! are dense it serves at every such wake-up: on a virtual machine it spends a few points
//! of CPU on those wake-ups rather than lose the leak of a late one. A stall of the
//! machine longer than the window is lost all the same.
//!
//! On other platforms the bucket sleeps on tokio's timer and, for a window shorter than
//! the timer's lateness, yields to the runtime through the last 2 ms before it. With
//! [`precise_timing(false)`](crate::BucketActor::precise_timing) it sleeps on tokio's
//! timer alone.
//!
//! # Testing code that uses a bucket
//!
//! Enable tokio's `test-util` feature in your dev-dependencies, call
//! `tokio::time::pause()` at the start of an `#[actix_rt::test]`, and start the bucket on
//! the test's arbiter (not on an `Arbiter::new()`, which has a real clock of its own). An
//! hour of waiting then takes no wall time, and the bucket's timer lands exactly on whole
//! milliseconds ([`TIMER_TICK`](crate::TIMER_TICK)) from the start of the runtime: a grant
//! due at a whole millisecond is made exactly then, and one due between two milliseconds on
//! the next. If the bucket would have run empty meanwhile (a request of the whole
//! capacity), that fraction of leak is lost and the grants behind slip by up to a tick each,
//! so prefer periods that the capacity divides into whole milliseconds.
//!
//! ```
//! use std::time::Duration;
//! use actix::Actor;
//! use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};
//!
//! #[actix_rt::main] // in a test: #[actix_rt::test]
//! async fn main() {
//!     tokio::time::pause(); // paused time: the waits below take no wall time
//!     let start = tokio::time::Instant::now();
//!     let bucket = BucketActor::new(BucketConfig::new(10.0, Duration::from_secs(1)).unwrap()).start();
//!     for _ in 0..11 {
//!         bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
//!     }
//!     assert_eq!(start.elapsed(), Duration::from_millis(100));
//! }
//! ```
//!
//! # How it differs from limitor
//!
//! | | limitor `AsyncLeakyBucket` | this crate |
//! |---|---|---|
//! | timeout clock | starts when the worker dequeues the request | starts on receipt |
//! | impossible timeout | waits out the timeout, then fails | answered at once with `retry_after` |
//! | cancelled caller | still served, consumes capacity, can kill the worker | skipped, consumes nothing |
//! | NaN amount | passes validation, the worker loops forever | `InvalidAmount` |
//! | full queue (`max_size`) | the caller blocks on `put` | `QueueFull` at once |
//! | underestimated cost | the caller waits to acquire the difference | charged at once as debt |
//! | wake-ups | one `asyncio.sleep` per wait, late by the event loop's lag | one timer per bucket, within microseconds on Linux |
