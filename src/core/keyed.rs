//! Any number of lanes, one per key, under one timer, holding only the keys that differ
//! from a new one.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Admission, BucketStats, Capacity, Departures, Env, KeyedLane, Lanes, Limits, OwnLevels,
    Refusal, Replies, Schedule, Ticket, Time, Window,
};

/// How late the sweep that frees idle keys may come: it loses nothing, so it leaves the
/// timer free to serve it together with other wake-ups.
const SWEEP_SLACK: Duration = Duration::from_millis(100);

/// The map is swept, whatever the timer says, once it holds this many keys more than
/// twice what it kept at the last sweep: memory stays within about twice the keys in use.
const GROWTH_BEFORE_SWEEP: usize = 1024;

/// One lane per key, under one timer: lanes of a bucket's own ([`Lane`](super::Lane)) or
/// of a shared store's.
///
/// A lane whose level has leaked to zero and that has nobody waiting cannot be told apart
/// from a new one, so it is not kept: a message that leaves a new key's lane so (a query,
/// a refusal, a refund, a grant of nothing) adds no key, and a held lane is dropped in a
/// sweep when the timer finds every key seen so far idle, when the map has doubled since
/// the last sweep, or before the keys are counted. A key that comes back starts as a new
/// one would, with a full burst. Nothing is lost or approximated, and nobody has to call
/// anything.
#[derive(Debug)]
pub(crate) struct KeyedLanes<K, L> {
    lanes: HashMap<K, L>,
    schedule: Schedule<K>,
    /// Lanes with a plan (someone waits in them).
    planned: usize,
    /// The next sweep: when every key held at the last one without waiters will have
    /// leaked to zero (unless granted to again), or, after a sweep that left none, when the
    /// first key to have nobody waiting since will have. `None` while there is no such key.
    sweep_due: Option<Time>,
    /// The keys held after the last sweep.
    kept: usize,
    evicted: u64,
    /// [`Lanes::next_wake`], brought up to date at the end of every change.
    next_wake: Option<Window>,
    /// A lane's window or the sweep changed since `next_wake` was computed.
    stale: bool,
    /// Keys whose lanes need their front end (a call to a store), as of their last change.
    for_front_end: HashSet<K>,
}

impl<K, L> Default for KeyedLanes<K, L> {
    fn default() -> Self {
        Self {
            lanes: HashMap::new(),
            schedule: Schedule::default(),
            planned: 0,
            sweep_due: None,
            kept: 0,
            evicted: 0,
            next_wake: None,
            stale: false,
            for_front_end: HashSet::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, L: KeyedLane> KeyedLanes<K, L> {
    /// The keys held now.
    pub(crate) fn len(&self) -> usize {
        self.lanes.len()
    }

    /// Keys dropped since the start because they were idle.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Drops every idle key now: those that have leaked to zero with nobody waiting.
    pub(crate) fn sweep(&mut self, limits: &Limits, now: Time) {
        self.sweep_idle(limits, now);
        self.refresh();
    }

    fn sweep_idle(&mut self, limits: &Limits, now: Time) {
        let before = self.lanes.len();
        let mut due: Option<Time> = None;
        self.lanes.retain(|_, lane| {
            if lane.is_idle_at(limits, now) {
                return false;
            }
            // A busy lane plans the next sweep itself once it is not.
            if !lane.is_busy() {
                let empty_at = lane.empty_at(limits);
                due = Some(due.map_or(empty_at, |due| due.max(empty_at)));
            }
            true
        });
        self.evicted += (before - self.lanes.len()) as u64;
        self.kept = self.lanes.len();
        self.sweep_due = due;
        self.stale = true;
        // Give memory back after a flood, but not at every ebb of a steady flow.
        if self.lanes.capacity() > 4 * self.lanes.len() {
            self.lanes.shrink_to(2 * self.lanes.len());
        }
    }

    /// The keys whose lanes needed their front end after their last change, taken: each
    /// lane says whether it still does.
    pub(crate) fn take_for_front_end(&mut self) -> HashSet<K> {
        std::mem::take(&mut self.for_front_end)
    }

    /// Runs `change` on every lane held.
    pub(crate) fn on_every_lane<R: Replies<Caller = L::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        mut change: impl FnMut(&mut L, &mut Env<'_, R>),
    ) {
        let keys: Vec<K> = self.lanes.keys().cloned().collect();
        for key in keys {
            self.with_lane(env, &key, &mut change);
        }
        self.refresh();
    }

    /// Runs `decide` on `key`'s lane, as [`Lanes`]' own methods do: for what a front end
    /// does with its lanes besides.
    pub(crate) fn on_lane<R: Replies<Caller = L::Caller>, T>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &K,
        decide: impl FnOnce(&mut L, &mut Env<'_, R>) -> T,
    ) -> T {
        let answer = self.with_lane(env, key, decide);
        self.refresh();
        answer
    }

    /// Runs `decide` on `key`'s lane (a new one if the key is unknown), then keeps the
    /// schedule and the sweep up to date with what it changed.
    fn with_lane<R: Replies<Caller = L::Caller>, T>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &K,
        decide: impl FnOnce(&mut L, &mut Env<'_, R>) -> T,
    ) -> T {
        let Some(lane) = self.lanes.get_mut(key) else {
            return self.with_new_lane(env, key, decide);
        };
        let before = lane.next_wake();
        let answer = decide(lane, env);
        let after = lane.next_wake();
        if lane.needs_front_end() && !self.for_front_end.contains(key) {
            self.for_front_end.insert(key.clone());
        }
        if !lane.is_busy() {
            lane.release_queue();
            // The next sweep stays where it was planned, so that steady traffic does not
            // keep moving the timer; it plans the one after.
            if self.sweep_due.is_none() {
                self.sweep_due = Some(lane.empty_at(&env.rules.limits));
                self.stale = true;
            }
        }
        self.track(key, before, after);
        answer
    }

    /// [`with_lane`](Self::with_lane) for a key not held: the lane is kept only if
    /// `decide` leaves it different from a new one.
    #[cold]
    fn with_new_lane<R: Replies<Caller = L::Caller>, T>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &K,
        decide: impl FnOnce(&mut L, &mut Env<'_, R>) -> T,
    ) -> T {
        let mut lane = L::new(env.now);
        let answer = decide(&mut lane, env);
        let limits = &env.rules.limits;
        if lane.is_idle_at(limits, env.now) {
            return answer;
        }
        if self.lanes.len() >= 2 * self.kept + GROWTH_BEFORE_SWEEP {
            self.sweep_idle(limits, env.now);
        }
        let after = lane.next_wake();
        if !lane.is_busy() && self.sweep_due.is_none() {
            self.sweep_due = Some(lane.empty_at(limits));
            self.stale = true;
        }
        if lane.needs_front_end() {
            self.for_front_end.insert(key.clone());
        }
        self.lanes.insert(key.clone(), lane);
        self.track(key, None, after);
        answer
    }

    /// Notes that `key`'s lane went from the window `before` to `after`.
    fn track(&mut self, key: &K, before: Option<Window>, after: Option<Window>) {
        if before != after {
            self.stale = true;
            self.planned =
                self.planned + usize::from(after.is_some()) - usize::from(before.is_some());
            if let Some(plan) = after {
                self.schedule.insert(key.clone(), plan);
            }
        }
    }

    /// Brings [`next_wake`](Lanes::next_wake) up to date, if anything changed.
    fn refresh(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        let lanes = &self.lanes;
        let plans = self
            .schedule
            .next(|key| lanes.get(key).and_then(L::next_wake));
        let sweep = self.sweep_due.map(|due| Window::within(due, SWEEP_SLACK));
        self.next_wake = match (plans, sweep) {
            (Some(plans), Some(sweep)) => Some(plans.and(sweep)),
            (plans, sweep) => plans.or(sweep),
        };
    }
}

/// A bucket per key.
impl<K: Hash + Eq + Clone, L: KeyedLane> Lanes for KeyedLanes<K, L> {
    type Key = K;
    type Caller = L::Caller;
    const WATCHES_HEADS: bool = false;

    fn admit<R: Replies<Caller = L::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &K,
        amount: f64,
        timeout: Option<Duration>,
    ) -> Admission {
        let admission = self.with_lane(env, key, |lane, env| lane.admit(env, &(), amount, timeout));
        self.refresh();
        admission
    }

    fn enqueue<R: Replies<Caller = L::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &K,
        ticket: Ticket,
        caller: L::Caller,
        watch: impl FnOnce(&mut L::Caller, &Arc<Departures>),
    ) {
        self.with_lane(env, key, |lane, env| {
            lane.enqueue(env, &(), ticket, caller, watch);
        });
        self.refresh();
    }

    fn next_wake(&self) -> Option<Window> {
        self.next_wake
    }

    fn serve<R: Replies<Caller = L::Caller>>(&mut self, env: &mut Env<'_, R>) {
        loop {
            let lanes = &self.lanes;
            let current = |key: &K| lanes.get(key).and_then(L::next_wake);
            let Some(key) = self.schedule.pop_due(env.now, current) else {
                break;
            };
            self.with_lane(env, &key, |lane, env| lane.serve(env));
            // Popped from the schedule: back in it even if its window is unchanged.
            if let Some(plan) = self.lanes.get(&key).and_then(L::next_wake) {
                self.schedule.insert(key, plan);
            }
            self.stale = true;
        }
        let lanes = &self.lanes;
        self.schedule
            .compact(self.planned, |key| lanes.get(key).and_then(L::next_wake));
        if self.sweep_due.is_some_and(|due| due <= env.now) {
            self.sweep_idle(&env.rules.limits, env.now);
        }
        self.refresh();
    }

    fn close<R: Replies<Caller = L::Caller>>(&mut self, replies: &R, stats: &mut BucketStats) {
        for lane in self.lanes.values_mut() {
            lane.close(replies, stats);
            lane.release_queue();
        }
        self.schedule.clear();
        self.planned = 0;
        self.stale = true;
        self.refresh();
    }

    fn head_caller_mut(&mut self) -> Option<&mut L::Caller> {
        None // a head per key: too many to watch
    }

    fn callers(&mut self, mut watch: impl FnMut(&K, &Arc<Departures>, &mut L::Caller)) {
        for (key, lane) in &mut self.lanes {
            lane.callers(|(), departures, caller| watch(key, departures, caller));
        }
    }

    fn notice_departures<R: Replies<Caller = L::Caller>>(&mut self, env: &mut Env<'_, R>, key: &K) {
        if self.lanes.contains_key(key) {
            self.with_lane(env, key, |lane, env| lane.notice_departures(env, &()));
            self.refresh();
        }
    }
}

/// A bucket per key, each keeping its level.
impl<K: Hash + Eq + Clone, L: KeyedLane + OwnLevels> OwnLevels for KeyedLanes<K, L> {
    fn capacity<R: Replies<Caller = L::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &K,
        amount: f64,
        open: bool,
    ) -> Capacity {
        let capacity = self.with_lane(env, key, |lane, env| lane.capacity(env, &(), amount, open));
        self.refresh();
        capacity
    }

    fn reconcile<R: Replies<Caller = L::Caller>>(
        &mut self,
        env: &mut Env<'_, R>,
        key: &K,
        actual: f64,
        estimated: f64,
    ) -> Result<(), Refusal> {
        let settled = self.with_lane(env, key, |lane, env| {
            lane.reconcile(env, &(), actual, estimated)
        });
        self.refresh();
        settled
    }

    fn reconfigure<R: Replies<Caller = L::Caller>>(&mut self, env: &mut Env<'_, R>, old: &Limits) {
        self.schedule.clear();
        self.planned = 0;
        self.sweep_due = None;
        let limits = &env.rules.limits;
        for (key, lane) in &mut self.lanes {
            lane.reconfigure(env, old);
            if let Some(plan) = lane.next_wake() {
                self.schedule.insert(key.clone(), plan);
                self.planned += 1;
            }
            let empty_at = lane.empty_at(limits);
            self.sweep_due = Some(self.sweep_due.map_or(empty_at, |due| due.max(empty_at)));
        }
        self.stale = true;
        self.refresh();
    }
}
