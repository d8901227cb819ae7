//! The validated model of `/etc/config/wilife`. Pure: text in, `Config` or a located error out.
//! Every error names the file, line, section and option, and says what would be valid.

mod api_access;
pub mod uci;

pub use api_access::{api_access, ApiAccess};

use crate::consts;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use uci::{Entry, Section};

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
    /// The logical networks behind the devices, resolved by the daemon at start and on every SIGHUP.
    pub networks: Networks,
    pub api_port: u16,
    /// Empty: the LAN devices' addresses and loopback.
    pub api_listen: Vec<IpAddr>,
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
}

/// OpenWrt's logical networks (`wan`, `lan`): their devices change at run time (wan moves from eth1 to
/// pppoe-wan), so the file names networks and the daemon asks netifd which devices they are now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Networks {
    pub wan_network: String,
    pub lan_networks: Vec<String>,
    /// The WAN device is pinned by the file or the command line: netifd is not asked.
    pub wan_pinned: bool,
    /// The LAN devices are pinned likewise.
    pub lan_pinned: bool,
}

impl Networks {
    /// Whether some device must come from netifd.
    pub fn need_resolving(&self) -> bool {
        !self.wan_pinned || !self.lan_pinned
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
        if let Some(wan) = &self.wan_device {
            self.lan_devices.retain(|d| d != wan);
        }
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

/// A configuration error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub section: Option<String>,
    pub option: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": ")?;
        match (&self.section, &self.option) {
            (Some(s), Some(o)) => write!(f, "{s}, option '{o}': ")?,
            (Some(s), None) => write!(f, "{s}: ")?,
            (None, Some(o)) => write!(f, "option '{o}': ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line that take precedence over the file (the OpenWrt init script
/// resolves the logical `wan`/`lan` networks to devices and passes them here).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub wan_device: Option<String>,
    pub lan_devices: Vec<String>,
}

/// Reads and validates a config file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        section: None,
        option: None,
        message: format!("cannot read the file: {e}"),
    })?;
    parse(&text, path, overrides)
}

/// Validates config text (`path` is used in messages only).
pub fn parse(text: &str, path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let sections = uci::parse(text).map_err(|e| ConfigError {
        file: file.clone(),
        line: Some(e.line),
        section: None,
        option: None,
        message: e.message,
    })?;
    Validator { file: &file }.config(&sections, path, overrides)
}

const AGENT_OPTIONS: &[&str] = &[
    "enabled",
    "direct_access",
    "wan_device",
    "lan_device",
    "api_port",
    "api_listen",
    "api_token",
    "state_dir",
    "connmark",
    "presence_timeout",
    "dhcp_leases",
    "wan_network",
    "lan_network",
];
const DIRECT_OPTIONS: &[&str] = &["ports", "custom_port", "static_host", "reflection"];
const COMMAND_CENTER_OPTIONS: &[&str] = &["name", "ip", "mac"];
const CAMERA_OPTIONS: &[&str] = &["name", "mac", "ip"];
const CAMERA_RULES_OPTIONS: &[&str] = &["isolation", "video_port", "dns"];
const OUTBOUND_OPTIONS: &[&str] = &[
    "wilife_online",
    "relay",
    "email",
    "smtp_port",
    "remote_client",
];
const UPNP_OPTIONS: &[&str] = &[
    "port",
    "any_lan_host",
    "max_per_client",
    "max_lease",
    "same_port",
    "notify_interval",
    "uuid",
];
/// Section types and the options each accepts.
const SECTION_TYPES: &[(&str, &[&str])] = &[
    ("agent", AGENT_OPTIONS),
    ("direct", DIRECT_OPTIONS),
    ("command_center", COMMAND_CENTER_OPTIONS),
    ("camera", CAMERA_OPTIONS),
    ("camera_rules", CAMERA_RULES_OPTIONS),
    ("outbound", OUTBOUND_OPTIONS),
    ("upnp", UPNP_OPTIONS),
];
/// Options that may be given as `list` (several values).
const LIST_OPTIONS: &[&str] = &["lan_device", "api_listen", "lan_network"];
/// Types of which at most one section may exist.
const SINGLETONS: &[&str] = &["agent", "direct", "camera_rules", "outbound", "upnp"];

struct Validator<'a> {
    file: &'a str,
}

/// One section's options, checked for unknown and repeated keys.
struct Opts<'s> {
    label: String,
    section_line: usize,
    values: BTreeMap<&'s str, Vec<&'s Entry>>,
}

impl<'a> Validator<'a> {
    fn err(
        &self,
        line: Option<usize>,
        section: Option<&str>,
        option: Option<&str>,
        message: String,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line,
            section: section.map(str::to_string),
            option: option.map(str::to_string),
            message,
        }
    }

    fn opts<'s>(
        &self,
        section: &'s Section,
        label: String,
        allowed: &[&str],
    ) -> Result<Opts<'s>, ConfigError> {
        let mut values: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        for e in &section.entries {
            if !allowed.contains(&e.key.as_str()) {
                return Err(self.err(
                    Some(e.line),
                    Some(&label),
                    Some(&e.key),
                    format!("unknown option; valid options here: {}", allowed.join(", ")),
                ));
            }
            let slot = values.entry(e.key.as_str()).or_default();
            let listable = LIST_OPTIONS.contains(&e.key.as_str());
            if e.is_list && !listable {
                return Err(self.err(
                    Some(e.line),
                    Some(&label),
                    Some(&e.key),
                    "takes one value: write `option`, not `list`".into(),
                ));
            }
            if let Some(first) = slot.first() {
                if !listable || !e.is_list || !first.is_list {
                    return Err(self.err(
                        Some(e.line),
                        Some(&label),
                        Some(&e.key),
                        format!("given twice (first on line {}); keep one", first.line),
                    ));
                }
            }
            slot.push(e);
        }
        Ok(Opts {
            label,
            section_line: section.line,
            values,
        })
    }

    /// The single value of an option, if set and not empty (UCI treats '' as unset).
    fn get<'s>(&self, o: &Opts<'s>, key: &str) -> Option<&'s Entry> {
        o.values
            .get(key)
            .and_then(|v| v.first().copied())
            .filter(|e| !e.value.is_empty())
    }

    fn parsed<T>(
        &self,
        o: &Opts,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(o, key) {
            None => Ok(None),
            Some(e) => parse(&e.value).map(Some).map_err(|m| {
                self.err(
                    Some(e.line),
                    Some(&o.label),
                    Some(key),
                    format!("'{}' {m}", e.value),
                )
            }),
        }
    }

    fn list<T>(
        &self,
        o: &Opts,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        let mut out = Vec::new();
        for e in o.values.get(key).into_iter().flatten() {
            if e.value.is_empty() {
                continue;
            }
            out.push(parse(&e.value).map_err(|m| {
                self.err(
                    Some(e.line),
                    Some(&o.label),
                    Some(key),
                    format!("'{}' {m}", e.value),
                )
            })?);
        }
        Ok(out)
    }

    fn missing(&self, o: &Opts, key: &str, what: &str) -> ConfigError {
        self.err(
            Some(o.section_line),
            Some(&o.label),
            Some(key),
            format!("missing: {what}"),
        )
    }

    fn config(
        &self,
        sections: &[Section],
        path: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        // Section types, duplicates.
        let mut seen_names: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for s in sections {
            if !SECTION_TYPES.iter().any(|(t, _)| *t == s.kind) {
                let valid: Vec<&str> = SECTION_TYPES.iter().map(|(t, _)| *t).collect();
                return Err(self.err(
                    Some(s.line),
                    Some(&format!("config {}", s.kind)),
                    None,
                    format!("unknown section type; valid types: {}", valid.join(", ")),
                ));
            }
            if let Some(n) = &s.name {
                if let Some(first) = seen_names.insert((&s.kind, n), s.line) {
                    return Err(self.err(
                        Some(s.line),
                        Some(&s.label(0)),
                        None,
                        format!("duplicate section (first on line {first}); merge them"),
                    ));
                }
            }
            let c = count.entry(&s.kind).or_default();
            *c += 1;
            if SINGLETONS.contains(&s.kind.as_str()) && *c > 1 {
                return Err(self.err(
                    Some(s.line),
                    Some(&s.label(0)),
                    None,
                    format!("duplicate section: only one `config {}` is allowed", s.kind),
                ));
            }
        }
        let of_kind =
            |kind: &'static str| sections.iter().filter(move |s| s.kind == kind).enumerate();
        let one = |kind: &'static str,
                   default_name: &str,
                   allowed: &[&str]|
         -> Result<Opts, ConfigError> {
            match of_kind(kind).next() {
                Some((i, s)) => self.opts(s, s.label(i), allowed),
                None => Ok(Opts {
                    label: format!("{kind} '{default_name}'"),
                    section_line: 0,
                    values: BTreeMap::new(),
                }),
            }
        };

        // config agent 'main'
        let a = one("agent", "main", AGENT_OPTIONS)?;
        let enabled = self.parsed(&a, "enabled", parse_bool)?.unwrap_or(true);
        let direct_access = self
            .parsed(&a, "direct_access", |v| match v {
                "upnp" => Ok(DirectAccess::Upnp),
                "static" => Ok(DirectAccess::Static),
                "off" => Ok(DirectAccess::Off),
                _ => Err("is not a mode: use upnp, static or off".into()),
            })?
            .unwrap_or(DirectAccess::Upnp);
        // Devices pinned by the command line or the file; the others come from the logical networks
        // (netifd), which the daemon asks at start and on every SIGHUP.
        let wan_device = match &overrides.wan_device {
            Some(d) => Some(parse_device(d).map_err(|m| {
                self.err(
                    None,
                    None,
                    Some("wan_device"),
                    format!("'{d}' (from the command line) {m}"),
                )
            })?),
            None => self.parsed(&a, "wan_device", parse_device)?,
        };
        let wan_network = self
            .parsed(&a, "wan_network", parse_network_name)?
            .unwrap_or_else(|| consts::DEFAULT_WAN_NETWORK.to_string());
        let mut lan_networks = self.list(&a, "lan_network", parse_network_name)?;
        if lan_networks.is_empty() {
            lan_networks.push(consts::DEFAULT_LAN_NETWORK.to_string());
        }
        let lan_devices = if overrides.lan_devices.is_empty() {
            self.list(&a, "lan_device", parse_device)?
        } else {
            overrides
                .lan_devices
                .iter()
                .map(|d| {
                    parse_device(d).map_err(|m| {
                        self.err(
                            None,
                            None,
                            Some("lan_device"),
                            format!("'{d}' (from the command line) {m}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if let Some(wan) = wan_device.as_ref().filter(|w| lan_devices.contains(w)) {
            return Err(self.err(
                a.values
                    .get("lan_device")
                    .and_then(|v| v.first())
                    .map(|e| e.line),
                Some(&a.label),
                Some("lan_device"),
                format!("'{wan}' is the WAN device too; a device is either WAN or LAN"),
            ));
        }
        if lan_networks.contains(&wan_network) {
            return Err(self.err(
                self.get(&a, "wan_network").map(|e| e.line),
                Some(&a.label),
                Some("wan_network"),
                format!("'{wan_network}' is a LAN network too; a network is either WAN or LAN"),
            ));
        }
        let networks = Networks {
            wan_network,
            lan_networks,
            wan_pinned: wan_device.is_some(),
            lan_pinned: !lan_devices.is_empty(),
        };
        let api_port = self
            .parsed(&a, "api_port", parse_port)?
            .unwrap_or(consts::DEFAULT_API_PORT);
        let api_listen = self.list(&a, "api_listen", |v| {
            v.parse::<IpAddr>()
                .map_err(|_| "is not an IP address (e.g. 192.168.1.1 or ::1)".to_string())
        })?;
        let api_token = self.parsed(&a, "api_token", parse_token)?;
        let state_dir = self
            .parsed(&a, "state_dir", |v| {
                parse_abs_path(v, consts::DEFAULT_STATE_DIR)
            })?
            .unwrap_or_else(|| PathBuf::from(consts::DEFAULT_STATE_DIR));
        let connmark = self
            .parsed(&a, "connmark", parse_bit)?
            .unwrap_or(consts::DEFAULT_CONNMARK);
        let presence_timeout = self
            .parsed(&a, "presence_timeout", |v| match v.parse::<u32>() {
                Ok(n) if (1..=86_400).contains(&n) => Ok(n),
                _ => Err("is not a number of seconds between 1 and 86400".into()),
            })?
            .unwrap_or(consts::DEFAULT_PRESENCE_TIMEOUT_SECS);
        let dhcp_leases = self
            .parsed(&a, "dhcp_leases", |v| {
                parse_abs_path(v, consts::DEFAULT_DHCP_LEASES)
            })?
            .unwrap_or_else(|| PathBuf::from(consts::DEFAULT_DHCP_LEASES));

        // config direct 'direct'
        let d = one("direct", "direct", DIRECT_OPTIONS)?;
        let ports = self.parsed(&d, "ports", parse_range)?.unwrap_or(PortRange {
            first: consts::DEFAULT_DIRECT_PORTS.0,
            last: consts::DEFAULT_DIRECT_PORTS.1,
        });
        let custom_port = self.parsed(&d, "custom_port", parse_port)?;
        if let (Some(p), Some(e)) = (custom_port, self.get(&d, "custom_port")) {
            if ports.contains(p) {
                return Err(self.err(
                    Some(e.line),
                    Some(&d.label),
                    Some("custom_port"),
                    format!("'{p}' is inside ports {ports} already; use a port outside it or leave it empty"),
                ));
            }
        }
        let reflection = self.parsed(&d, "reflection", parse_bool)?.unwrap_or(true);
        let static_host_entry = self.get(&d, "static_host");
        let static_host = static_host_entry.map(|e| e.value.clone());

        // config command_center (one or more)
        let mut command_centers: Vec<CommandCenter> = Vec::new();
        for (i, s) in of_kind("command_center") {
            let o = self.opts(s, s.label(i), COMMAND_CENTER_OPTIONS)?;
            let name = self
                .get(&o, "name")
                .map(|e| e.value.clone())
                .unwrap_or_else(|| match &s.name {
                    Some(n) => n.clone(),
                    None => format!("command_center{}", i + 1),
                });
            let ip = self.parsed(&o, "ip", parse_host_ip)?;
            let mac = self.parsed(&o, "mac", parse_mac)?;
            if ip.is_none() && mac.is_none() {
                return Err(self.missing(
                    &o,
                    "ip",
                    "identify the Command Center PC by 'ip' and/or 'mac'",
                ));
            }
            for other in &command_centers {
                if other.name == name {
                    return Err(self.err(
                        Some(s.line),
                        Some(&o.label),
                        Some("name"),
                        format!("'{name}' is used by another command_center"),
                    ));
                }
                if ip.is_some() && other.ip == ip {
                    let e = self.get(&o, "ip").unwrap();
                    return Err(self.err(
                        Some(e.line),
                        Some(&o.label),
                        Some("ip"),
                        format!(
                            "'{}' belongs to command_center '{}' already",
                            e.value, other.name
                        ),
                    ));
                }
                if mac.is_some() && other.mac == mac {
                    let e = self.get(&o, "mac").unwrap();
                    return Err(self.err(
                        Some(e.line),
                        Some(&o.label),
                        Some("mac"),
                        format!(
                            "'{}' belongs to command_center '{}' already",
                            e.value, other.name
                        ),
                    ));
                }
            }
            command_centers.push(CommandCenter { name, ip, mac });
        }

        // config camera (zero or more)
        let mut cameras: Vec<Camera> = Vec::new();
        for (i, s) in of_kind("camera") {
            let o = self.opts(s, s.label(i), CAMERA_OPTIONS)?;
            let name = self
                .get(&o, "name")
                .map(|e| e.value.clone())
                .unwrap_or_else(|| match &s.name {
                    Some(n) => n.clone(),
                    None => format!("camera{}", i + 1),
                });
            let mac = self.parsed(&o, "mac", parse_mac)?.ok_or_else(|| {
                self.missing(
                    &o,
                    "mac",
                    "cameras are identified by MAC address, e.g. '00:11:22:33:44:66'",
                )
            })?;
            let ip = self.parsed(&o, "ip", parse_host_ip)?;
            let line = self.get(&o, "mac").map(|e| e.line);
            if let Some(cc) = command_centers.iter().find(|c| c.mac == Some(mac)) {
                return Err(self.err(
                    line,
                    Some(&o.label),
                    Some("mac"),
                    format!("'{mac}' is the MAC of command_center '{}'", cc.name),
                ));
            }
            if let Some(other) = cameras.iter().find(|c| c.mac == mac) {
                return Err(self.err(
                    line,
                    Some(&o.label),
                    Some("mac"),
                    format!("'{mac}' belongs to camera '{}' already", other.name),
                ));
            }
            cameras.push(Camera { name, mac, ip });
        }

        // config camera_rules 'cameras', config outbound 'outbound'
        let r = one("camera_rules", "cameras", CAMERA_RULES_OPTIONS)?;
        let camera_rules = CameraRules {
            isolation: self.parsed(&r, "isolation", parse_bool)?.unwrap_or(true),
            video_port: self
                .parsed(&r, "video_port", parse_port)?
                .unwrap_or(crate::consts::DEFAULT_VIDEO_PORT),
            dns: self.parsed(&r, "dns", parse_bool)?.unwrap_or(false),
        };
        let ob = one("outbound", "outbound", OUTBOUND_OPTIONS)?;
        let outbound = Outbound {
            wilife_online: self
                .parsed(&ob, "wilife_online", parse_bool)?
                .unwrap_or(true),
            relay: self.parsed(&ob, "relay", parse_bool)?.unwrap_or(true),
            email: self.parsed(&ob, "email", parse_bool)?.unwrap_or(true),
            smtp_port: self.parsed(&ob, "smtp_port", parse_port)?.unwrap_or(25),
            remote_client: self
                .parsed(&ob, "remote_client", parse_bool)?
                .unwrap_or(false),
        };

        // config upnp 'upnp'
        let u = one("upnp", "upnp", UPNP_OPTIONS)?;
        let in_range = |lo: u64, hi: u64, what: &'static str| {
            move |v: &str| match v.parse::<u64>() {
                Ok(n) if (lo..=hi).contains(&n) && !v.starts_with('+') => Ok(n),
                _ => Err(format!("is not {what}: use a number from {lo} to {hi}")),
            }
        };
        let upnp = Upnp {
            port: self
                .parsed(&u, "port", parse_port)?
                .unwrap_or(consts::DEFAULT_UPNP_PORT),
            any_lan_host: self
                .parsed(&u, "any_lan_host", parse_bool)?
                .unwrap_or(false),
            max_per_client: self
                .parsed(&u, "max_per_client", in_range(1, 64, "a mapping count"))?
                .map_or(consts::DEFAULT_UPNP_MAX_PER_CLIENT, |n| n as usize),
            max_lease: self
                .parsed(
                    &u,
                    "max_lease",
                    in_range(0, 31_536_000, "a lease in seconds"),
                )?
                .map_or(0, |n| n as u32),
            same_port: self.parsed(&u, "same_port", parse_bool)?.unwrap_or(true),
            notify_interval: self
                .parsed(
                    &u,
                    "notify_interval",
                    in_range(30, 86_400, "an interval in seconds"),
                )?
                .map_or(consts::DEFAULT_SSDP_NOTIFY_SECS, |n| n as u32),
            uuid: self.parsed(&u, "uuid", parse_uuid)?,
        };
        if upnp.port == api_port {
            let line = self.get(&u, "port").map(|e| e.line);
            return Err(self.err(
                line,
                Some(&u.label),
                Some("port"),
                format!(
                    "'{}' is the API port too; give UPnP its own port",
                    upnp.port
                ),
            ));
        }

        let config = Config {
            path: path.to_path_buf(),
            enabled,
            direct_access,
            wan_device,
            lan_devices,
            networks,
            api_port,
            api_listen,
            api_token,
            state_dir,
            connmark,
            presence_timeout,
            dhcp_leases,
            direct: Direct {
                ports,
                custom_port,
                static_host,
                reflection,
            },
            command_centers,
            cameras,
            camera_rules,
            outbound,
            upnp,
        };

        // Cross-section rules.
        if let Some(e) = static_host_entry {
            match config.command_centers.iter().find(|c| c.name == e.value) {
                None => {
                    let names: Vec<&str> = config
                        .command_centers
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    return Err(self.err(
                        Some(e.line),
                        Some(&d.label),
                        Some("static_host"),
                        format!(
                            "'{}' is not a command_center; known: {}",
                            e.value,
                            if names.is_empty() {
                                "none".into()
                            } else {
                                names.join(", ")
                            }
                        ),
                    ));
                }
                Some(cc) if cc.ip.is_none() && direct_access == DirectAccess::Static => {
                    return Err(self.err(
                        Some(e.line),
                        Some(&d.label),
                        Some("static_host"),
                        format!(
                            "command_center '{}' has no 'ip'; static forwards need one",
                            cc.name
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if direct_access == DirectAccess::Static && config.static_target().is_none() {
            let line = self.get(&a, "direct_access").map(|e| e.line);
            let with_ip = config
                .command_centers
                .iter()
                .filter(|c| c.ip.is_some())
                .count();
            let message = if with_ip == 0 {
                "'static' needs a command_center with an 'ip' to forward the direct-mode ports to"
                    .to_string()
            } else {
                format!("'static' with {with_ip} Command Centers: set direct.static_host to the one that receives the forwards")
            };
            return Err(self.err(line, Some(&a.label), Some("direct_access"), message));
        }
        Ok(config)
    }
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "yes" | "on" | "true" | "enabled" => Ok(true),
        "0" | "no" | "off" | "false" | "disabled" => Ok(false),
        _ => Err("is not a boolean: use '1' or '0'".into()),
    }
}

pub fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) && !v.starts_with('+') => Ok(p as u16),
        _ => Err("is not a port: use a number from 1 to 65535".into()),
    }
}

pub fn parse_range(v: &str) -> Result<PortRange, String> {
    let (a, b) = v.split_once('-').unwrap_or((v, v));
    let bad = |_| "is not a port range: use FIRST-LAST, e.g. 20570-20575".to_string();
    let first = parse_port(a.trim()).map_err(bad)?;
    let last = parse_port(b.trim()).map_err(bad)?;
    if first > last {
        return Err(format!(
            "is reversed: the first port must not exceed the last ({last}-{first}?)"
        ));
    }
    Ok(PortRange { first, last })
}

/// The API's write token.
pub fn parse_token(v: &str) -> Result<String, String> {
    if v.len() < 16 || v.len() > 256 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        Err("is not a usable token: 16-256 printable characters without spaces".into())
    } else {
        Ok(v.to_string())
    }
}

/// An OpenWrt logical network name (`wan`, `lan`, `iot_cams`).
pub fn parse_network_name(v: &str) -> Result<String, String> {
    if !v.is_empty() && v.len() <= 15 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(v.to_string())
    } else {
        Err("is not a network name (letters, digits and _, e.g. 'wan')".into())
    }
}

/// An absolute path; `example` shows one in the message.
pub fn parse_abs_path(v: &str, example: &str) -> Result<PathBuf, String> {
    if v.starts_with('/') {
        Ok(PathBuf::from(v))
    } else {
        Err(format!("is not an absolute path (e.g. {example})"))
    }
}

/// A unicast host address on the LAN.
pub fn parse_host_ip(v: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = v
        .parse()
        .map_err(|_| "is not an IPv4 address (e.g. 192.168.1.10)".to_string())?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err("is not a host address: use the PC's unicast LAN address".into());
    }
    Ok(ip)
}

pub fn parse_mac(v: &str) -> Result<Mac, String> {
    let bad = || "is not a MAC address (e.g. 00:11:22:33:44:55)".to_string();
    let parts: Vec<&str> = v.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if m == [0; 6] || m[0] & 1 == 1 {
        return Err("is not a unicast MAC address".into());
    }
    Ok(Mac(m))
}

/// A Linux network device name (IFNAMSIZ - 1 bytes, no slash or space).
pub fn parse_device(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'"' && b != b'\\');
    if ok {
        Ok(v.to_string())
    } else {
        Err("is not a network device name (1-15 characters, no '/', quotes or spaces)".into())
    }
}

/// A UUID in its 8-4-4-4-12 hex form, stored lowercase.
pub fn parse_uuid(v: &str) -> Result<String, String> {
    let v = v.strip_prefix("uuid:").unwrap_or(v);
    let groups: Vec<&str> = v.split('-').collect();
    let ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err("is not a UUID (e.g. 4c1f3a52-9b1e-8d4a-a1b2-0123456789ab)".into())
    }
}

/// One connmark bit, decimal or 0x-hex.
pub fn parse_bit(v: &str) -> Result<u32, String> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => v.parse::<u32>(),
    };
    match n {
        Ok(n) if n.is_power_of_two() => Ok(n),
        _ => Err("is not a single bit: use one bit such as 0x10000000".into()),
    }
}

#[cfg(test)]
mod tests;
