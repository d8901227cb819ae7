//! Outbound allowances, for networks where LAN -> WAN is not open by default (fw4 without the lan->wan
//! forwarding, or a restrictive zone): the Command Center's WiLife Online, relay and e-mail traffic, and a
//! remote viewing web client anywhere on the LAN. Granted with the connmark handshake, so fw4's include
//! accepts them whatever its zones say; everything else stays as fw4 decides.

use super::nft::*;
use super::{Builder, CHAIN_FORWARD, SET_LAN_IPV4};
use crate::config::{Config, PortRange};
use crate::consts::{RELAY_PORTS, REMOTE_CLIENT_PORTS, WILIFE_ONLINE_PORTS};

pub const SET_OUTBOUND_CC: &str = "outbound_cc";
pub const SET_OUTBOUND_VIEWER: &str = "outbound_viewer";

/// One allowance group as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Allowance {
    pub group: &'static str,
    /// Who may: `command_center` or `lan`.
    pub from: &'static str,
    pub ports: Vec<PortRange>,
    pub enabled: bool,
}

/// Every group with its ports, on or off as configured (off everywhere when the agent is disabled).
pub fn allowances(c: &Config) -> Vec<Allowance> {
    let o = &c.outbound;
    let single = |ports: &[u16]| ports.iter().map(|p| PortRange::single(*p)).collect();
    let mut viewer: Vec<PortRange> = single(REMOTE_CLIENT_PORTS);
    viewer.extend(c.direct.port_ranges());
    let groups = [
        (
            "wilife_online",
            "command_center",
            single(WILIFE_ONLINE_PORTS),
            o.wilife_online,
        ),
        ("relay", "command_center", single(RELAY_PORTS), o.relay),
        (
            "email",
            "command_center",
            vec![PortRange::single(o.smtp_port)],
            o.email,
        ),
        ("remote_client", "lan", viewer, o.remote_client),
    ];
    groups
        .into_iter()
        .map(|(group, from, ports, on)| Allowance {
            group,
            from,
            ports,
            enabled: on && c.enabled,
        })
        .collect()
}

/// The ports of the enabled groups for one kind of source, merged and sorted.
fn ports_from(all: &[Allowance], from: &str) -> Vec<(u16, u16)> {
    merge_ranges(
        all.iter()
            .filter(|a| a.enabled && a.from == from)
            .flat_map(|a| a.ports.iter().map(|r| (r.first, r.last)))
            .collect(),
    )
}

pub(super) fn render(b: &mut Builder, c: &Config) {
    // LAN -> WAN needs both ends known (a WAN that is down has no device yet).
    let Some(wan) = c
        .wan_device
        .as_deref()
        .filter(|_| !c.lan_devices.is_empty())
    else {
        return;
    };
    let all = allowances(c);
    for (from, set, source, comment) in [
        (
            "command_center",
            SET_OUTBOUND_CC,
            super::cameras::SET_CC_IPV4,
            "wilife: command center -> internet",
        ),
        (
            "lan",
            SET_OUTBOUND_VIEWER,
            SET_LAN_IPV4,
            "wilife: remote viewing client -> internet",
        ),
    ] {
        let ports = ports_from(&all, from);
        if ports.is_empty() {
            continue;
        }
        let elems = ports.iter().map(|(a, z)| port_range(*a, *z)).collect();
        let ty = string("inet_service");
        b.set(INET, set, ty, true, elems);
        // ct state new iifname "br-lan" oifname "wan" ip saddr @cc_ipv4 tcp dport @outbound_cc
        //   ct mark set ct mark | BIT
        b.rule(
            CHAIN_FORWARD,
            comment.into(),
            vec![
                ct_new(),
                is(meta("iifname"), ifname_set(&c.lan_devices)),
                is(meta("oifname"), string(wan)),
                is(payload("ip", "saddr"), set_ref(source)),
                is(tcp_dport(), set_ref(set)),
                mark_set(c.connmark),
            ],
        );
    }
}
