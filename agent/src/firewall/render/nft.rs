//! Small constructors for the nftables expressions and statements the renderer uses, so each rule reads
//! close to the nft text it becomes (shown in a comment above each rule).

use crate::config::Mac;
use nftables::expr::{
    BinaryOperation, CTDir, Expression as E, Meta, MetaKey, NamedExpression as N, Payload,
    PayloadField, Prefix, Range, SetItem, Verdict, CT,
};
use nftables::stmt::{JumpTarget, Mangle, Match, Operator, Statement as S, VerdictMap};
use std::net::Ipv4Addr;

pub fn port_range(first: u16, last: u16) -> E<'static> {
    if first == last {
        E::Number(first.into())
    } else {
        E::Range(Box::new(Range {
            range: [E::Number(first.into()), E::Number(last.into())],
        }))
    }
}

pub fn prefix(addr: Ipv4Addr, len: u8) -> E<'static> {
    E::Named(N::Prefix(Prefix {
        addr: Box::new(E::String(addr.to_string().into())),
        len: len.into(),
    }))
}

pub fn string(s: impl ToString) -> E<'static> {
    E::String(s.to_string().into())
}

/// An anonymous set `{ a, b }`, or the lone value when there is one.
pub fn one_or_set(mut items: Vec<E<'static>>) -> E<'static> {
    if items.len() == 1 {
        return items.remove(0);
    }
    E::Named(N::Set(items.into_iter().map(SetItem::Element).collect()))
}

pub fn ifname_set(names: &[String]) -> E<'static> {
    one_or_set(names.iter().map(string).collect())
}

pub fn set_ref(name: &str) -> E<'static> {
    string(format!("@{name}"))
}

/// `LEFT @SET`, or `LEFT VALUE` when the set holds one element: a compare costs less than a hash
/// lookup (one camera and one Command Center is the common case), and these tables are replaced whole
/// whenever such a set changes (only the UPnP sets change alone, and they are never written so).
pub fn in_set(left: E<'static>, set: &str, elems: &[E<'static>]) -> S<'static> {
    match elems {
        [one] => is(left, one.clone()),
        _ => is(left, set_ref(set)),
    }
}

/// `LEFT != @SET`, or `LEFT != VALUE` for a set of one element (see `in_set`); nothing for an empty
/// set, where it always holds.
pub fn not_in_set(left: E<'static>, set: &str, elems: &[E<'static>]) -> Option<S<'static>> {
    match elems {
        [] => None,
        [one] => Some(not(left, one.clone())),
        _ => Some(not(left, set_ref(set))),
    }
}

pub fn payload(protocol: &'static str, field: &'static str) -> E<'static> {
    E::Named(N::Payload(Payload::PayloadField(PayloadField {
        protocol: protocol.into(),
        field: field.into(),
    })))
}

pub fn tcp_dport() -> E<'static> {
    payload("tcp", "dport")
}

pub fn meta(key: MetaKey) -> E<'static> {
    E::Named(N::Meta(Meta { key }))
}

pub fn ct(key: &'static str, dir: Option<CTDir>) -> E<'static> {
    E::Named(N::CT(CT {
        key: key.into(),
        family: None,
        dir,
    }))
}

pub fn concat(parts: Vec<E<'static>>) -> E<'static> {
    E::Named(N::Concat(parts))
}

/// `ct original proto-dst . ct reply ip saddr`: the external port and the internal host of a DNAT'ed
/// flow, the key of the granted sets.
pub fn forwarded_to() -> E<'static> {
    concat(vec![
        ct("proto-dst", Some(CTDir::Original)),
        ct("ip saddr", Some(CTDir::Reply)),
    ])
}

/// `meta l4proto . th dport` (or `th sport`): the key of the protocol-and-port sets.
pub fn l4_port(field: &'static str) -> E<'static> {
    concat(vec![meta(MetaKey::L4proto), payload("th", field)])
}

pub fn is(left: E<'static>, right: E<'static>) -> S<'static> {
    S::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

pub fn not(left: E<'static>, right: E<'static>) -> S<'static> {
    S::Match(Match {
        left,
        right,
        op: Operator::NEQ,
    })
}

/// `ct mark & BIT`
fn mark_and(bit: u32) -> E<'static> {
    E::BinaryOperation(Box::new(BinaryOperation::AND(
        ct("mark", None),
        E::Number(bit),
    )))
}

/// `ct mark & BIT == BIT`
pub fn mark_has(bit: u32) -> S<'static> {
    is(mark_and(bit), E::Number(bit))
}

/// `ct mark & BIT != BIT`
pub fn mark_lacks(bit: u32) -> S<'static> {
    not(mark_and(bit), E::Number(bit))
}

/// `ct mark set ct mark | BIT`: the handshake fw4's include accepts.
pub fn mark_set(bit: u32) -> S<'static> {
    S::Mangle(Mangle {
        key: ct("mark", None),
        value: E::BinaryOperation(Box::new(BinaryOperation::OR(vec![
            ct("mark", None),
            E::Number(bit),
        ]))),
    })
}

/// `ct state new`
pub fn ct_new() -> S<'static> {
    flag(ct("state", None), "new")
}

/// `ct status dnat`
pub fn ct_status_dnat() -> S<'static> {
    flag(ct("status", None), "dnat")
}

fn flag(left: E<'static>, value: &'static str) -> S<'static> {
    S::Match(Match {
        left,
        right: E::String(value.into()),
        op: Operator::IN,
    })
}

/// `tcp flags & (syn | ack) != syn`: any TCP segment but a connection opener. Stateless answer rules
/// need it: a source-port match alone also admits new connections from a matching ephemeral port.
pub fn not_tcp_opener() -> S<'static> {
    not(
        E::BinaryOperation(Box::new(BinaryOperation::AND(
            payload("tcp", "flags"),
            E::List(vec![string("syn"), string("ack")]),
        ))),
        string("syn"),
    )
}

pub fn jump(target: String) -> S<'static> {
    S::Jump(JumpTarget {
        target: target.into(),
    })
}

pub fn goto(target: String) -> S<'static> {
    S::Goto(JumpTarget {
        target: target.into(),
    })
}

/// `KEY vmap { k1 : jump c1, … }`: one lookup picks the chain.
pub fn vmap_jump(key: E<'static>, entries: Vec<(E<'static>, String)>) -> S<'static> {
    S::VerdictMap(VerdictMap {
        key,
        data: E::Named(N::Set(
            entries
                .into_iter()
                .map(|(k, chain)| {
                    SetItem::Mapping(
                        k,
                        E::Verdict(Verdict::Jump(JumpTarget {
                            target: chain.into(),
                        })),
                    )
                })
                .collect(),
        )),
    })
}

pub fn mac(m: &Mac) -> E<'static> {
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
