//! Desired state -> one nftables JSON batch that replaces our tables whole, atomically: `table inet wilife`
//! (forwards, camera rules on the routed path, outbound allowances, the LAN-only guard) and, when cameras
//! are configured, `table bridge wilife` (camera rules between ports of one bridge).
//! Pure: values in, a batch out; nothing here reads the machine.
//!
//! The connmark handshake: every flow we grant gets `connmark` set in our table; fw4's forward chain accepts
//! flows carrying that bit through the static include the package ships (fw4 reloads cannot lose it).
//! Our inet chains only ever *restrict* (drop) or mark: an accept there would not be final anyway.

pub mod cameras;
mod nft;
pub mod outbound;
pub mod upnp;

use super::{command_center_ips, Forward, NetFacts, Origin};
use crate::config::{Config, DirectAccess};
use crate::consts::{PRIO_DSTNAT, PRIO_FILTER, PRIO_SRCNAT, SSDP_PORT, TABLE};
use nft::*;
use serde_json::{json, Value};

pub const CHAIN_DSTNAT: &str = "dstnat";
pub const CHAIN_FORWARD: &str = "forward";
/// The forward rules of flows we granted (connmark bit set): the forward chain's second rule sends
/// them here, so they skip every rule about new and foreign flows.
pub const CHAIN_GRANTED: &str = "granted_flows";
pub const CHAIN_SRCNAT: &str = "srcnat";
/// The router's own connections to its public address, marked by the end-to-end probe, take the
/// forwards as a connection from the internet would (nat output hook).
pub const CHAIN_PROBE: &str = "probe";
pub const CHAIN_INPUT: &str = "input";

pub const SET_WAN_IPV4: &str = "wan_ipv4";
pub const SET_LAN_IPV4: &str = "lan_ipv4";

/// Everything the renderer needs, as values.
pub struct Desired<'a> {
    pub config: &'a Config,
    pub forwards: &'a [Forward],
    pub facts: &'a NetFacts,
}

/// The rendered tables, as the applier takes them: `table inet wilife` always, `table bridge wilife`
/// when cameras are configured. Both go to the kernel in one transaction; a kernel without the bridge
/// family (no kmod-nft-bridge) gets the inet table alone (`Nft::replace` decides that).
#[derive(Debug, Clone, PartialEq)]
pub struct Tables {
    /// The commands that build `table inet wilife` from scratch.
    pub inet: Vec<serde_json::Value>,
    /// The commands that build `table bridge wilife`; empty: no bridge table.
    pub bridge: Vec<serde_json::Value>,
}

impl Tables {
    /// The families of the tables built (what the applier lists back and the stop deletes).
    pub fn families(&self) -> Vec<String> {
        let mut v = vec!["inet".to_string()];
        if !self.bridge.is_empty() {
            v.push("bridge".into());
        }
        v
    }

    /// Both tables as one document for `nft -j -f`.
    pub fn batch(&self) -> serde_json::Value {
        let all: Vec<&serde_json::Value> = self.inet.iter().chain(&self.bridge).collect();
        serde_json::json!({ "nftables": all })
    }

    /// The routed part alone: what a kernel without the bridge family can hold.
    pub fn without_bridge(&self) -> Tables {
        Tables {
            inet: self.inet.clone(),
            bridge: Vec::new(),
        }
    }
}

/// Both tables: create-or-clear each, then build it from scratch.
pub fn render(d: &Desired) -> Tables {
    let mut b = Builder::default();
    let c = d.config;
    // UPnP mappings are elements of sets the mode always has, so a mapping change changes no rule.
    let upnp = upnp::active(c);
    let statics: Vec<&Forward> = d
        .forwards
        .iter()
        .filter(|f| f.origin == Origin::Static)
        .collect();
    b.replace_table(INET);
    b.counters(&statics);
    b.sets(d);
    if upnp {
        b.upnp_sets(d.forwards);
    }
    let cams = cameras::Cameras::new(c, d.facts);
    cams.routed_sets(&mut b);
    b.chains();
    b.guard_lan_services(c);
    b.dispatch(c.connmark, &cams);
    b.revoke_ungranted(upnp, &statics);
    if upnp {
        b.upnp_grant(c);
    }
    cams.routed(&mut b);
    outbound::render(&mut b, c);
    // Without a LAN device (none resolved yet) there is no one to reflect for.
    let reflection = c.direct.reflection && !c.lan_devices.is_empty();
    for f in &statics {
        b.direct_forward(c, f);
        if reflection {
            b.reflection(c, f);
        }
        b.probe_forward(c, f);
    }
    if upnp {
        b.upnp_rules(c, reflection);
    }
    if reflection && (upnp || !statics.is_empty()) {
        b.reflection_masquerade(c);
    }
    b.granted_now(c.connmark);
    let bridge_starts = b.cmds.len();
    cams.bridged(&mut b);
    let bridge = b.cmds.split_off(bridge_starts);
    Tables {
        inet: b.cmds,
        bridge,
    }
}

/// A base chain's type, hook and priority.
type Hook = (&'static str, &'static str, i32);

#[derive(Default)]
pub(super) struct Builder {
    /// The commands, as the JSON nft reads.
    cmds: Vec<serde_json::Value>,
}

impl Builder {
    /// `add KIND BODY`
    fn add(&mut self, kind: &str, body: Value) {
        self.cmds.push(json!({ "add": { kind: body } }));
    }

    /// A rule in `table inet wilife`.
    fn rule(&mut self, chain: &str, comment: String, expr: Vec<S>) {
        self.rule_in(INET, chain, comment, expr);
    }

    fn rule_in(&mut self, family: &str, chain: &str, comment: String, expr: Vec<S>) {
        let body = json!({ "family": family, "table": TABLE, "chain": chain, "expr": expr, "comment": comment });
        self.add("rule", body);
    }

    /// `add table F wilife; delete table F wilife; add table F wilife` — one transaction, so the
    /// kernel never holds a half-built table, and it works whether or not the table existed.
    fn replace_table(&mut self, family: &str) {
        let table = json!({ "family": family, "name": TABLE });
        self.add("table", table.clone());
        self.cmds
            .push(json!({ "delete": { "table": table.clone() } }));
        self.add("table", table);
    }

    /// A named counter. Its values are carried over re-applies by the applier.
    fn counter(&mut self, family: &str, name: String) {
        // (`bytes: null`: the shape nft has always been given here; it takes it as no value.)
        let body = json!({ "family": family, "table": TABLE, "name": name, "bytes": null });
        self.add("counter", body);
    }

    /// Named counters, two per static forward (a UPnP mapping's are its elements').
    fn counters(&mut self, forwards: &[&Forward]) {
        for f in forwards {
            for name in [f.conns_counter(), f.traffic_counter()] {
                self.counter(INET, name);
            }
        }
    }

    /// A named set of `set_type` (a type's name, or a list of them for concatenations); `interval`
    /// for ranges and prefixes.
    fn set(&mut self, family: &str, name: &str, set_type: Value, interval: bool, elem: Vec<E>) {
        let mut body = json!({ "family": family, "table": TABLE, "name": name, "type": set_type });
        if interval {
            body["flags"] = json!(["interval"]);
        }
        if !elem.is_empty() {
            body["elem"] = Value::Array(elem);
        }
        self.add("set", body);
    }

    fn sets(&mut self, d: &Desired) {
        let ipv4 = || string("ipv4_addr");
        // set wan_ipv4 { type ipv4_addr; elements = { 203.0.113.1 } }
        let wan = d.facts.wan_ipv4.iter().map(string).collect();
        self.set(INET, SET_WAN_IPV4, ipv4(), false, wan);
        // set lan_ipv4 { type ipv4_addr; flags interval; elements = { 192.168.1.0/24 } }
        let lan = d
            .facts
            .lan_ipv4_nets
            .iter()
            .map(|(a, l)| prefix(*a, *l))
            .collect();
        self.set(INET, SET_LAN_IPV4, ipv4(), true, lan);
        // set cc_ipv4 { type ipv4_addr; elements = { 192.168.1.10 } }
        let cc = command_center_ips(d.config, d.facts)
            .into_iter()
            .map(string)
            .collect();
        self.set(INET, cameras::SET_CC_IPV4, ipv4(), false, cc);
    }

    /// A chain; `hook` makes it a base chain (type, hook, priority; policy accept).
    fn chain(&mut self, family: &str, name: &str, hook: Option<Hook>) {
        let mut body = json!({ "family": family, "table": TABLE, "name": name });
        if let Some((kind, hook, prio)) = hook {
            body["type"] = json!(kind);
            body["hook"] = json!(hook);
            body["prio"] = json!(prio);
            body["policy"] = json!("accept");
        }
        self.add("chain", body);
    }

    fn chains(&mut self) {
        // chain dstnat { type nat hook prerouting priority dstnat - 10; policy accept; }
        self.chain(INET, CHAIN_DSTNAT, Some(("nat", "prerouting", PRIO_DSTNAT)));
        // chain forward { type filter hook forward priority filter - 10; policy accept; }
        self.chain(
            INET,
            CHAIN_FORWARD,
            Some(("filter", "forward", PRIO_FILTER)),
        );
        self.chain(INET, CHAIN_GRANTED, None);
        // chain srcnat { type nat hook postrouting priority srcnat - 10; policy accept; }
        self.chain(
            INET,
            CHAIN_SRCNAT,
            Some(("nat", "postrouting", PRIO_SRCNAT)),
        );
        // chain input { type filter hook input priority filter - 10; policy accept; }
        self.chain(INET, CHAIN_INPUT, Some(("filter", "input", PRIO_FILTER)));
        // chain probe { type nat hook output priority dstnat - 10; policy accept; }
        self.chain(INET, CHAIN_PROBE, Some(("nat", "output", PRIO_DSTNAT)));
    }

    /// The agent's LAN-only services (UPnP IGD, the API on its default addresses) are unreachable from
    /// any other device, whatever fw4's zones say: the kernel drops such packets before a socket sees them.
    fn guard_lan_services(&mut self, c: &Config) {
        // Not from loopback (`iiftype`, not a second name in the set: nft lists multi-name sets in an
        // order of its own) and not from a LAN device.
        let beyond = |devices: &[String]| {
            let mut expr = vec![not(meta("iiftype"), string("loopback"))];
            // No LAN device known yet: nothing but loopback is LAN.
            if !c.lan_devices.is_empty() {
                expr.push(not(meta("iifname"), ifname_set(devices)));
            }
            expr
        };
        let foreign = || beyond(&c.lan_devices);
        let mut tcp: Vec<u16> = Vec::new();
        // The camera networks' SSDP is for the relay (the IGD's own socket ignores it).
        let relayed = c.enabled && !c.camera_devices.is_empty();
        if (c.enabled && c.direct_access == DirectAccess::Upnp) || relayed {
            // meta iiftype != loopback iifname != "br-lan" udp dport 1900 drop
            let ssdp_devices = [c.lan_devices.clone(), c.camera_devices.clone()].concat();
            let mut expr = beyond(if relayed {
                &ssdp_devices
            } else {
                &c.lan_devices
            });
            expr.push(is(payload("udp", "dport"), num(SSDP_PORT)));
            expr.push(drop());
            let comment = if relayed {
                "wilife: SSDP only from the LAN and the camera networks"
            } else {
                "wilife: SSDP only from the LAN"
            };
            self.rule(CHAIN_INPUT, comment.into(), expr);
        }
        if c.enabled && c.direct_access == DirectAccess::Upnp {
            tcp.push(c.upnp.port);
        }
        if c.api_listen.is_empty() {
            tcp.push(c.api_port);
        }
        if tcp.is_empty() {
            return;
        }
        tcp.sort_unstable();
        // meta iiftype != loopback iifname != "br-lan" tcp dport { 5431, 8780 } drop
        let ports = one_or_set(tcp.iter().map(|p| num(*p)).collect());
        self.rule(
            CHAIN_INPUT,
            "wilife: UPnP and API only from the LAN".into(),
            [foreign(), vec![is(tcp_dport(), ports), drop()]].concat(),
        );
    }

    /// The top of the forward chain. Most forwarded packets belong to established flows we have
    /// nothing to say about: not granted by us (every rule about granted flows wants the mark) and,
    /// with isolation, not a camera's; they leave after one rule. Granted flows go to their own chain.
    fn dispatch(&mut self, bit: u32, cams: &cameras::Cameras) {
        let isolation = cams.routed_isolation_active();
        // ct state established,related ct mark & BIT != BIT ether saddr != @cameras ip daddr != @camera_ipv4 return
        let mut expr = vec![
            within(ct("state", None), json!(["established", "related"])),
            mark_lacks(bit),
        ];
        if isolation {
            let (macs, ips) = (cams.macs(), cams.camera_ips());
            expr.extend(not_in_set(
                payload("ether", "saddr"),
                cameras::SET_CAMERAS,
                &macs,
            ));
            expr.extend(not_in_set(
                payload("ip", "daddr"),
                cameras::SET_CAMERA_IPV4,
                &ips,
            ));
        }
        expr.push(ret());
        self.rule(
            CHAIN_FORWARD,
            "wilife: established flows of no concern".into(),
            expr,
        );
        // ct mark & BIT == BIT goto granted_flows
        self.rule(
            CHAIN_FORWARD,
            "wilife: flows we granted".into(),
            vec![mark_has(bit), goto(CHAIN_GRANTED.into())],
        );
    }

    /// The end of the forward chain: a flow granted by one of its rules just now is counted with the
    /// rest.
    fn granted_now(&mut self, bit: u32) {
        // ct mark & BIT == BIT goto granted_flows
        self.rule(
            CHAIN_FORWARD,
            "wilife: flows granted just now".into(),
            vec![mark_has(bit), goto(CHAIN_GRANTED.into())],
        );
    }

    /// A forward that is revoked must end live sessions too: conntrack keeps their NAT and fw4 accepts
    /// established flows, so marked DNAT'ed flows whose `port . host` is no longer granted are dropped.
    /// In static mode each forward's flows are counted and leave the chain, one rule per forward (two
    /// compares, no lookup in an interval set of pairs, the costliest kind), and any other DNAT'ed
    /// flow is dropped; in UPnP mode, by the mappings' set, whose elements change alone.
    fn revoke_ungranted(&mut self, upnp: bool, statics: &[&Forward]) {
        let comment = || "wilife: end flows whose forward was revoked".to_string();
        let dnat_tcp = || vec![ct_status_dnat(), is(meta("l4proto"), string("tcp"))];
        if upnp {
            // (granted_flows) ct status dnat meta l4proto tcp ct original proto-dst . ct reply ip saddr != @upnp_granted drop
            let unlike = not(forwarded_to(), set_ref(upnp::SET_GRANTED));
            let expr = [dnat_tcp(), vec![unlike, drop()]].concat();
            self.rule(CHAIN_GRANTED, comment(), expr);
            return;
        }
        for f in statics {
            // (granted_flows) ct status dnat meta l4proto tcp ct original proto-dst 20570-20575
            //   ct reply ip saddr 192.168.1.10 counter name "fwd_tcp_20570_20575" return
            self.rule(
                CHAIN_GRANTED,
                format!("wilife: traffic tcp/{} -> {}", f.external, f.target),
                [
                    dnat_tcp(),
                    vec![
                        is(ct("proto-dst", Some("original")), ports(f)),
                        is(ct("ip saddr", Some("reply")), string(f.target)),
                        counter(f.traffic_counter()),
                        ret(),
                    ],
                ]
                .concat(),
            );
        }
        // (granted_flows) ct status dnat meta l4proto tcp drop
        let expr = [dnat_tcp(), vec![drop()]].concat();
        self.rule(CHAIN_GRANTED, comment(), expr);
    }

    /// The inbound forward from the WAN.
    fn direct_forward(&mut self, c: &Config, f: &Forward) {
        // The WAN network has no device now (down): nothing comes in to forward.
        let Some(wan) = &c.wan_device else {
            return;
        };
        // iifname "wan0" meta nfproto ipv4 tcp dport 20570-20575 counter name "fwd_…_conns"
        //   ct mark set ct mark | BIT dnat ip to 192.168.1.10
        let mut expr = vec![
            is(meta("iifname"), string(wan)),
            is(meta("nfproto"), string("ipv4")),
            is(tcp_dport(), ports(f)),
        ];
        expr.extend(mark_and_dnat(c.connmark, f));
        let comment = format!(
            "wilife: direct {:?} tcp/{} -> {}",
            f.origin, f.external, f.target
        )
        .to_lowercase();
        self.rule(CHAIN_DSTNAT, comment, expr);
    }

    /// NAT reflection: a LAN client may use the WAN address and port too.
    fn reflection(&mut self, c: &Config, f: &Forward) {
        // iifname { "br-lan" } ip saddr @lan_ipv4 ip daddr @wan_ipv4 tcp dport 20570-20575 counter name "…"
        //   ct mark set ct mark | BIT dnat ip to 192.168.1.10
        let mut expr = vec![
            is(meta("iifname"), ifname_set(&c.lan_devices)),
            is(payload("ip", "saddr"), set_ref(SET_LAN_IPV4)),
            is(payload("ip", "daddr"), set_ref(SET_WAN_IPV4)),
            is(tcp_dport(), ports(f)),
        ];
        expr.extend(mark_and_dnat(c.connmark, f));
        self.rule(
            CHAIN_DSTNAT,
            format!("wilife: reflection tcp/{} -> {}", f.external, f.target),
            expr,
        );
    }

    /// The probe's way to the public address: only its marked packets, uncounted (no connection of
    /// anyone's), to the same target as the forward.
    fn probe_forward(&mut self, c: &Config, f: &Forward) {
        // meta mark & BIT == BIT ip daddr @wan_ipv4 tcp dport 20570-20575 dnat ip to 192.168.1.10
        let expr = vec![
            packet_mark_has(c.connmark),
            is(payload("ip", "daddr"), set_ref(SET_WAN_IPV4)),
            is(tcp_dport(), ports(f)),
            dnat(string(f.target), f.target_port.map(num)),
        ];
        self.rule(
            CHAIN_PROBE,
            format!(
                "wilife: the router's probe of tcp/{} -> {}",
                f.external, f.target
            ),
            expr,
        );
    }

    /// Reflected flows must come back through the router: masquerade them towards the LAN.
    fn reflection_masquerade(&mut self, c: &Config) {
        // oifname { "br-lan" } ct mark & BIT == BIT ct status dnat ip saddr @lan_ipv4 masquerade
        self.rule(
            CHAIN_SRCNAT,
            "wilife: reflection masquerade".into(),
            vec![
                is(meta("oifname"), ifname_set(&c.lan_devices)),
                mark_has(c.connmark),
                ct_status_dnat(),
                is(payload("ip", "saddr"), set_ref(SET_LAN_IPV4)),
                masquerade(),
            ],
        );
    }
}

/// `counter name "…_conns" ct mark set ct mark | BIT dnat ip to TARGET[:PORT]`
fn mark_and_dnat(bit: u32, f: &Forward) -> Vec<S> {
    vec![
        counter(f.conns_counter()),
        mark_set(bit),
        dnat(string(f.target), f.target_port.map(num)),
    ]
}

fn ports(f: &Forward) -> E {
    port_range(f.external.first, f.external.last)
}
