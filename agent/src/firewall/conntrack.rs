//! Ends live sessions of a revoked forward: deletes the conntrack entries of flows we granted (our mark
//! bit) whose original destination port is the forward's external port. The revoke rule in our filter
//! chain already drops their packets; deleting the entries makes the end prompt and visible (the
//! viewer's next packet meets no DNAT, so its connection is reset instead of hanging until a timeout).
//!
//! Plain ctnetlink (NETLINK_NETFILTER): a dump filtered by mark, then one delete per matching tuple —
//! what `conntrack -D` does, without needing conntrack-tools on the router.

use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use std::os::fd::{AsRawFd, OwnedFd};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_MARK: u16 = 8;
const CTA_MARK_MASK: u16 = 21;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const NLA_TYPE_MASK: u16 = 0x3fff;
const AF_INET: u8 = 2;
const IPPROTO_TCP: u8 = 6;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink request: header, nfgenmsg, attributes.
fn message(kind: u16, flags: u16, seq: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m.extend_from_slice(&[AF_INET, 0, 0, 0]); // nfgenmsg: family, version, res_id
    for (t, payload) in attrs {
        m.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(align4(m.len()), 0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// Attributes of a netlink payload: (type without flags, payload).
fn attributes(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((kind, payload))
    })
}

/// Netlink messages in one datagram: (type, flags-free payload).
fn messages(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            return None;
        }
        let payload = &b[16..len];
        b = &b[align4(len).min(b.len())..];
        Some((kind, payload))
    })
}

/// Is this conntrack entry (attributes after nfgenmsg) a TCP flow to `port`? Returns its original tuple.
fn orig_tuple_to_port(attrs: &[u8], port: u16) -> Option<Vec<u8>> {
    let (_, tuple) = attributes(attrs).find(|(t, _)| *t == CTA_TUPLE_ORIG)?;
    let (_, proto) = attributes(tuple).find(|(t, _)| *t == CTA_TUPLE_PROTO)?;
    let mut num = None;
    let mut dport = None;
    for (t, p) in attributes(proto) {
        match (t, p) {
            (CTA_PROTO_NUM, [n, ..]) => num = Some(*n),
            (CTA_PROTO_DST_PORT, [a, b, ..]) => dport = Some(u16::from_be_bytes([*a, *b])),
            _ => {}
        }
    }
    (num == Some(IPPROTO_TCP) && dport == Some(port)).then(|| tuple.to_vec())
}

fn netlink_error(payload: &[u8]) -> Option<i32> {
    payload
        .get(0..4)
        .map(|e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]))
}

/// Deletes the conntrack entries of marked TCP flows to `port`; returns how many were deleted.
pub fn end_sessions(mark_bit: u32, port: u16) -> Result<usize, String> {
    let fd: OwnedFd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|e| format!("netlink socket: {e}"))?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| format!("netlink bind: {e}"))?;
    let mark = mark_bit.to_be_bytes();
    let dump = message(
        IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        1,
        &[(CTA_MARK, &mark), (CTA_MARK_MASK, &mark)],
    );
    send(fd.as_raw_fd(), &dump, MsgFlags::empty()).map_err(|e| format!("conntrack dump: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut tuples = Vec::new();
    'dump: loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|e| format!("conntrack dump: {e}"))?;
        for (kind, payload) in messages(&buf[..n]) {
            match kind {
                NLMSG_DONE => break 'dump,
                NLMSG_ERROR => match netlink_error(payload) {
                    Some(0) => {}
                    e => return Err(format!("conntrack dump refused: error {e:?}")),
                },
                _ => {
                    if let Some(t) = payload.get(4..).and_then(|a| orig_tuple_to_port(a, port)) {
                        tuples.push(t);
                    }
                }
            }
        }
    }
    let mut deleted = 0;
    for (i, tuple) in tuples.iter().enumerate() {
        let del = message(
            IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            2 + i as u32,
            &[(CTA_TUPLE_ORIG | 0x8000, tuple)],
        );
        send(fd.as_raw_fd(), &del, MsgFlags::empty())
            .map_err(|e| format!("conntrack delete: {e}"))?;
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|e| format!("conntrack delete: {e}"))?;
        match messages(&buf[..n])
            .find(|(k, _)| *k == NLMSG_ERROR)
            .and_then(|(_, p)| netlink_error(p))
        {
            Some(0) => deleted += 1,
            // ENOENT: it ended by itself meanwhile.
            Some(e) if e == -(nix::errno::Errno::ENOENT as i32) => {}
            e => return Err(format!("conntrack delete refused: error {e:?}")),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(t: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&t.to_ne_bytes());
        v.extend_from_slice(payload);
        v.resize(align4(v.len()), 0);
        v
    }

    fn entry(proto: u8, dport: u16) -> Vec<u8> {
        let p = [
            attr(CTA_PROTO_NUM, &[proto]),
            attr(2, &1234u16.to_be_bytes()),
            attr(CTA_PROTO_DST_PORT, &dport.to_be_bytes()),
        ]
        .concat();
        let tuple = [attr(1, &[0; 12]), attr(CTA_TUPLE_PROTO | 0x8000, &p)].concat();
        [
            attr(CTA_TUPLE_ORIG | 0x8000, &tuple),
            attr(CTA_MARK, &[0; 4]),
        ]
        .concat()
    }

    #[test]
    fn finds_tcp_flows_to_the_port_only() {
        assert!(orig_tuple_to_port(&entry(6, 20570), 20570).is_some());
        assert!(orig_tuple_to_port(&entry(6, 20571), 20570).is_none());
        assert!(orig_tuple_to_port(&entry(17, 20570), 20570).is_none());
        assert!(orig_tuple_to_port(&[1, 2, 3], 20570).is_none());
        assert!(orig_tuple_to_port(&[200, 0, 1, 0, 9], 20570).is_none());
    }

    #[test]
    fn messages_are_length_prefixed_and_aligned() {
        let m = message(
            IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST,
            7,
            &[(CTA_MARK, &[1, 2, 3])],
        );
        assert_eq!(m.len(), 16 + 4 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 0x101);
        let parsed: Vec<_> = messages(&m).collect();
        assert_eq!(parsed.len(), 1);
        let attrs: Vec<_> = attributes(&parsed[0].1[4..]).collect();
        assert_eq!(attrs, vec![(CTA_MARK, &[1u8, 2, 3][..])]);
    }
}
