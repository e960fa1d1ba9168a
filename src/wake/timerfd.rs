//! A wake-up source finer than tokio's timer: a Linux `timerfd` on tokio's reactor.

use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_rt::time::Instant;
use timerfd::{ClockId, SetTimeFlags, TimerFd, TimerState};
use tokio::io::unix::AsyncFd;

/// A one-shot timer on `CLOCK_MONOTONIC`, whose expiry makes its file descriptor
/// readable, and so wakes the task that polled it through tokio's reactor, whatever the
/// tick of tokio's own timer.
#[derive(Debug)]
pub(super) struct FineTimer {
    fd: AsyncFd<TimerFd>,
    /// What it is set to, if anything.
    armed: Option<Instant>,
}

impl FineTimer {
    /// A timer, if the platform and the runtime allow one (a runtime without its I/O
    /// driver does not; every actix `System` has one).
    pub(super) fn new() -> Option<Self> {
        let timer = TimerFd::new_custom(ClockId::Monotonic, true, true).ok()?;
        // `AsyncFd::new` is deprecated because a type could hand it a different file
        // descriptor each time it is asked; a `TimerFd` owns one and always gives that
        // one. Tokio panics, rather than answering an error, in a runtime without its
        // I/O driver: that is caught, and the bucket falls back to tokio's timer.
        #[allow(deprecated)]
        let registered = std::panic::catch_unwind(AssertUnwindSafe(|| AsyncFd::new(timer)));
        let fd = registered.ok()?.ok()?;
        Some(Self { fd, armed: None })
    }

    /// Sets the timer to fire `after` from now (meaning the instant `at`), unless it is
    /// already set for `at`; Ready once it has fired.
    pub(super) fn poll_until(
        &mut self,
        after: Duration,
        at: Instant,
        task: &mut Context<'_>,
    ) -> Poll<()> {
        if self.armed != Some(at) {
            // A zero expiry would disarm the timer: a nanosecond is the least it waits.
            let after = after.max(Duration::from_nanos(1));
            self.fd
                .get_mut()
                .set_state(TimerState::Oneshot(after), SetTimeFlags::Default);
            self.armed = Some(at);
        }
        loop {
            let Poll::Ready(ready) = self.fd.poll_read_ready(task) else {
                return Poll::Pending;
            };
            let Ok(mut guard) = ready else {
                // The reactor failed us: wake now, and let the caller look at the clock.
                self.armed = None;
                return Poll::Ready(());
            };
            let expirations = guard.get_inner().read();
            guard.clear_ready();
            if expirations > 0 {
                self.armed = None;
                return Poll::Ready(());
            }
        }
    }

    /// Where the timer is set, if anywhere.
    pub(super) fn armed(&self) -> Option<Instant> {
        self.armed
    }

    /// Stops the timer, so that it wakes nobody.
    pub(super) fn disarm(&mut self) {
        if self.armed.take().is_some() {
            self.fd
                .get_mut()
                .set_state(TimerState::Disarmed, SetTimeFlags::Default);
        }
    }
}
