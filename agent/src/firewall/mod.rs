//! The firewall engine: a pure renderer (desired state -> one nftables batch for our tables; UPnP
//! mappings as set elements), a readable-text printer of that batch, the applier (`nft` for full
//! applies, netlink for read-backs and mapping changes), and the kernel's change events.

pub mod apply;
pub mod conntrack;
pub mod elements;
pub mod monitor;
pub mod readback;
pub mod render;
pub mod text;

use crate::config::{Camera, Config, DirectAccess, Mac, PortRange};
use std::net::Ipv4Addr;

/// Where a forward comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `direct_access 'static'` in the config.
    Static,
    /// A UPnP IGD mapping.
    Upnp,
}

/// One inbound forward: WAN TCP on `external` -> `target`, same port unless `target_port` is set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Forward {
    pub external: PortRange,
    pub target: Ipv4Addr,
    /// Only for single-port forwards whose internal port differs.
    pub target_port: Option<u16>,
    pub origin: Origin,
}

impl Forward {
    /// Stable identifier used for counter names: `tcp_20570_20575`, `tcp_8443`.
    pub fn id(&self) -> String {
        let r = self.external;
        if r.first == r.last {
            format!("tcp_{}", r.first)
        } else {
            format!("tcp_{}_{}", r.first, r.last)
        }
    }
    /// Named counter of new connections (counted in the NAT chain: first packets only).
    pub fn conns_counter(&self) -> String {
        format!("fwd_{}_conns", self.id())
    }
    /// Named counter of the forwarded traffic, both directions.
    pub fn traffic_counter(&self) -> String {
        format!("fwd_{}", self.id())
    }
}

/// What the kernel tells us about the router's own network, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetFacts {
    /// IPv4 addresses on the WAN device (reflection matches them).
    pub wan_ipv4: Vec<Ipv4Addr>,
    /// IPv4 networks on the LAN devices (reflection masquerades flows from them).
    pub lan_ipv4_nets: Vec<(Ipv4Addr, u8)>,
    /// IPv4 addresses of the router on its LAN devices.
    pub lan_ipv4: Vec<Ipv4Addr>,
    /// Addresses the neighbour table and the DHCP leases give for the configured cameras' and Command
    /// Centers' MACs (sorted): a camera that changes address stays covered.
    pub learned: Vec<(Mac, Ipv4Addr)>,
}

impl NetFacts {
    fn learned_for(&self, mac: Mac) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.learned
            .iter()
            .filter(move |(m, _)| *m == mac)
            .map(|(_, ip)| *ip)
    }
}

/// The Command Centers' addresses: the configured one, else what the network says its MAC has.
pub fn command_center_ips(config: &Config, facts: &NetFacts) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = Vec::new();
    for cc in &config.command_centers {
        match (cc.ip, cc.mac) {
            (Some(ip), _) => ips.push(ip),
            (None, Some(mac)) => ips.extend(facts.learned_for(mac)),
            (None, None) => {}
        }
    }
    ips.sort();
    ips.dedup();
    ips
}

/// A camera's addresses: the fixed one from the config and every one learned for its MAC.
pub fn camera_ips(camera: &Camera, facts: &NetFacts) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = camera
        .ip
        .into_iter()
        .chain(facts.learned_for(camera.mac))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// A camera's name in nft objects: its MAC without colons (`cam_001122334466_tx`).
pub fn camera_id(mac: &Mac) -> String {
    mac.to_string().replace(':', "")
}

/// The forwards the configuration itself asks for (mode `static`): every direct-mode port range to the
/// chosen Command Center, same ports.
pub fn static_forwards(config: &Config) -> Vec<Forward> {
    if !config.enabled || config.direct_access != DirectAccess::Static {
        return Vec::new();
    }
    let Some((_, target)) = config.static_target() else {
        return Vec::new();
    };
    config
        .direct
        .port_ranges()
        .into_iter()
        .map(|external| Forward {
            external,
            target,
            target_port: None,
            origin: Origin::Static,
        })
        .collect()
}
