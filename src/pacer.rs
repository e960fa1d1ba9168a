use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::ActorFuture;
use actix_rt::time::{sleep_until, Instant, Sleep};

use crate::BucketActor;

/// Tokio's timer wakes on the first millisecond tick at or after a deadline.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// The bucket's one timer: wakes the actor when the head of the queue is due, or as soon
/// as the head's caller gives up.
///
/// It lives on the actor's context while anyone waits and ends when the queue is empty,
/// so an idle bucket has no timer and no wake-ups. Actix polls it after every message, so
/// it follows the actor's `wake_at` by resetting its sleep rather than arming another.
///
/// The timer alone would grant up to a tick late, and a late grant is lost to the rate
/// whenever the bucket would have drained below empty. So the pacer sleeps until one tick
/// before the head is due and yields until the due instant. On a paused clock, which does
/// not move while anything is runnable, it sees the clock stand still and sleeps instead.
pub(crate) struct Pacer {
    sleep: Pin<Box<Sleep>>,
    /// The clock at the last poll that yielded instead of sleeping.
    yielded_at: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(deadline: Instant) -> Self {
        Self {
            sleep: Box::pin(sleep_until(deadline)),
            yielded_at: None,
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
                bucket.grant_due(now, ctx);
                continue;
            }
            let clock_stands_still = this.yielded_at == Some(now);
            if due - now <= TIMER_RESOLUTION && !clock_stands_still {
                this.yielded_at = Some(now);
                task.waker().wake_by_ref();
                return Poll::Pending;
            }
            let alarm = if clock_stands_still {
                due
            } else {
                due - TIMER_RESOLUTION
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
