//! The remedy for cameras whose traffic a hardware switch carries past the camera rules: their ports
//! move into a network of their own, so what passes between a camera and the Command Center is routed
//! through the CPU, where the routed camera rules apply. Pure: the switching report and the UCI files
//! in; the UCI changes (or why there are none) out. LuCI stages them and applies them with OpenWrt's
//! rollback; `wilife-agent remedy` prints them as a `uci batch` script.
//!
//! The layout is the one OpenWrt's guides give a guest network:
//! - `network`: a bridge `br-wilifecam` of the camera ports, taken out of their bridge's `ports`, and
//!   an interface `wilifecam` on it at the first free 192.168.N.1/24 from N = 60. Where the bridge
//!   already filters VLANs (`config bridge-vlan`), the ports become untagged members of a new VLAN of
//!   that bridge instead, and the interface sits on `BRIDGE.VID`.
//! - `dhcp`: an address pool on it, so the cameras (which ask by DHCP) get addresses there.
//! - `firewall`: a zone `wilifecam` rejecting input and forwarding, with DHCP, SSDP to the agent's
//!   relay (UDP 1900-1901) and DNS (when the camera rules allow it) accepted. Between the cameras and the Command Center passes what the agent's
//!   routed camera rules grant; its SSDP relay carries discovery across.
//! - `wilife`: `camera_network` names the new network, for the relay.
//!
//! `lan` keeps its bridge and address: a port moves only because a camera is behind it.

use super::switching::{CameraSwitching, Verdict};
use crate::config::uci::Section;
use crate::config::Config;
use serde::Serialize;
use std::net::Ipv4Addr;

/// The network the remedy creates (interface, firewall zone, DHCP pool).
pub const NETWORK: &str = "wilifecam";
/// Its bridge, where the ports are moved out of a bridge without VLAN filtering.
const BRIDGE: &str = "br-wilifecam";

/// A UCI section the plan changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum At {
    /// A named section (the remedy names those it creates).
    Named { section: String },
    /// An anonymous section, the `index`-th of its type, whose `option` is `value`: the `uci` command
    /// takes `@type[index]`, LuCI finds it by the option (its section ids are its own).
    Found {
        #[serde(rename = "type")]
        kind: String,
        index: usize,
        option: &'static str,
        value: String,
    },
}

/// One change to one UCI file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Creates the named section `section` of type `type`.
    Add {
        config: &'static str,
        section: String,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    /// Sets one option.
    Set {
        config: &'static str,
        at: At,
        option: &'static str,
        value: String,
    },
    /// Sets a list option whole.
    SetList {
        config: &'static str,
        at: At,
        option: &'static str,
        values: Vec<String>,
        /// The option is set now (`uci batch` must delete it first, and may delete only then).
        #[serde(skip)]
        replaces: bool,
    },
}

/// What the remedy would change, and what a person should know first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The ports that move to the camera network.
    pub ports: Vec<String>,
    /// The camera network: its interface name, device and router address (CIDR).
    pub network: String,
    pub device: String,
    pub address: String,
    /// Sentences: who moves along, which camera needs a hand.
    pub notes: Vec<String>,
    pub changes: Vec<Op>,
    /// Bridge port isolation on the camera ports, where the switch carries it into the hardware: the
    /// lighter alternative, and what it does not do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
}

impl Plan {
    /// `ports lan2 -> network wilifecam on br-wilifecam at 192.168.61.1/24`
    pub fn headline(&self) -> String {
        let ports = self.ports.join(" ");
        let (n, d, a) = (&self.network, &self.device, &self.address);
        format!("ports {ports} -> network {n} on {d} at {a}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Isolation {
    pub message: String,
    pub changes: Vec<Op>,
}

/// The UCI files the remedy reads and changes.
pub struct Files<'a> {
    pub wilife: &'a [Section],
    pub network: &'a [Section],
    pub firewall: &'a [Section],
    pub dhcp: &'a [Section],
}

/// The plan for the cameras the report finds bypassed, or one sentence on why there is none.
pub fn plan(config: &Config, report: &[CameraSwitching], files: &Files) -> Result<Plan, String> {
    let mut notes = Vec::new();
    let mut ports: Vec<&super::switching::PortReport> = Vec::new();
    for (camera, cs) in config.cameras.iter().zip(report) {
        let bypassed = cs
            .paths
            .iter()
            .any(|p| p.verdict == Verdict::BypassedBySwitch);
        let Some(port) = cs
            .port
            .as_ref()
            .filter(|p| bypassed && p.switch_id.is_some())
        else {
            continue;
        };
        let shares_cc = (cs.paths.iter())
            .any(|p| p.peer == "command_center" && p.verdict == Verdict::SameSegment);
        if shares_cc {
            notes.push(format!(
                "Camera {} shares {} with the Command Center: no router can separate them — \
                 plug one of them into another port.",
                camera.name, port.name
            ));
            continue;
        }
        if !safe_word(&port.name) || port.bridge.as_deref().is_none_or(|b| !safe_word(b)) {
            return Err(format!(
                "The port name {:?} cannot be written to UCI.",
                port.name
            ));
        }
        let others =
            (cs.paths.iter()).any(|p| p.peer == "rest_of_lan" && p.verdict == Verdict::SameSegment);
        if others {
            notes.push(format!(
                "Other devices behind {} move with camera {} into the camera network.",
                port.name, camera.name
            ));
        }
        if let Some(ip) = camera.ip {
            notes.push(format!(
                "Camera {} has the fixed address {ip} in these settings: in the camera network \
                 it gets a new address by DHCP — remove the fixed address here afterwards.",
                camera.name
            ));
        }
        if !ports.iter().any(|p| p.name == port.name) {
            ports.push(port);
        }
    }
    let Some(first) = ports.first() else {
        return Err(notes.pop().unwrap_or_else(|| {
            "No camera's traffic bypasses the camera rules: nothing needs to move.".to_string()
        }));
    };
    let bridge = first.bridge.clone().unwrap_or_default();
    if ports
        .iter()
        .any(|p| p.bridge.as_deref() != Some(bridge.as_str()))
    {
        return Err(
            "The cameras' ports are in different bridges: move them in LuCI's \
                    Network → Interfaces → Devices."
                .to_string(),
        );
    }
    let names: Vec<String> = ports.iter().map(|p| p.name.clone()).collect();
    let isolation = isolation(&ports, files.network);
    let mut p = Planner {
        files,
        changes: Vec::new(),
    };
    let (device, address) = p.network(&bridge, &names)?;
    p.dhcp();
    p.firewall(config.camera_rules.dns);
    let main = files
        .wilife
        .iter()
        .find(|s| s.name.as_deref() == Some("main"));
    let mut networks = main.map(|m| list(m, "camera_network")).unwrap_or_default();
    if !networks.iter().any(|n| n == NETWORK) {
        networks.push(NETWORK.into());
        p.set_list("wilife", named("main"), "camera_network", networks);
    }
    Ok(Plan {
        ports: names,
        network: NETWORK.into(),
        device,
        address,
        notes,
        changes: p.changes,
        isolation,
    })
}

struct Planner<'a> {
    files: &'a Files<'a>,
    changes: Vec<Op>,
}

impl Planner<'_> {
    fn add(&mut self, config: &'static str, section: &str, kind: &'static str) {
        self.changes.push(Op::Add {
            config,
            section: section.into(),
            kind,
        });
    }

    fn set(&mut self, config: &'static str, section: &str, option: &'static str, value: &str) {
        self.changes.push(Op::Set {
            config,
            at: At::Named {
                section: section.into(),
            },
            option,
            value: value.into(),
        });
    }

    fn set_list(
        &mut self,
        config: &'static str,
        at: At,
        option: &'static str,
        values: Vec<String>,
    ) {
        let file = match config {
            "wilife" => self.files.wilife,
            "network" => self.files.network,
            "firewall" => self.files.firewall,
            _ => self.files.dhcp,
        };
        let section = match &at {
            At::Named { section } => file.iter().find(|s| s.name.as_ref() == Some(section)),
            At::Found { kind, index, .. } => of_kind(file, kind).nth(*index).map(|(_, s)| s),
        };
        let replaces = section.is_some_and(|s| s.entries.iter().any(|e| e.key == option));
        self.changes.push(Op::SetList {
            config,
            at,
            option,
            values,
            replaces,
        });
    }

    /// Moves the ports out of `bridge` into the camera network (created, or grown when it exists);
    /// gives its device and the router's address on it.
    fn network(&mut self, bridge: &str, ports: &[String]) -> Result<(String, String), String> {
        let net = self.files.network;
        let vlans: Vec<(usize, &Section)> = of_kind(net, "bridge-vlan")
            .filter(|(_, s)| option(s, "device") == Some(bridge))
            .collect();
        let existing = net.iter().find(|s| s.name.as_deref() == Some(NETWORK));
        let existing_device = existing.and_then(|s| option(s, "device"));
        let address = (existing.map(|s| used_subnets(std::slice::from_ref(s))))
            .and_then(|nets| nets.first().map(|(ip, len)| format!("{ip}/{len}")))
            .unwrap_or_default();
        if vlans.is_empty() {
            let (index, br) = of_kind(net, "device")
                .find(|(_, s)| option(s, "name") == Some(bridge))
                .ok_or_else(|| {
                    format!(
                        "/etc/config/network has no `config device` for {bridge} (an older \
                         layout): move the ports in LuCI's Network → Interfaces → Devices."
                    )
                })?;
            let kept = (list(br, "ports").into_iter())
                .filter(|p| !ports.contains(p))
                .collect();
            self.set_list("network", found(br, index, "name", bridge), "ports", kept);
            if let Some(device) = existing_device {
                if device != BRIDGE {
                    return Err(format!(
                        "The network {NETWORK} exists on {device}, not on {BRIDGE}: \
                         move the ports in LuCI."
                    ));
                }
                let (index, own) = of_kind(net, "device")
                    .find(|(_, s)| option(s, "name") == Some(BRIDGE))
                    .ok_or_else(|| format!("/etc/config/network has no device {BRIDGE}."))?;
                let mut all = list(own, "ports");
                all.extend(
                    ports
                        .iter()
                        .filter(|p| !all.contains(p))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                self.set_list("network", found(own, index, "name", BRIDGE), "ports", all);
                return Ok((BRIDGE.into(), address));
            }
            let section = format!("{NETWORK}_dev");
            self.add("network", &section, "device");
            self.set("network", &section, "name", BRIDGE);
            self.set("network", &section, "type", "bridge");
            self.set_list("network", named(&section), "ports", ports.to_vec());
            return self.interface(BRIDGE);
        }
        // VLAN filtering: the ports leave the VLANs they are untagged in (their tagged memberships,
        // a trunk's, stay) and join a new one untagged, as its PVID.
        for (index, v) in &vlans {
            let entries = list(v, "ports");
            let kept: Vec<String> = (entries.iter())
                .filter(|e| e.contains(":t") || !ports.contains(&port_of(e).to_string()))
                .cloned()
                .collect();
            if kept != entries {
                let vid = option(v, "vlan").unwrap_or_default();
                self.set_list("network", found(v, *index, "vlan", vid), "ports", kept);
            }
        }
        let member = |p: &String| format!("{p}:u*");
        if let Some(device) = existing_device {
            let vid = device
                .strip_prefix(&format!("{bridge}."))
                .unwrap_or_default();
            let (index, v) = (vlans.iter())
                .find(|(_, v)| option(v, "vlan") == Some(vid))
                .ok_or_else(|| {
                    format!("The network {NETWORK} exists on {device}, not on a VLAN of {bridge}.")
                })?;
            let mut all = list(v, "ports");
            let new: Vec<String> = (ports.iter())
                .filter(|p| !all.iter().any(|e| port_of(e) == p.as_str()))
                .map(member)
                .collect();
            all.extend(new);
            self.set_list("network", found(v, *index, "vlan", vid), "ports", all);
            return Ok((device.to_string(), address));
        }
        let used: Vec<u16> = (vlans.iter())
            .filter_map(|(_, v)| option(v, "vlan")?.parse().ok())
            .collect();
        let vid = (60..4095u16)
            .find(|v| !used.contains(v))
            .ok_or("No VLAN id is free.")?;
        let section = format!("{NETWORK}_vlan");
        self.add("network", &section, "bridge-vlan");
        self.set("network", &section, "device", bridge);
        self.set("network", &section, "vlan", &vid.to_string());
        self.set_list(
            "network",
            named(&section),
            "ports",
            ports.iter().map(member).collect(),
        );
        self.interface(&format!("{bridge}.{vid}"))
    }

    /// The interface on `device`, at the first 192.168.N.1/24 (N from 60) no interface uses.
    fn interface(&mut self, device: &str) -> Result<(String, String), String> {
        let used = used_subnets(self.files.network);
        let n = (60..=254u8)
            .find(|n| {
                let ours = Ipv4Addr::new(192, 168, *n, 0);
                !used
                    .iter()
                    .any(|&(addr, len)| overlaps((ours, 24), (addr, len)))
            })
            .ok_or("No 192.168.N.0/24 is free for the camera network.")?;
        let ip = Ipv4Addr::new(192, 168, n, 1).to_string();
        self.add("network", NETWORK, "interface");
        self.set("network", NETWORK, "proto", "static");
        self.set("network", NETWORK, "device", device);
        self.set("network", NETWORK, "ipaddr", &ip);
        self.set("network", NETWORK, "netmask", "255.255.255.0");
        Ok((device.to_string(), format!("{ip}/24")))
    }

    fn dhcp(&mut self) {
        if self
            .files
            .dhcp
            .iter()
            .any(|s| s.name.as_deref() == Some(NETWORK))
        {
            return;
        }
        self.add("dhcp", NETWORK, "dhcp");
        self.set("dhcp", NETWORK, "interface", NETWORK);
        self.set("dhcp", NETWORK, "start", "100");
        self.set("dhcp", NETWORK, "limit", "150");
        self.set("dhcp", NETWORK, "leasetime", "12h");
    }

    fn firewall(&mut self, dns: bool) {
        let has_zone =
            of_kind(self.files.firewall, "zone").any(|(_, s)| option(s, "name") == Some(NETWORK));
        if has_zone {
            return;
        }
        self.add("firewall", NETWORK, "zone");
        self.set("firewall", NETWORK, "name", NETWORK);
        self.set_list("firewall", named(NETWORK), "network", vec![NETWORK.into()]);
        self.set("firewall", NETWORK, "input", "REJECT");
        self.set("firewall", NETWORK, "output", "ACCEPT");
        self.set("firewall", NETWORK, "forward", "REJECT");
        let mut rule = |section: &str, name: &str, proto: &str, port: &str| {
            self.add("firewall", section, "rule");
            self.set("firewall", section, "name", name);
            self.set("firewall", section, "src", NETWORK);
            self.set("firewall", section, "proto", proto);
            self.set("firewall", section, "dest_port", port);
            self.set("firewall", section, "family", "ipv4");
            self.set("firewall", section, "target", "ACCEPT");
        };
        rule("wilifecam_dhcp", "Allow-WiLife-Camera-DHCP", "udp", "67");
        // The group, and the relay's own port for answers to the searches it carried.
        rule(
            "wilifecam_ssdp",
            "Allow-WiLife-Camera-SSDP",
            "udp",
            "1900-1901",
        );
        if dns {
            rule("wilifecam_dns", "Allow-WiLife-Camera-DNS", "tcp udp", "53");
        }
    }
}

/// Port isolation, offered where the switch driver carries it into the hardware.
fn isolation(ports: &[&super::switching::PortReport], network: &[Section]) -> Option<Isolation> {
    let first = ports.first()?;
    if first.isolation_offload != Some(true) {
        return None;
    }
    // Ports isolated already need nothing.
    let names: Vec<&str> = (ports.iter())
        .filter(|p| !p.isolated)
        .map(|p| p.name.as_str())
        .collect();
    if names.is_empty() {
        return None;
    }
    let driver = first.tagging.as_deref().unwrap_or("this");
    let message = format!(
        "The {driver} switch isolates ports in hardware: isolating {} keeps the cameras there \
         from each other and from every other isolated port, without moving them. It is no \
         replacement for the camera network: an isolated port still reaches every port that is \
         not isolated (the Command Center's among them) directly, where the camera rules cannot \
         see it.",
        names.join(", ")
    );
    let mut p = Planner {
        files: &Files {
            wilife: &[],
            network,
            firewall: &[],
            dhcp: &[],
        },
        changes: Vec::new(),
    };
    for name in names {
        // netifd's per-device option; a port without a `config device` gets one.
        match of_kind(network, "device").find(|(_, s)| option(s, "name") == Some(name)) {
            Some((index, s)) => p.changes.push(Op::Set {
                config: "network",
                at: found(s, index, "name", name),
                option: "isolate",
                value: "1".into(),
            }),
            None => {
                let section = format!("{NETWORK}_{}", name.replace(['-', '.', '@'], "_"));
                p.add("network", &section, "device");
                p.set("network", &section, "name", name);
                p.set("network", &section, "isolate", "1");
            }
        }
    }
    Some(Isolation {
        message,
        changes: p.changes,
    })
}

/// The plan as a script for `uci batch`, then what to do with it.
pub fn uci_batch(changes: &[Op]) -> String {
    let mut out = String::new();
    let path = |config: &str, at: &At| match at {
        At::Named { section } => format!("{config}.{section}"),
        At::Found { kind, index, .. } => format!("{config}.@{kind}[{index}]"),
    };
    for op in changes {
        match op {
            Op::Add {
                config,
                section,
                kind,
            } => out.push_str(&format!("set {config}.{section}={kind}\n")),
            Op::Set {
                config,
                at,
                option,
                value,
            } => out.push_str(&format!(
                "set {}.{option}={}\n",
                path(config, at),
                quote(value)
            )),
            Op::SetList {
                config,
                at,
                option,
                values,
                replaces,
            } => {
                let p = path(config, at);
                if *replaces {
                    out.push_str(&format!("delete {p}.{option}\n"));
                }
                for v in values {
                    out.push_str(&format!("add_list {p}.{option}={}\n", quote(v)));
                }
            }
        }
    }
    out
}

/// Single-quoted for uci; a quote inside ends the word, escapes one and starts another.
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// A name the kernel and UCI both take as one word.
fn safe_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

fn named(section: &str) -> At {
    At::Named {
        section: section.into(),
    }
}

/// Where a section of the files is: by its name if it has one, else by type and position.
fn found(s: &Section, index: usize, option: &'static str, value: &str) -> At {
    if let Some(name) = &s.name {
        return named(name);
    }
    At::Found {
        kind: s.kind.clone(),
        index,
        option,
        value: value.into(),
    }
}

/// The sections of a type, each with its index among them (`@type[index]`).
fn of_kind<'a>(
    sections: &'a [Section],
    kind: &'a str,
) -> impl Iterator<Item = (usize, &'a Section)> {
    sections.iter().filter(move |s| s.kind == kind).enumerate()
}

/// An option's last value (uci keeps the last one written).
fn option<'a>(s: &'a Section, key: &str) -> Option<&'a str> {
    (s.entries.iter().rev())
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// A list's values; an `option` holding a space-separated list counts too, as netifd reads it.
fn list(s: &Section, key: &str) -> Vec<String> {
    let entries = s.entries.iter().filter(|e| e.key == key);
    entries
        .flat_map(|e| {
            e.value
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `lan2:u*` → `lan2`.
fn port_of(entry: &str) -> &str {
    entry.split(':').next().unwrap_or(entry)
}

/// The subnets the interfaces use: `ipaddr` as `a.b.c.d/len`, or with `netmask` (default /24).
fn used_subnets(network: &[Section]) -> Vec<(Ipv4Addr, u8)> {
    let mut out = Vec::new();
    for (_, s) in of_kind(network, "interface") {
        let mask = option(s, "netmask").and_then(|m| m.parse::<Ipv4Addr>().ok());
        let len_of_mask = mask.map_or(24, |m| u32::from(m).leading_ones() as u8);
        for value in list(s, "ipaddr") {
            let (addr, len) = match value.split_once('/') {
                Some((a, l)) => (a.parse().ok(), l.parse().ok()),
                None => (value.parse().ok(), Some(len_of_mask)),
            };
            if let (Some(addr), Some(len)) = (addr, len) {
                out.push((addr, len.min(32)));
            }
        }
    }
    out
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let len = a.1.min(b.1);
    super::subnet::network(a.0, len) == super::subnet::network(b.0, len)
}

pub mod files;
#[cfg(test)]
mod tests;
