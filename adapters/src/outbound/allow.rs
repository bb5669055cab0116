//! The admin's exemptions from the outbound policy (`FETCH_ALLOW_HOSTS`).
//!
//! Entries are `host[:port]` or a CIDR block. A host is a name (matched as the URL spells
//! it, after the URL parser's normalisation), or an IP address (matched against the
//! address actually connected to, in any spelling). A port narrows an entry to that port;
//! a CIDR block covers every port.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// One exemption.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Net(IpNet),
    Ip { ip: IpAddr, port: Option<u16> },
    Name { name: String, port: Option<u16> },
}

/// Destinations exempt from every refusal of the outbound policy, loopback included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

impl AllowList {
    /// Parses a comma-separated list such as `127.0.0.1:8080,nas.lan,10.0.0.0/8`; blank
    /// items are skipped.
    ///
    /// # Errors
    /// The first entry that is not a host, `host:port` or CIDR block, with why.
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| parse_entry(item).map_err(|why| format!("{item:?}: {why}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a URL host written as `name` (a domain, lower-case, as the URL parser
    /// normalised it) is exempt on `port`, whatever it resolves to.
    pub fn covers_name(&self, name: &str, port: u16) -> bool {
        let name = name.trim_end_matches('.');
        self.entries.iter().any(|entry| match entry {
            Entry::Name { name: n, port: p } => n == name && p.is_none_or(|p| p == port),
            Entry::Net(_) | Entry::Ip { .. } => false,
        })
    }

    /// Whether connecting to `addr` is exempt. IPv4-mapped IPv6 addresses match their
    /// IPv4 entries.
    pub fn covers_addr(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        self.entries.iter().any(|entry| match entry {
            Entry::Net(net) => net.contains(&ip),
            Entry::Ip { ip: i, port } => *i == ip && port.is_none_or(|p| p == addr.port()),
            Entry::Name { .. } => false,
        })
    }
}

fn parse_entry(item: &str) -> Result<Entry, String> {
    if item.contains('/') {
        let net: IpNet = item
            .parse()
            .map_err(|_| "not a CIDR block like 10.0.0.0/8".to_owned())?;
        return Ok(Entry::Net(match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                // `::ffff:10.0.0.0/104` means 10.0.0.0/8; addresses are compared canonical.
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                        .map_err(|e| e.to_string())?
                        .trunc()
                }
                _ => IpNet::V6(v6.trunc()),
            },
            IpNet::V4(v4) => IpNet::V4(v4.trunc()),
        }));
    }
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Ok(Entry::Ip {
            ip: ip.to_canonical(),
            port: None,
        });
    }
    if let Ok(addr) = item.parse::<SocketAddr>() {
        return Ok(Entry::Ip {
            ip: addr.ip().to_canonical(),
            port: Some(valid_port(&addr.port().to_string())?),
        });
    }
    let bracketed = item.starts_with('[') && item.ends_with(']');
    let (host, port) = match item.rsplit_once(':') {
        Some((host, port)) if !bracketed && !host.contains(':') => (host, Some(valid_port(port)?)),
        Some(_) if !bracketed && !item.starts_with('[') => {
            return Err("an IPv6 address with a port needs brackets: [::1]:8080".into());
        }
        _ => (item, None),
    };
    match url::Host::parse(host).map_err(|e| format!("not a host name or IP address: {e}"))? {
        url::Host::Domain(name) => Ok(Entry::Name {
            name: name.trim_end_matches('.').to_owned(),
            port,
        }),
        // Other IPv4 spellings (`2130706433`, `0x7f.1`) and bracketed IPv6 without a port.
        url::Host::Ipv4(ip) => Ok(Entry::Ip {
            ip: IpAddr::V4(ip),
            port,
        }),
        url::Host::Ipv6(ip) => Ok(Entry::Ip {
            ip: IpAddr::V6(ip).to_canonical(),
            port,
        }),
    }
}

fn valid_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("not a port (1-65535): {port}")),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_port_entries_exempt_only_their_port() {
        let list = AllowList::parse("127.0.0.1:8080, nas.lan:9000").unwrap();
        assert!(list.covers_addr(addr("127.0.0.1:8080")));
        assert!(!list.covers_addr(addr("127.0.0.1:8081")));
        assert!(!list.covers_addr(addr("127.0.0.2:8080")));
        assert!(list.covers_name("nas.lan", 9000));
        assert!(!list.covers_name("nas.lan", 80));
        assert!(!list.covers_name("other.lan", 9000));
    }

    #[test]
    fn entries_without_port_exempt_every_port() {
        let list = AllowList::parse("nas.lan.,::1,192.168.1.5").unwrap();
        assert!(list.covers_name("nas.lan", 80));
        assert!(list.covers_name("nas.lan.", 443));
        assert!(list.covers_addr(addr("[::1]:1")));
        assert!(list.covers_addr(addr("192.168.1.5:65535")));
        assert!(!list.covers_addr(addr("192.168.1.6:80")));
    }

    #[test]
    fn cidr_blocks_cover_their_range_on_every_port() {
        let list = AllowList::parse("10.0.0.0/8,fd00::/8,192.168.7.9/24").unwrap();
        assert!(list.covers_addr(addr("10.200.3.4:22")));
        assert!(list.covers_addr(addr("[fd12::1]:80")));
        // the host bits of a block are ignored: 192.168.7.0/24
        assert!(list.covers_addr(addr("192.168.7.200:80")));
        assert!(!list.covers_addr(addr("11.0.0.1:80")));
        assert!(!list.covers_addr(addr("[fe80::1]:80")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_entries_and_back() {
        let list = AllowList::parse("127.0.0.1:8080,::ffff:10.0.0.0/104").unwrap();
        assert!(list.covers_addr(addr("[::ffff:127.0.0.1]:8080")));
        assert!(list.covers_addr(addr("10.1.1.1:80")));
        assert!(list.covers_addr(addr("[::ffff:10.1.1.1]:80")));
        let mapped = AllowList::parse("[::ffff:127.0.0.1]:8080").unwrap();
        assert!(mapped.covers_addr(addr("127.0.0.1:8080")));
    }

    #[test]
    fn other_ipv4_spellings_are_the_address_they_mean() {
        let list = AllowList::parse("2130706433:8080,0x7f.1").unwrap();
        assert!(list.covers_addr(addr("127.0.0.1:8080")));
        assert!(list.covers_addr(addr("127.0.0.1:22")));
        let bracketed = AllowList::parse("[::1],[::2]:81").unwrap();
        assert!(bracketed.covers_addr(addr("[::1]:5")));
        assert!(bracketed.covers_addr(addr("[::2]:81")));
        assert!(!bracketed.covers_addr(addr("[::2]:80")));
    }

    #[test]
    fn names_never_match_addresses_nor_addresses_names() {
        let list = AllowList::parse("localhost,127.0.0.1").unwrap();
        assert!(list.covers_name("localhost", 80));
        assert!(!list.covers_name("127.0.0.1", 80));
        assert!(!list.covers_addr(addr("[::1]:80")));
    }

    #[test]
    fn empty_items_are_skipped_and_bad_ones_named() {
        assert!(AllowList::parse(" , ,").unwrap().is_empty());
        for (bad, says) in [
            ("10.0.0.0/33", "CIDR"),
            ("nas.lan:0", "port"),
            ("nas.lan:http", "port"),
            ("127.0.0.1:70000", "port"),
            ("::1:8080:x", "brackets"),
            ("exa mple.com", "host"),
            ("[::1", "host"),
            ("[::1]:x", "host"),
        ] {
            let err = AllowList::parse(&format!("ok.lan,{bad}")).unwrap_err();
            assert!(err.contains(bad) && err.contains(says), "{bad}: {err}");
        }
    }
}
