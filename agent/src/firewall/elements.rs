//! Set and map elements changed over netlink, without an nft process: one nfnetlink batch (BEGIN,
//! NEWSETELEM / DELSETELEM messages, END) on a NETLINK_NETFILTER socket. The kernel runs the whole batch
//! inside `sendmsg` and commits all of it or nothing; it reports every refused message, so the batch is
//! committed exactly when no error comes back for any of its messages (a zero acknowledgement proves
//! nothing: the good messages of an aborted batch get one too).
//!
//! This is the path issue 15 needs for UPnP mapping changes (element sets in the ruleset); building the
//! batch is pure, `commit` is the only I/O.

use crate::netlink::{self, error_code, messages, NLMSG_ERROR, NLM_F_REQUEST};
use nix::errno::Errno;
use nix::sys::socket::{recv, send, MsgFlags, SockProtocol};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

// linux/netfilter/nfnetlink.h, nf_tables.h
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = (NFNL_SUBSYS_NFTABLES << 8) | 12;
const NFT_MSG_DELSETELEM: u16 = (NFNL_SUBSYS_NFTABLES << 8) | 14;
const NFPROTO_INET: u8 = 1;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// A key or a value as the kernel stores it: network byte order; each field of a concatenation padded
/// to a 4-byte register, a single field not padded.
pub type Bytes = Vec<u8>;

/// `inet_service`: a port, alone (2 bytes).
pub fn port(p: u16) -> Bytes {
    p.to_be_bytes().to_vec()
}

/// `ipv4_addr`, alone (4 bytes).
pub fn host(ip: Ipv4Addr) -> Bytes {
    ip.octets().to_vec()
}

/// `inet_service . ipv4_addr`: the port padded to 4 bytes, then the address.
pub fn port_host(p: u16, ip: Ipv4Addr) -> Bytes {
    let mut b = p.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&ip.octets());
    b
}

/// One attribute: length, type, payload, padded to 4 bytes.
fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut a = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(payload);
    a.resize(netlink::align4(a.len()), 0);
    a
}

fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    nla(kind | NLA_F_NESTED, &parts.concat())
}

fn string(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

/// The messages of one transaction on the table `inet TABLE`.
pub struct Batch {
    table: String,
    /// (message type, flags, attributes) of each element message.
    changes: Vec<(u16, u16, Vec<u8>)>,
}

impl Batch {
    pub fn new(table: &str) -> Batch {
        Batch {
            table: table.to_string(),
            changes: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn elements(&self, set: &str, elems: Vec<Vec<u8>>) -> Vec<u8> {
        [
            nla(NFTA_SET_ELEM_LIST_TABLE, &string(&self.table)),
            nla(NFTA_SET_ELEM_LIST_SET, &string(set)),
            nested(NFTA_SET_ELEM_LIST_ELEMENTS, &elems),
        ]
        .concat()
    }

    /// Adds elements to `set`: keys, with their values when `set` is a map. An element that is there
    /// already with the same value is no error; with another value it is (EEXIST).
    pub fn add(&mut self, set: &str, elems: &[(Bytes, Option<Bytes>)]) {
        let list = elems
            .iter()
            .map(|(key, data)| {
                let mut parts = vec![nested(NFTA_SET_ELEM_KEY, &[nla(NFTA_DATA_VALUE, key)])];
                if let Some(d) = data {
                    parts.push(nested(NFTA_SET_ELEM_DATA, &[nla(NFTA_DATA_VALUE, d)]));
                }
                nested(NFTA_LIST_ELEM, &parts)
            })
            .collect();
        let attrs = self.elements(set, list);
        self.changes
            .push((NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE, attrs));
    }

    /// Removes elements from `set` by key; a key that is not there fails the batch (ENOENT).
    pub fn delete(&mut self, set: &str, keys: &[Bytes]) {
        let list = keys
            .iter()
            .map(|key| {
                nested(
                    NFTA_LIST_ELEM,
                    &[nested(NFTA_SET_ELEM_KEY, &[nla(NFTA_DATA_VALUE, key)])],
                )
            })
            .collect();
        let attrs = self.elements(set, list);
        self.changes
            .push((NFT_MSG_DELSETELEM, NLM_F_REQUEST, attrs));
    }

    /// The datagram: BEGIN, the changes, END, numbered from `seq`.
    pub fn bytes(&self, seq: u32) -> Vec<u8> {
        // The batch messages name the subsystem in nfgenmsg.res_id (network order).
        let subsystem = [
            0,
            0,
            (NFNL_SUBSYS_NFTABLES >> 8) as u8,
            NFNL_SUBSYS_NFTABLES as u8,
        ];
        let inet = [NFPROTO_INET, 0, 0, 0];
        let mut out = netlink::message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, &subsystem, &[]);
        for (i, (kind, flags, attrs)) in self.changes.iter().enumerate() {
            let mut m = netlink::message(*kind, *flags, seq + 1 + i as u32, &inet, &[]);
            m.extend_from_slice(attrs);
            let len = m.len() as u32;
            m[0..4].copy_from_slice(&len.to_ne_bytes());
            out.extend(m);
        }
        let end = seq + 1 + self.changes.len() as u32;
        out.extend(netlink::message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            end,
            &subsystem,
            &[],
        ));
        out
    }
}

/// Commits `batch` in the current network namespace: `Ok` once the kernel has committed all of it;
/// otherwise the first refusal, and nothing of the batch is in force.
pub fn commit(batch: &Batch) -> Result<(), Errno> {
    if batch.is_empty() {
        return Ok(());
    }
    let fd = netlink::open(SockProtocol::NetlinkNetFilter, 0)?;
    let seq = 1;
    send(fd.as_raw_fd(), &batch.bytes(seq), MsgFlags::empty())?;
    // The kernel ran the batch inside sendmsg: every answer is queued already.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        for (kind, _, payload) in messages(&buf[..n]) {
            if kind == NLMSG_ERROR {
                match error_code(payload) {
                    Some(0) => {}
                    Some(e) => return Err(Errno::from_raw(-e)),
                    None => return Err(Errno::EBADMSG),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded_per_field_in_network_order() {
        assert_eq!(port(8080), [0x1f, 0x90]);
        assert_eq!(
            port_host(8080, Ipv4Addr::new(192, 168, 1, 10)),
            [0x1f, 0x90, 0, 0, 192, 168, 1, 10]
        );
        assert_eq!(host(Ipv4Addr::new(10, 0, 0, 1)), [10, 0, 0, 1]);
    }

    #[test]
    fn a_batch_is_begin_changes_end_numbered_in_order() {
        let mut b = Batch::new("wilife");
        b.add(
            "upnp_addr",
            &[(port(20570), Some(host(Ipv4Addr::new(192, 168, 1, 10))))],
        );
        b.delete(
            "upnp_granted",
            &[port_host(20571, Ipv4Addr::new(192, 168, 1, 11))],
        );
        let bytes = b.bytes(7);
        let msgs: Vec<(u16, u32, Vec<u8>)> = messages(&bytes)
            .map(|(k, s, p)| (k, s, p.to_vec()))
            .collect();
        let kinds: Vec<u16> = msgs.iter().map(|m| m.0).collect();
        assert_eq!(
            kinds,
            [
                NFNL_MSG_BATCH_BEGIN,
                NFT_MSG_NEWSETELEM,
                NFT_MSG_DELSETELEM,
                NFNL_MSG_BATCH_END
            ]
        );
        assert_eq!(msgs.iter().map(|m| m.1).collect::<Vec<_>>(), [7, 8, 9, 10]);
        // BEGIN names the nftables subsystem; element messages the inet family.
        assert_eq!(msgs[0].2[..4], [0, 0, 0, 10]);
        assert_eq!(msgs[1].2[0], NFPROTO_INET);
        // The add: table, set, and one element with its key and value.
        let attrs: Vec<(u16, Vec<u8>)> = netlink::attributes(&msgs[1].2[4..])
            .map(|(t, v)| (t, v.to_vec()))
            .collect();
        assert_eq!(attrs[0], (NFTA_SET_ELEM_LIST_TABLE, b"wilife\0".to_vec()));
        assert_eq!(attrs[1], (NFTA_SET_ELEM_LIST_SET, b"upnp_addr\0".to_vec()));
        let elem: Vec<(u16, Vec<u8>)> = netlink::attributes(&attrs[2].1)
            .map(|(t, v)| (t, v.to_vec()))
            .collect();
        let parts: Vec<(u16, Vec<u8>)> = netlink::attributes(&elem[0].1)
            .map(|(t, v)| (t, v.to_vec()))
            .collect();
        let value = |p: &[u8]| netlink::attributes(p).next().unwrap().1.to_vec();
        assert_eq!(parts[0].0, NFTA_SET_ELEM_KEY);
        assert_eq!(value(&parts[0].1), [0x50, 0x5a]);
        assert_eq!(parts[1].0, NFTA_SET_ELEM_DATA);
        assert_eq!(value(&parts[1].1), [192, 168, 1, 10]);
    }
}
