//! What the kernel says of this process under `/proc`: CPU time, page faults, resident
//! memory and run-queue waits. Each reads as "not known" (NaN, 0 or `None`) where `/proc`
//! is missing.

use std::time::Duration;

/// CPU time (user + system) of this process so far, in seconds; NaN where /proc is missing.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name, which ends with the last ')': utime is the 12th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0, // USER_HZ is 100 on Linux
        _ => f64::NAN,
    }
}

/// CPU time of this process's live threads so far, in seconds, to the nanosecond (the sum of
/// `/proc/self/task/*/schedstat`); NaN where /proc is missing. A thread that ends between
/// two readings takes its time with it, so a difference counts only the threads alive at
/// both. [`cpu_seconds`] counts every thread, in ticks of 10 ms: too coarse for a window in
/// which next to nothing runs.
pub fn threads_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|schedstat| schedstat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}

/// How long the calling thread has waited, runnable, for a CPU (the second field of
/// `/proc/thread-self/schedstat`); `None` where the kernel does not say.
pub fn thread_waited() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = schedstat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Minor page faults of this process so far (`/proc/self/stat`); 0 where it does not exist.
pub fn page_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After the command name: state, ppid, pgrp, session, tty, tpgid, flags, minflt.
    rest.split_whitespace()
        .nth(7)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0)
}

/// The resident set of this process and its anonymous part (resident less file-backed
/// pages, such as the program's own code), in bytes, from `/proc/self/statm`; zeros where
/// it is missing.
pub fn resident() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: Vec<u64> = statm
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    match pages[..] {
        [_, resident, shared, ..] => (resident * page_size(), (resident - shared) * page_size()),
        _ => (0, 0),
    }
}

/// The resident set of this process, in bytes.
pub fn rss() -> u64 {
    resident().0
}

/// The size of a memory page, in bytes, which `statm` counts in.
#[cfg(unix)]
#[allow(unsafe_code)]
fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// The size of a memory page: not known here.
#[cfg(not(unix))]
fn page_size() -> u64 {
    0
}
