//! The bucket's one timer: when to wake, and what wakes it.
//!
//! The core plans each wake-up as a window ([`Wake`]): from the instant the head of a
//! queue becomes due to the instant its bucket would run dry. Tokio's timer, which
//! actix's `run_later` uses, fires on the first millisecond tick after a deadline and
//! can be 2 ms late; a bucket whose window is shorter than that would lose rate on it.
//! So where the platform has one (Linux), the bucket wakes on a `timerfd` registered
//! with tokio's reactor, which is punctual to the microsecond, and aims into the window so
//! that it wakes at most about once per tick when grants are dense. A thread is only as
//! punctual as its CPU wakes, though: on a virtual machine, a CPU that halts for long is
//! handed back to the host and can wake milliseconds late. So where half the window is
//! shorter than that ([`LATE_WAKE`]), the timer aims a [`HOP`] after its last wake-up and
//! approaches its aim in halts of at most a hop, too short for the host to take the CPU.
//! On other platforms it sleeps on tokio's timer and, when a window is shorter than the
//! timer's lateness, yields to the runtime through the last [`LATE_WAKE`] before the head
//! is due. On tokio's paused clock (in tests), and with `precise_timing(false)`, it sleeps
//! on tokio's timer until the window opens: the paused clock lands there exactly.

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

/// How late a sleeping thread can wake. Tokio's timer wakes on the first millisecond tick
/// at or after a deadline, and the runtime rounds its park timeout up to a millisecond
/// too. On a virtual machine, a CPU that halts for longer than about 200 µs can be handed
/// back to the host, whose scheduler may run it again milliseconds after its timer fired.
const LATE_WAKE: Duration = Duration::from_millis(2);

/// When grants are dense, the precise timer wakes at most about once per this long (and
/// never later than half a window's slack): as often as tokio's own timer would.
const WAKE_GAP: Duration = TICK;

/// Where half the window is shorter than [`LATE_WAKE`], the precise timer's gap between
/// wake-ups, and its longest halt within [`LATE_WAKE`] of its aim. KVM, the usual
/// hypervisor, polls a halted virtual CPU for up to 200 µs by default before it hands the
/// CPU back to the host: a halt shorter than that ends within microseconds of the timer,
/// and one longer also cuts the polling of the next few halts.
const HOP: Duration = Duration::from_micros(180);

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
    /// A timer armed for this window, at its target or at a hop before it, holds
    /// `fired`'s waker: until it fires, a poll for the same window has nothing to look at,
    /// not even the clock.
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
            let (earliest, latest) = (clock.instant(wake.earliest), clock.instant(wake.latest));
            let hops = hops_needed(earliest, latest);
            let target = self.target(earliest, latest, hops, now);
            if now >= target {
                self.last_fired = Some(now);
                self.aimed = None;
                self.registered = None;
                self.clock_paused = clock_is_paused();
                return Poll::Ready(());
            }
            match self.wait(earliest, target, hops, wake, now, task) {
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
    /// `hops`: half the window is short (see [`hops_needed`]).
    fn target(&mut self, earliest: Instant, latest: Instant, hops: bool, now: Instant) -> Instant {
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
        // Where a late wake-up would cost rate, the timer hops anyway: when grants are
        // dense it may as well serve at each hop and keep the bucket fuller.
        let gap = if hops { HOP } else { WAKE_GAP };
        let after_gap = self.last_fired.map_or(now, |fired| fired + gap);
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
        hops: bool,
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
                let alarm = if hops {
                    next_hop(now, target, fine.armed())
                } else {
                    target
                };
                let poll = fine.poll_until(alarm - now, alarm, &mut timer_task);
                // Until this alarm fires, nothing is due: a hop comes before the target.
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
        } else if self.precise && wake.latest.since(wake.earliest) < LATE_WAKE {
            // Tokio's timer would be late: sleep to just before the window, then yield to
            // the runtime until it opens.
            match earliest.checked_sub(LATE_WAKE) {
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

/// Whether a window from `earliest` to `latest` is short enough that a wake-up after a
/// long halt, late by up to [`LATE_WAKE`], would run the bucket dry: the slack left after
/// an aim halfway through it is shorter than that.
fn hops_needed(earliest: Instant, latest: Instant) -> bool {
    latest.saturating_duration_since(earliest) / 2 < LATE_WAKE
}

/// Where the fine timer goes next on its way to `target` when it hops: a halt of at most
/// a [`HOP`], unless the target is so far that a long halt's lateness cannot reach it. A
/// long halt ends [`LATE_WAKE`] before the target, which leaves about ten hops: enough for
/// the host's polling, cut by the long halt, to grow back over the first few. An alarm
/// already set (`armed`) stays where it is one of those, so that a message passing
/// through does not cost a system call.
fn next_hop(now: Instant, target: Instant, armed: Option<Instant>) -> Instant {
    let safe_before = target.checked_sub(LATE_WAKE);
    let fits = |alarm: Instant| {
        now < alarm
            && alarm <= target
            && (alarm <= now + HOP || safe_before.is_some_and(|safe| alarm <= safe))
    };
    match armed.filter(|&alarm| fits(alarm)) {
        Some(armed) => armed,
        None => match safe_before.filter(|&safe| safe > now + HOP) {
            Some(safe) => safe,
            None => target.min(now + HOP),
        },
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

    /// The alarms of a hopping approach from `now` to `target`, none set beforehand.
    fn approach(now: Instant, target: Instant) -> Vec<Duration> {
        let (mut at, mut alarms) = (now, Vec::new());
        while at < target {
            at = next_hop(at, target, None);
            alarms.push(at - now);
        }
        alarms
    }

    #[test]
    fn a_hopping_timer_halts_for_a_hop_at_most_within_a_late_wake_up_of_its_target() {
        let (now, us) = (Instant::now(), Duration::from_micros);
        // Within reach of a late wake-up: hops of 180 us, then the rest.
        let hops: Vec<_> = [180, 360, 540, 720, 900, 1000].map(us).into();
        assert_eq!(approach(now, now + us(1000)), hops);
        assert_eq!(approach(now, now + us(100)), [us(100)]);
        // Farther: one long halt to 2 ms before the target, however late it ends.
        let far = approach(now, now + us(10_000));
        assert_eq!(far[0], us(8_000));
        assert_eq!(far[1..].len(), 12, "{far:?}"); // 2 ms in hops of 180 us
        assert!(far.windows(2).all(|pair| pair[1] - pair[0] <= HOP));
        assert_eq!(far.last(), Some(&us(10_000)));
        // Just over 2 ms away, a long halt would end too near the target: it hops all the way.
        let near = approach(now, now + us(2_100));
        assert_eq!(near[..2], [us(180), us(360)]);
        assert_eq!(near.len(), 12, "{near:?}");
        assert_eq!(near.last(), Some(&us(2_100)));
    }

    #[test]
    fn an_alarm_already_set_stays_where_a_hop_or_a_long_halt_would_have_put_it() {
        let (now, us) = (Instant::now(), Duration::from_micros);
        let target = now + us(10_000);
        let keeps = |armed: u64| next_hop(now, target, Some(now + us(armed))) == now + us(armed);
        assert!(keeps(100), "a hop away");
        assert!(keeps(180), "a hop away");
        assert!(keeps(5_000), "a late wake-up stays short of the target");
        assert!(keeps(8_000), "a late wake-up stays short of the target");
        assert!(!keeps(9_000), "a long halt too close to the target");
        assert!(!keeps(12_000), "after the target");
        assert_eq!(
            next_hop(now + us(1), target, Some(now)),
            now + us(8_000),
            "fired"
        );
        let near = now + us(1_000);
        let replaced = next_hop(now, near, Some(now + us(500)));
        assert_eq!(
            replaced,
            now + HOP,
            "a halt longer than a hop, too near the target"
        );
    }

    #[test]
    fn where_half_the_window_is_short_the_aim_is_a_hop_after_the_last_firing() {
        current_thread().block_on(async {
            let (now, us) = (Instant::now(), Duration::from_micros);
            let mut alarm = Alarm::new(true);
            alarm.last_fired = Some(now);
            // Dense grants at 10k/s with capacity 10: the window is 900 us.
            let aim = alarm.target(now, now + us(900), true, now);
            assert_eq!(aim, now + HOP);
            // A wide window: a millisecond after the last firing, within the window.
            alarm.aimed = None;
            let aim = alarm.target(now, now + us(9_000), false, now);
            assert_eq!(aim, now + WAKE_GAP);
            // Never before the window opens, nor past halfway through it.
            alarm.aimed = None;
            assert_eq!(
                alarm.target(now + us(500), now + us(1_400), true, now),
                now + us(500)
            );
            alarm.aimed = None;
            assert_eq!(alarm.target(now, now + us(200), true, now), now + us(100));
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
            let wake = Wake {
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

    #[test]
    fn windows_shorter_than_twice_a_late_wake_up_are_approached_in_hops() {
        let (now, ms) = (Instant::now(), Duration::from_millis);
        assert!(hops_needed(now, now + ms(3)));
        assert!(!hops_needed(now, now + ms(4)));
        assert!(!hops_needed(now, now + ms(9)));
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
