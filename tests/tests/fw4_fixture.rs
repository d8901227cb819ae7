//! The lab's fw4 rulesets. A clone with nothing beside it uses the project's own fw4-like ruleset
//! (`tests/fixtures/fw4-default.nft`); CI also has a real firewall4 ruleset beside the clone
//! (`../shared/fixtures/fw4/stock.nft`), which the lab prefers. Here the own one is shown to behave as
//! fw4 does with real packets, and held to the real one's skeleton, so the two cannot drift apart.

use std::fs;
use std::net::SocketAddr;
use wilife_lab::lab::*;

#[test]
fn the_own_fw4_ruleset_rejects_and_admits_as_fw4_does() {
    let mut lab = Lab::new();
    lab.set_fw4_fixture(&own_fw4_fixture());
    lab.load_fw4();
    let _cc = lab.echo_server(&lab.cc.clone(), 20572, "cc");
    let _remote = lab.echo_server(&lab.remote.clone(), 443, "remote");
    let wan_port = SocketAddr::from((WAN_IP, 20572));
    // fw4 alone: the internet reaches nothing inside; the LAN reaches the internet.
    assert!(!lab.reaches(&lab.remote, wan_port));
    assert!(lab.reaches(&lab.cc, SocketAddr::from((REMOTE_IP, 443))));
    // With the agent's static forward, fw4 accepts the marked flow through the include.
    let cfg = lab.write_config("wilife", &lab.config("static", ""));
    lab.start_agent(&cfg, &[]);
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan_port, "in").unwrap(),
        "cc:in"
    );
    // fw4 reload (flushes and renders only its own table): still forwarded.
    lab.load_fw4();
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan_port, "again").unwrap(),
        "cc:again"
    );
}

/// A ruleset's skeleton: each base chain with its hook line, then what decides a packet's way through
/// it (include points, the conntrack verdict map, zone jumps), in order.
fn skeleton(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chain = String::new();
    let mut base = false;
    for line in text.lines().map(str::trim) {
        let statement = line.split(" comment ").next().unwrap_or("").trim();
        if let Some(name) = statement.strip_prefix("chain ") {
            chain = name.trim_end_matches(" {").to_string();
            base = false;
        } else if statement.starts_with("type ") && statement.contains(" hook ") {
            base = true;
            out.push(format!("{chain}: {statement}"));
        } else if base && statement.starts_with("@CHAIN_PRE_") {
            out.push(format!("{chain}: {statement}"));
        } else if base && statement.starts_with("ct state vmap") {
            out.push(format!("{chain}: ct state vmap"));
        } else if base
            && statement.contains("jump ")
            && !statement.contains("jump syn_flood")
            && !statement.contains("jump helper_")
        {
            // (fw4's SYN rate limit and conntrack helper assignment are not modelled: neither decides
            // whether a flow is allowed.)
            out.push(format!("{chain}: {statement}"));
        }
    }
    out
}

#[test]
fn the_own_fw4_ruleset_has_the_real_ones_skeleton() {
    let own = fs::read_to_string(own_fw4_fixture()).unwrap();
    let Ok(real) = fs::read_to_string(shared_fw4_fixture()) else {
        eprintln!(
            "SKIPPED (loudly): {} is not beside this clone, so the own fw4 ruleset cannot be compared \
             with the real one here; CI has it",
            shared_fw4_fixture().display()
        );
        return;
    };
    let (own, real) = (skeleton(&own), skeleton(&real));
    assert!(
        real.len() > 20,
        "the real ruleset's skeleton is too small: {real:#?}"
    );
    assert_eq!(own, real);
}
