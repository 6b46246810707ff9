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

/// Whether `ip` is on the host itself or on an internal network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
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
        ] {
            assert!(!none.permits(internal.parse().unwrap()), "{internal}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
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
}
