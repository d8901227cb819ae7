//! Where the router's CPU sees a camera's traffic, and where a hardware switch or a segment of its own
//! carries it past the camera rules. Pure: one reading of links and bridge FDB in, a verdict per
//! camera and peer out.
//!
//! The facts it stands on (kernel DSA and bridge code): ports of one DSA switch tree carry the same
//! `IFLA_PHYS_SWITCH_ID` and forward frames between each other in silicon once they are in one
//! bridge (and one VLAN); Wi-Fi, the conduit and ports of other switches have no switch id, so their
//! frames to any other port pass the CPU; frames between two hosts behind the same port (an unmanaged
//! switch, a powerline segment, one Wi-Fi access point) never leave that port. The bridge FDB says
//! which port a MAC sits behind (`ndm_ifindex`), and in which VLAN.

use super::{Link, NetState, Sighting};
use crate::config::{Camera, CommandCenter, Config, Mac};
use serde::Serialize;
use std::net::Ipv4Addr;

/// Whether the camera rules see the traffic between a camera and one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It passes the CPU (routed, or between ports the CPU bridges): the rules apply.
    Enforced,
    /// Both ports are on one hardware switch, in one bridge and VLAN: the switch forwards it.
    BypassedBySwitch,
    /// Both sit behind the same port: nothing in the router sees it.
    SameSegment,
    /// A side has not been seen on a port yet.
    Unknown,
}

/// The camera and one peer: a Command Center, or the rest of the LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathReport {
    /// `command_center` or `rest_of_lan`.
    pub peer: &'static str,
    /// The Command Center's name (for `command_center`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub verdict: Verdict,
    /// The peer's ports that bypass the rules (`bypassed_by_switch`), or its own port.
    pub peer_ports: Vec<String>,
    /// One sentence for a person.
    pub message: String,
}

/// A camera's port and what the switch behind it can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortReport {
    pub name: String,
    /// The bridge it is a port of.
    pub bridge: Option<String>,
    /// The hardware switch (DSA tree) it belongs to, hex.
    pub switch_id: Option<String>,
    /// The DSA conduit (the CPU's Ethernet device towards the switch).
    pub conduit: Option<String>,
    /// The conduit's DSA tagging protocol (mtk, qca, edsa…): names the switch driver.
    pub tagging: Option<String>,
    /// The VLAN the port's untagged frames belong to (its PVID), where the bridge reports one.
    pub vlan: Option<u16>,
    /// Bridge port isolation is on for this port.
    pub isolated: bool,
    /// Does the switch driver carry port isolation into the hardware? null: not known for this
    /// driver (its kernel version decides).
    pub isolation_offload: Option<bool>,
    pub wireless: bool,
}

/// Everything known of one camera's place in the LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraSwitching {
    pub mac: String,
    pub port: Option<PortReport>,
    pub paths: Vec<PathReport>,
}

impl CameraSwitching {
    /// The worst path: what a one-line status should say.
    pub fn worst(&self) -> Option<&PathReport> {
        let rank = |v: Verdict| match v {
            Verdict::BypassedBySwitch => 0,
            Verdict::SameSegment => 1,
            Verdict::Unknown => 2,
            Verdict::Enforced => 3,
        };
        self.paths.iter().min_by_key(|p| rank(p.verdict))
    }
}

/// Does the driver behind `tagging` offload bridge port isolation? mt7530/mt7531 ("mtk") since Linux
/// 6.11, backported to OpenWrt 24.10's 6.6; qca8k ("qca") since 6.11, in OpenWrt's ipq40xx driver
/// only from 25.12; mv88e6xxx ("edsa", "dsa") and lantiq_gswip ("gswip") do not.
fn isolation_offload(tagging: &str) -> Option<bool> {
    match tagging {
        "mtk" => Some(true),
        "edsa" | "dsa" | "gswip" => Some(false),
        _ => None,
    }
}

/// The verdicts for every configured camera.
pub fn report(config: &Config, net: &NetState) -> Vec<CameraSwitching> {
    config
        .cameras
        .iter()
        .map(|cam| camera(config, net, cam))
        .collect()
}

/// The port a host's freshest valid FDB entry names (not a bridge's own entry).
fn port_of(net: &NetState, mac: Mac) -> Option<(&Link, &Sighting)> {
    (net.bridge_fdb.iter())
        .filter(|s| s.valid && s.mac == mac)
        .filter_map(|s| Some((net.links.iter().find(|l| l.index == s.index)?, s)))
        .filter(|(l, _)| l.port.kind.as_deref() != Some("bridge"))
        .min_by_key(|(_, s)| s.age)
}

fn name_of(net: &NetState, index: Option<u32>) -> Option<String> {
    let index = index?;
    net.links
        .iter()
        .find(|l| l.index == index)
        .map(|l| l.name.clone())
}

fn port_report(net: &NetState, link: &Link) -> PortReport {
    let conduit = (link.port.switch_id.is_some())
        .then_some(link.port.parent)
        .flatten()
        .filter(|p| *p != link.index)
        .and_then(|p| net.links.iter().find(|l| l.index == p));
    let tagging = conduit.and_then(|c| c.port.tagging.clone());
    PortReport {
        name: link.name.clone(),
        bridge: name_of(net, link.port.bridge),
        switch_id: link.port.switch_id.clone(),
        conduit: conduit.map(|c| c.name.clone()),
        isolation_offload: tagging.as_deref().and_then(isolation_offload),
        tagging,
        vlan: link.port.pvid,
        isolated: link.port.isolated,
        wireless: link.port.wireless,
    }
}

/// "camera porch (192.168.1.60)"
fn label(net: &NetState, cam: &Camera) -> String {
    let ip: Option<Ipv4Addr> = cam.ip.or_else(|| {
        (net.neighbours.iter())
            .find(|n| n.valid && n.mac == cam.mac)
            .and_then(|n| n.ip)
    });
    match ip {
        Some(ip) => format!("camera {} ({ip})", cam.name),
        None => format!("camera {}", cam.name),
    }
}

fn camera(config: &Config, net: &NetState, cam: &Camera) -> CameraSwitching {
    let who = label(net, cam);
    let found = port_of(net, cam.mac);
    let mut paths: Vec<PathReport> = (config.command_centers.iter())
        .map(|cc| to_command_center(net, &who, found, cc))
        .collect();
    paths.push(to_rest_of_lan(net, &who, found, config));
    CameraSwitching {
        mac: cam.mac.to_string(),
        port: found.map(|(l, _)| port_report(net, l)),
        paths,
    }
}

fn path(
    peer: &'static str,
    name: Option<&str>,
    verdict: Verdict,
    ports: Vec<String>,
    message: String,
) -> PathReport {
    // A sentence starts with a capital, whichever word comes first.
    let mut chars = message.chars();
    let message = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => message,
    };
    PathReport {
        peer,
        name: name.map(str::to_string),
        verdict,
        peer_ports: ports,
        message,
    }
}

/// Same bridge, same VLAN (or no VLAN known on either side).
fn same_lan(a: (&Link, &Sighting), b: (&Link, &Sighting)) -> bool {
    a.0.port.bridge.is_some()
        && a.0.port.bridge == b.0.port.bridge
        && (a.1.vlan == 0 || b.1.vlan == 0 || a.1.vlan == b.1.vlan)
}

fn switched(a: &Link, b: &Link) -> bool {
    a.port.switch_id.is_some() && a.port.switch_id == b.port.switch_id
}

/// Can the camera's port (its untagged VLAN) reach `other` inside the bridge? Yes unless both ports'
/// VLANs are known and `other` is no member of that VLAN.
fn shares_vlan(camera: &Link, other: &Link) -> bool {
    match camera.port.pvid {
        Some(pvid) if !other.port.vlans.is_empty() => other.port.vlans.contains(&pvid),
        _ => true,
    }
}

fn to_command_center(
    net: &NetState,
    who: &str,
    cam: Option<(&Link, &Sighting)>,
    cc: &CommandCenter,
) -> PathReport {
    let peer = |v, ports, msg| path("command_center", Some(&cc.name), v, ports, msg);
    let Some(cam) = cam else {
        return peer(Verdict::Unknown, Vec::new(), format!("{who} has not been seen on a port of a bridge yet: whether the camera rules see its traffic is not known."));
    };
    let cc_port = net.command_center_mac(cc).and_then(|m| port_of(net, m));
    let Some(pc) = cc_port else {
        return peer(Verdict::Unknown, Vec::new(), format!("The Command Center {} has not been seen on a port of a bridge: whether the camera rules see its traffic with {who} is not known.", cc.name));
    };
    let (cp, pp) = (&cam.0.name, &pc.0.name);
    if !same_lan(cam, pc) {
        return peer(Verdict::Enforced, vec![pp.clone()], format!("{who} on {cp} and the Command Center on {pp} are in different networks: the router routes their traffic, and the camera rules apply."));
    }
    if cam.0.index == pc.0.index {
        let what = if cam.0.port.wireless {
            "the same Wi-Fi access point, which forwards between its own clients"
        } else {
            "the same port (a switch or powerline segment of their own)"
        };
        return peer(Verdict::SameSegment, vec![pp.clone()], format!("{who} and the Command Center are both behind {cp}, {what}: their traffic never reaches the router, so the camera rules cannot see it."));
    }
    if switched(cam.0, pc.0) {
        return peer(Verdict::BypassedBySwitch, vec![pp.clone()], format!("{who} on {cp} and the Command Center on {pp} are switched in hardware: the camera rules cannot see this traffic — move the camera to its own network?"));
    }
    peer(Verdict::Enforced, vec![pp.clone()], format!("{who} on {cp} and the Command Center on {pp}: their traffic passes the router's CPU, and the camera rules apply."))
}

fn to_rest_of_lan(
    net: &NetState,
    who: &str,
    cam: Option<(&Link, &Sighting)>,
    config: &Config,
) -> PathReport {
    let peer = |v, ports, msg| path("rest_of_lan", None, v, ports, msg);
    let Some((port, entry)) = cam else {
        return peer(Verdict::Unknown, Vec::new(), format!("{who} has not been seen on a port of a bridge yet: whether camera isolation holds is not known."));
    };
    let cp = &port.name;
    // Hosts other than the camera and the Command Centers behind the camera's own port.
    let ccs: Vec<Mac> = (config.command_centers.iter())
        .filter_map(|cc| net.command_center_mac(cc))
        .collect();
    let others_here = net
        .fdb_other_hosts
        .iter()
        .any(|(i, n)| *i == port.index && *n > 0)
        || (net.bridge_fdb.iter()).any(|s| {
            s.valid && s.index == port.index && s.mac != entry.mac && !ccs.contains(&s.mac)
        });
    if others_here {
        return peer(Verdict::SameSegment, vec![cp.clone()], format!("Other hosts sit behind {cp} with {who}: their traffic with the camera never reaches the router, so camera isolation cannot hold there."));
    }
    // Ports the switch connects to the camera's port without the CPU; ports isolated like the
    // camera's are kept from it by the switch itself.
    let mut bypass: Vec<String> = (net.links.iter())
        .filter(|l| l.index != port.index && l.up && switched(port, l))
        .filter(|l| l.port.bridge == port.port.bridge && port.port.bridge.is_some())
        .filter(|l| shares_vlan(port, l))
        .filter(|l| !(port.port.isolated && l.port.isolated))
        .map(|l| l.name.clone())
        .collect();
    bypass.sort();
    if bypass.is_empty() {
        return peer(Verdict::Enforced, Vec::new(), format!("{who} on {cp}: its traffic with the rest of the LAN passes the router's CPU, and camera isolation applies."));
    }
    let list = bypass.join(", ");
    peer(Verdict::BypassedBySwitch, bypass, format!("{who} on {cp} and hosts on {list} are switched in hardware: camera isolation cannot see this traffic — move the camera to its own network?"))
}

#[cfg(test)]
pub(crate) mod tests;
