//! The router's own network as plain values: links, IPv4 addresses, the neighbour table and the bridge
//! forwarding database, read over rtnetlink (`rtnl`), plus dnsmasq's DHCP leases (`dhcp`). Pure functions
//! here turn them into what the rest needs: the renderer's facts, who is present, what the WAN looks like.

pub mod dhcp;
pub mod netifd;
pub mod remedy;
pub mod rtnl;
pub mod subnet;
pub mod switching;
pub mod sysfs;

use crate::config::{CommandCenter, Config, Mac};
use crate::firewall::NetFacts;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Operationally up (carrier), not only administratively.
    pub up: bool,
    /// The hardware address, if the device has one.
    pub mac: Option<Mac>,
    /// Its place in the LAN's switching.
    pub port: PortInfo,
}

/// Where a link sits in the LAN's switching: its bridge, its hardware switch, its isolation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortInfo {
    /// The bridge it is a port of (IFLA_MASTER).
    pub bridge: Option<u32>,
    /// The hardware switch (DSA tree) it belongs to (IFLA_PHYS_SWITCH_ID, hex): ports with the same
    /// id forward between each other without the CPU.
    pub switch_id: Option<String>,
    /// The device it sits on (IFLA_LINK): a DSA port's conduit.
    pub parent: Option<u32>,
    /// IFLA_INFO_KIND: bridge, dsa (Linux 6.1+), veth, vlan…
    pub kind: Option<String>,
    /// Bridge port isolation (IFLA_BRPORT_ISOLATED).
    pub isolated: bool,
    /// A Wi-Fi interface (sysfs).
    pub wireless: bool,
    /// On a DSA conduit: the tagging protocol, which names the switch driver (sysfs).
    pub tagging: Option<String>,
    /// The bridge VLANs the port is a member of, and the one its untagged frames belong to.
    pub vlans: Vec<u16>,
    pub pvid: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
}

/// An IPv4 neighbour entry, or (`ip: None`) a learned entry of a bridge's forwarding database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub mac: Mac,
    pub ip: Option<Ipv4Addr>,
    pub index: u32,
    /// The entry proves the host answered (reachable, stale, delay, probe; a learned FDB entry).
    pub valid: bool,
    /// How long before the dump the host was last confirmed (neighbour) or heard (bridge).
    pub age: Duration,
    /// The bridge VLAN of an FDB entry (0: none).
    pub vlan: u16,
}

/// An IPv4 default route through a gateway (main table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    pub index: u32,
    pub gateway: Ipv4Addr,
    pub metric: u32,
}

/// One rtnetlink dump of the router's network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetState {
    pub links: Vec<Link>,
    pub addrs: Vec<Addr>,
    pub neighbours: Vec<Sighting>,
    pub bridge_fdb: Vec<Sighting>,
    /// For each bridge port, how many learned FDB entries of other (unwatched) hosts it holds.
    pub fdb_other_hosts: Vec<(u32, u32)>,
    /// Lowest metric first.
    pub default_routes: Vec<DefaultRoute>,
    /// When the dump was taken (ages count back from it).
    pub taken_at: Option<SystemTime>,
}

impl NetState {
    fn link(&self, device: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == device)
    }

    /// The kernel's index of `device`.
    pub fn index_of(&self, device: &str) -> Option<u32> {
        self.link(device).map(|l| l.index)
    }

    /// The gateway of the best default route through `device`.
    pub fn gateway_via(&self, device: &str) -> Option<Ipv4Addr> {
        let index = self.index_of(device)?;
        let route = self.default_routes.iter().find(|r| r.index == index)?;
        Some(route.gateway)
    }

    /// Is `device` there and up? `None`: no such device.
    pub fn link_up(&self, device: &str) -> Option<bool> {
        self.link(device).map(|l| l.up)
    }

    /// The hardware address of `device`.
    pub fn link_mac(&self, device: &str) -> Option<Mac> {
        self.link(device)?.mac
    }

    /// The IPv4 addresses of `device`, with their prefix lengths.
    pub fn ipv4_of(&self, device: &str) -> Vec<(Ipv4Addr, u8)> {
        let Some(index) = self.index_of(device) else {
            return Vec::new();
        };
        self.addrs
            .iter()
            .filter(|a| a.index == index)
            .filter_map(|a| match a.ip {
                IpAddr::V4(ip) => Some((ip, a.prefix)),
                IpAddr::V6(_) => None,
            })
            .collect()
    }

    /// Every address the router holds, both families (a Host header must name one of them).
    pub fn own_ips(&self) -> Vec<IpAddr> {
        self.addrs.iter().map(|a| a.ip).collect()
    }

    /// The MAC the neighbour table holds for `ip`, if the entry is valid. The one place an address
    /// is turned into a host's identity.
    pub fn mac_of(&self, ip: Ipv4Addr) -> Option<Mac> {
        self.neighbours
            .iter()
            .find(|n| n.valid && n.ip == Some(ip))
            .map(|n| n.mac)
    }

    /// The neighbour table with `ip`'s entry replaced by what the kernel holds for it now (`now`: when
    /// it was asked; its age is kept relative to the dump's time, as the others').
    pub fn put_neighbour(&mut self, ip: Ipv4Addr, entry: Option<Sighting>, now: SystemTime) {
        self.neighbours.retain(|n| n.ip != Some(ip));
        if let Some(mut n) = entry {
            let since_dump = self
                .taken_at
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            n.age = n.age.saturating_sub(since_dump);
            self.neighbours.push(n);
        }
    }

    /// The addresses the Command Centers have: configured, and (for one known by MAC) those the
    /// neighbour table holds for its MAC.
    pub fn command_center_addresses(&self, ccs: &[CommandCenter]) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = ccs.iter().filter_map(|c| c.ip).collect();
        for cc in ccs.iter().filter(|c| c.ip.is_none()) {
            out.extend(
                (self.neighbours.iter())
                    .filter(|n| n.valid && Some(n.mac) == cc.mac)
                    .filter_map(|n| n.ip),
            );
        }
        out
    }

    /// A Command Center's MAC: the configured one, else the neighbour table's for its address.
    pub fn command_center_mac(&self, cc: &CommandCenter) -> Option<Mac> {
        cc.mac.or_else(|| cc.ip.and_then(|ip| self.mac_of(ip)))
    }
}

/// Counts a learned FDB entry of a host nobody watches against its port (`NetState::fdb_other_hosts`).
pub fn count_other_host(counts: &mut Vec<(u32, u32)>, s: &Sighting) {
    if !s.valid {
        return;
    }
    match counts.iter_mut().find(|(i, _)| *i == s.index) {
        Some((_, n)) => *n = n.saturating_add(1),
        None => counts.push((s.index, 1)),
    }
}

/// The renderer's facts: the WAN and LAN addresses of the configured devices, and the addresses learned
/// for configured MACs (neighbour table first, then DHCP leases).
pub fn facts(config: &Config, state: &NetState, leases: &[dhcp::Lease]) -> NetFacts {
    let mut f = NetFacts::default();
    if let Some(wan) = config.wan_device.as_deref() {
        f.wan_ipv4 = state.ipv4_of(wan).into_iter().map(|(ip, _)| ip).collect();
    }
    for dev in &config.lan_devices {
        for (ip, len) in state.ipv4_of(dev) {
            f.lan_ipv4.push(ip);
            f.lan_ipv4_nets.push((subnet::network(ip, len), len));
        }
    }
    f.wan_ipv4.sort();
    f.wan_ipv4.dedup();
    f.lan_ipv4_nets.sort();
    f.lan_ipv4_nets.dedup();
    let wanted: Vec<Mac> = config
        .cameras
        .iter()
        .map(|c| c.mac)
        .chain(config.command_centers.iter().filter_map(|c| c.mac))
        .collect();
    let mut learned: Vec<(Mac, Ipv4Addr)> = state
        .neighbours
        .iter()
        .filter(|n| n.valid && wanted.contains(&n.mac))
        .filter_map(|n| Some((n.mac, n.ip?)))
        .chain(
            leases
                .iter()
                .filter(|l| wanted.contains(&l.mac))
                .map(|l| (l.mac, l.ip)),
        )
        .collect();
    learned.sort();
    learned.dedup();
    f.learned = learned;
    f
}

/// Where a host was seen last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenBy {
    /// The router's IPv4 neighbour (ARP) table.
    Neighbour,
    /// A bridge's forwarding database (the host sent frames through a bridge port).
    Bridge,
}

/// Is a host present: seen within `timeout`?
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Presence {
    pub present: bool,
    /// Unix seconds.
    pub last_seen: Option<u64>,
    pub seen_by: Option<SeenBy>,
}

/// When `mac` was last seen, by the freshest valid entry of the dump.
pub fn last_seen(state: &NetState, mac: Mac) -> Option<(SystemTime, SeenBy)> {
    let taken = state.taken_at?;
    let neigh = state.neighbours.iter().map(|s| (s, SeenBy::Neighbour));
    let fdb = state.bridge_fdb.iter().map(|s| (s, SeenBy::Bridge));
    neigh
        .chain(fdb)
        .filter(|(s, _)| s.valid && s.mac == mac)
        .min_by_key(|(s, _)| s.age)
        .map(|(s, by)| (taken.checked_sub(s.age).unwrap_or(taken), by))
}

pub fn presence(state: &NetState, mac: Mac, now: SystemTime, timeout: Duration) -> Presence {
    match last_seen(state, mac) {
        None => Presence {
            present: false,
            last_seen: None,
            seen_by: None,
        },
        Some((at, by)) => Presence {
            present: now.duration_since(at).unwrap_or_default() <= timeout,
            last_seen: at.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs()),
            seen_by: Some(by),
        },
    }
}

/// When the next watched host would turn absent without a new sighting: then the network is read
/// again (a quiet host sends no event; its entry only ages).
pub fn next_absence(state: &NetState, macs: &[Mac], timeout: Duration) -> Option<SystemTime> {
    macs.iter()
        .filter_map(|m| last_seen(state, *m))
        .map(|(at, _)| at + timeout)
        .min()
}

/// How the WAN address looks from a direct-mode point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WanAddressKind {
    Public,
    /// RFC 1918: another router sits upstream (double NAT).
    Private,
    /// RFC 6598 100.64.0.0/10: carrier-grade NAT.
    Cgnat,
    /// Link-local, loopback, documentation-free oddities: not reachable from the internet either.
    Unusable,
}

pub fn wan_address_kind(ip: Ipv4Addr) -> WanAddressKind {
    let o = ip.octets();
    if ip.is_private() {
        WanAddressKind::Private
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        WanAddressKind::Cgnat
    } else if ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || o[0] >= 240
    {
        WanAddressKind::Unusable
    } else {
        WanAddressKind::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_mac;

    fn sighting(mac: &str, ip: Option<&str>, valid: bool, age_s: u64) -> Sighting {
        Sighting {
            mac: parse_mac(mac).unwrap(),
            ip: ip.map(|i| i.parse().unwrap()),
            index: 3,
            valid,
            age: Duration::from_secs(age_s),
            vlan: 0,
        }
    }

    #[test]
    fn one_neighbour_entry_is_replaced_in_place() {
        let dumped = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut state = NetState {
            neighbours: vec![
                sighting("0a:00:00:00:00:10", Some("192.168.1.10"), true, 5),
                sighting("0a:00:00:00:00:20", Some("192.168.1.20"), true, 5),
            ],
            taken_at: Some(dumped),
            ..Default::default()
        };
        let ip: Ipv4Addr = "192.168.1.10".parse().unwrap();
        // Another host answers for the address now, confirmed 12 s ago, asked 10 s after the dump.
        let now = dumped + Duration::from_secs(10);
        let taken = sighting("0a:00:00:00:00:30", Some("192.168.1.10"), true, 12);
        state.put_neighbour(ip, Some(taken), now);
        assert_eq!(state.mac_of(ip), parse_mac("0a:00:00:00:00:30").ok());
        assert_eq!(state.neighbours.len(), 2);
        assert_eq!(
            state.neighbours[1].age,
            Duration::from_secs(2),
            "as of the dump"
        );
        // Gone from the table: gone here too; the other host's entry stays.
        state.put_neighbour(ip, None, now);
        assert_eq!(state.mac_of(ip), None);
        assert!(state.mac_of("192.168.1.20".parse().unwrap()).is_some());
    }

    #[test]
    fn one_reading_answers_addresses_macs_and_identities() {
        let cc_mac = parse_mac("0a:00:00:00:00:10").unwrap();
        let state = NetState {
            links: vec![
                Link {
                    index: 2,
                    name: "br-lan".into(),
                    up: true,
                    port: Default::default(),
                    mac: Some(parse_mac("02:00:00:00:00:01").unwrap()),
                },
                Link {
                    index: 3,
                    name: "wan".into(),
                    up: false,
                    mac: None,
                    port: Default::default(),
                },
            ],
            addrs: vec![
                Addr {
                    index: 2,
                    ip: "192.168.1.1".parse().unwrap(),
                    prefix: 24,
                },
                Addr {
                    index: 2,
                    ip: "fd00::1".parse().unwrap(),
                    prefix: 64,
                },
                Addr {
                    index: 3,
                    ip: "203.0.113.2".parse().unwrap(),
                    prefix: 24,
                },
            ],
            neighbours: vec![sighting("0a:00:00:00:00:10", Some("192.168.1.10"), true, 5)],
            ..Default::default()
        };
        assert_eq!(
            state.ipv4_of("br-lan"),
            [("192.168.1.1".parse().unwrap(), 24)]
        );
        assert!(state.ipv4_of("eth9").is_empty());
        assert_eq!(state.own_ips().len(), 3);
        assert!(state.own_ips().contains(&"fd00::1".parse().unwrap()));
        assert_eq!(state.link_up("wan"), Some(false));
        assert_eq!(state.link_mac("wan"), None);
        assert_eq!(
            state.link_mac("br-lan").map(|m| m.to_string()).as_deref(),
            Some("02:00:00:00:00:01")
        );
        let by_ip = CommandCenter {
            ip: Some("192.168.1.10".parse().unwrap()),
            name: "office".into(),
            mac: None,
        };
        assert_eq!(state.command_center_mac(&by_ip), Some(cc_mac));
        let unseen = CommandCenter {
            ip: Some("192.168.1.11".parse().unwrap()),
            ..by_ip.clone()
        };
        assert_eq!(state.command_center_mac(&unseen), None);
    }

    #[test]
    fn wan_kinds() {
        let k = |s: &str| wan_address_kind(s.parse().unwrap());
        assert_eq!(k("203.0.113.1"), WanAddressKind::Public);
        assert_eq!(k("10.0.0.2"), WanAddressKind::Private);
        assert_eq!(k("172.16.5.1"), WanAddressKind::Private);
        assert_eq!(k("192.168.0.2"), WanAddressKind::Private);
        assert_eq!(k("100.64.0.1"), WanAddressKind::Cgnat);
        assert_eq!(k("100.127.255.254"), WanAddressKind::Cgnat);
        assert_eq!(k("100.128.0.1"), WanAddressKind::Public);
        assert_eq!(k("169.254.3.4"), WanAddressKind::Unusable);
    }

    #[test]
    fn presence_takes_the_freshest_valid_sighting_and_times_out() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let state = NetState {
            neighbours: vec![
                sighting("0a:00:00:00:00:20", Some("192.168.1.20"), true, 200),
                sighting("0a:00:00:00:00:21", Some("192.168.1.21"), false, 1),
            ],
            bridge_fdb: vec![sighting("0a:00:00:00:00:20", None, true, 10)],
            taken_at: Some(t0),
            ..Default::default()
        };
        let cam = parse_mac("0a:00:00:00:00:20").unwrap();
        let timeout = Duration::from_secs(60);
        let p = presence(&state, cam, t0, timeout);
        assert!(p.present);
        assert_eq!(p.seen_by, Some(SeenBy::Bridge));
        assert_eq!(p.last_seen, Some(1_000_000 - 10));
        // 51 s later the bridge sighting is 61 s old: absent, last seen kept.
        let later = presence(&state, cam, t0 + Duration::from_secs(51), timeout);
        assert!(!later.present);
        assert_eq!(later.last_seen, Some(1_000_000 - 10));
        // A failed/incomplete entry is no sighting.
        let failed = parse_mac("0a:00:00:00:00:21").unwrap();
        assert!(!presence(&state, failed, t0, timeout).present);
        assert_eq!(
            next_absence(&state, &[cam, failed], timeout),
            Some(t0 - Duration::from_secs(10) + timeout)
        );
    }
}
