//! The camera LAN rules: what cameras and the Command Center(s) may say to each other, and (isolation)
//! that a camera reaches nothing else. Cameras are known by MAC, so a camera that changes address stays
//! covered. Two layouts, both rendered, each where it applies:
//!
//! - **Same bridge** as the PC (OpenWrt's default `br-lan`): frames between bridge ports never reach the
//!   IP hooks (without br_netfilter), so `table bridge wilife` filters them. The bridge family has no
//!   conntrack, so the rules are stateless: each direction is explicit, and answer rules keyed on a
//!   source port exclude TCP connection openers (a camera's ephemeral ports overlap 50000-65000).
//! - **Routed** (cameras on their own bridge/VLAN and zone): the inet forward chain grants camera <->
//!   Command Center flows with the connmark handshake (conntrack keeps the answers) and drops the rest.
//!
//! On both, the router's own services are guarded in the inet input chain: DHCP always, DNS if allowed.

use super::nft::*;
use super::{Builder, CHAIN_FORWARD, CHAIN_GRANTED, CHAIN_INPUT};
use crate::config::{Config, Mac};
use crate::consts::{
    CAMERA_CONTROL_PORTS, PRIO_BRIDGE_FILTER, SSDP_GROUP, SSDP_PORT, UPNP_CONTROL_PORTS,
};
use crate::firewall::{camera_id, camera_ips, command_center_ips, NetFacts};
use std::net::Ipv4Addr;

pub const SET_CAMERAS: &str = "cameras";
pub const SET_CAMERA_IPV4: &str = "camera_ipv4";
pub const SET_CC_IPV4: &str = "cc_ipv4";
/// `protocol . port` a camera may open towards a Command Center.
pub const SET_CAMERA_TO_CC: &str = "camera_to_cc";
/// `protocol . port` a Command Center may open towards a camera.
pub const SET_CC_TO_CAMERA: &str = "cc_to_camera";
/// The same ports per protocol, for the bridge: it sees every frame, and a lookup in a concatenated
/// interval set cost about 6 % of a 64-byte camera stream in the lab (a plain port interval: ~1 %).
const BRIDGE_SERVICE_SETS: [(&str, &str, bool); 4] = [
    ("camera_to_cc_tcp", "tcp", true),
    ("camera_to_cc_udp", "udp", true),
    ("cc_to_camera_tcp", "tcp", false),
    ("cc_to_camera_udp", "udp", false),
];

const CHAIN_FROM_CAMERA: &str = "from_camera";
const CHAIN_TO_CAMERA: &str = "to_camera";
const CHAIN_CAMERA_INPUT: &str = "camera_input";

/// Counters of what isolation dropped, per path.
pub const COUNTER_ISOLATION_BRIDGED: &str = "camera_isolation_bridged";
pub const COUNTER_ISOLATION_ROUTED: &str = "camera_isolation_routed";
pub const COUNTER_ISOLATION_INPUT: &str = "camera_isolation_input";

/// Per-camera traffic counters (bytes to / from the Command Centers), one pair per path.
pub fn traffic_counters(mac: &Mac) -> [String; 4] {
    let id = camera_id(mac);
    [
        format!("cam_{id}_bridged_tx"),
        format!("cam_{id}_bridged_rx"),
        format!("cam_{id}_routed_tx"),
        format!("cam_{id}_routed_rx"),
    ]
}

struct Cam {
    id: String,
    mac: Mac,
    ips: Vec<Ipv4Addr>,
}

/// The camera rules of one configuration, with the addresses known now.
pub(super) struct Cameras<'a> {
    config: &'a Config,
    cams: Vec<Cam>,
    cc_ips: Vec<Ipv4Addr>,
}

impl<'a> Cameras<'a> {
    pub(super) fn new(config: &'a Config, facts: &NetFacts) -> Self {
        let cams = if config.enabled {
            config
                .cameras
                .iter()
                .map(|c| Cam {
                    id: camera_id(&c.mac),
                    mac: c.mac,
                    ips: camera_ips(c, facts),
                })
                .collect()
        } else {
            Vec::new()
        };
        Cameras {
            config,
            cams,
            cc_ips: command_center_ips(config, facts),
        }
    }

    fn isolation(&self) -> bool {
        self.config.camera_rules.isolation
    }

    /// The ports of each protocol (merged, so a video port inside another range cannot make
    /// overlapping interval elements) a camera or a Command Center may open towards the other: the
    /// same both ways. The video port too: the manual does not say which side opens the stream, and a
    /// wrong guess would break video for good (it is still only between cameras and Command Centers).
    /// The two directions keep their own sets, so either can change alone.
    fn service_ranges(&self) -> [(&'static str, Vec<(u16, u16)>); 2] {
        let v = self.config.camera_rules.video_port;
        let tcp = vec![CAMERA_CONTROL_PORTS, UPNP_CONTROL_PORTS, (v, v)];
        let udp = vec![CAMERA_CONTROL_PORTS, (SSDP_PORT, SSDP_PORT)];
        [("tcp", merge_ranges(tcp)), ("udp", merge_ranges(udp))]
    }

    /// `tcp . 22211, tcp . 5800-5821, …`
    fn services(&self) -> Vec<E> {
        let mut out = Vec::new();
        for (proto, ranges) in self.service_ranges() {
            for (a, b) in ranges {
                out.push(concat(vec![string(proto), port_range(a, b)]));
            }
        }
        out
    }

    /// `5800-5821, 22211, …`: the ports of one protocol.
    fn ports(&self, proto: &str) -> Vec<E> {
        let ranges = self.service_ranges();
        let (_, ranges) = ranges
            .iter()
            .find(|(p, _)| *p == proto)
            .expect("tcp and udp");
        ranges.iter().map(|(a, b)| port_range(*a, *b)).collect()
    }

    fn sets(&self, b: &mut Builder, family: &str) {
        if family == INET {
            // The bridge picks a camera by a verdict map instead.
            b.set(
                family,
                SET_CAMERAS,
                string("ether_addr"),
                false,
                self.macs(),
            );
            let ips = self.camera_ips();
            b.set(family, SET_CAMERA_IPV4, string("ipv4_addr"), false, ips);
        } else {
            // inet has it already (sets of the main table).
            b.set(family, SET_CC_IPV4, string("ipv4_addr"), false, self.cc());
        }
        if family == BRIDGE {
            for (name, proto, _) in BRIDGE_SERVICE_SETS {
                let ports = self.ports(proto);
                b.set(family, name, string("inet_service"), true, ports);
            }
            return;
        }
        let ty = || serde_json::json!(["inet_proto", "inet_service"]);
        b.set(family, SET_CAMERA_TO_CC, ty(), true, self.services());
        b.set(family, SET_CC_TO_CAMERA, ty(), true, self.services());
    }

    /// Per-camera counting on the routed path: `KEY vmap { mac : jump cam_ID_tx }`, each chain one
    /// named counter.
    fn routed_count_chains(&self, b: &mut Builder) {
        let family = INET;
        for c in &self.cams {
            for dir in ["tx", "rx"] {
                let chain = format!("cam_{}_{dir}", c.id);
                let name = format!("cam_{}_routed_{dir}", c.id);
                b.counter(family, name.clone());
                b.chain(family, &chain, None);
                // counter name "cam_ID_routed_tx"
                b.rule_in(
                    family,
                    &chain,
                    format!("wilife: camera {} {dir}", c.mac),
                    vec![counter(&name)],
                );
            }
        }
    }

    /// The inet part: sets, per-camera counters, and rules on the routed path and the router's input.
    /// The sets of the routed rules (before any rule refers to them).
    pub(super) fn routed_sets(&self, b: &mut Builder) {
        if !self.cams.is_empty() {
            self.sets(b, INET);
        }
    }

    /// Does the forward chain isolate cameras (so every packet from or to one is looked at)?
    /// The elements of `cameras`, `camera_ipv4` and `cc_ipv4`, for `in_set`.
    pub(super) fn macs(&self) -> Vec<E> {
        self.cams.iter().map(|c| mac(&c.mac)).collect()
    }

    pub(super) fn camera_ips(&self) -> Vec<E> {
        let mut ips: Vec<Ipv4Addr> = self.cams.iter().flat_map(|c| c.ips.clone()).collect();
        ips.sort();
        ips.dedup();
        ips.into_iter().map(string).collect()
    }

    fn cc(&self) -> Vec<E> {
        self.cc_ips.iter().map(string).collect()
    }

    pub(super) fn routed_isolation_active(&self) -> bool {
        !self.cams.is_empty() && self.isolation()
    }

    pub(super) fn routed(&self, b: &mut Builder) {
        if self.cams.is_empty() {
            return;
        }
        self.routed_count_chains(b);
        self.routed_grants(b);
        if self.isolation() {
            self.routed_isolation(b);
            self.camera_input(b);
        }
        self.routed_counting(b);
    }

    /// New flows between cameras and Command Centers on the listed services get our connmark bit.
    fn routed_grants(&self, b: &mut Builder) {
        let bit = self.config.connmark;
        let from_camera = || in_set(payload("ether", "saddr"), SET_CAMERAS, &self.macs());
        let cc = |field| in_set(payload("ip", field), SET_CC_IPV4, &self.cc());
        // ct state new ether saddr @cameras ip daddr @cc_ipv4 meta l4proto . th dport @camera_to_cc
        //   ct mark set ct mark | BIT
        b.rule(
            CHAIN_FORWARD,
            "wilife: camera -> command center (routed)".into(),
            vec![
                ct_new(),
                from_camera(),
                cc("daddr"),
                is(l4_port("dport"), set_ref(SET_CAMERA_TO_CC)),
                mark_set(bit),
            ],
        );
        // ct state new ip saddr @cc_ipv4 ip daddr @camera_ipv4 meta l4proto . th dport @cc_to_camera
        //   ct mark set ct mark | BIT
        b.rule(
            CHAIN_FORWARD,
            "wilife: command center -> camera (routed)".into(),
            vec![
                ct_new(),
                cc("saddr"),
                in_set(payload("ip", "daddr"), SET_CAMERA_IPV4, &self.camera_ips()),
                is(l4_port("dport"), set_ref(SET_CC_TO_CAMERA)),
                mark_set(bit),
            ],
        );
        // SSDP between networks only flows where a multicast router forwards it; then it is granted.
        // ct state new ether saddr @cameras ip daddr 239.255.255.250 udp dport 1900 ct mark set …
        b.rule(
            CHAIN_FORWARD,
            "wilife: camera SSDP (routed multicast)".into(),
            vec![
                ct_new(),
                from_camera(),
                is(payload("ip", "daddr"), string(SSDP_GROUP)),
                is(payload("udp", "dport"), num(SSDP_PORT)),
                mark_set(bit),
            ],
        );
    }

    /// Anything else from or to a camera on the routed path is dropped and counted.
    fn routed_isolation(&self, b: &mut Builder) {
        let bit = self.config.connmark;
        let from_camera = || in_set(payload("ether", "saddr"), SET_CAMERAS, &self.macs());
        b.counter(INET, COUNTER_ISOLATION_ROUTED.into());
        // ether saddr @cameras ct mark & BIT != BIT counter name "…" drop
        b.rule(
            CHAIN_FORWARD,
            "wilife: camera isolation (routed)".into(),
            vec![
                from_camera(),
                mark_lacks(bit),
                counter(COUNTER_ISOLATION_ROUTED),
                drop(),
            ],
        );
        // ip daddr @camera_ipv4 ct mark & BIT != BIT drop
        b.rule(
            CHAIN_FORWARD,
            "wilife: only command centers reach cameras (routed)".into(),
            vec![
                in_set(payload("ip", "daddr"), SET_CAMERA_IPV4, &self.camera_ips()),
                mark_lacks(bit),
                counter(COUNTER_ISOLATION_ROUTED),
                drop(),
            ],
        );
    }

    /// Granted traffic is counted per camera, each way.
    fn routed_counting(&self, b: &mut Builder) {
        // (granted_flows) ip daddr @cc_ipv4 ether saddr vmap { MAC : jump cam_ID_tx }
        let tx = self
            .cams
            .iter()
            .map(|c| (mac(&c.mac), format!("cam_{}_tx", c.id)));
        b.rule(
            CHAIN_GRANTED,
            "wilife: camera traffic to command centers (routed)".into(),
            vec![
                in_set(payload("ip", "daddr"), SET_CC_IPV4, &self.cc()),
                vmap_jump(payload("ether", "saddr"), tx.collect()),
            ],
        );
        // (granted_flows) ip saddr @cc_ipv4 ip daddr vmap { IP : jump cam_ID_rx }
        let mut rx: Vec<(Ipv4Addr, String)> = Vec::new();
        for c in &self.cams {
            for ip in &c.ips {
                if !rx.iter().any(|(seen, _)| seen == ip) {
                    rx.push((*ip, format!("cam_{}_rx", c.id)));
                }
            }
        }
        if !rx.is_empty() {
            b.rule(
                CHAIN_GRANTED,
                "wilife: command center traffic to cameras (routed)".into(),
                vec![
                    in_set(payload("ip", "saddr"), SET_CC_IPV4, &self.cc()),
                    vmap_jump(
                        payload("ip", "daddr"),
                        rx.into_iter().map(|(ip, c)| (string(ip), c)).collect(),
                    ),
                ],
            );
        }
    }

    /// What a camera may ask of the router itself: DHCP, IGMP (multicast membership, which SSDP needs on
    /// snooping bridges), DNS if allowed; nothing else reaches a local socket.
    fn camera_input(&self, b: &mut Builder) {
        let inet = INET;
        b.counter(inet, COUNTER_ISOLATION_INPUT.into());
        b.chain(inet, CHAIN_CAMERA_INPUT, None);
        // ether saddr @cameras jump camera_input
        b.rule(
            CHAIN_INPUT,
            "wilife: cameras to the router".into(),
            vec![
                in_set(payload("ether", "saddr"), SET_CAMERAS, &self.macs()),
                jump(CHAIN_CAMERA_INPUT.into()),
            ],
        );
        let ret = |comment: &str, expr: Vec<S>| (comment.to_string(), [expr, vec![ret()]].concat());
        let mut rules = vec![
            // udp dport 67 return
            ret(
                "wilife: camera DHCP",
                vec![is(payload("udp", "dport"), num(67u16))],
            ),
            // ip protocol igmp return
            ret(
                "wilife: camera IGMP",
                vec![is(payload("ip", "protocol"), string("igmp"))],
            ),
        ];
        if !self.config.camera_devices.is_empty() {
            // udp dport { 1900, 1901 } return: to the SSDP relay of the camera networks
            rules.push(ret(
                "wilife: camera SSDP to the relay",
                vec![is(
                    payload("udp", "dport"),
                    one_or_set(vec![num(SSDP_PORT), num(crate::consts::SSDP_RELAY_PORT)]),
                )],
            ));
        }
        if self.config.camera_rules.dns {
            // meta l4proto { tcp, udp } th dport 53 return
            rules.push(ret(
                "wilife: camera DNS",
                vec![
                    is(
                        meta("l4proto"),
                        one_or_set(vec![string("tcp"), string("udp")]),
                    ),
                    is(payload("th", "dport"), num(53u16)),
                ],
            ));
        }
        // counter name "camera_isolation_input" drop
        rules.push((
            "wilife: camera isolation (router)".into(),
            vec![counter(COUNTER_ISOLATION_INPUT), drop()],
        ));
        for (comment, expr) in rules {
            b.rule(CHAIN_CAMERA_INPUT, comment, expr);
        }
    }

    /// `table bridge wilife`: the same-bridge layout, stateless. A frame between two other hosts
    /// meets two hash lookups (its source and its destination MAC) and nothing else; a camera's frame
    /// is dispatched by the same lookup to its own chain, which asks the shared policy and counts
    /// what it allows.
    pub(super) fn bridged(&self, b: &mut Builder) {
        if self.cams.is_empty() {
            return;
        }
        let br = BRIDGE;
        b.replace_table(br);
        if self.isolation() {
            b.counter(br, COUNTER_ISOLATION_BRIDGED.into());
        }
        self.sets(b, br);
        let hook = ("filter", "forward", PRIO_BRIDGE_FILTER);
        b.chain(br, CHAIN_FORWARD, Some(hook));
        b.chain(br, CHAIN_FROM_CAMERA, None);
        b.chain(br, CHAIN_TO_CAMERA, None);
        for (field, dir, policy, comment) in [
            ("saddr", "tx", CHAIN_FROM_CAMERA, "frames from cameras"),
            ("daddr", "rx", CHAIN_TO_CAMERA, "frames to cameras"),
        ] {
            self.bridge_camera_chains(b, dir, policy);
            // ether saddr vmap { MAC : jump cam_ID_tx, … }; one camera: ether saddr MAC jump cam_ID_tx
            let mut entries: Vec<(E, String)> = (self.cams.iter())
                .map(|c| (mac(&c.mac), format!("cam_{}_{dir}", c.id)))
                .collect();
            let key = payload("ether", field);
            let pick = match entries.len() {
                1 => {
                    let (m, chain) = entries.remove(0);
                    vec![is(key, m), jump(chain)]
                }
                _ => vec![vmap_jump(key, entries)],
            };
            bridge_rule(b, CHAIN_FORWARD, comment, pick);
        }
        self.bridge_direction(b, CHAIN_FROM_CAMERA, "daddr");
        self.bridge_direction(b, CHAIN_TO_CAMERA, "saddr");
    }

    /// One chain per camera and direction: the shared `policy` returns what it allows, which is then
    /// counted as the camera's traffic with the Command Centers and accepted.
    fn bridge_camera_chains(&self, b: &mut Builder, dir: &str, policy: &str) {
        let br = BRIDGE;
        for c in &self.cams {
            let chain = format!("cam_{}_{dir}", c.id);
            let name = format!("cam_{}_bridged_{dir}", c.id);
            b.counter(br, name.clone());
            b.chain(br, &chain, None);
            // jump from_camera
            bridge_rule(b, &chain, "the camera policy", vec![jump(policy.into())]);
            // counter name "cam_ID_bridged_tx" accept
            bridge_rule(
                b,
                &chain,
                &format!("camera {} {dir}, allowed", c.mac),
                vec![counter(&name), accept()],
            );
        }
    }

    /// One direction between cameras and Command Centers on the bridge: `chain` sees frames from (or to)
    /// cameras and returns those between a camera and a Command Center (`peer`: its address field) on
    /// the listed services. The port comes first: its protocol is the rule's first check, so a frame
    /// meets at most one port lookup per protocol.
    fn bridge_direction(&self, b: &mut Builder, chain: &str, peer: &'static str) {
        let arp = || vec![is(payload("ether", "type"), string("arp")), accept()];
        let cc_ips = self.cc();
        let cc = || in_set(payload("ip", peer), SET_CC_IPV4, &cc_ips);
        // A camera opens `camera_to_cc_*` and answers on `cc_to_camera_*`; the Command Center the
        // reverse.
        let camera = chain == CHAIN_FROM_CAMERA;
        let set = |opens: bool, p: &str| {
            let (name, ..) = BRIDGE_SERVICE_SETS
                .iter()
                .find(|(_, q, c)| *q == p && *c == (opens == camera))
                .expect("a set per protocol and side");
            set_ref(name)
        };
        // ether type arp accept
        bridge_rule(b, chain, "ARP", arp());
        for p in ["tcp", "udp"] {
            // tcp dport @camera_to_cc_tcp ip daddr @cc_ipv4 return
            bridge_rule(
                b,
                chain,
                &format!(
                    "new and ongoing {}, towards the listed services",
                    p.to_uppercase()
                ),
                vec![is(payload(p, "dport"), set(true, p)), cc(), ret()],
            );
        }
        // tcp flags != syn / syn,ack tcp sport @cc_to_camera_tcp ip daddr @cc_ipv4 return
        bridge_rule(
            b,
            chain,
            "TCP answers, never an opener",
            vec![
                not_tcp_opener(),
                is(payload("tcp", "sport"), set(false, "tcp")),
                cc(),
                ret(),
            ],
        );
        // udp sport @cc_to_camera_udp ip daddr @cc_ipv4 return
        bridge_rule(
            b,
            chain,
            "UDP answers",
            vec![is(payload("udp", "sport"), set(false, "udp")), cc(), ret()],
        );
        if chain == CHAIN_FROM_CAMERA {
            // ip daddr 239.255.255.250 udp dport 1900 accept
            bridge_rule(
                b,
                chain,
                "SSDP announcements and searches",
                vec![
                    is(payload("ip", "daddr"), string(SSDP_GROUP)),
                    is(payload("udp", "dport"), num(SSDP_PORT)),
                    accept(),
                ],
            );
            // ip protocol igmp accept
            bridge_rule(
                b,
                chain,
                "IGMP membership",
                vec![is(payload("ip", "protocol"), string("igmp")), accept()],
            );
        }
        if self.isolation() {
            // counter name "camera_isolation_bridged" drop
            bridge_rule(
                b,
                chain,
                "camera isolation (bridged)",
                vec![counter(COUNTER_ISOLATION_BRIDGED), drop()],
            );
        } else {
            // accept: not counted as traffic with the Command Centers.
            bridge_rule(b, chain, "not isolated", vec![accept()]);
        }
    }
}

/// A rule in `table bridge wilife`.
fn bridge_rule(b: &mut Builder, chain: &str, comment: &str, expr: Vec<S>) {
    b.rule_in(BRIDGE, chain, format!("wilife: {comment}"), expr);
}
