//! The verdict: can direct remote viewing work from here, and if not, why — as machine-readable reasons
//! and one plain sentence. Pure: the published snapshot in, the verdict out.

use crate::config::{CommandCenter, DirectAccess};
use crate::net::{self, wan_address_kind, WanAddressKind};
use crate::status::Snapshot;
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
}

/// The verdict for the state in `snap` at `now`.
pub fn diagnose(snap: &Snapshot, now: SystemTime) -> Diagnosis {
    let c = &snap.config;
    let mut reasons = Vec::new();
    let mut block = |code, message: String| {
        reasons.push(Reason {
            code,
            severity: Severity::Blocking,
            message,
        })
    };
    if !c.enabled {
        block(
            "agent_disabled",
            "wilife-agent is disabled in its configuration (option enabled '0').".into(),
        );
    } else if c.direct_access == DirectAccess::Off {
        block(
            "direct_access_off",
            "Direct access is off in the configuration (option direct_access 'off').".into(),
        );
    }
    let wan_network = &c.networks.wan_network;
    let dev = c.wan_device.as_deref();
    let up = dev.and_then(|d| snap.net.link_up(d));
    let dev_name = dev.unwrap_or("?");
    let kinds: Vec<WanAddressKind> = snap
        .facts
        .wan_ipv4
        .iter()
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
    let first = snap.facts.wan_ipv4.first().copied();
    let ports = c
        .direct
        .port_ranges()
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    match up {
        None => block(
            "wan_missing",
            match dev {
                Some(d) => format!("The WAN device {d} does not exist."),
                None => format!(
                    "The WAN network '{wan_network}' has no device: it is down or unknown to netifd (or set option wan_device)."
                ),
            },
        ),
        Some(false) => block("wan_down", format!("The WAN link {dev_name} is down.")),
        Some(true) => {}
    }
    match (best, first) {
        (None, _) | (_, None) => {
            if up != Some(false) {
                block("wan_no_address", format!("The WAN device {dev_name} has no IPv4 address."));
            }
        }
        (Some(WanAddressKind::Private), Some(a)) => block(
            "wan_private",
            format!(
                "The WAN address {a} is private (RFC 1918): another router sits between this one and the internet (double NAT). Direct mode works only if that router forwards TCP {ports} to {a} too; otherwise use relay mode."
            ),
        ),
        (Some(WanAddressKind::Cgnat), Some(a)) => block(
            "wan_cgnat",
            format!(
                "The WAN address {a} is in 100.64.0.0/10: the internet provider uses carrier-grade NAT, so nothing from the internet can reach this router. Only relay mode can work."
            ),
        ),
        (Some(WanAddressKind::Unusable), Some(a)) => block(
            "wan_unusable",
            format!("The WAN address {a} cannot be reached from the internet."),
        ),
        (Some(WanAddressKind::Public), _) => {}
    }
    let timeout = Duration::from_secs(c.presence_timeout.into());
    if c.command_centers.is_empty() {
        block(
            "no_command_center",
            "No Command Center is configured (config command_center).".into(),
        );
    } else if !c
        .command_centers
        .iter()
        .any(|cc| command_center_present(snap, cc, now, timeout))
    {
        block(
            "command_center_absent",
            format!(
                "The Command Center PC has not been seen on the network for {} s: is it on and connected?",
                c.presence_timeout
            ),
        );
    }
    if c.enabled && c.direct_access != DirectAccess::Off {
        if !snap.table_present {
            block("firewall_not_applied", "The firewall rules of wilife-agent are not in force (see last_reconcile in /api/v1/status).".into());
        }
        if snap.fw4_include.in_fw4_ruleset == Some(false) {
            block("fw4_include_missing", "firewall4 does not accept the flows wilife-agent grants: its include is missing from fw4's forward chain (reinstall the package, then run fw4 reload).".into());
        }
    }
    let public = snap
        .facts
        .wan_ipv4
        .iter()
        .find(|a| wan_address_kind(**a) == WanAddressKind::Public)
        .copied();
    let external = match (public, snap.forwards.first()) {
        (Some(address), Some(f)) => Some(External {
            address,
            ports: snap
                .forwards
                .iter()
                .map(|f| f.external.to_string())
                .collect(),
            command_center: f.target,
        }),
        _ => None,
    };
    let blocking = reasons.iter().any(|r| r.severity == Severity::Blocking);
    if !blocking && external.is_none() && c.direct_access == DirectAccess::Upnp {
        reasons.push(Reason {
            code: "no_mapping_yet",
            severity: Severity::Warning,
            message: "The Command Center has not asked for a port over UPnP yet; it does when remote viewing is set up in direct mode.".into(),
        });
    }
    let summary = match (&external, reasons.iter().find(|r| r.severity == Severity::Blocking)) {
        (_, Some(r)) => format!("Only relay mode can work: {}", r.message),
        (Some(e), None) => format!(
            "Direct remote viewing can work: the internet reaches {} on TCP {}, forwarded to the Command Center at {}.",
            e.address,
            e.ports.join(", "),
            e.command_center
        ),
        (None, None) => "Direct remote viewing can work once the Command Center maps its port.".into(),
    };
    Diagnosis {
        direct_possible: !blocking,
        mode: if blocking {
            Mode::RelayOnly
        } else {
            Mode::Direct
        },
        summary,
        reasons,
        wan: WanView {
            network: wan_network.clone(),
            device: c.wan_device.clone(),
            up,
            ipv4: snap.facts.wan_ipv4.clone(),
            address_kind: best,
        },
        external,
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
