//! How punctually this machine wakes a thread: what the scheduler, and the host's under a
//! virtual machine, add to any timer.

#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use actix::System;

/// Lateness of wake-ups, in microseconds, sorted: `WAKE_PROBES` waits of `wait`, each on a
/// `timerfd` registered with tokio's reactor (the thread sleeps, as the bucket's does) or
/// yielding to the runtime until the instant (it never sleeps). What the machine's
/// scheduler, and the host's under a virtual machine, add to any timer.
#[cfg(target_os = "linux")]
pub fn wake_lateness(wait: Duration, sleep: bool) -> Vec<u64> {
    use timerfd::{ClockId, SetTimeFlags, TimerFd, TimerState};
    use tokio::io::unix::AsyncFd;

    System::new().block_on(async {
        #[allow(deprecated)] // AsyncFd::new: a TimerFd always gives the fd it owns
        let mut fd =
            AsyncFd::new(TimerFd::new_custom(ClockId::Monotonic, true, true).unwrap()).unwrap();
        let mut late = Vec::with_capacity(WAKE_PROBES);
        for _ in 0..WAKE_PROBES {
            let target = Instant::now() + wait;
            if sleep {
                fd.get_mut()
                    .set_state(TimerState::Oneshot(wait), SetTimeFlags::Default);
                loop {
                    let mut ready = fd.readable().await.unwrap();
                    let expirations = ready.get_inner().read();
                    ready.clear_ready();
                    if expirations > 0 {
                        break;
                    }
                }
            } else {
                while Instant::now() < target {
                    actix_rt::task::yield_now().await;
                }
            }
            late.push(Instant::now().saturating_duration_since(target).as_micros() as u64);
        }
        late.sort_unstable();
        late
    })
}

/// How many waits `wake_lateness` measures.
pub const WAKE_PROBES: usize = 4_000;

/// The quantiles of sorted `late` (microseconds), and how many are over 450 us.
pub fn describe_lateness(late: &[u64]) -> String {
    let at = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
    format!(
        "p50 {} us, p99 {} us, p99.9 {} us, max {} us; {} of {} over 450 us",
        at(0.5),
        at(0.99),
        at(0.999),
        late[late.len() - 1],
        late.iter().filter(|&&l| l > 450).count(),
        late.len()
    )
}
