//! Golden verdicts over snapshots of DSA routers, each a directory under `agent/tests/switching/`:
//! `ip -j -d link`, `bridge -j fdb` and `ip -j neigh` as iproute2 prints them, the sysfs files the
//! agent reads, and a wilife config. `UPDATE_GOLDEN=1 cargo test -p wilife-agent switching` rewrites
//! each `verdicts.json` after a deliberate change; review the diff.

use super::*;
use crate::config::{parse, parse_mac, Overrides};
use crate::net::{count_other_host, rtnl, sysfs, PortInfo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/switching")
}

fn json(dir: &Path, file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The links of `ip -j -d link`, as the rtnetlink dump gives them, with the ports' VLANs of
/// `bridge -j vlan show` where the snapshot has it (a bridge that filters VLANs).
fn links(dir: &Path) -> Vec<Link> {
    let mut links = plain_links(dir);
    if dir.join("bridge-vlan.json").exists() {
        for port in json(dir, "bridge-vlan.json") {
            let l = (links.iter_mut())
                .find(|l| Some(l.name.as_str()) == text(&port, "ifname"))
                .unwrap();
            for v in port["vlans"].as_array().unwrap() {
                let vid = v["vlan"].as_u64().unwrap() as u16;
                l.port.vlans.push(vid);
                if v["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "PVID"))
                {
                    l.port.pvid = Some(vid);
                }
            }
        }
    }
    links
}

fn plain_links(dir: &Path) -> Vec<Link> {
    let raw = json(dir, "ip-link.json");
    let index = |name: Option<&str>| -> Option<u32> {
        let name = name?;
        let l = raw.iter().find(|l| text(l, "ifname") == Some(name));
        Some(l.unwrap_or_else(|| panic!("no link {name}"))["ifindex"].as_u64()? as u32)
    };
    raw.iter()
        .map(|l| {
            let info = &l["linkinfo"];
            Link {
                index: l["ifindex"].as_u64().unwrap() as u32,
                name: text(l, "ifname").unwrap().to_string(),
                up: text(l, "operstate") == Some("UP"),
                mac: text(l, "address").and_then(|m| parse_mac(m).ok()),
                port: PortInfo {
                    bridge: index(text(l, "master")),
                    switch_id: text(l, "phys_switch_id").map(str::to_string),
                    parent: index(text(l, "link")),
                    kind: text(info, "info_kind").map(str::to_string),
                    isolated: text(info, "info_slave_kind") == Some("bridge")
                        && info["info_slave_data"]["isolated"] == Value::Bool(true),
                    ..Default::default()
                },
            }
        })
        .collect()
}

/// The network as the daemon holds it: of the FDB, the watched hosts' entries, the others counted.
pub(crate) fn state(dir: &Path, config: &Config) -> NetState {
    let mut links = links(dir);
    sysfs::switching_in(dir, &mut links, &[]);
    let index = |name: &str| links.iter().find(|l| l.name == name).unwrap().index;
    let mac = |v: &Value| parse_mac(text(v, "mac").or(text(v, "lladdr")).unwrap()).unwrap();
    let neighbours: Vec<Sighting> = (json(dir, "ip-neigh.json").iter())
        .map(|n| Sighting {
            mac: mac(n),
            ip: text(n, "dst").map(|d| d.parse().unwrap()),
            index: index(text(n, "dev").unwrap()),
            valid: true,
            age: Duration::ZERO,
            vlan: 0,
        })
        .collect();
    let mut watched = rtnl::Watched::of(config).macs;
    watched.extend(
        (config.command_centers.iter())
            .filter_map(|cc| cc.ip)
            .filter_map(|ip| neighbours.iter().find(|n| n.ip == Some(ip)))
            .map(|n| n.mac),
    );
    let mut bridge_fdb = Vec::new();
    let mut fdb_other_hosts = Vec::new();
    for e in json(dir, "bridge-fdb.json") {
        // Multicast entries are no host (the dump skips them too).
        let first = u8::from_str_radix(&text(&e, "mac").unwrap()[..2], 16).unwrap();
        if first & 1 == 1 {
            continue;
        }
        let m = mac(&e);
        let s = Sighting {
            mac: m,
            ip: None,
            index: index(text(&e, "ifname").unwrap()),
            // iproute2 prints no state for a reachable entry.
            valid: matches!(text(&e, "state"), Some("" | "stale")),
            age: Duration::ZERO,
            vlan: e["vlan"].as_u64().unwrap_or(0) as u16,
        };
        if watched.contains(&m) {
            bridge_fdb.push(s);
        } else {
            count_other_host(&mut fdb_other_hosts, &s);
        }
    }
    NetState {
        links,
        neighbours,
        bridge_fdb,
        fdb_other_hosts,
        ..Default::default()
    }
}

#[test]
fn verdicts_of_router_snapshots() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(snapshots())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 7, "snapshots missing");
    let mut failed = Vec::new();
    for dir in names {
        let conf = dir.join("wilife");
        let text = std::fs::read_to_string(&conf).unwrap();
        let config = parse(&text, &conf, &Overrides::default()).unwrap();
        let got = serde_json::to_string_pretty(&report(&config, &state(&dir, &config))).unwrap();
        let golden = dir.join("verdicts.json");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, format!("{got}\n")).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want.trim_end() != got {
            failed.push(format!("{}:\n{got}", dir.display()));
        }
    }
    assert!(failed.is_empty(), "verdicts differ:\n{}", failed.join("\n"));
}

/// The verdicts the snapshots must give, stated here too, so a golden file blessed by mistake fails.
#[test]
fn each_layout_gets_its_verdict() {
    let verdicts = |name: &str| -> Vec<(String, Verdict, Vec<String>)> {
        let dir = snapshots().join(name);
        let conf = dir.join("wilife");
        let text = std::fs::read_to_string(&conf).unwrap();
        let config = parse(&text, &conf, &Overrides::default()).unwrap();
        let r = report(&config, &state(&dir, &config));
        (r[0].paths.iter())
            .map(|p| (p.peer.to_string(), p.verdict, p.peer_ports.clone()))
            .collect()
    };
    let v = |peer: &str, verdict, ports: &[&str]| {
        let ports = ports.iter().map(|p| p.to_string()).collect();
        (peer.to_string(), verdict, ports)
    };
    use Verdict::*;
    assert_eq!(
        verdicts("mt7621-camera-and-pc-on-the-switch"),
        [
            v("command_center", BypassedBySwitch, &["lan3"]),
            v("rest_of_lan", BypassedBySwitch, &["lan1", "lan3"]),
        ]
    );
    assert_eq!(
        verdicts("ipq40xx-camera-on-wifi"),
        [
            v("command_center", Enforced, &["lan1"]),
            v("rest_of_lan", SameSegment, &["phy0-ap0"]),
        ]
    );
    assert_eq!(
        verdicts("mt7621-camera-behind-the-pcs-port"),
        [
            v("command_center", SameSegment, &["lan1"]),
            v("rest_of_lan", BypassedBySwitch, &["lan2", "lan3"]),
        ]
    );
    assert_eq!(
        verdicts("mt7621-camera-in-its-own-network"),
        [
            v("command_center", Enforced, &["lan3"]),
            v("rest_of_lan", Enforced, &[]),
        ]
    );
    // The VLAN remedy applied: the camera's port alone untagged in VLAN 60, the PC's in VLAN 1.
    assert_eq!(
        verdicts("mt7621-camera-in-its-own-vlan"),
        [
            v("command_center", Enforced, &["lan3"]),
            v("rest_of_lan", Enforced, &[]),
        ]
    );
    assert_eq!(
        verdicts("mt7621-isolated-ports"),
        [
            v("command_center", BypassedBySwitch, &["lan3"]),
            v("rest_of_lan", BypassedBySwitch, &["lan3"]),
        ]
    );
    assert_eq!(
        verdicts("camera-not-seen"),
        [
            v("command_center", Unknown, &[]),
            v("rest_of_lan", Unknown, &[]),
        ]
    );
}
