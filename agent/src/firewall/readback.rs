//! Our tables read back over netlink, without an nft process: the chains, rules, sets with their
//! elements, and named counters of `table FAMILY wilife`, as the subset of `nft -j list table` JSON the
//! applier compares (chains with their hooks, rules by comment in order, sets by name and element
//! count, counters with their values). A rule's expressions are kept as their bytes, counter values
//! left out: equal bytes mean an unchanged rule, which is all a drift check needs.
//!
//! The mappings' sets (`render::upnp`) are decoded the way nft lists them (ports, addresses,
//! concatenations, element counters), so the element comparison and the per-mapping counters read
//! them alike from a batch and from the kernel.
//!
//! `read` is the only I/O; turning the kernel's messages into JSON is pure and tested on bytes.

use crate::consts::TABLE;
use crate::netlink::{self, attributes, find, Kept, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use nix::errno::Errno;
use serde_json::{json, Map, Value};
use std::net::Ipv4Addr;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_GETOBJ: u16 = 19;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_EXPR: u16 = 7;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFTA_SET_ELEM_EXPRESSIONS: u16 = 11;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFT_OBJECT_COUNTER: u32 = 1;
const NFT_SET_ANONYMOUS: u32 = 0x1;
const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
/// libnftnl's rule user data: type-length-value records; type 0 is the comment.
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;
/// nft's data types, as a set's key and data types name them; a concatenation packs 6 bits per field.
const TYPE_IPADDR: u32 = 7;
const TYPE_INET_SERVICE: u32 = 13;
const CONCAT_TYPE_BITS: u32 = 6;

/// The nfgenmsg family of `inet` and `bridge` (NFPROTO_*).
fn family_number(family: &str) -> Option<u8> {
    match family {
        "inet" => Some(1),
        "bridge" => Some(7),
        _ => None,
    }
}

/// `table FAMILY wilife` as the JSON listing the applier reads; `None` when the table does not exist.
pub fn read(socket: &Kept, family: &str) -> Result<Option<Value>, Errno> {
    let nfproto = family_number(family).ok_or(Errno::EAFNOSUPPORT)?;
    let table = [nul(TABLE)];
    let ask = |kind, flags, attrs: &[(u16, &[u8])]| request(socket, nfproto, kind, flags, attrs);
    match ask(NFT_MSG_GETTABLE, NLM_F_ACK, &[(NFTA_TABLE_NAME, &table[0])]) {
        Err(Errno::ENOENT) => return Ok(None),
        other => other?,
    };
    let chains = ask(
        NFT_MSG_GETCHAIN,
        NLM_F_DUMP,
        &[(NFTA_CHAIN_TABLE, &table[0])],
    )?;
    let rules = ask(NFT_MSG_GETRULE, NLM_F_DUMP, &[(NFTA_RULE_TABLE, &table[0])])?;
    let sets = ask(NFT_MSG_GETSET, NLM_F_DUMP, &[(NFTA_SET_TABLE, &table[0])])?;
    let counter = NFT_OBJECT_COUNTER.to_be_bytes();
    let objects = ask(
        NFT_MSG_GETOBJ,
        NLM_F_DUMP,
        &[(NFTA_OBJ_TABLE, &table[0]), (NFTA_OBJ_TYPE, &counter)],
    )?;
    let mut listing = Vec::new();
    for (_, m) in &objects {
        listing.extend(counter_object(family, m));
    }
    for (_, m) in &sets {
        let Some(set) = SetInfo::parse(m) else {
            continue;
        };
        let name = nul(&set.name);
        let elems = ask(
            NFT_MSG_GETSETELEM,
            NLM_F_DUMP,
            &[
                (NFTA_SET_ELEM_LIST_TABLE, &table[0]),
                (NFTA_SET_ELEM_LIST_SET, &name),
            ],
        )?;
        let payloads: Vec<&[u8]> = elems.iter().map(|(_, p)| p.as_slice()).collect();
        listing.push(set.object(family, &payloads));
    }
    for (_, m) in &chains {
        listing.extend(chain_object(family, m));
    }
    for (_, m) in &rules {
        listing.extend(rule_object(family, m));
    }
    Ok(Some(json!({ "nftables": listing })))
}

/// One nf_tables request (a dump with NLM_F_DUMP) and its answers.
fn request(
    socket: &Kept,
    nfproto: u8,
    kind: u16,
    flags: u16,
    attrs: &[(u16, &[u8])],
) -> Result<Vec<(u16, Vec<u8>)>, Errno> {
    socket.with(|fd, next| {
        let seq = *next;
        *next += 1;
        let msg = netlink::message(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | flags,
            seq,
            &[nfproto, 0, 0, 0],
            attrs,
        );
        netlink::transact(fd, &msg, seq)
    })
}

fn nul(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

/// The attributes after a message's nfgenmsg.
fn attrs(payload: &[u8]) -> &[u8] {
    payload.get(4..).unwrap_or_default()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches('\0')
        .to_string()
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn be64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Is this message about our table (attribute `kind` names it)?
fn ours(a: &[u8], kind: u16) -> bool {
    find(a, kind).is_some_and(|t| text(t) == TABLE)
}

fn counter_object(family: &str, payload: &[u8]) -> Option<Value> {
    let a = attrs(payload);
    if !ours(a, NFTA_OBJ_TABLE) || find(a, NFTA_OBJ_TYPE).and_then(be32) != Some(NFT_OBJECT_COUNTER)
    {
        return None;
    }
    let (packets, bytes) = counts(find(a, NFTA_OBJ_DATA)?);
    Some(json!({"counter": {
        "family": family, "table": TABLE, "name": text(find(a, NFTA_OBJ_NAME)?),
        "packets": packets, "bytes": bytes,
    }}))
}

/// A counter's packets and bytes (its data attributes).
fn counts(data: &[u8]) -> (u64, u64) {
    let get = |kind| find(data, kind).and_then(be64).unwrap_or(0);
    (get(NFTA_COUNTER_PACKETS), get(NFTA_COUNTER_BYTES))
}

/// nft's names of the hooks (the inet and bridge families number them alike).
fn hook_name(n: u32) -> Option<&'static str> {
    ["prerouting", "input", "forward", "output", "postrouting"]
        .get(n as usize)
        .copied()
}

fn chain_object(family: &str, payload: &[u8]) -> Option<Value> {
    let a = attrs(payload);
    if !ours(a, NFTA_CHAIN_TABLE) {
        return None;
    }
    let mut chain = Map::new();
    chain.insert("family".into(), family.into());
    chain.insert("table".into(), TABLE.into());
    chain.insert("name".into(), text(find(a, NFTA_CHAIN_NAME)?).into());
    if let Some(hook) = find(a, NFTA_CHAIN_HOOK) {
        let num = find(hook, NFTA_HOOK_HOOKNUM).and_then(be32)?;
        let prio = find(hook, NFTA_HOOK_PRIORITY).and_then(be32)? as i32;
        let policy = match find(a, NFTA_CHAIN_POLICY).and_then(be32) {
            Some(0) => "drop",
            _ => "accept",
        };
        chain.insert("type".into(), text(find(a, NFTA_CHAIN_TYPE)?).into());
        chain.insert("hook".into(), hook_name(num)?.into());
        chain.insert("prio".into(), prio.into());
        chain.insert("policy".into(), policy.into());
    }
    Some(json!({ "chain": chain }))
}

fn rule_object(family: &str, payload: &[u8]) -> Option<Value> {
    let a = attrs(payload);
    if !ours(a, NFTA_RULE_TABLE) {
        return None;
    }
    let mut rule = json!({
        "family": family, "table": TABLE, "chain": text(find(a, NFTA_RULE_CHAIN)?),
        "expr": expressions(find(a, NFTA_RULE_EXPRESSIONS).unwrap_or_default()),
    });
    if let Some(comment) = find(a, NFTA_RULE_USERDATA).and_then(comment) {
        rule["comment"] = comment.into();
    }
    Some(json!({ "rule": rule }))
}

/// A rule's expressions as bytes, one hex string each; a counter's values (which change with every
/// packet) are left out, its name kept.
fn expressions(list: &[u8]) -> Value {
    attributes(list)
        .filter(|(t, _)| *t == NFTA_LIST_ELEM)
        .map(|(_, e)| match find(e, NFTA_EXPR_NAME).map(text) {
            Some(name) if name == "counter" => Value::from("counter"),
            _ => Value::from(hex(e)),
        })
        .collect()
}

/// The comment record of a rule's user data.
fn comment(udata: &[u8]) -> Option<String> {
    let mut b = udata;
    while b.len() >= 2 {
        let (kind, len) = (b[0], b[1] as usize);
        let value = b.get(2..2 + len)?;
        if kind == NFTNL_UDATA_RULE_COMMENT {
            return Some(text(value));
        }
        b = &b[2 + len..];
    }
    None
}

/// What an element's bytes mean: ports and addresses as nft lists them, a concatenation field by
/// field (each padded to 4 bytes); anything else as hex.
fn decode(datatype: u32, b: &[u8]) -> Value {
    match datatype {
        TYPE_INET_SERVICE if b.len() == 2 => u16::from_be_bytes([b[0], b[1]]).into(),
        TYPE_IPADDR if b.len() == 4 => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string().into(),
        t if t >> CONCAT_TYPE_BITS != 0 => {
            // The first field sits in the highest bits.
            let mut fields = Vec::new();
            let mut rest = t;
            while rest != 0 {
                fields.push(rest & ((1 << CONCAT_TYPE_BITS) - 1));
                rest >>= CONCAT_TYPE_BITS;
            }
            fields.reverse();
            let mut parts = Vec::new();
            let mut at = 0;
            for f in fields {
                let width = match f {
                    TYPE_INET_SERVICE => 2,
                    TYPE_IPADDR => 4,
                    _ => return hex(b).into(),
                };
                let Some(field) = b.get(at..at + width) else {
                    return hex(b).into();
                };
                parts.push(decode(f, field));
                at += netlink::align4(width);
            }
            json!({ "concat": parts })
        }
        _ => hex(b).into(),
    }
}

/// A named set's definition, from a GETSET answer.
struct SetInfo {
    name: String,
    flags: u32,
    key_type: u32,
    data_type: Option<u32>,
}

impl SetInfo {
    /// Our table's named sets; anonymous ones (`{ 5431, 8780 }` inside a rule) are part of the rule.
    fn parse(payload: &[u8]) -> Option<SetInfo> {
        let a = attrs(payload);
        let flags = find(a, NFTA_SET_FLAGS).and_then(be32).unwrap_or(0);
        if !ours(a, NFTA_SET_TABLE) || flags & NFT_SET_ANONYMOUS != 0 {
            return None;
        }
        Some(SetInfo {
            name: text(find(a, NFTA_SET_NAME)?),
            flags,
            key_type: find(a, NFTA_SET_KEY_TYPE).and_then(be32).unwrap_or(0),
            data_type: find(a, NFTA_SET_DATA_TYPE).and_then(be32),
        })
    }

    /// The set (or map) with its elements, from the GETSETELEM answers. An interval's end is part of
    /// its element, as nft lists it: only starts count.
    fn object(&self, family: &str, answers: &[&[u8]]) -> Value {
        let mut elem = Vec::new();
        for payload in answers {
            let list = find(attrs(payload), NFTA_SET_ELEM_LIST_ELEMENTS).unwrap_or_default();
            for (_, e) in attributes(list).filter(|(t, _)| *t == NFTA_LIST_ELEM) {
                let flags = find(e, NFTA_SET_ELEM_FLAGS).and_then(be32).unwrap_or(0);
                if flags & NFT_SET_ELEM_INTERVAL_END != 0 {
                    continue;
                }
                elem.push(self.element(e));
            }
        }
        let kind = if self.flags & NFT_SET_MAP != 0 {
            "map"
        } else {
            "set"
        };
        json!({ kind: {
            "family": family, "table": TABLE, "name": self.name,
            "type": self.key_type, "flags": self.flags, "map": self.data_type, "elem": elem,
        }})
    }

    /// One element as nft's JSON has it: the key (wrapped with its counter when it counts), a map's
    /// value beside it.
    fn element(&self, e: &[u8]) -> Value {
        let value = |kind| find(e, kind).and_then(|d| find(d, NFTA_DATA_VALUE));
        let mut key = decode(self.key_type, value(NFTA_SET_ELEM_KEY).unwrap_or_default());
        if let Some(end) = value(NFTA_SET_ELEM_KEY_END) {
            key = json!({ "range": [key, decode(self.key_type, end)] });
        }
        if let Some((packets, bytes)) = element_counter(e) {
            key = json!({ "elem": { "val": key, "counter": { "packets": packets, "bytes": bytes } } });
        }
        match (self.data_type, find(e, NFTA_SET_ELEM_DATA)) {
            (Some(t), Some(d)) => match find(d, NFTA_DATA_VALUE) {
                Some(v) => json!([key, decode(t, v)]),
                // A verdict (a named vmap).
                None => json!([key, hex(d)]),
            },
            _ => key,
        }
    }
}

/// The packets and bytes of a set element's counter (one expression comes alone, several as a list).
pub fn element_counter(elem: &[u8]) -> Option<(u64, u64)> {
    let counter = |expr: &[u8]| {
        (find(expr, NFTA_EXPR_NAME).map(text)? == "counter")
            .then(|| counts(find(expr, NFTA_EXPR_DATA).unwrap_or_default()))
    };
    attributes(elem).find_map(|(t, v)| match t {
        NFTA_SET_ELEM_EXPR => counter(v),
        NFTA_SET_ELEM_EXPRESSIONS => attributes(v)
            .filter(|(t, _)| *t == NFTA_LIST_ELEM)
            .find_map(|(_, x)| counter(x)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{attr, nested};

    fn message(parts: &[Vec<u8>]) -> Vec<u8> {
        [vec![1, 0, 0, 0], parts.concat()].concat()
    }

    fn counter(packets: u64, bytes: u64) -> Vec<Vec<u8>> {
        vec![
            attr(NFTA_EXPR_NAME, b"counter\0"),
            nested(
                NFTA_EXPR_DATA,
                &[
                    attr(NFTA_COUNTER_BYTES, &bytes.to_be_bytes()),
                    attr(NFTA_COUNTER_PACKETS, &packets.to_be_bytes()),
                ],
            ),
        ]
    }

    #[test]
    fn a_base_chain_reads_like_nft_lists_it_and_other_tables_are_passed_over() {
        let chain = |table: &[u8]| {
            message(&[
                attr(NFTA_CHAIN_TABLE, table),
                attr(NFTA_CHAIN_NAME, b"dstnat\0"),
                nested(
                    NFTA_CHAIN_HOOK,
                    &[
                        attr(NFTA_HOOK_HOOKNUM, &0u32.to_be_bytes()),
                        attr(NFTA_HOOK_PRIORITY, &(-110i32).to_be_bytes()),
                    ],
                ),
                attr(NFTA_CHAIN_POLICY, &1u32.to_be_bytes()),
                attr(NFTA_CHAIN_TYPE, b"nat\0"),
            ])
        };
        assert_eq!(
            chain_object("inet", &chain(b"wilife\0")).unwrap(),
            json!({"chain": {"family": "inet", "table": "wilife", "name": "dstnat",
                "type": "nat", "hook": "prerouting", "prio": -110, "policy": "accept"}})
        );
        assert_eq!(chain_object("inet", &chain(b"fw4\0")), None);
    }

    #[test]
    fn a_rule_keeps_its_comment_and_its_bytes_but_not_its_counter_values() {
        let rule = |packets| {
            message(&[
                attr(NFTA_RULE_TABLE, b"wilife\0"),
                attr(NFTA_RULE_CHAIN, b"forward\0"),
                nested(
                    NFTA_RULE_EXPRESSIONS,
                    &[
                        nested(NFTA_LIST_ELEM, &[attr(NFTA_EXPR_NAME, b"meta\0")]),
                        nested(NFTA_LIST_ELEM, &counter(packets, packets * 100)),
                    ],
                ),
                attr(
                    NFTA_RULE_USERDATA,
                    &[&[0u8, 4][..], b"hi!\0", &[9, 1, 7]].concat(),
                ),
            ])
        };
        let one = rule_object("inet", &rule(1)).unwrap();
        assert_eq!(one["rule"]["comment"], "hi!");
        assert_eq!(one["rule"]["chain"], "forward");
        assert_eq!(one, rule_object("inet", &rule(99)).unwrap());
        assert_eq!(comment(&[7, 200]), None, "a record longer than the data");
    }

    #[test]
    fn mapping_elements_decode_as_nft_lists_them_with_their_counters() {
        let set = SetInfo {
            name: "upnp_granted".into(),
            flags: 0x100,
            key_type: (TYPE_INET_SERVICE << CONCAT_TYPE_BITS) | TYPE_IPADDR,
            data_type: None,
        };
        let key = nested(
            NFTA_SET_ELEM_KEY,
            &[attr(NFTA_DATA_VALUE, &[0x50, 0x5a, 0, 0, 192, 168, 1, 10])],
        );
        let answer = message(&[
            attr(NFTA_SET_ELEM_LIST_TABLE, b"wilife\0"),
            nested(
                NFTA_SET_ELEM_LIST_ELEMENTS,
                &[nested(
                    NFTA_LIST_ELEM,
                    &[key, nested(NFTA_SET_ELEM_EXPR, &counter(3, 180))],
                )],
            ),
        ]);
        assert_eq!(
            set.object("inet", &[&answer])["set"]["elem"],
            json!([{"elem": {"val": {"concat": [20570, "192.168.1.10"]},
                "counter": {"packets": 3, "bytes": 180}}}])
        );
        let map = SetInfo {
            name: "upnp_addr".into(),
            flags: NFT_SET_MAP,
            key_type: TYPE_INET_SERVICE,
            data_type: Some(TYPE_IPADDR),
        };
        let elem = [
            nested(NFTA_SET_ELEM_KEY, &[attr(NFTA_DATA_VALUE, &[0x50, 0x5a])]),
            nested(NFTA_SET_ELEM_DATA, &[attr(NFTA_DATA_VALUE, &[10, 0, 0, 1])]),
        ]
        .concat();
        assert_eq!(map.element(&elem), json!([20570, "10.0.0.1"]));
    }

    #[test]
    fn an_interval_counts_once_and_odd_types_are_hex() {
        let set = SetInfo {
            name: "outbound_cc".into(),
            flags: 0x4,
            key_type: TYPE_INET_SERVICE,
            data_type: None,
        };
        let elem = |port: u16, end: bool| {
            let mut parts = vec![nested(
                NFTA_SET_ELEM_KEY,
                &[attr(NFTA_DATA_VALUE, &port.to_be_bytes())],
            )];
            if end {
                parts.push(attr(NFTA_SET_ELEM_FLAGS, &1u32.to_be_bytes()));
            }
            nested(NFTA_LIST_ELEM, &parts)
        };
        let answer = message(&[nested(
            NFTA_SET_ELEM_LIST_ELEMENTS,
            &[
                elem(25, false),
                elem(26, true),
                elem(80, false),
                elem(81, true),
            ],
        )]);
        assert_eq!(
            set.object("inet", &[&answer])["set"]["elem"],
            json!([25, 80])
        );
        assert_eq!(decode(9, &[0, 1, 2, 3, 4, 5]), json!("000102030405"));
        assert_eq!(decode(TYPE_INET_SERVICE, &[1]), json!("01"));
    }

    #[test]
    fn hostile_bytes_give_nothing_and_never_panic() {
        let answer = message(&[
            attr(NFTA_RULE_TABLE, b"wilife\0"),
            attr(NFTA_RULE_CHAIN, b"forward\0"),
            attr(NFTA_RULE_USERDATA, &[0, 9, 1]),
        ]);
        for cut in 0..answer.len() {
            let _ = rule_object("inet", &answer[..cut]);
            let _ = chain_object("inet", &answer[..cut]);
            let _ = counter_object("inet", &answer[..cut]);
            let _ = SetInfo::parse(&answer[..cut]);
        }
    }
}
