//! Ends live sessions of a revoked forward: deletes the conntrack entries of flows we granted (our mark
//! bit) whose original destination port is the forward's external port. The revoke rule in our filter
//! chain already drops their packets; deleting the entries makes the end prompt and visible (the
//! viewer's next packet meets no DNAT, so its connection is reset instead of hanging until a timeout).
//!
//! Plain ctnetlink (NETLINK_NETFILTER): a dump filtered by mark, then one delete per matching tuple —
//! what `conntrack -D` does, without needing conntrack-tools on the router.

use crate::netlink::{self, attributes, Kept, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_MARK: u16 = 8;
const CTA_MARK_MASK: u16 = 21;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const AF_INET: u8 = 2;
const IPPROTO_TCP: u8 = 6;

/// One ctnetlink request: nfgenmsg (family, version, res_id), then attributes.
fn message(kind: u16, flags: u16, seq: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    netlink::message(
        (NFNL_SUBSYS_CTNETLINK << 8) | kind,
        flags,
        seq,
        &[AF_INET, 0, 0, 0],
        attrs,
    )
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

/// Deletes the conntrack entries of marked TCP flows to `port` over `socket` (a NETLINK_NETFILTER one);
/// returns how many were deleted.
pub fn end_sessions(socket: &Kept, mark_bit: u32, port: u16) -> Result<usize, String> {
    let mark = mark_bit.to_be_bytes();
    let entries = socket
        .with(|fd, next| {
            let seq = *next;
            *next += 1;
            let dump = message(
                IPCTNL_MSG_CT_GET,
                NLM_F_REQUEST | NLM_F_DUMP,
                seq,
                &[(CTA_MARK, &mark), (CTA_MARK_MASK, &mark)],
            );
            netlink::transact(fd, &dump, seq)
        })
        .map_err(|e| format!("conntrack dump: {e}"))?;
    let tuples: Vec<Vec<u8>> = entries
        .iter()
        .filter_map(|(_, payload)| orig_tuple_to_port(payload.get(4..)?, port))
        .collect();
    let mut deleted = 0;
    for tuple in &tuples {
        let done = socket.with(|fd, next| {
            let seq = *next;
            *next += 1;
            let del = message(
                IPCTNL_MSG_CT_DELETE,
                NLM_F_REQUEST | NLM_F_ACK,
                seq,
                &[(CTA_TUPLE_ORIG | 0x8000, tuple)],
            );
            netlink::transact(fd, &del, seq)
        });
        match done {
            Ok(_) => deleted += 1,
            // It ended by itself meanwhile.
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(format!("conntrack delete refused: {e}")),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::attr;

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
}
