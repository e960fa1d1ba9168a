//! What the benches share: the trivial actix actor that is the round-trip reference, and
//! the harness-less benches' measuring tools.
#![allow(dead_code)] // each bench uses its own part

use actix::{Actor, Context, Handler, Message};

/// A message that carries nothing and is answered with a number, inline.
#[derive(Debug, Clone, Copy)]
pub struct Ping;

impl Message for Ping {
    type Result = u64;
}

/// The trivial actor: answers every [`Ping`] at once. Its mailbox is unbounded, as the
/// bucket's is, so both pay the same mailbox.
#[derive(Debug, Default)]
pub struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(0);
    }
}

impl Handler<Ping> for Echo {
    type Result = u64;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        1
    }
}

// ---------------------------------------------------------------------------------------
// What the harness-less benches share: a counting allocator, the process's CPU, medians
// and verdicts, the conformance check, and the choice of sections.

use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts the heap bytes allocated and not yet freed. A bench installs it with
/// `#[global_allocator] static GLOBAL: common::Counting = common::Counting;`.
pub struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator, only counting the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        SystemAlloc.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        SystemAlloc.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        SystemAlloc.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        SystemAlloc.realloc(ptr, layout, new_size)
    }
}

/// Heap bytes allocated and not yet freed, by the whole process (with [`Counting`]).
pub fn heap() -> isize {
    ALLOCATED.load(Ordering::Relaxed)
}

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

/// The `k`-th of `n` measurements to take in round `round`: rotated every round and reversed
/// every other, so that none always goes first or always follows the same one.
pub fn turn(round: usize, k: usize, n: usize) -> usize {
    if round.is_multiple_of(2) {
        (round + k) % n
    } else {
        (round + n - k) % n
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn verdict(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// The largest excess over the conformance bound of the sorted grant `times` (seconds), in
/// grants of one unit, over the windows that start `from` seconds after the first or later
/// (<= 0: it holds).
///
/// For grants i <= j, `j - i + 1 <= capacity + rate (t_j - t_i)` is
/// `(j + 1 - rate t_j) - (i - rate t_i) <= capacity`: one pass, keeping the minimum of
/// `i - rate t_i` so far, checks every window that starts and ends on a grant.
pub fn excess_over(times: &[f64], rate: f64, capacity: f64, from: f64) -> f64 {
    let mut min_start = f64::INFINITY;
    let mut worst = f64::NEG_INFINITY;
    let skip = times.partition_point(|&t| t < from);
    for (i, &t) in times.iter().enumerate().skip(skip) {
        min_start = min_start.min(i as f64 - rate * t);
        worst = worst.max((i + 1) as f64 - rate * t - min_start - capacity);
    }
    worst
}

/// Whether the command line asks for `section`: it does when it names no section at all.
pub fn wanted(section: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|name| name == section)
}
