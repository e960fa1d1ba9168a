//! The front ends' clock: tokio's, mapped to the core's time values.

use std::time::Duration;

use actix_rt::time::Instant;

use crate::core::Time;

/// The resolution of tokio's timer, on which `run_later` and the bucket's fallback timer
/// sleep: they fire on the first whole tick at or after their deadline.
///
/// A waiter whose deadline has passed is answered [`AcquireError::Timeout`] one tick after
/// it, not at it: a grant that a timer makes late by less than a tick is still a grant.
/// On tokio's paused clock (in tests) every timer fires on a whole tick, counted from the
/// start of the runtime, so a test that checks exact instants needs this value; the
/// [guide](crate::guide#testing-code-that-uses-a-bucket) shows how.
///
/// [`AcquireError::Timeout`]: crate::AcquireError::Timeout
pub const TIMER_TICK: Duration = Duration::from_millis(1);

/// The longest single sleep: tokio's own cap. A bucket due later wakes, finds nothing
/// due, and sleeps again.
pub(super) const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

/// The mapping between tokio's clock and the core's [`Time`]: the core counts from the
/// instant the front end was created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// Tokio's clock now, and the same instant as the core's [`Time`].
    pub(crate) fn now(&self) -> (Instant, Time) {
        let now = Instant::now();
        (now, self.time(now))
    }

    pub(crate) fn time(&self, at: Instant) -> Time {
        Time::since_epoch(at.saturating_duration_since(self.epoch))
    }

    /// `time` on tokio's clock, or the far future if it is beyond the clock's range.
    pub(crate) fn instant(&self, time: Time) -> Instant {
        self.epoch
            .checked_add(time.elapsed())
            .unwrap_or_else(|| Instant::now() + FAR_FUTURE)
    }
}

/// How far tokio's clock and the real one may seem to drift apart between two looks, from
/// the time between two reads alone, while tokio's clock runs.
const CLOCKS_AGREE: Duration = Duration::from_micros(100);

/// Whether tokio's clock is paused, kept current cheaply.
///
/// While tokio's clock runs it is the real clock plus a constant, so both advance alike:
/// a look costs two clock reads, and the exact check ([`clock_is_paused`]) runs only when
/// they have not advanced alike since it last ran (a test paused the clock). While the
/// clock is paused, which happens only in tests, every look is the exact check, so that a
/// resume is seen at once.
#[derive(Debug)]
pub(super) struct PauseWatch {
    paused: bool,
    /// Both clocks as of the last exact check.
    since: (Instant, std::time::Instant),
}

impl PauseWatch {
    pub(super) fn new() -> Self {
        let mut watch = Self {
            paused: false,
            since: (Instant::now(), std::time::Instant::now()),
        };
        watch.check();
        watch
    }

    /// Whether tokio's clock was paused at the last look.
    pub(super) fn is_paused(&self) -> bool {
        self.paused
    }

    /// Looks again: two clock reads, and the exact check if the clocks have drifted apart
    /// or the clock was paused.
    pub(super) fn look(&mut self) {
        if self.paused {
            return self.check();
        }
        let (tokio, real) = (Instant::now(), std::time::Instant::now());
        let (tokio_then, real_then) = self.since;
        let tokio_moved = tokio.saturating_duration_since(tokio_then);
        let real_moved = real.saturating_duration_since(real_then);
        if tokio_moved.abs_diff(real_moved) > CLOCKS_AGREE {
            self.check();
        }
    }

    /// The exact check, now.
    pub(super) fn check(&mut self) {
        self.paused = clock_is_paused();
        self.since = (Instant::now(), std::time::Instant::now());
    }
}

/// Whether tokio's clock is paused (`tokio::time::pause`, in tests): it stands still while
/// the real clock moves. Tokio has no query for this, so it reads both clocks until the
/// real one ticks, which is at once wherever the real clock counts nanoseconds; it gives
/// up, answering no, after a thousand reads.
fn clock_is_paused() -> bool {
    let tokio_before = Instant::now();
    let real_before = std::time::Instant::now();
    for _ in 0..1_000 {
        if std::time::Instant::now() != real_before {
            return Instant::now() == tokio_before;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_and_a_resume_are_seen_at_the_next_look() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut watch = PauseWatch::new();
            assert!(!watch.is_paused());
            watch.look();
            assert!(!watch.is_paused(), "a running clock stays running");
            tokio::time::pause();
            std::thread::sleep(Duration::from_millis(1)); // the real clock moves on
            watch.look();
            assert!(watch.is_paused());
            tokio::time::resume();
            std::thread::sleep(Duration::from_millis(1));
            watch.look();
            assert!(!watch.is_paused());
        });
    }

    #[test]
    fn a_paused_clock_is_told_from_a_running_one() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(!clock_is_paused());
            tokio::time::pause();
            assert!(clock_is_paused());
            tokio::time::resume();
            assert!(!clock_is_paused());
        });
    }
}
