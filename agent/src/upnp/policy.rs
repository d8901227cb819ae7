//! What the IGD may grant, and nothing more: pure functions from (config, facts, current mappings,
//! request) to a new mapping table or a refusal with its UPnP error and reason.
//!
//! Scope: TCP only; external ports only in the direct-mode range or the custom port; remote host
//! wildcard only; the internal client is the requester itself (secure mode) and an authorised Command
//! Center (by IP and/or MAC) — or any LAN host if the user chose so; internal port = external port unless
//! `same_port` is off; a port held by another client is a conflict; a cap per client.

use super::error::{Refusal, UpnpError};
use super::leases::Mapping;
use crate::config::{Config, DirectAccess};
use crate::consts::IGD2_MAX_LEASE;
use crate::firewall::static_forwards;
use crate::net::NetState;
use std::net::Ipv4Addr;

/// What the policy needs to know about the network.
pub struct Scope<'a> {
    pub config: &'a Config,
    /// The LAN subnets (network, prefix length).
    pub lan_nets: &'a [(Ipv4Addr, u8)],
    /// The owner's last reading of the network: its neighbour table tells the MAC behind a LAN address.
    pub net: &'a NetState,
    /// Ports the gateway upstream forwards to someone else (double NAT): the internet cannot reach a
    /// mapping of them here, so they are refused to new ones.
    pub taken_upstream: &'a [u16],
}

/// An AddPortMapping / AddAnyPortMapping call, arguments as the client sent them (strings already
/// checked for syntax by the SOAP layer, numbers parsed).
#[derive(Debug, Clone)]
pub struct AddRequest {
    pub requester: Ipv4Addr,
    pub remote_host: String,
    pub external_port: u16,
    pub protocol: String,
    pub internal_port: u16,
    pub internal_client: String,
    pub enabled: bool,
    pub description: String,
    pub lease: u32,
    /// AddAnyPortMapping: the IGD picks a free external port if the asked one is not available.
    pub any_port: bool,
    /// IGD version of the service the call came in on (lease semantics differ).
    pub version: u8,
}

/// A change of the mapping table: what the IGD, the API and the lease clock ask of the state owner, which
/// runs it through `decide` and commits the result.
#[derive(Debug, Clone)]
pub enum Change {
    Add(AddRequest),
    Delete {
        requester: Ipv4Addr,
        remote_host: String,
        port: u16,
        protocol: String,
    },
    DeleteRange {
        requester: Ipv4Addr,
        start: u16,
        end: u16,
        protocol: String,
    },
    /// The administrator (API token) removes a mapping, whoever holds it.
    Remove {
        port: u16,
    },
    /// The IGD takes back a grant the gateway upstream does not forward (another host has the port
    /// there): the internet would not reach it, so the client is told ConflictInMappingEntry.
    TakeBack {
        port: u16,
    },
    /// The leases that have ended go.
    Expire,
}

impl Change {
    /// The action's name in decisions and logs.
    pub fn action(&self) -> &'static str {
        match self {
            Change::Add(r) if r.any_port => "AddAnyPortMapping",
            Change::Add(_) => "AddPortMapping",
            Change::Delete { .. } => "DeletePortMapping",
            Change::DeleteRange { .. } => "DeletePortMappingRange",
            Change::Remove { .. } => "API delete",
            Change::TakeBack { .. } => "taken upstream",
            Change::Expire => "lease",
        }
    }

    /// Who asks: the LAN client, or the router itself for the administrator and the clock.
    pub fn requester(&self) -> Ipv4Addr {
        match self {
            Change::Add(r) => r.requester,
            Change::Delete { requester, .. } | Change::DeleteRange { requester, .. } => *requester,
            Change::Remove { .. } | Change::TakeBack { .. } | Change::Expire => Ipv4Addr::LOCALHOST,
        }
    }

    /// The external port named in the request (the first of a range).
    pub fn port(&self) -> Option<u16> {
        match self {
            Change::Add(r) => Some(r.external_port),
            Change::Delete { port, .. } | Change::Remove { port } | Change::TakeBack { port } => {
                Some(*port)
            }
            Change::DeleteRange { start, .. } => Some(*start),
            Change::Expire => None,
        }
    }
}

/// What a change does to the mapping(s) it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Granted,
    Removed,
    Expired,
}

/// A change the policy allows: the whole new table, and the mappings it grants or takes away.
#[derive(Debug, Clone)]
pub struct Decided {
    pub table: Vec<Mapping>,
    pub affected: Vec<Mapping>,
    pub effect: Effect,
}

/// Decides a change against the current table: the new table, or the refusal with its UPnP error.
pub fn decide(
    scope: &Scope,
    mappings: &[Mapping],
    change: &Change,
    now: u64,
) -> Result<Decided, Refusal> {
    let one = |(table, m)| (table, vec![m]);
    let (table, affected) = match change {
        Change::Add(req) => {
            let (table, m) = add(scope, mappings, req, now)?;
            return Ok(Decided {
                table,
                affected: vec![m],
                effect: Effect::Granted,
            });
        }
        Change::Delete {
            requester,
            remote_host,
            port,
            protocol,
        } => {
            // The same owner check as a grant's: the requester is the Command Center it says it is
            // (its MAC too, where the config binds one), not just a host with its address now.
            authorise(scope, *requester)?;
            one(delete(mappings, *requester, remote_host, *port, protocol)?)
        }
        Change::DeleteRange {
            requester,
            start,
            end,
            protocol,
        } => {
            authorise(scope, *requester)?;
            delete_range(mappings, *requester, *start, *end, protocol)?
        }
        Change::Remove { port } | Change::TakeBack { port } => one(remove(mappings, *port)?),
        Change::Expire => {
            let (gone, kept) = mappings.iter().cloned().partition(|m| m.expired(now));
            return Ok(Decided {
                table: kept,
                affected: gone,
                effect: Effect::Expired,
            });
        }
    };
    Ok(Decided {
        table,
        affected,
        effect: Effect::Removed,
    })
}

/// The longest description kept (the spec sets no limit; a router's memory does).
pub const MAX_DESCRIPTION: usize = 128;

/// A description as it is kept and shown: plain text. Any LAN client chooses it, and it ends up in
/// LuCI, logs and API answers, so control characters and the tag brackets `<` `>` are dropped (defence
/// in depth: every viewer must also insert it as text; "WiLife & co" stays as it is), and it is bounded.
pub fn plain_description(raw: &str) -> String {
    let kept: String = raw
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '<' | '>'))
        .take(MAX_DESCRIPTION)
        .collect();
    if kept.trim().is_empty() {
        "(no description)".into()
    } else {
        kept
    }
}

fn refuse<T>(error: UpnpError, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(error, reason))
}

/// "TCP" or "UDP" (case-insensitive, as clients vary); anything else is not a protocol.
pub fn protocol(p: &str) -> Result<&'static str, Refusal> {
    if p.eq_ignore_ascii_case("TCP") {
        Ok("TCP")
    } else if p.eq_ignore_ascii_case("UDP") {
        Ok("UDP")
    } else {
        refuse(
            UpnpError::InvalidArgs,
            format!("NewProtocol '{p}' is neither TCP nor UDP"),
        )
    }
}

/// Who the requester is, if it may map at all: a Command Center's name, or "LAN host".
pub fn authorise(scope: &Scope, requester: Ipv4Addr) -> Result<String, Refusal> {
    authorise_with(scope, requester, false)
}

/// `unknown_mac_ok`: a host whose MAC the neighbour table does not know (yet, or any more) passes the
/// MAC test. Right for re-checking existing mappings (a stale neighbour entry proves nothing), never for
/// granting new ones.
fn authorise_with(
    scope: &Scope,
    requester: Ipv4Addr,
    unknown_mac_ok: bool,
) -> Result<String, Refusal> {
    if !crate::net::subnet::in_nets(requester, scope.lan_nets) {
        return refuse(
            UpnpError::ActionNotAuthorized,
            format!("{requester} is not on a LAN subnet"),
        );
    }
    let mut mac = None;
    for cc in &scope.config.command_centers {
        let ip_ok = cc.ip.is_none_or(|ip| ip == requester);
        let mac_ok = cc.mac.is_none_or(|want| {
            let have = *mac.get_or_insert_with(|| scope.net.mac_of(requester));
            have == Some(want) || (have.is_none() && unknown_mac_ok)
        });
        if ip_ok && mac_ok {
            return Ok(cc.name.clone());
        }
    }
    if scope.config.upnp.any_lan_host {
        return Ok("LAN host".into());
    }
    let known = match mac.flatten() {
        Some(m) => format!(" (MAC {m})"),
        None => String::new(),
    };
    refuse(
        UpnpError::ActionNotAuthorized,
        format!("{requester}{known} is not an authorised Command Center (config command_center, or upnp.any_lan_host)"),
    )
}

/// External ports the IGD may hand out, ascending.
pub fn allowed_ports(config: &Config) -> Vec<u16> {
    let mut v: Vec<u16> = config
        .direct
        .port_ranges()
        .iter()
        .flat_map(|r| r.first..=r.last)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Ports held by the configuration's own static forwards (mode `static`).
fn static_ports(config: &Config) -> Vec<u16> {
    static_forwards(config)
        .iter()
        .flat_map(|f| f.external.first..=f.external.last)
        .collect()
}

/// The lease granted for a requested duration, as an expiry time (`None`: until removed).
pub fn lease_expiry(config: &Config, version: u8, requested: u32, now: u64) -> Option<u64> {
    let mut lease = match (version, requested) {
        (1, 0) => None,
        (_, 0) => Some(IGD2_MAX_LEASE),
        (1, n) => Some(n),
        (_, n) => Some(n.min(IGD2_MAX_LEASE)),
    };
    if config.upnp.max_lease > 0 {
        lease = Some(lease.map_or(config.upnp.max_lease, |l| l.min(config.upnp.max_lease)));
    }
    lease.map(|l| now + u64::from(l))
}

fn remote_host_wildcard(remote_host: &str) -> Result<(), Refusal> {
    let h = remote_host.trim();
    if h.is_empty() || h == "*" || h == "0.0.0.0" {
        Ok(())
    } else {
        refuse(
            UpnpError::RemoteHostOnlySupportsWildcard,
            format!("remote host '{h}' given; only the wildcard is supported"),
        )
    }
}

/// Decides an add. On success returns the whole new table (a renewal replaces the client's own entry).
fn add(
    scope: &Scope,
    mappings: &[Mapping],
    req: &AddRequest,
    now: u64,
) -> Result<(Vec<Mapping>, Mapping), Refusal> {
    let config = scope.config;
    let client = well_formed(req)?;
    let owner = authorise(scope, req.requester)?;
    if config.direct_access != DirectAccess::Upnp {
        return refuse(
            UpnpError::ConflictWithOtherMechanisms,
            "direct access is not in upnp mode: the ports are forwarded statically",
        );
    }
    let port = if req.any_port {
        any_port(scope, mappings, req, client)?
    } else {
        asked_port(scope, mappings, req, client)?
    };
    let own = mappings
        .iter()
        .filter(|m| m.internal_client == client && m.external_port != port)
        .count();
    if own >= config.upnp.max_per_client {
        return refuse(
            UpnpError::NoPortMapsAvailable,
            format!(
                "{client} holds {own} mapping(s) already, the most one host may (upnp.max_per_client)"
            ),
        );
    }
    let previous = mappings.iter().find(|m| m.external_port == port);
    let mapping = Mapping {
        external_port: port,
        internal_client: client,
        internal_port: req.internal_port,
        description: plain_description(&req.description),
        enabled: req.enabled,
        created: previous.map_or(now, |m| m.created),
        expires: lease_expiry(config, req.version, req.lease, now),
        lease_requested: req.lease,
        igd_version: req.version,
        owner,
    };
    let mut table: Vec<Mapping> = mappings
        .iter()
        .filter(|m| m.external_port != port)
        .cloned()
        .collect();
    table.push(mapping.clone());
    table.sort_by_key(|m| m.external_port);
    Ok((table, mapping))
}

/// The arguments of an add, whoever sends them: TCP, the wildcard remote host, no port wildcards, and
/// an internal client that is the requester itself. The client's address, or the refusal.
fn well_formed(req: &AddRequest) -> Result<Ipv4Addr, Refusal> {
    let proto = protocol(&req.protocol)?;
    remote_host_wildcard(&req.remote_host)?;
    if req.external_port == 0 && !req.any_port {
        return refuse(
            UpnpError::WildCardNotPermittedInExtPort,
            "external port 0 (wildcard) is not permitted",
        );
    }
    if req.internal_port == 0 {
        let error = if req.version >= 2 {
            UpnpError::WildCardNotPermittedInIntPort
        } else {
            UpnpError::InvalidArgs
        };
        return refuse(error, "internal port 0 is not permitted");
    }
    let client: Ipv4Addr = req.internal_client.trim().parse().map_err(|_| {
        Refusal::new(
            UpnpError::InvalidArgs,
            format!(
                "NewInternalClient '{}' is not an IPv4 address",
                req.internal_client
            ),
        )
    })?;
    if proto != "TCP" {
        return refuse(
            UpnpError::ActionNotAuthorized,
            format!("{proto} is not forwarded: WiLife direct mode uses TCP only"),
        );
    }
    if client != req.requester {
        return refuse(
            UpnpError::ActionNotAuthorized,
            format!(
                "{} asked for a mapping to {client}; a host may only map ports to itself",
                req.requester
            ),
        );
    }
    Ok(client)
}

/// Is `port` held by another client's mapping or by a static forward?
fn held_by_other(config: &Config, mappings: &[Mapping], port: u16, client: Ipv4Addr) -> bool {
    mappings
        .iter()
        .any(|m| m.external_port == port && m.internal_client != client)
        || static_ports(config).contains(&port)
}

/// AddAnyPortMapping: the asked port if it can be had; else the client's own mapping to the same
/// internal port (a client that calls AddAny at every start renews instead of piling up); else the
/// first free one.
fn any_port(
    scope: &Scope,
    mappings: &[Mapping],
    req: &AddRequest,
    client: Ipv4Addr,
) -> Result<u16, Refusal> {
    let config = scope.config;
    let allowed = allowed_ports(config);
    let usable = |p: u16| {
        allowed.contains(&p)
            && !held_by_other(config, mappings, p, client)
            && !scope.taken_upstream.contains(&p)
    };
    let own_same = mappings
        .iter()
        .find(|m| m.internal_client == client && m.internal_port == req.internal_port)
        .map(|m| m.external_port)
        .filter(|p| allowed.contains(p));
    let free = |p: u16| usable(p) && !mappings.iter().any(|m| m.external_port == p);
    let wanted = Some(req.external_port).filter(|&p| p != 0 && usable(p));
    wanted
        .or(own_same)
        .or_else(|| allowed.iter().copied().find(|&p| free(p)))
        .ok_or_else(|| {
            Refusal::new(
                UpnpError::NoPortMapsAvailable,
                format!("every direct-mode port ({}) is taken", ports_text(config)),
            )
        })
}

/// AddPortMapping: exactly the asked port, if it is a direct-mode port nobody else holds.
fn asked_port(
    scope: &Scope,
    mappings: &[Mapping],
    req: &AddRequest,
    client: Ipv4Addr,
) -> Result<u16, Refusal> {
    let config = scope.config;
    let p = req.external_port;
    if !allowed_ports(config).contains(&p) {
        return refuse(
            UpnpError::ActionNotAuthorized,
            format!(
                "external port {p} is outside WiLife's direct-mode ports ({})",
                ports_text(config)
            ),
        );
    }
    if let Some(other) = mappings
        .iter()
        .find(|m| m.external_port == p && m.internal_client != client)
    {
        return refuse(
            UpnpError::ConflictInMappingEntry,
            format!(
                "external port {p} is mapped to {} ({}) already",
                other.internal_client, other.owner
            ),
        );
    }
    if scope.taken_upstream.contains(&p) {
        return refuse(
            UpnpError::ConflictInMappingEntry,
            format!("the gateway upstream does not give TCP {p} to this router: the internet cannot reach it here; use another port"),
        );
    }
    if config.upnp.same_port && req.internal_port != p {
        return refuse(
            UpnpError::SamePortValuesRequired,
            format!(
                "internal port {} differs from external port {p} (upnp.same_port is on)",
                req.internal_port
            ),
        );
    }
    Ok(p)
}

fn ports_text(config: &Config) -> String {
    config
        .direct
        .port_ranges()
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decides a DeletePortMapping: the table without the entry, or why not.
fn delete(
    mappings: &[Mapping],
    requester: Ipv4Addr,
    remote_host: &str,
    port: u16,
    proto: &str,
) -> Result<(Vec<Mapping>, Mapping), Refusal> {
    let proto = protocol(proto)?;
    let found = mappings
        .iter()
        .find(|m| m.external_port == port && proto == "TCP");
    let wildcard = remote_host_wildcard(remote_host).is_ok();
    let Some(m) = found.filter(|_| wildcard) else {
        return refuse(
            UpnpError::NoSuchEntryInArray,
            format!("there is no {proto} mapping of port {port}"),
        );
    };
    if m.internal_client != requester {
        return refuse(
            UpnpError::ActionNotAuthorized,
            format!(
                "port {port} belongs to {} ({}); {requester} may not remove it",
                m.internal_client, m.owner
            ),
        );
    }
    remove(mappings, port)
}

/// The administrator's removal (API, with the token): the table without the port's mapping, whoever
/// holds it.
fn remove(mappings: &[Mapping], port: u16) -> Result<(Vec<Mapping>, Mapping), Refusal> {
    let Some(m) = mappings.iter().find(|m| m.external_port == port) else {
        return refuse(
            UpnpError::NoSuchEntryInArray,
            format!("there is no mapping of port {port}"),
        );
    };
    let table = mappings
        .iter()
        .filter(|x| x.external_port != port)
        .cloned()
        .collect();
    Ok((table, m.clone()))
}

/// Decides a DeletePortMappingRange: removes the requester's own mappings in the range.
fn delete_range(
    mappings: &[Mapping],
    requester: Ipv4Addr,
    start: u16,
    end: u16,
    proto: &str,
) -> Result<(Vec<Mapping>, Vec<Mapping>), Refusal> {
    let proto = protocol(proto)?;
    if start > end {
        return refuse(
            UpnpError::InconsistentParameters,
            format!("start port {start} is after end port {end}"),
        );
    }
    let (gone, kept): (Vec<Mapping>, Vec<Mapping>) = mappings.iter().cloned().partition(|m| {
        proto == "TCP" && (start..=end).contains(&m.external_port) && m.internal_client == requester
    });
    if gone.is_empty() {
        return refuse(
            UpnpError::PortMappingNotFound,
            format!("{requester} has no {proto} mapping in {start}-{end}"),
        );
    }
    Ok((kept, gone))
}

/// GetListOfPortMappings: the entries in range (only the requester's own unless `manage`), at most
/// `limit` (0: all).
pub fn list<'m>(
    mappings: &'m [Mapping],
    requester: Ipv4Addr,
    start: u16,
    end: u16,
    proto: &str,
    manage: bool,
    limit: u16,
) -> Result<Vec<&'m Mapping>, Refusal> {
    let proto = protocol(proto)?;
    if start > end {
        return refuse(
            UpnpError::InconsistentParameters,
            format!("start port {start} is after end port {end}"),
        );
    }
    let found: Vec<&Mapping> = mappings
        .iter()
        .filter(|m| proto == "TCP" && (start..=end).contains(&m.external_port))
        .filter(|m| manage || m.internal_client == requester)
        .take(if limit == 0 {
            usize::MAX
        } else {
            usize::from(limit)
        })
        .collect();
    if found.is_empty() {
        return refuse(
            UpnpError::PortMappingNotFound,
            format!("no {proto} mapping in {start}-{end}"),
        );
    }
    Ok(found)
}

/// After a configuration change: which mappings the new scope no longer allows, and why.
pub fn revalidate(scope: &Scope, mappings: &[Mapping]) -> (Vec<Mapping>, Vec<(Mapping, String)>) {
    let allowed = allowed_ports(scope.config);
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for m in mappings {
        let why = if scope.config.direct_access != DirectAccess::Upnp || !scope.config.enabled {
            Some("direct access is no longer in upnp mode".to_string())
        } else if !allowed.contains(&m.external_port) {
            Some(format!(
                "port {} is no longer a direct-mode port",
                m.external_port
            ))
        } else if scope.config.upnp.same_port && m.internal_port != m.external_port {
            Some(format!(
                "internal port {} differs from the external one (upnp.same_port)",
                m.internal_port
            ))
        } else {
            authorise_with(scope, m.internal_client, true)
                .err()
                .map(|r| r.reason)
        };
        match why {
            Some(reason) => dropped.push((m.clone(), reason)),
            None => kept.push(m.clone()),
        }
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests;
