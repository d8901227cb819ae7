//! dnsmasq's lease file (OpenWrt: `/tmp/dhcp.leases`): `EXPIRY MAC IP HOSTNAME CLIENT-ID` per line,
//! EXPIRY in unix seconds (0: infinite). A second source of who has which address.

use crate::config::{parse_mac, Mac};
use std::net::Ipv4Addr;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    pub mac: Mac,
    pub ip: Ipv4Addr,
    /// `None` when dnsmasq wrote `*` (no name).
    pub hostname: Option<String>,
    /// Unix seconds; 0 = never expires.
    pub expires: u64,
}

/// The IPv4 leases of the file that have not expired at `now`; lines that are not leases (IPv6
/// `duid` lines, damage) are skipped, never fatal.
pub fn parse(text: &str, now: u64) -> Vec<Lease> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let expires = f.first()?.parse::<u64>().ok()?;
            let mac = parse_mac(f.get(1)?).ok()?;
            let ip = f.get(2)?.parse::<Ipv4Addr>().ok()?;
            let hostname = f
                .get(3)
                .filter(|h| **h != "*")
                .map(|h| h.chars().take(64).collect());
            (expires == 0 || expires > now).then_some(Lease {
                mac,
                ip,
                hostname,
                expires,
            })
        })
        .collect()
}

/// The leases of `path`; a missing file (no dnsmasq, or none issued yet) is no leases.
pub fn read(path: &Path, now: u64) -> Vec<Lease> {
    std::fs::read_to_string(path)
        .map(|t| parse(&t, now))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_parse_and_expire() {
        let text = "1700000600 0a:00:00:00:00:20 192.168.1.20 porch-cam 01:0a:00:00:00:00:20\n\
                    1600000000 0a:00:00:00:00:21 192.168.1.21 old *\n\
                    0 0a:00:00:00:00:22 192.168.1.22 * *\n\
                    duid 00:01:00:01:2c:aa:bb:cc\n\
                    garbage\n\
                    1700000600 zz:00:00:00:00:20 192.168.1.23 x *\n";
        let l = parse(text, 1_700_000_000);
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(l[0].hostname.as_deref(), Some("porch-cam"));
        assert_eq!(l[0].ip, "192.168.1.20".parse::<Ipv4Addr>().unwrap());
        assert_eq!(l[1].hostname, None);
        assert_eq!(l[1].expires, 0);
    }
}
