//! Where in a window the precise timer aims, and how it approaches its aim: pure policy,
//! on instants, with no timer behind it.

use std::time::Duration;

use actix_rt::time::Instant;

use super::TIMER_TICK;

/// How late a sleeping thread can wake. Tokio's timer wakes on the first millisecond tick
/// at or after a deadline, and the runtime rounds its park timeout up to a millisecond
/// too. On a virtual machine, a CPU that halts for longer than about 200 µs can be handed
/// back to the host, whose scheduler may run it again milliseconds after its timer fired.
pub(super) const LATE_WAKE: Duration = Duration::from_millis(2);

/// When grants are dense, the precise timer wakes at most about once per this long (and
/// never later than half a window's slack): as often as tokio's own timer would.
pub(super) const WAKE_GAP: Duration = TIMER_TICK;

/// Where half the window is shorter than [`LATE_WAKE`], the precise timer's gap between
/// wake-ups, and its longest halt within [`LATE_WAKE`] of its aim. KVM, the usual
/// hypervisor, polls a halted virtual CPU for up to 200 µs by default before it hands the
/// CPU back to the host: a halt shorter than that ends within microseconds of the timer,
/// and one longer also cuts the polling of the next few halts.
pub(super) const HOP: Duration = Duration::from_micros(180);

/// The precise timer's aim: where it last fired and where it aims now.
#[derive(Debug, Default)]
pub(super) struct Aim {
    /// When the timer last fired.
    last_fired: Option<Instant>,
    /// Where it aims now.
    aimed: Option<Instant>,
}

impl Aim {
    /// When to serve for a window from `earliest` to `latest`, at `now`. `hops`: half the
    /// window is short (see [`hops_needed`]).
    ///
    /// Dense grants are coalesced: no sooner than a gap after the last firing, and no
    /// later than halfway through the slack, which leaves the other half for the timer's
    /// own lateness. Where it aims already serves the window, it stays: the window moves
    /// with every grant made on the way through a message, and setting the timer again
    /// each time would cost a system call per grant.
    pub(super) fn target(
        &mut self,
        earliest: Instant,
        latest: Instant,
        hops: bool,
        now: Instant,
    ) -> Instant {
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

    /// The timer fired at `now`: the next aim counts from there.
    pub(super) fn fired(&mut self, now: Instant) {
        self.last_fired = Some(now);
        self.aimed = None;
    }

    /// The timer stopped: whatever comes next is aimed afresh.
    pub(super) fn forget(&mut self) {
        self.aimed = None;
    }
}

/// Whether a window from `earliest` to `latest` is short enough that a wake-up after a
/// long halt, late by up to [`LATE_WAKE`], would run the bucket dry: the slack left after
/// an aim halfway through it is shorter than that.
pub(super) fn hops_needed(earliest: Instant, latest: Instant) -> bool {
    latest.saturating_duration_since(earliest) / 2 < LATE_WAKE
}

/// Where the fine timer goes next on its way to `target` when it hops: a halt of at most
/// a [`HOP`], unless the target is so far that a long halt's lateness cannot reach it. A
/// long halt ends [`LATE_WAKE`] before the target, which leaves about ten hops: enough for
/// the host's polling, cut by the long halt, to grow back over the first few. An alarm
/// already set (`armed`) stays where it is one of those, so that a message passing
/// through does not cost a system call.
pub(super) fn next_hop(now: Instant, target: Instant, armed: Option<Instant>) -> Instant {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let (now, us) = (Instant::now(), Duration::from_micros);
        let mut aim = Aim::default();
        aim.fired(now);
        // Dense grants at 10k/s with capacity 10: the window is 900 us.
        assert_eq!(aim.target(now, now + us(900), true, now), now + HOP);
        // A wide window: a millisecond after the last firing, within the window.
        aim.forget();
        assert_eq!(aim.target(now, now + us(9_000), false, now), now + WAKE_GAP);
        // Never before the window opens, nor past halfway through it.
        aim.forget();
        assert_eq!(
            aim.target(now + us(500), now + us(1_400), true, now),
            now + us(500)
        );
        aim.forget();
        assert_eq!(aim.target(now, now + us(200), true, now), now + us(100));
    }

    #[test]
    fn an_aim_that_still_serves_the_moving_window_stays() {
        let (now, us) = (Instant::now(), Duration::from_micros);
        let mut aim = Aim::default();
        aim.fired(now);
        let first = aim.target(now, now + us(9_000), false, now);
        // A grant on the way through a message moved the window by a few microseconds.
        assert_eq!(aim.target(now + us(3), now + us(9_003), false, now), first);
        // A window that opens after the aim is aimed afresh.
        assert_eq!(
            aim.target(now + us(2_000), now + us(9_000), false, now),
            now + us(2_000)
        );
    }

    #[test]
    fn windows_shorter_than_twice_a_late_wake_up_are_approached_in_hops() {
        let (now, ms) = (Instant::now(), Duration::from_millis);
        assert!(hops_needed(now, now + ms(3)));
        assert!(!hops_needed(now, now + ms(4)));
        assert!(!hops_needed(now, now + ms(9)));
    }
}
