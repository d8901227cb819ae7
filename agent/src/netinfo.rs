//! Reads the router's interface addresses (getifaddrs, read-only) into plain values for the pure core.

use crate::config::{Config, Mac};
use crate::firewall::NetFacts;
use crate::upnp::control::Link;
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
            f.lan_ipv4_nets.push((network(ip, len), len));
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

/// The WAN link as sysfs tells it: state, speed and counters.
pub fn link(device: &str) -> Link {
    let dir = std::path::Path::new("/sys/class/net").join(device);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let num = |f: &str| read(f).trim().parse::<u64>().unwrap_or(0);
    let state = read("operstate");
    let up = match state.trim() {
        "up" => true,
        // PPP and tunnel devices report "unknown"; their carrier tells.
        "unknown" => read("carrier").trim() == "1",
        _ => false,
    };
    let speed = read("speed").trim().parse::<i64>().unwrap_or(0).max(0) as u64;
    Link {
        up,
        speed_bps: speed * 1_000_000,
        tx_bytes: num("statistics/tx_bytes"),
        rx_bytes: num("statistics/rx_bytes"),
        tx_packets: num("statistics/tx_packets"),
        rx_packets: num("statistics/rx_packets"),
    }
}

/// Is `ip` inside one of `nets` (network, prefix length)?
pub fn in_nets(ip: Ipv4Addr, nets: &[(Ipv4Addr, u8)]) -> bool {
    nets.iter().any(|&(net, len)| network(ip, len) == net)
}

/// The network address of `ip/len`.
pub fn network(ip: Ipv4Addr, len: u8) -> Ipv4Addr {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    Ipv4Addr::from_bits(ip.to_bits() & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_masks_host_bits() {
        assert_eq!(
            network("192.168.50.77".parse().unwrap(), 24),
            "192.168.50.0".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(
            network("10.1.2.3".parse().unwrap(), 0),
            Ipv4Addr::UNSPECIFIED
        );
        assert_eq!(
            network("10.1.2.3".parse().unwrap(), 32),
            "10.1.2.3".parse::<Ipv4Addr>().unwrap()
        );
    }
}
