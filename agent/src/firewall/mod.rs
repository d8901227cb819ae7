//! The firewall engine: a pure renderer (desired state -> one nftables batch for `table inet wilife`),
//! a readable-text printer of that batch, and the one place that talks to `nft` (apply, read back, verify).

pub mod apply;
pub mod conntrack;
pub mod monitor;
pub mod render;
pub mod text;

use crate::config::{Config, DirectAccess, PortRange};
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
