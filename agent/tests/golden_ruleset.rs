//! Golden tests: the rendered table, as readable nft text, for fixed configs and network facts.
//! `UPDATE_GOLDEN=1 cargo test -p wilife-agent --test golden_ruleset` rewrites the files after a
//! deliberate change; review the diff like code.

use std::path::Path;
use wilife_agent::config::{self, Overrides};
use wilife_agent::firewall::{render, static_forwards, text, NetFacts};
use wilife_agent::upnp::leases::{self, Mapping};

fn facts() -> NetFacts {
    NetFacts {
        wan_ipv4: vec!["203.0.113.1".parse().unwrap()],
        lan_ipv4_nets: vec![("192.168.1.0".parse().unwrap(), 24)],
        lan_ipv4: vec!["192.168.1.1".parse().unwrap()],
        learned: vec![
            (mac("00:11:22:33:44:55"), "192.168.1.10".parse().unwrap()),
            (mac("00:11:22:33:44:67"), "192.168.1.31".parse().unwrap()),
            (mac("00:11:22:33:44:67"), "192.168.1.32".parse().unwrap()),
        ],
    }
}

fn mac(s: &str) -> wilife_agent::config::Mac {
    config::parse_mac(s).unwrap()
}

fn golden(name: &str, uci: &str) {
    golden_with(name, uci, &[]);
}

fn golden_with(name: &str, uci: &str, mappings: &[Mapping]) {
    let c = config::parse(uci, Path::new(name), &Overrides::default()).unwrap();
    let mut forwards = static_forwards(&c);
    forwards.extend(leases::forwards(mappings));
    let facts = facts();
    let batch = render::render(&render::Desired {
        config: &c,
        forwards: &forwards,
        facts: &facts,
    })
    .batch();
    let got = text::to_text(&batch);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.nft"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        got,
        want,
        "rendered ruleset differs from {}",
        path.display()
    );
}

const BASE: &str = "config agent 'main'\n\toption wan_device 'eth1'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br-guest'\n";

#[test]
fn static_mode_with_custom_port_and_reflection() {
    golden(
        "static",
        &format!("{BASE}\toption direct_access 'static'\nconfig direct 'direct'\n\toption custom_port '8443'\nconfig command_center\n\toption name 'pc'\n\toption ip '192.168.1.10'\n"),
    );
}

#[test]
fn static_mode_without_reflection_and_another_bit() {
    golden(
        "static-noreflection",
        &format!("{BASE}\toption direct_access 'static'\n\toption connmark '0x00800000'\nconfig direct 'direct'\n\toption ports '20570'\n\toption reflection '0'\nconfig command_center\n\toption ip '192.168.1.10'\n"),
    );
}

#[test]
fn off_mode_renders_the_empty_skeleton() {
    golden("off", &format!("{BASE}\toption direct_access 'off'\nconfig command_center\n\toption ip '192.168.1.10'\n"));
}

#[test]
fn upnp_mode_with_two_mappings_one_translated() {
    let m = |port: u16, client: [u8; 4], internal: u16| Mapping {
        external_port: port,
        internal_client: client.into(),
        internal_port: internal,
        description: "WiLife".into(),
        enabled: true,
        created: 0,
        expires: None,
        lease_requested: 0,
        igd_version: 1,
        owner: "pc".into(),
    };
    golden_with(
        "upnp",
        &format!("{BASE}config command_center\n\toption name 'pc'\n\toption ip '192.168.1.10'\n"),
        &[
            m(20570, [192, 168, 1, 10], 20570),
            m(20571, [192, 168, 1, 11], 20570),
        ],
    );
}

#[test]
fn cameras_isolated_with_outbound_allowances() {
    // One camera with a fixed address, one known only by MAC (two addresses learned: it moved), a
    // Command Center known only by MAC; LukWerks video port, DNS allowed, SMTP on 465, the LAN viewer on.
    golden(
        "cameras",
        &format!(
            "{BASE}\toption direct_access 'off'\n\
             config command_center\n\toption mac '00:11:22:33:44:55'\n\
             config camera\n\toption name 'porch'\n\toption mac '00:11:22:33:44:66'\n\toption ip '192.168.1.30'\n\
             config camera\n\toption name 'yard'\n\toption mac '00:11:22:33:44:67'\n\
             config camera_rules 'cameras'\n\toption video_port '22210'\n\toption dns '1'\n\
             config outbound 'outbound'\n\toption smtp_port '465'\n\toption remote_client '1'\n"
        ),
    );
}

#[test]
fn cameras_without_isolation_keep_grants_and_counters_only() {
    golden(
        "cameras-open",
        &format!(
            "{BASE}\toption direct_access 'off'\n\
             config command_center\n\toption ip '192.168.1.10'\n\
             config camera\n\toption mac '00:11:22:33:44:66'\n\
             config camera_rules 'cameras'\n\toption isolation '0'\n\
             config outbound 'outbound'\n\toption wilife_online '0'\n\toption relay '0'\n\toption email '0'\n"
        ),
    );
}

#[test]
fn each_family_gets_its_own_batch_and_the_bridge_one_can_be_left_out() {
    let render_for = |uci: &str| {
        let c = config::parse(uci, Path::new("x"), &Overrides::default()).unwrap();
        render::render(&render::Desired {
            config: &c,
            forwards: &static_forwards(&c),
            facts: &facts(),
        })
    };
    let family = |cmd: &serde_json::Value| {
        let body = cmd.as_object().unwrap().values().next().unwrap();
        body.as_object().unwrap().values().next().unwrap()["family"].clone()
    };
    let with_cams = render_for(&format!(
        "{BASE}config camera\n\toption mac '00:11:22:33:44:66'\n"
    ));
    assert_eq!(with_cams.families(), ["inet", "bridge"]);
    assert!(with_cams.inet.iter().all(|c| family(c) == "inet"));
    assert!(!with_cams.bridge.is_empty());
    assert!(with_cams.bridge.iter().all(|c| family(c) == "bridge"));
    let whole = with_cams.batch();
    assert_eq!(
        whole["nftables"].as_array().unwrap().len(),
        with_cams.inet.len() + with_cams.bridge.len()
    );
    let routed = with_cams.without_bridge();
    assert_eq!(routed.families(), ["inet"]);
    assert_eq!(routed.inet, with_cams.inet);
    // No cameras: no bridge table at all.
    assert!(render_for(BASE).bridge.is_empty());
}
