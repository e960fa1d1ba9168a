//! The arithmetic and the lane's grant loop on random scenarios, checked against an
//! independent statement of the semantics.
//!
//! A scenario is a random bucket (capacity 1 to 1e9, period 1 us to 60 s) and random
//! batches of arrivals (amounts from 0 to the capacity, at random gaps). A lane serves
//! them as a front end would: at the start of each planned window (an exact timer), or on
//! the first whole millisecond at or after it (tokio's timer on a paused clock). The
//! grants it makes are checked without the lane's own arithmetic:
//!
//! - conformance: for every run of grants i..=j, `sum <= capacity + rate × (t_j - t_i)`,
//!   to the documented tolerance, 2^-50 of the capacity;
//! - FIFO: grants in arrival order, none before its arrival;
//! - work conservation: each grant at its earliest conformant instant (recomputed from
//!   the grant history alone), rounded up to the nanosecond, or within a tick of it on a
//!   millisecond timer; never before it by more than the tolerance.
//!
//! Cases: `RELIABILITY_CASES` (default 2,000 per property); each case has its own seed,
//! printed on failure, and `RELIABILITY_SEED` replays from it.

use std::time::Duration;

use super::{Bench, TICK};
use crate::core::bucket::ROUNDING;
use crate::core::{Bucket, Lanes, Limits, Time};

/// The tests' timer tick, in the nanoseconds of the core's [`Time`].
const TICK_NS: u64 = TICK.as_nanos() as u64;

/// Runs `check` on random cases; a failure names its seed.
fn for_random_cases(default_cases: u64, check: impl Fn(&mut fastrand::Rng) -> Result<(), String>) {
    let env = |name: &str| std::env::var(name).ok().map(|value| value.parse::<u64>());
    let cases = env("RELIABILITY_CASES")
        .map_or(Ok(default_cases), |v| v)
        .expect("a number");
    let first = env("RELIABILITY_SEED")
        .map_or(Ok(0x5eed_0000), |v| v)
        .expect("a number");
    for seed in first..first + cases {
        if let Err(failure) = check(&mut fastrand::Rng::with_seed(seed)) {
            panic!("case with RELIABILITY_SEED={seed} failed: {failure}");
        }
    }
}

macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if let false = $condition {
            return Err(format!($($message)+));
        }
    };
}

#[derive(Debug)]
struct Scenario {
    capacity: f64,
    period_ns: u64,
    /// Arrivals: the time since the previous batch (ns), and amounts as fractions of the
    /// capacity.
    batches: Vec<(u64, Vec<f64>)>,
}

fn scenario(rng: &mut fastrand::Rng) -> Scenario {
    let capacity = match rng.u8(0..5) {
        0 | 1 => 1.0 + rng.f64() * 999.0,
        2 => 1.0,
        3 => f64::from(rng.u32(1..=100)),
        _ => 1e9,
    };
    let period_ns = match rng.u8(0..4) {
        0 | 1 => rng.u64(1_000_000..10_000_000_000),
        2 => rng.u64(1_000..1_000_000),
        _ => rng.u64(1..=60) * 1_000_000_000,
    };
    let fraction = |rng: &mut fastrand::Rng| match rng.u8(0..7) {
        0..=2 => rng.f64(),
        3 => 0.0,
        4 => 1.0,
        5 => rng.f64() * 0.001,
        _ => f64::from(rng.u32(1..=8)) / 8.0,
    };
    let gap = |rng: &mut fastrand::Rng| match rng.u8(0..6) {
        0 | 1 => rng.u64(0..5_000_000),
        2 | 3 => rng.u64(0..2_000_000_000),
        4 => 0,
        _ => rng.u64(0..100) * TICK_NS,
    };
    let batches = (0..rng.usize(1..30))
        .map(|_| {
            let gap = gap(rng);
            (gap, (0..rng.usize(0..5)).map(|_| fraction(rng)).collect())
        })
        .collect();
    Scenario {
        capacity,
        period_ns,
        batches,
    }
}

#[derive(Debug, Clone, Copy)]
struct Served {
    arrival_ns: u64,
    at_ns: u64,
    amount: f64,
}

fn nanos(time: Time) -> u64 {
    u64::try_from(time.elapsed().as_nanos()).expect("scenarios end within 584 years")
}

fn time(ns: u64) -> Time {
    Time::since_epoch(Duration::from_nanos(ns))
}

/// Serves the scenario's arrivals through a lane, waking at the start of each window, or
/// on the first tick at or after it.
fn serve(scenario: &Scenario, tick: bool) -> Result<Vec<Served>, String> {
    let mut bench = Bench::new(scenario.capacity, Duration::from_nanos(scenario.period_ns));
    let mut arrivals = Vec::new();
    let mut served = Vec::new();
    let mut now = 0;
    let collect = |bench: &Bench, arrivals: &[(u64, f64)], served: &mut Vec<Served>| {
        for (caller, answer) in bench.answers() {
            let grant =
                answer.map_err(|refusal| format!("caller {caller} refused: {refusal:?}"))?;
            let (arrival_ns, amount) = arrivals[caller];
            ensure!(
                served.len() == caller,
                "caller {caller} granted out of order"
            );
            served.push(Served {
                arrival_ns,
                at_ns: nanos(grant.at),
                amount,
            });
            ensure!(
                grant.amount == amount,
                "granted {} for {amount}",
                grant.amount
            );
        }
        Ok::<(), String>(())
    };
    let wake_at = |earliest: u64| {
        if tick {
            earliest.div_ceil(TICK_NS) * TICK_NS
        } else {
            earliest
        }
    };
    let batches = scenario.batches.iter().map(Some).chain([None]);
    for batch in batches {
        let next = batch.map(|(gap, _)| now + gap);
        // Serve the queue up to the next arrival (or until it is empty).
        while let Some(wake) = bench.lane.next_wake() {
            let at = wake_at(nanos(wake.earliest));
            if next.is_some_and(|next| at > next) {
                break;
            }
            ensure!(at >= now, "a window opened in the past");
            now = at;
            let before = served.len();
            let (lane, mut env) = bench.env(time(now));
            lane.serve(&mut env);
            collect(&bench, &arrivals, &mut served)?;
            ensure!(
                served.len() > before,
                "woken at {now} ns for a head that does not fit"
            );
        }
        let Some((_, amounts)) = batch else { break };
        now = next.unwrap();
        for &fraction in amounts {
            let amount = fraction * scenario.capacity;
            arrivals.push((now, amount));
            if let Ok(grant) = bench.acquire(time(now), amount, None) {
                bench
                    .replies
                    .answers
                    .borrow_mut()
                    .push((arrivals.len() - 1, Ok(grant)));
            }
            collect(&bench, &arrivals, &mut served)?;
        }
    }
    ensure!(
        served.len() == arrivals.len(),
        "{} of {} granted",
        served.len(),
        arrivals.len()
    );
    Ok(served)
}

fn rate_per_ns(scenario: &Scenario) -> f64 {
    scenario.capacity / scenario.period_ns as f64
}

/// What the checker's own floats may round off, around quantities of size `magnitude`.
fn checker_rounding(magnitude: f64) -> f64 {
    16.0 * f64::EPSILON * magnitude
}

fn check_conformance(scenario: &Scenario, served: &[Served]) -> Result<(), String> {
    let rate = rate_per_ns(scenario);
    let tolerance = ROUNDING * scenario.capacity;
    for i in 0..served.len() {
        let mut sum = 0.0;
        for (j, grant) in served.iter().enumerate().skip(i) {
            sum += grant.amount;
            let window = (grant.at_ns - served[i].at_ns) as f64;
            let bound = scenario.capacity + rate * window;
            ensure!(
                sum <= bound + tolerance + checker_rounding(sum + bound),
                "grants {i}..={j} sum to {sum} in {window} ns, over the bound {bound}"
            );
        }
    }
    Ok(())
}

fn check_fifo(served: &[Served]) -> Result<(), String> {
    for (k, grant) in served.iter().enumerate() {
        ensure!(
            grant.at_ns >= grant.arrival_ns,
            "grant {k} before its arrival"
        );
        ensure!(
            k == 0 || grant.at_ns >= served[k - 1].at_ns,
            "grant {k} before grant {}",
            k - 1
        );
    }
    Ok(())
}

/// Each grant at most `allowance` ns after its earliest conformant instant, recomputed
/// with the leaky-bucket recurrence on the grant history, and never before it by more
/// than the tolerance.
fn check_work_conservation(
    scenario: &Scenario,
    served: &[Served],
    allowance: u64,
) -> Result<(), String> {
    let rate = rate_per_ns(scenario);
    let capacity = scenario.capacity;
    let mut level = 0.0f64; // just after the previous grant
    let mut previous = 0u64;
    for (k, grant) in served.iter().enumerate() {
        let fits_at = previous as f64 + (level + grant.amount - capacity) / rate;
        let earliest = (grant.arrival_ns.max(previous) as f64).max(fits_at);
        let late = grant.at_ns as f64 - earliest;
        let rounding = checker_rounding(level + capacity) / rate;
        ensure!(
            late <= allowance as f64 + 1.0 + rounding,
            "grant {k} at {} ns, {late} ns after its earliest conformant instant {earliest}",
            grant.at_ns
        );
        ensure!(
            late >= -(ROUNDING * capacity / rate) - rounding,
            "grant {k} at {} ns, {} ns before its earliest conformant instant {earliest}",
            grant.at_ns,
            -late
        );
        level = (level - rate * (grant.at_ns - previous) as f64).max(0.0) + grant.amount;
        previous = grant.at_ns;
    }
    Ok(())
}

#[test]
fn grants_on_an_exact_timer_conform_keep_fifo_and_come_at_their_earliest_instant() {
    for_random_cases(2000, |rng| {
        let scenario = scenario(rng);
        let served = serve(&scenario, false).map_err(|e| format!("{e} in {scenario:?}"))?;
        check_conformance(&scenario, &served)?;
        check_fifo(&served)?;
        check_work_conservation(&scenario, &served, 0).map_err(|e| format!("{e} in {scenario:?}"))
    });
}

#[test]
fn grants_on_a_millisecond_timer_conform_and_are_at_most_one_tick_late() {
    for_random_cases(2000, |rng| {
        let scenario = scenario(rng);
        let served = serve(&scenario, true).map_err(|e| format!("{e} in {scenario:?}"))?;
        check_conformance(&scenario, &served)?;
        check_fifo(&served)?;
        check_work_conservation(&scenario, &served, TICK_NS)
            .map_err(|e| format!("{e} in {scenario:?}"))
    });
}

#[test]
fn a_wait_is_enough_and_no_longer_than_needed() {
    for_random_cases(2000, |rng| {
        let capacity = 1.0 + rng.f64() * 999.0;
        let period = Duration::from_millis(rng.u64(1..100_000));
        let limits = &Limits::per_period(capacity, period);
        let mut bucket = Bucket::new(Time::default());
        bucket.fill(limits.scaled(rng.f64() * capacity));
        let amount = limits.scaled(rng.f64() * capacity);
        let wait = bucket.wait(limits, amount);
        let mut after = bucket;
        after.leak(limits, time(0).after(wait));
        ensure!(after.fits(limits, amount), "not fitting after {wait:?}");
        if wait > Duration::ZERO {
            // A nanosecond less is not enough, unless within the tolerance.
            let mut before = bucket;
            before.leak(limits, time(0).after(wait - Duration::from_nanos(1)));
            let short = before.needed(limits, limits.unscaled(amount));
            ensure!(
                !before.fits(limits, amount) || short > -ROUNDING * capacity,
                "fits a nanosecond early by {short}"
            );
        }
        // A larger amount never waits less.
        ensure!(
            bucket.wait(limits, amount + 1.0) >= wait,
            "a larger amount waits less"
        );
        Ok(())
    });
}

#[test]
fn amounts_from_zero_to_the_capacity_are_valid_and_nothing_else() {
    for_random_cases(2000, |rng| {
        let capacity = 1.0 + rng.f64() * 1e12;
        let limits = Limits::per_period(capacity, Duration::from_secs(1));
        let amount = f64::from_bits(rng.u64(..));
        let valid = amount.is_finite() && amount >= 0.0 && amount <= capacity;
        ensure!(
            limits.check(amount).is_ok() == valid,
            "{amount} against {capacity}"
        );
        Ok(())
    });
}

#[test]
fn a_leak_never_goes_below_zero_nor_back_in_time() {
    for_random_cases(2000, |rng| {
        let limits = &Limits::per_period(1000.0, Duration::from_secs(1));
        let fill = rng.f64() * 1000.0;
        let mut bucket = Bucket::new(Time::default());
        bucket.fill(fill);
        let mut latest = 0;
        for _ in 0..rng.usize(1..20) {
            let step = rng.u64(0..3_000_000_000);
            let before = bucket.level(limits);
            bucket.leak(limits, time(step));
            let after = bucket.level(limits);
            ensure!(after >= 0.0, "below zero");
            if step <= latest {
                ensure!(after == before, "a leak into the past changed the level");
            } else {
                let expected = (before - 1000.0 * (step - latest) as f64 * 1e-9).max(0.0);
                ensure!(
                    (after - expected).abs() <= 1e-9 * fill.max(1.0),
                    "{after} != {expected}"
                );
                latest = step;
            }
        }
        Ok(())
    });
}

#[test]
fn a_request_fits_when_it_exceeds_the_capacity_by_the_tolerance_and_not_a_unit_more() {
    for_random_cases(2000, |rng| {
        // Whole numbers up to 2^52 and multiples of the capacity's last place: every
        // quantity here is exact, so only the tolerance decides.
        let capacity = (rng.u64(1..1 << 52)) as f64;
        let limits = &Limits::per_period(capacity, Duration::from_secs(1));
        let level = rng.u64(0..=capacity as u64) as f64;
        let unit = capacity * f64::EPSILON;
        let over = rng.u32(0..16);
        let amount = (capacity - level) + f64::from(over) * unit;
        if !(amount - (capacity - level) == f64::from(over) * unit) {
            return Ok(()); // not exactly representable: no verdict to check
        }
        let mut bucket = Bucket::new(Time::default());
        bucket.fill(level);
        let fits = bucket.fits(limits, amount);
        ensure!(
            fits == (f64::from(over) * unit <= ROUNDING * capacity),
            "capacity {capacity}, level {level}, {over} units over: fits {fits}"
        );
        Ok(())
    });
}
