use super::*;
use crate::config::{parse, Mac, Overrides};
use crate::net::Sighting;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

const LAN: &[(Ipv4Addr, u8)] = &[(Ipv4Addr::new(192, 168, 1, 0), 24)];
const CC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const CC_MAC: Mac = Mac([0, 0x11, 0x22, 0x33, 0x44, 0x55]);
const PC2: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);
const PC2_MAC: Mac = Mac([0, 0x11, 0x22, 0x33, 0x44, 0x77]);
const STRANGER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 99);
const NOW: u64 = 1_000_000;

fn config(extra: &str) -> Config {
    let text = format!(
        "config agent 'main'\n\toption wan_device 'wan0'\n\tlist lan_device 'br-lan'\n\
         config command_center\n\toption name 'office'\n\toption ip '192.168.1.10'\n\
         config command_center\n\toption name 'den'\n\toption mac '00:11:22:33:44:77'\n{extra}"
    );
    parse(
        &text,
        Path::new("/etc/config/wilife"),
        &Overrides::default(),
    )
    .unwrap()
}

/// The router's neighbour table: the two PCs and a stranger.
static NET: LazyLock<NetState> = LazyLock::new(|| NetState {
    neighbours: [
        (CC, CC_MAC),
        (PC2, PC2_MAC),
        (STRANGER, Mac([2, 0, 0, 0, 0, 9])),
    ]
    .into_iter()
    .map(|(ip, mac)| Sighting {
        mac,
        ip: Some(ip),
        index: 3,
        valid: true,
        age: Duration::ZERO,
        vlan: 0,
    })
    .collect(),
    ..Default::default()
});

fn scope(config: &Config) -> Scope<'_> {
    Scope {
        config,
        lan_nets: LAN,
        net: &NET,
        taken_upstream: &[],
    }
}

fn req(requester: Ipv4Addr, port: u16) -> AddRequest {
    AddRequest {
        requester,
        remote_host: String::new(),
        external_port: port,
        protocol: "TCP".into(),
        internal_port: port,
        internal_client: requester.to_string(),
        enabled: true,
        description: "WiLife".into(),
        lease: 0,
        any_port: false,
        version: 1,
    }
}

fn code(r: Result<(Vec<Mapping>, Mapping), Refusal>) -> u16 {
    r.expect_err("should be refused").error.code()
}

/// Adds and returns the new table, panicking on refusal.
fn grant(c: &Config, table: &[Mapping], r: &AddRequest) -> Vec<Mapping> {
    add(&scope(c), table, r, NOW).unwrap().0
}

#[test]
fn an_authorised_command_center_gets_its_port() {
    let c = config("");
    let (table, m) = add(&scope(&c), &[], &req(CC, 20570), NOW).unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(
        (m.external_port, m.internal_client, m.internal_port),
        (20570, CC, 20570)
    );
    assert_eq!(m.owner, "office");
    assert_eq!(m.expires, None, "v1 lease 0 lasts until removed");
    // Authorised by MAC through the neighbour table.
    let (_, m) = add(&scope(&c), &table, &req(PC2, 20571), NOW).unwrap();
    assert_eq!(m.owner, "den");
}

#[test]
fn a_port_the_gateway_upstream_gives_to_another_host_is_refused_here() {
    let c = config("");
    let taken = [20570];
    let s = Scope {
        taken_upstream: &taken,
        ..scope(&c)
    };
    let refused = add(&s, &[], &req(CC, 20570), NOW).unwrap_err();
    assert_eq!(refused.error.code(), 718);
    assert!(
        refused.reason.contains("gateway upstream"),
        "{}",
        refused.reason
    );
    // AddAnyPortMapping passes it by.
    let any = AddRequest {
        any_port: true,
        version: 2,
        ..req(CC, 20570)
    };
    assert_eq!(add(&s, &[], &any, NOW).unwrap().1.external_port, 20571);
    assert_eq!(
        add(&s, &[], &req(CC, 20571), NOW).unwrap().1.external_port,
        20571
    );
}

#[test]
fn refusals_carry_the_standard_codes() {
    let c = config("");
    let s = scope(&c);
    let table = grant(&c, &[], &req(CC, 20570));
    let with = |f: &dyn Fn(&mut AddRequest)| {
        let mut r = req(CC, 20571);
        f(&mut r);
        code(add(&s, &table, &r, NOW))
    };
    assert_eq!(with(&|r| r.protocol = "UDP".into()), 606, "UDP");
    assert_eq!(with(&|r| r.protocol = "udp".into()), 606, "udp");
    assert_eq!(with(&|r| r.protocol = "ICMP".into()), 402, "not a protocol");
    assert_eq!(
        with(&|r| {
            r.external_port = 8080;
            r.internal_port = 8080
        }),
        606,
        "8080"
    );
    assert_eq!(with(&|r| r.external_port = 0), 716, "wildcard external");
    assert_eq!(with(&|r| r.internal_port = 0), 402, "internal 0, v1");
    assert_eq!(
        with(&|r| {
            r.internal_port = 0;
            r.version = 2
        }),
        732,
        "internal 0, v2"
    );
    assert_eq!(
        with(&|r| r.internal_client = "192.168.1.11".into()),
        606,
        "client != requester"
    );
    assert_eq!(
        with(&|r| r.internal_client = "not-an-ip".into()),
        402,
        "bad client"
    );
    assert_eq!(
        with(&|r| r.internal_client = String::new()),
        402,
        "empty client"
    );
    assert_eq!(
        with(&|r| r.remote_host = "198.51.100.7".into()),
        726,
        "remote host"
    );
    assert_eq!(
        with(&|r| r.internal_port = 22),
        724,
        "translation with same_port"
    );
    // Another host asks for CC's port.
    assert_eq!(code(add(&s, &table, &req(PC2, 20570), NOW)), 718);
    // A LAN host that is not a Command Center; one outside the LAN.
    assert_eq!(code(add(&s, &table, &req(STRANGER, 20572), NOW)), 606);
    assert_eq!(
        code(add(
            &s,
            &table,
            &req(Ipv4Addr::new(10, 0, 0, 5), 20572),
            NOW
        )),
        606
    );
}

#[test]
fn wildcard_remote_host_forms_are_accepted() {
    let c = config("");
    for host in ["", " ", "*", "0.0.0.0"] {
        let mut r = req(CC, 20570);
        r.remote_host = host.into();
        assert!(add(&scope(&c), &[], &r, NOW).is_ok(), "{host:?}");
    }
}

#[test]
fn mac_identity_is_checked_through_the_neighbour_table() {
    // 'den' is configured by MAC only: an unknown neighbour is refused, a wrong MAC too.
    let c = config("");
    let unknown = Ipv4Addr::new(192, 168, 1, 50);
    let r = authorise(&scope(&c), unknown).unwrap_err();
    assert_eq!(r.error.code(), 606);
    assert!(
        r.reason.contains("not an authorised Command Center"),
        "{}",
        r.reason
    );
    let r = authorise(&scope(&c), STRANGER).unwrap_err();
    assert!(r.reason.contains("02:00:00:00:00:09"), "{}", r.reason);
    // IP and MAC both configured: both must match.
    let both = config(
        "config command_center\n\toption name 'strict'\n\toption ip '192.168.1.99'\n\toption mac '00:11:22:33:44:99'\n",
    );
    assert!(authorise(&scope(&both), STRANGER).is_err());
}

#[test]
fn any_lan_host_opens_the_lan_but_not_the_rest() {
    let c = config("config upnp 'upnp'\n\toption any_lan_host '1'\n");
    let s = scope(&c);
    assert_eq!(authorise(&s, STRANGER).unwrap(), "LAN host");
    assert_eq!(
        authorise(&s, CC).unwrap(),
        "office",
        "a known CC keeps its name"
    );
    assert!(authorise(&s, Ipv4Addr::new(10, 1, 1, 1)).is_err());
    // The other rules still hold for any host.
    let mut r = req(STRANGER, 20570);
    r.internal_client = CC.to_string();
    assert_eq!(code(add(&s, &[], &r, NOW)), 606);
}

#[test]
fn renewal_by_re_adding_keeps_one_entry_and_its_age() {
    let c = config("config upnp 'upnp'\n\toption max_per_client '1'\n");
    let mut first = req(CC, 20570);
    first.lease = 100;
    let table = grant(&c, &[], &first);
    let mut again = req(CC, 20570);
    again.lease = 500;
    again.description = "renewed".into();
    let (table2, m) = add(&scope(&c), &table, &again, NOW + 50).unwrap();
    assert_eq!(
        table2.len(),
        1,
        "no duplicate; the cap of 1 is not hit by a renewal"
    );
    assert_eq!(m.created, NOW);
    assert_eq!(m.expires, Some(NOW + 50 + 500));
    assert_eq!(m.description, "renewed");
}

#[test]
fn the_per_client_cap_is_728() {
    let c = config(""); // default cap 2
    let mut table = grant(&c, &[], &req(CC, 20570));
    table = grant(&c, &table, &req(CC, 20571));
    let r = add(&scope(&c), &table, &req(CC, 20572), NOW).unwrap_err();
    assert_eq!(r.error.code(), 728);
    assert!(r.reason.contains("max_per_client"));
    // Another client is not affected.
    assert!(add(&scope(&c), &table, &req(PC2, 20572), NOW).is_ok());
}

#[test]
fn a_full_range_refuses_the_seventh_and_add_any() {
    let c = config("config upnp 'upnp'\n\toption max_per_client '6'\n");
    let mut table = Vec::new();
    for p in 20570..=20575 {
        table = grant(&c, &table, &req(CC, p));
    }
    assert_eq!(table.len(), 6);
    assert_eq!(code(add(&scope(&c), &table, &req(PC2, 20573), NOW)), 718);
    assert_eq!(code(add(&scope(&c), &table, &req(PC2, 20576), NOW)), 606);
    let mut any = req(PC2, 20570);
    any.any_port = true;
    any.version = 2;
    assert_eq!(code(add(&scope(&c), &table, &any, NOW)), 728);
}

#[test]
fn add_any_hands_out_the_next_free_port_and_may_translate() {
    let c = config("");
    let table = grant(&c, &[], &req(CC, 20570));
    let mut any = req(PC2, 20570);
    any.any_port = true;
    any.version = 2;
    let (table, m) = add(&scope(&c), &table, &any, NOW).unwrap();
    assert_eq!((m.external_port, m.internal_port), (20571, 20570));
    assert_eq!(m.forward().target_port, Some(20570));
    // Wildcard 0 and out-of-range requests: the client's own mapping to that internal port is renewed,
    // a new internal port gets the first free external port.
    for wanted in [0, 8080] {
        let mut r = req(PC2, wanted);
        r.internal_port = 20570;
        r.any_port = true;
        r.version = 2;
        let (t, m) = add(&scope(&c), &table, &r, NOW).unwrap();
        assert_eq!((m.external_port, t.len()), (20571, 2));
        r.internal_port = 9000;
        assert_eq!(
            add(&scope(&c), &table, &r, NOW).unwrap().1.external_port,
            20572
        );
    }
    // A free requested port is honoured.
    let mut r = req(PC2, 20574);
    r.any_port = true;
    r.version = 2;
    assert_eq!(
        add(&scope(&c), &table, &r, NOW).unwrap().1.external_port,
        20574
    );
}

#[test]
fn the_custom_port_is_grantable_too() {
    let c = config("config direct 'direct'\n\toption custom_port '8443'\n");
    assert!(add(&scope(&c), &[], &req(CC, 8443), NOW).is_ok());
    assert_eq!(allowed_ports(&c).len(), 7);
    assert_eq!(allowed_ports(&c)[0], 8443);
}

#[test]
fn translation_is_allowed_when_same_port_is_off() {
    let c = config("config upnp 'upnp'\n\toption same_port '0'\n");
    let mut r = req(CC, 20570);
    r.internal_port = 8000;
    let (_, m) = add(&scope(&c), &[], &r, NOW).unwrap();
    assert_eq!(m.forward().target_port, Some(8000));
}

#[test]
fn static_mode_ports_conflict_with_other_mechanisms() {
    let mut c = config("");
    c.direct_access = DirectAccess::Static;
    assert_eq!(code(add(&scope(&c), &[], &req(CC, 20570), NOW)), 729);
}

#[test]
fn leases_v1_v2_and_the_cap() {
    let c = config("");
    assert_eq!(lease_expiry(&c, 1, 0, NOW), None);
    assert_eq!(lease_expiry(&c, 1, 3600, NOW), Some(NOW + 3600));
    assert_eq!(lease_expiry(&c, 1, 9_000_000, NOW), Some(NOW + 9_000_000));
    assert_eq!(lease_expiry(&c, 2, 0, NOW), Some(NOW + 604_800));
    assert_eq!(lease_expiry(&c, 2, 9_000_000, NOW), Some(NOW + 604_800));
    assert_eq!(lease_expiry(&c, 2, 60, NOW), Some(NOW + 60));
    let capped = config("config upnp 'upnp'\n\toption max_lease '86400'\n");
    assert_eq!(lease_expiry(&capped, 1, 0, NOW), Some(NOW + 86_400));
    assert_eq!(lease_expiry(&capped, 1, 100, NOW), Some(NOW + 100));
    assert_eq!(lease_expiry(&capped, 2, 0, NOW), Some(NOW + 86_400));
}

#[test]
fn decide_names_the_effect_and_expires_only_ended_leases() {
    let c = config("");
    let mut short = req(CC, 20570);
    short.lease = 60;
    let granted = decide(&scope(&c), &[], &Change::Add(short), NOW).unwrap();
    assert_eq!(granted.effect, Effect::Granted);
    assert_eq!(granted.affected[0].expires, Some(NOW + 60));
    let table = grant(&c, &granted.table, &req(CC, 20571));
    let expire = |now| decide(&scope(&c), &table, &Change::Expire, now).unwrap();
    assert!(expire(NOW + 59).affected.is_empty());
    let later = expire(NOW + 60);
    assert_eq!(later.effect, Effect::Expired);
    assert_eq!(later.affected.len(), 1);
    assert_eq!(later.affected[0].external_port, 20570);
    assert_eq!(later.table.len(), 1);
    assert_eq!(later.table[0].external_port, 20571);
    let removed = decide(&scope(&c), &table, &Change::Remove { port: 20571 }, NOW).unwrap();
    assert_eq!(removed.effect, Effect::Removed);
    assert_eq!(Change::Remove { port: 1 }.requester(), Ipv4Addr::LOCALHOST);
    assert_eq!(Change::Add(req(CC, 1)).action(), "AddPortMapping");
}

#[test]
fn descriptions_are_cleaned_and_bounded() {
    let c = config("");
    let mut r = req(CC, 20570);
    r.description = format!("a\u{0}b\nc{}", "x".repeat(500));
    let (_, m) = add(&scope(&c), &[], &r, NOW).unwrap();
    assert!(m.description.starts_with("abcx"));
    assert_eq!(m.description.chars().count(), MAX_DESCRIPTION);
    r.description = String::new();
    assert_eq!(
        add(&scope(&c), &[], &r, NOW).unwrap().1.description,
        "(no description)"
    );
}

#[test]
fn disabled_mappings_are_kept_without_a_forward() {
    let c = config("");
    let mut r = req(CC, 20570);
    r.enabled = false;
    let (table, _) = add(&scope(&c), &[], &r, NOW).unwrap();
    assert!(crate::upnp::leases::forwards(&table).is_empty());
}

#[test]
fn only_the_owner_deletes() {
    let c = config("");
    let table = grant(&c, &[], &req(CC, 20570));
    assert_eq!(
        delete(&table, PC2, "", 20570, "TCP")
            .unwrap_err()
            .error
            .code(),
        606
    );
    assert_eq!(
        delete(&table, CC, "", 20571, "TCP")
            .unwrap_err()
            .error
            .code(),
        714
    );
    assert_eq!(
        delete(&table, CC, "", 20570, "UDP")
            .unwrap_err()
            .error
            .code(),
        714
    );
    assert_eq!(
        delete(&table, CC, "1.2.3.4", 20570, "TCP")
            .unwrap_err()
            .error
            .code(),
        714
    );
    assert_eq!(
        delete(&table, CC, "", 20570, "XYZ")
            .unwrap_err()
            .error
            .code(),
        402
    );
    // The administrator removes whatever it is; an absent port is 714.
    assert_eq!(remove(&table, 20570).unwrap().1.internal_client, CC);
    assert_eq!(remove(&table, 20571).unwrap_err().error.code(), 714);
    let (rest, gone) = delete(&table, CC, "", 20570, "tcp").unwrap();
    assert!(rest.is_empty());
    assert_eq!(gone.external_port, 20570);
}

#[test]
fn a_delete_checks_the_owner_as_a_grant_does_mac_included() {
    // 'den' is bound to PC2's MAC: it maps from PC2's address; later another host holds that address.
    let c = config("");
    let table = grant(&c, &[], &req(PC2, 20573));
    let impostor = NetState {
        neighbours: vec![Sighting {
            mac: Mac([2, 0, 0, 0, 0, 9]),
            ip: Some(PC2),
            index: 3,
            valid: true,
            age: Duration::ZERO,
            vlan: 0,
        }],
        ..Default::default()
    };
    let taken_over = Scope {
        net: &impostor,
        ..scope(&c)
    };
    let delete = |scope: &Scope, change: &Change| decide(scope, &table, change, NOW);
    let one = Change::Delete {
        requester: PC2,
        remote_host: String::new(),
        port: 20573,
        protocol: "TCP".into(),
    };
    let range = Change::DeleteRange {
        requester: PC2,
        start: 20570,
        end: 20575,
        protocol: "TCP".into(),
    };
    for change in [&one, &range] {
        let r = delete(&taken_over, change).unwrap_err();
        assert_eq!(r.error.code(), 606, "{}", r.reason);
        assert!(r.reason.contains("02:00:00:00:00:09"), "{}", r.reason);
        // The Command Center itself, with its own MAC, still can.
        assert_eq!(delete(&scope(&c), change).unwrap().affected.len(), 1);
    }
}

#[test]
fn range_delete_and_list() {
    let c = config("config upnp 'upnp'\n\toption max_per_client '6'\n");
    let mut table = grant(&c, &[], &req(CC, 20570));
    table = grant(&c, &table, &req(CC, 20571));
    table = grant(&c, &table, &req(PC2, 20572));
    assert_eq!(
        list(&table, CC, 20570, 20575, "TCP", false, 0)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        list(&table, CC, 20570, 20575, "TCP", true, 0)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        list(&table, CC, 20570, 20575, "TCP", true, 1)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list(&table, CC, 20575, 20570, "TCP", false, 0)
            .unwrap_err()
            .error
            .code(),
        733
    );
    assert_eq!(
        list(&table, CC, 1, 100, "TCP", false, 0)
            .unwrap_err()
            .error
            .code(),
        730
    );
    assert_eq!(
        list(&table, CC, 20570, 20575, "UDP", false, 0)
            .unwrap_err()
            .error
            .code(),
        730
    );
    assert_eq!(
        delete_range(&table, CC, 20575, 20570, "TCP")
            .unwrap_err()
            .error
            .code(),
        733
    );
    assert_eq!(
        delete_range(&table, STRANGER, 20570, 20575, "TCP")
            .unwrap_err()
            .error
            .code(),
        730
    );
    let (kept, gone) = delete_range(&table, CC, 20570, 20575, "TCP").unwrap();
    assert_eq!((kept.len(), gone.len()), (1, 2));
    assert_eq!(
        kept[0].internal_client, PC2,
        "another client's mapping stays"
    );
}

#[test]
fn revalidation_drops_what_the_new_config_forbids() {
    let c = config("config upnp 'upnp'\n\toption max_per_client '6'\n");
    let mut table = grant(&c, &[], &req(CC, 20570));
    table = grant(&c, &table, &req(PC2, 20575));
    // Narrower range, and 'office' removed.
    let narrower = parse(
        "config agent 'main'\n\toption wan_device 'wan0'\n\tlist lan_device 'br-lan'\n\
         config direct 'direct'\n\toption ports '20570-20574'\n\
         config command_center\n\toption name 'den'\n\toption mac '00:11:22:33:44:77'\n",
        Path::new("x"),
        &Overrides::default(),
    )
    .unwrap();
    let (kept, dropped) = revalidate(&scope(&narrower), &table);
    assert!(kept.is_empty());
    assert_eq!(dropped.len(), 2);
    assert!(
        dropped[0].1.contains("not an authorised"),
        "{}",
        dropped[0].1
    );
    assert!(
        dropped[1].1.contains("no longer a direct-mode port"),
        "{}",
        dropped[1].1
    );
    // An unchanged config keeps everything, even when a MAC-identified host has left the neighbour table.
    let forgetful = NetState::default();
    let s = Scope {
        config: &c,
        lan_nets: LAN,
        net: &forgetful,
        taken_upstream: &[],
    };
    assert_eq!(revalidate(&s, &table).0.len(), 2);
}

#[test]
fn descriptions_are_kept_as_plain_text() {
    assert_eq!(
        plain_description("WiLife<img src=x onerror=alert(1)>\n"),
        "WiLifeimg src=x onerror=alert(1)"
    );
    assert_eq!(plain_description("WiLife & co \"d\""), "WiLife & co \"d\"");
    assert_eq!(plain_description("<>\r\n"), "(no description)");
    assert_eq!(
        plain_description("WiLife Command Center"),
        "WiLife Command Center"
    );
    assert_eq!(
        plain_description(&"x".repeat(10_000)).len(),
        MAX_DESCRIPTION
    );
}
