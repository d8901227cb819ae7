//! Small constructors for the nftables JSON the renderer writes (libnftables' JSON schema), so each
//! rule reads close to the nft text it becomes (shown in a comment above each rule). Plain
//! `serde_json` values: the `nftables` crate's typed schema cost the router binary about 76 kB of
//! serializers for a few dozen shapes (mipsel, 2026-12-07).

use crate::config::Mac;
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// An expression (`"tcp"`, `20570`, `{"payload": …}`).
pub type E = Value;
/// A statement (`{"match": …}`, `{"drop": null}`).
pub type S = Value;

/// The nft families of our tables.
pub const INET: &str = "inet";
pub const BRIDGE: &str = "bridge";

pub fn num(n: impl Into<u64>) -> E {
    json!(n.into())
}

pub fn port_range(first: u16, last: u16) -> E {
    if first == last {
        num(first)
    } else {
        json!({ "range": [first, last] })
    }
}

pub fn prefix(addr: Ipv4Addr, len: u8) -> E {
    json!({ "prefix": { "addr": addr.to_string(), "len": len } })
}

pub fn string(s: impl ToString) -> E {
    Value::String(s.to_string())
}

/// An anonymous set `{ a, b }`, or the lone value when there is one.
pub fn one_or_set(mut items: Vec<E>) -> E {
    if items.len() == 1 {
        return items.remove(0);
    }
    json!({ "set": items })
}

pub fn ifname_set(names: &[String]) -> E {
    one_or_set(names.iter().map(string).collect())
}

pub fn set_ref(name: &str) -> E {
    string(format!("@{name}"))
}

/// `LEFT @SET`, or `LEFT VALUE` when the set holds one element: a compare costs less than a hash
/// lookup (one camera and one Command Center is the common case), and these tables are replaced whole
/// whenever such a set changes (only the UPnP sets change alone, and they are never written so).
pub fn in_set(left: E, set: &str, elems: &[E]) -> S {
    match elems {
        [one] => is(left, one.clone()),
        _ => is(left, set_ref(set)),
    }
}

/// `LEFT != @SET`, or `LEFT != VALUE` for a set of one element (see `in_set`); nothing for an empty
/// set, where it always holds.
pub fn not_in_set(left: E, set: &str, elems: &[E]) -> Option<S> {
    match elems {
        [] => None,
        [one] => Some(not(left, one.clone())),
        _ => Some(not(left, set_ref(set))),
    }
}

pub fn payload(protocol: &str, field: &str) -> E {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

pub fn tcp_dport() -> E {
    payload("tcp", "dport")
}

/// `meta KEY` (`iifname`, `oifname`, `iiftype`, `l4proto`, `nfproto`).
pub fn meta(key: &str) -> E {
    json!({ "meta": { "key": key } })
}

/// `ct KEY`, or `ct DIR KEY` (`original`, `reply`).
pub fn ct(key: &str, dir: Option<&str>) -> E {
    match dir {
        Some(dir) => json!({ "ct": { "key": key, "dir": dir } }),
        None => json!({ "ct": { "key": key } }),
    }
}

pub fn concat(parts: Vec<E>) -> E {
    json!({ "concat": parts })
}

/// `ct original proto-dst . ct reply ip saddr`: the external port and the internal host of a DNAT'ed
/// flow, the key of the granted sets.
pub fn forwarded_to() -> E {
    concat(vec![
        ct("proto-dst", Some("original")),
        ct("ip saddr", Some("reply")),
    ])
}

/// `meta l4proto . th dport` (or `th sport`): the key of the protocol-and-port sets.
pub fn l4_port(field: &str) -> E {
    concat(vec![meta("l4proto"), payload("th", field)])
}

fn matches(left: E, op: &str, right: E) -> S {
    json!({ "match": { "left": left, "op": op, "right": right } })
}

pub fn is(left: E, right: E) -> S {
    matches(left, "==", right)
}

pub fn not(left: E, right: E) -> S {
    matches(left, "!=", right)
}

/// `LEFT in VALUE` (flags: `ct state established,related`).
pub fn within(left: E, right: E) -> S {
    matches(left, "in", right)
}

/// `MARK & BIT` (`ct mark` or `meta mark`)
fn bit_of(mark: E, bit: u32) -> E {
    json!({ "&": [mark, bit] })
}

/// `meta mark & BIT == BIT`: a packet the agent itself marked (SO_MARK) — its probe.
pub fn packet_mark_has(bit: u32) -> S {
    is(bit_of(meta("mark"), bit), json!(bit))
}

/// `ct mark & BIT == BIT`
pub fn mark_has(bit: u32) -> S {
    is(bit_of(ct("mark", None), bit), json!(bit))
}

/// `ct mark & BIT != BIT`
pub fn mark_lacks(bit: u32) -> S {
    not(bit_of(ct("mark", None), bit), json!(bit))
}

/// `ct mark set ct mark | BIT`: the handshake fw4's include accepts.
pub fn mark_set(bit: u32) -> S {
    json!({ "mangle": { "key": ct("mark", None), "value": { "|": [ct("mark", None), bit] } } })
}

/// `ct state new`
pub fn ct_new() -> S {
    within(ct("state", None), string("new"))
}

/// `ct status dnat`
pub fn ct_status_dnat() -> S {
    within(ct("status", None), string("dnat"))
}

/// `tcp flags & (syn | ack) != syn`: any TCP segment but a connection opener. Stateless answer rules
/// need it: a source-port match alone also admits new connections from a matching ephemeral port.
pub fn not_tcp_opener() -> S {
    not(
        json!({ "&": [payload("tcp", "flags"), ["syn", "ack"]] }),
        string("syn"),
    )
}

/// A verdict without argument: `accept`, `drop`, `return`.
pub fn verdict(v: &str) -> S {
    json!({ v: null })
}

pub fn accept() -> S {
    verdict("accept")
}

pub fn drop() -> S {
    verdict("drop")
}

pub fn ret() -> S {
    verdict("return")
}

pub fn masquerade() -> S {
    verdict("masquerade")
}

pub fn jump(target: String) -> S {
    json!({ "jump": { "target": target } })
}

pub fn goto(target: String) -> S {
    json!({ "goto": { "target": target } })
}

/// `counter name "NAME"`
pub fn counter(name: impl ToString) -> S {
    json!({ "counter": name.to_string() })
}

/// `dnat ip to ADDR[:PORT]`
pub fn dnat(addr: E, port: Option<E>) -> S {
    match port {
        Some(port) => json!({ "dnat": { "addr": addr, "family": "ip", "port": port } }),
        None => json!({ "dnat": { "addr": addr, "family": "ip" } }),
    }
}

/// `KEY map @MAP`
pub fn map_lookup(key: E, map: &str) -> E {
    json!({ "map": { "key": key, "data": set_ref(map) } })
}

/// `KEY vmap { k1 : jump c1, … }`: one lookup picks the chain.
pub fn vmap_jump(key: E, entries: Vec<(E, String)>) -> S {
    let data: Vec<Value> = (entries.into_iter())
        .map(|(k, chain)| json!([k, { "jump": { "target": chain } }]))
        .collect();
    json!({ "vmap": { "key": key, "data": { "set": data } } })
}

pub fn mac(m: &Mac) -> E {
    string(m)
}

/// Inclusive port ranges, sorted and merged where they overlap or touch (interval sets refuse
/// overlapping elements).
pub fn merge_ranges(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge_ranges;

    #[test]
    fn overlapping_ranges_merge() {
        assert_eq!(
            merge_ranges(vec![
                (5800, 5821),
                (5810, 5810),
                (22211, 22211),
                (5822, 5830)
            ]),
            vec![(5800, 5830), (22211, 22211)]
        );
        assert_eq!(
            merge_ranges(vec![(65000, 65535), (1, 1)]),
            vec![(1, 1), (65000, 65535)]
        );
    }
}
