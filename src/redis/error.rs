//! Why a shared bucket could not be connected.

/// Why [`RedisBucketActor::connect`](crate::RedisBucketActor::connect) failed: what was
/// wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The bucket's name was empty: its keys in Redis are made from it.
    #[error(
        "the bucket's name is empty: give every shared bucket a name, the same in every \\
         process that shares it"
    )]
    EmptyName,
    /// The address could not be read as a Redis URL.
    #[error("{url} is not a Redis URL ({reason}): write it as redis://host:port or redis://host:port/db")]
    InvalidUrl {
        /// The address, with any password left out.
        url: String,
        /// What the redis crate found wrong with it.
        reason: String,
    },
    /// Redis did not answer at that address.
    #[error(
        "Redis at {url} could not be reached ({reason}): check that the server runs and \\
         listens there"
    )]
    Unreachable {
        /// The address, with any password left out.
        url: String,
        /// What the connection attempt reported.
        reason: String,
    },
}

/// `url` with the password of its user part, if any, left out.
pub(super) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows_in_an_error() {
        assert_eq!(
            without_password("redis://app:secret@cache:6379/2"),
            "redis://app:***@cache:6379/2"
        );
        assert_eq!(without_password("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(without_password("cache"), "cache");
    }
}
