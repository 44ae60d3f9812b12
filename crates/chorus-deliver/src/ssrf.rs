//! The SSRF guard: outgoing requests may only reach public addresses, unless
//! an operator allows a network (`CHORUS_OUTGOING_ALLOWED_NETS`).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::net::Cidr;

/// Decides which destinations outgoing requests may reach.
#[derive(Debug, Clone, Default)]
pub struct SsrfGuard {
    allowed: Vec<Cidr>,
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// Not an absolute URL.
    #[error("invalid URL: {0}")]
    Url(String),
    /// Not http or https.
    #[error("URL scheme must be http or https, not {0:?}")]
    Scheme(String),
    /// The host does not resolve.
    #[error("host {0} does not resolve")]
    Unresolvable(String),
    /// An address of the host is private, loopback, link-local, …
    #[error("{host} resolves to {addr}, a {kind} address; outgoing webhooks may only reach public addresses")]
    Forbidden {
        /// The host.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
}

/// Why `ip` is not public, if it is not.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg0 & 0xfe00 == 0xfc00 {
                // Unique local, which includes AWS's IPv6 metadata address fd00:ec2::254.
                Some("private")
            } else if v6.segments()[..6] == [0, 0, 0, 0, 0, 0] || seg0 == 0x0064 && v6.segments()[1] == 0xff9b
            {
                // IPv4-compatible and NAT64 forms can smuggle an internal IPv4 address.
                Some("embedded IPv4")
            } else if seg0 == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("documentation")
            } else {
                None
            }
        }
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        // 169.254.0.0/16, home of the cloud metadata service 169.254.169.254.
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() || a >= 240 {
        Some("multicast or reserved")
    } else if a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Some("documentation or benchmarking")
    } else {
        None
    }
}

impl SsrfGuard {
    /// A guard that allows public addresses plus `allowed`.
    pub fn new(allowed: Vec<Cidr>) -> Self {
        Self { allowed }
    }

    /// Parse `CHORUS_OUTGOING_ALLOWED_NETS` (comma-separated CIDRs).
    pub fn from_list(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<_, _>>()
            .map(Self::new)
    }

    /// Why `ip` may not be reached, if it may not.
    pub fn refuse(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allowed.iter().any(|c| c.contains(ip)) { None } else { non_public_kind(ip) }
    }

    /// Check a destination URL: scheme, then every address its host
    /// resolves to (or its literal address).
    pub async fn check_url(&self, url: &str) -> Result<url::Url, DestinationError> {
        let parsed = url::Url::parse(url).map_err(|e| DestinationError::Url(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(DestinationError::Scheme(parsed.scheme().to_owned()));
        }
        let host = parsed.host_str().ok_or_else(|| DestinationError::Url("no host".into()))?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
            Some(url::Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
            _ => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| DestinationError::Unresolvable(host.clone()))?
                .map(|a| a.ip())
                .collect(),
        };
        if addrs.is_empty() {
            return Err(DestinationError::Unresolvable(host));
        }
        for addr in addrs {
            if let Some(kind) = self.refuse(addr) {
                return Err(DestinationError::Forbidden { host, addr, kind });
            }
        }
        Ok(parsed)
    }
}

/// A DNS resolver for reqwest that drops refused addresses, so the check
/// happens on the addresses actually connected to (no DNS rebinding between
/// check and connect).
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver(pub(crate) Arc<SsrfGuard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|a| guard.refuse(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host}: no public address (refused by the SSRF guard)").into();
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<&'static str> {
        non_public_kind(s.parse().unwrap())
    }

    #[test]
    fn classifies_addresses() {
        for (addr, want) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("224.0.0.1", Some("multicast or reserved")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fe80::1", Some("link-local")),
            ("fd00:ec2::254", Some("private")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("64:ff9b::a00:1", Some("embedded IPv4")),
            ("8.8.8.8", None),
            ("2606:4700:4700::1111", None),
        ] {
            assert_eq!(kind(addr), want, "{addr}");
        }
    }

    #[tokio::test]
    async fn checks_urls() {
        let guard = SsrfGuard::default();
        assert!(matches!(guard.check_url("ftp://example.com/x").await, Err(DestinationError::Scheme(_))));
        assert!(matches!(guard.check_url("not a url").await, Err(DestinationError::Url(_))));
        assert!(matches!(
            guard.check_url("http://127.0.0.1:9/x").await,
            Err(DestinationError::Forbidden { .. })
        ));
        assert!(matches!(guard.check_url("http://[::1]/x").await, Err(DestinationError::Forbidden { .. })));
        assert!(matches!(
            guard.check_url("http://localhost/x").await,
            Err(DestinationError::Forbidden { .. })
        ));
        assert!(guard.check_url("https://8.8.8.8/hook").await.is_ok());
        let open = SsrfGuard::from_list("127.0.0.0/8, ::1/128").unwrap();
        assert!(open.check_url("http://127.0.0.1:9/x").await.is_ok());
        assert!(SsrfGuard::from_list("10.0.0.0/40").is_err());
    }
}
