//! Which network addresses Kiln's own requests may reach on behalf of a work group: registries
//! (their redirects included), Docker hosts and Spark masters named by targets. Loopback,
//! private, link-local (169.254.169.254, the cloud metadata service), carrier-grade NAT,
//! unique-local and unspecified addresses are refused unless an installation admin allows them
//! (`kiln up --allow-network CIDR`); public addresses are reached.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The addresses a policy lets through besides public ones.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    allowed: Vec<(IpAddr, u8)>,
}

/// Whether `ip` is on the host itself or on an internal network. IPv6 forms that carry an IPv4
/// address (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`, Teredo's
/// server and client) are judged by that address; the deprecated IPv4-compatible `::a.b.c.d`,
/// local-use NAT64 (`64:ff9b:1::/48`), site-local and multicast addresses are internal.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let v4 = |high: u16, low: u16| {
                IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(high) << 16) | u32::from(low),
                ))
            };
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(mapped));
            }
            if s[..6] == [0; 6] {
                // ::/96: unspecified, loopback and the deprecated IPv4-compatible form.
                return true;
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_internal(v4(s[6], s[7]));
            }
            if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
                return true;
            }
            if s[0] == 0x2002 {
                return is_internal(v4(s[1], s[2]));
            }
            if s[0] == 0x2001 && s[1] == 0 {
                return is_internal(v4(s[2], s[3])) || is_internal(v4(!s[6], !s[7]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
        }
    }
}

/// A network address a target names (`tcp://HOST:PORT`, `http://HOST:PORT`, a Spark master's
/// `HOST:PORT`), parsed once by a URL parser into the host and port a client connects to.
/// Userinfo, paths, queries and fragments are refused, as is any character a host and port
/// cannot hold, so that no other parser can read another host out of the same text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The scheme as given, lower case.
    pub scheme: String,
    /// The host: a name, or an address (IPv6 without brackets).
    pub host: String,
    /// The port (the scheme's default when the text has none).
    pub port: u16,
}

impl Endpoint {
    /// Parses `SCHEME://HOST[:PORT]` (an optional `/` after it) for one of `schemes`; `port` is
    /// the default port.
    pub fn parse(text: &str, schemes: &[&str], port: u16) -> Result<Endpoint, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("'{text}' is not SCHEME://HOST:PORT"))?;
        let scheme = scheme.to_ascii_lowercase();
        if !schemes.contains(&scheme.as_str()) {
            return Err(format!(
                "'{text}': the scheme is one of {}",
                schemes.join(", ")
            ));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty()
            || !authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return Err(format!(
                "'{text}': only a host and a port may follow the scheme (no user, path, query or \
                 fragment)"
            ));
        }
        let url = reqwest::Url::parse(&format!("{scheme}://{authority}"))
            .map_err(|e| format!("'{text}': {e}"))?;
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || !matches!(url.path(), "" | "/")
        {
            return Err(format!(
                "'{text}': only a host and a port may follow the scheme"
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("'{text}' names no host")),
        };
        Ok(Endpoint {
            scheme,
            host,
            port: url.port().unwrap_or(port),
        })
    }

    /// `HOST:PORT`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl AddressPolicy {
    /// A policy allowing these networks (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`).
    pub fn new(allowed: &[String]) -> Result<AddressPolicy, String> {
        let mut parsed = Vec::new();
        for text in allowed {
            let (ip, len) = text.split_once('/').unwrap_or((text, ""));
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("'{text}' is not an address or a CIDR network"))?;
            let max = bits(ip).1;
            let len = if len.is_empty() {
                max
            } else {
                len.parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("'{text}': the prefix length is 0 to {max}"))?
            };
            parsed.push((ip, len));
        }
        Ok(AddressPolicy { allowed: parsed })
    }

    /// Whether a request may go to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        !is_internal(ip)
            || self.allowed.iter().any(|(net, len)| {
                let ((a, width), (b, other)) = (bits(ip), bits(*net));
                if width != other {
                    return false;
                }
                let shift = u32::from(width - len);
                *len == 0 || (a >> shift) == (b >> shift)
            })
    }

    fn refusal(&self, what: &str, ip: IpAddr) -> String {
        format!(
            "{what} is {ip}, a loopback, private or link-local address this Kiln does not reach \
             for work groups (an installation admin can allow it: kiln up --allow-network {ip})"
        )
    }

    /// Checks every address `host` (a name or an address, with or without a port) resolves to.
    pub async fn check_host(&self, host: &str) -> Result<(), String> {
        let bare = host
            .rsplit_once(':')
            .filter(|(h, p)| p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':'))
            .map_or(host, |(h, _)| h);
        let bare = bare.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return if self.permits(ip) {
                Ok(())
            } else {
                Err(self.refusal(host, ip))
            };
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, 0))
            .await
            .map_err(|e| format!("cannot resolve {bare}: {e}"))?
            .collect();
        match addresses.iter().find(|a| !self.permits(a.ip())) {
            Some(refused) => Err(self.refusal(host, refused.ip())),
            None if addresses.is_empty() => Err(format!("{bare} resolves to no address")),
            None => Ok(()),
        }
    }
}

impl AddressPolicy {
    /// Resolves an endpoint once and checks every address it resolves to; returns the address to
    /// connect to, so that a client is handed the checked address and never resolves the name
    /// again (no window for a DNS answer to change in between).
    pub async fn pin(&self, endpoint: &Endpoint) -> Result<SocketAddr, String> {
        let what = endpoint.authority();
        if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
            return if self.permits(ip) {
                Ok(SocketAddr::new(ip, endpoint.port))
            } else {
                Err(self.refusal(&what, ip))
            };
        }
        let addresses: Vec<SocketAddr> =
            tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host))?
                .collect();
        if let Some(refused) = addresses.iter().find(|a| !self.permits(a.ip())) {
            return Err(self.refusal(&what, refused.ip()));
        }
        addresses
            .first()
            .copied()
            .ok_or_else(|| format!("{} resolves to no address", endpoint.host))
    }
}

/// A DNS resolver for Kiln's registry client that drops addresses a policy refuses (so a name,
/// or a redirect to one, cannot lead to an internal host).
struct Guarded(Arc<AddressPolicy>);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                let ip = all
                    .first()
                    .map_or("no address".to_string(), |a| a.ip().to_string());
                return Err(format!(
                    "{host} resolves to {ip}, a loopback, private or link-local address this Kiln does not reach for work groups"
                )
                .into());
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client whose connections and redirects stay within `policy`.
pub(crate) fn guarded_client(policy: Arc<AddressPolicy>) -> reqwest::Client {
    let redirects = policy.clone();
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .dns_resolver(Arc::new(Guarded(policy)))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("more than 5 redirects");
            }
            let literal = attempt
                .url()
                .host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                .and_then(|h| h.parse::<IpAddr>().ok());
            match literal {
                Some(ip) if !redirects.permits(ip) => attempt.error(format!(
                    "a redirect to {ip}, a loopback, private or link-local address, was refused"
                )),
                _ => attempt.follow(),
            }
        }))
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let none = AddressPolicy::default();
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            // IPv6 forms that carry an internal IPv4 address.
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::ffff:169.254.169.254",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::8.8.8.8",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::",
            "2001:0:7f00:1::",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "fec0::1",
            "ff02::1",
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
        ] {
            assert!(!none.permits(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:db8::1",
        ] {
            assert!(none.permits(public.parse().unwrap()), "{public}");
        }
        let some = AddressPolicy::new(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(some.permits("127.0.0.1".parse().unwrap()));
        assert!(!some.permits("127.0.0.2".parse().unwrap()));
        assert!(some.permits("10.9.8.7".parse().unwrap()));
        assert!(!some.permits("169.254.169.254".parse().unwrap()));
        assert!(AddressPolicy::new(&["10.0.0.0/33".into()]).is_err());
        assert!(AddressPolicy::new(&["nowhere".into()]).is_err());
    }

    #[tokio::test]
    async fn hosts_are_checked_by_what_they_resolve_to() {
        let none = AddressPolicy::default();
        assert!(none.check_host("127.0.0.1:5000").await.is_err());
        assert!(none.check_host("localhost:5000").await.is_err());
        assert!(none.check_host("[::1]:5000").await.is_err());
        let message = none.check_host("169.254.169.254").await.unwrap_err();
        assert!(
            message.contains("--allow-network 169.254.169.254"),
            "{message}"
        );
        let loopback = AddressPolicy::new(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(loopback.check_host("localhost:5000").await.is_ok());
    }

    #[test]
    fn endpoints_are_a_host_and_a_port_and_nothing_else() {
        let parse = |text: &str| Endpoint::parse(text, &["tcp", "http"], 2375);
        for (text, host, port) in [
            ("tcp://1.1.1.1:2375", "1.1.1.1", 2375),
            ("TCP://docker.example.com", "docker.example.com", 2375),
            ("http://[2606:4700::1111]:2376/", "2606:4700::1111", 2376),
            ("tcp://[::ffff:127.0.0.1]:1", "::ffff:127.0.0.1", 1),
        ] {
            let endpoint = parse(text).unwrap();
            assert_eq!(
                (endpoint.host.as_str(), endpoint.port),
                (host, port),
                "{text}"
            );
        }
        assert_eq!(
            parse("tcp://[::1]:9").unwrap().authority(),
            "[::1]:9".to_string()
        );
        for hostile in [
            "tcp://127.0.0.1:2375#@1.1.1.1:2375",
            "tcp://127.0.0.1:2375\\@1.1.1.1:2375",
            "tcp://user:pw@1.1.1.1:2375",
            "tcp://@1.1.1.1:2375",
            "tcp://1.1.1.1:2375/v1.41",
            "tcp://1.1.1.1:2375?x=1",
            "tcp://1.1.1.1:2375%2f",
            "tcp://1.1.1.1:2375 ",
            "tcp://",
            "tcp://:2375",
            "tcp://1.1.1.1:99999",
            "unix:///var/run/docker.sock",
            "ftp://1.1.1.1",
            "1.1.1.1:2375",
        ] {
            assert!(parse(hostile).is_err(), "{hostile}: {:?}", parse(hostile));
        }
    }

    #[tokio::test]
    async fn a_pinned_endpoint_is_the_checked_address() {
        let none = AddressPolicy::default();
        let pin = |text: &str| Endpoint::parse(text, &["tcp"], 2375).unwrap();
        for refused in [
            "tcp://127.0.0.1:2375",
            "tcp://localhost:2375",
            "tcp://[::127.0.0.1]:2375",
            "tcp://[::ffff:127.0.0.1]:2375",
            "tcp://[64:ff9b::7f00:1]:2375",
            "tcp://[2002:7f00:1::]:2375",
            "tcp://0x7f.1:2375",
            "tcp://2130706433:2375",
        ] {
            let why = none.pin(&pin(refused)).await.unwrap_err();
            assert!(
                why.contains("loopback, private or link-local"),
                "{refused}: {why}"
            );
        }
        let loopback = AddressPolicy::new(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        let pinned = loopback.pin(&pin("tcp://localhost:2375")).await.unwrap();
        assert!(
            pinned.ip().is_loopback() && pinned.port() == 2375,
            "{pinned}"
        );
        assert_eq!(
            none.pin(&pin("tcp://1.1.1.1:2375")).await.unwrap(),
            "1.1.1.1:2375".parse().unwrap()
        );
    }
}
