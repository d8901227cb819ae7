//! What the daemon tells the world: a snapshot the state owner publishes after every change and the API
//! serves. Plain data.

use crate::config::{Config, DirectAccess};
use crate::firewall::apply::Counts;
use crate::firewall::{Forward, NetFacts};
use crate::upnp::error::Refusal;
use crate::upnp::leases::Mapping;
use crate::upstream::cascade::Standing;
use crate::upstream::worker::UpstreamStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub const API_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Reconcile {
    /// Unix time, seconds.
    pub at: u64,
    /// Why it ran: startup, reload, restore, retry, network.
    pub reason: String,
    /// "ok" or "error".
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fw4Include {
    /// The static include file the package installs.
    pub path: String,
    pub present: bool,
    /// The file accepts our connmark bit.
    pub matches_connmark: bool,
    /// fw4's live forward chain accepts our bit (null: there is no fw4 table).
    pub in_fw4_ruleset: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirewallHealth {
    /// The main table (kept for API v1 clients); `tables` lists all of ours.
    pub table: &'static str,
    /// Our tables: `inet wilife`, and `bridge wilife` while cameras are configured.
    pub tables: Vec<&'static str>,
    /// Every one of `tables` is in the kernel.
    pub table_present: bool,
    pub connmark: String,
    pub last_reconcile: Option<Reconcile>,
    /// Times the table was found missing or altered and restored.
    pub restores: u64,
    pub fw4_include: Fw4Include,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    pub path: String,
    /// The last SIGHUP reload that was refused, if the newest one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForwardStatus {
    #[serde(flatten)]
    pub forward: Forward,
    pub protocol: &'static str,
    pub connections: u64,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Wan {
    /// The logical network (netifd) the WAN device belongs to.
    pub network: String,
    /// null: the network has no device now (down, unknown).
    pub device: Option<String>,
    /// The device exists and is operationally up (null: no such device).
    pub up: Option<bool>,
    pub ipv4: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub api_version: u32,
    pub version: &'static str,
    pub uptime_s: u64,
    pub enabled: bool,
    pub mode: DirectAccess,
    pub wan: Wan,
    pub lan_devices: Vec<String>,
    pub forwards: Vec<ForwardStatus>,
    pub firewall: FirewallHealth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upnp: Option<UpnpStatus>,
    pub upstream: UpstreamStatus,
    pub config: ConfigStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpnpStatus {
    pub uuid: String,
    pub description_port: u16,
    pub mappings: usize,
    pub subscriptions: usize,
}

/// One decision of the IGD: a grant, a refusal (with the UPnP error and the reason), a removal.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Unix seconds.
    pub at: u64,
    pub client: Ipv4Addr,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_port: Option<u16>,
    /// granted, refused, removed, expired.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    pub reason: String,
}

impl Decision {
    pub fn refused(client: Ipv4Addr, action: &str, port: Option<u16>, r: &Refusal) -> Decision {
        Decision {
            at: crate::clock::unix_now(),
            client,
            action: action.to_string(),
            external_port: port,
            result: "refused",
            error_code: Some(r.error.code()),
            reason: r.reason.clone(),
        }
    }
    pub fn done(
        client: Ipv4Addr,
        action: &str,
        port: u16,
        result: &'static str,
        reason: String,
    ) -> Decision {
        Decision {
            at: crate::clock::unix_now(),
            client,
            action: action.to_string(),
            external_port: Some(port),
            result,
            error_code: None,
            reason,
        }
    }
}

/// A mapping as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MappingStatus {
    pub protocol: &'static str,
    pub external_port: u16,
    pub internal_client: Ipv4Addr,
    pub internal_port: u16,
    pub owner: String,
    pub description: String,
    pub enabled: bool,
    /// Seconds left; null: until removed.
    pub lease_left_s: Option<u64>,
    pub age_s: u64,
    pub igd_version: u8,
    pub connections: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// The mappings with their live counters.
pub fn mapping_statuses(
    mappings: &[Mapping],
    counters: Option<&BTreeMap<String, Counts>>,
    now: u64,
) -> Vec<MappingStatus> {
    mappings
        .iter()
        .map(|m| {
            let f = m.forward();
            let get = |name: String| {
                counters
                    .and_then(|c| c.get(&name))
                    .copied()
                    .unwrap_or_default()
            };
            let traffic = get(f.traffic_counter());
            MappingStatus {
                protocol: "TCP",
                external_port: m.external_port,
                internal_client: m.internal_client,
                internal_port: m.internal_port,
                owner: m.owner.clone(),
                description: m.description.clone(),
                enabled: m.enabled,
                lease_left_s: m.expires.map(|e| e.saturating_sub(now)),
                age_s: now.saturating_sub(m.created),
                igd_version: m.igd_version,
                connections: get(f.conns_counter()).packets,
                packets: traffic.packets,
                bytes: traffic.bytes,
            }
        })
        .collect()
}

/// What the state owner knows; the API adds live counters and uptime when it answers.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub started: std::time::Instant,
    pub config: Config,
    pub forwards: Vec<Forward>,
    pub facts: NetFacts,
    /// The UPnP mappings in force, in port order.
    pub mappings: Vec<Mapping>,
    /// The IGD's identity and state, when it runs.
    pub upnp: Option<UpnpStatus>,
    pub table_present: bool,
    pub last_reconcile: Option<Reconcile>,
    pub restores: u64,
    pub fw4_include: Fw4Include,
    pub reload_error: Option<String>,
    /// The last rtnetlink dump (links, addresses, neighbours, bridge FDB).
    pub net: crate::net::NetState,
    pub dhcp_leases: Vec<crate::net::dhcp::Lease>,
    /// The kernel refused `table bridge wilife` (no nftables bridge family); the rest is in force.
    pub bridge_error: Option<String>,
    /// The mappings could not be written to the state directory (full, read-only): new grants are
    /// refused until it works again.
    pub state_error: Option<String>,
    /// What the gateway upstream forwards for us (double NAT).
    pub upstream: UpstreamStatus,
    /// The last end-to-end probe (the probe thread's).
    pub probe: Option<crate::probe::Report>,
}

impl Snapshot {
    /// The address the internet sees (what GetExternalIPAddress says): the gateway's external
    /// address while it forwards ports for us (double NAT), else the WAN's own.
    pub fn external_ipv4(&self) -> Option<Ipv4Addr> {
        let up = &self.upstream;
        match &up.standing {
            Standing::Mapping {
                external_address, ..
            } if up.idle.is_none() && !up.mappings.is_empty() => Some(*external_address),
            _ => self.facts.wan_ipv4.first().copied(),
        }
    }

    /// What is known before the first reading of the network and the first apply.
    pub fn new(config: Config, fw4_include: Fw4Include) -> Snapshot {
        let mode = config.upstream.mode;
        Snapshot {
            started: std::time::Instant::now(),
            config,
            forwards: Vec::new(),
            facts: NetFacts::default(),
            mappings: Vec::new(),
            upnp: None,
            table_present: false,
            last_reconcile: None,
            restores: 0,
            fw4_include,
            reload_error: None,
            net: crate::net::NetState::default(),
            dhcp_leases: Vec::new(),
            bridge_error: None,
            state_error: None,
            upstream: UpstreamStatus::initial(mode),
            probe: None,
        }
    }

    /// The status document with what was just read from the kernel: whether the table is there and its
    /// counters (`None`: the kernel could not be asked; the snapshot's knowledge is used).
    pub fn status(&self, live: Option<(bool, &BTreeMap<String, Counts>)>) -> Status {
        let counters = live.map(|l| l.1);
        let get = |name: String| {
            counters
                .and_then(|c| c.get(&name))
                .copied()
                .unwrap_or_default()
        };
        Status {
            api_version: API_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: self.started.elapsed().as_secs(),
            enabled: self.config.enabled,
            mode: self.config.direct_access,
            wan: Wan {
                network: self.config.networks.wan_network.clone(),
                device: self.config.wan_device.clone(),
                up: self
                    .config
                    .wan_device
                    .as_deref()
                    .and_then(|d| self.net.link_up(d)),
                ipv4: self.facts.wan_ipv4.clone(),
            },
            lan_devices: self.config.lan_devices.clone(),
            forwards: self
                .forwards
                .iter()
                .map(|f| {
                    let traffic = get(f.traffic_counter());
                    ForwardStatus {
                        forward: f.clone(),
                        protocol: "tcp",
                        connections: get(f.conns_counter()).packets,
                        packets: traffic.packets,
                        bytes: traffic.bytes,
                    }
                })
                .collect(),
            upnp: self.upnp.clone(),
            upstream: self.upstream.clone(),
            firewall: FirewallHealth {
                table: "inet wilife",
                tables: if self.config.enabled && !self.config.cameras.is_empty() {
                    vec!["inet wilife", "bridge wilife"]
                } else {
                    vec!["inet wilife"]
                },
                table_present: live.map_or(self.table_present, |l| l.0),
                connmark: format!("0x{:08x}", self.config.connmark),
                last_reconcile: self.last_reconcile.clone(),
                restores: self.restores,
                fw4_include: self.fw4_include.clone(),
            },
            config: ConfigStatus {
                path: self.config.path.display().to_string(),
                reload_error: self.reload_error.clone(),
            },
        }
    }

    /// Problems that make the agent unhealthy, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.config.enabled {
            return p;
        }
        match &self.last_reconcile {
            None => p.push("the firewall has not been set up yet".to_string()),
            Some(r) if r.result != "ok" => p.push(format!(
                "the last firewall update failed: {}",
                r.error.clone().unwrap_or_default()
            )),
            Some(_) => {}
        }
        if !self.table_present {
            p.push("table inet wilife is not in the kernel".into());
        }
        if self.fw4_include.in_fw4_ruleset == Some(false) {
            p.push("fw4's forward chain does not accept wilife-marked flows: is the fw4 include installed?".into());
        }
        if let Some(e) = &self.bridge_error {
            p.push(format!(
                "camera rules between bridge ports are not in force (install kmod-nft-bridge): {e}"
            ));
        }
        if let Some(e) = &self.state_error {
            p.push(format!(
                "the mappings cannot be saved ({e}): new ones are refused until the state directory is writable"
            ));
        }
        p
    }
}
