//! The validated configuration as plain values: what the rest of the agent reads.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// How the direct-mode ports reach the Command Center.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectAccess {
    /// The Command Center asks for a mapping over UPnP IGD.
    Upnp,
    /// Fixed forwards of every direct-mode port to one Command Center.
    Static,
    /// No inbound forwards (relay mode only).
    Off,
}

/// An inclusive TCP/UDP port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A MAC address, stored lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandCenter {
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<Mac>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Camera {
    pub name: String,
    pub mac: Mac,
    pub ip: Option<Ipv4Addr>,
}

/// Camera LAN rules (enforced in a later stage; validated now so configs stay stable).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CameraRules {
    pub isolation: bool,
    pub video_port: u16,
    pub dns: bool,
}

/// Outbound allowance groups for the Command Center (enforced in a later stage).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outbound {
    pub wilife_online: bool,
    pub relay: bool,
    pub email: bool,
    pub smtp_port: u16,
    pub remote_client: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Direct {
    pub ports: PortRange,
    pub custom_port: Option<u16>,
    /// The Command Center that receives static forwards (mode `static`).
    pub static_host: Option<String>,
    /// NAT reflection: LAN clients may use the WAN address too.
    pub reflection: bool,
}

impl Direct {
    /// Every externally reachable port range: the direct range and the custom port.
    pub fn port_ranges(&self) -> Vec<PortRange> {
        let mut v = vec![self.ports];
        v.extend(self.custom_port.map(PortRange::single));
        v
    }
}

/// The UPnP IGD (mode `upnp`): how far it may go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Upnp {
    /// TCP port of the description/control/event HTTP server on the LAN addresses.
    pub port: u16,
    /// Any LAN host may map ports to itself, not only the configured Command Centers.
    pub any_lan_host: bool,
    /// Mappings one internal client may hold at once.
    pub max_per_client: usize,
    /// Longest lease granted, seconds; 0: v1 "lease 0" mappings last until removed.
    pub max_lease: u32,
    /// AddPortMapping must keep the internal port equal to the external one.
    pub same_port: bool,
    /// Seconds between SSDP ssdp:alive announcements.
    pub notify_interval: u32,
    /// Device UUID override; empty: derived from the first LAN device's MAC address.
    pub uuid: Option<String>,
}

/// Whether the mappings are asked for at the gateway upstream too (`config upstream`, issue 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamMode {
    /// While the WAN address is private or shared (CGNAT): another NAT sits upstream.
    Auto,
    /// Whatever the WAN address (a gateway that NATs to public addresses it hands out).
    Enabled,
    /// Never: not one packet is sent upstream.
    Off,
}

/// A protocol the gateway upstream is asked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// PCP, RFC 6887 (UDP 5351 on the gateway).
    Pcp,
    /// NAT-PMP, RFC 6886 (the same port; what a server that knows no PCP answers).
    Natpmp,
    /// A UPnP IGD found by SSDP on the WAN side.
    Upnp,
}

impl UpstreamProtocol {
    /// The protocol's name in logs and messages.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamProtocol::Pcp => "PCP",
            UpstreamProtocol::Natpmp => "NAT-PMP",
            UpstreamProtocol::Upnp => "UPnP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Upstream {
    pub mode: UpstreamMode,
    /// Tried in this order; the first that maps wins.
    pub protocols: Vec<UpstreamProtocol>,
    /// Seconds asked for each upstream mapping (renewed before it runs out).
    pub lease: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    #[serde(skip)]
    pub path: PathBuf,
    pub enabled: bool,
    pub direct_access: DirectAccess,
    /// The WAN device in force: pinned (`wan_device`, `--wan-device`) or the device netifd gives the
    /// `wan_network`; `None` while nobody knows it (the network is down or unknown, no netifd).
    pub wan_device: Option<String>,
    /// The LAN devices in force: pinned (`lan_device`, `--lan-device`) or resolved from `lan_network`.
    pub lan_devices: Vec<String>,
    /// The camera networks' devices (`camera_device`, or resolved from `camera_network`): cameras of
    /// their own network, reached across the router; the SSDP relay joins them to the Command Centers.
    pub camera_devices: Vec<String>,
    /// The logical networks behind the devices, resolved by the daemon at start and on every SIGHUP.
    pub networks: Networks,
    pub api_port: u16,
    /// Empty: the LAN devices' addresses and loopback.
    pub api_listen: Vec<IpAddr>,
    /// Where the write token is kept (`api_token_file`).
    #[serde(skip)]
    pub api_token_file: PathBuf,
    /// The token read from that file by `load` (never from the UCI text); `None`: API writes are off.
    #[serde(skip)]
    pub api_token: Option<String>,
    pub state_dir: PathBuf,
    pub connmark: u32,
    /// A host not seen for this long (seconds) is absent.
    pub presence_timeout: u32,
    /// dnsmasq's lease file: a second source of cameras' and Command Centers' addresses.
    pub dhcp_leases: PathBuf,
    pub direct: Direct,
    pub command_centers: Vec<CommandCenter>,
    pub cameras: Vec<Camera>,
    pub camera_rules: CameraRules,
    pub outbound: Outbound,
    pub upnp: Upnp,
    pub upstream: Upstream,
}

/// OpenWrt's logical networks (`wan`, `lan`): their devices change at run time (wan moves from eth1 to
/// pppoe-wan), so the file names networks and the daemon asks netifd which devices they are now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Networks {
    pub wan_network: String,
    pub lan_networks: Vec<String>,
    /// Networks of cameras only (the remedy's `wilifecam`); none by default.
    pub camera_networks: Vec<String>,
    /// The WAN device is pinned by the file or the command line: netifd is not asked.
    pub wan_pinned: bool,
    /// The LAN devices are pinned likewise.
    pub lan_pinned: bool,
    /// The camera devices likewise.
    pub camera_pinned: bool,
}

impl Networks {
    /// Whether some device must come from netifd.
    pub fn need_resolving(&self) -> bool {
        !self.wan_pinned
            || !self.lan_pinned
            || (!self.camera_pinned && !self.camera_networks.is_empty())
    }
}

impl Config {
    /// Sets the devices that are not pinned from `device_of(network)` (netifd's answer; `None`: the
    /// network has no device now). A device is either WAN or LAN: the WAN device leaves the LAN list.
    pub fn resolve_devices(&mut self, device_of: impl Fn(&str) -> Option<String>) {
        if !self.networks.wan_pinned {
            self.wan_device = device_of(&self.networks.wan_network);
        }
        if !self.networks.lan_pinned {
            let mut lans: Vec<String> = Vec::new();
            for dev in self
                .networks
                .lan_networks
                .iter()
                .filter_map(|n| device_of(n))
            {
                if !lans.contains(&dev) {
                    lans.push(dev);
                }
            }
            self.lan_devices = lans;
        }
        if !self.networks.camera_pinned {
            let networks = &self.networks.camera_networks;
            self.camera_devices = networks.iter().filter_map(|n| device_of(n)).collect();
            self.camera_devices.dedup();
        }
        if let Some(wan) = &self.wan_device {
            self.lan_devices.retain(|d| d != wan);
        }
        let (lan, wan) = (&self.lan_devices, &self.wan_device);
        (self.camera_devices).retain(|d| !lan.contains(d) && wan.as_ref() != Some(d));
    }

    /// The Command Center that static forwards go to, with its IP (validated to exist in mode static).
    pub fn static_target(&self) -> Option<(&CommandCenter, Ipv4Addr)> {
        let name = self.direct.static_host.as_deref();
        let cc = match name {
            Some(n) => self.command_centers.iter().find(|c| c.name == n)?,
            None => {
                let mut with_ip = self.command_centers.iter().filter(|c| c.ip.is_some());
                let first = with_ip.next()?;
                if with_ip.next().is_some() {
                    return None;
                }
                first
            }
        };
        Some((cc, cc.ip?))
    }
}
