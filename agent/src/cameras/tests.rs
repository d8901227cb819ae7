use super::*;
use crate::firewall::render::cameras::traffic_counters;
use crate::net::dhcp::Lease;
use crate::testing::{config, neighbour, now, seen, snapshot};

const SECTIONS: &str = "\
config command_center
\toption name 'office'
\toption mac '00:11:22:33:44:55'
config camera
\toption name 'porch'
\toption mac '00:11:22:33:44:66'
\toption ip '192.168.1.30'
config camera
\toption name 'yard'
\toption mac '00:11:22:33:44:67'
config camera_rules 'cameras'
\toption video_port '22210'
";

fn counts(packets: u64, bytes: u64) -> Counts {
    Counts { packets, bytes }
}

#[test]
fn cameras_show_addresses_presence_leases_and_traffic_both_paths_summed() {
    let snap = snapshot(config("", SECTIONS), "203.0.113.2");
    let snap = seen(snap, neighbour("00:11:22:33:44:55", "192.168.1.10", 2));
    let mut snap = seen(snap, neighbour("00:11:22:33:44:67", "192.168.1.31", 30));
    snap.dhcp_leases.push(Lease {
        mac: crate::config::parse_mac("00:11:22:33:44:67").unwrap(),
        ip: "192.168.1.31".parse().unwrap(),
        hostname: Some("yard-cam".into()),
        expires: 1_800_003_600,
    });
    let porch = crate::config::parse_mac("00:11:22:33:44:66").unwrap();
    let [btx, brx, rtx, rrx] = traffic_counters(&porch);
    let values = BTreeMap::from([
        (btx, counts(10, 1000)),
        (rtx, counts(5, 500)),
        (brx, counts(1, 64)),
        (rrx, counts(2, 128)),
        (COUNTER_ISOLATION_BRIDGED.to_string(), counts(7, 420)),
    ]);
    let doc = report(&snap, Some((true, &values)), now());
    assert_eq!(doc.video_port, 22210);
    let [p, y] = &doc.cameras[..] else {
        panic!("{:?}", doc.cameras)
    };
    assert_eq!(p.name, "porch");
    assert_eq!(p.ip.map(|i| i.to_string()).as_deref(), Some("192.168.1.30"));
    assert!(!p.presence.present, "never seen");
    assert_eq!(p.traffic.to_command_center, counts(15, 1500));
    assert_eq!(p.traffic.from_command_center, counts(3, 192));
    assert_eq!(p.rules, "enforced");
    // The yard camera has no fixed address: the learned one, its lease, and it was seen 30 s ago.
    assert_eq!(y.ip.map(|i| i.to_string()).as_deref(), Some("192.168.1.31"));
    assert!(y.presence.present);
    assert_eq!(
        y.lease.as_ref().and_then(|l| l.hostname.as_deref()),
        Some("yard-cam")
    );
    assert_eq!(y.traffic.to_command_center, counts(0, 0));
    // The Command Center, known by MAC only: its learned address, and present.
    let cc = &doc.command_centers[0];
    assert_eq!(
        cc.ip.map(|i| i.to_string()).as_deref(),
        Some("192.168.1.10")
    );
    assert!(cc.present);
    assert_eq!(doc.isolation_drops.bridged, counts(7, 420));
    assert_eq!(doc.isolation_drops.routed, counts(0, 0));
}

#[test]
fn the_rules_state_follows_the_kernel_and_the_bridge_family() {
    let mut snap = snapshot(config("", SECTIONS), "203.0.113.2");
    let none = BTreeMap::new();
    let rules = |snap: &Snapshot, live| report(snap, live, now()).cameras[0].rules;
    assert_eq!(rules(&snap, Some((true, &none))), "enforced");
    assert_eq!(rules(&snap, Some((false, &none))), "not_enforced");
    // The kernel could not be asked: the owner's last knowledge stands.
    assert_eq!(rules(&snap, None), "enforced");
    snap.bridge_error = Some("No such file or directory".into());
    assert_eq!(rules(&snap, Some((true, &none))), "routed_only");
    let disabled = snapshot(config("\toption enabled '0'\n", SECTIONS), "203.0.113.2");
    assert_eq!(rules(&disabled, Some((false, &none))), "disabled");
}
