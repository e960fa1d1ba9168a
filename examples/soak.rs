//! Soak test: a bucket in real time under churn, with its invariants checked on every answer.
//!
//! ```sh
//! cargo run --release --example soak -- --seconds 20 --rate 2000
//! ```
//!
//! A generator offers 125% of the bucket's rate in mixed amounts (0, 0.5, 1, 3, a quarter
//! of the capacity, and invalid ones), a third of them with timeouts (some zero: try-acquire),
//! some abandoned by their callers at a random moment, against a bounded queue. Every answer
//! is checked as it arrives:
//!
//! - every request gets exactly one answer of the kind its input allows;
//! - grants are made in the order the requests were sent (strict FIFO), certified: a later
//!   request's grant may not certainly precede an earlier one's (each grant lies between
//!   `sent + waited` and the moment its caller saw it). Callers are separate tasks and may
//!   see their answers in another order ("reordered" counts those); that is no violation;
//! - conformance, certified: for any run of consecutive grants i..j, their sum is at most
//!   `capacity + rate × (latest possible time of j − earliest possible time of i)`, where the
//!   earliest time of a grant is `sent + waited` and the latest is when its caller saw it. No
//!   tolerance is needed: a breach is a real over-grant;
//! - a timed request is granted within its timeout (plus one timer tick and `--late-ms` of
//!   real-time scheduling slack), and a refusal comes at once with `retry_after > timeout`;
//! - requests after a graceful shutdown are refused, and the shutdown completes;
//! - the achieved rate over the run is at least `--min-efficiency` of what the bucket allows;
//! - resident memory at the end is at most `--max-growth-mib` above the level after warm-up.
//!
//! Each second it prints the achieved rate, the queue, the counts, the checks and the resident
//! memory (from /proc/self/statm). It exits 1 on any violation.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, Addr, MailboxError};
use actix_leaky_bucket::{
    Acquire, AcquireError, BucketActor, BucketConfig, CapacityInfo, Granted, Shutdown,
};
use actix_rt::time::Instant;

const TICK: Duration = actix_leaky_bucket::TIMER_TICK;
const MAX_QUEUE: usize = 200;
const SHOWN_VIOLATIONS: u64 = 20;

struct Args {
    seconds: u64,
    rate: f64,
    late_ms: u64,
    min_efficiency: f64,
    max_growth_mib: f64,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let env = |name: &str| std::env::var(name).ok();
    let mut args = Args {
        seconds: env("SOAK_SECONDS")
            .map_or(Ok(20), |s| s.parse())
            .map_err(|e| format!("SOAK_SECONDS: {e}"))?,
        rate: env("SOAK_RATE")
            .map_or(Ok(2000.0), |s| s.parse())
            .map_err(|e| format!("SOAK_RATE: {e}"))?,
        late_ms: 20,
        min_efficiency: 0.9,
        max_growth_mib: 8.0,
        seed: 0x5eed,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--rate" => args.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--late-ms" => {
                args.late_ms = value()?.parse().map_err(|e| format!("--late-ms: {e}"))?
            }
            "--min-efficiency" => {
                args.min_efficiency = value()?
                    .parse()
                    .map_err(|e| format!("--min-efficiency: {e}"))?
            }
            "--max-growth-mib" => {
                args.max_growth_mib = value()?
                    .parse()
                    .map_err(|e| format!("--max-growth-mib: {e}"))?
            }
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "-h" | "--help" => {
                return Err(
                    "usage: soak [--seconds N] [--rate UNITS_PER_S] [--late-ms MS] \
                            [--min-efficiency F] [--max-growth-mib MIB] [--seed N]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.seconds == 0 || !(args.rate.is_finite() && args.rate >= 20.0) {
        return Err("need --seconds >= 1 and --rate >= 20".into());
    }
    Ok(args)
}

/// Resident memory in bytes, from /proc/self/statm (4 KiB pages).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
}

struct Request {
    seq: u64,
    amount: f64,
    valid: bool,
    timeout: Option<Duration>,
    after_shutdown: bool,
}

#[derive(Default)]
struct Stats {
    sent: u64,
    finished: u64,
    granted: u64,
    granted_units: f64,
    timeouts: u64,
    queue_full: u64,
    invalid: u64,
    cancelled: u64,
    shutting_down: u64,
    second_units: f64,
    /// Recent grants by request number: (earliest, latest) possible grant instant, in s.
    recent: BTreeMap<u64, (f64, f64)>,
    /// Grants seen in another order than their requests' (callers are tasks, and a task
    /// that gets its answer in its first poll can run before one woken earlier): not a
    /// violation unless the grant instants prove it.
    reordered: u64,
    /// Sum of the amounts granted so far.
    prefix: f64,
    /// max over earlier grants i of `rate × earliest(i) − prefix before i`.
    certified_best: f64,
    /// The same with the observed time of i: an uncertified, tighter estimate.
    observed_best: f64,
    max_certified_excess: f64,
    max_observed_excess: f64,
    max_late: Duration,
    max_refusal_latency: Duration,
    violations: u64,
}

struct Soak {
    capacity: f64,
    rate: f64,
    late: Duration,
    t0: Instant,
    stats: RefCell<Stats>,
}

impl Soak {
    fn violation(&self, stats: &mut Stats, what: String) {
        stats.violations += 1;
        if stats.violations <= SHOWN_VIOLATIONS {
            println!("VIOLATION: {what}");
        }
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.t0).as_secs_f64()
    }

    fn record(
        &self,
        request: &Request,
        sent_at: Instant,
        outcome: Option<Result<Result<Granted, AcquireError>, MailboxError>>,
    ) {
        let now = Instant::now();
        let mut stats = self.stats.borrow_mut();
        let stats = &mut *stats;
        stats.finished += 1;
        let seq = request.seq;
        let Some(outcome) = outcome else {
            stats.cancelled += 1;
            return;
        };
        let answer = match outcome {
            Ok(answer) => answer,
            Err(error) => {
                if !request.after_shutdown {
                    self.violation(stats, format!("#{seq}: mailbox error {error}"));
                }
                return;
            }
        };
        match answer {
            Ok(granted) => {
                if request.after_shutdown || !request.valid {
                    self.violation(
                        stats,
                        format!("#{seq}: granted {granted:?} but should not be"),
                    );
                }
                if granted.amount.to_bits() != request.amount.to_bits() {
                    self.violation(
                        stats,
                        format!("#{seq}: granted {} of {}", granted.amount, request.amount),
                    );
                }
                // FIFO, certified: a grant of a later request may not certainly precede
                // the grant of an earlier one. Its instant lies between `sent + waited` and
                // when its caller saw it.
                let earliest = self.secs(sent_at + granted.waited);
                let latest = self.secs(now);
                if stats.recent.range(seq..).next().is_some() {
                    stats.reordered += 1;
                }
                let before = stats.recent.range(..seq).next_back().map(|(&s, &t)| (s, t));
                let after = stats
                    .recent
                    .range(seq + 1..)
                    .map(|(&s, &t)| (s, t))
                    .collect::<Vec<_>>();
                if let Some((other, (other_earliest, _))) = before.filter(|(_, (e, _))| *e > latest)
                {
                    self.violation(
                        stats,
                        format!(
                            "FIFO: #{other} granted at {other_earliest} s or later, after #{seq}, \
                             granted by {latest} s"
                        ),
                    );
                }
                for (other, (_, other_latest)) in after {
                    if earliest > other_latest {
                        self.violation(
                            stats,
                            format!(
                                "FIFO: #{seq} granted at {earliest} s or later, after #{other}, \
                                 granted by {other_latest} s"
                            ),
                        );
                    }
                }
                stats.recent.insert(seq, (earliest, latest));
                while stats.recent.len() > 4096 {
                    stats.recent.pop_first();
                }
                if let Some(timeout) = request.timeout {
                    let late = granted.waited.saturating_sub(timeout + TICK);
                    stats.max_late = stats.max_late.max(late);
                    if late > self.late {
                        self.violation(
                            stats,
                            format!("#{seq}: waited {:?}, timeout {timeout:?}", granted.waited),
                        );
                    }
                }
                // Certified conformance over every run of consecutive grants ending here.
                let observed = latest;
                stats.certified_best = stats
                    .certified_best
                    .max(self.rate * earliest - stats.prefix);
                stats.observed_best = stats.observed_best.max(self.rate * observed - stats.prefix);
                stats.prefix += granted.amount;
                let certified =
                    stats.prefix - self.rate * observed + stats.certified_best - self.capacity;
                let tight =
                    stats.prefix - self.rate * observed + stats.observed_best - self.capacity;
                stats.max_certified_excess = stats.max_certified_excess.max(certified);
                stats.max_observed_excess = stats.max_observed_excess.max(tight);
                if certified > 1e-6 * self.capacity + 1e-9 * stats.prefix {
                    self.violation(
                        stats,
                        format!("conformance: {certified} units over the bound at #{seq}"),
                    );
                }
                stats.granted += 1;
                stats.granted_units += granted.amount;
                stats.second_units += granted.amount;
            }
            Err(error) => {
                let latency = now.saturating_duration_since(sent_at);
                let expected = match &error {
                    AcquireError::InvalidAmount { .. } => {
                        stats.invalid += 1;
                        !request.valid
                    }
                    AcquireError::Timeout {
                        timeout,
                        retry_after,
                        amount,
                    } => {
                        stats.timeouts += 1;
                        request.timeout == Some(*timeout)
                            && retry_after > timeout
                            && amount.to_bits() == request.amount.to_bits()
                            && request.valid
                    }
                    AcquireError::QueueFull { max_queue, .. } => {
                        stats.queue_full += 1;
                        *max_queue == MAX_QUEUE && request.valid
                    }
                    AcquireError::ShuttingDown => {
                        stats.shutting_down += 1;
                        request.after_shutdown
                    }
                    _ => false,
                };
                if !expected {
                    self.violation(stats, format!("#{seq}: unexpected {error:?}"));
                }
                if !matches!(error, AcquireError::ShuttingDown) {
                    stats.max_refusal_latency = stats.max_refusal_latency.max(latency);
                    if latency > self.late {
                        self.violation(stats, format!("#{seq}: refused only after {latency:?}"));
                    }
                }
            }
        }
    }
}

fn next_request(rng: &mut fastrand::Rng, seq: u64, capacity: f64) -> (Request, Option<Duration>) {
    let (amount, valid) = match rng.u64(..100) {
        0..=59 => (1.0, true),
        60..=74 => (0.5, true),
        75..=84 => (3.0, true),
        85..=89 => (0.0, true),
        90..=94 => (capacity / 4.0, true),
        95 => (f64::NAN, false),
        96 => (-1.0, false),
        97 => (capacity * 2.0, false),
        _ => (f64::INFINITY, false),
    };
    let timeout = match rng.u64(..100) {
        0..=4 => Some(Duration::ZERO),
        5..=34 => Some(Duration::from_millis(rng.u64(..800))),
        _ => None,
    };
    let cancel_after = (rng.u64(..100) < 15).then(|| Duration::from_millis(rng.u64(..600)));
    let request = Request {
        seq,
        amount,
        valid,
        timeout,
        after_shutdown: false,
    };
    (request, cancel_after)
}

fn send(
    soak: &Rc<Soak>,
    addr: &Addr<BucketActor>,
    request: Request,
    cancel_after: Option<Duration>,
) {
    soak.stats.borrow_mut().sent += 1;
    let sent_at = Instant::now();
    let reply = addr.send(Acquire {
        amount: request.amount,
        timeout: request.timeout,
    });
    let soak = Rc::clone(soak);
    actix_rt::spawn(async move {
        let outcome = match cancel_after {
            Some(after) => tokio::time::timeout(after, reply).await.ok(),
            None => Some(reply.await),
        };
        soak.record(&request, sent_at, outcome);
    });
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    // A burst of a twentieth of a second's worth.
    let capacity = (args.rate / 20.0).max(1.0);
    let config = BucketConfig::new(capacity, Duration::from_secs_f64(capacity / args.rate))
        .expect("a valid configuration");
    let rate = config.leak_rate();
    println!(
        "soak: {} s at {rate}/s, capacity {capacity}, max_queue {MAX_QUEUE}, offered 125%, seed {}",
        args.seconds, args.seed
    );
    let t0 = Instant::now();
    let addr = BucketActor::new(config).max_queue(MAX_QUEUE).start();
    let soak = Rc::new(Soak {
        capacity,
        rate,
        late: Duration::from_millis(args.late_ms),
        t0,
        stats: RefCell::new(Stats::default()),
    });

    let rss_start = rss_bytes();
    let warm_second = (args.seconds / 10).max(2).min(args.seconds);
    let mut rss_warm = rss_start;
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut seq = 0;
    let mut budget = 0.0;
    let offered_per_tick = 1.25 * rate * TICK.as_secs_f64();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_report = t0 + Duration::from_secs(1);
    let mut second = 0;
    let mut last_tick = t0;
    let mut units_before = 0.0;
    while second < args.seconds {
        ticks.tick().await;
        let now = Instant::now();
        budget += offered_per_tick * (now - last_tick).as_secs_f64() / TICK.as_secs_f64();
        last_tick = now;
        while budget > 0.0 {
            let (request, cancel_after) = next_request(&mut rng, seq, capacity);
            if request.valid {
                budget -= request.amount.max(0.1);
            }
            seq += 1;
            send(&soak, &addr, request, cancel_after);
        }
        if now >= next_report {
            next_report += Duration::from_secs(1);
            second += 1;
            let queue = addr
                .send(CapacityInfo::default())
                .await
                .expect("the bucket answers");
            let rss = rss_bytes();
            if second == warm_second {
                rss_warm = rss;
            }
            let mut stats = soak.stats.borrow_mut();
            if queue.waiters > MAX_QUEUE {
                let waiters = queue.waiters;
                soak.violation(&mut stats, format!("{waiters} waiters, above max_queue"));
            }
            let units = std::mem::take(&mut stats.second_units);
            println!(
                "[{second:4}s] rate {units:8.1}/s queue {:4} | sent {} granted {} timeouts {} \
                 full {} cancelled {} invalid {} | excess certified {:.3} observed {:.3} \
                 late {:?} reordered {} | rss {} | violations {}",
                queue.waiters,
                stats.sent,
                stats.granted,
                stats.timeouts,
                stats.queue_full,
                stats.cancelled,
                stats.invalid,
                stats.max_certified_excess,
                stats.max_observed_excess,
                stats.max_late,
                stats.reordered,
                mib(rss),
                stats.violations,
            );
            units_before += units;
        }
    }
    let load_end = Instant::now();
    let rss_end = rss_bytes();

    // A graceful shutdown: requests after it are refused; it completes once the queue is served.
    let shutdown = addr.send(Shutdown::graceful());
    for _ in 0..10 {
        let request = Request {
            seq,
            amount: 1.0,
            valid: true,
            timeout: None,
            after_shutdown: true,
        };
        seq += 1;
        send(&soak, &addr, request, None);
    }
    let shutdown_ok = tokio::time::timeout(Duration::from_secs(30), shutdown).await;
    let drained = Instant::now() - load_end;
    if !matches!(shutdown_ok, Ok(Ok(()))) {
        let mut stats = soak.stats.borrow_mut();
        soak.violation(
            &mut stats,
            format!("graceful shutdown did not complete: {shutdown_ok:?}"),
        );
    }
    // Every request must be answered (or abandoned by its caller).
    let deadline = Instant::now() + Duration::from_secs(30);
    while {
        let stats = soak.stats.borrow();
        stats.finished < stats.sent
    } && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let elapsed = load_end - t0;
    let mut stats = soak.stats.borrow_mut();
    if stats.finished != stats.sent {
        let (finished, sent) = (stats.finished, stats.sent);
        soak.violation(
            &mut stats,
            format!("{finished} of {sent} requests finished"),
        );
    }
    let allowed = capacity + rate * elapsed.as_secs_f64();
    let efficiency = units_before / allowed;
    if efficiency < args.min_efficiency {
        soak.violation(
            &mut stats,
            format!(
                "achieved {efficiency:.3} of the allowed rate, below {}",
                args.min_efficiency
            ),
        );
    }
    let growth = match (rss_warm, rss_end) {
        (Some(warm), Some(end)) => end as f64 / 1048576.0 - warm as f64 / 1048576.0,
        _ => 0.0,
    };
    if growth > args.max_growth_mib {
        soak.violation(
            &mut stats,
            format!("resident memory grew {growth:.1} MiB after warm-up"),
        );
    }
    println!(
        "summary: {:.1} s, sent {} granted {} ({:.0} units; during the load {:.0}, {:.1}% of the \
         {:.0} allowed) timeouts {} \
         queue-full {} cancelled {} invalid {} shutting-down {} | max certified excess {:.3} \
         units, max observed excess {:.3} units, max late {:?}, max refusal latency {:?}, \
         seen reordered {} | \
         drained in {drained:?} | rss start {} warm {} end {} (growth {growth:.1} MiB) | \
         violations {}",
        elapsed.as_secs_f64(),
        stats.sent,
        stats.granted,
        stats.granted_units,
        units_before,
        100.0 * efficiency,
        allowed,
        stats.timeouts,
        stats.queue_full,
        stats.cancelled,
        stats.invalid,
        stats.shutting_down,
        stats.max_certified_excess,
        stats.max_observed_excess,
        stats.max_late,
        stats.max_refusal_latency,
        stats.reordered,
        mib(rss_start),
        mib(rss_warm),
        mib(rss_end),
        stats.violations,
    );
    if stats.violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
