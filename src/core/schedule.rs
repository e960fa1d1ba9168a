//! When lanes need serving: one wake-up window per lane, and one timer for any number of
//! lanes.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use super::Time;

/// When a lane next needs serving, as a window: not before `earliest` (its head becomes due, or a
/// waiter expires), and no later than `latest` without loss (after it the bucket would
/// stand empty while someone waits, and the leak of that time would be lost to the rate).
///
/// A timer may wake anywhere in the window and serve everything due then: every grant is
/// made when it fits at the actual clock, so a grant later than its due instant never
/// breaks the conformance bound, and within the window it costs no rate either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) earliest: Time,
    pub(crate) latest: Time,
}

impl Window {
    /// A wake-up exactly at `at`.
    pub(crate) fn at(at: Time) -> Self {
        Self {
            earliest: at,
            latest: at,
        }
    }

    /// A wake-up from `earliest`, `slack` at most later.
    pub(crate) fn within(earliest: Time, slack: Duration) -> Self {
        Self {
            earliest,
            latest: earliest.after(slack),
        }
    }

    /// The window that serves both: the earlier start and the earlier end.
    pub(crate) fn and(self, other: Window) -> Self {
        Self {
            earliest: self.earliest.min(other.earliest),
            latest: self.latest.min(other.latest),
        }
    }
}

/// The wake-up windows of many lanes, under one timer: the earliest start and the earliest
/// end among them, and the lanes whose windows have opened.
///
/// Each lane's window is inserted when it changes; an entry whose lane has since planned
/// another window is stale and is dropped when it reaches the top (the caller says which
/// window is current). The heaps are rebuilt when stale entries far outnumber live ones.
#[derive(Debug)]
pub(crate) struct Schedule<K> {
    by_earliest: BinaryHeap<Reverse<Entry<K>>>,
    by_latest: BinaryHeap<Reverse<Entry<K>>>,
    /// Orders entries of the same instant, so that keys need no order of their own.
    inserted: u64,
}

/// A lane's window starting or ending at `at`.
#[derive(Debug)]
struct Entry<K> {
    at: Time,
    order: u64,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl<K> Eq for Entry<K> {}

impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

impl<K> Default for Schedule<K> {
    fn default() -> Self {
        Self {
            by_earliest: BinaryHeap::new(),
            by_latest: BinaryHeap::new(),
            inserted: 0,
        }
    }
}

impl<K: Clone> Schedule<K> {
    /// Records `wake` as the window of the lane `key`.
    pub(crate) fn insert(&mut self, key: K, wake: Window) {
        self.inserted += 1;
        let order = self.inserted;
        self.by_latest.push(Reverse(Entry {
            at: wake.latest,
            order,
            key: key.clone(),
        }));
        self.by_earliest.push(Reverse(Entry {
            at: wake.earliest,
            order,
            key,
        }));
    }

    /// The window that serves every lane: from the earliest start to the earliest end.
    /// `current(key)` is the lane's window now, if it has one.
    pub(crate) fn next(&mut self, current: impl Fn(&K) -> Option<Window>) -> Option<Window> {
        let earliest = top(&mut self.by_earliest, |key| {
            current(key).map(|w| w.earliest)
        })?;
        let latest = top(&mut self.by_latest, |key| current(key).map(|w| w.latest))?;
        Some(Window { earliest, latest })
    }

    /// Takes the next lane whose window opened at or before `now`, if any.
    pub(crate) fn pop_due(
        &mut self,
        now: Time,
        current: impl Fn(&K) -> Option<Window>,
    ) -> Option<K> {
        let earliest = top(&mut self.by_earliest, |key| {
            current(key).map(|w| w.earliest)
        })?;
        if earliest > now {
            return None;
        }
        self.by_earliest.pop().map(|Reverse(entry)| entry.key)
    }

    /// Drops the stale entries in one pass once they far outnumber the `live` lanes.
    pub(crate) fn compact(&mut self, live: usize, current: impl Fn(&K) -> Option<Window>) {
        if self.by_earliest.len() + self.by_latest.len() > 4 * live + 128 {
            self.by_earliest.retain(|Reverse(entry)| {
                current(&entry.key).is_some_and(|w| w.earliest == entry.at)
            });
            self.by_latest
                .retain(|Reverse(entry)| current(&entry.key).is_some_and(|w| w.latest == entry.at));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_earliest.clear();
        self.by_latest.clear();
    }
}

/// The earliest current instant in `heap`, dropping stale entries from its top.
fn top<K>(
    heap: &mut BinaryHeap<Reverse<Entry<K>>>,
    current: impl Fn(&K) -> Option<Time>,
) -> Option<Time> {
    while let Some(Reverse(entry)) = heap.peek() {
        if current(&entry.key) == Some(entry.at) {
            return Some(entry.at);
        }
        heap.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn t(ms: u64) -> Time {
        Time::since_epoch(Duration::from_millis(ms))
    }

    #[test]
    fn one_window_serves_every_lane() {
        let mut plans = HashMap::new();
        let mut schedule = Schedule::default();
        for (key, wake) in [
            ("loose", Window::within(t(10), Duration::from_millis(50))),
            ("tight", Window::at(t(20))),
            ("later", Window::within(t(30), Duration::from_millis(5))),
        ] {
            plans.insert(key, wake);
            schedule.insert(key, wake);
        }
        // Waking anywhere from 10 to 20 ms serves "loose" on time and "tight" on time.
        let next = schedule.next(|key| plans.get(key).copied());
        assert_eq!(
            next,
            Some(Window {
                earliest: t(10),
                latest: t(20)
            })
        );

        // "tight" planned again: its old entries are stale.
        plans.insert("tight", Window::at(t(40)));
        schedule.insert("tight", Window::at(t(40)));
        let next = schedule.next(|key| plans.get(key).copied());
        assert_eq!(
            next,
            Some(Window {
                earliest: t(10),
                latest: t(35)
            })
        );

        let current = |key: &&str| plans.get(key).copied();
        assert_eq!(schedule.pop_due(t(9), current), None);
        assert_eq!(schedule.pop_due(t(30), current), Some("loose"));
        assert_eq!(schedule.pop_due(t(30), current), Some("later"));
        assert_eq!(schedule.pop_due(t(30), current), None);
    }
}
