//! The bucket's one timer: when to wake, and what wakes it.
//!
//! The core plans each wake-up as a window ([`Wake`]): from the instant the head of a
//! queue becomes due to the instant its bucket would run dry. Tokio's timer, which
//! actix's `run_later` uses, fires on the first millisecond tick after a deadline and
//! can be 2 ms late; a bucket whose window is shorter than that would lose rate on it.
//! So where the platform has one (Linux), the bucket wakes on a `timerfd` registered
//! with tokio's reactor, which is punctual to the microsecond, and aims into the window so
//! that it wakes at most about once per tick when grants are dense. Elsewhere it sleeps
//! on tokio's timer and, when a window is shorter than the timer's lateness, yields to the
//! runtime through the last [`SPIN_WINDOW`] before the head is due. On tokio's paused
//! clock (in tests), and with `precise_timing(false)`, it sleeps on tokio's timer until the
//! window opens: the paused clock lands there exactly.

#[cfg(target_os = "linux")]
mod timerfd;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake as WakeTask, Waker};
use std::time::Duration;

use actix_rt::time::{sleep_until, Instant, Sleep};
use futures::task::AtomicWaker;

use crate::core::{Time, Wake};
use crate::TIMER_TICK as TICK;

/// Tokio's timer can fire up to this late: it wakes on the first millisecond tick at or
/// after a deadline, and the runtime rounds its park timeout up to a millisecond too.
const SPIN_WINDOW: Duration = Duration::from_millis(2);

/// When grants are dense, the precise timer wakes at most about once per this long (and
/// never later than half a window's slack): as often as tokio's own timer would.
const WAKE_GAP: Duration = TICK;

/// The longest single sleep: tokio's own cap. A bucket due later wakes, finds nothing
/// due, and sleeps again.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

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

/// The timer of one front end: wakes its task within the window of the next wake-up.
#[derive(Debug)]
pub(crate) struct Alarm {
    precise: bool,
    /// Tokio's clock stands still while the real one moves (re-checked at every firing).
    clock_paused: bool,
    sleep: Pin<Box<Sleep>>,
    /// What the sleep is set to, if it is in use.
    sleep_armed: Option<Instant>,
    #[cfg(target_os = "linux")]
    fine: Fine,
    /// When the alarm last fired.
    last_fired: Option<Instant>,
    /// Where the precise timer aims now.
    aimed: Option<Instant>,
    /// A timer armed exactly for the target of this window holds `fired`'s waker: until
    /// it fires, a poll for the same window has nothing to look at, not even the clock.
    registered: Option<Wake>,
    /// The waker given to the timers: notes that a timer fired, then wakes the task.
    fired: Arc<Fired>,
}

/// Tells a poll woken by the timer from one woken by a message.
#[derive(Debug, Default)]
struct Fired {
    flag: AtomicBool,
    task: AtomicWaker,
}

impl WakeTask for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Alarm {
    /// `precise`: wake within the window to the microsecond where the platform allows
    /// (else on tokio's timer alone).
    pub(crate) fn new(precise: bool) -> Self {
        Self {
            fired: Arc::default(),
            precise,
            clock_paused: clock_is_paused(),
            sleep: Box::pin(sleep_until(Instant::now() + FAR_FUTURE)),
            sleep_armed: None,
            #[cfg(target_os = "linux")]
            fine: Fine::Untried,
            last_fired: None,
            aimed: None,
            registered: None,
        }
    }

    /// Ready once it is time to serve for `wake` (on tokio's clock); otherwise arranges
    /// for `task` to be woken then.
    pub(crate) fn poll(&mut self, clock: &Clock, wake: Wake, task: &mut Context<'_>) -> Poll<()> {
        if self.registered == Some(wake) {
            // Polled on the way through a message: unless the timer set for this window
            // has fired, its target has not come. The waker goes in before the flag is
            // read, so that a firing in between is seen now or wakes this task.
            self.fired.task.register(task.waker());
            if !self.fired.flag.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        loop {
            let now = Instant::now();
            let earliest = clock.instant(wake.earliest);
            let target = self.target(earliest, clock.instant(wake.latest), now);
            if now >= target {
                self.last_fired = Some(now);
                self.aimed = None;
                self.registered = None;
                self.clock_paused = clock_is_paused();
                return Poll::Ready(());
            }
            match self.wait(earliest, target, wake, now, task) {
                // The clock may have been paused since the timer was set.
                Poll::Ready(()) => self.clock_paused = clock_is_paused(),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Called when the front end starts to need its timer: looks again whether tokio's
    /// clock is paused (a test may pause it after creating the bucket).
    pub(crate) fn start(&mut self) {
        self.clock_paused = clock_is_paused();
    }

    /// Stops every timer: an idle front end is woken by nothing.
    pub(crate) fn disarm(&mut self) {
        if self.sleep_armed.take().is_some() {
            self.sleep.as_mut().reset(Instant::now() + FAR_FUTURE);
        }
        self.aimed = None;
        self.registered = None;
        #[cfg(target_os = "linux")]
        if let Fine::Ready(fine) = &mut self.fine {
            fine.disarm();
        }
    }

    /// When to serve for a window from `earliest` to `latest`.
    fn target(&mut self, earliest: Instant, latest: Instant, now: Instant) -> Instant {
        if !self.fine_available() {
            return earliest;
        }
        // Coalesce dense grants: no sooner than a gap after the last firing, and no
        // later than halfway through the slack, which leaves the other half for the
        // timer's own lateness. Where it aims already serves the window, it stays: the
        // window moves with every grant made on the way through a message, and setting
        // the timer again each time would cost a system call per grant.
        let halfway = earliest + (latest.saturating_duration_since(earliest) / 2);
        if let Some(aimed) = self
            .aimed
            .filter(|aimed| (earliest..=halfway).contains(aimed))
        {
            return aimed;
        }
        let after_gap = self.last_fired.map_or(now, |fired| fired + WAKE_GAP);
        let target = after_gap.clamp(earliest, halfway.max(earliest));
        self.aimed = Some(target);
        target
    }

    /// Whether to wake on the fine timer: in precise mode, on a clock that runs, where
    /// one can be had.
    fn fine_available(&mut self) -> bool {
        #[cfg(target_os = "linux")]
        if self.precise && !self.clock_paused {
            if let Fine::Untried = self.fine {
                self.fine = timerfd::FineTimer::new().map_or_else(
                    || {
                        log::debug!("no timerfd here: precise timing uses tokio's timer");
                        Fine::Unavailable
                    },
                    Fine::Ready,
                );
            }
            return matches!(self.fine, Fine::Ready(_));
        }
        false
    }

    /// Sleeps towards `target`; Ready if the timer fired (the caller then looks again).
    fn wait(
        &mut self,
        earliest: Instant,
        target: Instant,
        wake: Wake,
        now: Instant,
        task: &mut Context<'_>,
    ) -> Poll<()> {
        // Cleared before the waker goes in: a stale firing in between then still wakes
        // the task, which finds the flag set and looks at the clock.
        self.fired.flag.store(false, Ordering::Release);
        self.fired.task.register(task.waker());
        let waker = Waker::from(self.fired.clone());
        let mut timer_task = Context::from_waker(&waker);
        #[cfg(target_os = "linux")]
        if self.fine_available() {
            if let Fine::Ready(fine) = &mut self.fine {
                let poll = fine.poll_until(target - now, target, &mut timer_task);
                self.registered = poll.is_pending().then_some(wake);
                return poll;
            }
        }
        let alarm = if self.clock_paused {
            // The paused clock jumps by whole ticks from where it stands, to the tick of
            // tokio's timer wheel at or after the deadline: aiming just over a tick before
            // the target lands on the first instant of its own grid at or after it (in two
            // steps at most).
            earliest.checked_sub(TICK).unwrap_or(now).max(now) + Duration::from_nanos(1)
        } else if self.precise && wake.latest.since(wake.earliest) < SPIN_WINDOW {
            // Tokio's timer would be late: sleep to just before the window, then yield to
            // the runtime until it opens.
            match earliest.checked_sub(SPIN_WINDOW) {
                Some(before) if before > now => before,
                _ => {
                    self.registered = None;
                    task.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        } else {
            target
        };
        if self.sleep_armed != Some(alarm) {
            self.sleep.as_mut().reset(alarm);
            self.sleep_armed = Some(alarm);
        }
        let poll = self.sleep.as_mut().poll(&mut timer_task);
        // Only a sleep aimed at the target itself may be left alone until it fires.
        self.registered = (poll.is_pending() && alarm == target).then_some(wake);
        poll
    }
}

/// The fine timer, created on first use.
#[cfg(target_os = "linux")]
#[derive(Debug)]
enum Fine {
    Untried,
    Unavailable,
    Ready(timerfd::FineTimer),
}

/// Whether tokio's clock is paused (`tokio::time::pause`, in tests): it stands still while
/// the real clock moves.
fn clock_is_paused() -> bool {
    let tokio_before = Instant::now();
    let real_before = std::time::Instant::now();
    for _ in 0..10_000 {
        if std::time::Instant::now() != real_before {
            return Instant::now() == tokio_before;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    /// A runtime with tokio's timer and reactor, as actix's.
    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The window from `from` to `to` after now.
    fn window(clock: &Clock, from: Duration, to: Duration) -> Wake {
        let now = clock.now().1;
        Wake {
            earliest: now.after(from),
            latest: now.after(to),
        }
    }

    /// Waits on `alarm` for a window `from` to `to` after now; returns how long after the
    /// window opened the alarm fired.
    async fn fire(alarm: &mut Alarm, from: Duration, to: Duration) -> Duration {
        let clock = Clock::new();
        let wake = window(&clock, from, to);
        poll_fn(|task| alarm.poll(&clock, wake, task)).await;
        let fired = clock.now().1;
        assert!(fired >= wake.earliest, "fired before its window");
        fired.since(wake.earliest)
    }

    /// Each way of waking fires within its window, never before it, in real time (with a
    /// generous bound for a loaded machine).
    #[test]
    fn every_timer_fires_in_its_window_and_never_before() {
        current_thread().block_on(async {
            let mut precise = Alarm::new(true);
            let mut timer_only = Alarm::new(false);
            let mut fallback = Alarm::new(true);
            #[cfg(target_os = "linux")]
            {
                fallback.fine = Fine::Unavailable;
            }
            let (ms, bound) = (Duration::from_millis, Duration::from_millis(50));
            // A short window (the fallback yields through it) and a wide one (it sleeps).
            for (from, to) in [(ms(3), ms(4)), (ms(3), ms(30))] {
                assert!(fire(&mut precise, from, to).await < bound);
                assert!(fire(&mut timer_only, from, to).await < bound);
                assert!(fire(&mut fallback, from, to).await < bound);
            }
            precise.disarm();
        });
    }

    /// Polls that come from elsewhere (a message) while the timer stands neither make it
    /// fire before its window nor lose its firing.
    #[test]
    fn polls_between_firings_neither_fire_early_nor_miss_the_timer() {
        current_thread().block_on(async {
            for precise in [true, false] {
                let mut alarm = Alarm::new(precise);
                let clock = Clock::new();
                let wake = window(&clock, Duration::from_millis(3), Duration::from_millis(30));
                let mut polls = 0;
                let fire = poll_fn(|task| {
                    polls += 1;
                    let poll = alarm.poll(&clock, wake, task);
                    // As if a message came in: the task is polled again at once.
                    task.waker().wake_by_ref();
                    poll
                });
                tokio::time::timeout(Duration::from_secs(2), fire)
                    .await
                    .expect("the alarm missed its timer");
                let fired = clock.now().1;
                assert!(fired >= wake.earliest, "fired before its window");
                assert!(fired.since(wake.earliest) < Duration::from_millis(50));
                assert!(polls > 2, "polled {polls} times: no poll came between");
                alarm.disarm();
            }
        });
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl WakeTask for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A poll that finds the timer standing still hands it the waker it was given, as a
    /// future must: the firing wakes whoever polled last.
    #[test]
    fn the_firing_wakes_the_waker_of_the_last_poll() {
        current_thread().block_on(async {
            for precise in [true, false] {
                let mut alarm = Alarm::new(precise);
                let clock = Clock::new();
                let wake = window(&clock, Duration::from_millis(3), Duration::from_millis(30));
                let (first, last) = (Arc::new(Counting::default()), Arc::new(Counting::default()));
                for polled_by in [&first, &last] {
                    let waker = Waker::from(polled_by.clone());
                    let poll = alarm.poll(&clock, wake, &mut Context::from_waker(&waker));
                    assert!(poll.is_pending());
                }
                tokio::time::sleep(Duration::from_millis(50)).await; // the timer fires
                assert_eq!(first.0.load(Ordering::SeqCst), 0, "precise: {precise}");
                assert_eq!(last.0.load(Ordering::SeqCst), 1, "precise: {precise}");
                let waker = Waker::from(last.clone());
                let poll = alarm.poll(&clock, wake, &mut Context::from_waker(&waker));
                assert!(poll.is_ready());
            }
        });
    }

    #[test]
    fn a_paused_clock_is_told_from_a_running_one() {
        current_thread().block_on(async {
            assert!(!clock_is_paused());
            tokio::time::pause();
            assert!(clock_is_paused());
            tokio::time::resume();
            assert!(!clock_is_paused());
        });
    }
}
