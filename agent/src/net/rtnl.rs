//! rtnetlink I/O: one dump of links, addresses, IPv4 neighbours, bridge FDB entries and IPv4 default
//! routes, and a subscription that wakes the daemon on any change of them (`RTMGRP_LINK |
//! RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE`). Blocking sockets: an async runtime would cost more flash than it saves.
//!
//! Events only say *that* something changed; the daemon then dumps again. A dump of a home router's
//! tables is small, and it cannot drift the way an incrementally patched copy can after a lost event.
//! The bridge FDB is the exception: any LAN host can fill it with forged MACs (hundreds of thousands
//! of entries), so only the entries of the watched MACs (cameras, Command Centers) are kept, read as
//! the dump streams by, and an FDB event of any other MAC is no news at all. A mapping change asks
//! only for its requester's neighbour entry (`neighbour`): it needs that one entry fresh, and must not
//! cost more the more hosts the LAN has.

use super::{Addr, DefaultRoute, Link, NetState, PortInfo, Sighting};
use crate::config::Mac;
use crate::netlink::{self, attributes, u16_at, u32_at, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use nix::sys::socket::SockProtocol;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::time::{Duration, SystemTime};

// linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/neighbour.h
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_NEIGH: u32 = 0x4;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const AF_BRIDGE: u8 = 7;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_PHYS_SWITCH_ID: u16 = 36;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_SLAVE_KIND: u16 = 4;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_EXT_MASK: u16 = 29;
const RTEXT_FILTER_BRVLAN: u32 = 1 << 1;
const IFLA_BRIDGE_VLAN_INFO: u16 = 2;
const BRIDGE_VLAN_INFO_PVID: u16 = 1 << 1;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_UP: u8 = 6;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NDA_CACHEINFO: u16 = 3;
const NDA_VLAN: u16 = 5;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
/// NUD states that prove the host answered recently enough to be in the table.
const NUD_SEEN: u16 = 0x02 | 0x04 | 0x08 | 0x10; // reachable, stale, delay, probe
/// Header sizes: ifinfomsg, ifaddrmsg, ndmsg, rtmsg.
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
const NDMSG: usize = 12;
const RTMSG: usize = 12;
/// Clock ticks per second of `nda_cacheinfo` ages (USER_HZ, 100 on every Linux ABI).
const USER_HZ: u64 = 100;

fn open() -> io::Result<OwnedFd> {
    Ok(netlink::open(SockProtocol::NetlinkRoute, 0)?)
}

/// One dump request with the family header `fixed`; the payloads of the answers of type `answer`.
fn dump_of(
    fd: &OwnedFd,
    kind: u16,
    answer: u16,
    seq: u32,
    fixed: &[u8],
) -> io::Result<Vec<Vec<u8>>> {
    let req = netlink::message(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, fixed, &[]);
    Ok(netlink::transact(fd, &req, seq)?
        .into_iter()
        .filter(|(k, _)| *k == answer)
        .map(|(_, p)| p)
        .collect())
}

/// The hosts whose bridge FDB entries matter: these MACs, and those the ARP table gives these
/// addresses (a Command Center configured by address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    pub macs: Vec<Mac>,
    pub ips: Vec<Ipv4Addr>,
}

impl Watched {
    /// The hosts a config watches: its cameras and Command Centers.
    pub fn of(config: &crate::config::Config) -> Watched {
        let ccs = &config.command_centers;
        Watched {
            macs: (config.cameras.iter().map(|c| c.mac))
                .chain(ccs.iter().filter_map(|c| c.mac))
                .collect(),
            ips: ccs.iter().filter_map(|c| c.ip).collect(),
        }
    }
}

/// Reads the whole picture once; of the bridge FDB only the watched hosts' entries, and only with
/// `fdb` (otherwise `bridge_fdb` is empty: a flooded FDB takes long to list, and the daemon reads it
/// only when a watched host's entry changed, or at its periodic check).
pub fn dump(watched: &Watched, fdb: bool) -> io::Result<NetState> {
    let fd = open()?;
    let taken_at = SystemTime::now();
    let links = dump_of(&fd, RTM_GETLINK, RTM_NEWLINK, 1, &[0; IFINFOMSG])?;
    let addrs = dump_of(&fd, RTM_GETADDR, RTM_NEWADDR, 2, &[AF_UNSPEC; IFADDRMSG])?;
    let neighbours = sightings(&fd, 3, AF_INET, |_| true, |_| {})?;
    let mut macs = watched.macs.clone();
    macs.extend(
        (neighbours.iter())
            .filter(|n| n.ip.is_some_and(|ip| watched.ips.contains(&ip)))
            .map(|n| n.mac),
    );
    // Other hosts' entries are only counted per port (a flood of them costs no memory).
    let mut fdb_other_hosts: Vec<(u32, u32)> = Vec::new();
    let count = |s: &Sighting| super::count_other_host(&mut fdb_other_hosts, s);
    let bridge_fdb = if fdb {
        sightings(&fd, 4, AF_BRIDGE, |s| macs.contains(&s.mac), count)?
    } else {
        Vec::new()
    };
    let mut links: Vec<Link> = links.iter().filter_map(|p| link(p)).collect();
    // The bridge ports' VLANs (AF_BRIDGE, one entry per VLAN: bounded by ports times VLANs).
    let mut mask = [0u8; IFINFOMSG].to_vec();
    mask[0] = AF_BRIDGE;
    mask.extend(netlink::attr(
        IFLA_EXT_MASK,
        &RTEXT_FILTER_BRVLAN.to_ne_bytes(),
    ));
    for p in dump_of(&fd, RTM_GETLINK, RTM_NEWLINK, 6, &mask)? {
        let Some(index) = u32_at(&p, 4) else { continue };
        if let Some(l) = links.iter_mut().find(|l| l.index == index) {
            port_vlans(&p, &mut l.port);
        }
    }
    Ok(NetState {
        links,
        addrs: addrs.iter().filter_map(|p| addr(p)).collect(),
        neighbours,
        bridge_fdb,
        fdb_other_hosts,
        default_routes: default_routes(&fd, 5)?,
        taken_at: Some(taken_at),
    })
}

/// What an rtnetlink event means to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// An FDB entry of a MAC nobody watches: nothing.
    No,
    /// Links, addresses, routes, the ARP table: read them again.
    Yes,
    /// A watched host's FDB entry (or one that cannot be read): read the FDB too.
    WatchedFdb,
}

pub fn news(kind: u16, payload: &[u8], watched: &[Mac]) -> News {
    if !matches!(kind, RTM_NEWNEIGH | RTM_DELNEIGH) || payload.first() != Some(&AF_BRIDGE) {
        return News::Yes;
    }
    let mac = (payload.get(NDMSG..))
        .and_then(|attrs| attributes(attrs).find(|(t, _)| *t == NDA_LLADDR))
        .and_then(|(_, v)| <[u8; 6]>::try_from(v).ok());
    if mac.is_none_or(|m| watched.contains(&Mac(m))) {
        News::WatchedFdb
    } else {
        News::No
    }
}

/// The kernel's neighbour entry for one IPv4 address, looked for on each of `devices` (the kernel's
/// "neigh get", Linux 4.18 and later): what the table holds for it now, without dumping every table.
pub fn neighbour(devices: &[u32], ip: Ipv4Addr) -> io::Result<Option<Sighting>> {
    let fd = open()?;
    for (seq, index) in (1..).zip(devices) {
        let mut ndmsg = [0u8; NDMSG];
        ndmsg[0] = AF_INET;
        ndmsg[4..8].copy_from_slice(&index.to_ne_bytes());
        let dst = ip.octets();
        let req = netlink::message(
            RTM_GETNEIGH,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            &ndmsg,
            &[(NDA_DST, &dst)],
        );
        match netlink::transact(&fd, &req, seq) {
            Ok(answers) => {
                let found = answers
                    .iter()
                    .filter(|(k, _)| *k == RTM_NEWNEIGH)
                    .find_map(|(_, p)| sighting(p, AF_INET));
                if found.is_some() {
                    return Ok(found);
                }
            }
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// The IPv4 default routes of the main table that go through a gateway.
fn default_routes(fd: &OwnedFd, seq: u32) -> io::Result<Vec<DefaultRoute>> {
    let mut rtmsg = [0u8; RTMSG];
    rtmsg[0] = AF_INET;
    let answers = dump_of(fd, RTM_GETROUTE, RTM_NEWROUTE, seq, &rtmsg)?;
    let mut routes: Vec<DefaultRoute> = answers.iter().filter_map(|p| default_route(p)).collect();
    routes.sort_unstable_by_key(|r| r.metric);
    Ok(routes)
}

/// rtmsg { family, dst_len, src_len, tos, table, protocol, scope, type u8; flags u32 } + attributes.
fn default_route(p: &[u8]) -> Option<DefaultRoute> {
    let (family, dst_len, table, kind) = (*p.first()?, *p.get(1)?, *p.get(4)?, *p.get(7)?);
    if family != AF_INET || dst_len != 0 || kind != RTN_UNICAST {
        return None;
    }
    let (mut table, mut index, mut gateway, mut metric) = (u32::from(table), None, None, 0);
    for (t, v) in attributes(p.get(RTMSG..)?) {
        match t {
            RTA_TABLE => table = u32_at(v, 0)?,
            RTA_OIF => index = u32_at(v, 0),
            RTA_GATEWAY => gateway = <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from),
            RTA_PRIORITY => metric = u32_at(v, 0)?,
            _ => {}
        }
    }
    (table == RT_TABLE_MAIN).then_some(DefaultRoute {
        index: index?,
        gateway: gateway?,
        metric,
    })
}

/// Neighbour entries of one family (`AF_INET`: the ARP table; `AF_BRIDGE`: the bridges' FDB) that
/// `keep` keeps, each looked at as the dump streams by; `other` sees the rest.
fn sightings(
    fd: &OwnedFd,
    seq: u32,
    family: u8,
    keep: impl Fn(&Sighting) -> bool,
    mut other: impl FnMut(&Sighting),
) -> io::Result<Vec<Sighting>> {
    let mut ndmsg = [0u8; NDMSG];
    ndmsg[0] = family;
    let req = netlink::message(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, &ndmsg, &[]);
    let mut out = Vec::new();
    netlink::transact_each(fd, &req, seq, |kind, p| {
        match (kind == RTM_NEWNEIGH)
            .then(|| sighting(p, family))
            .flatten()
        {
            Some(s) if keep(&s) => out.push(s),
            Some(s) => other(&s),
            None => {}
        }
    })?;
    Ok(out)
}

/// ifinfomsg { family u8, pad u8, type u16, index i32, flags u32, change u32 } + attributes.
fn link(p: &[u8]) -> Option<Link> {
    let index = u32_at(p, 4)?;
    let flags = u32_at(p, 8)?;
    let mut name = String::new();
    let mut oper = IF_OPER_UNKNOWN;
    let mut mac = None;
    let mut port = PortInfo::default();
    let index_in = |v: &[u8]| u32_at(v, 0).filter(|i| *i != 0);
    for (t, v) in attributes(p.get(IFINFOMSG..)?) {
        match t {
            IFLA_ADDRESS => {
                mac = <[u8; 6]>::try_from(v)
                    .ok()
                    .filter(|m| *m != [0; 6])
                    .map(Mac)
            }
            IFLA_IFNAME => {
                name = String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string()
            }
            IFLA_OPERSTATE => oper = *v.first()?,
            IFLA_MASTER => port.bridge = index_in(v),
            IFLA_LINK => port.parent = index_in(v),
            IFLA_PHYS_SWITCH_ID if !v.is_empty() => {
                port.switch_id = Some(v.iter().map(|b| format!("{b:02x}")).collect())
            }
            IFLA_LINKINFO => link_info(v, &mut port),
            _ => {}
        }
    }
    // PPP, tunnels and dummies report "unknown"; the lower-layer flag tells.
    let up = flags & IFF_UP != 0
        && (oper == IF_OPER_UP || (oper == IF_OPER_UNKNOWN && flags & IFF_LOWER_UP != 0));
    Some(Link {
        index,
        name,
        up,
        mac,
        port,
    })
}

/// IFLA_AF_SPEC of an AF_BRIDGE link message: the port's VLANs and its PVID.
fn port_vlans(p: &[u8], port: &mut PortInfo) {
    let Some(attrs) = p.get(IFINFOMSG..) else {
        return;
    };
    for (_, spec) in attributes(attrs).filter(|(t, _)| *t == IFLA_AF_SPEC) {
        for (_, v) in attributes(spec).filter(|(t, _)| *t == IFLA_BRIDGE_VLAN_INFO) {
            let (Some(flags), Some(vid)) = (u16_at(v, 0), u16_at(v, 2)) else {
                continue;
            };
            if !port.vlans.contains(&vid) {
                port.vlans.push(vid);
            }
            if flags & BRIDGE_VLAN_INFO_PVID != 0 {
                port.pvid = Some(vid);
            }
        }
    }
}

/// IFLA_LINKINFO: the link's kind, and for a bridge port its isolation.
fn link_info(v: &[u8], port: &mut PortInfo) {
    let text = |v: &[u8]| {
        String::from_utf8_lossy(v)
            .trim_end_matches('\0')
            .to_string()
    };
    let mut bridge_port = false;
    let mut slave_data: &[u8] = &[];
    for (t, v) in attributes(v) {
        match t {
            IFLA_INFO_KIND => port.kind = Some(text(v)),
            IFLA_INFO_SLAVE_KIND => bridge_port = text(v) == "bridge",
            IFLA_INFO_SLAVE_DATA => slave_data = v,
            _ => {}
        }
    }
    if bridge_port {
        port.isolated =
            attributes(slave_data).any(|(t, v)| t == IFLA_BRPORT_ISOLATED && v.first() == Some(&1));
    }
}

/// ifaddrmsg { family u8, prefixlen u8, flags u8, scope u8, index u32 } + attributes. IFA_LOCAL is the
/// address itself on point-to-point links (PPPoE WANs); IFA_ADDRESS elsewhere.
fn addr(p: &[u8]) -> Option<Addr> {
    let family = *p.first()?;
    let prefix = *p.get(1)?;
    let index = u32_at(p, 4)?;
    let ip = |v: &[u8]| -> Option<IpAddr> {
        match family {
            AF_INET => Some(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?).into()),
            AF_INET6 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(v).ok()?).into()),
            _ => None,
        }
    };
    let mut address = None;
    let mut local = None;
    for (t, v) in attributes(p.get(IFADDRMSG..)?) {
        match t {
            IFA_ADDRESS => address = ip(v),
            IFA_LOCAL => local = ip(v),
            _ => {}
        }
    }
    Some(Addr {
        index,
        ip: local.or(address)?,
        prefix,
    })
}

/// ndmsg { family u8, pad u8, pad u16, ifindex i32, state u16, flags u8, type u8 } + attributes.
fn sighting(p: &[u8], family: u8) -> Option<Sighting> {
    let index = u32_at(p, 4)?;
    let state = u16::from_ne_bytes(p.get(8..10)?.try_into().ok()?);
    let mut mac = None;
    let mut ip = None;
    let mut age = Duration::ZERO;
    let mut vlan = 0;
    for (t, v) in attributes(p.get(NDMSG..)?) {
        match t {
            NDA_LLADDR => mac = <[u8; 6]>::try_from(v).ok().map(Mac),
            NDA_DST => ip = <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from),
            NDA_VLAN => vlan = v.get(..2).map_or(0, |b| u16::from_ne_bytes([b[0], b[1]])),
            NDA_CACHEINFO => {
                // nda_cacheinfo { confirmed, used, updated, refcnt }: neighbours count from the last
                // confirmation, bridge FDB entries from the last frame heard ("updated").
                let at = if family == AF_BRIDGE { 8 } else { 0 };
                age = Duration::from_millis(u64::from(u32_at(v, at)?) * 1000 / USER_HZ);
            }
            _ => {}
        }
    }
    let mac = mac?;
    // Multicast/broadcast FDB entries, and neighbours without an address yet, are no host.
    if mac.0[0] & 1 == 1 || mac.0 == [0; 6] || (family == AF_INET) != ip.is_some() {
        return None;
    }
    Some(Sighting {
        mac,
        ip,
        index,
        // Bridge FDB: learned entries are reachable or stale; local (permanent) and static (noarp)
        // ones prove nothing about a host.
        valid: state & NUD_SEEN != 0,
        age,
        vlan,
    })
}

/// A subscription to link, IPv4 address and neighbour (incl. bridge FDB) changes. `watched`: the MACs
/// whose FDB entries are news (the daemon keeps it current).
pub struct NetEvents {
    fd: OwnedFd,
    watched: std::sync::Arc<std::sync::Mutex<Vec<Mac>>>,
    /// Set when a watched host's FDB entry changed (the daemon clears it when it reads the FDB).
    fdb_changed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// One receive buffer for every event (a flood brings hundreds of thousands).
    buf: Vec<u8>,
}

impl NetEvents {
    pub fn subscribe(
        watched: std::sync::Arc<std::sync::Mutex<Vec<Mac>>>,
        fdb_changed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> io::Result<Self> {
        let fd = netlink::open(
            SockProtocol::NetlinkRoute,
            RTMGRP_LINK
                | RTMGRP_NEIGH
                | RTMGRP_IPV4_IFADDR
                | RTMGRP_IPV6_IFADDR
                | RTMGRP_IPV4_ROUTE,
        )?;
        Ok(NetEvents {
            fd,
            watched,
            fdb_changed,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Blocks until something that matters changed (or events were lost, which means the same).
    pub fn wait(&mut self) -> io::Result<()> {
        let (watched, fdb) = (&self.watched, &self.fdb_changed);
        let is_news = |k, p: &[u8]| noted(news(k, p, &watched.lock().unwrap()), fdb);
        while !netlink::wait_news(&self.fd, &mut self.buf, is_news)? {}
        Ok(())
    }

    /// Waits at most `timeout` for further news (to coalesce a burst).
    pub fn wait_for(&mut self, timeout: Duration) -> bool {
        let (watched, fdb) = (&self.watched, &self.fdb_changed);
        let is_news = |k, p: &[u8]| noted(news(k, p, &watched.lock().unwrap()), fdb);
        netlink::wait_for_news(&self.fd, &mut self.buf, timeout, is_news)
    }
}

/// Whether `news` is news; a watched host's FDB change is noted in `fdb_changed`.
fn noted(news: News, fdb_changed: &std::sync::atomic::AtomicBool) -> bool {
    if news == News::WatchedFdb {
        fdb_changed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    news != News::No
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AF_BRIDGE link message as a VLAN-filtering bridge sends it for `lan2`: VLAN 10 tagged,
    /// VLAN 60 its PVID, untagged (this machine's kernel has no bridge VLAN filtering to ask).
    #[test]
    fn a_ports_vlans_and_pvid_are_read() {
        let mut msg = vec![AF_BRIDGE, 0, 0, 0];
        msg.extend(7u32.to_ne_bytes()); // ifindex
        msg.extend([0u8; 8]); // flags, change
        let info = |flags: u16, vid: u16| {
            let mut v = flags.to_ne_bytes().to_vec();
            v.extend(vid.to_ne_bytes());
            netlink::attr(IFLA_BRIDGE_VLAN_INFO, &v)
        };
        let spec = [info(0, 10), info(BRIDGE_VLAN_INFO_PVID | 4, 60)].concat();
        msg.extend(netlink::attr(IFLA_AF_SPEC, &spec));
        let mut port = PortInfo::default();
        port_vlans(&msg, &mut port);
        assert_eq!(port.vlans, [10, 60]);
        assert_eq!(port.pvid, Some(60));
        // Short or foreign attributes are skipped, not trusted.
        let mut port = PortInfo::default();
        port_vlans(&msg[..20], &mut port);
        assert_eq!(port, PortInfo::default());
    }

    #[test]
    fn one_neighbour_entry_is_asked_of_the_kernel() {
        // The request is one the kernel understands: an address without an entry is no error.
        let lo = dump(&Watched::default(), true)
            .unwrap()
            .links
            .into_iter()
            .find(|l| l.name == "lo")
            .unwrap();
        assert_eq!(
            neighbour(&[lo.index], Ipv4Addr::new(127, 0, 0, 9)).unwrap(),
            None
        );
        assert_eq!(neighbour(&[], Ipv4Addr::new(127, 0, 0, 9)).unwrap(), None);
    }

    /// An ndmsg of `family` for `mac`, as the kernel sends it in an event.
    fn neigh_event(family: u8, mac: [u8; 6]) -> Vec<u8> {
        let mut ndmsg = [0u8; NDMSG];
        ndmsg[0] = family;
        let mut p = ndmsg.to_vec();
        p.extend(netlink::attr(NDA_LLADDR, &mac));
        p
    }

    #[test]
    fn only_fdb_events_of_watched_macs_are_news() {
        let camera = [0x0a, 0, 0, 0, 0, 0x20];
        let flood = [0x02, 1, 2, 3, 4, 5];
        let watched = [Mac(camera)];
        let fdb = |mac| neigh_event(AF_BRIDGE, mac);
        let watched_fdb = News::WatchedFdb;
        assert_eq!(news(RTM_NEWNEIGH, &fdb(camera), &watched), watched_fdb);
        assert_eq!(news(RTM_DELNEIGH, &fdb(camera), &watched), watched_fdb);
        assert_eq!(news(RTM_NEWNEIGH, &fdb(flood), &watched), News::No);
        assert_eq!(news(RTM_DELNEIGH, &fdb(flood), &watched), News::No);
        // The ARP table, links, addresses and routes are always news; an FDB entry that cannot be
        // read may be a watched one.
        let arp = neigh_event(AF_INET, flood);
        assert_eq!(news(RTM_NEWNEIGH, &arp, &watched), News::Yes);
        assert_eq!(news(RTM_NEWLINK, &fdb(flood), &watched), News::Yes);
        assert_eq!(news(RTM_NEWNEIGH, &[AF_BRIDGE], &watched), watched_fdb);
        // A watched host's change is noted for the daemon; the rest only wakes it.
        let noted_flag = std::sync::atomic::AtomicBool::new(false);
        assert!(!noted(News::No, &noted_flag) && noted(News::Yes, &noted_flag));
        assert!(!noted_flag.load(std::sync::atomic::Ordering::SeqCst));
        assert!(noted(News::WatchedFdb, &noted_flag));
        assert!(noted_flag.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// A real dump of this namespace: loopback is there and up, with 127.0.0.1/8.
    #[test]
    fn dump_sees_loopback() {
        let state = dump(&Watched::default(), true).expect("rtnetlink dump");
        let lo = state.links.iter().find(|l| l.name == "lo").expect("lo");
        assert!(state.taken_at.is_some());
        assert!(lo.up, "{lo:?}");
        assert!(state
            .addrs
            .iter()
            .any(|a| a.index == lo.index && a.ip.is_loopback() && a.prefix == 8));
        // Both families: every IPv6 address the kernel lists in /proc is in the dump too.
        let inet6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
        for line in inet6.lines() {
            let hex = line.split_whitespace().next().unwrap();
            let ip = Ipv6Addr::from(u128::from_str_radix(hex, 16).unwrap());
            assert!(
                state.addrs.iter().any(|a| a.ip == IpAddr::V6(ip)),
                "{ip} missing from {:?}",
                state.addrs
            );
        }
    }

    #[test]
    fn default_routes_of_the_main_table_parse() {
        let attr = |t: u16, v: &[u8]| {
            let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
            a.extend_from_slice(&t.to_ne_bytes());
            a.extend_from_slice(v);
            a
        };
        let route = |dst_len: u8, table: u32| {
            let mut p = vec![AF_INET, dst_len, 0, 0, 254, 4, 0, RTN_UNICAST, 0, 0, 0, 0];
            p.extend(attr(RTA_TABLE, &table.to_ne_bytes()));
            p.extend(attr(RTA_PRIORITY, &10u32.to_ne_bytes()));
            p.extend(attr(RTA_GATEWAY, &[192, 168, 0, 1]));
            p.extend(attr(RTA_OIF, &7u32.to_ne_bytes()));
            p
        };
        assert_eq!(
            default_route(&route(0, RT_TABLE_MAIN)),
            Some(DefaultRoute {
                index: 7,
                gateway: Ipv4Addr::new(192, 168, 0, 1),
                metric: 10
            })
        );
        assert_eq!(
            default_route(&route(24, RT_TABLE_MAIN)),
            None,
            "not a default route"
        );
        assert_eq!(
            default_route(&route(0, 100)),
            None,
            "another table (pbr, mwan3)"
        );
        assert_eq!(
            default_route(&route(0, RT_TABLE_MAIN)[..RTMSG]),
            None,
            "no gateway"
        );
        assert_eq!(default_route(&[AF_INET, 0]), None, "cut short");
    }

    #[test]
    fn neighbour_messages_parse() {
        let mut p = vec![AF_INET, 0, 0, 0];
        p.extend_from_slice(&5u32.to_ne_bytes());
        p.extend_from_slice(&0x04u16.to_ne_bytes()); // stale
        p.extend_from_slice(&[0, 1]);
        let attr = |t: u16, v: &[u8]| {
            let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
            a.extend_from_slice(&t.to_ne_bytes());
            a.extend_from_slice(v);
            a.resize(netlink::align4(a.len()), 0);
            a
        };
        p.extend(attr(NDA_DST, &[192, 168, 1, 20]));
        p.extend(attr(NDA_LLADDR, &[0x0a, 0, 0, 0, 0, 0x20]));
        let ci: Vec<u8> = [250u32, 1, 2, 1]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        p.extend(attr(NDA_CACHEINFO, &ci));
        let s = sighting(&p, AF_INET).unwrap();
        assert_eq!(s.ip, Some(Ipv4Addr::new(192, 168, 1, 20)));
        assert_eq!(s.mac.to_string(), "0a:00:00:00:00:20");
        assert!(s.valid);
        assert_eq!(s.age, Duration::from_millis(2500));
        assert_eq!(s.index, 5);
        // Truncated or without a MAC: nothing.
        assert!(sighting(&p[..6], AF_INET).is_none());
        assert!(sighting(&p[..NDMSG], AF_INET).is_none());
    }
}
