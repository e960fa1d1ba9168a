//! The actix-web middleware: [`RateLimit`], the keys it counts requests by, and the
//! fields and bodies of its responses.
//!
//! - `middleware.rs`: the middleware, and what it answers for each of the limiter's
//!   answers;
//! - `keys.rs`: whose bucket a request is counted in;
//! - `fields.rs`: `RateLimit-Policy`, `RateLimit` and `Retry-After`;
//! - `problem.rs`: the problem bodies of the responses it makes itself;
//! - `error.rs`: why a key could not be built.

mod error;
mod fields;
mod keys;
mod middleware;
mod problem;

pub use error::KeyConfigError;
pub use keys::{ClientIp, GlobalKey, HeaderKey, PeerIp, RequestKey};
pub use middleware::{RateLimit, RateLimitMiddleware};
