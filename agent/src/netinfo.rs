//! Reads the router's interface addresses (getifaddrs, read-only) into plain values for the pure core.

use crate::config::{Config, Mac};
use crate::firewall::NetFacts;
use std::net::{IpAddr, Ipv4Addr};

/// One address on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub device: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// Every address of every device of this network namespace.
pub fn addresses() -> Vec<IfAddr> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in list {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            out.push(IfAddr {
                device: ifa.interface_name,
                addr: IpAddr::V4(a.ip()),
                prefix: m.ip().to_bits().count_ones() as u8,
            });
        } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            out.push(IfAddr {
                device: ifa.interface_name,
                addr: IpAddr::V6(a.ip()),
                prefix: m.ip().to_bits().count_ones() as u8,
            });
        }
    }
    out
}

/// The facts the renderer needs, from the configured WAN and LAN devices.
pub fn facts(config: &Config, addrs: &[IfAddr]) -> NetFacts {
    let v4 = |dev: &str| -> Vec<(Ipv4Addr, u8)> {
        addrs
            .iter()
            .filter(|a| a.device == dev)
            .filter_map(|a| match a.addr {
                IpAddr::V4(ip) => Some((ip, a.prefix)),
                IpAddr::V6(_) => None,
            })
            .collect()
    };
    let mut f = NetFacts {
        wan_ipv4: config
            .wan_device
            .as_deref()
            .map(|d| v4(d).into_iter().map(|(a, _)| a).collect())
            .unwrap_or_default(),
        ..Default::default()
    };
    for dev in &config.lan_devices {
        for (ip, len) in v4(dev) {
            f.lan_ipv4.push(ip);
            f.lan_ipv4_nets
                .push((crate::net::subnet::network(ip, len), len));
        }
    }
    f.wan_ipv4.sort();
    f.wan_ipv4.dedup();
    f.lan_ipv4_nets.sort();
    f.lan_ipv4_nets.dedup();
    f
}

/// The hardware address of a device.
pub fn mac(device: &str) -> Option<[u8; 6]> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|ifa| ifa.interface_name == device)
        .find_map(|ifa| ifa.address?.as_link_addr()?.addr())
        .filter(|m| *m != [0; 6])
}

/// The MAC address the neighbour table holds for `ip` now, if the entry is valid (rtnetlink).
pub fn neighbour(ip: Ipv4Addr) -> Option<Mac> {
    crate::net::rtnl::neighbours()
        .ok()?
        .into_iter()
        .find(|n| n.valid && n.ip == Some(ip))
        .map(|n| n.mac)
}
