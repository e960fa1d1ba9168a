//! The rate-limit fields of a response: `RateLimit-Policy` and `RateLimit`, in the syntax
//! of draft-ietf-httpapi-ratelimit-headers-11, and `Retry-After`.
//!
//! The draft's quota is a number of units per window of whole seconds. A leaky bucket of
//! capacity `C` leaking `rate` units a second is stated as the quota `q = floor(C)` per the
//! window `w`, the time the bucket takes to leak `q`, rounded up to whole seconds (at least
//! 1): a client that sends `q` at once every `w` seconds is never refused, so the policy
//! never promises more than the bucket grants. It may promise less: the bucket also grants
//! what leaks within a window, and a window never shorter than a second cannot say that a
//! bucket of 5 per 100 ms grants 50 a second.

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};

use crate::Granted;

/// The name of the one policy a middleware states.
pub(super) const POLICY_NAME: &str = "default";

/// The largest Integer a Structured Field holds (RFC 9651).
const MAX_INTEGER: u64 = 999_999_999_999_999;

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// A response's rate-limit fields.
pub(super) type Fields = Vec<(HeaderName, HeaderValue)>;

/// A bucket's capacity and leak rate: what its policy is stated from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Limit {
    capacity: f64,
    /// Units per second.
    rate: f64,
}

impl Limit {
    /// The limit of the bucket that made `granted`.
    pub(super) fn of(granted: &Granted) -> Self {
        Self {
            capacity: granted.capacity,
            rate: granted.leak_rate,
        }
    }

    fn quota(&self) -> f64 {
        self.capacity.floor()
    }
}

/// The fields of a response to a granted request: the policy, what is available now,
/// and in how many seconds the whole quota fits again.
pub(super) fn granted(granted: &Granted) -> Fields {
    let limit = Limit::of(granted);
    // The quota fits again once the bucket has leaked down to `C - q`.
    let above = granted.backlog - (limit.capacity - limit.quota());
    vec![
        policy(&limit),
        available(granted.remaining().floor(), seconds_up(above / limit.rate)),
    ]
}

/// The fields of a refusal: the policy, if known; nothing available until the request
/// would fit, `retry_after` from now; and `Retry-After`, the same instant.
pub(super) fn refused(limit: Option<&Limit>, retry_after: Duration) -> Fields {
    let wait = whole_seconds_up(retry_after);
    let mut fields: Fields = limit.map(policy).into_iter().collect();
    fields.push(available(0.0, wait));
    fields.push((RETRY_AFTER, HeaderValue::from(wait)));
    fields
}

/// `Retry-After` in whole seconds, rounded up: never 0 for a wait above zero.
pub(super) fn retry_after_field(wait: Duration) -> (HeaderName, HeaderValue) {
    (RETRY_AFTER, HeaderValue::from(whole_seconds_up(wait)))
}

/// `RateLimit-Policy: "default";q=<quota>;w=<window>`.
fn policy(limit: &Limit) -> (HeaderName, HeaderValue) {
    let quota = limit.quota();
    let window = seconds_up(quota / limit.rate).max(1);
    let value = format!("\"{POLICY_NAME}\";q={};w={window}", integer(quota));
    (RATELIMIT_POLICY, header_value(value))
}

/// `RateLimit: "default";r=<available>;t=<seconds>`.
fn available(available: f64, seconds: u64) -> (HeaderName, HeaderValue) {
    let value = format!("\"{POLICY_NAME}\";r={};t={seconds}", integer(available));
    (RATELIMIT, header_value(value))
}

/// `seconds`, rounded up to a whole number, from 0 to a field's largest Integer.
fn seconds_up(seconds: f64) -> u64 {
    integer(seconds.ceil())
}

/// `duration` in whole seconds, rounded up exactly, at most a field's largest Integer.
fn whole_seconds_up(duration: Duration) -> u64 {
    let seconds = duration.as_secs();
    let up = seconds.saturating_add(u64::from(duration.subsec_nanos() > 0));
    up.min(MAX_INTEGER)
}

/// A whole number as a field's Integer, from 0 to the largest it holds.
fn integer(whole: f64) -> u64 {
    // A float converts to an integer saturating, NaN and negatives to 0.
    (whole as u64).min(MAX_INTEGER)
}

fn header_value(value: String) -> HeaderValue {
    // Digits, letters, quotes, `;` and `=`: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::BucketConfig;

    fn value(fields: &Fields, name: &str) -> Option<String> {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.to_str().unwrap().to_owned())
    }

    fn limit(capacity: f64, period: Duration) -> Limit {
        let config = BucketConfig::new(capacity, period).unwrap();
        Limit {
            capacity: config.capacity(),
            rate: config.leak_rate(),
        }
    }

    fn policy_of(limit: Limit) -> String {
        value(&refused(Some(&limit), Duration::ZERO), "ratelimit-policy").unwrap()
    }

    #[test]
    fn the_policy_never_promises_more_than_the_bucket_grants() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(policy_of(limit(100.0, s(60))), r#""default";q=100;w=60"#);
        // 10 per 2.5 s: 10 leak in 2.5 s, stated as 3.
        assert_eq!(policy_of(limit(10.0, ms(2500))), r#""default";q=10;w=3"#);
        // 2.5 per 10 s: 2 leak in 8 s.
        assert_eq!(policy_of(limit(2.5, s(10))), r#""default";q=2;w=8"#);
        // Sub-second periods are stated as a second.
        assert_eq!(policy_of(limit(5.0, ms(100))), r#""default";q=5;w=1"#);
        // A budget that never refills, at the largest numbers a field holds.
        let budget = policy_of(limit(1e300, Duration::MAX));
        assert_eq!(budget, r#""default";q=999999999999999;w=999999999999999"#);
    }

    #[test]
    fn a_refusal_says_nothing_is_available_until_retry_after_rounded_up() {
        let fields = refused(
            Some(&limit(10.0, Duration::from_secs(1))),
            Duration::from_millis(1),
        );
        assert_eq!(value(&fields, "ratelimit").unwrap(), r#""default";r=0;t=1"#);
        assert_eq!(value(&fields, "retry-after").unwrap(), "1");
        let long = refused(None, Duration::from_millis(2001));
        assert_eq!(value(&long, "ratelimit-policy"), None);
        assert_eq!(value(&long, "retry-after").unwrap(), "3");
        assert_eq!(value(&long, "ratelimit").unwrap(), r#""default";r=0;t=3"#);
        let never = refused(None, Duration::MAX);
        assert_eq!(value(&never, "retry-after").unwrap(), "999999999999999");
    }

    #[test]
    fn a_grant_says_what_is_left_and_when_the_whole_quota_fits_again() {
        let granted = |backlog, capacity, leak_rate| Granted {
            amount: 1.0,
            waited: Duration::ZERO,
            granted_at: actix_rt::time::Instant::now(),
            backlog,
            capacity,
            leak_rate,
        };
        let fields = super::granted(&granted(3.3, 10.0, 10.0));
        assert_eq!(value(&fields, "ratelimit").unwrap(), r#""default";r=6;t=1"#);
        assert_eq!(value(&fields, "retry-after"), None);
        // Of 2.5, the quota of 2 fits once the bucket is down to 0.5: 2 s before empty.
        let fractional = super::granted(&granted(2.25, 2.5, 0.25));
        assert_eq!(
            value(&fractional, "ratelimit").unwrap(),
            r#""default";r=0;t=7"#
        );
        let idle = super::granted(&granted(0.0, 2.5, 0.25));
        assert_eq!(value(&idle, "ratelimit").unwrap(), r#""default";r=2;t=0"#);
        // A queue longer than the room: nothing is left, and the quota is back once the
        // queue and the level have leaked.
        let queued = super::granted(&granted(25.0, 10.0, 10.0));
        assert_eq!(value(&queued, "ratelimit").unwrap(), r#""default";r=0;t=3"#);
    }
}
