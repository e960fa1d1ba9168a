//! The bodies of the responses the middleware makes itself: problem details (RFC 9457),
//! with the draft's problem types where one fits.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::fields::POLICY_NAME;

const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";
const REDUCED_CAPACITY: &str =
    "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity";

/// `429 Too Many Requests`, of the draft's type `quota-exceeded`.
pub(super) fn quota_exceeded(detail: String) -> HttpResponse {
    let body = serde_json::json!({
        "type": QUOTA_EXCEEDED,
        "title": "Request cannot be satisfied as assigned quota has been exceeded",
        "status": 429,
        "detail": detail,
        "violated-policies": [POLICY_NAME],
    });
    respond(StatusCode::TOO_MANY_REQUESTS, body)
}

/// `503 Service Unavailable`, of the draft's type `temporary-reduced-capacity`: the
/// limiter cannot count requests now.
pub(super) fn reduced_capacity(detail: String) -> HttpResponse {
    let body = serde_json::json!({
        "type": REDUCED_CAPACITY,
        "title": "Temporarily reduced capacity",
        "status": 503,
        "detail": detail,
    });
    respond(StatusCode::SERVICE_UNAVAILABLE, body)
}

/// A problem of no particular type: the status says it all, the detail the rest.
pub(super) fn plain(status: StatusCode, detail: String) -> HttpResponse {
    let body = serde_json::json!({
        "title": status.canonical_reason().unwrap_or_default(),
        "status": status.as_u16(),
        "detail": detail,
    });
    respond(status, body)
}

fn respond(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "application/problem+json"))
        .body(body.to_string())
}
