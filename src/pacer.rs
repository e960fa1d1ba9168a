use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix::ActorFuture;
use actix_rt::time::{sleep_until, Instant, Sleep};

use crate::BucketActor;

/// The bucket's one timer: wakes the actor when the head of the queue is due, or as soon
/// as the head's caller gives up.
///
/// It lives on the actor's context while anyone waits and ends when the queue is empty,
/// so an idle bucket has no timer and no wake-ups. Actix polls it after every message, so
/// it follows the actor's `wake_at` by resetting its sleep rather than arming another.
pub(crate) struct Pacer {
    sleep: Pin<Box<Sleep>>,
}

impl Pacer {
    pub(crate) fn new(deadline: Instant) -> Self {
        Self {
            sleep: Box::pin(sleep_until(deadline)),
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
            let Some(deadline) = bucket.wake_at() else {
                bucket.pacer_ended();
                return Poll::Ready(());
            };
            if this.sleep.deadline() != deadline {
                this.sleep.as_mut().reset(deadline);
            }
            let due = this.sleep.as_mut().poll(task).is_ready();
            if !due && !bucket.poll_head_abandoned(task) {
                return Poll::Pending;
            }
            bucket.grant_due(Instant::now(), ctx);
        }
    }
}
