//! Property tests of the pure arithmetic (`LeakyBucket`): random capacities, periods,
//! arrival times and amounts, a FIFO queue served by the arithmetic, and three checks on
//! the grants it produces:
//!
//! - conformance: for every run of grants i..j, `sum <= capacity + rate × (t_j − t_i)`;
//! - FIFO: grants come in arrival order, none before its arrival;
//! - work conservation: each grant comes no later than its earliest conformant time (given
//!   the grants before it), plus one timer tick when the server wakes on a 1 ms timer.
//!
//! The earliest conformant time is computed by an independent reference (the level after
//! each grant, recomputed from the grant history alone), not by `LeakyBucket`.
//!
//! Cases: `RELIABILITY_CASES` (see `common::proptest_config`).

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix_leaky_bucket::{AcquireError, BucketConfig, LeakyBucket};
use proptest::prelude::*;

const TICK_NS: u64 = 1_000_000;

#[derive(Debug, Clone)]
struct Scenario {
    capacity: f64,
    period_ns: u64,
    /// Batches of arrivals: the time since the previous batch, and the amounts, as
    /// fractions of the capacity.
    batches: Vec<(u64, Vec<f64>)>,
}

fn fraction() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => 0.0..=1.0f64,
        1 => Just(0.0),
        1 => Just(1.0),
        1 => 0.0..0.001f64,
        1 => (1u32..=8).prop_map(|n| f64::from(n) / 8.0),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let capacity = prop_oneof![
        2 => 1.0..1000.0f64,
        1 => Just(1.0),
        1 => (1u32..=100).prop_map(f64::from),
        1 => Just(1e9),
    ];
    let period_ns = prop_oneof![
        2 => 1_000_000u64..10_000_000_000,
        1 => 1_000u64..1_000_000,
        1 => (1u64..=60).prop_map(|s| s * 1_000_000_000),
    ];
    let gap = prop_oneof![
        2 => 0u64..5_000_000,
        2 => 0u64..2_000_000_000,
        1 => Just(0u64),
        1 => (0u64..100).prop_map(|ms| ms * TICK_NS),
    ];
    let batches = prop::collection::vec((gap, prop::collection::vec(fraction(), 0..5)), 1..30);
    (capacity, period_ns, batches).prop_map(|(capacity, period_ns, batches)| Scenario {
        capacity,
        period_ns,
        batches,
    })
}

#[derive(Debug, Clone, Copy)]
struct Grant {
    id: usize,
    arrival_ns: u64,
    at_ns: u64,
    amount: f64,
}

/// Serves the scenario's arrivals in FIFO order with `LeakyBucket` alone. With `tick`, the
/// server sleeps as a tokio timer does: to the first whole tick at or after the head's
/// due instant; without, it wakes at the due nanosecond.
fn serve(scenario: &Scenario, tick: bool) -> Result<Vec<Grant>, TestCaseError> {
    let start = Instant::now();
    let config = BucketConfig::new(scenario.capacity, Duration::from_nanos(scenario.period_ns))
        .map_err(|e| TestCaseError::reject(e.to_string()))?;
    let mut bucket = LeakyBucket::new(config, start);
    let at = |ns: u64| start + Duration::from_nanos(ns);
    let mut queue: VecDeque<(usize, u64, f64)> = VecDeque::new();
    let mut grants = Vec::new();
    let mut now = 0u64;
    let mut id = 0;

    let grant_heads = |bucket: &mut LeakyBucket,
                       queue: &mut VecDeque<(usize, u64, f64)>,
                       grants: &mut Vec<Grant>,
                       now: u64| {
        bucket.leak(at(now));
        while let Some(&(id, arrival_ns, amount)) = queue.front() {
            if !bucket.fits(amount) {
                break;
            }
            queue.pop_front();
            bucket.fill(amount);
            grants.push(Grant {
                id,
                arrival_ns,
                at_ns: now,
                amount,
            });
        }
    };

    let arrivals = scenario
        .batches
        .iter()
        .scan(0u64, |t, (gap, amounts)| {
            *t += gap;
            Some((*t, amounts))
        })
        .map(|(t, amounts)| (Some(t), amounts.as_slice()))
        .chain(std::iter::once((None, &[][..])));
    for (arrival, amounts) in arrivals {
        // Serve the queue up to the next arrival (or until it is empty).
        while let Some(&(_, _, amount)) = queue.front() {
            bucket.leak(at(now));
            let wait = bucket.time_until_fits(amount).as_nanos() as u64;
            prop_assert!(wait > 0, "the head does not fit, yet its wait is zero");
            let due = now + wait;
            let wake = if tick {
                due.div_ceil(TICK_NS) * TICK_NS
            } else {
                due
            };
            if arrival.is_some_and(|t| wake > t) {
                break;
            }
            now = wake;
            let before = grants.len();
            grant_heads(&mut bucket, &mut queue, &mut grants, now);
            prop_assert!(
                grants.len() > before,
                "after waiting time_until_fits ({wait} ns) the head still does not fit"
            );
        }
        let Some(t) = arrival else { break };
        now = t;
        for &fraction in amounts {
            let amount = fraction * scenario.capacity;
            prop_assert_eq!(bucket.check_amount(amount), Ok(()));
            queue.push_back((id, t, amount));
            id += 1;
        }
        grant_heads(&mut bucket, &mut queue, &mut grants, now);
        prop_assert!(bucket.level() >= 0.0);
    }
    prop_assert!(queue.is_empty());
    prop_assert_eq!(grants.len(), id, "every arrival is granted");
    Ok(grants)
}

fn rate_per_ns(scenario: &Scenario) -> f64 {
    scenario.capacity / scenario.period_ns as f64
}

/// What floating-point rounding may add to a sum of amounts or a leak: relative to the
/// largest quantity involved, plus the bucket's documented slack (a nanosecond of leak
/// and a trillionth of the capacity) once per grant.
fn slack(scenario: &Scenario, grants: usize, total: f64) -> f64 {
    let per_grant = rate_per_ns(scenario) + scenario.capacity * 1e-12;
    per_grant * grants as f64 + (total + scenario.capacity) * 1e-12
}

fn check_conformance(scenario: &Scenario, grants: &[Grant]) -> Result<(), TestCaseError> {
    let rate = rate_per_ns(scenario);
    for i in 0..grants.len() {
        let mut sum = 0.0;
        for (k, grant) in grants.iter().enumerate().skip(i) {
            sum += grant.amount;
            let window = (grant.at_ns - grants[i].at_ns) as f64;
            let bound = scenario.capacity + rate * window;
            prop_assert!(
                sum <= bound + slack(scenario, k - i + 1, sum),
                "grants {i}..={k} sum to {sum} in {window} ns, over the bound {bound}"
            );
        }
    }
    Ok(())
}

fn check_fifo(grants: &[Grant]) -> Result<(), TestCaseError> {
    for (k, grant) in grants.iter().enumerate() {
        prop_assert_eq!(grant.id, k, "grants in arrival order");
        prop_assert!(grant.at_ns >= grant.arrival_ns);
        if k > 0 {
            prop_assert!(grant.at_ns >= grants[k - 1].at_ns);
        }
    }
    Ok(())
}

/// Each grant at most `allowance` ns after its earliest conformant time, recomputed from
/// the grant history with the leaky-bucket recurrence, and never before it.
fn check_work_conservation(
    scenario: &Scenario,
    grants: &[Grant],
    allowance: u64,
) -> Result<(), TestCaseError> {
    let rate = rate_per_ns(scenario);
    let capacity = scenario.capacity;
    let mut level = 0.0f64; // just after the previous grant
    let mut previous = 0u64;
    for grant in grants {
        let leak_free = previous as f64 + (level + grant.amount - capacity) / rate;
        let earliest = (grant.arrival_ns.max(previous) as f64).max(leak_free);
        let late = grant.at_ns as f64 - earliest;
        // Rounding: a wait is rounded to the nearest nanosecond and may fit a nanosecond
        // early; the level carries relative rounding.
        let rounding = 2.0 + (level + capacity) * 1e-12 / rate;
        prop_assert!(
            late <= allowance as f64 + rounding,
            "grant {} at {} ns, earliest conformant {earliest} ns: {late} ns late",
            grant.id,
            grant.at_ns
        );
        prop_assert!(
            late >= -rounding - slack(scenario, 1, capacity) / rate,
            "grant {} at {} ns, before its earliest conformant time {earliest} ns",
            grant.id,
            grant.at_ns
        );
        level = (level - rate * (grant.at_ns - previous) as f64).max(0.0) + grant.amount;
        previous = grant.at_ns;
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(2000))]

    #[test]
    fn grants_by_the_arithmetic_conform_keep_fifo_and_are_never_late(scenario in scenario()) {
        let grants = serve(&scenario, false)?;
        check_conformance(&scenario, &grants)?;
        check_fifo(&grants)?;
        check_work_conservation(&scenario, &grants, 0)?;
    }

    #[test]
    fn grants_on_a_millisecond_timer_conform_and_are_at_most_one_tick_late(scenario in scenario()) {
        let grants = serve(&scenario, true)?;
        check_conformance(&scenario, &grants)?;
        check_fifo(&grants)?;
        check_work_conservation(&scenario, &grants, TICK_NS)?;
    }

    #[test]
    fn time_until_fits_is_enough_and_no_more_than_needed(
        capacity in 1.0..1000.0f64,
        period_ms in 1u64..100_000,
        level in 0.0..=1.0f64,
        amount in 0.0..=1.0f64,
    ) {
        let start = Instant::now();
        let config = BucketConfig::new(capacity, Duration::from_millis(period_ms)).unwrap();
        let mut bucket = LeakyBucket::new(config, start);
        bucket.fill(level * capacity);
        let amount = amount * capacity;
        let wait = bucket.time_until_fits(amount);
        let mut after = bucket.clone();
        after.leak(start + wait);
        prop_assert!(after.fits(amount), "not fitting after {wait:?}");
        // A microsecond less is not enough (when the wait is longer than that).
        if wait > Duration::from_micros(1) {
            let mut before = bucket.clone();
            before.leak(start + wait - Duration::from_micros(1));
            prop_assert!(!before.fits(amount), "already fitting before {wait:?}");
        } else {
            prop_assert!(bucket.needed(amount) <= config.leak_rate() * 1e-6 + capacity * 1e-12);
        }
        // A larger amount never waits less.
        prop_assert!(bucket.time_until_fits(amount + 1.0) >= wait);
    }

    #[test]
    fn check_amount_accepts_exactly_the_finite_amounts_from_zero_to_capacity(
        capacity in 1.0..1e12f64,
        bits in any::<u64>(),
    ) {
        let config = BucketConfig::new(capacity, Duration::from_secs(1)).unwrap();
        let bucket = LeakyBucket::new(config, Instant::now());
        let amount = f64::from_bits(bits);
        let valid = amount.is_finite() && amount >= 0.0 && amount <= capacity;
        let expected = if valid {
            Ok(())
        } else {
            Err(AcquireError::InvalidAmount { amount, capacity })
        };
        // NaN != NaN: compare the outcome and the bits.
        match (bucket.check_amount(amount), expected) {
            (Ok(()), Ok(())) => {}
            (Err(AcquireError::InvalidAmount { amount: got, capacity: c }), Err(_)) => {
                prop_assert_eq!(got.to_bits(), amount.to_bits());
                prop_assert_eq!(c, capacity);
            }
            (got, expected) => prop_assert!(false, "{amount}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn leak_never_goes_below_zero_nor_back_in_time(
        fill in 0.0..1000.0f64,
        steps in prop::collection::vec(0u64..3_000_000_000, 1..20),
    ) {
        let start = Instant::now();
        let config = BucketConfig::new(1000.0, Duration::from_secs(1)).unwrap();
        let mut bucket = LeakyBucket::new(config, start);
        bucket.fill(fill);
        let mut latest = 0;
        for step in steps {
            let before = bucket.level();
            bucket.leak(start + Duration::from_nanos(step));
            let after = bucket.level();
            prop_assert!(after >= 0.0);
            if step <= latest {
                prop_assert_eq!(after, before, "a leak into the past changes nothing");
            } else {
                let expected = (before - 1000.0 * (step - latest) as f64 * 1e-9).max(0.0);
                prop_assert!((after - expected).abs() <= 1e-9 * fill.max(1.0));
                latest = step;
            }
        }
    }
}
