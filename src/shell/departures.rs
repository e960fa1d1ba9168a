//! How a bucket actor notices that a waiting caller has given up: the caller's reply
//! sender is closed when its `send` future is dropped, and a waker registered on it is
//! woken then.
//!
//! Three watchers, from the cheapest: every waiter raises its queue's [`Departures`]
//! flag, which costs nothing until a decision depends on who waits; the single bucket's
//! timer watches the head of its queue with its own task; and while a bucket that cannot
//! watch every head drains after a graceful shutdown, a [`DrainWatch`] tells its timer
//! which key lost a caller, so that the drain never waits for callers who have left.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Wake, Waker};

use futures::task::AtomicWaker;

use super::reply::Waiting;
use crate::core::Departures;

/// A caller's departure raises its queue's flag: the flag is what the sender's close
/// wakes.
impl Wake for Departures {
    fn wake(self: Arc<Self>) {
        self.raise();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.raise();
    }
}

/// Has `waker` woken when the caller behind `caller` gives up (at once if it has).
pub(crate) fn watch(caller: &mut Waiting, waker: Waker) {
    if let Some(sender) = caller {
        // Outside the task's budget: with the budget spent, tokio would return Pending
        // without keeping the waker, and the departure would go unseen.
        let closed = tokio::task::unconstrained(poll_fn(|task| sender.poll_closed(task)));
        if pin!(closed)
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
        {
            waker.wake(); // it has already left
        }
    }
}

/// Registers `task` to be woken when the caller behind `caller` gives up; true if it has.
pub(crate) fn poll_gone(caller: &mut Waiting, task: &mut Context<'_>) -> bool {
    caller
        .as_mut()
        .is_none_or(|sender| sender.poll_closed(task).is_ready())
}

/// The keys that lost a caller while a bucket drains, and the timer to wake for them.
#[derive(Debug)]
pub(crate) struct DrainWatch<K> {
    keys: Mutex<Vec<K>>,
    timer: AtomicWaker,
}

impl<K> Default for DrainWatch<K> {
    fn default() -> Self {
        Self {
            keys: Mutex::default(),
            timer: AtomicWaker::new(),
        }
    }
}

impl<K: Clone + Send + 'static> DrainWatch<K> {
    /// A watcher for the waiters of many queues, handed over one after another.
    pub(crate) fn watcher(self: &Arc<Self>) -> DrainWatcher<'_, K> {
        DrainWatcher {
            drain: self,
            current: None,
        }
    }

    /// Has `timer` woken when a watched caller leaves.
    pub(crate) fn wake_on_departure(&self, timer: &Waker) {
        self.timer.register(timer);
    }

    /// The keys that lost a caller since the last call.
    pub(crate) fn take(&self) -> Vec<K> {
        std::mem::take(&mut *self.keys.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Registers waiters with a [`DrainWatch`]: the waiters of one queue, which come one
/// after another, share one waker.
pub(crate) struct DrainWatcher<'a, K> {
    drain: &'a Arc<DrainWatch<K>>,
    current: Option<(Arc<Departures>, Waker)>,
}

impl<K: Clone + Send + 'static> DrainWatcher<'_, K> {
    /// Watches `caller`, who waits under `key` in the queue whose flag is `departures`.
    pub(crate) fn watch(&mut self, key: &K, departures: &Arc<Departures>, caller: &mut Waiting) {
        let same_queue = matches!(&self.current, Some((flag, _)) if Arc::ptr_eq(flag, departures));
        if !same_queue {
            let waker = Waker::from(Arc::new(KeyWatch {
                key: Mutex::new(key.clone()),
                departures: Arc::clone(departures),
                drain: Arc::clone(self.drain),
            }));
            self.current = Some((Arc::clone(departures), waker));
        }
        if let Some((_, waker)) = &self.current {
            watch(caller, waker.clone());
        }
    }
}

/// The watcher of one queue's callers during a drain.
struct KeyWatch<K> {
    /// In a mutex so that any key that can be sent between threads will do, shared or not.
    key: Mutex<K>,
    departures: Arc<Departures>,
    drain: Arc<DrainWatch<K>>,
}

impl<K: Clone + Send + 'static> Wake for KeyWatch<K> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.departures.raise();
        let key = self
            .key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut keys = self
            .drain
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        keys.push(key);
        drop(keys);
        self.drain.timer.wake();
    }
}
