//! The front ends' one timer: when to wake, and what wakes it.
//!
//! The core plans each wake-up as a window: from the instant the head of a queue becomes
//! due to the instant its bucket would run dry. Tokio's timer, which actix's `run_later`
//! uses, fires on the first millisecond tick after a deadline and can be 2 ms late; a
//! bucket whose window is shorter than that would lose rate on it. So where the platform
//! has one (Linux), the bucket wakes on a `timerfd` registered with tokio's reactor, which
//! is punctual to the microsecond, and aims into the window so that it wakes at most about
//! once per tick when grants are dense. Where half the window is short, it approaches its
//! aim in short halts, which a virtual machine's host does not stretch (the guide's timing
//! section says why). On other platforms it sleeps on tokio's timer and, when a window is
//! shorter than the timer's lateness, yields to the runtime through the last 2 ms before
//! the head is due. On tokio's paused clock (in tests), and with `precise_timing(false)`,
//! it sleeps on tokio's timer until the window opens: the paused clock lands there
//! exactly.
//!
//! - `clock.rs`: tokio's clock as the core's time, and the tick;
//! - `aim.rs`: where in a window to aim, and how to approach it (pure policy);
//! - `alarm.rs`: the sleeps themselves, and how a poll tells its own firing from a
//!   message;
//! - `timerfd.rs`: the fine timer on Linux.

mod aim;
mod alarm;
mod clock;
#[cfg(target_os = "linux")]
mod timerfd;

pub(crate) use alarm::Alarm;
pub(crate) use clock::Clock;
pub use clock::TIMER_TICK;
