//! Whose bucket a request is counted in: the key a [`RateLimit`](super::RateLimit) picks
//! for it.

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, FORWARDED, X_FORWARDED_FOR};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::KeyConfigError;

/// Picks the key of a request's bucket, or `None` if the request has none.
///
/// Any `Fn(&ServiceRequest) -> Option<String>` is one; so are the ready-made keys:
/// [`PeerIp`], [`ClientIp`], [`HeaderKey`] and [`GlobalKey`].
///
/// ```
/// use actix_web::dev::ServiceRequest;
/// use actix_leaky_bucket::RequestKey;
///
/// // One bucket per tenant, named in the path: /tenants/{tenant}/...
/// let per_tenant = |request: &ServiceRequest| {
///     request.match_info().get("tenant").map(str::to_owned)
/// };
/// fn is_a_key(_: impl RequestKey) {}
/// is_a_key(per_tenant);
/// ```
pub trait RequestKey: Send + Sync + 'static {
    /// The key of `request`'s bucket; `None` if it has none.
    fn key(&self, request: &ServiceRequest) -> Option<String>;
}

impl<F> RequestKey for F
where
    F: Fn(&ServiceRequest) -> Option<String> + Send + Sync + 'static,
{
    fn key(&self, request: &ServiceRequest) -> Option<String> {
        self(request)
    }
}

/// How many leading bits of an address name one client: an ISP gives a customer one
/// IPv6 network (a /48, /56 or /64), any address of which the customer can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grouping {
    ipv4: u8,
    ipv6: u8,
}

impl Default for Grouping {
    fn default() -> Self {
        Self { ipv4: 32, ipv6: 64 }
    }
}

impl Grouping {
    /// The key of `ip`: the address itself when its whole length names the client
    /// (`192.0.2.7`), its network otherwise (`2001:db8:1:2::/64`). An IPv4 address
    /// mapped into IPv6 is the IPv4 address.
    fn key(&self, ip: IpAddr) -> String {
        match ip.to_canonical() {
            IpAddr::V4(ip) if self.ipv4 == 32 => ip.to_string(),
            IpAddr::V6(ip) if self.ipv6 == 128 => ip.to_string(),
            IpAddr::V4(ip) => Ipv4Net::new_assert(ip, self.ipv4).trunc().to_string(),
            IpAddr::V6(ip) => Ipv6Net::new_assert(ip, self.ipv6).trunc().to_string(),
        }
    }

    fn with_ipv4(self, prefix: u8) -> Result<Self, KeyConfigError> {
        check_prefix("IPv4", prefix, 32)?;
        Ok(Self {
            ipv4: prefix,
            ..self
        })
    }

    fn with_ipv6(self, prefix: u8) -> Result<Self, KeyConfigError> {
        check_prefix("IPv6", prefix, 128)?;
        Ok(Self {
            ipv6: prefix,
            ..self
        })
    }
}

fn check_prefix(family: &'static str, prefix: u8, max: u8) -> Result<(), KeyConfigError> {
    if prefix <= max {
        Ok(())
    } else {
        Err(KeyConfigError::PrefixTooLong {
            family,
            prefix,
            max,
        })
    }
}

/// The address of the peer that connected: one bucket per client where clients connect
/// directly, with IPv6 addresses grouped by their /64.
///
/// Behind a proxy every request comes from the proxy; use [`ClientIp`] there. A request
/// with no peer address (served over a Unix socket) has no key.
///
/// ```
/// use actix_leaky_bucket::PeerIp;
///
/// let per_address = PeerIp::new(); // IPv4 /32, IPv6 /64
/// let per_customer = PeerIp::new().ipv6_prefix(56).unwrap();
/// assert!(PeerIp::new().ipv6_prefix(129).is_err());
/// # let _ = (per_address, per_customer);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerIp {
    grouping: Grouping,
}

impl PeerIp {
    /// Each IPv4 address, and each IPv6 /64.
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups IPv6 addresses by their first `prefix` bits (0 to 128; 128 is each address).
    pub fn ipv6_prefix(self, prefix: u8) -> Result<Self, KeyConfigError> {
        Ok(Self {
            grouping: self.grouping.with_ipv6(prefix)?,
        })
    }

    /// Groups IPv4 addresses by their first `prefix` bits (0 to 32; 32, the default, is
    /// each address).
    pub fn ipv4_prefix(self, prefix: u8) -> Result<Self, KeyConfigError> {
        Ok(Self {
            grouping: self.grouping.with_ipv4(prefix)?,
        })
    }
}

impl RequestKey for PeerIp {
    fn key(&self, request: &ServiceRequest) -> Option<String> {
        Some(self.grouping.key(request.peer_addr()?.ip()))
    }
}

/// Which header the trusted proxies write the addresses they forward for into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForwardedBy {
    /// `Forwarded`, RFC 7239: `for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"`.
    Forwarded,
    /// `X-Forwarded-For`: `192.0.2.60, 198.51.100.17`.
    XForwardedFor,
}

/// The client's address as the proxies in front of the service report it, believed only
/// from proxies the service trusts; IPv6 addresses grouped by their /64.
///
/// Each proxy appends the address it received the request from to the header. A client
/// can write anything into the header before the first proxy, so the list is read from the
/// right: starting at the peer, every address of a trusted proxy is skipped, and the first
/// address that is not one is the client's. A forged entry sits to the left of it and is
/// never read. A peer that is not a trusted proxy is the client, whatever the header says.
///
/// - If every address is a trusted proxy's, the leftmost is the client.
/// - If the peer is trusted and sent no header, the peer is the client.
/// - If the entry to take is not an address (`unknown`, an obfuscated name, or a value
///   that does not parse), the client cannot be told, and the request has no key.
///
/// Name the header the proxies actually write: a proxy that writes one does not remove a
/// forged copy of the other, so reading the other would believe the client.
///
/// ```
/// use actix_leaky_bucket::ClientIp;
///
/// // nginx on this host and the load balancers' network, writing X-Forwarded-For.
/// let client = ClientIp::x_forwarded_for(["127.0.0.1", "::1", "10.0.0.0/8"]).unwrap();
/// // RFC 7239 `Forwarded`, customers grouped by their /48.
/// let customer = ClientIp::forwarded(["10.1.2.3"]).unwrap().ipv6_prefix(48).unwrap();
///
/// let typo = ClientIp::x_forwarded_for(["10.0.0.0/33"]).unwrap_err();
/// assert!(typo.to_string().contains("10.0.0.0/33"));
/// # let _ = (client, customer);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp {
    trusted: Vec<IpNet>,
    header: ForwardedBy,
    grouping: Grouping,
}

impl ClientIp {
    /// From `X-Forwarded-For`, written by the proxies at `trusted`: addresses
    /// (`192.0.2.7`, `::1`) or networks (`10.0.0.0/8`, `2001:db8::/32`).
    pub fn x_forwarded_for<I, S>(trusted: I) -> Result<Self, KeyConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(trusted, ForwardedBy::XForwardedFor)
    }

    /// From `Forwarded` (RFC 7239), written by the proxies at `trusted`, as for
    /// [`x_forwarded_for`](Self::x_forwarded_for).
    pub fn forwarded<I, S>(trusted: I) -> Result<Self, KeyConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(trusted, ForwardedBy::Forwarded)
    }

    fn new<I, S>(trusted: I, header: ForwardedBy) -> Result<Self, KeyConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let trusted = trusted
            .into_iter()
            .map(|entry| parse_network(entry.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            trusted,
            header,
            grouping: Grouping::default(),
        })
    }

    /// Groups IPv6 addresses by their first `prefix` bits (0 to 128; 128 is each address).
    pub fn ipv6_prefix(self, prefix: u8) -> Result<Self, KeyConfigError> {
        Ok(Self {
            grouping: self.grouping.with_ipv6(prefix)?,
            ..self
        })
    }

    /// Groups IPv4 addresses by their first `prefix` bits (0 to 32; 32, the default, is
    /// each address).
    pub fn ipv4_prefix(self, prefix: u8) -> Result<Self, KeyConfigError> {
        Ok(Self {
            grouping: self.grouping.with_ipv4(prefix)?,
            ..self
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|network| network.contains(&ip))
    }

    /// The client's address, read from the right as the type's docs say.
    fn client(&self, request: &ServiceRequest) -> Option<IpAddr> {
        let peer = request.peer_addr()?.ip().to_canonical();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let name = match self.header {
            ForwardedBy::Forwarded => FORWARDED,
            ForwardedBy::XForwardedFor => X_FORWARDED_FOR,
        };
        let mut furthest = peer;
        // Header lines in order, then entries in order: one list, walked from its end.
        let lines: Vec<_> = request.headers().get_all(name).collect();
        for line in lines.into_iter().rev() {
            let line = line.to_str().ok()?;
            let hops: Vec<Option<IpAddr>> = match self.header {
                ForwardedBy::Forwarded => rfc7239::parse(line).map(forwarded_for).collect(),
                ForwardedBy::XForwardedFor => line
                    .split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(parse_hop)
                    .collect(),
            };
            for hop in hops.into_iter().rev() {
                let ip = hop?.to_canonical();
                if !self.is_trusted(ip) {
                    return Some(ip);
                }
                furthest = ip;
            }
        }
        Some(furthest)
    }
}

impl RequestKey for ClientIp {
    fn key(&self, request: &ServiceRequest) -> Option<String> {
        self.client(request).map(|ip| self.grouping.key(ip))
    }
}

/// A trusted proxy as the user wrote it: an address or a network.
fn parse_network(entry: &str) -> Result<IpNet, KeyConfigError> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| KeyConfigError::InvalidProxy {
            entry: entry.to_owned(),
        })
}

/// One entry of `X-Forwarded-For`: an address, with a port or without.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry.parse::<IpAddr>().ok().or_else(|| {
        entry
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|addr| addr.ip())
    })
}

/// The address an element of `Forwarded` was forwarded for, if it names one.
fn forwarded_for(element: Result<rfc7239::Forwarded<'_>, rfc7239::RfcError>) -> Option<IpAddr> {
    element.ok()?.forwarded_for?.ip().copied()
}

/// The value of a request header, such as an API key: one bucket per value. A request
/// without the header, or with an empty value or one that is not visible ASCII, has no
/// key.
///
/// ```
/// use actix_web::http::header::HeaderName;
/// use actix_leaky_bucket::HeaderKey;
///
/// let per_api_key = HeaderKey::new(HeaderName::from_static("x-api-key"));
/// # let _ = per_api_key;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderKey {
    name: HeaderName,
}

impl HeaderKey {
    /// The value of the header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name }
    }
}

impl RequestKey for HeaderKey {
    fn key(&self, request: &ServiceRequest) -> Option<String> {
        let value = request.headers().get(&self.name)?.to_str().ok()?;
        (!value.is_empty()).then(|| value.to_owned())
    }
}

/// One key for every request: one bucket for the whole service, or for the routes the
/// middleware wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GlobalKey;

impl RequestKey for GlobalKey {
    fn key(&self, _: &ServiceRequest) -> Option<String> {
        Some(String::from("global"))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn request(peer: &str, headers: &[(&str, &str)]) -> ServiceRequest {
        let mut request = TestRequest::default().peer_addr(peer.parse().unwrap());
        for &(name, value) in headers {
            request = request.append_header((name, value));
        }
        request.to_srv_request()
    }

    #[test]
    fn addresses_are_grouped_by_their_prefix() {
        let peer = PeerIp::new();
        assert_eq!(peer.key(&request("192.0.2.7:1", &[])).unwrap(), "192.0.2.7");
        let v6 = request("[2001:db8:1:2:3:4:5:6]:1", &[]);
        assert_eq!(peer.key(&v6).unwrap(), "2001:db8:1:2::/64");
        let by_56 = PeerIp::new().ipv6_prefix(56).unwrap();
        assert_eq!(by_56.key(&v6).unwrap(), "2001:db8:1::/56");
        let each = PeerIp::new().ipv6_prefix(128).unwrap();
        assert_eq!(each.key(&v6).unwrap(), "2001:db8:1:2:3:4:5:6");
        let by_24 = PeerIp::new().ipv4_prefix(24).unwrap();
        assert_eq!(
            by_24.key(&request("192.0.2.7:1", &[])).unwrap(),
            "192.0.2.0/24"
        );
        // An IPv4 address mapped into IPv6 is the IPv4 address.
        let mapped = request("[::ffff:192.0.2.7]:1", &[]);
        assert_eq!(peer.key(&mapped).unwrap(), "192.0.2.7");
    }

    #[test]
    fn a_prefix_longer_than_the_address_is_an_error() {
        let error = PeerIp::new().ipv4_prefix(33).unwrap_err();
        assert_eq!(
            error,
            KeyConfigError::PrefixTooLong {
                family: "IPv4",
                prefix: 33,
                max: 32
            }
        );
        assert!(ClientIp::forwarded(["::1"])
            .unwrap()
            .ipv6_prefix(200)
            .is_err());
    }

    #[test]
    fn a_trusted_proxy_that_is_not_an_address_is_an_error() {
        for entry in ["10.0.0.0/33", "localhost", "10.0.0.300", ""] {
            let error = ClientIp::x_forwarded_for([entry]).unwrap_err();
            assert_eq!(
                error,
                KeyConfigError::InvalidProxy {
                    entry: entry.to_owned()
                }
            );
        }
    }

    fn xff() -> ClientIp {
        ClientIp::x_forwarded_for(["10.0.0.0/8", "::1"]).unwrap()
    }

    #[test]
    fn the_header_of_an_untrusted_peer_is_ignored() {
        let forged = request("192.0.2.7:1", &[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(xff().key(&forged).unwrap(), "192.0.2.7");
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_address_from_the_right_is_the_client() {
        // The client forged the leftmost entry; the proxy at 10.0.0.2 saw 192.0.2.7.
        let chain = request(
            "10.0.0.1:1",
            &[("x-forwarded-for", "198.51.100.1, 192.0.2.7, 10.0.0.2")],
        );
        assert_eq!(xff().key(&chain).unwrap(), "192.0.2.7");
        // The same list over two header lines, and with a port.
        let lines = request(
            "10.0.0.1:1",
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-for", "192.0.2.7:4711, 10.0.0.2"),
            ],
        );
        assert_eq!(xff().key(&lines).unwrap(), "192.0.2.7");
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_is_the_client_and_without_a_header_the_peer() {
        let internal = request("10.0.0.1:1", &[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(xff().key(&internal).unwrap(), "10.9.9.9");
        assert_eq!(xff().key(&request("10.0.0.1:1", &[])).unwrap(), "10.0.0.1");
    }

    #[test]
    fn an_entry_that_is_not_an_address_leaves_the_client_unknown() {
        let garbled = request("10.0.0.1:1", &[("x-forwarded-for", "192.0.2.7, bogus")]);
        assert_eq!(xff().key(&garbled), None);
    }

    #[test]
    fn forwarded_is_read_the_same_way() {
        let forwarded = ClientIp::forwarded(["10.0.0.0/8"]).unwrap();
        let chain = request(
            "[::ffff:10.0.0.1]:1",
            &[(
                "forwarded",
                "for=198.51.100.1, for=\"[2001:db8:1:2::9]:4711\";proto=https, for=10.0.0.2",
            )],
        );
        assert_eq!(forwarded.key(&chain).unwrap(), "2001:db8:1:2::/64");
        // X-Forwarded-For is not read by a key that trusts Forwarded.
        let other = request("10.0.0.1:1", &[("x-forwarded-for", "192.0.2.7")]);
        assert_eq!(forwarded.key(&other).unwrap(), "10.0.0.1");
        let hidden = request("10.0.0.1:1", &[("forwarded", "for=unknown")]);
        assert_eq!(forwarded.key(&hidden), None);
    }

    #[test]
    fn a_header_value_is_a_key_and_a_missing_or_empty_one_is_none() {
        let api_key = HeaderKey::new(HeaderName::from_static("x-api-key"));
        let with = request("192.0.2.7:1", &[("x-api-key", "k-123")]);
        assert_eq!(api_key.key(&with).unwrap(), "k-123");
        assert_eq!(api_key.key(&request("192.0.2.7:1", &[])), None);
        assert_eq!(
            api_key.key(&request("192.0.2.7:1", &[("x-api-key", "")])),
            None
        );
        assert_eq!(GlobalKey.key(&with).unwrap(), "global");
    }
}
