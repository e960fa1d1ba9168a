//! Why a ready-made key could not be built.

/// Why a [`PeerIp`](crate::PeerIp) or [`ClientIp`](crate::ClientIp) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyConfigError {
    /// A prefix longer than the address it groups.
    #[error(
        "an {family} prefix is at most {max} bits, got {prefix}: pass the length of the \
         network one client holds ({max} for each address)"
    )]
    PrefixTooLong {
        /// `"IPv4"` or `"IPv6"`.
        family: &'static str,
        /// The prefix that was passed.
        prefix: u8,
        /// The address's length in bits.
        max: u8,
    },
    /// A trusted proxy that is neither an address nor a network.
    #[error(
        "`{entry}` is not an IP address or network: write a trusted proxy as an address \
         (`192.0.2.7`, `::1`) or a network (`10.0.0.0/8`, `2001:db8::/32`)"
    )]
    InvalidProxy {
        /// The entry as it was passed.
        entry: String,
    },
}
