//! The profiles: `profile-bucket` or `profile-floor` runs one depth run of 100k waiters
//! through the bucket or through the floor, and nothing else: the pair to compare under a
//! profiler such as `valgrind --tool=callgrind`; `profile-bucket-pipelined` and
//! `profile-floor-pipelined` do the same with 128k pipelined requests to an unconstrained
//! bucket and to the throughput floor.

use super::scale::{bucket_depth, held_depth};
use super::throughput::pipelined;

/// The profile the command line names (an argument starting with `profile-`), if any.
pub fn requested() -> Option<String> {
    std::env::args().find(|arg| arg.starts_with("profile-"))
}

/// Runs `profile` and prints its time per request.
pub fn run(profile: &str) {
    let per_request_ns = match profile {
        "profile-bucket" => bucket_depth(100_000).per_request_ns,
        "profile-floor" => held_depth(100_000),
        "profile-bucket-pipelined" => pipelined(true, 128_000),
        "profile-floor-pipelined" => pipelined(false, 128_000),
        _ => panic!(
            "{profile}: the profiles are profile-bucket, profile-floor, \
             profile-bucket-pipelined and profile-floor-pipelined"
        ),
    };
    println!("{profile}: {per_request_ns:.0} ns per request");
}
