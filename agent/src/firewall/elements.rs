//! Set and map elements changed over netlink, without an nft process: one nfnetlink batch (BEGIN,
//! NEWSETELEM / DELSETELEM messages, END) on a NETLINK_NETFILTER socket. The kernel runs the whole batch
//! inside `sendmsg` and commits all of it or nothing; it reports every refused message, so the batch is
//! committed exactly when no error comes back for any of its messages (a zero acknowledgement proves
//! nothing: the good messages of an aborted batch get one too).
//!
//! This is the path issue 15 needs for UPnP mapping changes (element sets in the ruleset); building the
//! batch is pure, `commit` is the only I/O.

use super::readback::element_counter;
use crate::netlink::{
    self, attr, attributes, error_code, find, messages, nested, Kept, NLMSG_ERROR, NLM_F_REQUEST,
};
use nix::errno::Errno;
use nix::sys::socket::{recv, send, MsgFlags};
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
const NLM_F_ECHO: u16 = 0x8;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// Elements in one message: each is under 64 bytes, so a message stays far below the 64 KiB an
/// attribute's 16-bit length can say.
const ELEMENTS_PER_MESSAGE: usize = 256;

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

    /// How many messages `bytes` holds (BEGIN and END included): the sequence numbers it uses.
    pub fn len(&self) -> u32 {
        self.changes.len() as u32 + 2
    }

    fn elements(&self, set: &str, elems: Vec<Vec<u8>>) -> Vec<u8> {
        [
            attr(NFTA_SET_ELEM_LIST_TABLE, &string(&self.table)),
            attr(NFTA_SET_ELEM_LIST_SET, &string(set)),
            nested(NFTA_SET_ELEM_LIST_ELEMENTS, &elems),
        ]
        .concat()
    }

    /// One message per `ELEMENTS_PER_MESSAGE` elements: an attribute's length is 16 bits.
    fn push(&mut self, kind: u16, flags: u16, set: &str, list: Vec<Vec<u8>>) {
        for part in list.chunks(ELEMENTS_PER_MESSAGE) {
            let attrs = self.elements(set, part.to_vec());
            self.changes.push((kind, flags, attrs));
        }
    }

    /// Adds elements to `set`: keys, with their values when `set` is a map. An element that is there
    /// already with the same value is no error; with another value it is (EEXIST).
    pub fn add(&mut self, set: &str, elems: &[(Bytes, Option<Bytes>)]) {
        let list = elems
            .iter()
            .map(|(key, data)| {
                let mut parts = vec![nested(NFTA_SET_ELEM_KEY, &[attr(NFTA_DATA_VALUE, key)])];
                if let Some(d) = data {
                    parts.push(nested(NFTA_SET_ELEM_DATA, &[attr(NFTA_DATA_VALUE, d)]));
                }
                nested(NFTA_LIST_ELEM, &parts)
            })
            .collect();
        self.push(NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE, set, list);
    }

    /// Removes elements from `set` by key; a key that is not there fails the batch (ENOENT). The
    /// kernel echoes each removed element as it was at that moment, its counter included.
    pub fn delete(&mut self, set: &str, keys: &[Bytes]) {
        let list = keys
            .iter()
            .map(|key| {
                nested(
                    NFTA_LIST_ELEM,
                    &[nested(NFTA_SET_ELEM_KEY, &[attr(NFTA_DATA_VALUE, key)])],
                )
            })
            .collect();
        self.push(NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ECHO, set, list);
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

/// An element a committed batch removed, as the kernel echoed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub set: String,
    pub key: Bytes,
    /// What its counter had counted when it went (`None`: it had no counter).
    pub packets: Option<u64>,
}

/// Commits `batch` over `socket` (a NETLINK_NETFILTER one): once the kernel has committed all of it,
/// the elements it removed; otherwise the first refusal, and nothing of the batch is in force.
pub fn commit(socket: &Kept, batch: &Batch) -> Result<Vec<Deleted>, Errno> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    socket.with(|fd, next| {
        let first = *next;
        *next += batch.len();
        // What an earlier exchange left unread (it stopped at a refusal) is no answer of this one.
        while recv(fd.as_raw_fd(), &mut [0u8; 8192], MsgFlags::MSG_DONTWAIT).is_ok() {}
        send(fd.as_raw_fd(), &batch.bytes(first), MsgFlags::empty())?;
        answers(fd, first..*next)
    })
}

/// Reads the answers to the messages numbered `ours`: refusals, and the echoes of removed elements
/// (which the kernel numbers 0).
fn answers(fd: &std::os::fd::OwnedFd, ours: std::ops::Range<u32>) -> Result<Vec<Deleted>, Errno> {
    // The kernel ran the batch inside sendmsg: every answer is queued already.
    let mut buf = vec![0u8; 16 * 1024];
    let mut gone = Vec::new();
    loop {
        // MSG_TRUNC: the datagram's whole length, so an answer cut short by the buffer (a refusal
        // quotes the refused message) is an error, never a silent end.
        let n = match recv(
            fd.as_raw_fd(),
            &mut buf,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
        ) {
            Ok(n) if n > buf.len() => return Err(Errno::EMSGSIZE),
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok(gone),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        for (kind, seq, payload) in messages(&buf[..n]) {
            match kind {
                NLMSG_ERROR if ours.contains(&seq) => match error_code(payload) {
                    Some(0) => {}
                    Some(e) => return Err(Errno::from_raw(-e)),
                    None => return Err(Errno::EBADMSG),
                },
                NFT_MSG_DELSETELEM => gone.extend(deleted(payload)),
                _ => {}
            }
        }
    }
}

/// The elements of a DELSETELEM message (nfgenmsg, then the set's name and its element list).
fn deleted(payload: &[u8]) -> Vec<Deleted> {
    let attrs = payload.get(4..).unwrap_or_default();
    let (Some(set), Some(list)) = (
        find(attrs, NFTA_SET_ELEM_LIST_SET),
        find(attrs, NFTA_SET_ELEM_LIST_ELEMENTS),
    ) else {
        return Vec::new();
    };
    let set = String::from_utf8_lossy(set)
        .trim_end_matches('\0')
        .to_string();
    attributes(list)
        .filter(|(t, _)| *t == NFTA_LIST_ELEM)
        .filter_map(|(_, elem)| {
            let key = find(elem, NFTA_SET_ELEM_KEY).and_then(|k| find(k, NFTA_DATA_VALUE))?;
            let packets = element_counter(elem).map(|(packets, _)| packets);
            Some(Deleted {
                set: set.clone(),
                key: key.to_vec(),
                packets,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // An echoed element's counter, as the kernel writes it.
    const NFTA_SET_ELEM_EXPR: u16 = 7;
    const NFTA_SET_ELEM_EXPRESSIONS: u16 = 11;
    const NFTA_EXPR_NAME: u16 = 1;
    const NFTA_EXPR_DATA: u16 = 2;
    const NFTA_COUNTER_PACKETS: u16 = 2;

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
    fn an_echoed_delete_tells_each_element_and_its_counter() {
        let counter = |packets: u64| {
            [
                attr(NFTA_EXPR_NAME, b"counter\0"),
                nested(
                    NFTA_EXPR_DATA,
                    &[
                        attr(1, &9000u64.to_be_bytes()),
                        attr(NFTA_COUNTER_PACKETS, &packets.to_be_bytes()),
                    ],
                ),
            ]
        };
        let key = |p: u16| nested(NFTA_SET_ELEM_KEY, &[attr(NFTA_DATA_VALUE, &port(p))]);
        let payload = [
            vec![NFPROTO_INET, 0, 0, 0],
            attr(NFTA_SET_ELEM_LIST_TABLE, b"wilife\0"),
            attr(NFTA_SET_ELEM_LIST_SET, b"upnp_addr\0"),
            nested(
                NFTA_SET_ELEM_LIST_ELEMENTS,
                &[
                    // A lone counter, a list with one, no counter, and an element without a key.
                    nested(
                        NFTA_LIST_ELEM,
                        &[key(20570), nested(NFTA_SET_ELEM_EXPR, &counter(3))],
                    ),
                    nested(
                        NFTA_LIST_ELEM,
                        &[
                            key(20571),
                            nested(
                                NFTA_SET_ELEM_EXPRESSIONS,
                                &[nested(NFTA_LIST_ELEM, &counter(0))],
                            ),
                        ],
                    ),
                    nested(NFTA_LIST_ELEM, &[key(20572)]),
                    nested(NFTA_LIST_ELEM, &[attr(7, &[0; 4])]),
                ],
            ),
        ]
        .concat();
        let got = deleted(&payload);
        let seen: Vec<(&str, &[u8], Option<u64>)> = got
            .iter()
            .map(|d| (d.set.as_str(), d.key.as_slice(), d.packets))
            .collect();
        assert_eq!(
            seen,
            [
                ("upnp_addr", &port(20570)[..], Some(3)),
                ("upnp_addr", &port(20571)[..], Some(0)),
                ("upnp_addr", &port(20572)[..], None),
            ]
        );
        // Hostile or truncated bytes give nothing, never a panic.
        for cut in 0..payload.len() {
            let _ = deleted(&payload[..cut]);
        }
    }

    #[test]
    fn many_elements_are_split_over_messages() {
        let mut b = Batch::new("wilife");
        let keys: Vec<Bytes> = (0..600).map(port).collect();
        b.delete("upnp_port", &keys);
        // BEGIN, three messages (256 + 256 + 88 elements), END.
        assert_eq!(b.len(), 5);
        let bytes = b.bytes(1);
        let sizes: Vec<usize> = messages(&bytes).map(|(_, _, p)| p.len()).collect();
        assert!(sizes.iter().all(|s| *s < 16 * 1024), "{sizes:?}");
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
