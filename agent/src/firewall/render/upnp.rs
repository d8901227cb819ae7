//! UPnP mappings as set and map elements, not rules: the rules of UPnP mode never change, and a
//! mapping is three elements keyed by its external port. Adding or deleting one is an element change
//! the owner commits over netlink in one transaction (`firewall::elements`), without an nft process.
//!
//! ```text
//! map upnp_addr    { type inet_service : ipv4_addr; counter }    port -> internal host (new connections)
//! map upnp_port    { type inet_service : inet_service }          port -> internal port
//! set upnp_granted { type inet_service . ipv4_addr; counter }    port . host: granted (traffic)
//! ```
//! The per-element counters take the place of a static forward's named counters.

use super::nft::*;
use super::{
    Builder, CHAIN_DSTNAT, CHAIN_FORWARD, CHAIN_GRANTED, CHAIN_PROBE, SET_LAN_IPV4, SET_WAN_IPV4,
};
use crate::config::{Config, DirectAccess};
use crate::consts::TABLE;
use crate::firewall::elements::{self, Batch, Deleted};
use crate::firewall::{Forward, Origin};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

pub const MAP_ADDR: &str = "upnp_addr";
pub const MAP_PORT: &str = "upnp_port";
pub const SET_GRANTED: &str = "upnp_granted";
/// The sets whose elements are the mappings: what changes between full applies.
pub const ELEMENT_SETS: [&str; 3] = [MAP_ADDR, MAP_PORT, SET_GRANTED];

/// Does the configuration run the IGD (and so hold these sets)?
pub fn active(c: &Config) -> bool {
    c.enabled && c.direct_access == DirectAccess::Upnp
}

/// One mapping as its elements see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    port: u16,
    host: Ipv4Addr,
    to_port: u16,
}

/// The UPnP forwards of `forwards`, as elements, in their order (the owner keeps mappings in port
/// order). A mapping is one port (IGD mappings have no ranges).
fn elements_of(forwards: &[Forward]) -> Vec<Element> {
    forwards
        .iter()
        .filter(|f| f.origin == Origin::Upnp)
        .map(|f| Element {
            port: f.external.first,
            host: f.target,
            to_port: f.target_port.unwrap_or(f.external.first),
        })
        .collect()
}

/// Forward of one element, for its counter names.
fn forward_of(e: &Element) -> Forward {
    Forward {
        external: crate::config::PortRange {
            first: e.port,
            last: e.port,
        },
        target: e.host,
        target_port: (e.to_port != e.port).then_some(e.to_port),
        origin: Origin::Upnp,
    }
}

/// The element changes that turn the mappings of `old` into those of `new`.
pub struct ElementChange {
    /// Deletions first, then additions: a port whose target changed is deleted and added again.
    pub batch: Batch,
    /// Counter names of the elements deleted: a mapping made again later counts from zero.
    pub forgotten: Vec<String>,
    /// The ports whose elements the batch makes.
    pub added: Vec<u16>,
}

pub fn changes(old: &[Forward], new: &[Forward]) -> ElementChange {
    let (old, new) = (elements_of(old), elements_of(new));
    // A few dozen mappings at most: a linear search each is cheaper than sorting (and smaller code).
    let gone: Vec<&Element> = old.iter().filter(|e| !new.contains(e)).collect();
    let came: Vec<&Element> = new.iter().filter(|e| !old.contains(e)).collect();
    let mut batch = Batch::new(TABLE);
    if !gone.is_empty() {
        let ports: Vec<_> = gone.iter().map(|e| elements::port(e.port)).collect();
        batch.delete(MAP_ADDR, &ports);
        batch.delete(MAP_PORT, &ports);
        let granted: Vec<_> = gone
            .iter()
            .map(|e| elements::port_host(e.port, e.host))
            .collect();
        batch.delete(SET_GRANTED, &granted);
    }
    if !came.is_empty() {
        let with = |value: &dyn Fn(&Element) -> elements::Bytes| -> Vec<_> {
            came.iter()
                .map(|e| (elements::port(e.port), Some(value(e))))
                .collect()
        };
        batch.add(MAP_ADDR, &with(&|e| elements::host(e.host)));
        batch.add(MAP_PORT, &with(&|e| elements::port(e.to_port)));
        let granted: Vec<_> = came
            .iter()
            .map(|e| (elements::port_host(e.port, e.host), None))
            .collect();
        batch.add(SET_GRANTED, &granted);
    }
    let forgotten = gone
        .iter()
        .flat_map(|e| {
            let f = forward_of(e);
            [f.conns_counter(), f.traffic_counter()]
        })
        .collect();
    let added = came.iter().map(|e| e.port).collect();
    ElementChange {
        batch,
        forgotten,
        added,
    }
}

/// The connections each removed mapping had counted, by external port: from the kernel's echo of the
/// `upnp_addr` elements a batch deleted.
pub fn connections_counted(deleted: &[Deleted]) -> Vec<(u16, u64)> {
    deleted
        .iter()
        .filter(|d| d.set == MAP_ADDR)
        .filter_map(|d| {
            let port = u16::from_be_bytes(d.key.as_slice().try_into().ok()?);
            Some((port, d.packets?))
        })
        .collect()
}

/// The counter name an element of `set` with key `key` counts for, if it counts.
pub fn counter_name(set: &str, key: &Value) -> Option<String> {
    let port = |v: &Value| v.as_u64().and_then(|p| u16::try_from(p).ok());
    // The names rest on the port alone.
    let forward = |port: u16| {
        forward_of(&Element {
            port,
            host: Ipv4Addr::UNSPECIFIED,
            to_port: port,
        })
    };
    match set {
        MAP_ADDR => port(key).map(|p| forward(p).conns_counter()),
        SET_GRANTED => port(&key["concat"][0]).map(|p| forward(p).traffic_counter()),
        _ => None,
    }
}

/// `"stmt": [{"counter": null}]`: every element counts its own packets and bytes.
fn counted() -> Value {
    json!([{ "counter": null }])
}

impl Builder {
    /// A set or (with `data`) a map of `table inet wilife`, in the JSON nft reads (the nftables crate
    /// has no field for a set's element statements).
    fn element_set(
        &mut self,
        name: &str,
        key: Value,
        data: Option<&str>,
        count: bool,
        elem: Vec<Value>,
    ) {
        let mut body = json!({ "family": "inet", "table": TABLE, "name": name, "type": key });
        if let Some(d) = data {
            body["map"] = d.into();
        }
        if count {
            body["stmt"] = counted();
        }
        if !elem.is_empty() {
            body["elem"] = elem.into();
        }
        let kind = if data.is_some() { "map" } else { "set" };
        self.cmds.push(json!({ "add": { kind: body } }));
    }

    /// The three sets, holding the mappings of `forwards`.
    pub(super) fn upnp_sets(&mut self, forwards: &[Forward]) {
        let all = elements_of(forwards);
        // map upnp_addr { type inet_service : ipv4_addr; counter; elements = { 20570 : 192.168.1.10 } }
        let addr = all
            .iter()
            .map(|e| json!([e.port, e.host.to_string()]))
            .collect();
        self.element_set(
            MAP_ADDR,
            "inet_service".into(),
            Some("ipv4_addr"),
            true,
            addr,
        );
        // map upnp_port { type inet_service : inet_service; elements = { 20570 : 20570 } }
        let port = all.iter().map(|e| json!([e.port, e.to_port])).collect();
        self.element_set(
            MAP_PORT,
            "inet_service".into(),
            Some("inet_service"),
            false,
            port,
        );
        // set upnp_granted { type inet_service . ipv4_addr; counter; elements = { 20570 . 192.168.1.10 } }
        let granted = all
            .iter()
            .map(|e| json!({ "concat": [e.port, e.host.to_string()] }))
            .collect();
        let key = json!(["inet_service", "ipv4_addr"]);
        self.element_set(SET_GRANTED, key, None, true, granted);
    }

    /// The DNAT of UPnP mode: by the maps, from the WAN and reflected from the LAN.
    pub(super) fn upnp_rules(&mut self, c: &Config, reflection: bool) {
        // iifname "wan0" meta nfproto ipv4 dnat ip to tcp dport map @upnp_addr : tcp dport map @upnp_port
        if let Some(wan) = &c.wan_device {
            let expr = vec![
                is(meta("iifname"), string(wan)),
                is(meta("nfproto"), string("ipv4")),
                dnat_by_maps(),
            ];
            self.rule(CHAIN_DSTNAT, "wilife: direct upnp mappings".into(), expr);
        }
        if reflection {
            // iifname { "br-lan" } ip saddr @lan_ipv4 ip daddr @wan_ipv4 dnat ip to tcp dport map @upnp_addr : …
            let expr = vec![
                is(meta("iifname"), ifname_set(&c.lan_devices)),
                is(payload("ip", "saddr"), set_ref(SET_LAN_IPV4)),
                is(payload("ip", "daddr"), set_ref(SET_WAN_IPV4)),
                dnat_by_maps(),
            ];
            self.rule(
                CHAIN_DSTNAT,
                "wilife: reflection of upnp mappings".into(),
                expr,
            );
        }
        // meta mark & BIT == BIT ip daddr @wan_ipv4 dnat ip to tcp dport map @upnp_addr : …
        let expr = vec![
            packet_mark_has(c.connmark),
            is(payload("ip", "daddr"), set_ref(SET_WAN_IPV4)),
            dnat_by_maps(),
        ];
        self.rule(
            CHAIN_PROBE,
            "wilife: the router's probe of upnp mappings".into(),
            expr,
        );
    }

    /// The grant of the mapped flows in the forward chain (before the camera isolation rules: a
    /// mapping may lead to any LAN host the policy allows), which also counts their traffic.
    pub(super) fn upnp_grant(&mut self, c: &Config) {
        // ct status dnat meta l4proto tcp ct original proto-dst . ct reply ip saddr @upnp_granted
        //   ct mark set ct mark | BIT
        let mapped = || {
            vec![
                ct_status_dnat(),
                is(meta("l4proto"), string("tcp")),
                is(forwarded_to(), set_ref(SET_GRANTED)),
            ]
        };
        let grant = [mapped(), vec![mark_set(c.connmark)]].concat();
        self.rule(
            CHAIN_FORWARD,
            "wilife: grant and count upnp mappings".into(),
            grant,
        );
        // (granted_flows) ct state != new, then the same lookup: the flow's later packets are counted
        // there (its first one, above).
        let count = [vec![not(ct("state", None), string("new"))], mapped()].concat();
        self.rule(CHAIN_GRANTED, "wilife: count upnp mappings".into(), count);
    }
}

/// `dnat ip to tcp dport map @upnp_addr : tcp dport map @upnp_port`: a port without an element finds
/// no address, and the rule does not match.
fn dnat_by_maps() -> S {
    dnat(
        map_lookup(tcp_dport(), MAP_ADDR),
        Some(map_lookup(tcp_dport(), MAP_PORT)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink;

    fn mapping(port: u16, host: [u8; 4], to_port: Option<u16>) -> Forward {
        Forward {
            external: crate::config::PortRange {
                first: port,
                last: port,
            },
            target: host.into(),
            target_port: to_port,
            origin: Origin::Upnp,
        }
    }

    /// (message type, set name) of each element message of a batch.
    fn messages(b: &Batch) -> Vec<(u16, String)> {
        let bytes = b.bytes(1);
        netlink::messages(&bytes)
            .filter(|(kind, _, _)| kind >> 8 == 10)
            .map(|(kind, _, p)| {
                let set = netlink::attributes(&p[4..])
                    .find(|(t, _)| *t == 2)
                    .map(|(_, v)| {
                        String::from_utf8_lossy(v)
                            .trim_end_matches('\0')
                            .to_string()
                    })
                    .unwrap();
                (kind & 0xff, set)
            })
            .collect()
    }

    #[test]
    fn a_change_deletes_what_went_and_adds_what_came_and_nothing_else() {
        let kept = mapping(20570, [192, 168, 1, 10], None);
        let gone = mapping(20571, [192, 168, 1, 11], Some(20570));
        let came = mapping(20572, [192, 168, 1, 10], None);
        let old = [kept.clone(), gone];
        let new = [kept.clone(), came];
        let c = changes(&old, &new);
        assert_eq!(
            messages(&c.batch),
            [
                (14, MAP_ADDR.to_string()),
                (14, MAP_PORT.to_string()),
                (14, SET_GRANTED.to_string()),
                (12, MAP_ADDR.to_string()),
                (12, MAP_PORT.to_string()),
                (12, SET_GRANTED.to_string()),
            ]
        );
        assert_eq!(c.forgotten, ["fwd_tcp_20571_conns", "fwd_tcp_20571"]);
        // The same mappings: nothing to do. Static forwards are rules, never elements.
        assert!(changes(&old, &old).batch.is_empty());
        let mut fixed = kept;
        fixed.origin = Origin::Static;
        assert!(changes(&[], &[fixed]).batch.is_empty());
    }

    #[test]
    fn a_new_target_for_a_port_is_a_delete_and_an_add() {
        let a = mapping(20570, [192, 168, 1, 10], None);
        let b = mapping(20570, [192, 168, 1, 11], None);
        let kinds: Vec<u16> = messages(&changes(&[a], &[b]).batch)
            .into_iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(kinds, [14, 14, 14, 12, 12, 12]);
    }

    #[test]
    fn mappings_change_nothing_but_the_elements_of_their_sets() {
        let uci = "config agent 'main'\n\toption wan_device 'eth1'\n\tlist lan_device 'br-lan'\n\toption direct_access 'upnp'\nconfig command_center\n\toption ip '192.168.1.10'\n";
        let c = crate::config::parse(uci, std::path::Path::new("t"), &Default::default()).unwrap();
        let facts = crate::firewall::NetFacts {
            wan_ipv4: vec![Ipv4Addr::new(203, 0, 113, 1)],
            lan_ipv4_nets: vec![(Ipv4Addr::new(192, 168, 1, 0), 24)],
            ..Default::default()
        };
        let with = |forwards: &[Forward]| {
            super::super::render(&super::super::Desired {
                config: &c,
                forwards,
                facts: &facts,
            })
        };
        let without_elements = |t: super::super::Tables| -> Vec<Value> {
            let mut cmds = [t.inet, t.bridge].concat();
            for cmd in &mut cmds {
                for kind in ["set", "map"] {
                    if let Some(body) = cmd.pointer_mut(&format!("/add/{kind}")) {
                        if ELEMENT_SETS.contains(&body["name"].as_str().unwrap()) {
                            body.as_object_mut().unwrap().remove("elem");
                        }
                    }
                }
            }
            cmds
        };
        let none = with(&[]);
        let two = with(&[
            mapping(20570, [192, 168, 1, 10], None),
            mapping(20571, [192, 168, 1, 11], Some(20570)),
        ]);
        assert_ne!(none, two);
        assert_eq!(without_elements(none), without_elements(two));
    }

    #[test]
    fn element_counters_are_named_like_a_forwards() {
        assert_eq!(
            counter_name(MAP_ADDR, &json!(20570)).as_deref(),
            Some("fwd_tcp_20570_conns")
        );
        assert_eq!(
            counter_name(SET_GRANTED, &json!({"concat": [20570, "192.168.1.10"]})).as_deref(),
            Some("fwd_tcp_20570")
        );
        assert_eq!(counter_name(MAP_PORT, &json!(20570)), None);
        assert_eq!(counter_name(MAP_ADDR, &json!(70000)), None);
    }
}
