//! Witnesses of a frozen host: one thread pinned to each CPU, beside a run, that notes the
//! spans in which its CPU ran nothing although it was due. Also the CPU pinning they need,
//! and the CPU a thread runs on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::procfs::thread_waited;

/// A CPU that is not known, or not the same on both sides of a dry spell.
pub const NO_CPU: i32 = -1;

/// One thread per CPU, pinned to it, beside a run: each sleeps [`WITNESS_STEP`] at a time
/// and notes when it woke more than [`FROZEN_AFTER`] late, less twice the time it waited for
/// another thread: spans in which the host ran nothing on that vCPU, whether it stopped it
/// while it ran or was late to wake it from idle. A thread that never sleeps is spared
/// the second (the probe's "yielding" row), at the cost of a CPU.
#[derive(Debug)]
pub struct Witness {
    /// Tells the witnesses to stop.
    stop: Arc<AtomicBool>,
    /// The witnesses, each returning what it saw.
    threads: Vec<std::thread::JoinHandle<Vec<Stall>>>,
}

/// A span in which a witness's CPU ran nothing.
#[derive(Debug)]
pub struct Stall {
    /// The CPU, as [`current_cpu`] names it.
    pub cpu: i32,
    /// When it began.
    pub from: Instant,
    /// How long it lasted.
    pub length: Duration,
}

/// How long a witness sleeps at a time.
pub const WITNESS_STEP: Duration = Duration::from_millis(1);
/// How late past its wait a witness must wake for its CPU to count as frozen.
pub const FROZEN_AFTER: Duration = Duration::from_millis(1);

impl Witness {
    /// Starts one witness on each CPU this process may run on.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = allowed_cpus()
            .into_iter()
            .map(|cpu| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let Some(cpu) = pin_to(cpu) else {
                        eprintln!("  (the witness for CPU {cpu} could not be pinned to it)");
                        return Vec::new();
                    };
                    let Some(mut waited) = thread_waited() else {
                        eprintln!("  (the witness for CPU {cpu} cannot see its run-queue wait)");
                        return Vec::new();
                    };
                    let mut stalls = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let due = Instant::now() + WITNESS_STEP;
                        std::thread::sleep(WITNESS_STEP);
                        let late = Instant::now().saturating_duration_since(due);
                        let waited_before = waited;
                        waited = thread_waited().unwrap_or(waited);
                        // The wait may have come before the stall or after it: only what
                        // is frozen either way counts.
                        let queued = waited.saturating_sub(waited_before);
                        let frozen = late.saturating_sub(2 * queued);
                        if frozen > FROZEN_AFTER {
                            stalls.push(Stall {
                                cpu,
                                from: due + queued,
                                length: frozen,
                            });
                        }
                    }
                    stalls
                })
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops the witnesses; what they saw.
    pub fn finish(self) -> Vec<Stall> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect()
    }
}

/// The CPUs this process may run on.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set owned by this frame, passed with its own size, and
    // read only within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// The CPUs this process may run on: not known here.
#[cfg(not(target_os = "linux"))]
pub fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to `cpu`; the CPU it is pinned to, as [`current_cpu`] names it.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn pin_to(cpu: usize) -> Option<i32> {
    // SAFETY: `set` is a plain bit set owned by this frame, passed with its own size.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    (pinned == 0).then_some(cpu as i32)
}

/// Pins the calling thread to `cpu`: not possible here.
#[cfg(not(target_os = "linux"))]
pub fn pin_to(_: usize) -> Option<i32> {
    None
}

/// The CPU the calling thread runs on now.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn current_cpu() -> i32 {
    // SAFETY: no arguments, no memory: it reads the CPU number the kernel exposes.
    unsafe { libc::sched_getcpu() }
}

/// The CPU the calling thread runs on now: [`NO_CPU`], not known here.
#[cfg(not(target_os = "linux"))]
pub fn current_cpu() -> i32 {
    NO_CPU
}
