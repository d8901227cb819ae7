//! Golden remedies: for each router snapshot under `agent/tests/switching/` (see the switching tests),
//! each case under its `remedy/` holds the router's `network`, `firewall` and `dhcp` files, and
//! `expected.uci`: the `uci batch` script the remedy writes, or why there is none; and `expected.json`,
//! the API's answer (`/api/v1/remedy`), which the LuCI browser test shows.
//! `UPDATE_GOLDEN=1 cargo test -p wilife-agent remedy` rewrites them; review the diff.

use super::*;
use crate::config::uci::{parse as parse_uci, Entry};
use crate::config::{parse, Overrides};
use crate::net::switching::report;
use crate::net::switching::tests::{snapshots, state};
use std::path::Path;

fn uci_file(case: &Path, name: &str) -> Vec<Section> {
    let text = std::fs::read_to_string(case.join(name)).unwrap();
    parse_uci(&text).unwrap_or_else(|e| panic!("{}/{name}: {e:?}", case.display()))
}

/// The plan for one case, and the case's files.
fn plan_of(snapshot: &Path, case: &Path) -> (Result<Plan, String>, [Vec<Section>; 3]) {
    let conf = snapshot.join("wilife");
    let text = std::fs::read_to_string(&conf).unwrap();
    let config = parse(&text, &conf, &Overrides::default()).unwrap();
    let r = report(&config, &state(snapshot, &config));
    let files = [
        uci_file(case, "network"),
        uci_file(case, "firewall"),
        uci_file(case, "dhcp"),
    ];
    let wilife = parse_uci(&text).unwrap();
    let plan = plan(
        &config,
        &r,
        &Files {
            wilife: &wilife,
            network: &files[0],
            firewall: &files[1],
            dhcp: &files[2],
        },
    );
    (plan, files)
}

/// The plan as the golden file shows it: what it says, then the script.
fn shown(plan: &Result<Plan, String>) -> String {
    match plan {
        Err(why) => format!("# nothing to apply: {why}\n"),
        Ok(p) => {
            let mut out = format!("# {}\n", p.headline());
            for n in &p.notes {
                out.push_str(&format!("# note: {n}\n"));
            }
            out.push_str(&uci_batch(&p.changes));
            if let Some(i) = &p.isolation {
                out.push_str(&format!("# the lighter alternative: {}\n", i.message));
                for line in uci_batch(&i.changes).lines() {
                    out.push_str(&format!("#   {line}\n"));
                }
            }
            out
        }
    }
}

fn cases() -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut out = Vec::new();
    for snap in std::fs::read_dir(snapshots()).unwrap() {
        let snap = snap.unwrap().path();
        let Ok(dir) = std::fs::read_dir(snap.join("remedy")) else {
            continue;
        };
        for case in dir {
            out.push((snap.clone(), case.unwrap().path()));
        }
    }
    out.sort();
    out
}

#[test]
fn remedies_of_router_snapshots() {
    let cases = cases();
    assert!(cases.len() >= 6, "remedy cases missing");
    let mut failed = Vec::new();
    for (snap, case) in cases {
        let plan = plan_of(&snap, &case).0;
        let answer = match &plan {
            Ok(p) => serde_json::json!({"plan": p, "uci_batch": uci_batch(&p.changes)}),
            Err(reason) => serde_json::json!({ "reason": reason }),
        };
        let answer = serde_json::to_string_pretty(&answer).unwrap() + "\n";
        for (file, got) in [("expected.uci", shown(&plan)), ("expected.json", answer)] {
            let golden = case.join(file);
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&golden, &got).unwrap();
            } else if std::fs::read_to_string(&golden).unwrap_or_default() != got {
                failed.push(format!("{}:\n{got}", golden.display()));
            }
        }
    }
    assert!(failed.is_empty(), "remedies differ:\n{}", failed.join("\n"));
}

/// A UCI file after a plan's changes, applied as `uci batch` applies them (named sections created,
/// `@type[index]` found by position), to check what the plan means, not only what it says.
fn applied(mut sections: Vec<Section>, config: &str, changes: &[Op]) -> Vec<Section> {
    for op in changes {
        let (at, option, values) = match op {
            Op::Add {
                config: c,
                section,
                kind,
            } if *c == config => {
                sections.push(Section {
                    kind: kind.to_string(),
                    name: Some(section.clone()),
                    line: 0,
                    entries: Vec::new(),
                });
                continue;
            }
            Op::Set {
                config: c,
                at,
                option,
                value,
            } if *c == config => (at, option, vec![(value.clone(), false)]),
            Op::SetList {
                config: c,
                at,
                option,
                values,
                ..
            } if *c == config => (
                at,
                option,
                values.iter().map(|v| (v.clone(), true)).collect(),
            ),
            _ => continue,
        };
        let s = match at {
            At::Named { section } => sections
                .iter_mut()
                .find(|s| s.name.as_ref() == Some(section))
                .unwrap_or_else(|| panic!("no section {section}")),
            At::Found {
                kind,
                index,
                option: key,
                value,
            } => {
                let s = (sections.iter_mut())
                    .filter(|s| &s.kind == kind)
                    .nth(*index)
                    .unwrap_or_else(|| panic!("no @{kind}[{index}]"));
                assert_eq!(
                    super::option(s, key),
                    Some(value.as_str()),
                    "@{kind}[{index}]"
                );
                s
            }
        };
        s.entries.retain(|e| e.key != *option);
        s.entries
            .extend(values.into_iter().map(|(value, is_list)| Entry {
                key: option.to_string(),
                value,
                is_list,
                line: 0,
            }));
    }
    sections
}

fn section<'a>(sections: &'a [Section], kind: &str, key: &str, value: &str) -> &'a Section {
    (sections.iter())
        .find(|s| s.kind == kind && super::option(s, key) == Some(value))
        .unwrap_or_else(|| panic!("no {kind} with {key} {value}"))
}

/// What each plan must do, stated here too, so a golden file blessed by mistake fails.
#[test]
fn each_remedy_routes_the_camera_and_keeps_the_lan() {
    let snap = snapshots().join("mt7621-camera-and-pc-on-the-switch");

    // A bridge of its own: lan2 leaves br-lan, which keeps the others and lan's address.
    let (plan, [network, firewall, dhcp]) = plan_of(&snap, &snap.join("remedy/own-bridge"));
    let plan = plan.unwrap();
    assert_eq!(plan.ports, ["lan2"]);
    // 192.168.60.0/24 is the guest network's: the next one is taken.
    assert_eq!(plan.address, "192.168.61.1/24");
    let net = applied(network, "network", &plan.changes);
    assert_eq!(
        list(section(&net, "device", "name", "br-lan"), "ports"),
        ["lan1", "lan3", "lan4"]
    );
    assert_eq!(
        list(section(&net, "device", "name", "br-wilifecam"), "ports"),
        ["lan2"]
    );
    let cam = net
        .iter()
        .find(|s| s.name.as_deref() == Some(NETWORK))
        .unwrap();
    assert_eq!(super::option(cam, "device"), Some("br-wilifecam"));
    let lan = net
        .iter()
        .find(|s| s.name.as_deref() == Some("lan"))
        .unwrap();
    assert_eq!(super::option(lan, "device"), Some("br-lan"));
    assert_eq!(super::option(lan, "ipaddr"), Some("192.168.1.1"));
    let fw = applied(firewall, "firewall", &plan.changes);
    let zone = section(&fw, "zone", "name", NETWORK);
    assert_eq!(super::option(zone, "forward"), Some("REJECT"));
    assert_eq!(super::option(zone, "input"), Some("REJECT"));
    let dhcp_rule = section(&fw, "rule", "src", NETWORK);
    assert_eq!(super::option(dhcp_rule, "dest_port"), Some("67"));
    // No forwarding from the camera zone: what passes is what the camera rules grant.
    assert!(!fw
        .iter()
        .any(|s| s.kind == "forwarding" && super::option(s, "src") == Some(NETWORK)));
    let pools = applied(dhcp, "dhcp", &plan.changes);
    section(&pools, "dhcp", "interface", NETWORK);
    // mt7530 carries isolation into the switch: offered, with what it cannot do.
    let iso = plan.isolation.expect("mtk isolates in hardware");
    assert!(iso.message.contains("no replacement"), "{}", iso.message);

    // VLAN filtering: lan2 leaves VLAN 1 (untagged there), keeps its tagged VLAN 10, and is the
    // untagged member of a new VLAN; lan keeps br-lan.1.
    let (plan, [network, ..]) = plan_of(&snap, &snap.join("remedy/bridge-vlan"));
    let plan = plan.unwrap();
    assert_eq!(plan.device, "br-lan.60");
    assert_eq!(plan.address, "192.168.60.1/24");
    let net = applied(network, "network", &plan.changes);
    let vlan = |id: &str| list(section(&net, "bridge-vlan", "vlan", id), "ports");
    assert_eq!(vlan("1"), ["lan1:u*", "lan3:u*", "lan4:t"]);
    assert_eq!(vlan("10"), ["lan2:t", "lan4:t"]);
    assert_eq!(vlan("60"), ["lan2:u*"]);
    let lan = net
        .iter()
        .find(|s| s.name.as_deref() == Some("lan"))
        .unwrap();
    assert_eq!(super::option(lan, "device"), Some("br-lan.1"));

    // Applied before: lan2 joins the existing camera bridge; nothing else is created twice.
    let (plan, [network, ..]) = plan_of(&snap, &snap.join("remedy/again"));
    let plan = plan.unwrap();
    assert!(
        !plan.changes.iter().any(|op| matches!(op, Op::Add { .. })),
        "{plan:?}"
    );
    let net = applied(network, "network", &plan.changes);
    assert_eq!(
        list(section(&net, "device", "name", "br-wilifecam"), "ports"),
        ["lan4", "lan2"]
    );
    assert_eq!(
        list(section(&net, "device", "name", "br-lan"), "ports"),
        ["lan1", "lan3"]
    );

    // The camera behind the Command Center's own port: no router can help, and it says so.
    let snap = snapshots().join("mt7621-camera-behind-the-pcs-port");
    let why = plan_of(&snap, &snap.join("remedy/refused")).0.unwrap_err();
    assert!(why.contains("shares lan1 with the Command Center"), "{why}");

    // On Wi-Fi the CPU sees the camera's traffic to the PC: nothing to move.
    let snap = snapshots().join("ipq40xx-camera-on-wifi");
    let why = plan_of(&snap, &snap.join("remedy/nothing")).0.unwrap_err();
    assert!(why.contains("nothing needs to move"), "{why}");
}

#[test]
fn values_are_quoted_for_uci_batch() {
    let changes = [Op::Set {
        config: "network",
        at: named("x"),
        option: "name",
        value: "a'b".into(),
    }];
    assert_eq!(uci_batch(&changes), "set network.x.name='a'\\''b'\n");
    assert!(!safe_word("lan2;reboot"));
    assert!(!safe_word("lan 2"));
    assert!(safe_word("lan2"));
}
