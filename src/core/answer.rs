//! What the core answers: a grant, a refusal, the decision on a request, and the report
//! of a bucket's capacity.

use std::time::Duration;

use super::Time;

/// A grant, on the core's clock, with the bucket's backlog just after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Grant {
    pub(crate) amount: f64,
    pub(crate) waited: Duration,
    pub(crate) at: Time,
    /// The level just after the grant, plus every amount still waiting (in the caller's
    /// units): what must leak before the bucket is empty.
    pub(crate) backlog: f64,
}

/// Why the core refused a request. The front ends add their own failures (a stopped
/// actor, an unreachable store) to the error their callers see.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// Never possible: NaN, infinite, negative, or above the capacity.
    InvalidAmount { amount: f64, capacity: f64 },
    /// Not within the timeout.
    Timeout {
        amount: f64,
        timeout: Duration,
        retry_after: Duration,
    },
    /// Not while the queue holds `max_queue` waiters.
    QueueFull {
        max_queue: usize,
        retry_after: Duration,
    },
    /// Not any more: the bucket has been shut down.
    ShuttingDown,
    /// Not while the store that holds the level cannot be reached.
    Unavailable { retry_after: Duration },
}

/// The core's decision on a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Admission {
    /// Granted at once.
    Granted(Grant),
    /// Refused at once.
    Refused(Refusal),
    /// It may wait: queue it, with [`Lanes::enqueue`](super::Lanes::enqueue), as soon as
    /// its caller is known and before anything else happens to the lanes.
    Wait(Ticket),
}

/// A request admitted to wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ticket {
    pub(super) amount: f64,
    pub(super) received: Time,
    pub(super) deadline: Option<Time>,
}

impl Ticket {
    /// The amount the request asks for.
    pub(crate) fn amount(&self) -> f64 {
        self.amount
    }
}

/// The answer to [`CapacityInfo`](crate::CapacityInfo): the level, whether an amount fits,
/// and the queue.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Capacity {
    /// Whether `amount` fits in the bucket now: `needed_capacity <= 0`, to rounding.
    /// An [`Acquire`](crate::Acquire) is granted at once only if it fits and nobody waits
    /// ahead of it. This is the arithmetic alone: whether `amount` is valid at all is
    /// what [`wait`](Self::wait) says (a negative amount "fits", NaN does not).
    pub has_capacity: bool,
    /// `level + amount - capacity`: how much must leak before `amount` fits (NaN for a
    /// NaN amount).
    pub needed_capacity: f64,
    /// The bucket's level now.
    pub level: f64,
    /// How many requests wait in the queue (callers who gave up are not counted).
    pub waiters: usize,
    /// The sum of their amounts.
    pub queued_amount: f64,
    /// How long an [`Acquire`](crate::Acquire) of `amount` sent now would wait behind the
    /// queue; `None` if it would never be granted: an amount that is NaN, infinite,
    /// negative or above the capacity, or a bucket shut down. A full queue (`max_queue`)
    /// is not counted here.
    pub wait: Option<Duration>,
}
