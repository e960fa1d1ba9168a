use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::ActorFuture;
use actix_rt::time::{sleep_until, Instant, Sleep};

use crate::BucketActor;

/// Tokio's timer wakes on the first millisecond tick at or after a deadline, and the
/// runtime's park rounds its timeout up to a millisecond as well: a timer can be up to two
/// milliseconds late. The pacer yields through the last two.
const SPIN_WINDOW: Duration = Duration::from_millis(2);

/// The tick of tokio's timer.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// The bucket's one timer: wakes the actor when the head of the queue is due, or as soon
/// as the head's caller gives up.
///
/// It lives on the actor's context while anyone waits and ends when the queue is empty,
/// so an idle bucket has no timer and no wake-ups. Actix polls it after every message, so
/// it follows the actor's `wake_at` by resetting its sleep rather than arming another.
///
/// The timer alone would grant up to two milliseconds late, and a late grant is lost to
/// the rate whenever the bucket would have drained below empty. So the pacer sleeps until
/// [`SPIN_WINDOW`] before the head is due, then yields to the runtime until the due
/// instant. A paused clock (in tests) does not move while anything is runnable: the pacer
/// sees it stand still and from then on sleeps to the first tick at or after the due
/// instant, where the paused clock lands exactly.
pub(crate) struct Pacer {
    sleep: Pin<Box<Sleep>>,
    /// Whether to yield through the last [`SPIN_WINDOW`] (else: the timer alone).
    precise: bool,
    /// The clock at the last poll that yielded instead of sleeping.
    yielded_at: Option<Instant>,
    clock_paused: bool,
}

impl Pacer {
    pub(crate) fn new(deadline: Instant, precise: bool) -> Self {
        Self {
            sleep: Box::pin(sleep_until(deadline)),
            precise,
            yielded_at: None,
            clock_paused: false,
        }
    }

    /// When to sleep until before `due`; `None` to yield instead.
    fn alarm(&mut self, now: Instant, due: Instant) -> Option<Instant> {
        if !self.precise {
            return Some(due);
        }
        if self.yielded_at == Some(now) {
            self.clock_paused = true;
        }
        if self.clock_paused {
            // The paused clock jumps to the first tick after the sleep's deadline.
            let before_due = due.checked_sub(TICK).unwrap_or(now).max(now);
            Some(before_due + Duration::from_nanos(1))
        } else if due - now > SPIN_WINDOW {
            Some(due - SPIN_WINDOW)
        } else {
            self.yielded_at = Some(now);
            None
        }
    }
}

impl ActorFuture<BucketActor> for Pacer {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        bucket: &mut BucketActor,
        ctx: &mut actix::Context<BucketActor>,
        task: &mut Context<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let Some(due) = bucket.wake_at() else {
                bucket.pacer_ended();
                return Poll::Ready(());
            };
            let now = Instant::now();
            if now >= due || bucket.poll_head_abandoned(task) {
                bucket.serve(now, ctx);
                continue;
            }
            let Some(alarm) = this.alarm(now, due) else {
                task.waker().wake_by_ref();
                return Poll::Pending;
            };
            if this.sleep.deadline() != alarm {
                this.sleep.as_mut().reset(alarm);
            }
            if this.sleep.as_mut().poll(task).is_pending() {
                return Poll::Pending;
            }
        }
    }
}
