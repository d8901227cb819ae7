//! Desired state -> one nftables JSON batch that replaces `table inet wilife` whole, atomically.
//! Pure: values in, a batch out; nothing here reads the machine.
//!
//! The connmark handshake: every flow we grant gets `connmark` set in our table; fw4's forward chain accepts
//! flows carrying that bit through the static include the package ships (fw4 reloads cannot lose it).
//! Our own chains only ever *restrict* (drop) or mark: an accept in our table would not be final anyway.

use super::{Forward, NetFacts};
use crate::config::{Config, DirectAccess};
use crate::consts::{PRIO_DSTNAT, PRIO_FILTER, PRIO_SRCNAT, TABLE};
use nftables::expr::{
    BinaryOperation, CTDir, Expression as E, Meta, MetaKey, NamedExpression as N, Payload,
    PayloadField, Prefix, Range, CT,
};
use nftables::schema::{
    Chain, Counter, NfCmd, NfListObject as L, NfObject, Nftables, Rule, Set, SetFlag, SetType,
    SetTypeValue, Table,
};
use nftables::stmt::{self, Counter as CounterRef, Mangle, Match, Operator, Statement as S, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use std::borrow::Cow;
use std::collections::HashSet;

pub const CHAIN_DSTNAT: &str = "dstnat";
pub const CHAIN_FORWARD: &str = "forward";
pub const CHAIN_SRCNAT: &str = "srcnat";
pub const CHAIN_INPUT: &str = "input";

pub const SET_WAN_IPV4: &str = "wan_ipv4";
pub const SET_LAN_IPV4: &str = "lan_ipv4";
/// `external port . internal host` of every granted forward: flows outside it are cut.
pub const SET_GRANTED: &str = "granted";

/// Everything the renderer needs, as values.
pub struct Desired<'a> {
    pub config: &'a Config,
    pub forwards: &'a [Forward],
    pub facts: &'a NetFacts,
}

/// The whole batch: create-or-clear our table, then build it from scratch.
pub fn render(d: &Desired) -> Nftables<'static> {
    let mut b = Builder::default();
    b.replace_table();
    b.counters(d.forwards);
    b.sets(d);
    b.chains();
    b.guard_lan_services(d.config);
    b.revoke_ungranted(d.config.connmark);
    for f in d.forwards {
        b.direct_forward(d.config, f);
        if d.config.direct.reflection {
            b.reflection(d.config, f);
        }
        b.forward_traffic_counter(d.config.connmark, f);
    }
    if d.config.direct.reflection && !d.forwards.is_empty() {
        b.reflection_masquerade(d.config);
    }
    Nftables {
        objects: Cow::Owned(b.cmds),
    }
}

/// The batch as the JSON document `nft -j -f -` reads (what the applier and the printer take).
pub fn render_json(d: &Desired) -> serde_json::Value {
    serde_json::to_value(render(d)).expect("a rendered batch serializes")
}

#[derive(Default)]
struct Builder {
    cmds: Vec<NfObject<'static>>,
}

impl Builder {
    fn add(&mut self, obj: L<'static>) {
        self.cmds.push(NfObject::CmdObject(NfCmd::Add(obj)));
    }

    fn rule(&mut self, chain: &str, comment: String, expr: Vec<S<'static>>) {
        self.add(L::Rule(Rule {
            family: NfFamily::INet,
            table: TABLE.into(),
            chain: chain.to_string().into(),
            expr: expr.into(),
            handle: None,
            index: None,
            comment: Some(comment.into()),
        }));
    }

    /// `add table inet wilife; delete table inet wilife; add table inet wilife` — one transaction, so the
    /// kernel never holds a half-built table, and it works whether or not the table existed.
    fn replace_table(&mut self) {
        let table = || Table {
            family: NfFamily::INet,
            name: TABLE.into(),
            handle: None,
        };
        self.add(L::Table(table()));
        self.cmds
            .push(NfObject::CmdObject(NfCmd::Delete(L::Table(table()))));
        self.add(L::Table(table()));
    }

    /// Named counters, two per forward. Their values are carried over by the applier.
    fn counters(&mut self, forwards: &[Forward]) {
        for f in forwards {
            for name in [f.conns_counter(), f.traffic_counter()] {
                self.add(L::Counter(Counter {
                    family: NfFamily::INet,
                    table: TABLE.into(),
                    name: name.into(),
                    handle: None,
                    packets: None,
                    bytes: None,
                }));
            }
        }
    }

    fn sets(&mut self, d: &Desired) {
        let set = |name: &str, set_type, interval: bool, elem: Vec<E<'static>>| {
            L::Set(Box::new(Set {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: name.to_string().into(),
                handle: None,
                set_type,
                policy: None,
                flags: interval.then(|| HashSet::from([SetFlag::Interval])),
                elem: (!elem.is_empty()).then(|| elem.into()),
                timeout: None,
                gc_interval: None,
                size: None,
                comment: None,
            }))
        };
        // set wan_ipv4 { type ipv4_addr; elements = { 203.0.113.1 } }
        let wan = d
            .facts
            .wan_ipv4
            .iter()
            .map(|a| E::String(a.to_string().into()))
            .collect();
        self.add(set(
            SET_WAN_IPV4,
            SetTypeValue::Single(SetType::Ipv4Addr),
            false,
            wan,
        ));
        // set lan_ipv4 { type ipv4_addr; flags interval; elements = { 192.168.1.0/24 } }
        let lan = d
            .facts
            .lan_ipv4_nets
            .iter()
            .map(|(a, l)| prefix(*a, *l))
            .collect();
        self.add(set(
            SET_LAN_IPV4,
            SetTypeValue::Single(SetType::Ipv4Addr),
            true,
            lan,
        ));
        // set granted { type inet_service . ipv4_addr; flags interval; elements = { 20570-20575 . 192.168.1.10 } }
        let granted = d
            .forwards
            .iter()
            .map(|f| {
                E::Named(N::Concat(vec![
                    port_range(f.external.first, f.external.last),
                    E::String(f.target.to_string().into()),
                ]))
            })
            .collect();
        let ty = SetTypeValue::Concatenated(vec![SetType::InetService, SetType::Ipv4Addr].into());
        self.add(set(SET_GRANTED, ty, true, granted));
    }

    fn chains(&mut self) {
        let chain = |name: &str, ty, hook, prio| {
            L::Chain(Chain {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: name.to_string().into(),
                newname: None,
                handle: None,
                _type: Some(ty),
                hook: Some(hook),
                prio: Some(prio),
                dev: None,
                policy: Some(NfChainPolicy::Accept),
            })
        };
        // chain dstnat { type nat hook prerouting priority dstnat - 10; policy accept; }
        self.add(chain(
            CHAIN_DSTNAT,
            NfChainType::NAT,
            NfHook::Prerouting,
            PRIO_DSTNAT,
        ));
        // chain forward { type filter hook forward priority filter - 10; policy accept; }
        self.add(chain(
            CHAIN_FORWARD,
            NfChainType::Filter,
            NfHook::Forward,
            PRIO_FILTER,
        ));
        // chain srcnat { type nat hook postrouting priority srcnat - 10; policy accept; }
        self.add(chain(
            CHAIN_SRCNAT,
            NfChainType::NAT,
            NfHook::Postrouting,
            PRIO_SRCNAT,
        ));
        // chain input { type filter hook input priority filter - 10; policy accept; }
        self.add(chain(
            CHAIN_INPUT,
            NfChainType::Filter,
            NfHook::Input,
            PRIO_FILTER,
        ));
    }

    /// The agent's LAN-only services (UPnP IGD, the API on its default addresses) are unreachable from
    /// any other device, whatever fw4's zones say: the kernel drops such packets before a socket sees them.
    fn guard_lan_services(&mut self, c: &Config) {
        // Not from loopback (`iiftype`, not a second name in the set: nft lists multi-name sets in an
        // order of its own) and not from a LAN device.
        let foreign = || {
            vec![
                not(meta(MetaKey::Iiftype), E::String("loopback".into())),
                not(meta(MetaKey::Iifname), ifname_set(&c.lan_devices)),
            ]
        };
        let mut tcp: Vec<u16> = Vec::new();
        if c.enabled && c.direct_access == DirectAccess::Upnp {
            // meta iiftype != loopback iifname != "br-lan" udp dport 1900 drop
            let mut expr = foreign();
            expr.push(is(payload("udp", "dport"), E::Number(1900)));
            expr.push(S::Drop(None));
            self.rule(CHAIN_INPUT, "wilife: SSDP only from the LAN".into(), expr);
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
        let ports = if let [one] = tcp.as_slice() {
            E::Number((*one).into())
        } else {
            E::Named(N::Set(
                tcp.iter()
                    .map(|p| nftables::expr::SetItem::Element(E::Number((*p).into())))
                    .collect(),
            ))
        };
        self.rule(
            CHAIN_INPUT,
            "wilife: UPnP and API only from the LAN".into(),
            [foreign(), vec![is(tcp_dport(), ports), S::Drop(None)]].concat(),
        );
    }

    /// A forward that is revoked must end live sessions too: conntrack keeps their NAT and fw4 accepts
    /// established flows, so drop marked DNAT'ed flows whose `port . host` is no longer granted.
    fn revoke_ungranted(&mut self, bit: u32) {
        // ct mark & BIT == BIT ct status dnat meta l4proto tcp ct original proto-dst . ct reply ip saddr != @granted drop
        self.rule(
            CHAIN_FORWARD,
            "wilife: end flows whose forward was revoked".into(),
            vec![
                mark_has(bit),
                ct_status_dnat(),
                is(meta(MetaKey::L4proto), E::String("tcp".into())),
                not(
                    E::Named(N::Concat(vec![
                        ct("proto-dst", Some(CTDir::Original)),
                        ct("ip saddr", Some(CTDir::Reply)),
                    ])),
                    set_ref(SET_GRANTED),
                ),
                S::Drop(None),
            ],
        );
    }

    /// The inbound forward from the WAN.
    fn direct_forward(&mut self, c: &Config, f: &Forward) {
        // iifname "wan0" meta nfproto ipv4 tcp dport 20570-20575 counter name "fwd_…_conns"
        //   ct mark set ct mark | BIT dnat ip to 192.168.1.10
        let mut expr = vec![
            is(
                meta(MetaKey::Iifname),
                E::String(c.wan_device.clone().into()),
            ),
            is(meta(MetaKey::Nfproto), E::String("ipv4".into())),
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
            is(meta(MetaKey::Iifname), ifname_set(&c.lan_devices)),
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

    /// Reflected flows must come back through the router: masquerade them towards the LAN.
    fn reflection_masquerade(&mut self, c: &Config) {
        // oifname { "br-lan" } ct mark & BIT == BIT ct status dnat ip saddr @lan_ipv4 masquerade
        self.rule(
            CHAIN_SRCNAT,
            "wilife: reflection masquerade".into(),
            vec![
                is(meta(MetaKey::Oifname), ifname_set(&c.lan_devices)),
                mark_has(c.connmark),
                ct_status_dnat(),
                is(payload("ip", "saddr"), set_ref(SET_LAN_IPV4)),
                S::Masquerade(None),
            ],
        );
    }

    /// Bytes and packets of a forward, both directions (the NAT chain sees first packets only).
    fn forward_traffic_counter(&mut self, bit: u32, f: &Forward) {
        // ct mark & BIT == BIT ct status dnat meta l4proto tcp ct original proto-dst 20570-20575
        //   ct reply ip saddr 192.168.1.10 counter name "fwd_tcp_20570_20575"
        self.rule(
            CHAIN_FORWARD,
            format!("wilife: traffic tcp/{} -> {}", f.external, f.target),
            vec![
                mark_has(bit),
                ct_status_dnat(),
                is(meta(MetaKey::L4proto), E::String("tcp".into())),
                is(ct("proto-dst", Some(CTDir::Original)), ports(f)),
                is(
                    ct("ip saddr", Some(CTDir::Reply)),
                    E::String(f.target.to_string().into()),
                ),
                S::Counter(CounterRef::Named(f.traffic_counter().into())),
            ],
        );
    }
}

/// `counter name "…_conns" ct mark set ct mark | BIT dnat ip to TARGET[:PORT]`
fn mark_and_dnat(bit: u32, f: &Forward) -> Vec<S<'static>> {
    vec![
        S::Counter(CounterRef::Named(f.conns_counter().into())),
        S::Mangle(Mangle {
            key: ct("mark", None),
            value: E::BinaryOperation(Box::new(BinaryOperation::OR(vec![
                ct("mark", None),
                E::Number(bit),
            ]))),
        }),
        S::DNAT(Some(NAT {
            addr: Some(E::String(f.target.to_string().into())),
            family: Some(stmt::NATFamily::IP),
            port: f.target_port.map(|p| E::Number(p.into())),
            flags: None,
        })),
    ]
}

fn ports(f: &Forward) -> E<'static> {
    port_range(f.external.first, f.external.last)
}

fn port_range(first: u16, last: u16) -> E<'static> {
    if first == last {
        E::Number(first.into())
    } else {
        E::Range(Box::new(Range {
            range: [E::Number(first.into()), E::Number(last.into())],
        }))
    }
}

fn prefix(addr: std::net::Ipv4Addr, len: u8) -> E<'static> {
    E::Named(N::Prefix(Prefix {
        addr: Box::new(E::String(addr.to_string().into())),
        len: len.into(),
    }))
}

fn ifname_set(names: &[String]) -> E<'static> {
    if let [one] = names {
        return E::String(one.clone().into());
    }
    E::Named(N::Set(
        names
            .iter()
            .map(|n| nftables::expr::SetItem::Element(E::String(n.clone().into())))
            .collect(),
    ))
}

fn set_ref(name: &str) -> E<'static> {
    E::String(format!("@{name}").into())
}

fn payload(protocol: &'static str, field: &'static str) -> E<'static> {
    E::Named(N::Payload(Payload::PayloadField(PayloadField {
        protocol: protocol.into(),
        field: field.into(),
    })))
}

fn tcp_dport() -> E<'static> {
    payload("tcp", "dport")
}

fn meta(key: MetaKey) -> E<'static> {
    E::Named(N::Meta(Meta { key }))
}

fn ct(key: &'static str, dir: Option<CTDir>) -> E<'static> {
    E::Named(N::CT(CT {
        key: key.into(),
        family: None,
        dir,
    }))
}

fn is(left: E<'static>, right: E<'static>) -> S<'static> {
    S::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn not(left: E<'static>, right: E<'static>) -> S<'static> {
    S::Match(Match {
        left,
        right,
        op: Operator::NEQ,
    })
}

/// `ct mark & BIT == BIT`
fn mark_has(bit: u32) -> S<'static> {
    is(
        E::BinaryOperation(Box::new(BinaryOperation::AND(
            ct("mark", None),
            E::Number(bit),
        ))),
        E::Number(bit),
    )
}

/// `ct status dnat`
fn ct_status_dnat() -> S<'static> {
    S::Match(Match {
        left: ct("status", None),
        right: E::String("dnat".into()),
        op: Operator::IN,
    })
}
