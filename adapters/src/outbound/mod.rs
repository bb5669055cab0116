//! Requests to destinations a model or a caller chose (`url` input parts now, web tools
//! later): the one way out of the service for such URLs.
//!
//! A URL is parsed (WHATWG rules, so `2130706433` and `0x7f000001` are the address they
//! mean), its host resolved here, every address checked against the policy, and only
//! checked addresses are connected to: the HTTP client gets them as fixed resolutions and
//! cannot resolve anything itself, so a name that re-resolves elsewhere (DNS rebinding)
//! changes nothing. Redirects are followed by hand, each hop checked the same way.
//!
//! Endpoints the admin configures (provider base URLs, S3) do not come through here.

mod allow;
mod fetch;
mod ranges;

use std::net::SocketAddr;

pub use allow::AllowList;
pub use fetch::{OutboundClient, OutboundError};
pub use ranges::{AddressClass, classify};

/// What outbound requests may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Private ranges (RFC 1918, CGNAT, unique-local …) are reachable.
    pub allow_private: bool,
    /// Destinations exempt from every refusal.
    pub allow: AllowList,
}

impl OutboundPolicy {
    /// Whether a connection to `addr` is allowed; the error says why not, for the log.
    ///
    /// # Errors
    /// The class of a refused address (`loopback`, `link-local`, `private` …).
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), &'static str> {
        if self.allow.covers_addr(addr) {
            return Ok(());
        }
        match classify(addr.ip()) {
            AddressClass::Public => Ok(()),
            AddressClass::Private(_) if self.allow_private => Ok(()),
            AddressClass::Private(why) | AddressClass::Forbidden(why) => Err(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_private: bool, allow: &str) -> OutboundPolicy {
        OutboundPolicy {
            allow_private,
            allow: AllowList::parse(allow).unwrap(),
        }
    }

    fn ok(p: &OutboundPolicy, addr: &str) -> bool {
        p.check_addr(addr.parse().unwrap()).is_ok()
    }

    #[test]
    fn by_default_only_public_addresses_pass() {
        let p = OutboundPolicy::default();
        assert!(ok(&p, "93.184.216.34:80"));
        assert!(ok(&p, "[2606:4700:4700::1111]:443"));
        for addr in [
            "127.0.0.1:80",
            "0.0.0.0:80",
            "169.254.169.254:80",
            "10.0.0.1:80",
            "192.168.1.1:443",
            "100.64.0.1:80",
            "[::1]:80",
            "[::ffff:127.0.0.1]:80",
            "[fe80::1]:80",
            "[fd00::1]:80",
        ] {
            assert!(!ok(&p, addr), "{addr}");
        }
        assert_eq!(
            p.check_addr("169.254.169.254:80".parse().unwrap()),
            Err("link-local")
        );
    }

    #[test]
    fn allow_private_opens_private_ranges_only() {
        let p = policy(true, "");
        for addr in [
            "10.0.0.1:80",
            "172.16.5.4:80",
            "192.168.1.1:443",
            "100.64.0.1:80",
            "[fd00::1]:80",
        ] {
            assert!(ok(&p, addr), "{addr}");
        }
        for addr in [
            "127.0.0.1:80",
            "169.254.169.254:80",
            "[::1]:80",
            "[fe80::1]:80",
            "224.0.0.1:80",
        ] {
            assert!(!ok(&p, addr), "{addr}");
        }
    }

    #[test]
    fn the_allow_list_exempts_from_every_refusal_on_its_ports() {
        let p = policy(false, "127.0.0.1:8080,169.254.169.254,10.0.0.0/8");
        assert!(ok(&p, "127.0.0.1:8080"));
        assert!(ok(&p, "[::ffff:127.0.0.1]:8080"));
        assert!(!ok(&p, "127.0.0.1:8081"));
        assert!(ok(&p, "169.254.169.254:80"));
        assert!(ok(&p, "10.9.8.7:22"));
        assert!(!ok(&p, "192.168.0.1:80"));
    }
}
