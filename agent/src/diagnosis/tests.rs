use super::*;
use crate::firewall::static_forwards;
use crate::testing::{config, link, neighbour, now, seen, snapshot};

const CC: &str = "config command_center\n\toption name 'office'\n\toption ip '192.168.1.10'\n";
const CC_MAC: &str = "00:11:22:33:44:55";

fn codes(d: &Diagnosis) -> Vec<&'static str> {
    d.reasons.iter().map(|r| r.code).collect()
}

/// Static mode, a public WAN, the Command Center seen 5 s ago: the forwards are in force.
fn healthy(wan_ip: &str) -> Snapshot {
    let mut snap = snapshot(config("\toption direct_access 'static'\n", CC), wan_ip);
    snap.forwards = static_forwards(&snap.config);
    seen(snap, neighbour(CC_MAC, "192.168.1.10", 5))
}

#[test]
fn a_public_wan_with_forwards_in_force_is_direct() {
    let d = diagnose(&healthy("203.0.113.2"), now());
    assert!(d.direct_possible, "{:?}", d.reasons);
    assert_eq!(d.mode, Mode::Direct);
    assert!(d.reasons.is_empty(), "{:?}", d.reasons);
    let e = d.external.expect("external");
    assert_eq!(e.address.to_string(), "203.0.113.2");
    assert_eq!(e.ports, ["20570-20575"]);
    assert_eq!(e.command_center.to_string(), "192.168.1.10");
    assert_eq!(d.wan.address_kind, Some(WanAddressKind::Public));
    assert!(
        d.summary.contains("203.0.113.2 on TCP 20570-20575"),
        "{}",
        d.summary
    );
}

#[test]
fn double_nat_and_cgnat_leave_only_relay_and_say_why() {
    let private = diagnose(&healthy("192.168.0.2"), now());
    assert_eq!(codes(&private), ["wan_private"]);
    assert_eq!(private.mode, Mode::RelayOnly);
    assert!(private.external.is_none());
    assert!(private
        .summary
        .starts_with("Only relay mode can work: The WAN address 192.168.0.2 is private"));
    assert!(private.reasons[0].message.contains("TCP 20570-20575"));
    let cgnat = diagnose(&healthy("100.64.1.2"), now());
    assert_eq!(codes(&cgnat), ["wan_cgnat"]);
    assert_eq!(cgnat.wan.address_kind, Some(WanAddressKind::Cgnat));
}

/// Double NAT with the gateway upstream in `standing`, forwarding `mapped` of the ports in force.
fn behind_gateway(standing: Standing, mapped: &[u16], missing: &[u16]) -> Snapshot {
    use crate::config::UpstreamProtocol;
    use crate::upstream::worker::UpstreamMapping;
    let mut snap = healthy("192.168.0.2");
    let up = &mut snap.upstream;
    up.idle = None;
    up.gateway = Some("192.168.0.1".parse().unwrap());
    up.wan_address = Some("192.168.0.2".parse().unwrap());
    up.standing = standing;
    up.mappings = (mapped.iter())
        .map(|&port| UpstreamMapping {
            port,
            external_port: port,
            protocol: UpstreamProtocol::Pcp,
            lifetime_s: 3600,
            expires_in_s: 3500,
        })
        .collect();
    up.missing = missing.to_vec();
    snap
}

#[test]
fn double_nat_is_direct_while_the_gateway_forwards_every_port() {
    use crate::config::UpstreamProtocol::Pcp;
    let all: Vec<u16> = (20570..=20575).collect();
    let public = Standing::Mapping {
        protocol: Pcp,
        external_address: "198.51.100.7".parse().unwrap(),
    };
    let d = diagnose(&behind_gateway(public.clone(), &all, &[]), now());
    assert!(d.direct_possible, "{:?}", d.reasons);
    let e = d.external.expect("external");
    assert_eq!(e.address.to_string(), "198.51.100.7", "the gateway's word");
    assert_eq!(e.ports.len(), 6);
    assert_eq!(e.via.unwrap().gateway.to_string(), "192.168.0.1");
    assert!(
        d.summary.contains("by the gateway 192.168.0.1 (PCP)"),
        "{}",
        d.summary
    );
    // One port short: not yet.
    let d = diagnose(&behind_gateway(public, &all[1..], &[20570]), now());
    assert_eq!(codes(&d), ["upstream_pending"]);
    assert!(
        d.reasons[0].message.contains("TCP 20570 "),
        "{}",
        d.reasons[0].message
    );
    // The gateway's own address is private too: triple NAT.
    let inner = Standing::Mapping {
        protocol: Pcp,
        external_address: "10.0.0.2".parse().unwrap(),
    };
    let d = diagnose(&behind_gateway(inner, &all, &[]), now());
    assert_eq!(codes(&d), ["upstream_behind_nat"]);
    assert!(d.reasons[0].message.contains("triple NAT"));
}

#[test]
fn double_nat_without_the_gateways_help_says_precisely_why() {
    use crate::config::UpstreamProtocol::Natpmp;
    let none = diagnose(&behind_gateway(Standing::NoService, &[], &[20570]), now());
    assert_eq!(codes(&none), ["upstream_no_service"]);
    assert!(none.reasons[0]
        .message
        .contains("answers neither PCP nor NAT-PMP"));
    let refused = Standing::Refused {
        protocol: Natpmp,
        code: 2,
        name: "Not Authorized/Refused",
    };
    let no = diagnose(&behind_gateway(refused, &[], &[20570]), now());
    assert_eq!(codes(&no), ["upstream_refused"]);
    assert!(
        no.reasons[0]
            .message
            .contains("(NAT-PMP result 2, Not Authorized/Refused)"),
        "{}",
        no.reasons[0].message
    );
    let mut taken = behind_gateway(Standing::Unknown, &[], &[20570]);
    taken.upstream.taken = vec![20570];
    let d = diagnose(&taken, now());
    assert_eq!(codes(&d), ["upstream_port_taken"]);
    assert!(
        d.reasons[0]
            .message
            .contains("does not give TCP 20570 to this router"),
        "{}",
        d.reasons[0].message
    );
    let mut off = healthy("192.168.0.2");
    off.upstream.idle = Some(Idle::Off);
    let d = diagnose(&off, now());
    assert_eq!(codes(&d), ["wan_private"]);
    assert!(d.reasons[0].message.contains("config upstream mode is off"));
    let mut cgnat = healthy("100.64.1.2");
    cgnat.upstream.idle = Some(Idle::Off);
    assert!(diagnose(&cgnat, now()).reasons[0]
        .message
        .contains("only relay mode can work"));
}

#[test]
fn a_missing_or_down_wan_is_named_once() {
    let mut gone = healthy("203.0.113.2");
    gone.config.wan_device = None;
    gone.facts.wan_ipv4.clear();
    let d = diagnose(&gone, now());
    assert_eq!(codes(&d), ["wan_missing", "wan_no_address"]);
    assert!(
        d.reasons[0].message.contains("'wan'"),
        "{}",
        d.reasons[0].message
    );
    let mut down = healthy("203.0.113.2");
    down.net.links[0] = link(2, "wan0", false);
    down.facts.wan_ipv4.clear();
    // A link that is down has no address to speak of: one reason, not two.
    assert_eq!(codes(&diagnose(&down, now())), ["wan_down"]);
}

#[test]
fn the_command_center_must_be_configured_and_seen() {
    let none = snapshot(config("", ""), "203.0.113.2");
    assert!(codes(&diagnose(&none, now())).contains(&"no_command_center"));
    // Seen 10 minutes ago with the default timeout of a few minutes: absent.
    let mut stale = snapshot(
        config("\toption direct_access 'static'\n", CC),
        "203.0.113.2",
    );
    stale.forwards = static_forwards(&stale.config);
    let stale = seen(stale, neighbour(CC_MAC, "192.168.1.10", 600));
    let d = diagnose(&stale, now());
    assert_eq!(codes(&d), ["command_center_absent"]);
}

#[test]
fn the_config_and_the_firewall_can_rule_direct_mode_out() {
    let disabled = snapshot(config("\toption enabled '0'\n", CC), "203.0.113.2");
    let d = diagnose(&disabled, now());
    assert_eq!(d.reasons[0].code, "agent_disabled");
    // Nothing is expected of the firewall while disabled.
    assert!(!codes(&d).contains(&"firewall_not_applied"));
    let off = snapshot(config("\toption direct_access 'off'\n", CC), "203.0.113.2");
    assert_eq!(diagnose(&off, now()).reasons[0].code, "direct_access_off");
    let mut broken = healthy("203.0.113.2");
    broken.table_present = false;
    broken.fw4_include.in_fw4_ruleset = Some(false);
    assert_eq!(
        codes(&diagnose(&broken, now())),
        ["firewall_not_applied", "fw4_include_missing"]
    );
}

#[test]
fn upnp_mode_without_a_mapping_is_direct_with_a_warning() {
    let snap = seen(
        snapshot(config("", CC), "203.0.113.2"),
        neighbour(CC_MAC, "192.168.1.10", 5),
    );
    let d = diagnose(&snap, now());
    assert!(d.direct_possible);
    assert_eq!(codes(&d), ["no_mapping_yet"]);
    assert_eq!(d.reasons[0].severity, Severity::Warning);
    assert!(d.summary.contains("once the Command Center maps its port"));
}
