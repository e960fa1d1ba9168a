//! The alarm of one front end: sleeps on the fine timer or on tokio's, and tells a poll
//! woken by its own firing from one that comes on the way through a message.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use actix_rt::time::{sleep_until, Instant, Sleep};
use futures::task::AtomicWaker;

#[cfg(target_os = "linux")]
use super::aim::next_hop;
use super::aim::{hops_needed, Aim, LATE_WAKE};
use super::clock::{PauseWatch, FAR_FUTURE};
#[cfg(target_os = "linux")]
use super::timerfd::FineTimer;
use super::{Clock, TIMER_TICK};
use crate::core::Window;

/// The timer of one front end: wakes its task within the window of the next wake-up.
#[derive(Debug)]
pub(crate) struct Alarm {
    precise: bool,
    /// Whether tokio's clock stands still while the real one moves: looked at when the
    /// timer starts, at every firing, and while it yields.
    clock: PauseWatch,
    sleep: Pin<Box<Sleep>>,
    /// What the sleep is set to, if it is in use.
    sleep_armed: Option<Instant>,
    #[cfg(target_os = "linux")]
    fine: Fine,
    aim: Aim,
    /// A timer armed for this window, at its target or at a hop before it, holds
    /// `fired`'s waker: until it fires, a poll for the same window has nothing to look at,
    /// not even the clock.
    registered: Option<Window>,
    /// The waker given to the timers: notes that a timer fired, then wakes the task.
    fired: Arc<Fired>,
}

/// Tells a poll woken by the timer from one woken by a message.
#[derive(Debug, Default)]
struct Fired {
    flag: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The fine timer, created on first use.
#[cfg(target_os = "linux")]
#[derive(Debug)]
enum Fine {
    Untried,
    Unavailable,
    Ready(FineTimer),
}

impl Alarm {
    /// `precise`: wake within the window to the microsecond where the platform allows
    /// (else on tokio's timer alone).
    pub(crate) fn new(precise: bool) -> Self {
        Self {
            fired: Arc::default(),
            precise,
            clock: PauseWatch::new(),
            sleep: Box::pin(sleep_until(Instant::now() + FAR_FUTURE)),
            sleep_armed: None,
            #[cfg(target_os = "linux")]
            fine: Fine::Untried,
            aim: Aim::default(),
            registered: None,
        }
    }

    /// Ready once it is time to serve for `window` (on tokio's clock); otherwise arranges
    /// for `task` to be woken then.
    pub(crate) fn poll(
        &mut self,
        clock: &Clock,
        window: Window,
        task: &mut Context<'_>,
    ) -> Poll<()> {
        if self.registered == Some(window) {
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
            let (earliest, latest) = (clock.instant(window.earliest), clock.instant(window.latest));
            let hops = hops_needed(earliest, latest);
            let target = if self.fine_available() {
                self.aim.target(earliest, latest, hops, now)
            } else {
                earliest
            };
            if now >= target {
                self.aim.fired(now);
                self.registered = None;
                // A test may have paused (or resumed) the clock since the timer was set.
                self.clock.look();
                return Poll::Ready(());
            }
            if self
                .wait(earliest, target, hops, window, now, task)
                .is_pending()
            {
                return Poll::Pending;
            }
        }
    }

    /// Called when the front end starts to need its timer: looks again whether tokio's
    /// clock is paused (a test may pause it after creating the bucket).
    pub(crate) fn start(&mut self) {
        self.clock.check();
    }

    /// Stops every timer: an idle front end is woken by nothing.
    pub(crate) fn disarm(&mut self) {
        if self.sleep_armed.take().is_some() {
            self.sleep.as_mut().reset(Instant::now() + FAR_FUTURE);
        }
        self.aim.forget();
        self.registered = None;
        #[cfg(target_os = "linux")]
        if let Fine::Ready(fine) = &mut self.fine {
            fine.disarm();
        }
    }

    /// Whether to wake on the fine timer: in precise mode, on a clock that runs, where
    /// one can be had.
    fn fine_available(&mut self) -> bool {
        #[cfg(target_os = "linux")]
        if self.precise && !self.clock.is_paused() {
            if let Fine::Untried = self.fine {
                self.fine = FineTimer::new().map_or_else(
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
        hops: bool,
        window: Window,
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
                let alarm = if hops {
                    next_hop(now, target, fine.armed())
                } else {
                    target
                };
                let poll = fine.poll_until(alarm - now, alarm, &mut timer_task);
                if poll.is_ready() {
                    self.clock.look();
                }
                // Until this alarm fires, nothing is due: a hop comes before the target.
                self.registered = poll.is_pending().then_some(window);
                return poll;
            }
        }
        let alarm = if self.clock.is_paused() {
            // The paused clock jumps by whole ticks from where it stands, to the tick of
            // tokio's timer wheel at or after the deadline: aiming just over a tick before
            // the target lands on the first instant of its own grid at or after it (in two
            // steps at most).
            earliest.checked_sub(TIMER_TICK).unwrap_or(now).max(now) + Duration::from_nanos(1)
        } else if self.precise && window.latest.since(window.earliest) < LATE_WAKE {
            // Tokio's timer would be late: sleep to just before the window, then yield to
            // the runtime until it opens.
            match earliest.checked_sub(LATE_WAKE) {
                Some(before) if before > now => before,
                _ => {
                    self.registered = None;
                    // A paused clock would never move while this task keeps itself ready.
                    self.clock.look();
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
        if poll.is_ready() {
            self.clock.look();
        }
        // Only a sleep aimed at the target itself may be left alone until it fires.
        self.registered = (poll.is_pending() && alarm == target).then_some(window);
        poll
    }
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
    fn window(clock: &Clock, from: Duration, to: Duration) -> Window {
        let now = clock.now().1;
        Window {
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

    /// Each mode with a wide window and with one short enough that the precise timer hops
    /// (windows in milliseconds from now).
    fn both_modes_and_windows() -> impl Iterator<Item = (bool, (u64, u64))> {
        [true, false]
            .into_iter()
            .flat_map(|precise| [(20, 50), (20, 21)].map(|window| (precise, window)))
    }

    /// Polls that come from elsewhere (a message) while the timer stands neither make it
    /// fire before its window nor lose its firing.
    #[test]
    fn polls_between_firings_neither_fire_early_nor_miss_the_timer() {
        current_thread().block_on(async {
            for (precise, (from, to)) in both_modes_and_windows() {
                let mut alarm = Alarm::new(precise);
                let clock = Clock::new();
                let wake = window(
                    &clock,
                    Duration::from_millis(from),
                    Duration::from_millis(to),
                );
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

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A poll that finds the timer standing still hands it the waker it was given, as a
    /// future must: the firing wakes whoever polled last.
    #[test]
    fn the_firing_wakes_the_waker_of_the_last_poll() {
        current_thread().block_on(async {
            for (precise, (from, to)) in both_modes_and_windows() {
                let mut alarm = Alarm::new(precise);
                let clock = Clock::new();
                let wake = window(
                    &clock,
                    Duration::from_millis(from),
                    Duration::from_millis(to),
                );
                let (first, last) = (Arc::new(Counting::default()), Arc::new(Counting::default()));
                for polled_by in [&first, &last] {
                    let waker = Waker::from(polled_by.clone());
                    let poll = alarm.poll(&clock, wake, &mut Context::from_waker(&waker));
                    assert!(poll.is_pending());
                }
                tokio::time::sleep(Duration::from_millis(100)).await; // the timer fires
                assert_eq!(first.0.load(Ordering::SeqCst), 0, "precise: {precise}");
                assert_eq!(last.0.load(Ordering::SeqCst), 1, "precise: {precise}");
                let waker = Waker::from(last.clone());
                let poll = alarm.poll(&clock, wake, &mut Context::from_waker(&waker));
                assert!(poll.is_ready());
            }
        });
    }

    /// How the fine timer was set while an alarm was polled.
    #[cfg(target_os = "linux")]
    #[derive(Debug, Default)]
    struct Sets {
        polls: u32,
        /// Times the timer was set to a new instant.
        sets: u32,
        /// Times it was set anew while the instant it was set to had not yet come.
        before_due: u32,
    }

    /// Polls `alarm` for a window that moves by 100 ns at every poll, up to 20 us in all (as
    /// grants made on the way through messages move it), until it fires.
    #[cfg(target_os = "linux")]
    async fn poll_a_moving_window(alarm: &mut Alarm, from: Duration, to: Duration) -> Sets {
        let clock = Clock::new();
        let start = window(&clock, from, to);
        let (mut seen, mut armed) = (Sets::default(), None);
        poll_fn(|task| {
            let shift = Duration::from_nanos(100 * u64::from(seen.polls.min(200)));
            let wake = Window {
                earliest: start.earliest.after(shift),
                latest: start.latest.after(shift),
            };
            seen.polls += 1;
            let poll = alarm.poll(&clock, wake, task);
            // Read after the poll: whatever it set, it set before this instant.
            let now = Instant::now();
            if let Fine::Ready(fine) = &alarm.fine {
                if fine.armed().is_some() && fine.armed() != armed {
                    seen.sets += 1;
                    if armed.is_some_and(|armed| armed > now) {
                        seen.before_due += 1;
                    }
                }
                armed = fine.armed();
            }
            task.waker().wake_by_ref(); // as if a message came in
            poll
        })
        .await;
        seen
    }

    /// A message passing through between hops leaves the timer where it is: it is set anew
    /// only once the instant it was set to has come.
    #[cfg(target_os = "linux")]
    #[test]
    fn polls_between_hops_do_not_set_the_timer_again() {
        current_thread().block_on(async {
            let mut alarm = Alarm::new(true);
            let seen = poll_a_moving_window(
                &mut alarm,
                Duration::from_millis(1),
                Duration::from_millis(2),
            )
            .await;
            assert!(matches!(alarm.fine, Fine::Ready(_)), "no timerfd here");
            assert_eq!(seen.before_due, 0, "{seen:?}");
            // Each hop is set at least a hop after the last: at most six to the window, which
            // opens 1 ms ahead (and 20 us), whatever the number of polls.
            assert!((1..=7).contains(&seen.sets), "{seen:?}");
        });
    }

    /// A clock paused while the fine timer is set is noticed when the timer fires (tokio's
    /// clock then stands short of the instant it was set for): the alarm goes on, on tokio's
    /// paused timer, and fires in its window instead of waiting for ever.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_clock_paused_while_the_fine_timer_is_set_is_noticed_when_it_fires() {
        let (report, reports) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            current_thread().block_on(async {
                let mut alarm = Alarm::new(true);
                let clock = Clock::new();
                let wake = window(&clock, Duration::from_millis(5), Duration::from_millis(50));
                let waker = Waker::from(Arc::new(Counting::default()));
                let first = alarm.poll(&clock, wake, &mut Context::from_waker(&waker));
                assert!(first.is_pending());
                assert!(matches!(alarm.fine, Fine::Ready(_)), "no timerfd here");
                tokio::time::pause();
                poll_fn(|task| alarm.poll(&clock, wake, task)).await;
                let fired = clock.now().1;
                report
                    .send((fired >= wake.earliest, alarm.clock.is_paused()))
                    .unwrap();
            });
        });
        let outcome = reports.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            outcome,
            Ok((true, true)),
            "fired in its window, on the paused clock"
        );
    }

    /// A clock paused while the fine timer is set, and moved past the alarm by tokio's
    /// auto-advance to another timer, is noticed at the firing all the same: the next
    /// window is served on tokio's paused timer, within it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_clock_paused_and_moved_past_the_alarm_by_another_timer_is_noticed() {
        let (report, reports) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = current_thread();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async {
                let mut alarm = Alarm::new(true);
                let clock = Clock::new();
                let first = window(&clock, Duration::from_millis(5), Duration::from_millis(50));
                let waker = Waker::from(Arc::new(Counting::default()));
                assert!(alarm
                    .poll(&clock, first, &mut Context::from_waker(&waker))
                    .is_pending());
                tokio::time::pause();
                tokio::task::spawn_local(tokio::time::sleep(Duration::from_millis(100)));
                poll_fn(|task| alarm.poll(&clock, first, task)).await;
                let paused = alarm.clock.is_paused();
                let second = window(&clock, Duration::from_millis(5), Duration::from_millis(50));
                poll_fn(|task| alarm.poll(&clock, second, task)).await;
                let fired = clock.now().1;
                let in_window = fired >= second.earliest && fired <= second.latest;
                report.send((paused, in_window)).unwrap();
            });
        });
        let outcome = reports.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            outcome,
            Ok((true, true)),
            "noticed, and the next window met"
        );
    }

    /// Without a fine timer, a short window is approached by yielding to the runtime; a
    /// clock paused meanwhile is noticed there, instead of yielding for ever on a clock
    /// that a ready task keeps from moving.
    #[test]
    fn a_clock_paused_while_the_fallback_yields_is_noticed() {
        let (report, reports) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            current_thread().block_on(async {
                let mut alarm = Alarm::new(true);
                #[cfg(target_os = "linux")]
                {
                    alarm.fine = Fine::Unavailable;
                }
                let clock = Clock::new();
                let wake = window(&clock, Duration::from_millis(1), Duration::from_millis(2));
                let waker = Waker::from(Arc::new(Counting::default()));
                assert!(alarm
                    .poll(&clock, wake, &mut Context::from_waker(&waker))
                    .is_pending());
                tokio::time::pause();
                poll_fn(|task| alarm.poll(&clock, wake, task)).await;
                let fired = clock.now().1;
                report.send(fired >= wake.earliest).unwrap();
            });
        });
        let outcome = reports.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            outcome,
            Ok(true),
            "fired in its window, on the paused clock"
        );
    }
}
