//! Plain netlink: message framing, attributes, one dump, and a blocking subscription. Shared by the
//! rtnetlink reader (`net::rtnl`) and ctnetlink (`firewall::conntrack`). Written here rather than taken
//! from netlink-packet-route: that crate parses every rtnetlink family and cost 553 KB of a 1.2 MB static
//! binary (measured, x86_64-musl, opt-level z); we read a dozen attributes.

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_ACK: u16 = 4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLA_F_NESTED: u16 = 0x8000;
const HEADER: usize = 16;

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One request: the netlink header, the family header (`fixed`), then attributes.
pub fn message(kind: u16, flags: u16, seq: u32, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; HEADER];
    m.extend_from_slice(fixed);
    m.resize(align4(m.len()), 0);
    for (t, payload) in attrs {
        m.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(align4(m.len()), 0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&kind.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// One attribute: length, type, payload, padded to 4 bytes.
pub fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut a = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(payload);
    a.resize(align4(a.len()), 0);
    a
}

/// An attribute holding attributes.
pub fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    attr(kind | NLA_F_NESTED, &parts.concat())
}

/// The payload of the first attribute of type `kind`.
pub fn find(b: &[u8], kind: u16) -> Option<&[u8]> {
    attributes(b).find(|(t, _)| *t == kind).map(|(_, v)| v)
}

/// Attributes of a netlink payload: (type without flags, payload). Stops at the first malformed one.
pub fn attributes(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
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

/// Netlink messages in one datagram: (type, sequence number, payload after the header).
pub fn messages(mut b: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < HEADER {
            return None;
        }
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
        if len < HEADER || len > b.len() {
            return None;
        }
        let payload = &b[HEADER..len];
        b = &b[align4(len).min(b.len())..];
        Some((kind, seq, payload))
    })
}

/// The errno of an NLMSG_ERROR payload (0: an acknowledgement).
pub fn error_code(payload: &[u8]) -> Option<i32> {
    payload
        .get(0..4)
        .map(|e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]))
}

/// A native-endian u16 at `at`.
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// A native-endian u32 at `at`.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A netlink socket of one protocol, bound to `groups` (0: requests only).
pub fn open(protocol: SockProtocol, groups: u32) -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        protocol,
    )?;
    if groups != 0 {
        // Bursts must not lose the wake-up; a lost event is harmless anyway (any event only leads to
        // a fresh read), and ENOBUFS counts as one.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
    }
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
    Ok(fd)
}

/// A request socket kept open between requests. Closing a NETLINK_NETFILTER socket makes the kernel
/// finish nf_tables' pending cleanup first, and after an element delete that waits for an RCU grace
/// period (10-15 ms in the lab, seen with strace as a slow `close`): a mapping change must not pay it.
pub struct Kept {
    protocol: SockProtocol,
    /// The socket (opened at first use, in the namespace of that moment) and the next sequence number.
    socket: Mutex<(Option<OwnedFd>, u32)>,
}

impl Kept {
    pub fn new(protocol: SockProtocol) -> Kept {
        Kept {
            protocol,
            socket: Mutex::new((None, 1)),
        }
    }

    /// Runs `exchange` on the socket with the next free sequence number, which it advances past
    /// the numbers it used (answers are matched by number, so a late one is passed over). When
    /// answers were lost (ENOBUFS) the socket is closed, so the next exchange starts afresh; a
    /// refusal (the kernel's answer) leaves it open.
    pub fn with<T>(
        &self,
        exchange: impl FnOnce(&OwnedFd, &mut u32) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let mut guard = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        let (socket, seq) = &mut *guard;
        if socket.is_none() {
            *socket = Some(open(self.protocol, 0)?);
        }
        // Numbers never wrap inside an exchange.
        if *seq > 1 << 31 {
            *seq = 1;
        }
        let result = exchange(socket.as_ref().expect("opened above"), seq);
        if matches!(result, Err(Errno::ENOBUFS)) {
            *socket = None;
        }
        result
    }
}

/// Sends one request and returns the payloads of every answer until DONE (a dump) or the first
/// acknowledgement (a single request with NLM_F_ACK). A refusal is an error with the kernel's errno.
pub fn transact(fd: &OwnedFd, request: &[u8], seq: u32) -> Result<Vec<(u16, Vec<u8>)>, Errno> {
    let mut out = Vec::new();
    transact_each(fd, request, seq, |kind, payload| {
        out.push((kind, payload.to_vec()))
    })?;
    Ok(out)
}

/// `transact`, each answer handed to `take` as it is read and not kept: a dump of a table with
/// hundreds of thousands of entries (a flooded bridge FDB) costs one receive buffer, not its size.
pub fn transact_each(
    fd: &OwnedFd,
    request: &[u8],
    seq: u32,
    mut take: impl FnMut(u16, &[u8]),
) -> Result<(), Errno> {
    send(fd.as_raw_fd(), request, MsgFlags::empty())?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = loop {
            match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                other => break other?,
            }
        };
        for (kind, s, payload) in messages(&buf[..n]) {
            if s != seq {
                continue;
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    return match error_code(payload) {
                        Some(0) => Ok(()),
                        Some(e) => Err(Errno::from_raw(-e)),
                        None => Err(Errno::EBADMSG),
                    }
                }
                _ => take(kind, payload),
            }
        }
    }
}

/// Blocks until a message arrives on a subscribed socket (or events were lost, which means the same).
pub fn wait(fd: &OwnedFd) -> nix::Result<()> {
    while !wait_news(fd, &mut vec![0u8; 64 * 1024], |_, _| true)? {}
    Ok(())
}

/// Reads what arrived on a subscribed socket into `buf` (blocking until something did): true if a
/// message is news by `is_news`, or events were lost (which may have hidden news).
pub fn wait_news(
    fd: &OwnedFd,
    buf: &mut [u8],
    is_news: impl Fn(u16, &[u8]) -> bool,
) -> nix::Result<bool> {
    loop {
        match recv(fd.as_raw_fd(), buf, MsgFlags::empty()) {
            Ok(n) => return Ok(messages(&buf[..n]).any(|(k, _, p)| is_news(k, p))),
            Err(Errno::ENOBUFS) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Waits at most `timeout` for a further message (to coalesce a burst); true if one came.
pub fn wait_for(fd: &OwnedFd, timeout: Duration) -> bool {
    wait_for_news(fd, &mut vec![0u8; 64 * 1024], timeout, |_, _| true)
}

/// Waits at most `timeout` for further news by `is_news` (read into `buf`); true if some came.
pub fn wait_for_news(
    fd: &OwnedFd,
    buf: &mut [u8],
    timeout: Duration,
    is_news: impl Fn(u16, &[u8]) -> bool,
) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let until = std::time::Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO);
        if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
            return false;
        }
        match wait_news(fd, buf, &is_news) {
            Ok(true) => return true,
            Ok(false) if !left.is_zero() => continue,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_length_prefixed_and_aligned() {
        let m = message(0x101, NLM_F_REQUEST, 7, &[2, 0, 0, 0], &[(8, &[1, 2, 3])]);
        assert_eq!(m.len(), 16 + 4 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 0x101);
        let parsed: Vec<_> = messages(&m).collect();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].1, 7);
        let attrs: Vec<_> = attributes(&parsed[0].2[4..]).collect();
        assert_eq!(attrs, vec![(8, &[1u8, 2, 3][..])]);
    }

    #[test]
    fn malformed_input_ends_iteration() {
        assert_eq!(attributes(&[200, 0, 1, 0, 9]).count(), 0);
        assert_eq!(attributes(&[1, 0]).count(), 0);
        assert_eq!(messages(&[255; 20]).count(), 0);
        assert_eq!(messages(&[0; 8]).count(), 0);
    }
}
