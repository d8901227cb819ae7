//! UCI sections in, the model out, and every mistake in the file reported with its line — as a compiler
//! does, so a user fixes a config in one pass. One method per section type, in the order of the schema;
//! the helpers below read one option or list and record what is wrong with it.

use super::model::*;
use super::uci::{Entry, Section};
use super::values::*;
use super::{ConfigError, Overrides};
use crate::consts;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const AGENT_OPTIONS: &[&str] = &[
    "enabled",
    "direct_access",
    "wan_device",
    "lan_device",
    "api_port",
    "api_listen",
    "api_token",
    "api_token_file",
    "state_dir",
    "connmark",
    "presence_timeout",
    "dhcp_leases",
    "wan_network",
    "lan_network",
    "camera_network",
    "camera_device",
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
const UPSTREAM_OPTIONS: &[&str] = &["mode", "protocol", "lease"];
/// PCP first: one datagram to the gateway, and a NAT-PMP server answers it in a way that says so.
const DEFAULT_UPSTREAM_PROTOCOLS: [UpstreamProtocol; 3] = [
    UpstreamProtocol::Pcp,
    UpstreamProtocol::Natpmp,
    UpstreamProtocol::Upnp,
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
pub(super) const SECTION_TYPES: &[(&str, &[&str])] = &[
    ("agent", AGENT_OPTIONS),
    ("direct", DIRECT_OPTIONS),
    ("command_center", COMMAND_CENTER_OPTIONS),
    ("camera", CAMERA_OPTIONS),
    ("camera_rules", CAMERA_RULES_OPTIONS),
    ("outbound", OUTBOUND_OPTIONS),
    ("upnp", UPNP_OPTIONS),
    ("upstream", UPSTREAM_OPTIONS),
];
/// Options that may be given as `list` (several values).
const LIST_OPTIONS: &[&str] = &[
    "lan_device",
    "api_listen",
    "lan_network",
    "camera_network",
    "camera_device",
    "protocol",
];
/// Types of which at most one section may exist.
const SINGLETONS: &[&str] = &[
    "agent",
    "direct",
    "camera_rules",
    "outbound",
    "upnp",
    "upstream",
];

/// The model of `sections`, or every error found in them, in file order.
pub(super) fn validate(
    file: &str,
    sections: &[Section],
    path: &Path,
    overrides: &Overrides,
) -> Result<Config, Vec<ConfigError>> {
    let v = Validator {
        file,
        errors: RefCell::default(),
        invalid: RefCell::default(),
        skipped: RefCell::default(),
    };
    let config = v.config(sections, path, overrides);
    let mut errors = v.errors.into_inner();
    if errors.is_empty() {
        return Ok(config);
    }
    // Command-line values (no line) first, then the file from top to bottom.
    errors.sort_by_key(|e| e.line.unwrap_or(0));
    Err(errors)
}

struct Validator<'a> {
    file: &'a str,
    errors: RefCell<Vec<ConfigError>>,
    /// Options with an error: the rules comparing them with others are left out, so one mistake gives
    /// one error (a default in its place would only mislead).
    invalid: RefCell<BTreeSet<String>>,
    /// Lines of sections reported as duplicates: not read again (their mistake is said once).
    skipped: RefCell<BTreeSet<usize>>,
}

/// One section's options, checked for unknown and repeated keys.
struct Opts<'s> {
    label: String,
    /// The section's line (0: the section is absent and defaults apply).
    line: usize,
    values: BTreeMap<&'s str, Vec<&'s Entry>>,
}

/// The `config agent` options, before they join the other sections in `Config`.
struct Agent {
    enabled: bool,
    direct_access: DirectAccess,
    wan_device: Option<String>,
    lan_devices: Vec<String>,
    camera_devices: Vec<String>,
    networks: Networks,
    api_port: u16,
    api_listen: Vec<IpAddr>,
    api_token_file: PathBuf,
    state_dir: PathBuf,
    connmark: u32,
    presence_timeout: u32,
    dhcp_leases: PathBuf,
}

impl Validator<'_> {
    fn config(&self, sections: &[Section], path: &Path, overrides: &Overrides) -> Config {
        self.section_types(sections);
        let one = |kind: &str, default_name: &str| self.singleton(sections, kind, default_name);
        let a = one("agent", "main");
        let agent = self.agent(&a, overrides);
        let d = one("direct", "direct");
        let direct = self.direct(&d);
        let command_centers = self.command_centers(sections);
        let cameras = self.cameras(sections, &command_centers);
        let camera_rules = self.camera_rules(&one("camera_rules", "cameras"));
        let outbound = self.outbound(&one("outbound", "outbound"));
        let upnp = self.upnp(&one("upnp", "upnp"), agent.api_port);
        let upstream = self.upstream(&one("upstream", "upstream"));
        let config = Config {
            path: path.to_path_buf(),
            enabled: agent.enabled,
            direct_access: agent.direct_access,
            wan_device: agent.wan_device,
            lan_devices: agent.lan_devices,
            camera_devices: agent.camera_devices,
            networks: agent.networks,
            api_port: agent.api_port,
            api_listen: agent.api_listen,
            api_token_file: agent.api_token_file,
            api_token: None,
            state_dir: agent.state_dir,
            connmark: agent.connmark,
            presence_timeout: agent.presence_timeout,
            dhcp_leases: agent.dhcp_leases,
            direct,
            command_centers,
            cameras,
            camera_rules,
            outbound,
            upnp,
            upstream,
        };
        self.static_target(&config, &a, &d);
        config
    }

    /// Known section types; named sections and singletons once each.
    fn section_types(&self, sections: &[Section]) {
        let mut seen_names: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for s in sections {
            if !SECTION_TYPES.iter().any(|(t, _)| *t == s.kind) {
                let valid: Vec<&str> = SECTION_TYPES.iter().map(|(t, _)| *t).collect();
                self.report(
                    Some(s.line),
                    Some(&format!("config {}", s.kind)),
                    None,
                    format!("unknown section type; valid types: {}", valid.join(", ")),
                );
                continue;
            }
            if let Some(n) = &s.name {
                if let Some(first) = seen_names.insert((&s.kind, n), s.line) {
                    self.report(
                        Some(s.line),
                        Some(&s.label(0)),
                        None,
                        format!("duplicate section (first on line {first}); merge them"),
                    );
                    self.skipped.borrow_mut().insert(s.line);
                    continue;
                }
            }
            let c = count.entry(&s.kind).or_default();
            *c += 1;
            if SINGLETONS.contains(&s.kind.as_str()) && *c > 1 {
                self.report(
                    Some(s.line),
                    Some(&s.label(0)),
                    None,
                    format!("duplicate section: only one `config {}` is allowed", s.kind),
                );
                self.skipped.borrow_mut().insert(s.line);
            }
        }
    }

    /// `config agent 'main'`: the mode, the devices and networks, the API, the state.
    fn agent(&self, a: &Opts, overrides: &Overrides) -> Agent {
        let direct_access = self
            .parsed(a, "direct_access", |v| match v {
                "upnp" => Ok(DirectAccess::Upnp),
                "static" => Ok(DirectAccess::Static),
                "off" => Ok(DirectAccess::Off),
                _ => Err("is not a mode: use upnp, static or off".into()),
            })
            .unwrap_or(DirectAccess::Upnp);
        if let Some(e) = self.get(a, "api_token") {
            // Never echoed: this message reaches the status, which read-only users see.
            let message = format!(
                "is no longer read from this file, which read-only LuCI users can read: put the \
                 token in {} (mode 0600) and delete this option",
                consts::DEFAULT_API_TOKEN_FILE
            );
            self.report(Some(e.line), Some(&a.label), Some("api_token"), message);
        }
        let (wan_device, lan_devices) = self.devices(a, overrides);
        let camera_devices = self.list(a, "camera_device", parse_device);
        let both = (camera_devices.iter())
            .find(|d| lan_devices.contains(d) || wan_device.as_ref() == Some(d));
        if let Some(d) = both {
            let message = format!("'{d}' is a LAN or WAN device too; a camera network has its own");
            self.at(a, "camera_device", message);
        }
        let mut networks = self.networks(a, wan_device.is_some(), !lan_devices.is_empty());
        networks.camera_pinned = !camera_devices.is_empty();
        Agent {
            enabled: self.parsed(a, "enabled", parse_bool).unwrap_or(true),
            direct_access,
            networks,
            wan_device,
            lan_devices,
            camera_devices,
            api_port: (self.parsed(a, "api_port", parse_port)).unwrap_or(consts::DEFAULT_API_PORT),
            api_listen: self.list(a, "api_listen", |v| {
                v.parse::<IpAddr>()
                    .map_err(|_| "is not an IP address (e.g. 192.168.1.1 or ::1)".to_string())
            }),
            api_token_file: self
                .parsed(a, "api_token_file", |v| {
                    parse_abs_path(v, consts::DEFAULT_API_TOKEN_FILE)
                })
                .unwrap_or_else(|| PathBuf::from(consts::DEFAULT_API_TOKEN_FILE)),
            state_dir: self
                .parsed(a, "state_dir", |v| {
                    parse_abs_path(v, consts::DEFAULT_STATE_DIR)
                })
                .unwrap_or_else(|| PathBuf::from(consts::DEFAULT_STATE_DIR)),
            connmark: (self.parsed(a, "connmark", parse_bit)).unwrap_or(consts::DEFAULT_CONNMARK),
            presence_timeout: self
                .parsed(a, "presence_timeout", |v| match v.parse::<u32>() {
                    Ok(n) if (1..=86_400).contains(&n) => Ok(n),
                    _ => Err("is not a number of seconds between 1 and 86400".into()),
                })
                .unwrap_or(consts::DEFAULT_PRESENCE_TIMEOUT_SECS),
            dhcp_leases: self
                .parsed(a, "dhcp_leases", |v| {
                    parse_abs_path(v, consts::DEFAULT_DHCP_LEASES)
                })
                .unwrap_or_else(|| PathBuf::from(consts::DEFAULT_DHCP_LEASES)),
        }
    }

    /// Devices pinned by the command line or the file (the others come from the logical networks,
    /// which the daemon asks netifd for at start and on every SIGHUP): the WAN device and the LAN ones.
    fn devices(&self, a: &Opts, overrides: &Overrides) -> (Option<String>, Vec<String>) {
        let wan_device = match &overrides.wan_device {
            Some(d) => self.command_line_device("wan_device", d),
            None => self.parsed(a, "wan_device", parse_device),
        };
        let lan_devices: Vec<String> = if overrides.lan_devices.is_empty() {
            self.list(a, "lan_device", parse_device)
        } else {
            (overrides.lan_devices.iter())
                .filter_map(|d| self.command_line_device("lan_device", d))
                .collect()
        };
        if let Some(wan) = wan_device.as_ref().filter(|w| lan_devices.contains(w)) {
            let line = a.values.get("lan_device").and_then(|v| v.first());
            self.report(
                line.map(|e| e.line),
                Some(&a.label),
                Some("lan_device"),
                format!("'{wan}' is the WAN device too; a device is either WAN or LAN"),
            );
        }
        (wan_device, lan_devices)
    }

    /// The logical networks (`wan`, `lan` by default); a network is either WAN or LAN.
    fn networks(&self, a: &Opts, wan_pinned: bool, lan_pinned: bool) -> Networks {
        let wan_network = self
            .parsed(a, "wan_network", parse_network_name)
            .unwrap_or_else(|| consts::DEFAULT_WAN_NETWORK.to_string());
        let mut lan_networks = self.list(a, "lan_network", parse_network_name);
        if lan_networks.is_empty() {
            lan_networks.push(consts::DEFAULT_LAN_NETWORK.to_string());
        }
        if lan_networks.contains(&wan_network) {
            self.at(
                a,
                "wan_network",
                format!("'{wan_network}' is a LAN network too; a network is either WAN or LAN"),
            );
        }
        let camera_networks = self.list(a, "camera_network", parse_network_name);
        let shared =
            (camera_networks.iter()).find(|n| lan_networks.contains(n) || **n == wan_network);
        if let Some(n) = shared {
            let message =
                format!("'{n}' is a LAN or WAN network too; a camera network has its own");
            self.at(a, "camera_network", message);
        }
        Networks {
            wan_network,
            lan_networks,
            camera_networks,
            wan_pinned,
            lan_pinned,
            camera_pinned: false,
        }
    }

    /// `config direct 'direct'`: the direct-mode ports and how they are forwarded.
    fn direct(&self, d: &Opts) -> Direct {
        let ports = self.parsed(d, "ports", parse_range).unwrap_or(PortRange {
            first: consts::DEFAULT_DIRECT_PORTS.0,
            last: consts::DEFAULT_DIRECT_PORTS.1,
        });
        let custom_port = self.parsed(d, "custom_port", parse_port);
        let in_range = custom_port.filter(|p| ports.contains(*p));
        if let Some(p) = in_range.filter(|_| self.readable(&["ports"])) {
            self.at(
                d,
                "custom_port",
                format!(
                    "'{p}' is inside ports {ports} already; use a port outside it or leave it empty"
                ),
            );
        }
        Direct {
            ports,
            custom_port,
            static_host: self.get(d, "static_host").map(|e| e.value.clone()),
            reflection: self.parsed(d, "reflection", parse_bool).unwrap_or(true),
        }
    }

    /// `config command_center` (one or more): the PCs running the Command Center, by IP and/or MAC.
    fn command_centers(&self, sections: &[Section]) -> Vec<CommandCenter> {
        let mut ccs: Vec<CommandCenter> = Vec::new();
        for (i, s) in self.of_kind(sections, "command_center") {
            let o = self.opts(s, s.label(i), COMMAND_CENTER_OPTIONS);
            let name = self.name(&o, s, i, "command_center");
            let ip = self.parsed(&o, "ip", parse_host_ip);
            let mac = self.parsed(&o, "mac", parse_mac);
            if ip.is_none()
                && mac.is_none()
                && !self.has_value(&o, "ip")
                && !self.has_value(&o, "mac")
            {
                self.missing(
                    &o,
                    "ip",
                    "identify the Command Center PC by 'ip' and/or 'mac'",
                );
            }
            let holder = |same: &dyn Fn(&CommandCenter) -> bool| {
                ccs.iter()
                    .find(|c| same(c))
                    .map(|c| format!("belongs to command_center '{}' already", c.name))
            };
            if let Some(other) = ccs.iter().find(|c| c.name == name) {
                self.report(
                    Some(s.line),
                    Some(&o.label),
                    Some("name"),
                    format!("'{}' is used by another command_center", other.name),
                );
            }
            self.unique(&o, "ip", holder(&|c| ip.is_some() && c.ip == ip));
            self.unique(&o, "mac", holder(&|c| mac.is_some() && c.mac == mac));
            ccs.push(CommandCenter { name, ip, mac });
        }
        ccs
    }

    /// `config camera` (zero or more): cameras by MAC, never a Command Center's.
    fn cameras(&self, sections: &[Section], ccs: &[CommandCenter]) -> Vec<Camera> {
        let mut cameras: Vec<Camera> = Vec::new();
        for (i, s) in self.of_kind(sections, "camera") {
            let o = self.opts(s, s.label(i), CAMERA_OPTIONS);
            let name = self.name(&o, s, i, "camera");
            let ip = self.parsed(&o, "ip", parse_host_ip);
            let Some(mac) = self.parsed(&o, "mac", parse_mac) else {
                if !self.has_value(&o, "mac") {
                    self.missing(
                        &o,
                        "mac",
                        "cameras are identified by MAC address, e.g. '00:11:22:33:44:66'",
                    );
                }
                continue;
            };
            let holder = (ccs.iter().find(|c| c.mac == Some(mac)))
                .map(|cc| format!("is the MAC of command_center '{}'", cc.name))
                .or_else(|| {
                    (cameras.iter().find(|c| c.mac == mac))
                        .map(|c| format!("belongs to camera '{}' already", c.name))
                });
            self.unique(&o, "mac", holder);
            cameras.push(Camera { name, mac, ip });
        }
        cameras
    }

    /// `config camera_rules 'cameras'`.
    fn camera_rules(&self, r: &Opts) -> CameraRules {
        CameraRules {
            isolation: self.parsed(r, "isolation", parse_bool).unwrap_or(true),
            video_port: (self.parsed(r, "video_port", parse_port))
                .unwrap_or(consts::DEFAULT_VIDEO_PORT),
            dns: self.parsed(r, "dns", parse_bool).unwrap_or(false),
        }
    }

    /// `config outbound 'outbound'`.
    fn outbound(&self, ob: &Opts) -> Outbound {
        let flag = |key, default| self.parsed(ob, key, parse_bool).unwrap_or(default);
        Outbound {
            wilife_online: flag("wilife_online", true),
            relay: flag("relay", true),
            email: flag("email", true),
            smtp_port: self.parsed(ob, "smtp_port", parse_port).unwrap_or(25),
            remote_client: flag("remote_client", false),
        }
    }

    /// `config upnp 'upnp'`: how far the IGD may go.
    fn upnp(&self, u: &Opts, api_port: u16) -> Upnp {
        let number = |key, lo, hi, what| self.parsed(u, key, number_in(lo, hi, what));
        let upnp = Upnp {
            port: (self.parsed(u, "port", parse_port)).unwrap_or(consts::DEFAULT_UPNP_PORT),
            any_lan_host: self.parsed(u, "any_lan_host", parse_bool).unwrap_or(false),
            max_per_client: number("max_per_client", 1, 64, "a mapping count")
                .map_or(consts::DEFAULT_UPNP_MAX_PER_CLIENT, |n| n as usize),
            max_lease: number("max_lease", 0, 31_536_000, "a lease in seconds")
                .map_or(0, |n| n as u32),
            same_port: self.parsed(u, "same_port", parse_bool).unwrap_or(true),
            notify_interval: number("notify_interval", 30, 86_400, "an interval in seconds")
                .map_or(consts::DEFAULT_SSDP_NOTIFY_SECS, |n| n as u32),
            uuid: self.parsed(u, "uuid", parse_uuid),
        };
        if upnp.port == api_port && self.readable(&["api_port"]) {
            self.at(
                u,
                "port",
                format!(
                    "'{}' is the API port too; give UPnP its own port",
                    upnp.port
                ),
            );
        }
        upnp
    }

    /// `config upstream 'upstream'`: whether and how the gateway upstream is asked for the mappings.
    fn upstream(&self, u: &Opts) -> Upstream {
        let mode = self
            .parsed(u, "mode", |v| match v {
                "auto" => Ok(UpstreamMode::Auto),
                "enabled" => Ok(UpstreamMode::Enabled),
                "off" => Ok(UpstreamMode::Off),
                _ => Err("is not a mode: use auto, enabled or off".into()),
            })
            .unwrap_or(UpstreamMode::Auto);
        let protocol = |v: &str| match v {
            "pcp" => Ok(UpstreamProtocol::Pcp),
            "natpmp" => Ok(UpstreamProtocol::Natpmp),
            "upnp" => Ok(UpstreamProtocol::Upnp),
            _ => Err("is not a protocol: use pcp, natpmp or upnp".to_string()),
        };
        let mut protocols = Vec::new();
        let entries = u.values.get("protocol").into_iter().flatten();
        for e in entries.filter(|e| !e.value.is_empty()) {
            match protocol(&e.value) {
                Err(m) => self.invalid(u, "protocol", e, m),
                Ok(p) if protocols.contains(&p) => {
                    self.invalid(u, "protocol", e, "is named twice".into())
                }
                Ok(p) => protocols.push(p),
            }
        }
        if protocols.is_empty() {
            protocols = DEFAULT_UPSTREAM_PROTOCOLS.to_vec();
        }
        Upstream {
            mode,
            protocols,
            lease: self
                .parsed(u, "lease", number_in(120, 86_400, "a lease in seconds"))
                .map_or(consts::DEFAULT_UPSTREAM_LEASE_SECS, |n| n as u32),
        }
    }

    /// Across sections: the Command Center that static forwards go to exists and has an address.
    fn static_target(&self, config: &Config, a: &Opts, d: &Opts) {
        if !self.readable(&["direct_access", "ip", "name"]) {
            return;
        }
        let static_mode = config.direct_access == DirectAccess::Static;
        if let Some(e) = self.get(d, "static_host") {
            let names: Vec<&str> = (config.command_centers.iter())
                .map(|c| c.name.as_str())
                .collect();
            match config.command_centers.iter().find(|c| c.name == e.value) {
                None => self.at(
                    d,
                    "static_host",
                    format!(
                        "'{}' is not a command_center; known: {}",
                        e.value,
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                ),
                Some(cc) if cc.ip.is_none() && static_mode => self.at(
                    d,
                    "static_host",
                    format!(
                        "command_center '{}' has no 'ip'; static forwards need one",
                        cc.name
                    ),
                ),
                Some(_) => {}
            }
            return;
        }
        if static_mode && config.static_target().is_none() {
            let with_ip = (config.command_centers.iter())
                .filter(|c| c.ip.is_some())
                .count();
            let message = if with_ip == 0 {
                "'static' needs a command_center with an 'ip' to forward the direct-mode ports to"
                    .to_string()
            } else {
                format!("'static' with {with_ip} Command Centers: set direct.static_host to the one that receives the forwards")
            };
            self.at(a, "direct_access", message);
        }
    }

    // Helpers: one option, one list, one name, one uniqueness rule; each records what is wrong.

    fn report(
        &self,
        line: Option<usize>,
        section: Option<&str>,
        option: Option<&str>,
        message: String,
    ) {
        if let Some(key) = option {
            self.invalid.borrow_mut().insert(key.to_string());
        }
        self.errors.borrow_mut().push(ConfigError {
            file: self.file.to_string(),
            line,
            section: section.map(str::to_string),
            option: option.map(str::to_string),
            message,
        });
    }

    /// An error about option `key` of `o`, at the option's line (the section's when it is not set).
    fn at(&self, o: &Opts, key: &str, message: String) {
        let line = self.get(o, key).map_or(o.line, |e| e.line);
        self.report(Some(line), Some(&o.label), Some(key), message);
    }

    fn missing(&self, o: &Opts, key: &str, what: &str) {
        self.report(
            Some(o.line),
            Some(&o.label),
            Some(key),
            format!("missing: {what}"),
        );
    }

    /// `key`'s value is someone else's already (`holder` says whose, as the message's tail).
    fn unique(&self, o: &Opts, key: &str, holder: Option<String>) {
        if let (Some(tail), Some(e)) = (holder, self.get(o, key)) {
            self.at(o, key, format!("'{}' {tail}", e.value));
        }
    }

    /// A section's options; unknown, repeated and wrongly listed ones are reported and left out.
    fn opts<'s>(&self, section: &'s Section, label: String, allowed: &[&str]) -> Opts<'s> {
        let mut values: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        for e in &section.entries {
            let key = e.key.as_str();
            let listable = LIST_OPTIONS.contains(&key);
            let first = values.get(key).and_then(|v| v.first());
            let problem = if !allowed.contains(&key) {
                Some(format!(
                    "unknown option; valid options here: {}",
                    allowed.join(", ")
                ))
            } else if e.is_list && !listable {
                Some("takes one value: write `option`, not `list`".into())
            } else {
                first
                    .filter(|f| !listable || !e.is_list || !f.is_list)
                    .map(|f| format!("given twice (first on line {}); keep one", f.line))
            };
            match problem {
                Some(message) => self.report(Some(e.line), Some(&label), Some(key), message),
                None => values.entry(key).or_default().push(e),
            }
        }
        Opts {
            label,
            line: section.line,
            values,
        }
    }

    /// The one section of a singleton type, or an empty one (defaults) when the file has none.
    fn singleton<'s>(&self, sections: &'s [Section], kind: &str, default_name: &str) -> Opts<'s> {
        let allowed = SECTION_TYPES
            .iter()
            .find(|(t, _)| *t == kind)
            .map_or(&[][..], |(_, o)| *o);
        match self.of_kind(sections, kind).first() {
            Some(&(i, s)) => self.opts(s, s.label(i), allowed),
            None => Opts {
                label: format!("{kind} '{default_name}'"),
                line: 0,
                values: BTreeMap::new(),
            },
        }
    }

    /// The sections of one type that are read: numbered among all of that type, duplicates left out.
    fn of_kind<'s>(&self, sections: &'s [Section], kind: &str) -> Vec<(usize, &'s Section)> {
        let skipped = self.skipped.borrow();
        of_kind(sections, kind)
            .into_iter()
            .filter(|(_, s)| !skipped.contains(&s.line))
            .collect()
    }

    /// A section's display name: its `name` option, else its UCI name, else TYPE and its number.
    fn name(&self, o: &Opts, s: &Section, i: usize, kind: &str) -> String {
        match (self.get(o, "name"), &s.name) {
            (Some(e), _) => e.value.clone(),
            (None, Some(n)) => n.clone(),
            (None, None) => format!("{kind}{}", i + 1),
        }
    }

    /// The single value of an option, if set and not empty (UCI treats '' as unset).
    fn get<'s>(&self, o: &Opts<'s>, key: &str) -> Option<&'s Entry> {
        o.values
            .get(key)
            .and_then(|v| v.first().copied())
            .filter(|e| !e.value.is_empty())
    }

    /// Is `key` set (valid or not)? A wrong value is reported once, not again as missing.
    fn has_value(&self, o: &Opts, key: &str) -> bool {
        self.get(o, key).is_some()
    }

    /// An option's value; `None` when unset, or when invalid (which is reported).
    fn parsed<T>(
        &self,
        o: &Opts,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let e = self.get(o, key)?;
        parse(&e.value).map_err(|m| self.invalid(o, key, e, m)).ok()
    }

    /// A list's valid values; each invalid one is reported.
    fn list<T>(&self, o: &Opts, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Vec<T> {
        let entries = o.values.get(key).into_iter().flatten();
        entries
            .filter(|e| !e.value.is_empty())
            .filter_map(|e| parse(&e.value).map_err(|m| self.invalid(o, key, e, m)).ok())
            .collect()
    }

    /// Reports a value that does not parse.
    fn invalid(&self, o: &Opts, key: &str, e: &Entry, message: String) {
        let message = format!("'{}' {message}", e.value);
        self.report(Some(e.line), Some(&o.label), Some(key), message);
    }

    /// Were `keys` free of errors so far (so a rule comparing them means something)?
    fn readable(&self, keys: &[&str]) -> bool {
        let invalid = self.invalid.borrow();
        keys.iter().all(|k| !invalid.contains(*k))
    }

    /// A device given on the command line (no line to point at).
    fn command_line_device(&self, key: &str, d: &str) -> Option<String> {
        parse_device(d)
            .map_err(|m| {
                let message = format!("'{d}' (from the command line) {m}");
                self.report(None, None, Some(key), message);
            })
            .ok()
    }
}

/// The sections of one type, numbered from 0 in file order.
fn of_kind<'s>(sections: &'s [Section], kind: &str) -> Vec<(usize, &'s Section)> {
    sections
        .iter()
        .filter(|s| s.kind == kind)
        .enumerate()
        .collect()
}
