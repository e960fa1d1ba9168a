//! `timing`: steady demand (32 callers that acquire again as soon as they are granted, for
//! 2 s) at 1k/s and 10k/s with capacity 10 and at 100k/s with capacity 100, precise timing
//! (the default) against tokio's timer alone, alternating: the rate achieved and the
//! conformance bound at the bucket's grant instants, the process's CPU while it runs, and
//! its CPU in the 300 ms after, with nobody waiting. Beside each run, one witness thread
//! pinned to each CPU sleeps 1 ms at a time and notes when its CPU ran nothing for over
//! 1 ms while it was due (its lateness less twice its wait for other threads, which may have
//! come before or after): the rate is also given over the time the bucket's CPU ran, the run
//! less the time the bucket stood empty within such a freeze of the CPU its thread ran on
//! before and after, past the `capacity / rate` that a bucket served without delay would
//! have stood. The witnesses' own CPU is left out of the process's. Before the runs, how
//! late this machine wakes a thread sleeping on a `timerfd` for 150 us and for 450 us at a
//! time, or yielding until 450 us ahead: what any sleeping timer suffers here, and how the
//! length of a halt changes it on a virtual machine.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, System};
use actix_leaky_bucket::{Acquire, BucketActor, BucketConfig};

use super::idle_cpu;
use crate::conformance::excess_over;
use crate::procfs::threads_cpu_seconds;
use crate::rounds::median;
use crate::table::{verdict, Outcome};
#[cfg(target_os = "linux")]
use crate::wake::{describe_lateness, wake_lateness};
use crate::witness::{current_cpu, Witness, NO_CPU};

/// The rows of the section: the wake-up probe (on Linux), then one row per configuration.
pub fn run() -> Outcome {
    let mut outcome = Outcome::default();
    #[cfg(target_os = "linux")]
    {
        eprintln!("timing: wake-up lateness...");
        let (short, long) = (Duration::from_micros(150), Duration::from_micros(450));
        outcome.row(
            "(extra) Lateness of a wake-up, this machine, now",
            format!(
                "thread sleeping on a timerfd, 150 us: {}<br>450 us: {}",
                describe_lateness(&wake_lateness(short, true)),
                describe_lateness(&wake_lateness(long, true))
            ),
            format!(
                "yielding until the instant, 450 us: {}",
                describe_lateness(&wake_lateness(long, false))
            ),
            String::new(),
            "none (the platform's part in the timing rows below)",
            "",
        );
    }
    for (rate, capacity) in [(1_000, 10), (10_000, 10), (100_000, 100)] {
        eprintln!("timing: {rate}/s, capacity {capacity}...");
        // Alternating, so that both modes meet the same moments of a noisy machine.
        let mut precise = Vec::new();
        let mut timer_only = Vec::new();
        for _ in 0..TIMING_ROUNDS {
            timer_only.push(steady(false, rate, capacity));
            precise.push(steady(true, rate, capacity));
        }
        let median_of =
            |runs: &[SteadyRun], f: fn(&SteadyRun) -> f64| median(runs.iter().map(f).collect());
        if std::env::var_os("REPORT_PHASES").is_some() {
            for run in &precise {
                let mut spells = run.dry_spells();
                spells.sort_by(|a, b| b.length.total_cmp(&a.length));
                let total: f64 = spells.iter().map(|spell| spell.length).sum();
                let longest: Vec<String> = spells
                    .iter()
                    .take(8)
                    .map(|spell| {
                        format!(
                            "{:.0} us at {:.3} s (CPU {})",
                            spell.length * 1e6,
                            spell.start,
                            spell.cpu
                        )
                    })
                    .collect();
                eprintln!(
                    "  precise {:.2} %: {} dry spells, {:.2} ms in all, {:.2} ms of it with \
                     its CPU frozen beyond what a full bucket stands; longest {}",
                    100.0 * run.achieved(),
                    spells.len(),
                    total * 1e3,
                    run.dry_while_frozen() * 1e3,
                    longest.join(", ")
                );
            }
        }
        let (achieved, while_running, cpu) = (
            median_of(&precise, SteadyRun::achieved),
            median_of(&precise, SteadyRun::achieved_while_running),
            median_of(&precise, |run| run.cpu),
        );
        let timer_cpu = median_of(&timer_only, |run| run.cpu);
        let worst_excess = precise
            .iter()
            .map(|run| run.excess)
            .fold(f64::MIN, f64::max);
        let cpu_allowed = (2.0 * timer_cpu).max(timer_cpu + 0.10);
        let met = while_running >= 0.995 && cpu <= cpu_allowed && worst_excess <= 1e-6;
        let list = |runs: &[SteadyRun]| {
            runs.iter()
                .map(SteadyRun::describe)
                .collect::<Vec<_>>()
                .join("<br>")
        };
        outcome.row(
            &format!(
                "Timing, steady demand ({STEADY_CALLERS} callers, {} s), {}k/s, capacity {capacity}",
                STEADY_FOR.as_secs(),
                f64::from(rate) / 1e3
            ),
            format!("precise (default), {TIMING_ROUNDS} runs:<br>{}", list(&precise)),
            format!("timer only, {TIMING_ROUNDS} runs:<br>{}", list(&timer_only)),
            format!(
                "rate {:.2} % ({:.2} % while its CPU ran), CPU {:.0} % vs {:.0} %",
                100.0 * achieved,
                100.0 * while_running,
                100.0 * cpu,
                100.0 * timer_cpu
            ),
            "rate >= 99.5 % while its CPU ran, CPU <= max(2 x, +10 points) of timer only, \
             bound holds",
            verdict(met),
        );
    }
    outcome
}

/// Callers that each acquire again as soon as they are granted: demand always above the
/// rate, as in a service that is being limited.
const STEADY_CALLERS: usize = 32;
/// Runs of each mode per configuration, alternating.
const TIMING_ROUNDS: usize = 3;
/// How long the callers of a run keep asking.
const STEADY_FOR: Duration = Duration::from_secs(2);

/// One run of steady demand on one bucket.
struct SteadyRun {
    /// The bucket's grant instants (`Granted::granted_at`) while the callers asked, in
    /// seconds after the first, each with the CPU the bucket's thread ran on when the
    /// caller resumed, on the same thread ([`NO_CPU`] where it is not known).
    grants: Vec<(f64, i32)>,
    /// When the callers stopped asking, in seconds after the first grant.
    end: f64,
    /// The configured rate, per second.
    rate: f64,
    /// The configured capacity.
    capacity: f64,
    /// The largest excess over the conformance bound at the grant instants, those after
    /// [`end`](Self::end) included, in grants.
    excess: f64,
    /// Process CPU seconds per wall second over the run, the witnesses' own left out.
    cpu: f64,
    /// Process CPU seconds per wall second in the 300 ms after the run, nobody waiting.
    idle_cpu: f64,
    /// The spans in which a CPU ran nothing: see [`Witness`].
    frozen: Vec<Span>,
}

/// A span of time on one CPU, in seconds after the first grant.
#[derive(Clone, Copy)]
struct Span {
    /// The CPU, or [`NO_CPU`].
    cpu: i32,
    /// When it begins.
    start: f64,
    /// How long it lasts.
    length: f64,
}

impl Span {
    /// When it ends.
    fn end(&self) -> f64 {
        self.start + self.length
    }

    /// How long this span and `other` share on the same, known CPU.
    fn overlap(&self, other: &Span) -> f64 {
        if self.cpu == NO_CPU || self.cpu != other.cpu {
            return 0.0;
        }
        (self.end().min(other.end()) - self.start.max(other.start)).max(0.0)
    }
}

impl SteadyRun {
    /// Units granted after the burst per second of the run, over the configured rate. The
    /// run lasts until the last grant, and on to `end` where the bucket ran dry before it.
    fn achieved(&self) -> f64 {
        self.achieved_less(0.0)
    }

    /// [`achieved`](Self::achieved) over the time the bucket's CPU ran: the run's length
    /// less [`dry_while_frozen`](Self::dry_while_frozen).
    fn achieved_while_running(&self) -> f64 {
        self.achieved_less(self.dry_while_frozen())
    }

    /// [`achieved`](Self::achieved) over the run's length less `excused` seconds.
    fn achieved_less(&self, excused: f64) -> f64 {
        if self.grants.len() as f64 <= self.capacity {
            return f64::NAN; // nothing granted beyond the burst: no rate to speak of
        }
        let last = self.grants.last().map_or(0.0, |&(at, _)| at);
        let dry_at_the_end: f64 = self
            .dry_spells()
            .iter()
            .filter(|spell| spell.start >= last)
            .map(|spell| spell.length)
            .sum();
        (self.grants.len() as f64 - self.capacity) / (last + dry_at_the_end - excused) / self.rate
    }

    /// The spells in which the bucket stood empty while callers waited (its leak lost to
    /// the rate), in order, the last running to `end` if the bucket was dry then. A spell's
    /// CPU is the one the bucket's thread ran on at the grants on both sides of it (where
    /// its timer was armed and where it woke); [`NO_CPU`] if they differ.
    fn dry_spells(&self) -> Vec<Span> {
        let mut level = 0.0;
        let mut previous = (0.0, NO_CPU);
        let mut spells = Vec::new();
        let callers_stop = std::iter::once((self.end, NO_CPU));
        for (at, cpu) in self.grants.iter().copied().chain(callers_stop) {
            let leaked = self.rate * (at - previous.0);
            if leaked > level {
                spells.push(Span {
                    cpu: if cpu == previous.1 { cpu } else { NO_CPU },
                    start: previous.0 + level / self.rate,
                    length: (leaked - level) / self.rate,
                });
            }
            level = (level - leaked).max(0.0) + 1.0;
            previous = (at, cpu);
        }
        spells
    }

    /// How long the bucket stood empty while the CPU its thread ran on was frozen, beyond
    /// what a bucket served without delay would have stood through: such a bucket is at
    /// most full when a freeze begins and runs dry `capacity / rate` into it, so only the
    /// part of a freeze after that counts.
    fn dry_while_frozen(&self) -> f64 {
        let full_for = self.capacity / self.rate;
        let beyond_a_full_bucket: Vec<Span> = self
            .frozen
            .iter()
            .filter(|freeze| freeze.length > full_for)
            .map(|freeze| Span {
                cpu: freeze.cpu,
                start: freeze.start + full_for,
                length: freeze.length - full_for,
            })
            .collect();
        self.dry_spells()
            .iter()
            .flat_map(|spell| {
                beyond_a_full_bucket
                    .iter()
                    .map(|freeze| spell.overlap(freeze))
            })
            .sum()
    }

    /// Its line in a cell of the table.
    fn describe(&self) -> String {
        let bound = if self.excess <= 1e-6 {
            "bound holds".to_string()
        } else {
            format!("bound **exceeded by {:.6}**", self.excess)
        };
        format!(
            "{:.2} % at CPU {:.0} % ({bound}; idle CPU {:.2} %; {:.3} % of the time its CPU ran)",
            100.0 * self.achieved(),
            100.0 * self.cpu,
            100.0 * self.idle_cpu,
            100.0 * self.achieved_while_running()
        )
    }
}
/// [`STEADY_CALLERS`] tasks on the bucket's own arbiter acquire 1 unit in a loop for
/// [`STEADY_FOR`], with a [`Witness`] beside them.
fn steady(precise: bool, rate: u32, capacity: u32) -> SteadyRun {
    let system = System::new();
    let run = system.block_on(async move {
        let config = BucketConfig::from_rate(f64::from(rate), f64::from(capacity)).unwrap();
        let bucket = BucketActor::new(config).precise_timing(precise).start();
        actix_rt::time::sleep(Duration::from_millis(20)).await; // the actor has started
        let grants = Rc::new(RefCell::new(Vec::with_capacity(2 * rate as usize + 64)));
        // Read before the witnesses start and after they end, so without their CPU.
        let cpu_start = threads_cpu_seconds();
        let witness = Witness::start();
        let wall_start = Instant::now();
        let end = wall_start + STEADY_FOR;
        let callers: Vec<_> = (0..STEADY_CALLERS)
            .map(|_| {
                let (bucket, grants) = (bucket.clone(), grants.clone());
                actix_rt::spawn(async move {
                    while Instant::now() < end {
                        let granted = bucket.send(Acquire::new(1.0)).await.unwrap().unwrap();
                        grants
                            .borrow_mut()
                            .push((granted.granted_at.into_std(), current_cpu()));
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        let stalls = witness.finish();
        let cpu = (threads_cpu_seconds() - cpu_start) / wall_start.elapsed().as_secs_f64();
        let idle_cpu = idle_cpu().await;
        let mut grants = grants.borrow().clone();
        grants.sort();
        let first = grants[0].0;
        let since_first = |at: Instant| match at.checked_duration_since(first) {
            Some(since) => since.as_secs_f64(),
            None => -first.duration_since(at).as_secs_f64(),
        };
        let all: Vec<f64> = grants.iter().map(|&(at, _)| since_first(at)).collect();
        let capacity = f64::from(capacity);
        // Demand is steady until the callers stop asking, at `end`: after it, the last
        // waiters may be granted as late as their window allows, rate or not.
        grants.retain(|&(at, _)| at <= end);
        SteadyRun {
            grants: grants
                .iter()
                .map(|&(at, cpu)| (since_first(at), cpu))
                .collect(),
            end: since_first(end),
            rate: f64::from(rate),
            capacity,
            excess: excess_over(&all, f64::from(rate), capacity, 0.0),
            cpu,
            idle_cpu,
            frozen: stalls
                .iter()
                .map(|stall| Span {
                    cpu: stall.cpu,
                    start: since_first(stall.from),
                    length: stall.length.as_secs_f64(),
                })
                .collect(),
        }
    });
    drop(system);
    run
}
