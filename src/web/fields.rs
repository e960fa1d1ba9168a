//! The rate-limit fields of a response: `RateLimit-Policy` and `RateLimit`, in the syntax
//! of draft-ietf-httpapi-ratelimit-headers-11, and `Retry-After`.
//!
//! The draft's quota is a number of units per window of whole seconds. A leaky bucket of
//! capacity `C` and period `P` is stated as the quota `q = floor(C)` per the window `w`,
//! the time the bucket takes to leak `q`, rounded up to whole seconds (at least 1): a
//! client that sends `q` at once every `w` seconds is never refused, so the policy never
//! promises more than the bucket grants. It may promise less: the bucket also grants what
//! leaks within a window, and a window never shorter than a second cannot say that a
//! bucket of 5 per 100 ms grants 50 a second.

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};

use crate::{BucketConfig, Granted};

/// The name of the one policy a middleware states.
pub(super) const POLICY_NAME: &str = "default";

/// The largest Integer a Structured Field holds (RFC 9651).
const MAX_INTEGER: u64 = 999_999_999_999_999;

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// A response's rate-limit fields.
pub(super) type Fields = Vec<(HeaderName, HeaderValue)>;

/// The fields of a response to a granted request: the policy, what is available now,
/// and in how many seconds the whole quota is again.
pub(super) fn granted(granted: &Granted) -> Fields {
    let config = &granted.config;
    let quota = quota(config);
    // The quota fits again once the bucket has leaked to `C - q`.
    let slack = scale(
        config.period(),
        (config.capacity() - quota) / config.capacity(),
    );
    let reset = granted.empty_in.saturating_sub(slack);
    vec![
        policy(config),
        available(granted.remaining.floor(), seconds_up(reset)),
    ]
}

/// The fields of a refusal: the policy, if known; nothing available until the request
/// would fit, `retry_after` from now; and `Retry-After`, the same instant.
pub(super) fn refused(config: Option<&BucketConfig>, retry_after: Duration) -> Fields {
    let wait = seconds_up(retry_after);
    let mut fields: Fields = config.map(policy).into_iter().collect();
    fields.push(available(0.0, wait));
    fields.push(retry_after_field(retry_after));
    fields
}

/// `Retry-After` in whole seconds, rounded up: never 0 for a wait above zero.
pub(super) fn retry_after_field(wait: Duration) -> (HeaderName, HeaderValue) {
    (RETRY_AFTER, HeaderValue::from(seconds_up(wait)))
}

/// `RateLimit-Policy: "default";q=<quota>;w=<window>`.
fn policy(config: &BucketConfig) -> (HeaderName, HeaderValue) {
    let quota = quota(config);
    let leak = scale(config.period(), quota / config.capacity());
    let window = seconds_up(leak).max(1);
    let value = format!("\"{POLICY_NAME}\";q={};w={window}", integer(quota));
    (RATELIMIT_POLICY, header_value(value))
}

/// `RateLimit: "default";r=<available>;t=<seconds>`.
fn available(available: f64, seconds: u64) -> (HeaderName, HeaderValue) {
    let value = format!("\"{POLICY_NAME}\";r={};t={seconds}", integer(available));
    (RATELIMIT, header_value(value))
}

fn quota(config: &BucketConfig) -> f64 {
    config.capacity().floor()
}

/// `duration × factor`, for a factor from 0 to 1.
fn scale(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(duration)
}

/// Whole seconds, rounded up, at most a field's largest Integer.
fn seconds_up(duration: Duration) -> u64 {
    let seconds = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    seconds.min(MAX_INTEGER)
}

/// A whole, non-negative number as a field's Integer.
fn integer(whole: f64) -> u64 {
    // A float converts to an integer saturating, NaN to 0.
    (whole as u64).min(MAX_INTEGER)
}

fn header_value(value: String) -> HeaderValue {
    // Digits, letters, quotes, `;` and `=`: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(fields: &Fields, name: &str) -> Option<String> {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.to_str().unwrap().to_owned())
    }

    fn config(capacity: f64, period: Duration) -> BucketConfig {
        BucketConfig::new(capacity, period).unwrap()
    }

    fn policy_of(config: BucketConfig) -> String {
        value(&refused(Some(&config), Duration::ZERO), "ratelimit-policy").unwrap()
    }

    #[test]
    fn the_policy_never_promises_more_than_the_bucket_grants() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(policy_of(config(100.0, s(60))), r#""default";q=100;w=60"#);
        // 10 per 2.5 s: 10 leak in 2.5 s, stated as 3.
        assert_eq!(policy_of(config(10.0, ms(2500))), r#""default";q=10;w=3"#);
        // 2.5 per 10 s: 2 leak in 8 s.
        assert_eq!(policy_of(config(2.5, s(10))), r#""default";q=2;w=8"#);
        // Sub-second periods are stated as a second.
        assert_eq!(policy_of(config(5.0, ms(100))), r#""default";q=5;w=1"#);
        // A budget that never refills, at the largest window a field holds.
        let budget = policy_of(config(1e300, Duration::MAX));
        assert_eq!(budget, r#""default";q=999999999999999;w=999999999999999"#);
    }

    #[test]
    fn a_refusal_says_nothing_is_available_until_retry_after_rounded_up() {
        let fields = refused(
            Some(&config(10.0, Duration::from_secs(1))),
            Duration::from_millis(1),
        );
        assert_eq!(value(&fields, "ratelimit").unwrap(), r#""default";r=0;t=1"#);
        assert_eq!(value(&fields, "retry-after").unwrap(), "1");
        let long = refused(None, Duration::from_millis(2001));
        assert_eq!(value(&long, "ratelimit-policy"), None);
        assert_eq!(value(&long, "retry-after").unwrap(), "3");
        assert_eq!(value(&long, "ratelimit").unwrap(), r#""default";r=0;t=3"#);
    }

    #[test]
    fn a_grant_says_what_is_left_and_when_the_whole_quota_fits_again() {
        let granted = |remaining, empty_in, config| Granted {
            amount: 1.0,
            waited: Duration::ZERO,
            granted_at: actix_rt::time::Instant::now(),
            remaining,
            empty_in,
            config,
        };
        let fields = granted(
            6.7,
            Duration::from_millis(330),
            config(10.0, Duration::from_secs(1)),
        );
        let fields = super::granted(&fields);
        assert_eq!(value(&fields, "ratelimit").unwrap(), r#""default";r=6;t=1"#);
        assert_eq!(value(&fields, "retry-after"), None);
        // Of 2.5, the quota of 2 fits once the bucket is down to 0.5: 2 s before empty.
        let fractional = granted(
            0.0,
            Duration::from_secs(9),
            config(2.5, Duration::from_secs(10)),
        );
        let fields = super::granted(&fractional);
        assert_eq!(value(&fields, "ratelimit").unwrap(), r#""default";r=0;t=7"#);
        let idle = granted(2.5, Duration::ZERO, config(2.5, Duration::from_secs(10)));
        let fields = super::granted(&idle);
        assert_eq!(value(&fields, "ratelimit").unwrap(), r#""default";r=2;t=0"#);
    }
}
