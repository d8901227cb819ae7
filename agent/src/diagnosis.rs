//! The verdict: can direct remote viewing work from here, and if not, why — as machine-readable reasons
//! and one plain sentence. Pure: the published snapshot in, the verdict out.

use crate::config::{CommandCenter, DirectAccess};
use crate::net::{self, wan_address_kind, WanAddressKind};
use crate::probe::Hop;
use crate::status::Snapshot;
use crate::upstream::cascade::{Idle, Standing};
use serde::Serialize;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Direct mode cannot work while this holds.
    Blocking,
    /// Direct mode may work, but something needs attention.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Direct,
    RelayOnly,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub direct_possible: bool,
    pub mode: Mode,
    /// One sentence for a person.
    pub summary: String,
    /// Blocking reasons first.
    pub reasons: Vec<Reason>,
    pub wan: WanView,
    /// Where the internet reaches the Command Center, when it does.
    pub external: Option<External>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WanView {
    /// The logical network (netifd) the WAN device belongs to.
    pub network: String,
    /// null: the network has no device now (down, unknown).
    pub device: Option<String>,
    pub up: Option<bool>,
    pub ipv4: Vec<Ipv4Addr>,
    /// The best of the addresses: public, private (double NAT), cgnat, unusable; null: none.
    pub address_kind: Option<WanAddressKind>,
}

#[derive(Debug, Clone, Serialize)]
pub struct External {
    pub address: Ipv4Addr,
    pub ports: Vec<String>,
    pub command_center: Ipv4Addr,
    /// Through the gateway upstream (double NAT), when it forwards for us.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// The gateway that forwards the internet's connections to this router.
#[derive(Debug, Clone, Serialize)]
pub struct Via {
    pub gateway: Ipv4Addr,
    pub protocol: crate::config::UpstreamProtocol,
}

/// The verdict for the state in `snap` at `now`: every reason found, blocking ones first.
pub fn diagnose(snap: &Snapshot, now: SystemTime) -> Diagnosis {
    let c = &snap.config;
    let wan = wan_view(snap);
    let mut reasons = config_reasons(snap);
    reasons.extend(wan_reasons(snap, &wan));
    reasons.extend(command_center_reasons(snap, now));
    reasons.extend(firewall_reasons(snap));
    reasons.extend(probe_reasons(snap));
    reasons.extend(switching_reasons(snap));
    let external = external(snap);
    let blocking = reasons.iter().any(|r| r.severity == Severity::Blocking);
    if !blocking && external.is_none() && c.direct_access == DirectAccess::Upnp {
        reasons.push(warning(
            "no_mapping_yet",
            "The Command Center has not asked for a port over UPnP yet; it does when remote viewing is set up in direct mode.".into(),
        ));
    }
    Diagnosis {
        direct_possible: !blocking,
        mode: if blocking {
            Mode::RelayOnly
        } else {
            Mode::Direct
        },
        summary: summary(external.as_ref(), &reasons),
        reasons,
        wan,
        external,
    }
}

fn blocking(code: &'static str, message: String) -> Reason {
    Reason {
        code,
        severity: Severity::Blocking,
        message,
    }
}

fn warning(code: &'static str, message: String) -> Reason {
    Reason {
        code,
        severity: Severity::Warning,
        message,
    }
}

/// The configuration itself rules direct mode out.
fn config_reasons(snap: &Snapshot) -> Vec<Reason> {
    let c = &snap.config;
    if !c.enabled {
        vec![blocking(
            "agent_disabled",
            "wilife-agent is disabled in its configuration (option enabled '0').".into(),
        )]
    } else if c.direct_access == DirectAccess::Off {
        vec![blocking(
            "direct_access_off",
            "Direct access is off in the configuration (option direct_access 'off').".into(),
        )]
    } else {
        Vec::new()
    }
}

/// The WAN as the verdict sees it: device, link, addresses and the best kind among them.
fn wan_view(snap: &Snapshot) -> WanView {
    let c = &snap.config;
    let kinds: Vec<WanAddressKind> = (snap.facts.wan_ipv4.iter())
        .map(|a| wan_address_kind(*a))
        .collect();
    let best = [
        WanAddressKind::Public,
        WanAddressKind::Private,
        WanAddressKind::Cgnat,
        WanAddressKind::Unusable,
    ]
    .into_iter()
    .find(|k| kinds.contains(k));
    WanView {
        network: c.networks.wan_network.clone(),
        device: c.wan_device.clone(),
        up: c.wan_device.as_deref().and_then(|d| snap.net.link_up(d)),
        ipv4: snap.facts.wan_ipv4.clone(),
        address_kind: best,
    }
}

/// A WAN that is missing, down, without an address, or behind another NAT.
fn wan_reasons(snap: &Snapshot, wan: &WanView) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let dev_name = wan.device.as_deref().unwrap_or("?");
    match wan.up {
        None => reasons.push(blocking(
            "wan_missing",
            match &wan.device {
                Some(d) => format!("The WAN device {d} does not exist."),
                None => format!(
                    "The WAN network '{}' has no device: it is down or unknown to netifd (or set option wan_device).",
                    wan.network
                ),
            },
        )),
        Some(false) => reasons.push(blocking("wan_down", format!("The WAN link {dev_name} is down."))),
        Some(true) => {}
    }
    let ports = (snap.config.direct.port_ranges().iter())
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    let reason = match (wan.address_kind, wan.ipv4.first()) {
        (None, _) | (_, None) => (wan.up != Some(false)).then(|| {
            blocking(
                "wan_no_address",
                format!("The WAN device {dev_name} has no IPv4 address."),
            )
        }),
        (Some(kind @ (WanAddressKind::Private | WanAddressKind::Cgnat)), Some(a)) => {
            behind_nat(snap, kind, *a, &ports)
        }
        (Some(WanAddressKind::Unusable), Some(a)) => Some(blocking(
            "wan_unusable",
            format!("The WAN address {a} cannot be reached from the internet."),
        )),
        (Some(WanAddressKind::Public), _) => None,
    };
    reasons.extend(reason);
    reasons
}

/// A WAN address behind another NAT: direct through the gateway's forwards (issue 16), or why not.
fn behind_nat(snap: &Snapshot, kind: WanAddressKind, a: Ipv4Addr, ports: &str) -> Option<Reason> {
    let up = &snap.upstream;
    let private = kind == WanAddressKind::Private;
    let (code, nat) = if private {
        ("wan_private", format!("The WAN address {a} is private (RFC 1918): another router sits between this one and the internet (double NAT)."))
    } else {
        ("wan_cgnat", format!("The WAN address {a} is in 100.64.0.0/10: the internet provider uses carrier-grade NAT."))
    };
    let gw = up
        .gateway
        .map_or("the gateway".to_string(), |g| format!("the gateway {g}"));
    if up.carries_all() {
        return match &up.standing {
            Standing::Mapping { external_address, .. }
                if wan_address_kind(*external_address) != WanAddressKind::Public =>
            {
                Some(blocking("upstream_behind_nat", format!("{nat} {gw} forwards TCP {ports} to it, but its own external address {external_address} is not public either (triple NAT): only relay mode can work.")))
            }
            _ => None,
        };
    }
    let missing = join(&up.missing);
    let by_hand = if private {
        format!("forward TCP {ports} to {a} on it by hand, or use relay mode")
    } else {
        "only relay mode can work".to_string()
    };
    let (code, message) = match (up.idle, &up.standing) {
        (Some(Idle::Off), _) => (code, format!("{nat} The agent does not ask {gw} to forward the ports (config upstream mode is off): {by_hand}.")),
        (Some(Idle::NoGateway), _) => (code, format!("{nat} There is no default route through the WAN, so no gateway to ask for forwards: {by_hand}.")),
        (Some(_), _) => (code, format!("{nat} Once a port is in force here, the agent asks {gw} to forward it too (PCP, NAT-PMP); otherwise {by_hand}.")),
        (None, _) if !up.taken.is_empty() => ("upstream_port_taken", format!("{nat} {gw} does not give TCP {} to this router (another host has it, a forward of this router's former address has not run out, or it is not allowed there): new mappings of it are refused here, so the Command Center moves to another port.", join(&up.taken))),
        (None, Standing::NoService) => ("upstream_no_service", format!("{nat} {gw} answers neither PCP nor NAT-PMP (switch on its UPnP/NAT-PMP/PCP), so it does not forward TCP {missing}: {by_hand}.")),
        (None, Standing::Refused { protocol, code, name }) => ("upstream_refused", format!("{nat} {gw} refused to forward TCP {missing} ({} result {code}, {name}): {by_hand}.", protocol.label())),
        (None, _) => ("upstream_pending", format!("{nat} Asking {gw} to forward TCP {missing} to {a}.")),
    };
    Some(blocking(code, message))
}

fn join(ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    ports.join(", ")
}

/// No Command Center configured, or none seen lately.
fn command_center_reasons(snap: &Snapshot, now: SystemTime) -> Vec<Reason> {
    let c = &snap.config;
    let timeout = Duration::from_secs(c.presence_timeout.into());
    let present = |cc: &CommandCenter| command_center_present(snap, cc, now, timeout);
    if c.command_centers.is_empty() {
        vec![blocking(
            "no_command_center",
            "No Command Center is configured (config command_center).".into(),
        )]
    } else if !c.command_centers.iter().any(present) {
        vec![blocking(
            "command_center_absent",
            format!(
                "The Command Center PC has not been seen on the network for {} s: is it on and connected?",
                c.presence_timeout
            ),
        )]
    } else {
        Vec::new()
    }
}

/// The router's own connections along a viewer's path: the Command Center's port found no listener
/// or was dropped (a PC firewall), or the public address did not lead there — every connection from
/// the internet would fare the same (blocking); or the gateway upstream did not loop a connection
/// back, which many gateways never do (a warning: only a viewer outside can tell).
fn probe_reasons(snap: &Snapshot) -> Vec<Reason> {
    let Some(p) = &snap.probe else {
        return Vec::new();
    };
    let (Some(hop), Some(problem)) = (p.broken_hop, p.problem.as_deref()) else {
        return Vec::new();
    };
    let mut message: Vec<char> = problem.chars().collect();
    message[0] = message[0].to_ascii_uppercase();
    let message = format!("{}.", message.into_iter().collect::<String>());
    vec![match hop {
        Hop::CommandCenter => blocking("command_center_not_answering", message),
        Hop::PublicAddress => blocking("forward_not_answering", message),
        Hop::Gateway => warning("gateway_path_unconfirmed", message),
    }]
}

/// Our tables, or fw4's acceptance of what they grant, are not in force.
fn firewall_reasons(snap: &Snapshot) -> Vec<Reason> {
    let c = &snap.config;
    let mut reasons = Vec::new();
    if !c.enabled || c.direct_access == DirectAccess::Off {
        return reasons;
    }
    if !snap.table_present {
        reasons.push(blocking("firewall_not_applied", "The firewall rules of wilife-agent are not in force (see last_reconcile in /api/v1/status).".into()));
    }
    if snap.fw4_include.in_fw4_ruleset == Some(false) {
        reasons.push(blocking("fw4_include_missing", "firewall4 does not accept the flows wilife-agent grants: its include is missing from fw4's forward chain (reinstall the package, then run fw4 reload).".into()));
    }
    reasons
}

/// Camera traffic the camera rules cannot see (a hardware switch, a segment of its own): one warning
/// per camera, its worst path.
fn switching_reasons(snap: &Snapshot) -> Vec<Reason> {
    use crate::net::switching::{report, Verdict};
    if !snap.config.enabled {
        return Vec::new();
    }
    (report(&snap.config, &snap.net).iter())
        .filter_map(|cam| cam.worst())
        .filter_map(|p| {
            let code = match p.verdict {
                Verdict::BypassedBySwitch => "camera_rules_bypassed",
                Verdict::SameSegment => "camera_same_segment",
                Verdict::Enforced | Verdict::Unknown => return None,
            };
            Some(warning(code, p.message.clone()))
        })
        .collect()
}

/// Where the internet reaches the Command Center: a public WAN address and the forwards in force, or
/// the gateway's external address and ports while it forwards every one of them to us.
fn external(snap: &Snapshot) -> Option<External> {
    let first = snap.forwards.first()?;
    let public = (snap.facts.wan_ipv4.iter())
        .find(|a| wan_address_kind(**a) == WanAddressKind::Public)
        .copied();
    if let Some(address) = public {
        return Some(External {
            address,
            ports: snap
                .forwards
                .iter()
                .map(|f| f.external.to_string())
                .collect(),
            command_center: first.target,
            via: None,
        });
    }
    let up = &snap.upstream;
    match (&up.standing, up.gateway) {
        (
            Standing::Mapping {
                protocol,
                external_address,
            },
            Some(gateway),
        ) if up.carries_all() && wan_address_kind(*external_address) == WanAddressKind::Public => {
            Some(External {
                address: *external_address,
                ports: up
                    .mappings
                    .iter()
                    .map(|m| m.external_port.to_string())
                    .collect(),
                command_center: first.target,
                via: Some(Via {
                    gateway,
                    protocol: *protocol,
                }),
            })
        }
        _ => None,
    }
}

/// One sentence: the first blocking reason, or where the internet gets in.
fn summary(external: Option<&External>, reasons: &[Reason]) -> String {
    match (external, reasons.iter().find(|r| r.severity == Severity::Blocking)) {
        (_, Some(r)) => format!("Only relay mode can work: {}", r.message),
        (Some(e), None) => format!(
            "Direct remote viewing can work: the internet reaches {} on TCP {}, forwarded{} to the Command Center at {}.",
            e.address,
            e.ports.join(", "),
            e.via.as_ref().map_or(String::new(), |v| format!(
                " by the gateway {} ({}) and this router",
                v.gateway,
                v.protocol.label()
            )),
            e.command_center
        ),
        (None, None) => "Direct remote viewing can work once the Command Center maps its port.".into(),
    }
}

/// A Command Center is present when its MAC (configured, or the neighbour table's for its IP) was seen
/// within the timeout.
pub fn command_center_present(
    snap: &Snapshot,
    cc: &CommandCenter,
    now: SystemTime,
    timeout: Duration,
) -> bool {
    let mac = snap.net.command_center_mac(cc);
    mac.is_some_and(|m| net::presence(&snap.net, m, now, timeout).present)
}

#[cfg(test)]
mod tests;
