//! The actions: a checked SOAP call in, output arguments or a refusal out. Reads come from the published
//! state; writes go through `Igd`, whose daemon implementation hands them to the state owner (which runs
//! the policy, installs the rule and persists the table before answering).

use super::description::Service;
use super::error::{Refusal, UpnpError};
use super::leases::Mapping;
use super::policy::{self, AddRequest, Change};
use super::soap::Call;
use super::xml::escape;
use crate::net::sysfs::Link;
use std::net::Ipv4Addr;

/// What the actions need from the running device.
pub trait Igd {
    fn mappings(&self) -> Vec<Mapping>;
    /// Unix seconds.
    fn now(&self) -> u64;
    fn external_ip(&self) -> Option<Ipv4Addr>;
    fn link(&self) -> Link;
    /// Seconds the WAN connection (as far as we know it) has been up.
    fn uptime(&self) -> u64;
    /// Makes a mapping change (the state owner decides it): the mappings granted or removed.
    fn change(&self, change: Change) -> Result<Vec<Mapping>, Refusal>;
    /// A write whose arguments do not decode: it never reaches the state owner, so the IGD keeps the
    /// decision itself.
    fn malformed(&self, call: &Call, refusal: &Refusal);
}

type Outputs = Vec<(&'static str, String)>;

fn bool_text(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// Counters are ui4 in the v1 service: they wrap, as on every IGD.
fn ui4_wrap(n: u64) -> String {
    (n & 0xffff_ffff).to_string()
}

fn entry_outputs(m: &Mapping, now: u64, with_key: bool) -> Outputs {
    let mut out = Vec::new();
    if with_key {
        out.push(("NewRemoteHost", String::new()));
        out.push(("NewExternalPort", m.external_port.to_string()));
        out.push(("NewProtocol", "TCP".to_string()));
    }
    out.push(("NewInternalPort", m.internal_port.to_string()));
    out.push(("NewInternalClient", m.internal_client.to_string()));
    out.push(("NewEnabled", bool_text(m.enabled)));
    out.push(("NewPortMappingDescription", m.description.clone()));
    out.push(("NewLeaseDuration", m.lease_left(now).to_string()));
    out
}

/// The IGD:2 PortMappingList document of GetListOfPortMappings.
fn port_listing(entries: &[&Mapping], now: u64) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPConnection\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
xsi:schemaLocation=\"urn:schemas-upnp-org:gw:WANIPConnection http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd\">",
    );
    for m in entries {
        s.push_str(&format!(
            "<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost><p:NewExternalPort>{}</p:NewExternalPort>\
<p:NewProtocol>TCP</p:NewProtocol><p:NewInternalPort>{}</p:NewInternalPort><p:NewInternalClient>{}</p:NewInternalClient>\
<p:NewEnabled>{}</p:NewEnabled><p:NewDescription>{}</p:NewDescription><p:NewLeaseTime>{}</p:NewLeaseTime></p:PortMappingEntry>",
            m.external_port,
            m.internal_port,
            m.internal_client,
            bool_text(m.enabled),
            escape(&m.description),
            m.lease_left(now)
        ));
    }
    s.push_str("</p:PortMappingList>");
    s
}

fn add_request(call: &Call, requester: Ipv4Addr, any_port: bool) -> Result<AddRequest, Refusal> {
    Ok(AddRequest {
        requester,
        remote_host: call.arg("NewRemoteHost").to_string(),
        external_port: call.ui2("NewExternalPort")?,
        protocol: call.arg("NewProtocol").to_string(),
        internal_port: call.ui2("NewInternalPort")?,
        internal_client: call.arg("NewInternalClient").to_string(),
        enabled: call.boolean("NewEnabled")?,
        description: call.arg("NewPortMappingDescription").to_string(),
        lease: call.ui4("NewLeaseDuration")?,
        any_port,
        version: call.version,
    })
}

/// The mapping change a write action asks for, its arguments decoded; `None` for the other actions.
fn change_of(call: &Call, requester: Ipv4Addr) -> Option<Result<Change, Refusal>> {
    let protocol = || call.arg("NewProtocol").to_string();
    let change = match (call.service, call.action.name) {
        (Service::WanIp, "AddPortMapping") => add_request(call, requester, false).map(Change::Add),
        (Service::WanIp, "AddAnyPortMapping") => {
            add_request(call, requester, true).map(Change::Add)
        }
        (Service::WanIp, "DeletePortMapping") => {
            call.ui2("NewExternalPort").map(|port| Change::Delete {
                requester,
                remote_host: call.arg("NewRemoteHost").to_string(),
                port,
                protocol: protocol(),
            })
        }
        (Service::WanIp, "DeletePortMappingRange") => (|| {
            let start = call.ui2("NewStartPort")?;
            let end = call.ui2("NewEndPort")?;
            call.boolean("NewManage")?;
            Ok(Change::DeleteRange {
                requester,
                start,
                end,
                protocol: protocol(),
            })
        })(),
        _ => return None,
    };
    Some(change)
}

/// Runs one action for `requester` (the TCP peer of the control request).
pub fn handle(igd: &dyn Igd, call: &Call, requester: Ipv4Addr) -> Result<Outputs, Refusal> {
    match change_of(call, requester) {
        Some(Ok(change)) => {
            let done = igd.change(change)?;
            if call.action.name != "AddAnyPortMapping" {
                return Ok(vec![]);
            }
            let m = done
                .first()
                .ok_or_else(|| Refusal::new(UpnpError::ActionFailed, "no mapping was made"))?;
            Ok(vec![("NewReservedPort", m.external_port.to_string())])
        }
        Some(Err(refusal)) => {
            igd.malformed(call, &refusal);
            Err(refusal)
        }
        None => read(igd, call, requester),
    }
}

/// The actions that change nothing: answered from the published state.
fn read(igd: &dyn Igd, call: &Call, requester: Ipv4Addr) -> Result<Outputs, Refusal> {
    match call.service {
        Service::WanIp => connection(igd, call, requester),
        Service::CommonIf => link(igd, call),
    }
}

/// WANIPConnection's reads: the connection and the mapping table.
fn connection(igd: &dyn Igd, call: &Call, requester: Ipv4Addr) -> Result<Outputs, Refusal> {
    let now = igd.now();
    let name = call.action.name;
    match name {
        "GetExternalIPAddress" => match igd.external_ip() {
            Some(ip) => Ok(vec![("NewExternalIPAddress", ip.to_string())]),
            None => Err(Refusal::new(
                UpnpError::ActionFailed,
                "the WAN device has no IPv4 address",
            )),
        },
        "GetStatusInfo" => {
            let connected = igd.external_ip().is_some() && igd.link().up;
            Ok(vec![
                (
                    "NewConnectionStatus",
                    if connected {
                        "Connected"
                    } else {
                        "Disconnected"
                    }
                    .into(),
                ),
                ("NewLastConnectionError", "ERROR_NONE".into()),
                (
                    "NewUptime",
                    if connected { igd.uptime() } else { 0 }.to_string(),
                ),
            ])
        }
        "GetConnectionTypeInfo" => Ok(vec![
            ("NewConnectionType", "IP_Routed".into()),
            ("NewPossibleConnectionTypes", "IP_Routed".into()),
        ]),
        "GetNATRSIPStatus" => Ok(vec![
            ("NewRSIPAvailable", "0".into()),
            ("NewNATEnabled", "1".into()),
        ]),
        "SetConnectionType" | "RequestConnection" | "ForceTermination" => Err(Refusal::new(
            UpnpError::ActionNotAuthorized,
            format!("{name}: the WAN connection is OpenWrt's to manage, not a client's"),
        )),
        "GetGenericPortMappingEntry" => {
            let index = call.ui2("NewPortMappingIndex")?;
            let mappings = igd.mappings();
            match mappings.get(usize::from(index)) {
                Some(m) => Ok(entry_outputs(m, now, true)),
                None => Err(Refusal::new(
                    UpnpError::SpecifiedArrayIndexInvalid,
                    format!(
                        "index {index} is past the last of {} mapping(s)",
                        mappings.len()
                    ),
                )),
            }
        }
        "GetSpecificPortMappingEntry" => {
            let port = call.ui2("NewExternalPort")?;
            let proto = policy::protocol(call.arg("NewProtocol"))?;
            let mappings = igd.mappings();
            let wildcard = matches!(call.arg("NewRemoteHost").trim(), "" | "*" | "0.0.0.0");
            match mappings
                .iter()
                .find(|m| m.external_port == port && proto == "TCP" && wildcard)
            {
                Some(m) => Ok(entry_outputs(m, now, false)),
                None => Err(Refusal::new(
                    UpnpError::NoSuchEntryInArray,
                    format!("no {proto} mapping of port {port}"),
                )),
            }
        }
        "GetListOfPortMappings" => {
            let start = call.ui2("NewStartPort")?;
            let end = call.ui2("NewEndPort")?;
            let manage = call.boolean("NewManage")?;
            let limit = call.ui2("NewNumberOfPorts")?;
            let mappings = igd.mappings();
            let found = policy::list(
                &mappings,
                requester,
                start,
                end,
                call.arg("NewProtocol"),
                manage,
                limit,
            )?;
            Ok(vec![("NewPortListing", port_listing(&found, now))])
        }
        _ => not_implemented(name),
    }
}

/// WANCommonInterfaceConfig's reads: the WAN link and its counters.
fn link(igd: &dyn Igd, call: &Call) -> Result<Outputs, Refusal> {
    let name = call.action.name;
    match name {
        "GetCommonLinkProperties" => {
            let link = igd.link();
            let rate = link.speed_bps.min(u64::from(u32::MAX)).to_string();
            Ok(vec![
                ("NewWANAccessType", "Ethernet".into()),
                ("NewLayer1UpstreamMaxBitRate", rate.clone()),
                ("NewLayer1DownstreamMaxBitRate", rate),
                (
                    "NewPhysicalLinkStatus",
                    if link.up { "Up" } else { "Down" }.into(),
                ),
            ])
        }
        "GetTotalBytesSent" => Ok(vec![("NewTotalBytesSent", ui4_wrap(igd.link().tx_bytes))]),
        "GetTotalBytesReceived" => Ok(vec![(
            "NewTotalBytesReceived",
            ui4_wrap(igd.link().rx_bytes),
        )]),
        "GetTotalPacketsSent" => Ok(vec![(
            "NewTotalPacketsSent",
            ui4_wrap(igd.link().tx_packets),
        )]),
        "GetTotalPacketsReceived" => Ok(vec![(
            "NewTotalPacketsReceived",
            ui4_wrap(igd.link().rx_packets),
        )]),
        _ => not_implemented(name),
    }
}

fn not_implemented(name: &str) -> Result<Outputs, Refusal> {
    Err(Refusal::new(
        UpnpError::InvalidAction,
        format!("{name} is not implemented"),
    ))
}

#[cfg(test)]
mod tests;
